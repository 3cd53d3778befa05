"""Every MUST of the Gateway API v1.6.1 status documentation for the kinds the lab accepts.

One test per MUST (quoted from the CRDs' status field descriptions), run on the translator
that writes the status a running lab serves. Pure: no processes.

Not applicable here: ``GatewayClass status.supportedFeatures`` "MUST be sorted" (the lab
publishes no supportedFeatures; the field is optional), and the two "MUST clearly document"
sentences on ``parentRef.port``/``sectionName`` for parents other than Gateways (the lab
takes Gateways only; a parentRef to another kind gets no status of ours).
"""

from __future__ import annotations

import copy
from typing import Any

from trafficlab.controlplane.snapshot import ObjectKey, Snapshot
from trafficlab.gateway.translate import CONTROLLER_NAME, translate
from trafficlab.manifests import baseline_dir, load_manifests
from trafficlab.resources import validate

Obj = dict[str, Any]
GROUP = "gateway.networking.k8s.io"


def _statuses(objects: list[Obj]) -> dict[ObjectKey, Obj]:
    prepared = []
    for i, obj in enumerate(objects):
        out = validate(copy.deepcopy(obj))
        meta = out["metadata"]
        meta.setdefault("uid", f"uid-{i}")
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", f"2026-01-01T00:00:{i:02d}Z")
        prepared.append(out)
    return dict(translate(Snapshot(revision=1, objects=tuple(prepared))).statuses)


def _baseline(**replace: Obj) -> list[Obj]:
    """The lab's baseline objects, with some replaced by name."""
    return [replace.get(o["metadata"]["name"], o) for o in load_manifests(baseline_dir())]


def _gateway(*listeners: Obj) -> Obj:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Gateway",
            "metadata": {"name": "task-api-gateway", "namespace": "default"},
            "spec": {"gatewayClassName": "lab", "listeners": list(listeners)}}


def _listener(name: str, port: int = 80, **extra: Any) -> Obj:
    return {"name": name, "protocol": "HTTP", "port": port, **extra}


def _route(name: str = "task-api", *, parent: Obj | None = None, rules: list[Obj] | None = None,
           namespace: str = "default") -> Obj:
    return {"apiVersion": f"{GROUP}/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"parentRefs": [parent or {"name": "task-api-gateway"}],
                     "rules": rules or [{"backendRefs": [{"name": "task-api-v1", "port": 80}]}]}}


def _conditions(status: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in status.get("conditions", [])}


def _listener_status(statuses: dict[ObjectKey, Obj], name: str) -> Obj:
    gateway = statuses[ObjectKey("Gateway", "default", "task-api-gateway")]
    return next(x for x in gateway["listeners"] if x["name"] == name)


def _route_parent(statuses: dict[ObjectKey, Obj], name: str = "task-api") -> Obj:
    parents = statuses[ObjectKey("HTTPRoute", "default", name)]["parents"]
    assert len(parents) == 1
    return dict(parents[0])


# -- GatewayClass ------------------------------------------------------------------------------
def test_status_on_every_gatewayclass_that_names_our_controller() -> None:
    """GatewayClass status: "Implementations MUST populate status on all GatewayClass resources
    which specify their controller name." (and on no other)."""
    classes = [{"apiVersion": f"{GROUP}/v1", "kind": "GatewayClass", "metadata": {"name": name},
                "spec": {"controllerName": controller}}
               for name, controller in (("ours", "trafficlab.dev/gateway-controller"),
                                        ("eg", "gateway.envoyproxy.io/gatewayclass-controller"),
                                        ("theirs", "example.com/other-controller"))]
    statuses = _statuses(classes)
    for name in ("ours", "eg"):
        assert _conditions(statuses[ObjectKey("GatewayClass", "", name)])["Accepted"]["status"] == "True"
    assert ObjectKey("GatewayClass", "", "theirs") not in statuses


# -- Gateway listeners -------------------------------------------------------------------------
def test_attached_routes_is_set_even_on_a_listener_that_is_not_accepted() -> None:
    """listeners[].attachedRoutes: "the AttachedRoutes field count MUST be set for Listeners, even
    if the Accepted condition of an individual Listener is set to "False"."."""
    gateway = _gateway(_listener("http"), _listener("udp", 81, protocol="UDP"))
    statuses = _statuses(_baseline(**{"task-api-gateway": gateway}))
    udp = _listener_status(statuses, "udp")
    assert _conditions(udp)["Accepted"]["status"] == "False"
    assert udp["attachedRoutes"] == 0
    assert _listener_status(statuses, "http")["attachedRoutes"] == 1


def test_only_accepted_routes_are_counted() -> None:
    """listeners[].attachedRoutes: "Routes with any other value for the Accepted condition MUST
    NOT be included in this count." A route whose every rule is invalid is not Accepted."""
    invalid = _route("broken", rules=[{"matches": [{"path": {"type": "RegularExpression",
                                                            "value": "/(?<=x)tasks"}}],
                                       "backendRefs": [{"name": "task-api-v1", "port": 80}]}])
    statuses = _statuses([*_baseline(), invalid])
    assert _conditions(_route_parent(statuses, "broken"))["Accepted"]["status"] == "False"
    assert _listener_status(statuses, "http")["attachedRoutes"] == 1  # task-api only


