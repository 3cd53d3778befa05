"""``trafficlab review-command``: what a ``kubectl patch`` or ``kubectl apply`` would do, without doing it.

The command is split as a POSIX shell would (:mod:`shlex`), parsed with kubectl's flags, and
applied to a *copy* of the current object: the running lab's when one runs, else the baseline
manifest's. The answer is either the resulting weights (as percentages) and matches, rule by
rule, with what changed, or exactly why kubectl would refuse it:

- the shell cannot split it (an unclosed quote);
- an unknown flag, a missing ``-p``/``-f``, a resource type kubectl does not know;
- ``--type`` strategic (kubectl's default!) on an HTTPRoute: the API server accepts strategic
  merge patches for built-in kinds only, not for custom resources such as Gateway API kinds;
- a patch that is not JSON (kubectl reads ``-p`` as YAML, so some non-JSON passes: said so), with
  the position of the error;
- a JSON patch whose operation lacks ``op``, ``path`` or ``value``, or whose JSON pointer does not
  exist (``/spec/rules/0/backendRefs/2/weight`` when there are two backends);
- a result the API server rejects (validation, as ``trafficlab.resources.validate``).

Accepted results are reviewed too (:mod:`trafficlab.engineer.review`): a merge patch that
replaces the whole ``rules`` list is valid and usually not what was meant.

>>> r = review_command("kubectl patch httproute task-api --type=merge -p '{\\"spec\\": 1}'")
>>> r.accepted, r.reason
(False, 'invalid')
"""

from __future__ import annotations

import copy
import io
import json
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trafficlab._errors import TrafficLabError
from trafficlab.controlplane.store import merge_patch
from trafficlab.engineer.facts import DEFAULT_NAMESPACE, LabFacts, baseline_facts
from trafficlab.engineer.jsonpatch_explain import PatchError, apply_json_patch
from trafficlab.engineer.kubectl_run import KubectlDryRun, kubectl_arguments
from trafficlab.engineer.model import parse_route, percent
from trafficlab.engineer.review import Finding, review_objects
from trafficlab.manifests import load_manifests
from trafficlab.resources import KINDS, KindInfo, find_problems, resolve_kind

__all__ = ["CommandReview", "ObjectChange", "review_command"]

Obj = dict[str, Any]
_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")
_PATCH_TYPES = ("json", "merge", "strategic")
_DRY_RUN = ("none", "client", "server")
# Flags (long names; short aliases below) and whether they take a value.
_FLAGS: dict[str, bool] = {
    "namespace": True, "patch": True, "type": True, "filename": True, "output": True,
    "dry-run": False, "context": True, "kubeconfig": True, "cluster": True, "user": True,
    "field-manager": True, "patch-file": True, "validate": False, "server-side": False,
    "force-conflicts": False, "local": False, "record": False, "recursive": False,
    "all-namespaces": False, "home": True, "kustomize": True, "subresource": True,
}
_SHORT = {"n": "namespace", "p": "patch", "f": "filename", "o": "output", "R": "recursive",
          "A": "all-namespaces", "k": "kustomize"}
_IGNORED = ("context", "kubeconfig", "cluster", "user", "output", "field-manager", "validate",
            "record", "home")


