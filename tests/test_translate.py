"""Translation Gateway API objects -> (IR, statuses): golden files plus targeted checks.

Golden pairs live in ``tests/testdata/translate/<case>.in.yaml`` -> ``<case>.out.yaml``.
An input holds ``revision``, ``objects``, ``endpoints`` and ``bind``; objects may leave out
the metadata the store would add (uid, generation 1, creationTimestamp
2024-05-01T10:00:00Z): ``load_snapshot`` fills it in. The output holds the statuses, the IR
(``dataclasses.asdict``) and the warnings. ``pytest --update-golden`` rewrites the outputs;
review the diff before committing.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from pathlib import Path
from typing import Any

import pytest
import yaml

from trafficlab.controlplane.snapshot import ObjectKey, Snapshot
from trafficlab.controlplane.status import RouteError, condition, merge_status, set_condition
from trafficlab.gateway.ir import DirectResponse, Endpoint, Forward, Redirect, Xds
from trafficlab.gateway.translate import TranslateResult, parse_duration_ms, translate

TESTDATA = Path(__file__).parent / "testdata" / "translate"
CASES = sorted(p.name[: -len(".in.yaml")] for p in TESTDATA.glob("*.in.yaml"))
DEFAULT_CREATED = "2024-05-01T10:00:00Z"


def load_snapshot(path: Path) -> Snapshot:
    """A Snapshot from a golden input file (see the module docstring for its shape)."""
    data = yaml.safe_load(path.read_text())
    objects = []
    for obj in data.get("objects") or []:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{obj['kind']}-{meta.get('namespace', '')}-{meta['name']}")
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", DEFAULT_CREATED)
        objects.append(obj)
    endpoints: dict[tuple[str, str], dict[int, tuple[Endpoint, ...]]] = {}
    for entry in data.get("endpoints") or []:
        eps = tuple(Endpoint(h, int(p)) for h, p in (e.rsplit(":", 1) for e in entry["endpoints"]))
        endpoints.setdefault((entry["namespace"], entry["service"]), {})[int(entry["port"])] = eps
    bind = {(b["namespace"], b["gateway"], int(b["port"])): (b["address"], int(b["bind_port"]))
            for b in data.get("bind") or []}
    return Snapshot(revision=int(data["revision"]), objects=tuple(objects),
                    endpoints=endpoints, bind=bind)


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so the result dumps as plain YAML."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def render(result: TranslateResult) -> dict[str, Any]:
    """The golden output: statuses, IR as plain data, warnings.

    ``dataclasses.asdict`` drops which RouteAction a route has, so each action is tagged
    with ``kind`` (Forward, DirectResponse or Redirect).
    """
    ir = _plain(dataclasses.asdict(result.ir))
    for listener, ir_listener in zip(ir["listeners"], result.ir.listeners, strict=True):
        for vhost, ir_vhost in zip(listener["virtual_hosts"], ir_listener.virtual_hosts,
                                   strict=True):
            for route, ir_route in zip(vhost["routes"], ir_vhost.routes, strict=True):
                route["action"] = {"kind": type(ir_route.action).__name__, **route["action"]}
    return {
        "statuses": [
            {"kind": k.kind, "namespace": k.namespace, "name": k.name, "status": _plain(s)}
            for k, s in result.statuses.items()
        ],
        "ir": ir,
        "warnings": list(result.warnings),
    }


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=100, default_flow_style=False)


def run_case(case: str) -> TranslateResult:
    result = translate(load_snapshot(TESTDATA / f"{case}.in.yaml"))
    result.ir.validate()  # the translator must never produce IR the runner would refuse
    return result


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, update_golden: bool) -> None:
    out_path = TESTDATA / f"{case}.out.yaml"
    text = dump(render(run_case(case)))
    if update_golden:
        out_path.write_text(text)
        return
    assert out_path.exists(), f"{out_path.name} is missing; run pytest --update-golden"
    expected = out_path.read_text()
    if yaml.safe_load(expected) != yaml.safe_load(text):
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                            f"{case}.out.yaml (golden)", f"{case} (now)"))
        pytest.fail(f"translation of {case} changed (rerun with --update-golden if intended):"
                    f"\n{diff}")


def test_translation_is_deterministic() -> None:
    for case in CASES:
        assert render(run_case(case)) == render(run_case(case)), case


def test_every_golden_input_has_an_output() -> None:
    outputs = {p.name[: -len(".out.yaml")] for p in TESTDATA.glob("*.out.yaml")}
    assert outputs == set(CASES)


# --------------------------------------------------------------------------------------
# Targeted checks: the golden files pin everything, these say what matters and why.
# --------------------------------------------------------------------------------------


def _status(result: TranslateResult, kind: str, ns: str, name: str) -> dict[str, Any]:
    return result.statuses[ObjectKey(kind, ns, name)]


def _cond(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    found = [c for c in conditions if c["type"] == type_]
    assert len(found) == 1, f"expected one {type_} condition in {conditions}"
    return found[0]


def _route_conditions(result: TranslateResult, name: str) -> list[dict[str, Any]]:
    parents = _status(result, "HTTPRoute", "default", name)["parents"]
    conditions: list[dict[str, Any]] = parents[0]["conditions"]
    return conditions


def _routes(ir: Xds) -> list[Any]:
    return [r for lst in ir.listeners for vh in lst.virtual_hosts for r in vh.routes]


def test_baseline_statuses_and_ir() -> None:
    result = run_case("baseline")
    assert result.ir.version == "1"
    gc = _status(result, "GatewayClass", "", "lab")
    assert _cond(gc["conditions"], "Accepted")["status"] == "True"
    gw = _status(result, "Gateway", "default", "task-api-gateway")
    assert gw["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    assert [_cond(gw["conditions"], t)["status"] for t in ("Accepted", "Programmed")] == [
        "True", "True"]
    (listener,) = gw["listeners"]
    assert listener["attachedRoutes"] == 1
    assert listener["supportedKinds"] == [
        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}]
    assert _cond(listener["conditions"], "Conflicted")["status"] == "False"
    parent = _status(result, "HTTPRoute", "default", "task-api")["parents"][0]
    assert parent["controllerName"] == "trafficlab.dev/gateway-controller"
    assert parent["parentRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                   "name": "task-api-gateway"}
    assert all(c["observedGeneration"] == 1 and "lastTransitionTime" not in c
               for c in parent["conditions"])
    (lst,) = result.ir.listeners
    assert (lst.name, lst.address, lst.port, lst.bind_port) == (
        "default/task-api-gateway/80", "127.0.0.1", 80, 18080)
    (vhost,) = lst.virtual_hosts
    assert vhost.domains == ("*",)
    (route,) = vhost.routes
    assert route.name == "httproute/default/task-api/rule/0/match/0/*"
    assert route.action == Forward((route.action.destinations[0],))  # type: ignore[union-attr]
    assert [c.name for c in result.ir.clusters] == ["service/default/task-api-v1/80"]
    # Endpoints are sorted for stable output.
    assert [e.port for e in result.ir.clusters[0].endpoints] == [41000, 41001]


def test_canary_weights_are_kept_exactly() -> None:
    (route,) = _routes(run_case("canary").ir)
    assert isinstance(route.action, Forward)
    assert [(d.cluster, d.weight) for d in route.action.destinations] == [
        ("service/default/task-api-v1/80", 90), ("service/default/task-api-v2/80", 10)]


def test_weight_zero_gets_no_destination() -> None:
    result = run_case("weight-zero")
    (route,) = _routes(result.ir)
    assert isinstance(route.action, Forward)
    assert [d.cluster for d in route.action.destinations] == ["service/default/task-api-v1/80"]
    # The cluster exists anyway, so a later weight flip needs no new cluster.
    assert "service/default/task-api-v2/80" in [c.name for c in result.ir.clusters]


def test_all_zero_weights_answer_500() -> None:
    result = run_case("all-zero-weights")
    (route,) = _routes(result.ir)
    assert route.action == DirectResponse(500)
    assert any("weight 0" in w for w in result.warnings)


def test_unresolved_backend_keeps_its_share_as_500() -> None:
    result = run_case("backend-not-found")
    (route,) = _routes(result.ir)
    assert isinstance(route.action, Forward)
    assert [(d.cluster, d.weight) for d in route.action.destinations] == [
        ("service/default/task-api-v1/80", 90), (None, 10)]
    conditions = _route_conditions(result, "task-api")
    assert _cond(conditions, "Accepted")["status"] == "True"
    resolved = _cond(conditions, "ResolvedRefs")
    assert (resolved["status"], resolved["reason"]) == ("False", "BackendNotFound")
    assert ("spec.rules[0].backendRefs[1]: Service default/task-api-v3 not found"
            in resolved["message"])
    assert "spec.rules[0].backendRefs[2].port" in resolved["message"]
    assert ("HTTPRoute default/task-api: backendRef task-api-v3 (rule 0) not found; "
            "its 10% share gets HTTP 500.") in result.warnings


def test_invalid_kind() -> None:
    result = run_case("invalid-kind")
    resolved = _cond(_route_conditions(result, "task-api"), "ResolvedRefs")
    assert (resolved["status"], resolved["reason"]) == ("False", "InvalidKind")
    (route,) = _routes(result.ir)
    assert isinstance(route.action, Forward)
    assert [d.cluster for d in route.action.destinations] == [
        None, "service/default/task-api-v2/80"]


def test_cross_namespace_needs_a_reference_grant() -> None:
    denied = run_case("cross-namespace-no-grant")
    resolved = _cond(_route_conditions(denied, "task-api"), "ResolvedRefs")
    assert (resolved["status"], resolved["reason"]) == ("False", "RefNotPermitted")
    assert [r.action for r in _routes(denied.ir)] == [DirectResponse(500)]
    granted = run_case("cross-namespace-grant")
    resolved = _cond(_route_conditions(granted, "task-api"), "ResolvedRefs")
    assert resolved["status"] == "True"
    (route,) = _routes(granted.ir)
    assert isinstance(route.action, Forward)
    assert route.action.destinations[0].cluster == "service/shared/task-api-v2/80"


def test_listener_refusals() -> None:
    result = run_case("attachment")
    conditions = {p["parentRef"].get("sectionName", p["parentRef"]["name"]): _cond(p["conditions"],
                                                                                   "Accepted")
                  for p in _status(result, "HTTPRoute", "team", "elsewhere")["parents"]}
    assert conditions["http"]["reason"] == "NotAllowedByListeners"
    assert "allows routes from namespace default only" in conditions["http"]["message"]
    assert conditions["https"]["reason"] == "NotAllowedByListeners"
    assert conditions["missing"]["reason"] == "NoMatchingParent"
    assert "has no listener named 'missing'" in conditions["missing"]["message"]
    assert conditions["selected"]["status"] == "True"


def test_unsupported_protocol_listener() -> None:
    gw = _status(run_case("attachment"), "Gateway", "default", "task-api-gateway")
    https = next(x for x in gw["listeners"] if x["name"] == "https")
    accepted = _cond(https["conditions"], "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "UnsupportedProtocol")
    assert _cond(https["conditions"], "Programmed")["status"] == "False"
    assert https["supportedKinds"] == []
    accepted = _cond(gw["conditions"], "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("True", "ListenersNotValid")


def test_filters() -> None:
    result = run_case("filters")
    routes = {r.name.split("/rule/")[1].split("/match")[0]: r for r in _routes(result.ir)}
    mods = routes["0"]
    assert mods.request_headers.set == (("X-Set", "one"),)  # later duplicate (x-set) ignored
    assert mods.request_headers.add == (("X-Add", "a"),)
    assert mods.request_headers.remove == ("X-Remove",)
    assert mods.response_headers.set == (("X-Resp", "r"),)
    mirror = routes["1"]
    assert [(m.cluster, m.percent) for m in mirror.mirrors] == [
        ("service/default/task-api-v2/80", 20.0), ("service/default/task-api-v2/80", 50.0)]
    assert routes["2"].action == Redirect(scheme="https", port=443, status=301,
                                          path_kind="prefix", path_value="/new")
    assert routes["3"].rewrite is not None and routes["3"].rewrite.hostname == "v2.internal"
    assert routes["4"].action == DirectResponse(500)  # ExtensionRef: the rule is invalid
    assert isinstance(routes["5"].action, Forward)
    assert routes["5"].action.destinations[0].request_headers.set == (("X-Backend", "v1"),)
    conditions = _route_conditions(result, "task-api")
    assert _cond(conditions, "Accepted")["status"] == "True"
    partial = _cond(conditions, "PartiallyInvalid")
    assert partial["message"].startswith("Dropped Rule")
    assert "spec.rules[4].filters[0].type: ExtensionRef" in partial["message"]
    resolved = _cond(conditions, "ResolvedRefs")
    assert resolved["reason"] == "BackendNotFound"  # the unresolved mirror is dropped
    assert "spec.rules[1].filters[2].requestMirror.backendRef" in resolved["message"]


def test_all_rules_invalid_is_not_accepted() -> None:
    result = run_case("all-rules-invalid")
    accepted = _cond(_route_conditions(result, "task-api"), "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "UnsupportedValue")
    assert not [c for c in _route_conditions(result, "task-api") if c["type"] == "PartiallyInvalid"]
    gw = _status(result, "Gateway", "default", "task-api-gateway")
    assert gw["listeners"][0]["attachedRoutes"] == 0
    # The requests it would have processed get an error, not another route's answer.
    assert {r.action for r in _routes(result.ir)} == {DirectResponse(500)}


def test_timeouts() -> None:
    routes = {r.path.value: r for r in _routes(run_case("timeouts").ir)}
    assert (routes["/slow"].timeout_ms, routes["/slow"].backend_timeout_ms) == (10_000, 500)
    assert routes["/unbounded"].timeout_ms == 0  # "0s" disables the timeout
    assert routes["/"].timeout_ms is None


def test_no_endpoints_keeps_the_cluster_empty() -> None:
    result = run_case("no-endpoints")
    cluster = next(c for c in result.ir.clusters if c.name == "service/default/task-api-v2/80")
    assert cluster.endpoints == ()
    assert any("no ready endpoints; its 10% share gets HTTP 503" in w for w in result.warnings)


def test_hostnames_and_wildcards() -> None:
    result = run_case("hostnames")
    domains = {vh.name: vh.domains for lst in result.ir.listeners for vh in lst.virtual_hosts}
    assert domains == {
        "default/task-api-gateway/80/*": ("*",),
        "default/task-api-gateway/80/api.example.com": ("api.example.com",),
        "default/task-api-gateway/80/*.example.com": ("*.example.com",),
        "default/task-api-gateway/80/foo.example.com": ("foo.example.com",),
        "default/task-api-gateway/80/shop.example.com": ("shop.example.com",),
        "default/task-api-gateway/80/other.org": ("other.org",),
    }
    # Listener isolation: web-hosts reaches foo.example.com and api.example.com only through
    # the hostname-less listener, and those names belong to more specific listeners.
    names = [r.name for r in _routes(result.ir)]
    assert [n for n in names if "/web-hosts/" in n] == [
        "httproute/default/web-hosts/rule/0/match/0/other.org"]
    accepted = _cond(_route_conditions(result, "no-match"), "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "NoMatchingListenerHostname")


def test_foreign_and_missing_things_are_left_alone() -> None:
    result = run_case("ownership")
    kinds = {(k.kind, k.name) for k in result.statuses}
    assert ("GatewayClass", "other") not in kinds
    assert ("Gateway", "other-gateway") not in kinds
    assert ("Gateway", "classless") not in kinds
    # A route that was ours before and no longer points at us gets its entry cleared.
    assert _status(result, "HTTPRoute", "default", "moved-away") == {"parents": []}
    assert ("HTTPRoute", "foreign-only") not in kinds
    gw = _status(result, "Gateway", "default", "unbound")
    programmed = _cond(gw["conditions"], "Programmed")
    assert (programmed["status"], programmed["reason"]) == ("False", "AddressNotAssigned")
    assert not [lst for lst in result.ir.listeners if lst.name.startswith("default/unbound/")]
    conflicted = _status(result, "Gateway", "default", "conflicted")["listeners"]
    assert all(_cond(x["conditions"], "Conflicted")["reason"] == "HostnameConflict"
               for x in conflicted)
    assert any("does not exist" in w for w in result.warnings)


# --------------------------------------------------------------------------------------
# Small pure pieces
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "ms"), [
    ("10s", 10_000), ("500ms", 500), ("1h2m", 3_720_000), ("0s", 0), ("1m30s500ms", 90_500),
])
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "10", "1.5s", "10sec", "s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration_ms(text)


def test_route_error_carries_reason_and_type() -> None:
    err = RouteError("BackendNotFound", "ResolvedRefs", "spec.rules[0].backendRefs[0]: gone")
    assert (err.reason, err.condition_type, str(err)) == (
        "BackendNotFound", "ResolvedRefs", "spec.rules[0].backendRefs[0]: gone")


def test_set_condition_keeps_time_while_status_holds() -> None:
    first = set_condition([], condition("Accepted", True, "Accepted", "ok", 1), "T1")
    assert first[0]["lastTransitionTime"] == "T1"
    same = set_condition(first, condition("Accepted", True, "Accepted", "still ok", 2), "T2")
    assert (same[0]["lastTransitionTime"], same[0]["message"], same[0]["observedGeneration"]) == (
        "T1", "still ok", 2)
    flipped = set_condition(same, condition("Accepted", False, "NoMatchingParent", "no", 3), "T3")
    assert (flipped[0]["lastTransitionTime"], flipped[0]["status"]) == ("T3", "False")
    assert len(flipped) == 1
    assert first[0]["lastTransitionTime"] == "T1"  # inputs are not mutated


def test_merge_status_pairs_listeners_and_parents() -> None:
    ours = "trafficlab.dev/gateway-controller"
    ref = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}
    old = {
        "parents": [
            {"parentRef": ref, "controllerName": ours, "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                 "lastTransitionTime": "T0"},
                {"type": "PartiallyInvalid", "status": "True", "reason": "UnsupportedValue",
                 "message": "", "lastTransitionTime": "T0"},
                {"type": "example.com/Custom", "status": "True", "reason": "Mine", "message": "",
                 "lastTransitionTime": "T0"},
            ]},
            {"parentRef": {**ref, "name": "theirs"}, "controllerName": "example.com/other",
             "conditions": []},
        ],
    }
    new = {"parents": [{"parentRef": ref, "controllerName": ours, "conditions": [
        condition("Accepted", True, "Accepted", "fine", 2),
        condition("ResolvedRefs", False, "BackendNotFound", "gone", 2)]}]}
    merged = merge_status(old, new, "T9")
    mine, theirs = merged["parents"]
    times = {c["type"]: c["lastTransitionTime"] for c in mine["conditions"]}
    # Accepted kept its time; ResolvedRefs is new; the stale PartiallyInvalid is gone; a
    # domain-prefixed condition of someone else is kept untouched.
    assert times == {"Accepted": "T0", "ResolvedRefs": "T9", "example.com/Custom": "T0"}
    assert theirs["controllerName"] == "example.com/other"
    gateway = merge_status({"listeners": [{"name": "http", "conditions": [
        {"type": "Programmed", "status": "True", "lastTransitionTime": "T0"}]}]},
        {"listeners": [{"name": "http", "attachedRoutes": 2, "conditions": [
            {"type": "Programmed", "status": "True"}]}]}, "T5")
    assert gateway["listeners"][0]["conditions"][0]["lastTransitionTime"] == "T0"
    assert gateway["listeners"][0]["attachedRoutes"] == 2


@pytest.mark.parametrize(("addresses", "accepted", "programmed"), [
    ([{"type": "IPAddress", "value": "127.0.0.1"}], ("True", "Accepted"), ("True", "Programmed")),
    ([{"type": "IPAddress"}], ("True", "Accepted"), ("True", "Programmed")),  # any: ours
    ([{"type": "IPAddress", "value": "10.1.2.3"}], ("True", "Accepted"),
     ("False", "AddressNotUsable")),
    ([{"type": "Hostname", "value": "gw.example.com"}], ("False", "UnsupportedAddress"),
     ("True", "Programmed")),
])
def test_requested_addresses_the_lab_cannot_honour_are_reported(
        addresses: list[dict[str, str]], accepted: tuple[str, str],
        programmed: tuple[str, str]) -> None:
    # GatewaySpec.addresses: "If a value is set in the spec and the requested address is
    # invalid or unavailable, the implementation MUST indicate this in ... Conditions."
    snapshot = load_snapshot(TESTDATA / "baseline.in.yaml")
    objects = []
    for obj in snapshot.objects:
        if obj["kind"] == "Gateway":
            obj = {**obj, "spec": {**obj["spec"], "addresses": addresses}}
        objects.append(obj)
    result = translate(dataclasses.replace(snapshot, objects=tuple(objects)))
    gw = _status(result, "Gateway", "default", "task-api-gateway")
    got = [(c["status"], c["reason"]) for c in
           (_cond(gw["conditions"], "Accepted"), _cond(gw["conditions"], "Programmed"))]
    assert got == [accepted, programmed]
    assert gw["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]


@pytest.mark.parametrize(("namespaces", "problem"), [
    ({"from": "Selector"}, "is required when allowedRoutes.namespaces.from is Selector"),
    ({"from": "Selector", "selector": {"matchExpressions": [
        {"key": "team", "operator": "Equals", "values": ["a"]}]}}, "'Equals' is not one of"),
    ({"from": "Selector", "selector": {"matchExpressions": [
        {"key": "team", "operator": "In"}]}}, "In needs at least one value"),
    ({"from": "Selector", "selector": {"matchExpressions": [
        {"key": "team", "operator": "Exists", "values": ["a"]}]}}, "Exists takes no values"),
])
def test_a_listener_whose_route_selector_cannot_select_is_not_programmed(
        namespaces: dict[str, Any], problem: str) -> None:
    snapshot = load_snapshot(TESTDATA / "baseline.in.yaml")
    objects = []
    for obj in snapshot.objects:
        if obj["kind"] == "Gateway":
            obj = copy.deepcopy(obj)
            obj["spec"]["listeners"][0]["allowedRoutes"] = {"namespaces": namespaces}
        objects.append(obj)
    result = translate(dataclasses.replace(snapshot, objects=tuple(objects)))
    gw = _status(result, "Gateway", "default", "task-api-gateway")
    (listener,) = gw["listeners"]
    programmed = _cond(listener["conditions"], "Programmed")
    assert (programmed["status"], programmed["reason"]) == ("False", "Invalid")
    assert problem in programmed["message"]
    assert "spec.listeners[0].allowedRoutes.namespaces.selector" in programmed["message"]
    assert _cond(gw["conditions"], "Programmed")["status"] == "False"
    assert result.ir.listeners == () or all(not li.virtual_hosts for li in result.ir.listeners)
    accepted = _cond(_route_conditions(result, "task-api"), "Accepted")
    assert accepted["status"] == "False"
