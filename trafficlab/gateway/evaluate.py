"""Which backends a request reaches, computed from the IR exactly as Envoy chooses.

Used where traffic cannot tell the whole truth: a grader's static checks (100:10 is 9.1%,
not 10%), the route reviewer, and tests that compare the translator with the conformance
cases. Envoy picks a virtual host by domain (exact, then the longest wildcard, then ``*``),
then the first route in order whose match holds; the translator already put routes in the
spec's precedence order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trafficlab.controlplane.snapshot import ObjectKey, Snapshot
from trafficlab.gateway.ir import DirectResponse, Endpoint, Forward, Redirect, Route, VirtualHost, Xds
from trafficlab.gateway.regex import full_match
from trafficlab.gateway.translate import route_kind_names, translate

__all__ = ["Outcome", "Request", "evaluate", "pick_route", "predict", "snapshot_of"]

Obj = dict[str, Any]
# What a prediction reads, besides the routes of every registered kind.
_RELEVANT = ("Namespace", "GatewayClass", "Gateway", "ReferenceGrant", "Service")


@dataclass(frozen=True)
class Request:
    path: str = "/"
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    host: str | None = None

    @property
    def path_only(self) -> str:
        return self.path.split("?", 1)[0]

    @property
    def query(self) -> dict[str, str]:
        if "?" not in self.path:
            return {}
        out: dict[str, str] = {}
        for part in self.path.split("?", 1)[1].split("&"):
            name, _, value = part.partition("=")
            out.setdefault(name, value)  # the first value wins, as in Envoy's query matcher
        return out


@dataclass(frozen=True)
class Outcome:
    """What the gateway does with a request: the route that matched and where traffic goes.

    ``shares`` maps a Service ``namespace/name`` to its fraction of requests; gateway-made
    answers appear as ``"(404)"``, ``"(500)"``, ``"(redirect 302)"``.
    """

    route: str | None
    shares: dict[str, float]

    def share(self, service: str, namespace: str = "default") -> float:
        return self.shares.get(service if "/" in service else f"{namespace}/{service}", 0.0)


def _vhost(listener_hosts: Iterable[VirtualHost], host: str | None) -> VirtualHost | None:
    by_domain = {d: vh for vh in listener_hosts for d in vh.domains}
    name = (host or "").split(":")[0].lower()  # a port in Host is ignored, as the spec says
    if name in by_domain:
        return by_domain[name]
    suffixes = [d for d in by_domain if d.startswith("*.") and name.endswith(d[1:])]
    if suffixes:
        return by_domain[max(suffixes, key=len)]
    return by_domain.get("*")


def _path_holds(route: Route, path: str) -> bool:
    kind, value = route.path.kind, route.path.value
    if kind == "exact":
        return path == value
    if kind == "prefix":  # whole path segments only
        return value == "/" or path == value or path.startswith(value.rstrip("/") + "/")
    return full_match(value, path)


def _value_holds(kind: str, want: str, got: str | None) -> bool:
    if got is None:
        return False
    return got == want if kind == "exact" else full_match(want, got)


def _holds(route: Route, request: Request) -> bool:
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = request.query
    if not _path_holds(route, request.path_only):
        return False
    if route.method and route.method != request.method.upper():
        return False
    if not all(_value_holds(h.kind, h.value, headers.get(h.name.lower())) for h in route.headers):
        return False
    return all(_value_holds(q.kind, q.value, query.get(q.name)) for q in route.query)


def pick_route(ir: Xds, request: Request, *, port: int | None = None) -> Route | None:
    """The route Envoy uses for ``request`` on the listener of ``port`` (the first one if None)."""
    listeners = [li for li in ir.listeners if port is None or li.port == port]
    if not listeners:
        return None
    vhost = _vhost(listeners[0].virtual_hosts, request.host)
    if vhost is None:
        return None
    return next((r for r in vhost.routes if _holds(r, request)), None)


def evaluate(ir: Xds, request: Request, *, port: int | None = None) -> Outcome:
    route = pick_route(ir, request, port=port)
    if route is None:
        return Outcome(None, {"(404)": 1.0})
    action = route.action
    if isinstance(action, DirectResponse):
        return Outcome(route.name, {f"({action.status})": 1.0})
    if isinstance(action, Redirect):
        return Outcome(route.name, {f"(redirect {action.status})": 1.0})
    assert isinstance(action, Forward)
    total = sum(d.weight for d in action.destinations)
    shares: dict[str, float] = {}
    for dest in action.destinations:
        key = _service_of(dest.cluster) if dest.cluster else "(500)"
        shares[key] = shares.get(key, 0.0) + dest.weight / total
    return Outcome(route.name, shares)


def _service_of(cluster: str) -> str:
    parts = cluster.split("/")  # service/<ns>/<name>/<port>
    return f"{parts[1]}/{parts[2]}" if len(parts) == 4 else cluster


def snapshot_of(objects: Iterable[Obj]) -> Snapshot:
    """A snapshot for prediction: every Service has an endpoint, every Gateway port a binding."""
    kinds = {*_RELEVANT, *route_kind_names()}
    relevant = [o for o in objects if o.get("kind") in kinds]
    endpoints: dict[tuple[str, str], dict[int, tuple[Endpoint, ...]]] = {}
    bind: dict[tuple[str, str, int], tuple[str, int]] = {}
    for obj in relevant:
        key = ObjectKey.of(obj)
        if obj["kind"] == "Service":
            endpoints[(key.namespace, key.name)] = {
                int(p["port"]): (Endpoint("127.0.0.1", 1),) for p in obj["spec"].get("ports", [])}
        elif obj["kind"] == "Gateway":
            for listener in obj["spec"].get("listeners", []):
                bind[(key.namespace, key.name, int(listener["port"]))] = ("127.0.0.1", 1)
    return Snapshot(revision=0, objects=tuple(relevant), endpoints=endpoints, bind=bind)


def predict(objects: Iterable[Obj], request: Request, *, gateway: str = "task-api-gateway",
            namespace: str = "default", port: int = 80) -> Outcome:
    """Where ``request`` to a Gateway port goes, given the lab's objects (no traffic sent)."""
    result = translate(snapshot_of(objects))
    listener = f"{namespace}/{gateway}/{port}"
    ir = Xds(version="0", listeners=tuple(li for li in result.ir.listeners if li.name == listener),
             clusters=result.ir.clusters)
    return evaluate(ir, request)
