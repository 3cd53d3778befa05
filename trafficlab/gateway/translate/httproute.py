"""The HTTPRoute kind: its registration, the one route kind TrafficLab serves today.

A GRPCRoute would be a module like this one: its rules' translation (as :mod:`.rules` is
HTTPRoute's) and one :func:`~.kinds.register_route_kind` call; attachment, backends,
precedence, the IR and the Envoy renderer are shared.
"""

from __future__ import annotations

from trafficlab.gateway.translate.kinds import RouteKind, register_route_kind
from trafficlab.gateway.translate.rules import route_rules
from trafficlab.resources import GATEWAY_GROUP

__all__ = ["HTTPROUTE"]

#: HTTPRoute (gateway.networking.k8s.io), served on HTTP listeners; IR names ``httproute/...``.
HTTPROUTE = register_route_kind(RouteKind(
    kind="HTTPRoute", group=GATEWAY_GROUP, prefix="httproute", protocols=("HTTP",),
    rules=route_rules,
))
