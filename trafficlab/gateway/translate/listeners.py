"""GatewayClasses and Gateways: which classes are ours, each listener's validity, and status.

As Envoy Gateway's ``internal/gatewayapi/listener.go``: a Gateway of an accepted class gets
one :class:`Listener` per ``spec.listeners[i]``, told whether it is served (protocol,
``allowedRoutes``, conflicts with its neighbours on the same port, a bound local port) and
reported in ``status.listeners``. Routes attach to these listeners in
:mod:`trafficlab.gateway.translate.attachment`, which fills ``Listener.attached``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from trafficlab.controlplane.snapshot import CONTROLLER_NAMES, ObjectKey
from trafficlab.controlplane.status import condition
from trafficlab.gateway.translate.context import Obj, Pass, generation
from trafficlab.gateway.translate.kinds import RouteKind, route_kinds
from trafficlab.resources import GATEWAY_GROUP, SELECTOR_OPERATORS

__all__ = ["GatewayState", "Listener", "accepted_classes", "gateway_state", "gateway_status",
           "listener_status"]

@dataclass
class Listener:
    """One ``spec.listeners[i]`` of a Gateway of ours, with what translation decided about it."""

    gateway: Obj
    index: int
    name: str
    port: int
    protocol: str
    hostname: str | None
    allowed_routes: Obj
    supported_kinds: list[Obj] = field(default_factory=list)
    kind_errors: list[str] = field(default_factory=list)
    unsupported: str | None = None  # why Accepted=False, if so
    conflict: str | None = None  # why Conflicted=True, if so
    invalid: str | None = None  # why Programmed=False though accepted (a bad route selector)
    bind: tuple[str, int] | None = None
    attached: set[str] = field(default_factory=set)

    @property
    def namespace(self) -> str:
        return str(self.gateway["metadata"]["namespace"])

    @property
    def gateway_name(self) -> str:
        return str(self.gateway["metadata"]["name"])

    @property
    def ir_name(self) -> str:
        return f"{self.namespace}/{self.gateway_name}/{self.port}"

    @property
    def valid(self) -> bool:
        return self.unsupported is None and self.conflict is None and self.invalid is None

    @property
    def programmed(self) -> bool:
        return self.valid and self.bind is not None

    def takes(self, kind: RouteKind) -> bool:
        """Whether routes of ``kind`` may attach here (``supportedKinds``)."""
        return kind.ref in self.supported_kinds


@dataclass
class GatewayState:
    """A Gateway of an accepted class and its listeners."""

    obj: Obj
    listeners: list[Listener]

    @property
    def label(self) -> str:
        meta = self.obj["metadata"]
        return f"{meta['namespace']}/{meta['name']}"


def accepted_classes(ctx: Pass) -> set[str]:
    """Names of the classes we accept, with their status. Other controllers' get none from us."""
    accepted: set[str] = set()
    for gc in ctx.of_kind("GatewayClass"):
        controller = gc.get("spec", {}).get("controllerName")
        if controller not in CONTROLLER_NAMES:
            continue
        name = str(gc["metadata"]["name"])
        accepted.add(name)
        ctx.statuses[ObjectKey.of(gc)] = {"conditions": [condition(
            "Accepted", True, "Accepted",
            f"TrafficLab's gateway controller accepts this class ({controller}).",
            generation(gc),
        )]}
    return accepted


