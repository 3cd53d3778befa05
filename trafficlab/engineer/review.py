"""``trafficlab review``: find what is wrong in an HTTPRoute someone (or something) wrote.

Each finding names the field, the problem, what it does to traffic and the fix. Checks, with the
spec they come from (Gateway API v1.6.1, ``apis/v1/httproute_types.go``):

- ``schema``: what the API server rejects (:func:`trafficlab.resources.find_problems`).
- ``parent-missing`` / ``parent-not-attached`` / ``hostname-mismatch``: parentRefs that name no
  Gateway, listener (``sectionName``, ``port``) or namespace the lab has, or a listener whose
  ``allowedRoutes`` refuses the route; hostnames that do not intersect the listener's.
- ``hostname-unreachable``: the lab's listener takes any hostname, but requests to the lab's URL
  carry ``Host: 127.0.0.1``, so a route limited to other hostnames never sees them.
- ``backend-missing`` / ``backend-port`` / ``backend-kind`` / ``backend-namespace`` /
  ``backend-not-deployed``: a backendRef that does not resolve; "an unresolved backend's share
  gets 500" (BackendRef docs).
- ``rule-no-backend`` / ``weights-all-zero``: a rule that answers every request with 500.
- ``weights-percent``: weights written as percentages that do not add up to 100 ("Weight is not a
  percentage"; the share is weight / sum of weights).
- ``duplicate-match`` / ``match-shadowed``: a match no request can reach because a match with
  higher precedence is equal or broader (across rules and routes, in the spec's precedence).
- ``order-tiebreak`` (info): two rules whose matches tie on every precedence criterion, so only
  rule order decides for requests both match.
- ``path-misses`` / ``no-default``: path matches that leave the Task API's paths (``/tasks``,
  ``/tasks/{id}``) to the gateway's 404, or a route whose every rule needs a header.
- ``header-name`` / ``header-value-case`` / ``header-confused``: header matches that are likely
  meant to be the lab's ``x-user-type: beta`` or ``x-user-tier: premium`` but are not (values are
  case-sensitive, names are not).

Each file is reviewed as one change to the lab: its routes compete (in precedence) with each
other and with the lab's routes it does not replace, not with routes in other files, so a folder
of alternative answers is reviewed file by file. Facts come from the running lab or, without
one, from ``cluster/manifests`` (:mod:`trafficlab.engineer.facts`).

>>> report = review_objects([("<text>", {"apiVersion": "gateway.networking.k8s.io/v1",
...     "kind": "HTTPRoute", "metadata": {"name": "task-api"},
...     "spec": {"parentRefs": [{"name": "task-api-gateway"}], "rules": [{"backendRefs": [
...         {"name": "task-api-v1", "port": 80, "weight": 100},
...         {"name": "task-api-v2", "port": 80, "weight": 10}]}]}})])
>>> [(f.code, f.field) for f in report.findings]
[('weights-percent', 'spec.rules[0].backendRefs')]
"""

from __future__ import annotations

import copy
import difflib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from trafficlab._errors import TrafficLabError
from trafficlab.engineer.facts import (
    DEFAULT_NAMESPACE,
    FIXED_SERVICES,
    KNOWN_HEADERS,
    TASK_API_OTHER_PATHS,
    TASK_API_PATHS,
    LabFacts,
    baseline_facts,
)
from trafficlab.engineer.model import (
    Backend,
    Match,
    Route,
    Rule,
    covers,
    equivalent,
    may_overlap,
    parse_route,
    path_matches,
    percent,
    precedence_key,
)
from trafficlab.engineer.translated import TranslatorVerdict, translator_verdict
from trafficlab.manifests import parse_manifests
from trafficlab.resources import GATEWAY_GROUP, KINDS, find_problems

__all__ = ["CODES", "SEVERITIES", "Finding", "ReviewReport", "review_objects", "review_paths",
           "review_route"]

Obj = dict[str, Any]
SEVERITIES = ("error", "warning", "info")
_SUFFIXES = (".yaml", ".yml", ".json")

