"""The traffic-engineer subcommands: ``generate``, ``review`` and ``review-command``.

``add_commands(subparsers)`` registers them on the ``trafficlab`` parser (trafficlab/cli.py).
Conventions as there: data to stdout, messages to stderr; exit 0 on success, 1 on an error
(for ``review``: when an error was found; for ``review-command``: when kubectl would refuse the
command or the result has errors).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trafficlab._errors import LabNotRunningError, TrafficLabError
from trafficlab.engineer.facts import (
    DEFAULT_GATEWAY,
    DEFAULT_LISTENER,
    DEFAULT_NAMESPACE,
    DEFAULT_ROUTE,
    SERVICE_PORT,
    LabFacts,
    load_facts,
)
from trafficlab.engineer.generate import (
    GENERATE_KINDS,
    OUTPUTS,
    GenerateOptions,
    generate,
    parse_headers,
    parse_percent,
    parse_stages,
    parse_weights,
)
from trafficlab.engineer.kubectl_run import KubectlDryRun, find_kubectl
from trafficlab.engineer.review import review_paths
from trafficlab.engineer.review_command import review_command

__all__ = ["add_commands", "cmd_generate", "cmd_review", "cmd_review_command"]


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def _failed(exc: TrafficLabError) -> int:
    _err(f"error: {exc.message}")
    return 1


def _facts(args: argparse.Namespace) -> LabFacts:
    return load_facts(getattr(args, "home", None), use_lab=args.lab)


def _real_kubectl(args: argparse.Namespace) -> KubectlDryRun:
    """The real kubectl and the running lab's kubeconfig, or an error that says what to do."""
    from trafficlab.lab import Lab

    binary = find_kubectl()
    if binary is None:
        raise TrafficLabError("--kubectl needs kubectl: run 'make lab-up' (it installs kubectl "
                              "into .venv/bin) or put kubectl on PATH")
    lab = Lab(getattr(args, "home", None))
    kubeconfig = lab.status().get("kubeconfig") if lab.running else None
    if not kubeconfig:
        raise LabNotRunningError(f"--kubectl runs kubectl against the lab, and no lab runs in "
                                 f"{lab.home}: start one with 'trafficlab up', or drop --kubectl")
    return KubectlDryRun(binary, Path(str(kubeconfig)))


# -- handlers ------------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    """``trafficlab generate KIND``: print the route (and its commands); optionally write files."""
    try:
        options = GenerateOptions(
            name=args.name, namespace=args.namespace, gateway=args.gateway,
            gateway_namespace=args.gateway_namespace, section=args.section_name or None,
            hostnames=tuple(args.hostname), stable=args.stable, canary=args.canary,
            blue=args.blue, green=args.green, active=args.active, premium=args.premium,
            port=args.port,
            percent=parse_percent(args.percent) if args.percent is not None else None,
            weights=parse_weights(args.weights) if args.weights is not None else None,
            stages=parse_stages(args.stages) if args.stages is not None else None,
            stage=args.stage, headers=parse_headers(args.header), path=args.path,
            path_type=args.path_type, file=args.file,
        )
        result = generate(args.kind, options)
    except TrafficLabError as exc:
        return _failed(exc)
    if args.out_dir:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = result.stage_files()
        for name, text in files.items():
            (out / name).write_text(text)
            _err(f"wrote {out / name}")
    print(result.text(args.output), end="")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    """``trafficlab review FILE...``: findings as a table or JSON; exit 1 when errors were found."""
    try:
        report = review_paths(args.paths, _facts(args))
    except TrafficLabError as exc:
        return _failed(exc)
    if args.output == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render(), end="")
    _err(report.summary())
    return 1 if report.has_errors else 0


