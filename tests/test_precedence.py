"""Match precedence: the ordering rules directly, then the upstream conformance expectations.

The second half replays the request -> backend cases of Gateway API v1.6.1's conformance
tests (``tests/testdata/conformance_cases.yaml``, transcribed from kubernetes-sigs/gateway-api
conformance/tests, Apache-2.0) against the IR: a small matcher in this file walks a virtual
host's routes in order, as Envoy does, and the backend it lands on must be the one the
conformance test expects. Parts that only a live data plane can observe (mirrored copies
arriving, timeouts firing, upstream headers) are checked as far as the IR shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from trafficlab.controlplane.snapshot import ObjectKey, Snapshot
from trafficlab.gateway.evaluate import Request, pick_route
from trafficlab.gateway.ir import DirectResponse, Endpoint, Forward, Route, Xds
from trafficlab.gateway.precedence import MatchRef, match_sort_key, matches_of, ordered_matches
from trafficlab.gateway.translate import translate

T0 = "2024-05-01T10:00:00Z"


def ref(path_type: str = "PathPrefix", value: str = "/", *, method: str | None = None,
        headers: int = 0, query: int = 0, created: str = T0, route: str = "default/r",
        rule: int = 0, match: int = 0) -> MatchRef:
    return MatchRef(path_type, value, method, headers, query, created, route, rule, match)


def first(*refs: MatchRef) -> MatchRef:
    return sorted(refs, key=match_sort_key)[0]


# --------------------------------------------------------------------------------------
# The rules, one at a time
# --------------------------------------------------------------------------------------


def test_exact_beats_any_prefix() -> None:
    exact = ref("Exact", "/a")
    prefix = ref("PathPrefix", "/a/very/long/prefix", method="GET", headers=5, query=5,
                 created="2000-01-01T00:00:00Z")
    assert first(prefix, exact) is exact


def test_longest_prefix_wins() -> None:
    short, long_ = ref(value="/v2"), ref(value="/v2/tasks")
    assert first(short, long_) is long_


def test_prefix_length_beats_method_headers_and_query() -> None:
    longer = ref(value="/tasks")
    richer = ref(value="/", method="POST", headers=3, query=3)
    assert first(richer, longer) is longer


def test_method_beats_header_count() -> None:
    method = ref(method="PATCH")
    headers = ref(headers=4)
    assert first(headers, method) is method


def test_more_headers_beat_fewer_and_then_query_counts() -> None:
    assert first(ref(headers=1, query=5), ref(headers=2)).header_count == 2
    assert first(ref(headers=1, query=1), ref(headers=1, query=2)).query_count == 2


def test_regular_expressions_rank_between_exact_and_prefix() -> None:
    exact, regex = ref("Exact", "/x"), ref("RegularExpression", "/v[0-9]+")
    prefix = ref(value="/v1/a/b")
    assert sorted([prefix, regex, exact], key=match_sort_key) == [exact, regex, prefix]
    long_regex = ref("RegularExpression", "/v[0-9]+/tasks/.*")
    assert first(regex, long_regex) is long_regex


def test_ties_go_to_the_oldest_route_then_alphabetical_then_list_order() -> None:
    old = ref(created="2024-01-01T00:00:00Z", route="zz/last-by-name")
    new = ref(created="2024-06-01T00:00:00Z", route="aa/first-by-name")
    assert first(new, old) is old
    a, b = ref(route="default/a"), ref(route="default/b")
    assert first(b, a) is a
    # "ns-a/x" sorts before "ns/x": the key is the "{namespace}/{name}" string.
    assert first(ref(route="ns/x"), ref(route="ns-a/x")).route == "ns-a/x"
    assert first(ref(rule=2), ref(rule=1, match=3)).rule == 1
    assert first(ref(match=1), ref(match=0)).match == 0


def test_timestamps_compare_as_times_not_strings() -> None:
    utc = ref(created="2024-05-01T10:00:00Z", route="default/b")
    offset = ref(created="2024-05-01T11:30:00+02:00", route="default/c")  # 09:30Z: older
    fractional = ref(created="2024-05-01T10:00:00.5Z", route="default/a")  # newer than utc
    assert sorted([utc, fractional, offset], key=match_sort_key) == [offset, utc, fractional]
    assert first(ref(created="", route="default/a"), utc) is utc  # unknown age sorts last


def _route(name: str, rules: list[dict[str, Any]] | None, created: str = T0,
           namespace: str = "default") -> dict[str, Any]:
    spec: dict[str, Any] = {"parentRefs": [{"name": "gw"}]}
    if rules is not None:
        spec["rules"] = rules
    return {"kind": "HTTPRoute", "metadata": {"name": name, "namespace": namespace,
                                              "creationTimestamp": created}, "spec": spec}


def test_matches_of_applies_defaults_and_counts_distinct_names() -> None:
    route = _route("r", [
        {},
        {"matches": [{"headers": [{"name": "X-A", "value": "1"}, {"name": "x-a", "value": "2"},
                                  {"name": "x-b", "value": "3"}],
                      "queryParams": [{"name": "q", "value": "1"}, {"name": "Q", "value": "1"},
                                      {"name": "q", "value": "2"}],
                      "method": "GET"}]},
    ])
    default, match = matches_of(route)
    assert (default.path_type, default.path_value, default.rule, default.match) == (
        "PathPrefix", "/", 0, 0)
    assert (match.path_type, match.path_value, match.method) == ("PathPrefix", "/", "GET")
    assert (match.header_count, match.query_count) == (2, 2)  # headers case-insensitive
    assert (match.route, match.created) == ("default/r", T0)
    assert [(r.rule, r.match) for r in matches_of(_route("empty", None))] == [(0, 0)]


def test_ordered_matches_across_routes() -> None:
    old = _route("old", [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]},
                         {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}]}],
                 created="2024-01-01T00:00:00Z")
    new = _route("new", [{"matches": [{"path": {"type": "Exact", "value": "/api/health"}},
                                      {"path": {"type": "PathPrefix", "value": "/api"}}]}],
                 created="2024-02-01T00:00:00Z")
    order = [(r.route, r.rule, r.match) for r in ordered_matches([new, old])]
    assert order == [("default/new", 0, 0), ("default/old", 1, 0), ("default/new", 0, 1),
                     ("default/old", 0, 0)]


# --------------------------------------------------------------------------------------
# Conformance: request -> backend, through translate() and a route matcher
# --------------------------------------------------------------------------------------

CONFORMANCE = yaml.safe_load(
    (Path(__file__).parent / "testdata" / "conformance_cases.yaml").read_text())
INFRA_NS = "gateway-conformance-infra"
GATEWAY = "same-namespace"
BIND = ("127.0.0.1", 18080)
SERVICES = [  # conformance/base/manifests.yaml: every backend serves port 8080
    (INFRA_NS, "infra-backend-v1"), (INFRA_NS, "infra-backend-v2"), (INFRA_NS, "infra-backend-v3"),
    ("gateway-conformance-web-backend", "web-backend"),
    ("gateway-conformance-app-backend", "app-backend-v1"),
    ("gateway-conformance-app-backend", "app-backend-v2"),
]


def _infra() -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = [
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
         "metadata": {"name": "conformance"},
         "spec": {"controllerName": "trafficlab.dev/gateway-controller"}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": GATEWAY, "namespace": INFRA_NS},
         "spec": {"gatewayClassName": "conformance", "listeners": [
             {"name": "http", "port": 80, "protocol": "HTTP",
              "allowedRoutes": {"namespaces": {"from": "Same"}}}]}},
    ]
    for ns in sorted({ns for ns, _ in SERVICES}):
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for ns, name in SERVICES:
        objects.append({"apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": name, "namespace": ns},
                        "spec": {"ports": [{"port": 8080, "targetPort": 3000, "protocol": "TCP"}]}})
    return objects


def _snapshot(manifests: list[dict[str, Any]]) -> Snapshot:
    objects = []
    for obj in _infra() + [dict(m) for m in manifests]:
        meta = dict(obj["metadata"])
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", T0)
        meta.setdefault("uid", f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}")
        objects.append({**obj, "metadata": meta})
    endpoints = {(ns, name): {8080: (Endpoint("127.0.0.1", 30000 + i),)}
                 for i, (ns, name) in enumerate(SERVICES)}
    return Snapshot(revision=1, objects=tuple(objects), endpoints=endpoints,
                    bind={(INFRA_NS, GATEWAY, 80): BIND})


def pick(ir: Xds, request: Mapping[str, Any]) -> Route | None:
    """The route Envoy would use for a conformance request (see trafficlab.gateway.evaluate)."""
    query = "&".join(f"{k}={v}" for k, v in (request.get("query") or {}).items())
    path = request["path"] + (f"?{query}" if query else "")
    return pick_route(ir, Request(path=path, method=request.get("method", "GET"),
                                  headers={k: str(v) for k, v in (request.get("headers") or {}).items()},
                                  host=request.get("host")))


def _service(cluster: str) -> tuple[str, str]:
    _, ns, name, _ = cluster.split("/")
    return ns, name


def _flatten() -> list[tuple[str, int]]:
    return [(t["name"], i) for t in CONFORMANCE["tests"] for i in range(len(t.get("cases") or []))]


TESTS = {t["name"]: t for t in CONFORMANCE["tests"]}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    """One translation per conformance test (its manifests on top of the base infra)."""
    out = {}
    for name, test in TESTS.items():
        result = translate(_snapshot(test["manifests"]))
        result.ir.validate()
        out[name] = result
    return out


def test_conformance_file_is_the_one_we_expect() -> None:
    assert CONFORMANCE["source"]["tag"] == "v1.6.1"
    names = set(TESTS)
    for required in ("HTTPRouteMatchingAcrossRoutes", "HTTPRoutePathMatchOrder",
                     "HTTPRouteHeaderMatching"):
        assert required in names


@pytest.mark.parametrize(("test_name", "index"), _flatten(),
                         ids=[f"{n}-{i}" for n, i in _flatten()])
def test_conformance_case(translated: dict[str, Any], test_name: str, index: int) -> None:
    case = TESTS[test_name]["cases"][index]
    request = case["request"]
    if "delay" in (request.get("query") or {}):
        pytest.skip("a timeout firing is observed on a live data plane, not in the IR")
    route = pick(translated[test_name].ir, request)
    expected = case.get("expect_status", 200)
    if expected == 404:
        assert route is None, f"expected no route (404) for {request}, got {route and route.name}"
        return
    assert route is not None, f"no route for {request}; expected {expected}"
    if expected == 500:
        assert route.action == DirectResponse(500), f"{route.name} answers {route.action}"
        return
    assert expected == 200, f"unexpected expectation {expected}"
    assert isinstance(route.action, Forward), f"{route.name} does not forward: {route.action}"
    clusters = [d.cluster for d in route.action.destinations]
    assert None not in clusters, f"{route.name} has unresolved backends: {clusters}"
    services = [_service(c) for c in clusters if c]
    if "expect_backend" in case:
        for ns, name in services:
            assert name.startswith(case["expect_backend"]), f"{route.name} -> {name}"
            assert ns == case["expect_namespace"]
    if "expect_backend_one_of" in case:
        assert {name for _, name in services} <= set(case["expect_backend_one_of"])
    for mirror_expectation in case.get("expect_mirrored_to") or []:
        wanted = (mirror_expectation["namespace"], mirror_expectation["backend"])
        percents = [m.percent for m in route.mirrors if _service(m.cluster) == wanted]
        assert percents, f"{route.name} does not mirror to {wanted}"
        assert float(mirror_expectation.get("percent", 100)) in percents


@pytest.mark.parametrize("test_name",
                         [n for n, t in TESTS.items() if t.get("expect_route_conditions")])
def test_conformance_route_conditions(translated: dict[str, Any], test_name: str) -> None:
    statuses = translated[test_name].statuses
    for want in TESTS[test_name]["expect_route_conditions"]:
        status = statuses[ObjectKey("HTTPRoute", INFRA_NS, want["route"])]
        (parent,) = status["parents"]
        (cond,) = [c for c in parent["conditions"] if c["type"] == want["type"]]
        assert cond["status"] == want["status"], cond
        if "reason" in want:
            assert cond["reason"] == want["reason"], cond


def test_conformance_weight_distribution(translated: dict[str, Any]) -> None:
    """HTTPRouteWeight: weights 70/30/0 give exactly those fractions, and v3 no route at all."""
    test = TESTS["HTTPRouteWeight"]
    route = pick(translated["HTTPRouteWeight"].ir, test["distribution"]["request"])
    assert route is not None and isinstance(route.action, Forward)
    total = sum(d.weight for d in route.action.destinations)
    fractions = {_service(d.cluster)[1]: d.weight / total
                 for d in route.action.destinations if d.cluster}
    expected = {k: v for k, v in test["distribution"]["expected_fractions"].items() if v > 0}
    assert fractions == pytest.approx(expected)


def test_conformance_timeouts_reach_the_ir(translated: dict[str, Any]) -> None:
    """HTTPRouteTimeoutRequest / BackendRequest: 500ms and "0s" (disabled) land on the routes."""
    request = translated["HTTPRouteTimeoutRequest"].ir
    limited = pick(request, {"path": "/request-timeout"})
    disabled = pick(request, {"path": "/disable-request-timeout"})
    assert limited is not None and limited.timeout_ms == 500
    assert disabled is not None and disabled.timeout_ms == 0
    backend = translated["HTTPRouteTimeoutBackendRequest"].ir
    limited = pick(backend, {"path": "/backend-timeout"})
    assert limited is not None and limited.backend_timeout_ms == 500


def test_translated_order_follows_ordered_matches(translated: dict[str, Any]) -> None:
    """The virtual host order of translate() is precedence.ordered_matches of the same routes."""
    for name in ("HTTPRouteMatchingAcrossRoutes", "HTTPRoutePathMatchOrder",
                 "HTTPRouteHeaderMatching", "HTTPRouteMethodMatching",
                 "HTTPRouteQueryParamMatching"):
        ir = translated[name].ir
        routes = [{**m, "metadata": {"creationTimestamp": T0, **m["metadata"]}}
                  for m in TESTS[name]["manifests"] if m["kind"] == "HTTPRoute"]
        expected = [f"httproute/{r.route}/rule/{r.rule}/match/{r.match}"
                    for r in ordered_matches(routes)]
        for vhost in ir.listeners[0].virtual_hosts:
            got = [r.name.rsplit("/", 1)[0] for r in vhost.routes]
            assert got == [e for e in expected if e in got], (name, vhost.name)