#: Every finding code, with what it means (for documentation and the grader's README).
CODES: dict[str, str] = {
    "file": "the file cannot be read or parsed",
    "schema": "the API server rejects the object",
    "parent-missing": "the route names no parent Gateway",
    "parent-not-attached": "a parentRef does not attach to any listener of the lab",
    "hostname-mismatch": "the route's hostnames do not intersect the listener's hostname",
    "hostname-unreachable": "requests to the lab's URL never carry the route's hostnames",
    "backend-missing": "a backendRef names a Service that does not exist",
    "backend-not-deployed": "a backendRef names a lab Service that is not deployed yet",
    "backend-port": "a backendRef names a port the Service does not have",
    "backend-kind": "a backendRef is not a Service",
    "backend-namespace": "a backendRef points to another namespace without a ReferenceGrant",
    "backend-unresolved": "the lab's translator cannot resolve a backendRef (its own message)",
    "rule-no-backend": "a rule has no backendRefs: it answers 500",
    "weights-all-zero": "every weight of a rule is 0: it answers 500",
    "weights-percent": "weights look like percentages but do not add up to 100",
    "duplicate-match": "a match repeats an earlier one and can never be reached",
    "match-shadowed": "a match is hidden by an equal or broader match with higher precedence",
    "order-tiebreak": "two rules tie on precedence; only rule order decides",
    "path-misses": "a path match misses the Task API's paths",
    "no-default": "requests without the route's headers match no rule (404)",
    "header-name": "a header name looks like a misspelt lab header",
    "header-value-case": "a header value differs from the lab's only in case",
    "header-confused": "x-user-type and x-user-tier are mixed up",
}


@dataclass(frozen=True)
class Finding:
    """One problem, where it is, what it does to traffic, and how to fix it."""

    severity: str
    code: str
    field: str
    problem: str
    effect: str
    fix: str
    route: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, str]:
        """A JSON-safe copy."""
        return asdict(self)


@dataclass
class ReviewReport:
    """All findings of one review, in file order, with what was reviewed against what."""

    findings: list[Finding] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    facts_source: str = ""

    def count(self, severity: str) -> int:
        """How many findings have ``severity``."""
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def has_errors(self) -> bool:
        """Whether any finding is an error (the CLI then exits 1)."""
        return self.count("error") > 0

    def summary(self) -> str:
        """``2 errors, 1 warning, 0 notes in 3 routes (checked against ...)``."""
        def n(count: int, word: str) -> str:
            return f"{count} {word}{'' if count == 1 else 's'}"
        return (f"{n(self.count('error'), 'error')}, {n(self.count('warning'), 'warning')}, "
                f"{n(self.count('info'), 'note')} in {n(len(self.routes), 'route')} "
                f"(checked against {self.facts_source})")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (``trafficlab review -o json``)."""
        return {
            "ok": not self.has_errors,
            "counts": {s: self.count(s) for s in SEVERITIES},
            "routes": self.routes, "files": self.files, "checkedAgainst": self.facts_source,
            "findings": [f.to_dict() for f in self.findings],
        }

    def table(self) -> Any:
        """A rich Table of the findings."""
        from rich.table import Table

        table = Table(show_lines=True, title="Review of " + (", ".join(self.routes) or "no route"))
        table.add_column("", no_wrap=True)
        table.add_column("Where", overflow="fold", max_width=46)
        table.add_column("Problem", overflow="fold")
        table.add_column("Effect on traffic", overflow="fold")
        table.add_column("Fix", overflow="fold")
        style = {"error": "bold red", "warning": "yellow", "info": "cyan"}
        for f in self.findings:
            where = "\n".join(x for x in (f.source, f.route, f.field) if x)
            table.add_row(f"[{style[f.severity]}]{f.severity}[/]", where, f.problem, f.effect, f.fix)
        return table

    def render(self, width: int | None = None) -> str:
        """The table as plain text, for terminals and logs (at least 100 columns wide)."""
        import shutil

        from rich.console import Console

        width = width or max(100, shutil.get_terminal_size((140, 24)).columns)

        if not self.findings:
            return f"No problems found: {self.summary()}\n"
        buffer = io.StringIO()
        console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
        console.print(self.table())
        return buffer.getvalue()


# -- entry points --------------------------------------------------------------------------
def review_paths(paths: Sequence[str | Path], facts: LabFacts | None = None) -> ReviewReport:
    """Review every HTTPRoute in files and folders (``.yaml``, ``.yml``, ``.json``)."""
    items: list[tuple[str, Obj]] = []
    problems: list[Finding] = []
    files: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
            if not found:
                problems.append(_file_problem(str(path), "the folder has no .yaml, .yml or .json file"))
        elif path.is_file():
            found = [path]
        else:
            problems.append(_file_problem(str(path), "no such file or folder"))
            found = []
        for f in found:
            files.append(str(f))
            try:
                items.extend((str(f), obj) for obj in parse_manifests(f.read_text(), str(f)))
            except (TrafficLabError, OSError, UnicodeDecodeError) as exc:
                problems.append(_file_problem(str(f), getattr(exc, "message", str(exc))))
    report = review_objects(items, facts)
    report.findings[:0] = problems
    report.files = files
    return report


def review_route(obj: Obj, facts: LabFacts | None = None) -> list[Finding]:
    """The findings for one object (a convenience for tests and notebooks)."""
    return review_objects([("", obj)], facts).findings


def review_objects(items: Iterable[tuple[str, Obj]], facts: LabFacts | None = None) -> ReviewReport:
    """Review objects (each with the file it came from) against the lab's facts."""
    facts = facts or baseline_facts()
    items = list(items)
    findings: list[Finding] = []
    extra = []
    rejected: set[int] = set()
    for index, (source, obj) in enumerate(items):
        if not isinstance(obj, dict):
            findings.append(_file_problem(source, "a document is not an object"))
            continue
        problems = _schema(source, obj)
        findings.extend(problems)
        if problems:
            rejected.add(index)
        elif obj.get("kind") == "Service":
            extra.append(_namespaced(obj))  # a new version's Service, applied with its route
    facts = facts.with_objects(extra)
    routes: list[Route] = []
    attached: list[Route] = []
    for index, (source, obj) in enumerate(items):
        if not isinstance(obj, dict) or obj.get("kind") != "HTTPRoute":
            continue
        # Not created yet: the newest of all routes when precedence breaks ties by age.
        route = replace(parse_route(_namespaced(obj), source), created="")
        routes.append(route)
        verdict = translator_verdict(_namespaced(obj), facts) if index not in rejected else None
        parent_findings, ok = _parents(route, facts, verdict)
        findings.extend(parent_findings)
        if ok and index not in rejected:
            # A rejected route changes nothing: the lab keeps the route it had, so only
            # accepted ones take part in precedence and path coverage.
            attached.append(route)
        findings.extend(_hostnames(route, facts, ok))
        findings.extend(_backends(route, facts, verdict))
        findings.extend(_weights(route))
        findings.extend(_headers(route))
    findings.extend(_precedence(attached, facts))
    findings.extend(_paths(attached, facts))
    order = {source: i for i, (source, _) in reversed(list(enumerate(items)))}
    findings = sorted(_dedupe(findings), key=lambda f: order.get(f.source, -1))
    return ReviewReport(findings=findings, routes=[r.id for r in routes], facts_source=facts.source)


