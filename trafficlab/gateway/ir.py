"""Intermediate representation between Gateway API objects and Envoy configuration.

Plain frozen data: no Gateway API types, no Envoy types. The translator
(`gateway/translate/`) produces it from a store snapshot; the Envoy renderer
(`gateway/envoy.py`) consumes it. Names are path-like, as in Envoy Gateway, because
they show up in Envoy's statistics:

- listener     ``<gw-namespace>/<gw-name>/<port>``  (one Envoy listener per Gateway port)
- virtual host ``<listener>/<hostname or *>``
- route        ``httproute/<ns>/<name>/rule/<i>/match/<j>/<hostname or *>``
- cluster      ``service/<ns>/<name>/<port>``        (one per backend Service port, so stats are per version)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Cluster",
    "DirectResponse",
    "Endpoint",
    "Forward",
    "HTTPListener",
    "HeaderMatch",
    "HeaderMods",
    "IRError",
    "Mirror",
    "PathMatch",
    "QueryMatch",
    "Redirect",
    "Route",
    "RouteAction",
    "RouteExtension",
    "URLRewrite",
    "VirtualHost",
    "WeightedDestination",
    "Xds",
]


class IRError(ValueError):
    """The IR is inconsistent; a translator bug, never a user error."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True)
class Cluster:
    """One upstream: a Service port and the ready endpoints behind it (empty means 503)."""

    name: str
    endpoints: tuple[Endpoint, ...] = ()

    def validate(self) -> None:
        if not self.name:
            raise IRError("cluster without a name")
        for ep in self.endpoints:
            if not 0 < ep.port < 65536:
                raise IRError(f"cluster {self.name}: endpoint port {ep.port} out of range")


@dataclass(frozen=True)
class PathMatch:
    kind: Literal["exact", "prefix", "regex"]
    value: str


@dataclass(frozen=True)
class HeaderMatch:
    """Header names are matched case-insensitively (Envoy lower-cases them)."""

    name: str
    value: str
    kind: Literal["exact", "regex"] = "exact"


@dataclass(frozen=True)
class QueryMatch:
    """Query parameter names are matched exactly (case-sensitive), per the spec."""

    name: str
    value: str
    kind: Literal["exact", "regex"] = "exact"


@dataclass(frozen=True)
class HeaderMods:
    """RequestHeaderModifier / ResponseHeaderModifier: set replaces, add appends, remove drops."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()

    def empty(self) -> bool:
        return not (self.set or self.add or self.remove)


@dataclass(frozen=True)
class WeightedDestination:
    """One weighted backendRef. ``cluster is None`` marks an unresolved backend: its share gets 500."""

    cluster: str | None
    weight: int
    name: str = ""
    request_headers: HeaderMods = field(default_factory=HeaderMods)
    response_headers: HeaderMods = field(default_factory=HeaderMods)


@dataclass(frozen=True)
class Forward:
    """Send to weighted destinations. Destinations with weight 0 are kept out by the translator."""

    destinations: tuple[WeightedDestination, ...]


@dataclass(frozen=True)
class DirectResponse:
    """Answer from the gateway itself (500 for a rule without valid backends)."""

    status: int
    body: str = ""


@dataclass(frozen=True)
class Redirect:
    """RequestRedirect filter. ``None`` fields keep the request's value."""

    scheme: str | None = None
    hostname: str | None = None
    port: int | None = None
    path_kind: Literal["full", "prefix"] | None = None
    path_value: str | None = None
    status: int = 302


RouteAction = Forward | DirectResponse | Redirect


@dataclass(frozen=True)
class URLRewrite:
    hostname: str | None = None
    path_kind: Literal["full", "prefix"] | None = None
    path_value: str | None = None


@dataclass(frozen=True)
class Mirror:
    """RequestMirror: copy ``percent`` (0-100, fractions allowed) of requests to ``cluster``."""

    cluster: str
    percent: float = 100.0


@dataclass(frozen=True)
class RouteExtension:
    """A filter the IR has no field for: its ``type`` picks the Envoy route renderer
    (``gateway/envoy.py``'s registry) and ``config`` is what that renderer reads."""

    type: str
    config: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Route:
    """One match of one rule, already in precedence order inside its virtual host."""

    name: str
    action: RouteAction
    path: PathMatch = field(default_factory=lambda: PathMatch("prefix", "/"))
    headers: tuple[HeaderMatch, ...] = ()
    query: tuple[QueryMatch, ...] = ()
    method: str | None = None
    request_headers: HeaderMods = field(default_factory=HeaderMods)
    response_headers: HeaderMods = field(default_factory=HeaderMods)
    mirrors: tuple[Mirror, ...] = ()
    rewrite: URLRewrite | None = None
    timeout_ms: int | None = None
    backend_timeout_ms: int | None = None
    extensions: tuple[RouteExtension, ...] = ()

    def validate(self) -> None:
        if isinstance(self.action, Forward):
            if not self.action.destinations:
                raise IRError(f"route {self.name}: forward without destinations")
            if any(d.weight <= 0 for d in self.action.destinations):
                raise IRError(f"route {self.name}: destination with weight <= 0")


@dataclass(frozen=True)
class VirtualHost:
    name: str
    domains: tuple[str, ...]
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class HTTPListener:
    """One Envoy listener: a Gateway port, bound on ``address:bind_port`` on this machine."""

    name: str
    address: str
    port: int
    bind_port: int
    virtual_hosts: tuple[VirtualHost, ...] = ()


@dataclass(frozen=True)
class Xds:
    """Everything Envoy needs. ``version`` identifies the store revision it was built from."""

    version: str
    listeners: tuple[HTTPListener, ...] = ()
    clusters: tuple[Cluster, ...] = ()

    def validate(self, *, checked: Callable[[VirtualHost], bool] | None = None) -> None:
        """Raise ``IRError`` when the IR is inconsistent.

        ``checked(vhost)`` may say a virtual host already passed against the same clusters
        (a renderer's cache knows): its routes are then not checked again.
        """
        names = [c.name for c in self.clusters]
        if len(names) != len(set(names)):
            raise IRError("duplicate cluster names")
        known = set(names)
        ports: set[tuple[str, int]] = set()
        for listener in self.listeners:
            key = (listener.address, listener.bind_port)
            if key in ports:
                raise IRError(f"listener {listener.name}: {key} bound twice")
            ports.add(key)
            for vhost in listener.virtual_hosts:
                if checked is not None and checked(vhost):
                    continue
                for route in vhost.routes:
                    route.validate()
                    targets: list[str | None] = [m.cluster for m in route.mirrors]
                    if isinstance(route.action, Forward):
                        targets += [d.cluster for d in route.action.destinations]
                    for target in targets:
                        if target is not None and target not in known:
                            raise IRError(f"route {route.name}: unknown cluster {target}")
        for cluster in self.clusters:
            cluster.validate()