def gateway_state(ctx: Pass, gw: Obj) -> GatewayState:
    """Decide about each listener of ``gw``: served or not, and why."""
    ns, name = str(gw["metadata"]["namespace"]), str(gw["metadata"]["name"])
    listeners: list[Listener] = []
    for i, spec in enumerate(gw.get("spec", {}).get("listeners") or []):
        listener = Listener(
            gateway=gw, index=i, name=str(spec["name"]), port=int(spec["port"]),
            protocol=str(spec.get("protocol", "")), hostname=spec.get("hostname") or None,
            allowed_routes=spec.get("allowedRoutes") or {},
        )
        where = f"spec.listeners[{i}]"
        served = [kind for kind in route_kinds() if listener.protocol in kind.protocols]
        if not served:
            protocols = sorted({p for kind in route_kinds() for p in kind.protocols})
            listener.unsupported = (
                f"{where}.protocol: {listener.protocol} is not supported; "
                f"TrafficLab serves {' and '.join(protocols)} listeners only"
            )
            ctx.warn(f"Gateway {ns}/{name}: listener {listener.name} uses protocol "
                     f"{listener.protocol}, which TrafficLab does not serve; it is ignored.")
        else:
            _route_kinds(listener, served, where)
            listener.invalid = _namespaces_problem(listener.allowed_routes, where)
            if listener.invalid:
                ctx.warn(f"Gateway {ns}/{name}: listener {listener.name} serves nothing: "
                         f"{listener.invalid}")
        listener.bind = ctx.snapshot.bind.get((ns, name, listener.port))
        listeners.append(listener)
    # Listeners sharing a port must differ in hostname ("Distinct Listeners" in the Gateway
    # spec). Indistinct ones are all rejected: "The implementation MUST NOT pick one
    # conflicting Listener as the winner."
    groups: dict[tuple[int, str], list[Listener]] = {}
    for listener in listeners:
        if listener.unsupported is None:
            groups.setdefault((listener.port, listener.hostname or ""), []).append(listener)
    for (port, host), same in groups.items():
        if len(same) > 1:
            names = ", ".join(x.name for x in same)
            for listener in same:
                listener.conflict = (f"listeners {names} all use port {port} with "
                                     f"{'hostname ' + host if host else 'no hostname'}")
    for listener in listeners:
        if listener.valid and listener.bind is None:
            ctx.warn(f"Gateway {ns}/{name}: no local port is bound for port "
                     f"{listener.port} yet; listener {listener.name} serves nothing "
                     "until it is.")
    return GatewayState(gw, listeners)


def _route_kinds(listener: Listener, served: list[RouteKind], where: str) -> None:
    """Resolve ``allowedRoutes.kinds`` against the kinds ``served`` on the listener's protocol
    (HTTPRoute on HTTP)."""
    kinds = listener.allowed_routes.get("kinds") or []
    if not kinds:
        # "When unspecified or empty, the kinds of Routes selected are determined using the
        # Listener protocol" -- HTTPRoute for HTTP.
        listener.supported_kinds = [kind.ref for kind in served]
        return
    for k, wanted in enumerate(kinds):
        group = wanted.get("group", GATEWAY_GROUP)
        found = next((x for x in served if x.group == group and x.kind == wanted.get("kind")),
                     None)
        if found is not None:
            if not listener.takes(found):
                listener.supported_kinds.append(found.ref)
        else:
            names = ", ".join(x.kind for x in served)
            listener.kind_errors.append(
                f"{where}.allowedRoutes.kinds[{k}]: {group or 'core'}/{wanted.get('kind')} is "
                f"not a route kind TrafficLab supports on an {listener.protocol} listener; "
                f"only {names} {'is' if len(served) == 1 else 'are'}"
            )


def _namespaces_problem(allowed_routes: Obj, where: str) -> str | None:
    """Why a listener's ``allowedRoutes.namespaces`` cannot select anything, or None."""
    namespaces = allowed_routes.get("namespaces") or {}
    if namespaces.get("from") != "Selector":
        return None
    at = f"{where}.allowedRoutes.namespaces.selector"
    selector = namespaces.get("selector")
    if selector is None:
        return f"{at} is required when allowedRoutes.namespaces.from is Selector"
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        op, values = expr.get("operator"), expr.get("values") or []
        if op not in SELECTOR_OPERATORS:
            return (f"{at}.matchExpressions[{i}].operator: {op!r} is not one of "
                    f"{', '.join(SELECTOR_OPERATORS)}")
        if op in ("In", "NotIn") and not values:
            return f"{at}.matchExpressions[{i}].values: {op} needs at least one value"
        if op in ("Exists", "DoesNotExist") and values:
            return f"{at}.matchExpressions[{i}].values: {op} takes no values"
    return None