# -- helpers -------------------------------------------------------------------------------
def _file_problem(source: str, text: str) -> Finding:
    return Finding("error", "file", "", text, "nothing in this file can be applied",
                   "fix the file so that it parses (check the indentation)", source=source)


def _namespaced(obj: Obj) -> Obj:
    """A copy with the namespace kubectl would use (``default``) when the file has none."""
    out = copy.deepcopy(obj)
    info = KINDS.get(str(out.get("kind")))
    meta = out.get("metadata")
    if info is not None and info.namespaced and isinstance(meta, dict):
        meta.setdefault("namespace", DEFAULT_NAMESPACE)
    return out


def _route_id(obj: Obj) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    name = meta.get("name")
    if not isinstance(name, str):
        return ""
    return f"{meta.get('namespace') or DEFAULT_NAMESPACE}/{name}"


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str, str]] = set()
    out = []
    for f in findings:
        key = (f.source, f.route, f.field, f.code)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _schema_fix(field: str, message: str) -> str:
    if '"Prefix"' in message:
        return 'use type "PathPrefix" (Gateway API has no "Prefix"; that is the Ingress spelling)'
    if "ImplementationSpecific" in message:
        return 'use "PathPrefix", "Exact" or "RegularExpression"'
    if field.endswith(".weight"):
        return "write the weight as a plain whole number (no quotes, no %): 90, 10"
    if "unknown field" in message:
        return "remove or rename the field (see the hint)"
    if "Required value" in message:
        return f"add {field}"
    return f"change {field} as the message says" if field else "fix the object as the message says"


def _schema(source: str, obj: Obj) -> list[Finding]:
    kind = obj.get("kind")
    out = []
    for p in find_problems(_namespaced(obj)):
        out.append(Finding(
            "error", "schema", p.field, p.message,
            f"the API server rejects the {kind if isinstance(kind, str) else 'object'}: "
            "kubectl apply fails for it and traffic stays as it was "
            "(trafficlab apply applies nothing from the file)",
            _schema_fix(p.field, p.message), _route_id(obj), source))
    return out


def _find(route: Route, severity: str, code: str, field: str, problem: str, effect: str,
          fix: str) -> Finding:
    return Finding(severity, code, field, problem, effect, fix, route.id, route.source)


def _replaces_live(route: Route, facts: LabFacts) -> bool:
    return any(_route_id(r) == route.id for r in facts.routes)


