"""A filter added from outside the translator: Gateway API's CORS, reduced to one origin.

Test-only: importing this module is the whole registration (a handler for the translator and
a renderer for Envoy); ``remove()`` takes both away again. Nothing else in TrafficLab knows it.
"""

from __future__ import annotations

from typing import Any

from trafficlab.controlplane.status import RouteError
from trafficlab.gateway.envoy import register_route_renderer, unregister_route_renderer
from trafficlab.gateway.filters import (
    FilterContext,
    RuleFilters,
    register_filter,
    unregister_filter,
)
from trafficlab.gateway.ir import RouteExtension

TYPE = "CORS"


@register_filter(TYPE)
def _cors(flt: dict[str, Any], at: str, out: RuleFilters, ctx: FilterContext) -> None:
    origins = (flt.get("cors") or {}).get("allowOrigins") or []
    if len(origins) != 1:
        raise RouteError("UnsupportedValue", "Accepted",
                         f"{at}.cors.allowOrigins: the toy CORS filter takes exactly one origin")
    out.extensions.append(RouteExtension(TYPE, (("origin", str(origins[0])),)))


@register_route_renderer(TYPE)
def _render(extension: RouteExtension, route: dict[str, Any]) -> None:
    origin = dict(extension.config)["origin"]
    route.setdefault("response_headers_to_add", []).append({
        "header": {"key": "access-control-allow-origin", "value": origin},
        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"})


def remove() -> None:
    unregister_filter(TYPE)
    unregister_route_renderer(TYPE)