def gateway_status(state: GatewayState) -> dict[str, Any]:
    """The Gateway's ``status``: Accepted, Programmed, addresses and every listener."""
    gen = generation(state.obj)
    listener_statuses = [listener_status(x, gen) for x in state.listeners]
    invalid = [x for x in state.listeners if not x.valid]
    programmed = [x for x in state.listeners if x.programmed]
    if not invalid:
        accepted = condition("Accepted", True, "Accepted", "The Gateway is accepted.", gen)
    elif len(invalid) < len(state.listeners):
        accepted = condition("Accepted", True, "ListenersNotValid",
                             f"Listener(s) {_names(invalid)} are not valid and not served "
                             "(see status.listeners); the other listeners are.", gen)
    else:
        accepted = condition("Accepted", False, "ListenersNotValid",
                             f"No listener is valid ({_names(invalid)}); "
                             "see status.listeners.", gen)
    bound = sorted({x.bind[0] for x in programmed if x.bind})
    unsupported, unusable = _address_problems(state.obj, bound)
    if unsupported and accepted["status"] == "True":
        # GatewaySpec.addresses: an address the implementation cannot honour "MUST" be
        # reported in the Gateway's conditions; UnsupportedAddress is the type's reason.
        accepted = condition("Accepted", False, "UnsupportedAddress",
                             f"{'; '.join(unsupported)}. TrafficLab's local gateway binds "
                             "IPAddress 127.0.0.1 only: remove spec.addresses or ask "
                             "for that address.", gen)
    if programmed and unusable:
        prog = condition("Programmed", False, "AddressNotUsable",
                         f"{'; '.join(unusable)}; the listeners stay on "
                         f"{', '.join(bound)} only. Remove spec.addresses or ask for "
                         "127.0.0.1.", gen)
    elif programmed:
        where = ", ".join(sorted({f"{x.bind[0]}:{x.bind[1]} (port {x.port})"
                                  for x in programmed if x.bind}))
        prog = condition("Programmed", True, "Programmed", f"Envoy listens on {where}.", gen)
    elif any(x.valid for x in state.listeners):
        prog = condition("Programmed", False, "AddressNotAssigned",
                         "No local port has been bound for this Gateway's listeners yet.", gen)
    else:
        prog = condition("Programmed", False, "Invalid",
                         "The Gateway has no valid listener to program.", gen)
    return {
        "addresses": [{"type": _address_type(a), "value": a} for a in bound],
        "conditions": [accepted, prog],
        "listeners": listener_statuses,
    }


def listener_status(listener: Listener, gen: int | None) -> dict[str, Any]:
    """One entry of ``status.listeners``."""
    if listener.unsupported:
        accepted = condition("Accepted", False, "UnsupportedProtocol",
                             listener.unsupported, gen)
    elif listener.conflict:
        # GEP-1713's examples report a hostname conflict as Accepted=False PortUnavailable.
        accepted = condition("Accepted", False, "PortUnavailable",
                             f"Conflicted: {listener.conflict}; none of them is served.", gen)
    else:
        accepted = condition("Accepted", True, "Accepted", "The listener is accepted.", gen)
    if listener.invalid:
        programmed = condition("Programmed", False, "Invalid", listener.invalid, gen)
    elif not listener.valid:
        programmed = condition("Programmed", False, "Invalid",
                               "The listener is not accepted; see its Accepted condition.", gen)
    elif listener.bind is None:
        programmed = condition("Programmed", False, "AddressNotAssigned",
                               f"No local port is bound for port {listener.port} yet.", gen)
    else:
        address, port = listener.bind
        programmed = condition("Programmed", True, "Programmed",
                               f"Envoy listens on {address}:{port} for port {listener.port}.",
                               gen)
    if listener.kind_errors:
        resolved = condition("ResolvedRefs", False, "InvalidRouteKinds",
                             "; ".join(listener.kind_errors), gen)
    else:
        resolved = condition("ResolvedRefs", True, "ResolvedRefs",
                             "All references are resolved.", gen)
    if listener.conflict:
        conflicted = condition("Conflicted", True, "HostnameConflict", listener.conflict, gen)
    else:
        conflicted = condition("Conflicted", False, "NoConflicts", "No conflicts.", gen)
    return {
        "name": listener.name,
        "supportedKinds": [dict(k) for k in listener.supported_kinds],
        "attachedRoutes": len(listener.attached),
        "conditions": [accepted, programmed, resolved, conflicted],
    }


def _names(listeners: Iterable[Listener]) -> str:
    return ", ".join(x.name for x in listeners)


def _address_problems(gateway: Obj, bound: list[str]) -> tuple[list[str], list[str]]:
    """The requested ``spec.addresses`` this gateway cannot honour: (unsupported, unusable).

    A type other than IPAddress is unsupported; an IPAddress with a value the lab has not
    bound is unusable; an IPAddress without a value asks for any address, and gets ours.
    """
    unsupported: list[str] = []
    unusable: list[str] = []
    for i, address in enumerate((gateway.get("spec") or {}).get("addresses") or []):
        kind = str(address.get("type") or "IPAddress")
        value = address.get("value")
        where = f"spec.addresses[{i}]"
        if kind != "IPAddress":
            unsupported.append(f"{where}.type: {kind} addresses are not supported")
        elif value and str(value) not in bound:
            unusable.append(f"{where}.value: {value} is not an address this lab can bind")
    return unsupported, unusable


def _address_type(address: str) -> str:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return "Hostname"
    return "IPAddress"