# -- parentRefs and hostnames --------------------------------------------------------------
def _parents(route: Route, facts: LabFacts,
             verdict: TranslatorVerdict | None = None) -> tuple[list[Finding], bool]:
    """Whether each parentRef attaches is the translator's verdict (when it has one); the
    explanation and the fix are the reviewer's."""
    gateways = sorted({(x.namespace, x.gateway) for x in facts.listeners})
    if not route.parent_refs:
        return [_find(route, "error", "parent-missing", "spec.parentRefs",
                      "the route has no parentRefs, so it attaches to no Gateway",
                      _detached_effect(route, facts),
                      "add parentRefs: [{name: task-api-gateway, sectionName: http}]")], False
    problems: list[tuple[str, str, str]] = []
    ok = False
    for i, ref in enumerate(route.parent_refs):
        if verdict is not None and verdict.attached(i):
            problem = None
        else:
            problem = _parent_problem(route, i, ref, facts, gateways)
            refusal = verdict.refusal(i) if verdict is not None else None
            if problem is None and refusal is not None:
                problem = (f"spec.parentRefs[{i}]", refusal[1],
                           f"the Gateway's listeners refuse it ({refusal[0]}): see the route's "
                           "status with kubectl get httproute -o yaml")
        if problem is None:
            ok = True
        else:
            problems.append(problem)
    out = []
    for where, text, fix in problems:
        if ok:
            out.append(_find(route, "warning", "parent-not-attached", where, text,
                             "this parentRef adds nothing; the route is served through its other "
                             "parentRefs", fix))
        elif where == "spec.hostnames":
            out.append(_find(route, "error", "hostname-mismatch", where, text,
                             _detached_effect(route, facts), fix))
        else:
            out.append(_find(route, "error", "parent-not-attached", where, text,
                             _detached_effect(route, facts), fix))
    return out, ok


def _detached_effect(route: Route, facts: LabFacts) -> str:
    if _replaces_live(route, facts):
        return (f"applying it replaces HTTPRoute {route.id} with a route attached to no listener: "
                "its requests get 404 from the gateway")
    return "the route attaches to no listener, so none of its rules ever gets a request"


def _parent_problem(route: Route, i: int, ref: Obj, facts: LabFacts,
                    gateways: list[tuple[str, str]]) -> tuple[str, str, str] | None:
    at = f"spec.parentRefs[{i}]"
    kind, group = ref.get("kind", "Gateway"), ref.get("group", GATEWAY_GROUP)
    if kind != "Gateway" or group != GATEWAY_GROUP:
        return (f"{at}.kind", f"the parent is a {group}/{kind}, not a Gateway",
                "remove kind and group (they default to Gateway)")
    name = str(ref.get("name", ""))
    ns = str(ref.get("namespace") or route.namespace)
    if (ns, name) not in gateways:
        elsewhere = [g for g in gateways if g[1] == name]
        if elsewhere:
            gw_ns = elsewhere[0][0]
            if "namespace" in ref:
                return (f"{at}.namespace", f"Gateway {name} is in namespace {gw_ns}, not {ns}",
                        f"set namespace: {gw_ns}, or remove it (the route's own namespace)")
            return ("metadata.namespace",
                    f"the route is in namespace {route.namespace} and its parentRef has no "
                    f"namespace, so it looks for Gateway {name} in {route.namespace}; the Gateway "
                    f"is in {gw_ns}",
                    f"put the route in namespace {gw_ns}")
        in_ns = sorted(g[1] for g in gateways if g[0] == ns) or sorted(g[1] for g in gateways)
        close = difflib.get_close_matches(name, in_ns, n=1, cutoff=0.3)
        suggestion = close[0] if close else "task-api-gateway"
        return (f"{at}.name", f"there is no Gateway {ns}/{name}; the lab has "
                f"{', '.join(f'{n}/{g}' for n, g in gateways) or 'none'}",
                f"set name: {suggestion}")
    listeners = [x for x in facts.listeners if (x.namespace, x.gateway) == (ns, name)]
    have = ", ".join(f"{x.name} (port {x.port})" for x in listeners)
    section = ref.get("sectionName")
    if section is not None:
        listeners = [x for x in listeners if x.name == section]
        if not listeners:
            return (f"{at}.sectionName", f"Gateway {ns}/{name} has no listener named "
                    f"{section!r}; its listeners are {have}",
                    "set sectionName: http, or remove it to attach to every listener")
    port = ref.get("port")
    if port is not None:
        listeners = [x for x in listeners if x.port == port]
        if not listeners:
            return (f"{at}.port", f"Gateway {ns}/{name} has no listener on port {port} "
                    f"{'named ' + repr(section) + ' ' if section else ''}; its listeners are {have}",
                    "set port: 80 (the listener's port, not the Service's), or remove it")
    allowed = [x for x in listeners if x.allowed_from == "All"
               or (x.allowed_from == "Same" and x.namespace == route.namespace)
               or x.allowed_from == "Selector"]
    if not allowed:
        return ("metadata.namespace", f"listener(s) {', '.join(x.name for x in listeners)} of "
                f"Gateway {ns}/{name} take routes from namespace {ns} only "
                "(allowedRoutes.namespaces.from: Same)", f"put the route in namespace {ns}")
    if route.hostnames and not any(_intersects(x.hostname, route.hostnames) for x in allowed):
        names = ", ".join(f"{x.name} ({x.hostname})" for x in allowed)
        return ("spec.hostnames", f"none of {', '.join(route.hostnames)} matches the hostname of "
                f"listener {names}", "use the listener's hostname, or remove spec.hostnames")
    return None


