"""Gateway API objects -> (IR, statuses): the pure translation step of the control plane.

Modelled on Envoy Gateway's ``internal/gatewayapi`` layer: one function takes a consistent
snapshot of the store and returns the IR for Envoy, the complete ``status`` block of every
GatewayClass, Gateway and route this controller is responsible for, and human warnings.
No I/O, no clock, no Envoy: the same snapshot always gives the same result, in sorted order,
so golden files stay stable.

Semantics are Gateway API v1.6.1, standard channel. The rules this package applies, with the
spec text they come from, are in comments next to the code. In short:

- GatewayClasses whose ``controllerName`` is one of ours are accepted; others are ignored.
- Gateways of an accepted class get one IR listener per port. Only ``HTTP`` listeners are
  served; others get ``Accepted=False UnsupportedProtocol``.
- Routes of each registered kind (HTTPRoute: :mod:`.httproute`) attach through
  ``parentRefs`` (sectionName, port, allowedRoutes, hostnames).
  Each rule becomes one IR route per match and per intersecting hostname, ordered by
  :mod:`trafficlab.gateway.precedence` inside each virtual host.
- Unresolvable backendRefs keep their weight and answer 500 (``cluster=None``); weight 0
  means no traffic at all; a rule without any usable weight answers 500.
- Problems inside rules are :class:`~trafficlab.controlplane.status.RouteError` values,
  folded into ``Accepted`` / ``ResolvedRefs`` / ``PartiallyInvalid`` conditions per parent.

One module per job, each importing only the ones above it in this list (as Envoy Gateway's
``listener.go``, ``route.go``, ``filters.go``, ``helpers.go``):

- :mod:`.context`: one pass over a snapshot (objects by kind, warnings, results so far);
- :mod:`.kinds`: the route-kind interface (:class:`RouteKind`, :class:`Rule`) and registry;
- :mod:`.listeners`: GatewayClasses, Gateways, listener validity and status;
- :mod:`.attachment`: parentRefs, allowedRoutes, sectionName/port, hostnames (via
  ``gateway/hostnames.py``), the route's status per parent, its IR routes placed;
- :mod:`.backends`: backendRefs, ReferenceGrant, Service ports, weights, mirrors;
- :mod:`.rules`: HTTPRoute rules -> :class:`Rule` values (matches via ``gateway/matches.py``,
  filters via the registry in ``gateway/filters.py``);
- :mod:`.httproute`: the HTTPRoute kind's registration;
- :mod:`.translator`: :func:`translate`, :class:`TranslateCache`, :class:`TranslateResult`.
"""

from __future__ import annotations

from trafficlab.controlplane.status import CONTROLLER_NAME
from trafficlab.gateway.translate.httproute import HTTPROUTE
from trafficlab.gateway.translate.kinds import (
    RouteKind,
    Rule,
    find_route_kind,
    register_route_kind,
    route_kind_names,
    route_kinds,
    unregister_route_kind,
)
from trafficlab.gateway.translate.translator import TranslateCache, TranslateResult, translate
from trafficlab.resources import parse_duration

__all__ = [
    "CONTROLLER_NAME",
    "HTTPROUTE",
    "RouteKind",
    "Rule",
    "TranslateCache",
    "TranslateResult",
    "find_route_kind",
    "parse_duration_ms",
    "register_route_kind",
    "route_kind_names",
    "route_kinds",
    "translate",
    "unregister_route_kind",
]

# One home for each: the GEP-2257 duration grammar lives in trafficlab.resources (which the
# validation of timeouts uses too); this name is kept for the callers that import it here.
parse_duration_ms = parse_duration
