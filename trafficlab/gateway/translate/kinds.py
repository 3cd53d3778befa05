"""Route kinds: one registration per kind (HTTPRoute today), the rest of the translator generic.

A route kind says what the generic stages cannot know: its name and API group (which
``allowedRoutes.kinds``, ``supportedKinds`` and ReferenceGrant ``from`` entries name), the
prefix of its IR names (``httproute/<ns>/<name>/rule/<i>/...``, seen in Envoy's stats), the
listener protocols that take it, how its rules become :class:`Rule` values (matches, action,
filters), and the shape of its ``status``. Everything else is shared by every kind:
attachment through ``parentRefs`` (:mod:`.attachment`), backendRefs (:mod:`.backends`),
precedence, the IR and the Envoy renderer. As Envoy Gateway's ``RouteContext`` interface
(``internal/gatewayapi/route.go``), which HTTPRoute, GRPCRoute, TLSRoute ... implement.

A second kind (GRPCRoute) is a module that translates its rules and registers itself:

>>> from trafficlab.gateway.translate.kinds import route_kind_names
>>> route_kind_names()
('HTTPRoute',)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from trafficlab.controlplane.status import RouteError
from trafficlab.gateway.ir import HeaderMods, Mirror, Route, RouteAction, RouteExtension, URLRewrite
from trafficlab.gateway.matches import RuleMatch
from trafficlab.gateway.translate.context import Obj, Pass

__all__ = ["RouteKind", "Rule", "RulesTranslator", "find_route_kind", "ir_route",
           "register_route_kind", "route_kind_names", "route_kinds", "unregister_route_kind"]


@dataclass
class Rule:
    """One ``spec.rules[i]`` of a route of any kind, translated; ``invalid`` rules answer 500
    for their matches."""

    index: int
    matches: list[RuleMatch]
    action: RouteAction
    invalid: list[RouteError] = field(default_factory=list)
    request_headers: HeaderMods = field(default_factory=HeaderMods)
    response_headers: HeaderMods = field(default_factory=HeaderMods)
    mirrors: tuple[Mirror, ...] = ()
    rewrite: URLRewrite | None = None
    timeout_ms: int | None = None
    backend_timeout_ms: int | None = None
    extensions: tuple[RouteExtension, ...] = ()


#: (the pass, the kind, the route object) -> (its rules, the ResolvedRefs problems met)
RulesTranslator = Callable[[Pass, "RouteKind", Obj], tuple[list[Rule], list[RouteError]]]


def _route_status(parents: list[Obj]) -> Obj:
    # RouteStatus, shared by every xRoute kind of the standard channel.
    return {"parents": parents}


@dataclass(frozen=True)
class RouteKind:
    """What the translator needs to know of one route kind.

    - ``kind``, ``group``: as in the objects (``HTTPRoute``, ``gateway.networking.k8s.io``);
    - ``prefix``: the start of its IR names (``httproute``);
    - ``protocols``: listener protocols that take it (by default and when listed);
    - ``rules``: its rules -> :class:`Rule` values (see :data:`RulesTranslator`);
    - ``status``: its ``status`` block from the per-parent entries.
    """

    kind: str
    group: str
    prefix: str
    protocols: tuple[str, ...]
    rules: RulesTranslator
    status: Callable[[list[Obj]], Obj] = _route_status

    @property
    def ref(self) -> Obj:
        """``{"group", "kind"}``, as ``supportedKinds`` and ``allowedRoutes.kinds`` spell it."""
        return {"group": self.group, "kind": self.kind}

    def key(self, namespace: str, name: str) -> str:
        """A route's name inside the translator and the IR: ``<prefix>/<ns>/<name>``."""
        return f"{self.prefix}/{namespace}/{name}"


_REGISTRY: dict[str, RouteKind] = {}


def register_route_kind(kind: RouteKind) -> RouteKind:
    """Serve routes of ``kind`` (a later registration of the same name replaces it)."""
    _REGISTRY[kind.kind] = kind
    return kind


def unregister_route_kind(name: str) -> None:
    """Stop serving a kind (tests that add a kind of their own clean up with this)."""
    _REGISTRY.pop(name, None)


def route_kinds() -> tuple[RouteKind, ...]:
    """The kinds served, by name: routes are translated in this order, then by namespace/name."""
    return tuple(_REGISTRY[name] for name in sorted(_REGISTRY))


def route_kind_names() -> tuple[str, ...]:
    """The names of the kinds served (``("HTTPRoute",)``), sorted."""
    return tuple(sorted(_REGISTRY))


def find_route_kind(group: str, name: str) -> RouteKind | None:
    """The registered kind ``group``/``name``, or None."""
    kind = _REGISTRY.get(name)
    return kind if kind is not None and kind.group == group else None


def ir_route(route_key: str, rule: Rule, match: RuleMatch, domain: str) -> Route:
    """The IR route of ``match`` of ``rule`` on ``domain``, named as Envoy Gateway names it:
    ``<route key>/rule/<i>/match/<j>/<domain>`` (see :meth:`RouteKind.key`)."""
    return Route(
        name=f"{route_key}/rule/{rule.index}/match/{match.index}/{domain}",
        action=rule.action,
        path=match.path,
        headers=match.headers,
        query=match.query,
        method=match.method,
        request_headers=rule.request_headers,
        response_headers=rule.response_headers,
        mirrors=rule.mirrors,
        rewrite=rule.rewrite,
        timeout_ms=rule.timeout_ms,
        backend_timeout_ms=rule.backend_timeout_ms,
        extensions=rule.extensions,
    )
