"""One ``spec.rules[i].matches[j]`` of an HTTPRoute, normalised for the IR.

Path, header and query matches with the spec's defaults and rules (a trailing "/" of a
PathPrefix is ignored; of repeated header names only the first counts), and every regular
expression checked as Envoy's RE2 would: a pattern Envoy refuses is this match's
``UnsupportedValue``, never the whole configuration's.

>>> translate_match({"path": {"type": "PathPrefix", "value": "/tasks/"}},
...                 "spec.rules[0].matches[0]", 0, None).path
PathMatch(kind='prefix', value='/tasks')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from trafficlab.controlplane.status import RouteError
from trafficlab.gateway.ir import HeaderMatch, PathMatch, QueryMatch
from trafficlab.gateway.precedence import MatchRef
from trafficlab.gateway.regex import regex_problem

__all__ = ["RuleMatch", "check_regex", "translate_match", "value_kind"]

Obj = dict[str, Any]


@dataclass(frozen=True)
class RuleMatch:
    """One normalized match of a rule, ready for the IR, plus its precedence."""

    index: int
    path: PathMatch
    headers: tuple[HeaderMatch, ...]
    query: tuple[QueryMatch, ...]
    method: str | None
    ref: MatchRef


def translate_match(spec: Obj, at: str, index: int, ref: MatchRef) -> RuleMatch:
    path = {"type": "PathPrefix", "value": "/", **(spec.get("path") or {})}
    value = str(path["value"])
    kind: Literal["exact", "prefix", "regex"]
    if path["type"] == "Exact":
        kind = "exact"
    elif path["type"] == "PathPrefix":
        # HTTPPathMatch PathPrefix matches whole path elements and "a trailing `/` is ignored":
        # "/foo/" behaves as "/foo". The Envoy renderer turns "prefix" into path_separated_prefix.
        kind, value = "prefix", value.rstrip("/") or "/"
    elif path["type"] == "RegularExpression":
        kind = "regex"
        check_regex(value, f"{at}.path.value")
    else:
        raise RouteError("UnsupportedValue", "Accepted",
                         f"{at}.path.type: {path['type']} is not a supported path match type")
    headers: list[HeaderMatch] = []
    seen: set[str] = set()
    for h, header in enumerate(spec.get("headers") or []):
        # "If multiple entries specify equivalent header names, only the first entry with an
        # equivalent name MUST be considered" -- names are case-insensitive.
        if str(header["name"]).lower() in seen:
            continue
        seen.add(str(header["name"]).lower())
        kind_h = value_kind(header.get("type", "Exact"), f"{at}.headers[{h}].type")
        if kind_h == "regex":
            check_regex(str(header["value"]), f"{at}.headers[{h}].value")
        headers.append(HeaderMatch(str(header["name"]), str(header["value"]), kind_h))
    query: list[QueryMatch] = []
    seen = set()
    for q, param in enumerate(spec.get("queryParams") or []):
        if str(param["name"]) in seen:  # query names compare exactly (case-sensitive)
            continue
        seen.add(str(param["name"]))
        kind_q = value_kind(param.get("type", "Exact"), f"{at}.queryParams[{q}].type")
        if kind_q == "regex":
            check_regex(str(param["value"]), f"{at}.queryParams[{q}].value")
        query.append(QueryMatch(str(param["name"]), str(param["value"]), kind_q))
    method = spec.get("method")
    return RuleMatch(index, PathMatch(kind, value), tuple(headers), tuple(query),
                  str(method) if method else None, ref)


def check_regex(pattern: str, at: str) -> None:
    # Envoy refuses the whole configuration over one pattern RE2 cannot take; refusing the
    # match here keeps every other route serving (Envoy Gateway does the same).
    problem = regex_problem(pattern)
    if problem is not None:
        raise RouteError("UnsupportedValue", "Accepted",
                         f"{at}: {pattern!r} is not a regular expression Envoy accepts "
                         f"(RE2: {problem})")


def value_kind(kind: str, at: str) -> Literal["exact", "regex"]:
    if kind == "Exact":
        return "exact"
    if kind == "RegularExpression":
        return "regex"
    raise RouteError("UnsupportedValue", "Accepted", f"{at}: {kind} is not a supported match type")