class _Reject(Exception):
    def __init__(self, reason: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.hint = hint


@dataclass
class ObjectChange:
    """One object the command touches: before and after, and kubectl's verb for it."""

    kind: str
    namespace: str
    name: str
    action: str
    before: Obj | None
    after: Obj

    def rules(self, which: str = "after") -> list[dict[str, Any]]:
        """Rule summaries (HTTPRoute only): matches and backends with weights and percentages."""
        obj = self.after if which == "after" else self.before
        if obj is None or self.kind != "HTTPRoute":
            return []
        out = []
        for rule in parse_route(obj).rules:
            total = sum(b.weight for b in rule.backends)
            out.append({
                "rule": rule.index,
                "matches": [m.describe() for m in rule.matches],
                "backends": [{"name": b.name, "port": b.port, "weight": b.weight,
                              "percent": round(100 * b.weight / total, 2) if total else 0.0}
                             for b in rule.backends],
                "mirrors": [b.name for b in rule.mirrors],
            })
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary."""
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name,
                "action": self.action, "rulesBefore": self.rules("before"),
                "rulesAfter": self.rules("after"), "after": self.after}


@dataclass
class CommandReview:
    """The verdict on one command: accepted (with the results) or rejected (with why)."""

    command: str
    accepted: bool
    reason: str = ""
    message: str = ""
    hint: str = ""
    tool: str = "kubectl"
    verb: str = ""
    dry_run: str = "none"
    notes: list[str] = field(default_factory=list)
    changes: list[ObjectChange] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    against: str = ""

    @property
    def has_errors(self) -> bool:
        """Rejected, or accepted with a result the reviewer finds errors in (exit 1)."""
        return not self.accepted or any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (``review-command -o json``)."""
        return {
            "command": self.command, "accepted": self.accepted, "reason": self.reason,
            "message": self.message, "hint": self.hint, "tool": self.tool, "verb": self.verb,
            "dryRun": self.dry_run, "notes": self.notes, "checkedAgainst": self.against,
            "changes": [c.to_dict() for c in self.changes],
            "findings": [f.to_dict() for f in self.findings],
        }

    def render(self, width: int = 120) -> str:
        """Readable text: the verdict, the rules before -> after, notes and findings."""
        from rich.console import Console
        from rich.table import Table

        buffer = io.StringIO()
        console = Console(file=buffer, width=width, color_system=None, force_terminal=False,
                          soft_wrap=True)
        if not self.accepted:
            console.print(f"REJECTED: {self.tool} would refuse this command ({self.reason}).")
            console.print(f"  why: {self.message}")
            if self.hint:
                console.print(f"  fix: {self.hint}")
        for change in self.changes:
            console.print(f"ACCEPTED: {change.kind.lower()}/{change.name} {change.action} "
                          f"(applied to a copy of the object from {self.against}; nothing changed)")
            if change.kind != "HTTPRoute":
                continue
            before = {r["rule"]: r for r in change.rules("before")}
            table = Table(title=f"HTTPRoute {change.namespace}/{change.name} after the command")
            for col in ("rule", "matches", "backend", "weight", "share"):
                table.add_column(col)
            for rule in change.rules("after"):
                old = {b["name"]: b for b in before.get(rule["rule"], {}).get("backends", [])}
                rows = rule["backends"] or [{"name": "(none: HTTP 500)", "weight": "", "percent": None}]
                kept = {b["name"] for b in rows}
                rows += [{"name": n, "weight": "(removed)", "percent": None, "removed": True}
                         for n in old if n not in kept]
                for k, b in enumerate(rows):
                    if b.get("removed"):
                        table.add_row("", "", b["name"], f"{old[b['name']]['weight']} -> removed",
                                      f"{percent(old[b['name']]['percent'] / 100)} -> 0%")
                        continue
                    prev = old.get(b["name"])
                    weight, share = str(b["weight"]), "" if b["percent"] is None else \
                        percent(b["percent"] / 100)
                    if prev is not None and prev["weight"] != b["weight"]:
                        weight = f"{prev['weight']} -> {b['weight']}"
                    if prev is not None and prev["percent"] != b["percent"]:
                        share = f"{percent(prev['percent'] / 100)} -> {share}"
                    table.add_row(str(rule["rule"]) if k == 0 else "",
                                  "\n".join(rule["matches"]) if k == 0 else "", b["name"], weight, share)
            console.print(table)
        for note in self.notes:
            console.print(f"note: {note}")
        if self.findings:
            console.print("The resulting route, reviewed:")
            for f in self.findings:
                console.print(f"  {f.severity}: {f.field}: {f.problem}\n    effect: {f.effect}\n"
                              f"    fix: {f.fix}")
        return buffer.getvalue()


# -- parsing -------------------------------------------------------------------------------
def _split(command: str | Sequence[str]) -> list[str]:
    if not isinstance(command, str):
        return list(command)
    try:
        return shlex.split(command)
    except ValueError as exc:
        raise _Reject("shell", f"the shell cannot split this command: {exc}",
                      "wrap the JSON in single quotes: -p '{\"spec\": ...}' (a ' inside it would "
                      "end the quoting)") from exc


def _parse_flags(tokens: list[str]) -> tuple[list[str], dict[str, list[str | None]], list[str]]:
    """kubectl (pflag) parsing: positionals, flag values, and flags kubectl does not know."""
    positional: list[str] = []
    flags: dict[str, list[str | None]] = {}
    unknown: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "--":
            positional.extend(tokens[i:])
            break
        if not token.startswith("-") or token == "-":
            positional.append(token)
            continue
        value: str | None
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            if not eq:
                value = None
        else:
            short = token[1:2]
            name = _SHORT.get(short, "")
            rest = token[2:]
            value = rest[1:] if rest.startswith("=") else (rest or None)
            if not name:
                unknown.append(token)
                continue
        if name not in _FLAGS:
            unknown.append(token)
            continue
        if _FLAGS[name] and value is None:
            if i >= len(tokens):
                raise _Reject("flag", f"flag needs an argument: {token}")
            value = tokens[i]
            i += 1
        flags.setdefault(name, []).append(value)
    return positional, flags, unknown


def _last(flags: dict[str, list[str | None]], name: str, default: str | None = None) -> str | None:
    values = flags.get(name)
    return values[-1] if values else default


def _resource(args: list[str]) -> tuple[KindInfo, str]:
    if not args:
        raise _Reject("resource", "you must specify the type of resource to patch "
                      "(kubectl: error: you must provide one or more resources)",
                      "kubectl patch httproute task-api ...")
    first = args[0]
    if "/" in first:
        type_name, _, name = first.partition("/")
        extra = args[1:]
    else:
        type_name, name = first, (args[1] if len(args) > 1 else "")
        extra = args[2:]
    if extra:
        raise _Reject("resource", f"unexpected arguments {' '.join(extra)!r} after the resource",
                      "a JSON body goes after -p, quoted as one argument")
    try:
        info = resolve_kind(type_name)
    except TrafficLabError as exc:
        raise _Reject("resource", f"error: {exc.message}",
                      "use httproute, httproute/NAME or httproutes.gateway.networking.k8s.io") from exc
    if not name:
        raise _Reject("resource", f"a name is required: {type_name} NAME (or {type_name}/NAME)")
    return info, name


def _decode_patch(text: str, tool: str, notes: list[str]) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        error = exc
    position = (f"{error.msg} at line {error.lineno} column {error.colno} (character "
                f"{error.pos}):\n      {text.splitlines()[error.lineno - 1] if text else ''}\n"
                f"      {' ' * (error.colno - 1)}^")
    looks_unquoted = text.lstrip().startswith(("{", "[")) and '"' not in text and ":" in text
    quote_hint = ("the double quotes are gone: the shell removed them (\"{\"spec\"...}\" ends the "
                  "quoting at each inner \"); wrap the whole patch in single quotes"
                  if looks_unquoted else "check the quotes, commas and brackets")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as yexc:
        raise _Reject("json", f"the patch is not valid JSON: {position}\n    and not YAML either "
                      f"(kubectl reads -p as YAML, then JSON): {getattr(yexc, 'problem', yexc)}",
                      quote_hint) from None
    if tool == "trafficlab":
        raise _Reject("json", f"the patch is not valid JSON: {position}", quote_hint)
    if not isinstance(value, (dict, list)):
        raise _Reject("json", f"the patch is not valid JSON: {position}\n    (as YAML it is a "
                      f"{type(value).__name__}, not an object or a list)", quote_hint)
    notes.append(f"the patch is not strict JSON ({error.msg} at character {error.pos}), but kubectl "
                 "reads -p as YAML, so it takes it; trafficlab patch needs strict JSON"
                 + (f". Likely cause: {quote_hint}" if looks_unquoted else ""))
    if looks_unquoted:
        raise _Unquoted(value, quote_hint)
    return value


class _Unquoted(Exception):
    """The patch decoded only as YAML because the shell ate its quotes; carries the value."""

    def __init__(self, value: Any, hint: str) -> None:
        super().__init__(hint)
        self.value = value
        self.hint = hint


def _user_view(obj: Obj) -> Obj:
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k != "status"}
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for key in _SERVER_FIELDS:
            meta.pop(key, None)
    return out


