"""Match precedence across every HTTPRoute attached to one virtual host, as a pure sort key.

The order is the one the HTTPRouteRule ``matches`` documentation (Gateway API v1.6.1,
``apis/v1/httproute_types.go``) makes mandatory. Across all rules of all applicable routes,
precedence goes to the match having, continuing on ties:

1. an "Exact" path match;
2. a "Prefix" path match with the largest number of characters;
3. a method match;
4. the largest number of header matches;
5. the largest number of query param matches;

then, across routes, the oldest route by creation timestamp, then the route first in
alphabetical order by "{namespace}/{name}"; within one route, the first rule in list order
(and, inside a rule, the first match, which only matters for determinism).

RegularExpression paths are "implementation-specific" in the spec. We rank them as Envoy
Gateway does (``internal/gatewayapi/sort.go``): after Exact and before PathPrefix, a longer
expression first. That keeps ``/api/v[0-9]+/.*`` ahead of a catch-all ``/`` prefix and behind
any exact path, and it is what students see on the kind backend.

Header names count once per case-insensitive name and query names once per exact name,
because the spec tells implementations to ignore later duplicates. The path length is the
value as written (``/foo/`` counts 5), since the spec counts "characters".

Other modules use this for more than Envoy: a route reviewer can explain to a student which
match wins, in the same order the gateway applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = ["MatchRef", "match_sort_key", "matches_of", "ordered_matches"]

# Lower ranks first. See the module docstring for why RegularExpression sits in the middle.
_PATH_RANK = {"Exact": 0, "RegularExpression": 1, "PathPrefix": 2}

# A rule without matches behaves as a single PathPrefix "/" match (HTTPRouteRule.matches doc).
_DEFAULT_PATH = {"type": "PathPrefix", "value": "/"}


@dataclass(frozen=True)
class MatchRef:
    """One match of one rule of one route, reduced to what precedence looks at.

    ``created`` is the route's ``metadata.creationTimestamp`` (RFC 3339); ``route`` is
    ``"{namespace}/{name}"``.
    """

    path_type: str
    path_value: str
    method: str | None
    header_count: int
    query_count: int
    created: str
    route: str
    rule: int
    match: int


def match_sort_key(ref: MatchRef) -> tuple[Any, ...]:
    """Sort key putting the match that must win first.

    >>> exact = MatchRef("Exact", "/a", None, 0, 0, "2024-01-01T00:00:00Z", "ns/r", 0, 0)
    >>> prefix = MatchRef("PathPrefix", "/a/b/c", "GET", 3, 3, "2020-01-01T00:00:00Z", "ns/a", 0, 0)
    >>> sorted([prefix, exact], key=match_sort_key)[0] is exact
    True
    """
    return (
        _PATH_RANK.get(ref.path_type, len(_PATH_RANK)),
        -len(ref.path_value),
        0 if ref.method else 1,
        -ref.header_count,
        -ref.query_count,
        _timestamp(ref.created),
        ref.route,
        ref.rule,
        ref.match,
    )


def matches_of(route: Mapping[str, Any]) -> list[MatchRef]:
    """Every match of an HTTPRoute object (a plain dict), defaults applied, in spec order.

    A route without rules, or a rule without matches, yields the implicit PathPrefix "/" match.
    """
    meta = route.get("metadata", {})
    name = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    created = str(meta.get("creationTimestamp") or "")
    rules = (route.get("spec") or {}).get("rules") or [{}]
    refs: list[MatchRef] = []
    for i, rule in enumerate(rules):
        for j, match in enumerate(rule.get("matches") or [{}]):
            path = {**_DEFAULT_PATH, **(match.get("path") or {})}
            refs.append(MatchRef(
                path_type=str(path["type"]),
                path_value=str(path["value"]),
                method=match.get("method"),
                header_count=len({str(h["name"]).lower() for h in match.get("headers") or []}),
                query_count=len({str(q["name"]) for q in match.get("queryParams") or []}),
                created=created,
                route=name,
                rule=i,
                match=j,
            ))
    return refs


def ordered_matches(routes: Iterable[Mapping[str, Any]]) -> list[MatchRef]:
    """All matches of ``routes`` in the order a gateway must try them (first wins)."""
    refs = [ref for route in routes for ref in matches_of(route)]
    return sorted(refs, key=match_sort_key)


def _timestamp(value: str) -> float:
    """Seconds since the epoch; a missing or unreadable timestamp sorts as the newest."""
    if not value:
        return float("inf")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()