def _host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host.count(".") >= pattern.count(".")
    return pattern == host


def _intersects(listener: str | None, hostnames: Sequence[str]) -> bool:
    if not listener:
        return True
    return any(_host_matches(listener, h) or _host_matches(h, listener) for h in hostnames)


def _hostnames(route: Route, facts: LabFacts, attached: bool) -> list[Finding]:
    # The lab's listener has no hostname, so the route attaches; but requests sent to the lab's
    # URL carry Host 127.0.0.1 (Envoy ignores the port), which none of these names match.
    if not attached or not route.hostnames or "*" in route.hostnames:
        return []
    open_listeners = [x for x in facts.listeners if not x.hostname]
    if not open_listeners:
        return []
    return [_find(route, "error", "hostname-unreachable", "spec.hostnames",
                  f"the route only answers requests for {', '.join(route.hostnames)}",
                  "requests to the lab's URL (http://127.0.0.1:PORT) carry Host: 127.0.0.1 and get "
                  "404 from this route; only requests sent with a matching Host header reach it",
                  "remove spec.hostnames (the lab's listener takes every hostname), or send "
                  f"requests with -H 'Host: {route.hostnames[0]}'")]


# -- backends and weights ------------------------------------------------------------------
def _share_text(rule: Rule, backend: Backend) -> str:
    total = sum(b.weight for b in rule.backends)
    if backend.weight == 0 or total == 0:
        return ""
    return percent(backend.weight / total)


def _granted(facts: LabFacts, from_ns: str, to_ns: str, name: str) -> bool:
    for grant in facts.of_kind("ReferenceGrant"):
        if (grant.get("metadata") or {}).get("namespace") != to_ns:
            continue
        spec = grant.get("spec") or {}
        ok_from = any(f.get("kind") == "HTTPRoute" and f.get("namespace") == from_ns
                      for f in spec.get("from") or [])
        ok_to = any(t.get("kind") == "Service" and t.get("name") in (None, "", name)
                    for t in spec.get("to") or [])
        if ok_from and ok_to:
            return True
    return False


def _backends(route: Route, facts: LabFacts,
              verdict: TranslatorVerdict | None = None) -> list[Finding]:
    """Whether a backendRef resolves is the translator's verdict (when it has one)."""
    out = []
    for rule in route.rules:
        for backend in (*rule.backends, *rule.mirrors):
            mirror = backend in rule.mirrors
            share = _share_text(rule, backend)
            if mirror:
                effect = "no request is mirrored there"
            elif share:
                effect = (f"its {share} share of the requests rule {rule.index} matches gets "
                          "HTTP 500")
            else:
                effect = ("it has weight 0, so no request is affected now; raising its weight "
                          "later sends HTTP 500s")
            severity = "error" if (mirror or share) else "warning"
            unresolved = verdict.reference_problem(backend.field) if verdict else None
            if verdict is not None and unresolved is None:
                continue
            problem = _backend_problem(route, backend, facts)
            if problem is None and unresolved is not None:
                problem = ("backend-unresolved", backend.field, unresolved,
                           "fix the reference as the message says")
            if problem is not None:
                code, where, text, fix = problem
                out.append(_find(route, severity, code, where, text, effect, fix))
    return out


def _backend_problem(route: Route, b: Backend, facts: LabFacts) -> tuple[str, str, str, str] | None:
    if b.group or b.kind != "Service":
        return ("backend-kind", f"{b.field}.kind",
                f"the backend is a {b.group + '/' if b.group else ''}{b.kind}, not a Service",
                "remove kind and group (they default to a Service)")
    ns = b.namespace or route.namespace
    if ns != route.namespace and not _granted(facts, route.namespace, ns, b.name):
        return ("backend-namespace", f"{b.field}.namespace",
                f"Service {ns}/{b.name} is in another namespace and no ReferenceGrant allows it",
                f"remove namespace (the lab's Services are in {route.namespace}) or add a "
                "ReferenceGrant")
    ports = facts.service_ports(ns, b.name)
    if ports is None:
        if b.name in facts.workload_files:
            where = facts.workload_files[b.name]
            lab = "the running lab" if facts.running else "the lab until its manifest is applied"
            return ("backend-not-deployed", f"{b.field}.name",
                    f"Service {ns}/{b.name} is defined in {where} but is not in {lab}",
                    f"deploy it first: trafficlab apply -f {where}")
        names = sorted(set(facts.service_names(ns)) | set(FIXED_SERVICES))
        close = difflib.get_close_matches(b.name, names, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]}? " if close else ""
        return ("backend-missing", f"{b.field}.name",
                f"there is no Service {ns}/{b.name}; the lab's Services are {', '.join(names)}",
                f"{hint}use one of the lab's Services, or create the Service (and its Deployment) "
                "first")
    if b.port is not None and b.port not in ports:
        have = ", ".join(str(p) for p in ports)
        hint = " (8000 is the container's port; a backendRef names the Service's port)" \
            if b.port == 8000 else ""
        return ("backend-port", f"{b.field}.port",
                f"Service {ns}/{b.name} has no port {b.port}; it has {have}{hint}",
                f"set port: {ports[0] if ports else 80}")
    return None


