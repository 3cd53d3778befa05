"""A route kind added from outside the translator: EchoRoute, each rule one exact path sent to
its backendRefs.

Test-only: importing this module is the whole registration (one ``register_route_kind``);
``remove()`` takes it away again. Attachment, backends, precedence, status, the IR and the
Envoy renderer are the translator's own: nothing else in TrafficLab knows this kind. Its name
sorts before "Gateway" (as GRPCRoute's does), so status ordering is tried too.
"""

from __future__ import annotations

from typing import Any

from trafficlab.controlplane.status import RouteError
from trafficlab.gateway.ir import DirectResponse, Forward, RouteAction
from trafficlab.gateway.matches import translate_match
from trafficlab.gateway.precedence import MatchRef
from trafficlab.gateway.translate import RouteKind, Rule, register_route_kind, unregister_route_kind
from trafficlab.gateway.translate.backends import backend_destinations
from trafficlab.gateway.translate.context import Pass
from trafficlab.resources import GATEWAY_GROUP

KIND = "EchoRoute"


def _rules(ctx: Pass, kind: RouteKind, route: dict[str, Any]) -> tuple[list[Rule], list[RouteError]]:
    meta = route["metadata"]
    rules: list[Rule] = []
    errors: list[RouteError] = []
    for i, spec in enumerate((route.get("spec") or {}).get("rules") or []):
        path = str(spec.get("path", "/"))
        ref = MatchRef("Exact", path, None, 0, 0, str(meta.get("creationTimestamp") or ""),
                       f"{meta['namespace']}/{meta['name']}", i, 0)
        match = translate_match({"path": {"type": "Exact", "value": path}},
                                f"spec.rules[{i}]", 0, ref)
        destinations, problems, invalid = backend_destinations(ctx, kind, route, i, spec)
        errors.extend(problems)
        action: RouteAction = DirectResponse(500)
        if not invalid and any(d.cluster is not None for d in destinations):
            action = Forward(tuple(destinations))
        rules.append(Rule(index=i, matches=[match], action=action, invalid=invalid))
    return rules, errors


ECHO = register_route_kind(RouteKind(kind=KIND, group=GATEWAY_GROUP, prefix="echoroute",
                                     protocols=("HTTP",), rules=_rules))


def remove() -> None:
    unregister_route_kind(KIND)
