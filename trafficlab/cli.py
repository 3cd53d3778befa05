"""``trafficlab``: the command line, in kubectl's conventions.

Each command parses, validates its flags, then calls one ``Lab`` method; no logic lives here.
Data goes to stdout, everything else to stderr; exit 0 on success, 1 on any error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import yaml

from trafficlab._errors import TrafficLabError, ValidationError
from trafficlab.lab import Lab
from trafficlab.resources import resolve_kind

__all__ = ["main"]

_SERVER_REASONS = {"NotFound", "AlreadyExists", "Conflict", "Invalid", "InternalError"}


def _lab(args: argparse.Namespace) -> Lab:
    return Lab(args.home, backend=getattr(args, "backend", None))


def _err(text: str) -> None:
    print(text, file=sys.stderr)


# -- commands ------------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    lab = _lab(args)
    backend = lab.backend  # makes the choice now, with its reason when it was "auto"
    if lab.auto_reason:
        _err(f"backend: {backend.name} ({lab.auto_reason})")
    if args.dry_run:
        plan = lab.up(timeout=args.timeout, dry_run=True)
        print(plan["plan"], end="" if str(plan["plan"]).endswith("\n") else "\n")
        return 0
    was_running = lab.running
    status = lab.up(timeout=args.timeout)
    _err("lab already running" if was_running else f"lab is up ({status['backend']} backend)")
    for gw in status["gateways"]:
        for listener in gw["listeners"]:
            print(f"gateway {gw['namespace']}/{gw['name']} listener {listener['name']} "
                  f"(port {listener['port']}): {listener['url']}")
    if status.get("kubeconfig"):
        print(f"export KUBECONFIG={status['kubeconfig']}  # then kubectl works on this lab")
    if status.get("prometheus"):
        print(f"prometheus: {status['prometheus']}")
    elif status.get("backend") == "local":
        from trafficlab.monitoring.prometheus import INSTALL_HINT

        _err(f"prometheus: not running. {INSTALL_HINT}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    lab = _lab(args)
    lab.down()
    _err(f"lab in {lab.home} stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    status = _lab(args).status()
    if args.output == "json":
        print(json.dumps(status, indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump(status, sort_keys=False), end="")
    else:
        print(f"backend:    {status['backend']}")
        print(f"ready:      {status['ready']}")
        for gw in status["gateways"]:
            for listener in gw["listeners"]:
                print(f"gateway:    {gw['namespace']}/{gw['name']} {listener['name']}:"
                      f"{listener['port']} -> {listener['url']}")
        print(f"prometheus: {status.get('prometheus') or 'not running'}")
    return 0


def _print_changes(result: Any) -> None:
    for line in result.lines:
        print(line)
    for warning in result.warnings:
        _err(f"Warning: {warning}")
    if result.error:
        _err(f"Warning: the data plane did not take this change: {result.error}")


def cmd_apply(args: argparse.Namespace) -> int:
    result = _lab(args).apply(args.filename, namespace=args.namespace,
                              dry_run=args.dry_run != "none")
    _print_changes(result)
    return 0


def cmd_patch(args: argparse.Namespace) -> int:
    kind, name = _kind_and_name(args.type_name, args.name)
    assert name is not None  # _kind_and_name insists on a name here
    try:
        patch = json.loads(args.patch)
    except json.JSONDecodeError as exc:
        raise ValidationError(kind, args.namespace, name, "", f"the patch is not valid JSON: {exc}. "
                              "Quote it in single quotes: -p '{\"spec\": ...}'") from exc
    result = _lab(args).patch(kind, name, patch, type=args.type, namespace=args.namespace,
                              dry_run=args.dry_run != "none")
    if result.changes and result.changes[0]["action"] == "unchanged":
        print(result.changes[0]["text"].replace(" unchanged", " patched (no change)"))
    else:
        _print_changes(result)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    lab = _lab(args)
    if args.filename:
        result = lab.delete(filename=args.filename, namespace=args.namespace,
                            ignore_not_found=args.ignore_not_found, dry_run=args.dry_run != "none")
    else:
        if not args.type_name:
            raise TrafficLabError("you must provide one or more resources by argument or filename")
        kind, name = _kind_and_name(args.type_name, args.name)
        result = lab.delete(kind, name, namespace=args.namespace,
                            ignore_not_found=args.ignore_not_found, dry_run=args.dry_run != "none")
    _print_changes(result)
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    kind, name = _kind_and_name(args.type_name, args.name, name_optional=True)
    lab = _lab(args)
    if name:
        items = [lab.get(kind, name, namespace=args.namespace)]
    else:
        items = lab.get(kind, namespace=args.namespace, all_namespaces=args.all_namespaces)
    if args.output == "json":
        doc = items[0] if name else {"apiVersion": "v1", "kind": "List", "items": items}
        print(json.dumps(doc, indent=2))
    elif args.output == "yaml":
        doc = items[0] if name else {"apiVersion": "v1", "kind": "List", "items": items}
        print(yaml.safe_dump(doc, sort_keys=False), end="")
    elif args.output == "name":
        group = "" if kind == "Pod" else resolve_kind(kind).group
        for obj in items:
            prefix = f"{kind.lower()}.{group}" if group else kind.lower()
            print(f"{prefix}/{obj['metadata']['name']}")
    elif not items:
        where = "" if args.all_namespaces else f" in {args.namespace} namespace"
        _err(f"No resources found{where}.")
    else:
        _print_table(kind, items, args.all_namespaces)
    return 0


def _kind_and_name(type_name: str, name: str | None,
                   name_optional: bool = False) -> tuple[str, str | None]:
    kind, _, slash_name = type_name.partition("/")
    name = slash_name or name
    if not name and not name_optional:
        raise TrafficLabError(f"a resource name is required: {type_name} NAME")
    if kind.lower() in ("pod", "pods", "po"):
        return "Pod", name
    return resolve_kind(kind).kind, name


def cmd_send(args: argparse.Namespace) -> int:
    from trafficlab.traffic import format_result, send

    headers: dict[str, str] = {}
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise TrafficLabError(f'bad header "{item}": write it as -H "name: value"')
        headers[name.strip()] = value.strip()
    url = args.url or _lab(args).url(args.gateway, namespace=args.namespace)
    result = send(url, requests=args.requests, duration=args.duration, concurrency=args.concurrency,
                  rate=args.rate, method=args.method, path=args.path, headers=headers,
                  timeout=args.timeout)
    print(format_result(result, "json" if args.output == "json" else "table"))
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    from pathlib import Path

    from trafficlab.grading.limits import EXERCISE_TIMEOUT, STUDENT_TIMEOUT
    from trafficlab.grading.runner import grade, grade_batch

    if args.timeout_exercise is None:
        args.timeout_exercise = EXERCISE_TIMEOUT
    if args.timeout_student is None:
        args.timeout_student = STUDENT_TIMEOUT
    if args.batch:
        return _grade_batch(args, grade_batch)
    if not args.submission:
        raise TrafficLabError("grade needs a SUBMISSION_DIR (or --batch DIR)")
    folder = Path(args.submission)
    if not folder.is_dir():
        raise TrafficLabError(f'the submission folder "{folder}" does not exist')
    quiet = args.output == "json"
    # Resolve the folder's parents only: a submission folder that is itself a symbolic link
    # must stay one, so grading refuses it instead of following it.
    folder = folder.absolute().parent.resolve() / folder.absolute().name
    try:
        report = grade(folder, args.exercise or None,
                       progress=None if quiet else (lambda ex: _err(f"grading {ex}...")),
                       timeout_exercise=args.timeout_exercise,
                       timeout_student=args.timeout_student,
                       work_dir=Path(args.work_dir) if args.work_dir else None)
    except TrafficLabError:
        raise
    except Exception as exc:  # a grader bug is a message, not a traceback
        _err(f"grading could not finish: {type(exc).__name__}: {exc}")
        return 1
    if args.output == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.render(), end="")
    return 0


def _grade_batch(args: argparse.Namespace, grade_batch: Any) -> int:
    from pathlib import Path

    from rich.progress import Progress

    folder = Path(args.batch)
    students = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    out = Path(args.out)
    with Progress(transient=False) as progress:
        task = progress.add_task("grading", total=len(students))
        reports = grade_batch(folder, jobs=args.jobs, out=out, exercise_ids=args.exercise or None,
                              on_done=lambda name, report: progress.advance(task),
                              timeout_exercise=args.timeout_exercise,
                              timeout_student=args.timeout_student,
                              work_root=Path(args.work_dir) if args.work_dir else None)
    for report in reports:
        print(f"{report.student}: {report.score:g}/{report.max_score:g}")
    _err(f"gradebook: {out}; reports: {out.parent / 'reports'}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    result = _lab(args).check(args.exercise, args.dir)
    if args.output == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.summary())
    return 0 if result.passed else 1


# -- tables --------------------------------------------------------------------------------
def _age(obj: dict[str, Any]) -> str:
    created = obj.get("metadata", {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    seconds = int((datetime.now(timezone.utc) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _condition(obj: dict[str, Any], ctype: str) -> str:
    for cond in obj.get("status", {}).get("conditions", []):
        if cond["type"] == ctype:
            return str(cond["status"])
    return "Unknown"


def _route_backends(obj: dict[str, Any]) -> str:
    parts = []
    for rule in obj.get("spec", {}).get("rules", []):
        refs = rule.get("backendRefs", [])
        total = sum(int(r.get("weight", 1)) for r in refs) or 1
        parts.append(",".join(f"{r['name']}={100 * int(r.get('weight', 1)) / total:.4g}%"
                              for r in refs) or "(none)")
    return " | ".join(parts)


_COLUMNS: dict[str, list[tuple[str, Callable[[dict[str, Any]], str]]]] = {
    "GatewayClass": [("CONTROLLER", lambda o: o["spec"]["controllerName"]),
                     ("ACCEPTED", lambda o: _condition(o, "Accepted"))],
    "Gateway": [("CLASS", lambda o: o["spec"]["gatewayClassName"]),
                ("ADDRESS", lambda o: ",".join(a["value"] for a in o.get("status", {})
                                               .get("addresses", [])) or "<none>"),
                ("PROGRAMMED", lambda o: _condition(o, "Programmed"))],
    "HTTPRoute": [("HOSTNAMES", lambda o: ",".join(o["spec"].get("hostnames", [])) or "*"),
                  ("BACKENDS", _route_backends)],
    "Service": [("PORTS", lambda o: ",".join(f"{p['port']}->{p.get('targetPort', p['port'])}"
                                             for p in o["spec"].get("ports", [])))],
    "Deployment": [("REPLICAS", lambda o: str(o["spec"].get("replicas", 1))),
                   ("IMAGE", lambda o: o["spec"]["template"]["spec"]["containers"][0]["image"])],
    "Pod": [("READY", lambda o: "1/1" if o["status"]["ready"] else "0/1"),
            ("STATUS", lambda o: o["status"]["phase"]),
            ("RESTARTS", lambda o: str(o["status"]["restartCount"])),
            ("PORT", lambda o: str(o["status"]["hostPort"])),
            ("PID", lambda o: str(o["status"]["pid"]))],
}


def _print_table(kind: str, items: list[dict[str, Any]], with_namespace: bool) -> None:
    columns = _COLUMNS.get(kind, [])
    header = (["NAMESPACE"] if with_namespace else []) + ["NAME"] + [c[0] for c in columns] + ["AGE"]
    rows = [header]
    for obj in items:
        meta = obj["metadata"]
        row = ([meta.get("namespace", "")] if with_namespace else []) + [meta["name"]]
        row += [fn(obj) for _, fn in columns]
        row.append(_age(obj) if kind != "Pod" else _age({"metadata": {
            "creationTimestamp": obj["status"].get("startTime")}}))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip())


# -- parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trafficlab",
        description="A hands-on lab for progressive delivery with the Kubernetes Gateway API.")
    parser.add_argument("--home", default=None,
                        help="the lab's home folder (default: $TRAFFICLAB_HOME, else ./.lab)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(func=fn)
        return p

    def namespaced(p: argparse.ArgumentParser) -> None:
        p.add_argument("-n", "--namespace", default="default")

    def dry_run(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dry-run", nargs="?", const="client", default="none",
                       choices=["none", "client", "server"],
                       help="validate and show what would change, change nothing")

    p = add("up", cmd_up, "start the lab and apply the baseline (idempotent)")
    p.add_argument("--backend", choices=["auto", "local", "kind"], default=None,
                   help="default: $TRAFFICLAB_BACKEND, else auto (kind when Docker and kind work)")
    p.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for serving")
    p.add_argument("--dry-run", action="store_true",
                   help="kind backend: print every command and manifest, run nothing")
    add("down", cmd_down, "stop everything this lab started")
    p = add("status", cmd_status, "where the gateways answer, and whether the lab is ready")
    p.add_argument("-o", "--output", choices=["text", "json", "yaml"], default="text")

    p = add("apply", cmd_apply, "apply a file, folder or - (stdin): all objects or none")
    p.add_argument("-f", "--filename", required=True)
    namespaced(p)
    dry_run(p)

    p = add("get", cmd_get, "show objects with their status")
    p.add_argument("type_name", metavar="KIND[/NAME]")
    p.add_argument("name", nargs="?")
    namespaced(p)
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-o", "--output", choices=["wide", "yaml", "json", "name"], default=None)

    p = add("patch", cmd_patch, "patch an object, as kubectl patch does")
    p.add_argument("type_name", metavar="KIND[/NAME]")
    p.add_argument("name", nargs="?")
    namespaced(p)
    p.add_argument("--type", choices=["merge", "json", "strategic"], default="strategic")
    p.add_argument("-p", "--patch", required=True)
    dry_run(p)

    p = add("delete", cmd_delete, "delete objects by KIND NAME or -f FILE")
    p.add_argument("type_name", metavar="KIND[/NAME]", nargs="?")
    p.add_argument("name", nargs="?")
    p.add_argument("-f", "--filename")
    namespaced(p)
    p.add_argument("--ignore-not-found", action="store_true")
    dry_run(p)

    p = add("send", cmd_send, "send HTTP requests through a Gateway and count versions (like hey)")
    p.add_argument("-n", "--requests", type=int, default=None, help="number of requests (default 200)")
    p.add_argument("-z", "--duration", type=float, default=None, help="seconds to send for, instead of -n")
    p.add_argument("-c", "--concurrency", type=int, default=10)
    p.add_argument("-q", "--rate", type=float, default=None, help="fixed total requests per second")
    p.add_argument("-X", "--method", default="GET")
    p.add_argument("--path", default="/")
    p.add_argument("-H", "--header", action="append", default=[], help='"name: value", repeatable')
    p.add_argument("--gateway", default="task-api-gateway")
    p.add_argument("--url", default=None, help="send to this base URL instead of a Gateway")
    p.add_argument("-t", "--timeout", type=float, default=10.0)
    p.add_argument("--namespace", default="default", help="the Gateway's namespace (-n is hey's count)")
    p.add_argument("-o", "--output", choices=["table", "json"], default="table")

    p = add("grade", cmd_grade, "grade a submission (or a class with --batch) in fresh isolated labs")
    p.add_argument("submission", nargs="?", metavar="SUBMISSION_DIR")
    p.add_argument("--exercise", action="append", default=[], help="grade only this exercise (repeatable)")
    p.add_argument("-o", "--output", choices=["table", "json"], default="table")
    p.add_argument("--batch", metavar="DIR", help="one subfolder per student")
    p.add_argument("--jobs", type=int, default=2, help="labs graded in parallel (with --batch)")
    p.add_argument("--out", default="grades.csv", help="the gradebook CSV (with --batch)")
    # Defaults (300 s, 1800 s) live in trafficlab.grading.limits, imported only to grade.
    p.add_argument("--timeout-exercise", type=float, default=None, metavar="S",
                   help="seconds one exercise may take before its lab is killed and it fails "
                   "(default 300)")
    p.add_argument("--timeout-student", type=float, default=None, metavar="S",
                   help="seconds one submission may take; past it the rest fails unrun "
                   "(default 1800)")
    p.add_argument("--work-dir", default=None, metavar="DIR",
                   help="where lab homes go (kept); the batch runner gives each student one")

    p = add("check", cmd_check, "self-check an exercise against your running lab")
    p.add_argument("exercise", metavar="ID")
    p.add_argument("--dir", default=".", help="the folder with your files (default: here)")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")

    from trafficlab.engineer.cli import add_commands as add_engineer_commands

    add_engineer_commands(sub)

    from trafficlab.monitoring.cli import add_commands as add_monitoring_commands

    add_monitoring_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except TrafficLabError as exc:
        if exc.reason in _SERVER_REASONS and not isinstance(exc, ValidationError):
            _err(f"Error from server ({exc.reason}): {exc.message}")
        elif isinstance(exc, ValidationError):
            _err(f"Error from server (Invalid): {exc.message}")
        else:
            _err(f"error: {exc.message}")
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