def _replaced_lists(before: Any, patch: Any, path: str, notes: list[str]) -> None:
    """Merge patches replace lists whole: say so for every list the patch sets."""
    if not isinstance(patch, dict) or not isinstance(before, dict):
        return
    for key, value in patch.items():
        here = f"{path}.{key}" if path else key
        old = before.get(key)
        if isinstance(value, list) and isinstance(old, list):
            notes.append(f"a merge patch replaces the whole list {here} (RFC 7386 has no list "
                         f"merge): it had {len(old)} item{'s' if len(old) != 1 else ''}, now "
                         f"{len(value)}; anything not restated (other backends, ports, matches) "
                         "is gone. To change one weight, use --type=json with a replace op.")
        elif isinstance(value, dict):
            _replaced_lists(old, value, here, notes)


def _route_diff(before: Obj, after: Obj) -> list[str]:
    """What a change drops from a route: rules, matches and backends (easy to lose by accident)."""
    old, new = parse_route(before).rules, parse_route(after).rules
    notes = []
    if len(new) < len(old):
        notes.append(f"the route goes from {len(old)} rules to {len(new)}")
    for rule_old, rule_new in zip(old, new, strict=False):
        gone = sorted({b.name for b in rule_old.backends} - {b.name for b in rule_new.backends})
        if gone:
            notes.append(f"rule {rule_old.index} no longer lists {', '.join(gone)}")
        old_m = [m.describe() for m in rule_old.matches]
        new_m = [m.describe() for m in rule_new.matches]
        if old_m != new_m:
            notes.append(f"rule {rule_old.index} matches changed: {'; '.join(old_m)} -> "
                         f"{'; '.join(new_m)}")
    return notes