def _percent_like(weights: list[int]) -> bool:
    nonzero = [w for w in weights if w > 0]
    total = sum(weights)
    if len(nonzero) < 2 or total == 100 or max(weights) > 100:
        return False
    if len(set(nonzero)) == 1 and len(nonzero) == len(weights):
        return False  # equal weights: an even split whatever the numbers
    if total > 100:
        return True
    return total >= 50 and all(w % 5 == 0 for w in weights)


def _weights(route: Route) -> list[Finding]:
    out = []
    for rule in route.rules:
        where = f"{rule.field}.backendRefs"
        if not rule.has_backend_refs:
            if rule.redirect:
                continue
            out.append(_find(route, "error", "rule-no-backend", where,
                             f"rule {rule.index} has no backendRefs",
                             f"every request it matches ({_describe(rule)}) gets HTTP 500",
                             "add backendRefs: [{name: task-api-v1, port: 80}] (or the Service "
                             "these requests are for)"))
            continue
        if not all(b.valid_weight for b in rule.backends):
            continue  # reported as a schema error; the shares cannot be known
        weights = [b.weight for b in rule.backends]
        if weights and sum(weights) == 0:
            out.append(_find(route, "error", "weights-all-zero", where,
                             f"every backendRef of rule {rule.index} has weight 0",
                             f"weight 0 means no traffic, so there is nowhere to send the "
                             f"requests it matches ({_describe(rule)}): they get HTTP 500",
                             "give the backend that should serve a weight above 0 "
                             "(100 for all traffic)"))
            continue
        if _percent_like(weights):
            total = sum(weights)
            got = " and ".join(f"{b.name} {percent(b.weight / total)}" for b in rule.backends)
            meant = " and ".join(f"{b.weight}%" for b in rule.backends)
            fix = "make them add up to 100"
            smallest = min((b for b in rule.backends if b.weight), key=lambda b: b.weight)
            if len(rule.backends) == 2 and smallest.weight < 100:
                other = next(b for b in rule.backends if b is not smallest)
                fix = (f"for {smallest.weight}% to {smallest.name}: {other.name} "
                       f"{100 - smallest.weight} and {smallest.name} {smallest.weight} "
                       f"(any ratio {100 - smallest.weight}:{smallest.weight} works)")
            out.append(_find(route, "warning", "weights-percent", where,
                             f"the weights {':'.join(str(w) for w in weights)} look like "
                             f"percentages but add up to {total}; a weight is not a percentage, "
                             "the share is weight / sum of weights",
                             f"{got} of the requests rule {rule.index} matches, not {meant}",
                             fix))
    return out


def _describe(rule: Rule) -> str:
    return "; ".join(m.describe() for m in rule.matches)


