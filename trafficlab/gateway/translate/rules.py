"""HTTPRoute rules -> IR routes: matches (via ``gateway/matches.py``), filters (via the filter
registry in ``gateway/filters.py``), timeouts and backends (via :mod:`.backends`).

As Envoy Gateway's ``processHTTPRouteRules`` (``internal/gatewayapi/route.go``): each rule
becomes one :class:`Rule` with its matches (OR'ed; none means PathPrefix "/"); a rule the lab
cannot serve keeps its matches and answers HTTP 500, so its requests do not fall through to
other routes. This is the HTTPRoute kind's ``rules`` (registered in :mod:`.httproute`); the
IR route of each match is made by :func:`~.kinds.ir_route` when the route attaches.
"""

from __future__ import annotations

from collections.abc import Mapping

from trafficlab.controlplane.status import RouteError
from trafficlab.gateway.filters import FilterContext, apply_filters
from trafficlab.gateway.ir import DirectResponse, Forward, HeaderMods, RouteAction
from trafficlab.gateway.matches import RuleMatch, translate_match
from trafficlab.gateway.precedence import MatchRef, matches_of
from trafficlab.gateway.translate.backends import backend_destinations, mirror
from trafficlab.gateway.translate.context import Obj, Pass
from trafficlab.gateway.translate.kinds import RouteKind, Rule
from trafficlab.resources import parse_duration

__all__ = ["route_rules"]


def route_rules(ctx: Pass, kind: RouteKind, route: Obj) -> tuple[list[Rule], list[RouteError]]:
    """Every rule of ``route`` translated, and the ResolvedRefs problems met on the way (a
    rule that cannot be served says why in ``Rule.invalid``)."""
    refs = {(r.rule, r.match): r for r in matches_of(route)}
    # CRD default: a route without rules has one rule matching PathPrefix "/".
    rules_spec = (route.get("spec") or {}).get("rules") or [{}]
    rules: list[Rule] = []
    errors: list[RouteError] = []
    for i, spec in enumerate(rules_spec):
        rule, rule_errors = _rule(ctx, kind, route, i, spec, refs)
        rules.append(rule)
        errors.extend(rule_errors)
    return rules, errors


def _rule(ctx: Pass, kind: RouteKind, route: Obj, i: int, spec: Obj,
          refs: Mapping[tuple[int, int], MatchRef]) -> tuple[Rule, list[RouteError]]:
    meta = route["metadata"]
    ns, name = str(meta["namespace"]), str(meta["name"])
    where = f"spec.rules[{i}]"
    errors: list[RouteError] = []
    invalid: list[RouteError] = []

    matches: list[RuleMatch] = []
    for j, match in enumerate(spec.get("matches") or [{}]):
        try:
            matches.append(translate_match(match, f"{where}.matches[{j}]", j, refs[(i, j)]))
        except RouteError as err:
            # A match Envoy cannot express is left out: answering 500 on a guess (say "/")
            # would swallow requests meant for other routes.
            invalid.append(err)

    context = FilterContext(mirror=lambda spec, at: mirror(ctx, kind, route, spec, at))
    filtered, filter_problems = apply_filters(spec.get("filters") or [], where, context)
    for problem in filter_problems:
        (errors if problem.condition_type == "ResolvedRefs" else invalid).append(problem)
    request_headers, response_headers = filtered.request_headers, filtered.response_headers
    mirrors, redirect, rewrite = filtered.mirrors, filtered.redirect, filtered.rewrite
    uses_prefix_rewrite = (redirect is not None and redirect.path_kind == "prefix") or (
        rewrite is not None and rewrite.path_kind == "prefix")
    if uses_prefix_rewrite and any(m.path.kind != "prefix" for m in matches):
        # "ReplacePrefixMatch is only compatible with a PathPrefix HTTPRouteMatch."
        invalid.append(RouteError("UnsupportedValue", "Accepted",
                                  f"{where}.filters: ReplacePrefixMatch needs every match of "
                                  "the rule to be a PathPrefix match"))

    timeout_ms = backend_timeout_ms = None
    timeouts = spec.get("timeouts") or {}
    try:
        if "request" in timeouts:
            timeout_ms = parse_duration(str(timeouts["request"]))
        if "backendRequest" in timeouts:
            backend_timeout_ms = parse_duration(str(timeouts["backendRequest"]))
    except ValueError as exc:
        invalid.append(RouteError("UnsupportedValue", "Accepted", f"{where}.timeouts: {exc}"))

    destinations, backend_errors, backend_invalid = backend_destinations(ctx, kind, route, i, spec)
    errors.extend(backend_errors)
    invalid.extend(backend_invalid)

    action: RouteAction
    if invalid:
        action = DirectResponse(500)
        problems = "; ".join(e.message for e in invalid)
        ctx.warn(f"{kind.kind} {ns}/{name}: rule {i} is invalid ({problems}); "
                 "requests it matches get HTTP 500.")
    elif redirect is not None:
        action = redirect
    elif destinations and any(d.cluster is not None for d in destinations):
        action = Forward(tuple(destinations))
    else:
        # HTTPRouteRule.backendRefs: "If *all* entries in BackendRefs are invalid, and there are
        # also no filters specified in this route rule, *all* traffic which matches this rule
        # MUST receive a 500 status code." We answer 500 as well when every weight is 0:
        # BackendRef.weight says "If weight is set to 0, no traffic should be forwarded for
        # this entry", so there is nowhere to forward, and 500 (as for a rule without
        # backendRefs, conformance HTTPRouteNoBackendRefs) tells the student the rule is dead.
        action = DirectResponse(500)
        backend_refs = spec.get("backendRefs") or []
        if not backend_refs:
            ctx.warn(f"{kind.kind} {ns}/{name}: rule {i} has no backendRefs; "
                     "requests it matches get HTTP 500.")
        elif not destinations:
            ctx.warn(f"{kind.kind} {ns}/{name}: every backendRef of rule {i} has weight 0; "
                     "requests it matches get HTTP 500.")
    valid = not invalid
    rule = Rule(
        index=i, matches=matches, action=action, invalid=invalid,
        request_headers=request_headers if valid else HeaderMods(),
        response_headers=response_headers if valid else HeaderMods(),
        mirrors=tuple(mirrors) if valid and isinstance(action, Forward) else (),
        rewrite=rewrite if valid and isinstance(action, Forward) else None,
        timeout_ms=timeout_ms if valid else None,
        backend_timeout_ms=backend_timeout_ms if valid else None,
        extensions=tuple(filtered.extensions) if valid else (),
    )
    return rule, errors
