"""HTTPRoutes reduced to what traffic depends on: matches, backends and their shares.

The reviewer reads files people wrote, which may break the schema; everything here is
defensive (a malformed item is skipped, never raised on) and applies the CRD defaults itself:
a rule without matches matches ``PathPrefix /``, a path without type is ``PathPrefix``, a
header or query match without type is ``Exact``, a backendRef without weight has weight 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trafficlab.gateway.precedence import MatchRef, match_sort_key

__all__ = [
    "Backend",
    "Match",
    "Route",
    "Rule",
    "covers",
    "equivalent",
    "may_overlap",
    "parse_route",
    "path_matches",
    "percent",
    "precedence_key",
]

Obj = dict[str, Any]


@dataclass(frozen=True)
class Match:
    """One match of one rule; ``field`` is its kubectl-style path (``spec.rules[0].matches[1]``)."""

    rule: int
    index: int
    field: str
    path_type: str
    path_value: str
    method: str | None
    headers: tuple[tuple[str, str, str], ...]  # (lower-case name, value, type)
    queries: tuple[tuple[str, str, str], ...]  # (name, value, type)
    header_fields: tuple[str, ...] = ()
    explicit: bool = True  # False for the implicit match of a rule without matches
    has_path: bool = True  # whether ``path`` was written (else the PathPrefix "/" default)

    def describe(self) -> str:
        """``PathPrefix /tasks, header x-user-type=beta`` (for messages)."""
        parts = [f"{self.path_type} {self.path_value}"]
        if self.method:
            parts.append(f"method {self.method}")
        parts += [f"header {n}{'~' if t != 'Exact' else '='}{v}" for n, v, t in self.headers]
        parts += [f"query {n}{'~' if t != 'Exact' else '='}{v}" for n, v, t in self.queries]
        return ", ".join(parts)

    @property
    def plain(self) -> bool:
        """Whether a request without special headers, query or method (a GET) can match."""
        return not self.headers and not self.queries and self.method in (None, "GET")


@dataclass(frozen=True)
class Backend:
    """One backendRef (or a mirror's backendRef) with defaults applied."""

    index: int
    field: str
    name: str
    namespace: str | None
    port: int | None
    weight: int
    kind: str = "Service"
    group: str = ""
    valid_weight: bool = True  # False when the weight is not a whole number >= 0 (a schema error)


@dataclass(frozen=True)
class Rule:
    """One rule: its matches, backends and what else decides its action."""

    index: int
    field: str
    matches: tuple[Match, ...]
    backends: tuple[Backend, ...]
    mirrors: tuple[Backend, ...]
    redirect: bool
    has_backend_refs: bool

    def shares(self) -> dict[str, float]:
        """Share of requests per backend name, from the weights (empty when all are 0)."""
        total = sum(b.weight for b in self.backends)
        out: dict[str, float] = {}
        if total <= 0:
            return out
        for b in self.backends:
            out[b.name] = out.get(b.name, 0.0) + b.weight / total
        return out

    def target(self) -> tuple[Any, ...]:
        """What this rule does, comparable between rules (same target: same traffic)."""
        shares = tuple(sorted((n, round(s, 9)) for n, s in self.shares().items() if s > 0))
        mirrors = tuple(sorted(b.name for b in self.mirrors))
        return (shares, mirrors, self.redirect)


@dataclass(frozen=True)
class Route:
    """An HTTPRoute as the reviewer needs it."""

    namespace: str
    name: str
    created: str
    hostnames: tuple[str, ...]
    parent_refs: tuple[Obj, ...]
    rules: tuple[Rule, ...]
    source: str = ""

    @property
    def id(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    def matches(self) -> list[Match]:
        """Every match of every rule, in spec order."""
        return [m for r in self.rules for m in r.matches]


def _int(value: Any, default: int | None) -> int | None:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    return default


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _backend(ref: Obj, index: int, field: str) -> Backend:
    weight = ref.get("weight", 1)
    valid = isinstance(weight, int) and not isinstance(weight, bool) and weight >= 0
    return Backend(
        index=index, field=field, name=_str(ref.get("name")),
        namespace=ref.get("namespace") if isinstance(ref.get("namespace"), str) else None,
        port=_int(ref.get("port"), None), weight=weight if valid else 0,
        kind=_str(ref.get("kind"), "Service"), group=_str(ref.get("group"), ""),
        valid_weight=valid,
    )


def _match(raw: Obj, rule: int, index: int, field: str, explicit: bool) -> Match:
    path = _dict(raw.get("path"))
    headers: list[tuple[str, str, str]] = []
    header_fields: list[str] = []
    seen: set[str] = set()
    for k, h in enumerate(_list(raw.get("headers"))):
        h = _dict(h)
        name = _str(h.get("name")).lower()
        if not name or name in seen:  # the spec: later duplicates of a name are ignored
            continue
        seen.add(name)
        headers.append((name, _str(h.get("value")), _str(h.get("type"), "Exact")))
        header_fields.append(f"{field}.headers[{k}]")
    queries = []
    for q in _list(raw.get("queryParams")):
        q = _dict(q)
        if _str(q.get("name")):
            queries.append((_str(q.get("name")), _str(q.get("value")), _str(q.get("type"), "Exact")))
    method = raw.get("method")
    return Match(
        rule=rule, index=index, field=field,
        path_type=_str(path.get("type"), "PathPrefix"), path_value=_str(path.get("value"), "/"),
        method=method if isinstance(method, str) else None,
        headers=tuple(headers), queries=tuple(queries), header_fields=tuple(header_fields),
        explicit=explicit, has_path="path" in raw,
    )


def parse_route(obj: Mapping[str, Any], source: str = "") -> Route:
    """Reduce an HTTPRoute object (valid or not) to a :class:`Route`."""
    meta = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    raw_rules = _list(spec.get("rules")) or [{}]  # CRD default: one rule matching everything
    rules: list[Rule] = []
    for i, raw_rule in enumerate(raw_rules):
        raw_rule = _dict(raw_rule)
        where = f"spec.rules[{i}]"
        raw_matches = _list(raw_rule.get("matches"))
        matches = tuple(_match(_dict(m), i, j, f"{where}.matches[{j}]", True)
                        for j, m in enumerate(raw_matches))
        if not matches:
            matches = (_match({}, i, 0, where, False),)
        backends = tuple(_backend(_dict(b), k, f"{where}.backendRefs[{k}]")
                         for k, b in enumerate(_list(raw_rule.get("backendRefs"))))
        mirrors: list[Backend] = []
        redirect = False
        for k, flt in enumerate(_list(raw_rule.get("filters"))):
            flt = _dict(flt)
            if flt.get("type") == "RequestMirror":
                at = f"{where}.filters[{k}].requestMirror.backendRef"
                ref = _dict(_dict(flt.get("requestMirror")).get("backendRef"))
                mirrors.append(_backend(ref, k, at))
            elif flt.get("type") == "RequestRedirect":
                redirect = True
        rules.append(Rule(index=i, field=where, matches=matches, backends=backends,
                          mirrors=tuple(mirrors), redirect=redirect,
                          has_backend_refs=bool(raw_rule.get("backendRefs"))))
    return Route(
        namespace=_str(meta.get("namespace"), "default") or "default",
        name=_str(meta.get("name")), created=_str(meta.get("creationTimestamp")),
        hostnames=tuple(h for h in _list(spec.get("hostnames")) if isinstance(h, str)),
        parent_refs=tuple(_dict(p) for p in _list(spec.get("parentRefs"))),
        rules=tuple(rules), source=source,
    )


def precedence_key(match: Match, route: Route) -> tuple[Any, ...]:
    """The spec's precedence sort key (see :mod:`trafficlab.gateway.precedence`)."""
    return match_sort_key(MatchRef(
        path_type=match.path_type, path_value=match.path_value, method=match.method,
        header_count=len(match.headers), query_count=len(match.queries),
        created=route.created, route=route.id, rule=match.rule, match=match.index))


def _segment_prefix(prefix: str, path: str) -> bool:
    """PathPrefix semantics: whole path elements, a trailing "/" ignored (HTTPPathMatch)."""
    base = prefix.rstrip("/")
    if not base:
        return True
    return path == base or path.rstrip("/") == base or path.startswith(base + "/")


def path_matches(match: Match, path: str) -> bool:
    """Whether ``match``'s path part matches the request path ``path`` (regex: never assumed)."""
    if match.path_type == "Exact":
        return path == match.path_value
    if match.path_type == "PathPrefix":
        return _segment_prefix(match.path_value, path)
    return False


def _path_covers(a: Match, b: Match) -> bool:
    if a.path_type == "RegularExpression" or b.path_type == "RegularExpression":
        return a.path_type == b.path_type and a.path_value == b.path_value
    if a.path_type == "Exact":
        return b.path_type == "Exact" and a.path_value == b.path_value
    # a is a prefix: it covers an exact path under it, and any prefix under it.
    return _segment_prefix(a.path_value, b.path_value)


def _conditions_cover(a: tuple[tuple[str, str, str], ...], b: tuple[tuple[str, str, str], ...]) -> bool:
    by_name = {n: (v, t) for n, v, t in b}
    return all(by_name.get(n) == (v, t) for n, v, t in a)


def covers(a: Match, b: Match) -> bool:
    """Whether every request ``b`` matches is matched by ``a`` too (``a`` is equal or broader)."""
    return (_path_covers(a, b) and (a.method is None or a.method == b.method)
            and _conditions_cover(a.headers, b.headers) and _conditions_cover(a.queries, b.queries))


def equivalent(a: Match, b: Match) -> bool:
    """Whether two matches match exactly the same requests."""
    return covers(a, b) and covers(b, a)


def _paths_overlap(a: Match, b: Match) -> bool:
    if "RegularExpression" in (a.path_type, b.path_type):
        return True  # cannot tell; assume they may
    if a.path_type == "Exact" and b.path_type == "Exact":
        return a.path_value == b.path_value
    return _path_covers(a, b) or _path_covers(b, a)


def _no_conflict(a: tuple[tuple[str, str, str], ...], b: tuple[tuple[str, str, str], ...]) -> bool:
    other = {n: (v, t) for n, v, t in b}
    for n, v, t in a:
        if n in other and t == "Exact" and other[n][1] == "Exact" and other[n][0] != v:
            return False
    return True


def may_overlap(a: Match, b: Match) -> bool:
    """Whether one request can match both ``a`` and ``b``."""
    if a.method and b.method and a.method != b.method:
        return False
    return (_paths_overlap(a, b) and _no_conflict(a.headers, b.headers)
            and _no_conflict(a.queries, b.queries))


def percent(share: float) -> str:
    """A share as a percentage: ``9.1%``, ``10%``, ``33.3%``."""
    text = f"{share * 100:.1f}"
    return (text[:-2] if text.endswith(".0") else text) + "%"