# -- headers -------------------------------------------------------------------------------
def _squash(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def _close_header(name: str) -> str | None:
    best, score = None, 0.0
    for known in KNOWN_HEADERS:
        if _squash(name) == _squash(known):
            return known
        ratio = difflib.SequenceMatcher(None, name, known).ratio()
        if ratio >= 0.8 and ratio > score:
            best, score = known, ratio
    return best


def _headers(route: Route) -> list[Finding]:
    out = []
    for match in route.matches():
        for (name, value, kind), where in zip(match.headers, match.header_fields, strict=True):
            if name in KNOWN_HEADERS:
                expected = KNOWN_HEADERS[name]
                if kind != "Exact" or value == expected:
                    continue
                other = next((n for n, v in KNOWN_HEADERS.items() if v == value.lower() and n != name),
                             None)
                if value.lower() == expected:
                    out.append(_find(
                        route, "warning", "header-value-case", f"{where}.value",
                        f"the value {value!r} differs from the lab's {expected!r} in case only; "
                        "header values match case-sensitively (names do not)",
                        f"requests with {name}: {expected} do not match rule {match.rule}; "
                        "they go wherever requests without the header go",
                        f"set value: {expected}"))
                elif other is not None:
                    out.append(_find(
                        route, "warning", "header-confused", f"{where}.name",
                        f"{name} carries {expected!r} in the lab; {value!r} users send "
                        f"{other}: {KNOWN_HEADERS[other]}",
                        f"no {value} user matches rule {match.rule}; they go wherever requests "
                        "without the header go",
                        f"set name: {other}"))
                continue
            close = _close_header(name)
            if close is not None:
                out.append(_find(
                    route, "warning", "header-name", f"{where}.name",
                    f"{name!r} is not the lab's header {close!r}",
                    f"clients send {close}: {KNOWN_HEADERS[close]}, which this match never sees, so "
                    f"rule {match.rule} gets none of those requests",
                    f"set name: {close}"))
    return out


# -- precedence: duplicates, shadowing, ties -----------------------------------------------
@dataclass(frozen=True)
class _Entry:
    route: Route
    rule: Rule
    match: Match
    key: tuple[Any, ...]
    reviewed: bool


def _groups(route: Route, attached: list[Route],
            facts: LabFacts) -> dict[tuple[str, ...], list[_Entry]]:
    """The matches that compete with ``route``'s for the same requests, by hostname set, in
    precedence order.

    Each file is reviewed as one change to the lab: the competitors are the other routes of
    the same file and the lab's routes that the file does not replace (same namespace/name).
    Routes from other files do not compete, so a folder of alternative answers (say, several
    versions of task-api) is reviewed one file at a time.
    """
    others: dict[str, Route] = {}
    for r in attached:
        if r.source == route.source and r.id != route.id:
            others[r.id] = r
    live = [parse_route(r) for r in facts.routes
            if _route_id(r) != route.id and _route_id(r) not in others]
    groups: dict[tuple[str, ...], list[_Entry]] = {}
    members = [*((r, False) for r in live), *((r, True) for r in others.values()), (route, True)]
    for member, reviewed in members:
        hosts = tuple(sorted(member.hostnames)) or ("*",)
        for rule in member.rules:
            for match in rule.matches:
                groups.setdefault(hosts, []).append(
                    _Entry(member, rule, match, precedence_key(match, member), reviewed))
    for entries in groups.values():
        entries.sort(key=lambda e: e.key)
    return groups


def _target_text(rule: Rule) -> str:
    shares = rule.shares()
    if rule.redirect:
        return "a redirect"
    if not shares:
        return "HTTP 500"
    return ", ".join(f"{n} {percent(s)}" for n, s in shares.items() if s > 0)


def _precedence(attached: list[Route], facts: LabFacts) -> list[Finding]:
    out = []
    for route in attached:
        for entries in _groups(route, attached, facts).values():
            for pos, entry in enumerate(entries):
                if entry.route is not route:
                    continue
                winner = next((e for e in entries[:pos] if covers(e.match, entry.match)), None)
                if winner is not None:
                    out.append(_shadowed(entry, winner))
                    continue
                tie = next((e for e in entries[:pos] if e.route is route
                            and e.rule.index != entry.rule.index and e.key[:5] == entry.key[:5]
                            and may_overlap(e.match, entry.match)
                            and e.rule.target() != entry.rule.target()), None)
                if tie is not None:
                    out.append(_tiebreak(entry, tie))
    return out


def _shadowed(entry: _Entry, winner: _Entry) -> Finding:
    route, match = entry.route, entry.match
    same_target = winner.rule.target() == entry.rule.target()
    severity = "warning" if same_target else "error"
    there = (f"rule {winner.rule.index}" if winner.route is route
             else f"HTTPRoute {winner.route.id}, rule {winner.rule.index}")
    lost = (f"requests matching it go to {_target_text(winner.rule)} ({there}), "
            f"never to {_target_text(entry.rule)} (rule {entry.rule.index} here)")
    if same_target:
        lost = "no effect on traffic (both send the requests to the same place), but it misleads"
    if winner.route is not route:
        why = ("it is older, and ties between routes go to the oldest route"
               if not winner.reviewed else
               "ties between new routes go to the first in alphabetical order of namespace/name")
        return _find(route, severity, "match-shadowed", match.field,
                     f"HTTPRoute {winner.route.id} has the match {winner.match.describe()}, equal "
                     f"or broader than this one ({match.describe()}), and wins: {why}",
                     lost if same_target else f"this route gets none of these requests: {lost}",
                     f"edit HTTPRoute {winner.route.id} instead (metadata.name: {winner.route.name}), "
                     "or make this match more specific")
    if equivalent(winner.match, match):
        where = ("in the same rule" if winner.rule is entry.rule
                 else f"in rule {winner.rule.index}")
        return _find(route, severity if winner.rule is not entry.rule else "warning",
                     "duplicate-match", match.field,
                     f"this match ({match.describe()}) matches exactly the same requests as "
                     f"{winner.match.field} ({winner.match.describe()}) {where}, which has "
                     "precedence",
                     lost if winner.rule is not entry.rule else
                     "no effect on traffic; the copy is dead weight",
                     "remove one of the two, or make them differ (a header, a longer path)")
    return _find(route, severity, "match-shadowed", match.field,
                 f"{winner.match.field} ({winner.match.describe()}) is equal or broader and comes "
                 f"first in precedence, so this match ({match.describe()}) is never used",
                 lost, "remove the broader match, or make this one more specific than it "
                 "(precedence: Exact path, longer prefix, method, more headers, more query params)")


def _tiebreak(entry: _Entry, tie: _Entry) -> Finding:
    return _find(
        entry.route, "info", "order-tiebreak", entry.match.field,
        f"this match ({entry.match.describe()}) and {tie.match.field} ({tie.match.describe()}) tie "
        "on every precedence criterion (path type and length, method, number of headers and of "
        "query params); only then does rule order decide",
        f"a request matching both goes to {_target_text(tie.rule)} (rule {tie.rule.index}, "
        "first in the list); precedence comes from the matches, and order only breaks exact ties",
        "if both conditions together should go elsewhere, add a rule matching both (more headers "
        "wins)")


# -- paths ---------------------------------------------------------------------------------
def _winner(entries: list[_Entry], path: str) -> _Entry | None:
    """The match a plain GET to ``path`` (no special headers) ends up on, in precedence order."""
    for e in entries:
        if e.match.plain and path_matches(e.match, path):
            return e
    return None


def _misses(match: Match) -> bool:
    if not match.has_path or match.path_type == "RegularExpression":
        return False
    if any(path_matches(match, p) for p in TASK_API_PATHS):
        return False
    return match.path_value.rstrip("/") not in {p.rstrip("/") for p in TASK_API_OTHER_PATHS} | {""}


def _paths(attached: list[Route], facts: LabFacts) -> list[Finding]:
    out = []
    for route in attached:
        if route.hostnames:
            continue  # requests to the lab's URL never reach it (hostname-unreachable)
        entries = _groups(route, attached, facts).get(("*",), [])
        missing = [p for p in TASK_API_PATHS if _winner(entries, p) is None]
        explained = False
        for match in route.matches():
            if not _misses(match):
                continue
            effect = (f"no Task API path is under {match.path_value} (it serves /tasks and "
                      f"/tasks/{{id}}), so rule {match.rule} gets no Task API request")
            if match.path_type == "PathPrefix" and any(p.startswith(match.path_value)
                                                       for p in TASK_API_PATHS):
                effect += (f"; PathPrefix matches whole path segments, so {match.path_value} "
                           "does not match /tasks")
            if missing:
                effect += "; " + _missing_text(missing)
                explained = True
            out.append(_find(route, "error" if missing else "warning", "path-misses",
                             f"{match.field}.path",
                             f"the path match {match.path_type} {match.path_value} misses the "
                             "Task API's paths", effect,
                             "use PathPrefix / (every path) or PathPrefix /tasks"))
        if missing and not explained:
            found = _explain_missing(missing, route)
            if found is not None:
                out.append(found)
    return out


def _missing_text(missing: list[str]) -> str:
    shown = " and ".join("GET " + p.replace("/1", "/{id}") for p in missing)
    verb = "matches" if len(missing) == 1 else "match"
    return f"{shown} {verb} no rule and get{'s' if len(missing) == 1 else ''} 404 from the gateway"


def _explain_missing(missing: list[str], route: Route) -> Finding:
    path = missing[0]
    shown = path.replace("/1", "/{id}")
    for match in route.matches():
        if match.path_type == "Exact" and match.has_path and (
                match.path_value == "/" or path.startswith(match.path_value.rstrip("/") + "/")):
            return _find(route, "error", "path-misses", f"{match.field}.path",
                         f"Exact {match.path_value} matches that one path only, not {shown}",
                         _missing_text(missing),
                         f"use PathPrefix {'/' if match.path_value == '/' else match.path_value}")
    for match in route.matches():
        if not match.plain and path_matches(match, path):
            needs = ", ".join(f"{n}: {v}" for n, v, _ in match.headers) or "its conditions"
            return _find(route, "error", "no-default", "spec.rules",
                         f"every rule needs a header or other condition ({needs}); there is no "
                         "rule for everyone else",
                         f"requests without {needs} match no rule and get 404 from the gateway",
                         "add a rule without matches (it matches every request) that sends them "
                         "to task-api-v1")
    return _find(route, "error", "path-misses", "spec.rules", f"no rule matches GET {shown}",
                 _missing_text(missing), "add a rule matching PathPrefix / (a rule without "
                 "matches does)")