def cmd_review_command(args: argparse.Namespace) -> int:
    """``trafficlab review-command "kubectl ..."``: the result on a copy, or why it is refused."""
    words: list[str] = list(args.command_line)
    if not words:
        _err('error: give the command to review, quoted: trafficlab review-command "kubectl patch ..."')
        return 1
    command: Any = words[0] if len(words) == 1 else words
    try:
        runner = _real_kubectl(args) if args.kubectl else None
        result = review_command(command, _facts(args), kubectl=runner)
    except TrafficLabError as exc:
        return _failed(exc)
    if args.output == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.render(), end="")
    return 1 if result.has_errors else 0


# -- registration --------------------------------------------------------------------------
def _lab_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lab", action=argparse.BooleanOptionalAction, default=None,
                   help="check against the running lab (--lab insists on one); --no-lab uses the "
                        "manifests in cluster/manifests. Default: the lab if one runs.")


def add_commands(subparsers: Any) -> None:
    """Register ``generate``, ``review`` and ``review-command`` on an argparse subparsers object."""
    text = "generate a traffic-splitting HTTPRoute and the commands that operate it"
    p = subparsers.add_parser("generate", help=text, description=text)
    p.set_defaults(func=cmd_generate)
    p.add_argument("kind", choices=GENERATE_KINDS)
    p.add_argument("--name", default=DEFAULT_ROUTE, help="the HTTPRoute's name (default task-api)")
    p.add_argument("-n", "--namespace", default=DEFAULT_NAMESPACE)
    p.add_argument("--gateway", default=DEFAULT_GATEWAY)
    p.add_argument("--gateway-namespace", default=None)
    p.add_argument("--section-name", default=DEFAULT_LISTENER,
                   help="the listener to attach to ('' for every listener)")
    p.add_argument("--hostname", action="append", default=[])
    p.add_argument("--stable", help="the stable Service (default task-api-v1)")
    p.add_argument("--canary", help="the new Service (default task-api-v2)")
    p.add_argument("--blue", default="task-api-blue")
    p.add_argument("--green", default="task-api-green")
    p.add_argument("--active", default="blue", choices=["blue", "green"],
                   help="blue-green: the colour that serves now")
    p.add_argument("--premium", help="premium: the Service for premium users (task-api-premium)")
    p.add_argument("--port", type=int, default=SERVICE_PORT, help="the Services' port (80)")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--percent", help="canary share in percent (10 gives weights 90 and 10); "
                                           "mirror: share of requests mirrored")
    weights.add_argument("--weights", help="stable:canary weights, kept as given (9:1)")
    p.add_argument("--stages", help="canary percentages of the stages (10,25,50,100)")
    p.add_argument("--stage", type=int, default=1, help="which stage to print (default 1)")
    p.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                   help="header match (repeat: all must match)")
    p.add_argument("--path", help="limit the rule to this path")
    p.add_argument("--path-type", default="PathPrefix", choices=["PathPrefix", "Exact"])
    p.add_argument("--file", help="the file name the commands refer to (default KIND.yaml)")
    p.add_argument("--out-dir", help="also write the route (every stage's) into this folder")
    p.add_argument("-o", "--output", choices=OUTPUTS, default="all",
                   help="yaml, commands, or all (YAML then the commands as comments)")

    text = "review HTTPRoute files: problems, their effect on traffic, and fixes"
    p = subparsers.add_parser("review", help=text, description=text)
    p.set_defaults(func=cmd_review)
    p.add_argument("paths", nargs="+", metavar="FILE|DIR")
    p.add_argument("-o", "--output", choices=["table", "json"], default="table")
    _lab_flag(p)

    text = ("show what a 'kubectl patch' or 'kubectl apply' command would do to a copy of the "
            "lab's object, or why kubectl would refuse it")
    p = subparsers.add_parser("review-command", help=text, description=text)
    p.set_defaults(func=cmd_review_command)
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    _lab_flag(p)
    p.add_argument("--kubectl", action="store_true",
                   help="also run the real kubectl with --dry-run=server against the running lab "
                        "(the API server applies it to a throw-away copy); its verdict wins")
    p.add_argument("command_line", nargs=argparse.REMAINDER, metavar="COMMAND",
                   help='the command, quoted as one argument: "kubectl patch httproute ..."')