def test_supported_kinds_lists_only_the_supported_ones() -> None:
    """listeners[].supportedKinds: "This MUST represent the kinds supported by an implementation
    for that Listener configuration. If kinds are specified in Spec that are not supported, they
    MUST NOT appear in this list and an implementation MUST set the "ResolvedRefs" condition to
    "False" with the "InvalidRouteKinds" reason. If both valid and invalid Route kinds are
    specified, the implementation MUST reference the valid Route kinds that have been specified."""
    mixed = _listener("http", allowedRoutes={"kinds": [{"kind": "HTTPRoute"}, {"kind": "TCPRoute"}]})
    only_bad = _listener("other", 81, allowedRoutes={"kinds": [{"kind": "TCPRoute"}]})
    statuses = _statuses(_baseline(**{"task-api-gateway": _gateway(mixed, only_bad)}))
    http = _listener_status(statuses, "http")
    assert http["supportedKinds"] == [{"group": GROUP, "kind": "HTTPRoute"}]
    assert _conditions(http)["ResolvedRefs"]["reason"] == "InvalidRouteKinds"
    assert _conditions(http)["ResolvedRefs"]["status"] == "False"
    other = _listener_status(statuses, "other")
    assert other["supportedKinds"] == []
    assert _conditions(other)["ResolvedRefs"]["reason"] == "InvalidRouteKinds"
    # Without allowedRoutes.kinds: what the lab supports for an HTTP listener.
    plain = _listener_status(_statuses(_baseline()), "http")
    assert plain["supportedKinds"] == [{"group": GROUP, "kind": "HTTPRoute"}]


# -- HTTPRoute parents -------------------------------------------------------------------------
def test_accepted_is_set_for_a_parent_of_ours_with_our_controller_name() -> None:
    """parents[].conditions: "...that Gateway's controller MUST set the "Accepted" condition on
    the Route"; parents[].controllerName: "Controllers MUST populate this field when writing
    status." A parentRef to a Gateway that does not exist gets no status of ours."""
    statuses = _statuses([*_baseline(), _route("stray", parent={"name": "no-such-gateway"})])
    parent = _route_parent(statuses)
    assert parent["controllerName"] == CONTROLLER_NAME
    assert _conditions(parent)["Accepted"]["status"] == "True"
    assert statuses.get(ObjectKey("HTTPRoute", "default", "stray"), {}).get("parents", []) == []


def test_a_route_with_one_implemented_rule_is_accepted() -> None:
    """parents[].conditions: "A Route MUST be considered "Accepted" if at least one of the
    Route's rules is implemented by the Gateway." The other rule is reported PartiallyInvalid."""
    rules = [{"matches": [{"path": {"type": "RegularExpression", "value": "/(?<=x)tasks"}}],
              "backendRefs": [{"name": "task-api-v2", "port": 80}]},
             {"backendRefs": [{"name": "task-api-v1", "port": 80}]}]
    conditions = _conditions(_route_parent(_statuses(_baseline(**{"task-api": _route(rules=rules)}))))
    assert conditions["Accepted"]["status"] == "True"
    assert conditions["PartiallyInvalid"]["status"] == "True"
    assert "Dropped Rule(s) 0" in conditions["PartiallyInvalid"]["message"]


def test_one_of_two_listeners_accepting_is_attached_none_is_detached() -> None:
    """parentRef.port / sectionName: "If 1 of 2 Gateway listeners accept attachment from the
    referencing Route, the Route MUST be considered successfully attached. If no Gateway
    listeners accept attachment from this Route, the Route MUST be considered detached."""
    same = _listener("same", allowedRoutes={"namespaces": {"from": "Same"}})
    other_port = _listener("other", 8081, allowedRoutes={"namespaces": {"from": "Same"}},
                           hostname="shop.example")
    gateway = _gateway(same, other_port)
    # 1 of 2: the route's hostname matches only listener "same" (which has none).
    route = _route(parent={"name": "task-api-gateway"})
    route["spec"]["hostnames"] = ["api.example"]
    statuses = _statuses(_baseline(**{"task-api-gateway": gateway, "task-api": route}))
    assert _conditions(_route_parent(statuses))["Accepted"]["status"] == "True"
    assert _listener_status(statuses, "same")["attachedRoutes"] == 1
    assert _listener_status(statuses, "other")["attachedRoutes"] == 0
    # None of them: both take routes from their own namespace only; the route is elsewhere.
    elsewhere = _route("elsewhere", namespace="team-a",
                       parent={"name": "task-api-gateway", "namespace": "default"})
    statuses = _statuses([*_baseline(**{"task-api-gateway": gateway}), elsewhere])
    parents = statuses[ObjectKey("HTTPRoute", "team-a", "elsewhere")]["parents"]
    accepted = _conditions(parents[0])["Accepted"]
    assert accepted["status"] == "False" and accepted["reason"] == "NotAllowedByListeners"
