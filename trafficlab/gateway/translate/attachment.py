"""Route attachment: parentRefs, allowedRoutes, sectionName and port, hostnames, and the
route's status per parent.

As Envoy Gateway's ``processAllowedListenersForParentRefs`` (``internal/gatewayapi/route.go``
and ``helpers.go``): a route names Gateways in ``spec.parentRefs``; each names listeners
(by ``sectionName`` and ``port``) that must allow it (``allowedRoutes``: kinds and
namespaces) and share a hostname with it (:func:`trafficlab.gateway.hostnames.intersect`).
For every attaching listener and domain, each match of each rule becomes one IR route in that
listener's virtual host, unless a more specific listener on the same port owns the domain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from trafficlab.controlplane.snapshot import ObjectKey
from trafficlab.controlplane.status import CONTROLLER_NAME, condition
from trafficlab.gateway.hostnames import covers, intersect, specificity
from trafficlab.gateway.precedence import match_sort_key
from trafficlab.gateway.translate.context import Obj, Pass, Placed, generation, had_ours
from trafficlab.gateway.translate.kinds import RouteKind, ir_route
from trafficlab.gateway.translate.listeners import GatewayState, Listener
from trafficlab.resources import GATEWAY_GROUP, selector_matches

__all__ = ["attach", "translate_route"]

# Kubernetes labels every Namespace with its own name; selectors may rely on it.
_NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def translate_route(ctx: Pass, gateways: Mapping[tuple[str, str], GatewayState],
                    kind: RouteKind, route: Obj) -> None:
    """Attach ``route`` (of ``kind``) to the listeners of ``gateways`` it names: its status
    per parent, and its IR routes placed in ``ctx.entries``."""
    meta = route["metadata"]
    ns, name = str(meta["namespace"]), str(meta["name"])
    label = f"{kind.kind} {ns}/{name}"
    spec = route.get("spec") or {}
    targets: list[tuple[int, Obj, GatewayState]] = []
    seen: list[Obj] = []
    for i, pref in enumerate(spec.get("parentRefs") or []):
        echo = _echo_parent_ref(pref)
        if echo["group"] != GATEWAY_GROUP or echo["kind"] != "Gateway" or echo in seen:
            continue  # other parent kinds (a mesh Service) are not ours to report on
        seen.append(echo)
        gw_ns = str(pref.get("namespace") or ns)
        state = gateways.get((gw_ns, str(pref["name"])))
        if state is None:
            if ctx.get("Gateway", gw_ns, str(pref["name"])) is None:
                ctx.warn(f"{label}: spec.parentRefs[{i}] names Gateway "
                         f"{gw_ns}/{pref['name']}, which does not exist; "
                         "the route is not attached there.")
            continue  # a Gateway of another class: its controller reports
        targets.append((i, echo, state))
    if not targets:
        if ctx.recording is not None:
            ctx.recording.read_own_status = True
        if had_ours(route):  # we reported before: clear our entries
            ctx.statuses[ObjectKey.of(route)] = kind.status([])
        return

    rules, errors = kind.rules(ctx, kind, route)
    gen = generation(route)
    resolved = [e for e in errors if e.condition_type == "ResolvedRefs"]
    invalid_rules = [r for r in rules if r.invalid]
    parents: list[Obj] = []
    route_key = kind.key(ns, name)
    for i, echo, state in targets:
        attached, reason, message = attach(ctx, kind, route, i, echo, state)
        conditions: list[Obj] = []
        if not attached:
            conditions.append(condition("Accepted", False, reason, message, gen))
            ctx.warn(f"{label}: {message}")
        elif len(invalid_rules) == len(rules):
            # Each invalid rule was already warned about by the kind's rules.
            text = "All rules are invalid: " + "; ".join(
                e.message for r in rules for e in r.invalid)
            conditions.append(condition("Accepted", False, "UnsupportedValue", text, gen))
        else:
            conditions.append(condition("Accepted", True, "Accepted", message, gen))
            for listener, _ in attached:
                listener.attached.add(route_key)
                if ctx.recording is not None:
                    ctx.recording.attached.append(
                        (listener.namespace, listener.gateway_name, listener.index))
        if resolved:
            conditions.append(condition("ResolvedRefs", False, resolved[0].reason,
                                        "; ".join(e.message for e in resolved), gen))
        else:
            conditions.append(condition("ResolvedRefs", True, "ResolvedRefs",
                                        "All references are resolved.", gen))
        if attached and invalid_rules and len(invalid_rules) < len(rules):
            # The spec's "Drop Rule(s)" approach needs this prefix; we answer 500 for the
            # dropped rule's matches rather than letting them fall through to other routes.
            dropped = ", ".join(str(r.index) for r in invalid_rules)
            why = "; ".join(e.message for r in invalid_rules for e in r.invalid)
            conditions.append(condition(
                "PartiallyInvalid", True, "UnsupportedValue",
                f"Dropped Rule(s) {dropped} (their matches answer HTTP 500): {why}", gen,
            ))
        parents.append({"parentRef": echo, "controllerName": CONTROLLER_NAME,
                        "conditions": conditions})
        for listener, domains in attached:
            if not listener.programmed:
                continue
            for domain in domains:
                if _isolated_from(listener, domain, state.listeners):
                    continue
                for rule in rules:
                    for match in rule.matches:
                        key = (listener.ir_name, domain, route_key, rule.index, match.index)
                        if key not in ctx.entries:
                            # The kind breaks the one tie precedence leaves: two kinds' routes
                            # of the same namespace/name.
                            ctx.entries[key] = Placed(ir_route(route_key, rule, match, domain),
                                                      (*match_sort_key(match.ref), kind.kind))
    ctx.statuses[ObjectKey.of(route)] = kind.status(parents)


def attach(ctx: Pass, kind: RouteKind, route: Obj, i: int, echo: Obj,
           state: GatewayState) -> tuple[list[tuple[Listener, list[str]]], str, str]:
    """Which listeners of ``state`` take the route, with the domains each serves it on."""
    ns = str(route["metadata"]["namespace"])
    where = f"spec.parentRefs[{i}]"
    candidates = state.listeners
    section, port = echo.get("sectionName"), echo.get("port")
    if section is not None:
        candidates = [x for x in candidates if x.name == section]
    if port is not None:
        candidates = [x for x in candidates if x.port == port]
    if not candidates:
        wanted = " and ".join(filter(None, [
            f"named {section!r}" if section is not None else "",
            f"on port {port}" if port is not None else "",
        ]))
        have = ", ".join(f"{x.name} (port {x.port})" for x in state.listeners) or "none"
        return [], "NoMatchingParent", (
            f"{where}: Gateway {state.label} has no listener {wanted}; "
            f"its listeners are {have}."
        )
    allowed = []
    refusals = []
    for listener in candidates:
        why = _refusal(ctx, kind, listener, ns)
        if why:
            refusals.append(why)
        else:
            allowed.append(listener)
    if not allowed:
        return [], "NotAllowedByListeners", (
            f"{where}: Gateway {state.label} refuses the route: " + "; ".join(refusals) + ".")
    hostnames = _unique(str(h) for h in (route.get("spec") or {}).get("hostnames") or [])
    attached = []
    for listener in allowed:
        domains = intersect(listener.hostname, hostnames)
        if domains:
            attached.append((listener, domains))
    if not attached:
        listed = ", ".join(f"{x.name} ({x.hostname})" for x in allowed)
        return [], "NoMatchingListenerHostname", (
            f"spec.hostnames: none of {', '.join(hostnames)} matches the hostname of "
            f"listener(s) {listed} of Gateway {state.label}."
        )
    names = ", ".join(x.name for x, _ in attached)
    return attached, "Accepted", f"Accepted by Gateway {state.label} (listener {names})."


def _refusal(ctx: Pass, kind: RouteKind, listener: Listener, route_ns: str) -> str | None:
    """Why ``listener`` refuses a route of ``kind`` from ``route_ns``, or None if it takes it."""
    if not listener.takes(kind):
        if listener.unsupported:
            return f"listener {listener.name} ({listener.protocol}) takes no {kind.kind}s here"
        return f"listener {listener.name} does not allow {kind.kind}s (allowedRoutes.kinds)"
    namespaces = listener.allowed_routes.get("namespaces") or {}
    origin = namespaces.get("from", "Same")
    gw_ns = listener.namespace
    if origin == "All":
        return None
    if origin == "Same":
        if route_ns == gw_ns:
            return None
        return (f"listener {listener.name} allows routes from namespace {gw_ns} only "
                f"(allowedRoutes.namespaces.from: Same), not from {route_ns}")
    if origin == "Selector":
        if selector_matches(namespaces.get("selector"), _namespace_labels(ctx, route_ns)):
            return None
        return (f"listener {listener.name} allows routes from namespaces matching its "
                f"allowedRoutes.namespaces.selector, and namespace {route_ns} does not match")
    return f"listener {listener.name} has unsupported allowedRoutes.namespaces.from {origin!r}"


def _namespace_labels(ctx: Pass, namespace: str) -> dict[str, str]:
    obj = ctx.get("Namespace", "", namespace)
    labels = dict((obj or {}).get("metadata", {}).get("labels") or {})
    labels[_NAMESPACE_NAME_LABEL] = namespace
    return labels


def _isolated_from(listener: Listener, domain: str, listeners: Iterable[Listener]) -> bool:
    """Whether requests for ``domain`` belong to a more specific listener on the same port.

    Listener isolation (Gateway ``spec.listeners`` doc, "General Listener behavior"): with
    listeners for "foo.example.com" and "*.example.com", a request to foo.example.com "SHOULD
    only be routed using routes attached to the foo.example.com Listener". So a domain that a
    route reaches through a less specific listener is left out of that listener's share.
    """
    rival = max((specificity(x.hostname) for x in listeners
                 if x.port == listener.port and x.programmed
                 and (x.hostname is None or covers(x.hostname, domain))), default=(0, 0))
    return specificity(listener.hostname) < rival


def _echo_parent_ref(pref: Obj) -> Obj:
    """The parentRef as the route gave it, with the CRD defaults for group and kind filled in."""
    out: Obj = {"group": pref.get("group", GATEWAY_GROUP), "kind": pref.get("kind", "Gateway")}
    for key in ("namespace", "name", "sectionName", "port"):
        if pref.get(key) is not None:
            out[key] = pref[key]
    return out


def _unique(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        if item.lower() not in seen:
            seen.add(item.lower())
            out.append(item)
    return out
