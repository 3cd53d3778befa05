"""``trafficlab metrics`` and ``trafficlab rollout``: argparse subcommands for the main CLI.

The main parser calls :func:`add_commands` with its subparsers. Like the rest of the CLI,
each command parses, validates its flags and calls the library; data goes to stdout, the
rest (live progress, notes) to stderr.

Exit status of ``trafficlab rollout``: 0 when the canary was promoted, 1 otherwise
(rolled back, aborted, or an error), so a script can stop a pipeline on a bad canary;
the JSON (``-o json``) says which.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from trafficlab._errors import TrafficLabError
from trafficlab.lab import Lab
from trafficlab.monitoring.metrics import SOURCES, collect, parse_duration
from trafficlab.monitoring.rollout import (
    COMMANDS,
    NO_DATA_POLICIES,
    PolicyError,
    RolloutPolicy,
    load_policy,
    read_state,
    run_rollout,
    send_command,
)

__all__ = ["add_commands", "cmd_metrics", "cmd_rollout", "policy_from_args"]


def _err(text: str) -> None:
    print(text, file=sys.stderr)


# -- metrics -------------------------------------------------------------------------------
def cmd_metrics(args: argparse.Namespace) -> int:
    """Print per-version requests/s, error rate and latency (table or JSON)."""
    try:
        parse_duration(args.window, what="--window")
    except ValueError as exc:
        raise TrafficLabError(str(exc)) from None
    report = collect(Lab(args.home), args.window, source=args.source)
    if args.output == "json":
        doc = report.to_dict()
        if args.show_queries:
            doc["queries"] = report.queries
        print(json.dumps(doc, indent=2))
        for note in report.notes:
            _err(f"note: {note}")
        return 0
    print(str(report), end="")
    if args.show_queries:
        if report.queries:
            print("\nPromQL (evaluated by Prometheus at "
                  f"{report.at:.0f}, window {report.window}):")
            for name, expr in report.queries.items():
                print(f"  {name}:\n    {expr}")
        else:
            print("\nno PromQL: these figures were read from the pods' /metrics directly")
    return 0


# -- rollout -------------------------------------------------------------------------------
_FLAG_SETTINGS = {
    # argparse dest -> policy file key; a flag given on the command line beats the file.
    "route": "route", "namespace": "namespace", "stable": "stable", "canary": "canary",
    "steps": "steps", "interval": "interval", "max_error_rate": "maxErrorRate",
    "max_p99": "maxP99", "min_requests": "minRequests", "threshold": "threshold",
    "no_data": "noData", "no_data_limit": "noDataLimit", "load": "load",
    "load_path": "loadPath", "pause_before_steps": "pauseBeforeSteps", "source": "source",
}


def policy_from_args(args: argparse.Namespace) -> RolloutPolicy:
    """The policy of ``--policy FILE`` (if any), overridden by every flag given explicitly."""
    policy = load_policy(args.policy) if args.policy else RolloutPolicy()
    given = {key: getattr(args, dest) for dest, key in _FLAG_SETTINGS.items()
             if getattr(args, dest, None) is not None}
    if given:
        try:
            policy = load_policy(given, base=policy)
        except PolicyError as exc:
            flag = next((f"--{d.replace('_', '-')}" for d, k in _FLAG_SETTINGS.items()
                         if k == exc.field), exc.field)
            raise PolicyError(flag, exc.message.split(": ", 1)[1]) from None
    return policy.validate()


def _rollout_command(args: argparse.Namespace) -> int:
    lab = Lab(args.home)
    route = args.route or "task-api"
    namespace = args.namespace or "default"
    if args.status:
        state = read_state(lab.home, route, namespace)
        if state is None:
            raise TrafficLabError(f"no rollout of HTTPRoute {namespace}/{route} has run in the lab "
                                  f"at {lab.home}")
        print(json.dumps(state, indent=2))
        return 0
    command = next(c for c in COMMANDS if getattr(args, c))
    state = send_command(lab.home, route, command, namespace=namespace)
    _err(f"rollout {state['rollout']} of HTTPRoute {namespace}/{route}: {command} taken "
         f"(phase {state['phase']}, {state['canary']} at {state['weights'][state['canary']]}%)")
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    """Run a canary rollout to its end, or send a command to a running one."""
    if args.status or any(getattr(args, c) for c in COMMANDS):
        return _rollout_command(args)
    policy = policy_from_args(args)
    # Text output: live view on a terminal, one line per event otherwise (CI logs). JSON
    # output: the live view only on a terminal, so stderr stays clean in pipelines.
    progress = True if args.output == "text" else None
    result = run_rollout(Lab(args.home), policy, progress=progress)
    if args.output == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(f"{result.outcome}: {result.reason}")
        print("weights: " + ", ".join(f"{k} {v}%" for k, v in result.weights.items()))
        print(f"event log: {result.events}")
    return 0 if result.outcome == "promoted" else 1


def add_commands(subparsers: Any) -> None:
    """Register ``metrics`` and ``rollout`` on the main parser's subparsers."""
    text = "per-version requests/s, error rate and p50/p99 latency"
    p = subparsers.add_parser("metrics", help=text, description=text + (
        ", from the lab's Prometheus (or, without one, read from the pods directly)."))
    p.set_defaults(func=cmd_metrics)
    p.add_argument("--window", default="1m", help="how far back to look (default 1m; 30s, 5m...)")
    p.add_argument("-o", "--output", choices=["table", "json"], default="table")
    p.add_argument("--show-queries", action="store_true", help="print the PromQL behind each figure")
    p.add_argument("--source", choices=list(SOURCES), default="auto",
                   help="prometheus, direct (read the pods), or auto (default)")

    text = "roll a canary out step by step, judged by its metrics, with automatic rollback"
    p = subparsers.add_parser(
        "rollout", help=text, description=text + ". A running rollout takes --pause, --resume, "
        "--promote and --abort from another terminal. Exit status 0 when promoted, 1 otherwise.")
    p.set_defaults(func=cmd_rollout)
    defaults = RolloutPolicy()
    p.add_argument("--route", help=f"the HTTPRoute (default {defaults.route})")
    p.add_argument("-n", "--namespace", help=f"its namespace (default {defaults.namespace})")
    p.add_argument("--canary", help="the canary Service, e.g. task-api-v2")
    p.add_argument("--stable", help=f"the stable Service (default {defaults.stable})")
    p.add_argument("--steps", help="canary weights in percent (default 5,25,50,100)")
    p.add_argument("--interval", help="analysis interval per step (default 30s)")
    p.add_argument("--max-error-rate", help="highest 5xx share that passes (default 0.01)")
    p.add_argument("--max-p99", help="highest p99 latency that passes (default 500ms)")
    p.add_argument("--min-requests", help="fewest canary requests per interval to judge (default 20)")
    p.add_argument("--threshold", help="failed checks before rollback (default 2)")
    p.add_argument("--no-data", choices=list(NO_DATA_POLICIES),
                   help="an interval without enough data: fail (counts as a failed check, "
                        "the default) or hold (analyse again; roll back after --no-data-limit)")
    p.add_argument("--no-data-limit", help="intervals in a row without data before rollback "
                   "under --no-data hold (default 3)")
    p.add_argument("--load", help="drive this many requests/s through the gateway meanwhile")
    p.add_argument("--load-path", help="the path the load requests (default /)")
    p.add_argument("--pause-before-steps", action="store_const", const=True, default=None,
                   help="pause before each step until --resume")
    p.add_argument("--source", choices=["auto", "prometheus", "direct"],
                   help="where figures come from (default auto: Prometheus when it runs)")
    p.add_argument("--policy", metavar="FILE", help="a YAML file with these settings (flags win)")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    control = p.add_mutually_exclusive_group()
    for command in COMMANDS:
        control.add_argument(f"--{command}", action="store_true",
                             help=f"{command} the running rollout of --route")
    control.add_argument("--status", action="store_true", help="print the route's rollout state")