def _validate(kind: str, namespace: str, name: str, result: Any, key: tuple[str, str, str]) -> Obj:
    if not isinstance(result, dict):
        raise _Reject("invalid", f"the patched {kind} is not an object")
    meta = result.get("metadata") if isinstance(result.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    if (result.get("kind"), meta.get("namespace", namespace), meta.get("name")) != key:
        raise _Reject("invalid", "a patch cannot change the kind, name or namespace of the object",
                      "create a new object with kubectl apply instead")
    problems = find_problems(result)
    if problems:
        listed = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise _Reject("invalid", f'The {kind} "{name}" is invalid: {listed}{more}',
                      "fix the patch so that the result passes validation")
    return result


# -- the verbs -----------------------------------------------------------------------------
def _current(facts: LabFacts, info: KindInfo, namespace: str, name: str) -> Obj:
    obj = facts.get(info.kind, namespace if info.namespaced else "", name)
    if obj is None:
        where = f" in namespace {namespace}" if info.namespaced else ""
        raise _Reject("not-found", f'Error from server (NotFound): {info.resource} "{name}" not '
                      f"found{where} (checked {facts.source})",
                      "check the name and -n NAMESPACE (kubectl get httproutes -A)")
    return _user_view(obj)


def _patch(review: CommandReview, args: list[str], flags: dict[str, list[str | None]],
           facts: LabFacts) -> None:
    info, name = _resource(args)
    namespace = _last(flags, "namespace", DEFAULT_NAMESPACE) or DEFAULT_NAMESPACE
    if "patch-file" in flags:
        raise _Reject("flag", "--patch-file is not supported by review-command",
                      "pass the patch inline with -p")
    text = _last(flags, "patch")
    if text is None:
        raise _Reject("flag", "error: must specify -p to patch", "add -p '<patch>'")
    patch_type = _last(flags, "type", "strategic") or "strategic"
    if "type" not in flags:
        review.notes.append("no --type: kubectl uses strategic merge patch")
    if patch_type not in _PATCH_TYPES:
        raise _Reject("patch-type", f'error: --type must be one of [json merge strategic], not '
                      f'"{patch_type}"', "use --type=json or --type=merge")
    current = _current(facts, info, namespace, name)
    if patch_type == "strategic" and info.group.endswith("gateway.networking.k8s.io"):
        # Strategic merge patch needs the Go struct's patch metadata, which only built-in kinds
        # have; for custom resources the API server answers 415 UnsupportedMediaType.
        raise _Reject("patch-type",
                      f"Error from server (UnsupportedMediaType): strategic merge patch is not "
                      f"supported for custom resources like {info.kind}: the body of the request "
                      "was in an unknown format - accepted media types include: "
                      "application/json-patch+json, application/merge-patch+json, "
                      "application/apply-patch+yaml",
                      "add --type=merge (an object; lists are replaced whole) or --type=json "
                      "(a list of operations)")
    quote_hint = ""
    try:
        value = _decode_patch(text, review.tool, review.notes)
    except _Unquoted as unquoted:
        value, quote_hint = unquoted.value, unquoted.hint
    if patch_type in ("merge", "strategic"):
        if not isinstance(value, dict):
            raise _Reject("patch-shape", f"a {patch_type} patch is a JSON object, not a "
                          f"{type(value).__name__}",
                          "for a list of operations use --type=json")
        _replaced_lists(current, value, "", review.notes)
        if patch_type == "strategic":
            review.notes.append(f"{info.kind} is a built-in kind: the lab applies strategic "
                                "patches as merge patches (lists replaced whole)")
        result = merge_patch(current, value)
    else:
        try:
            result = apply_json_patch(current, value)
        except PatchError as err:
            raise _Reject(err.code, f"the JSON patch cannot be applied: {err.message}",
                          err.hint or "fix the operation; the whole patch is refused, nothing "
                          "changes") from None
    try:
        after = _validate(info.kind, namespace, name, result, (info.kind, namespace, name))
    except _Reject as rejected:
        if quote_hint:
            rejected.hint = quote_hint
        raise
    if info.kind == "HTTPRoute":
        review.notes.extend(_route_diff(current, after))
    action = "patched" if after != current else "patched (no change)"
    review.changes.append(ObjectChange(info.kind, namespace, name, action, current, after))


def _apply(review: CommandReview, args: list[str], flags: dict[str, list[str | None]],
           facts: LabFacts, base: Path) -> None:
    if args:
        raise _Reject("resource", f"kubectl apply takes files, not resource names ({' '.join(args)})",
                      "kubectl apply -f FILE")
    if "kustomize" in flags:
        raise _Reject("flag", "-k (kustomize) is not supported by review-command", "use -f FILE")
    files = [f for f in flags.get("filename", []) if f]
    if not files:
        raise _Reject("flag", "error: must specify one of -f and -k", "kubectl apply -f FILE")
    flag_ns = _last(flags, "namespace")
    objects: list[Obj] = []
    for f in files:
        if f == "-":
            raise _Reject("file", "-f - reads standard input, which review-command does not have",
                          "save the YAML to a file and pass -f FILE")
        path = Path(f) if Path(f).is_absolute() else base / f
        try:
            objects.extend(load_manifests(path))
        except TrafficLabError as exc:
            raise _Reject("file", f"error: {exc.message}", "check the file name and its YAML") from exc
    for obj in objects:
        kind = str(obj.get("kind", ""))
        info = KINDS.get(kind)
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else None
        if info is None or meta is None:
            problems = find_problems(obj)
            text = "; ".join(str(p) for p in problems) or "not a Kubernetes object"
            raise _Reject("invalid", f"error: {text}", "fix the object's kind and apiVersion")
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        if info.namespaced:
            file_ns = meta.get("namespace")
            if flag_ns and file_ns and file_ns != flag_ns:
                raise _Reject("namespace", f'error: the namespace from the provided object '
                              f'"{file_ns}" does not match the namespace "{flag_ns}". You must '
                              f"pass '--namespace={file_ns}' to perform this operation.",
                              "drop -n or make it match the file")
            meta.setdefault("namespace", flag_ns or DEFAULT_NAMESPACE)
        namespace = str(meta.get("namespace", "")) if info.namespaced else ""
        name = str(meta.get("name", ""))
        problems = find_problems(obj)
        if problems:
            listed = "; ".join(str(p) for p in problems[:5])
            if review.dry_run == "client":
                review.notes.append("kubectl apply --dry-run=client would not catch this: only the "
                                    "API server validates (use --dry-run=server on the cluster)")
            raise _Reject("invalid", f'The {info.kind} "{name}" is invalid: {listed}',
                          "fix the file; nothing is applied")
        before = facts.get(info.kind, namespace, name)
        before = _user_view(before) if before is not None else None
        if before is None:
            action = "created"
        else:
            same = {k: v for k, v in before.items() if k != "metadata"} == \
                {k: v for k, v in obj.items() if k != "metadata"}
            action = "unchanged" if same else "configured"
        review.changes.append(ObjectChange(info.kind, namespace, name, action, before, obj))


def _changes_from_kubectl(review: CommandReview, objects: list[Obj], facts: LabFacts) -> None:
    """The changes as the API server computed them; "before" is the simulation's or the lab's."""
    simulated = {(c.kind, c.namespace, c.name): c.before for c in review.changes}
    changes = []
    for obj in objects:
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        assert isinstance(meta, dict)
        kind, namespace, name = str(obj.get("kind", "")), str(meta.get("namespace", "")), \
            str(meta.get("name", ""))
        key = (kind, namespace, name)
        if key in simulated:
            before = simulated[key]
        else:
            live = facts.get(kind, namespace, name)
            before = _user_view(live) if live is not None else None
        after = _user_view(obj)
        same = before is not None and {k: v for k, v in before.items() if k != "metadata"} == \
            {k: v for k, v in after.items() if k != "metadata"}
        if review.verb == "patch":
            action = "patched (no change)" if same else "patched"
        else:
            action = "created" if before is None else "unchanged" if same else "configured"
        if kind == "HTTPRoute" and before is not None and key not in simulated:
            review.notes.extend(_route_diff(before, after))
        changes.append(ObjectChange(kind, namespace, name, action, before, after))
    review.changes = changes


def _check_with_kubectl(review: CommandReview, runner: KubectlDryRun,
                        parsed: tuple[str, list[str], dict[str, list[str | None]]],
                        facts: LabFacts, cwd: Path) -> None:
    """Let the real kubectl decide, on the server's throw-away copy (``--dry-run=server``)."""
    verb, args, flags = parsed
    outcome = runner.run(kubectl_arguments(verb, args, flags, _FLAGS), cwd=cwd)
    review.against = f"{facts.source}, by the real kubectl with --dry-run=server"
    if not outcome.accepted:
        if review.accepted:
            review.notes.append("review-command's own simulation accepted this command; the real "
                                "kubectl refused it, and kubectl is right")
        review.accepted, review.reason, review.message = False, "kubectl --dry-run=server", \
            outcome.error
        review.changes = []
        return
    if not review.accepted:
        review.notes.append(f"review-command's own simulation refused this command "
                            f"({review.reason}: {review.message}); the real kubectl accepted it")
        review.reason = review.message = review.hint = ""
    review.accepted = True
    _changes_from_kubectl(review, outcome.objects, facts)


def review_command(command: str | Sequence[str], facts: LabFacts | None = None, *,
                   cwd: str | os.PathLike[str] | None = None,
                   kubectl: KubectlDryRun | None = None) -> CommandReview:
    """Review a ``kubectl patch``/``kubectl apply`` (or ``trafficlab`` equivalent) command.

    With ``kubectl``, a kubectl command review-command could parse is also run for real as a
    server dry run against the lab; kubectl's verdict and resulting objects win.
    """
    facts = facts or baseline_facts()
    text = command if isinstance(command, str) else shlex.join(command)
    review = CommandReview(command=text, accepted=False, against=facts.source)
    workdir = Path(cwd) if cwd else Path.cwd()
    parsed: tuple[str, list[str], dict[str, list[str | None]]] | None = None
    try:
        tokens = _split(command)
        if not tokens:
            raise _Reject("not-kubectl", "the command is empty", "kubectl patch httproute task-api ...")
        tool = os.path.basename(tokens[0])
        if tool in ("kubectl", "k", "kubectl.exe"):
            review.tool = "kubectl"
        elif tool == "trafficlab":
            review.tool = "trafficlab"
        else:
            raise _Reject("not-kubectl", f"{tokens[0]!r} is not kubectl (or trafficlab)",
                          "review-command checks kubectl patch and kubectl apply commands")
        positional, flags, unknown = _parse_flags(tokens[1:])
        if not positional:
            raise _Reject("verb", "no command: expected patch or apply")
        review.verb = positional[0]
        if unknown:
            raise _Reject("flag", f"error: unknown flag: {unknown[0]}",
                          f"see '{review.tool} {review.verb} -h' for the flags")
        if review.tool == "kubectl" and review.verb in ("patch", "apply"):
            parsed = (review.verb, positional[1:], flags)
        dry = flags.get("dry-run")
        if dry:
            value = dry[-1]
            if value is None:
                review.notes.append("--dry-run without a value is deprecated in kubectl; write "
                                    "--dry-run=client")
                value = "client"
            if value not in _DRY_RUN:
                raise _Reject("flag", f'error: Invalid dry-run value ({value}). Must be "none", '
                              '"server", or "client".')
            review.dry_run = value
        for name in _IGNORED:
            if name in flags and name not in ("output", "home"):
                review.notes.append(f"--{name} is ignored here: review-command checks against "
                                    f"{facts.source}")
        if review.verb == "patch":
            _patch(review, positional[1:], flags, facts)
        elif review.verb == "apply":
            _apply(review, positional[1:], flags, facts, workdir)
        else:
            raise _Reject("verb", f"review-command checks patch and apply, not {review.verb!r}")
        review.accepted = True
    except _Reject as rejected:
        review.accepted = False
        review.reason, review.message, review.hint = rejected.reason, rejected.message, rejected.hint
    if kubectl is not None and parsed is not None:
        _check_with_kubectl(review, kubectl, parsed, facts, workdir)
    if not review.accepted:
        return review
    if review.dry_run == "none":
        review.notes.append("without --dry-run this command changes the cluster; add "
                            "--dry-run=client to check it first (review-command changed nothing)")
    routes = [("result of the command", c.after) for c in review.changes if c.kind == "HTTPRoute"]
    if routes:
        review.findings = review_objects(routes, facts).findings
    return review
