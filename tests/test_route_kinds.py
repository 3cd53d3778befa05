"""A route kind is one registration: a toy EchoRoute from a test-only module attaches to the
lab's Gateway next to the HTTPRoute, gets its status, its listener counts it, and its routes
reach the IR (and the Envoy configuration) in precedence order, with the same result with and
without the translator's cache. Without the registration it is not a route at all."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from toys import registered

from trafficlab.controlplane.snapshot import ObjectKey, Snapshot
from trafficlab.gateway.envoy import render
from trafficlab.gateway.evaluate import Request, evaluate, snapshot_of
from trafficlab.gateway.translate import TranslateCache, route_kind_names, translate
from trafficlab.manifests import baseline_dir, load_manifests
from trafficlab.resources import validate

ECHO_KEY = ObjectKey("EchoRoute", "default", "echo")
GATEWAY_KEY = ObjectKey("Gateway", "default", "task-api-gateway")
BIND = {("default", "task-api-gateway", 80): ("127.0.0.1", 18080)}
ECHO: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "EchoRoute",
    "metadata": {"namespace": "default", "name": "echo", "uid": "uid-echo", "generation": 1,
                 "creationTimestamp": "2026-01-01T00:00:00Z"},
    "spec": {"parentRefs": [{"name": "task-api-gateway"}],
             "rules": [{"path": "/echo", "backendRefs": [{"name": "task-api-v2", "port": 80}]}]},
}


def _snapshot(*extra: dict[str, Any], kinds: list[dict[str, Any]] | None = None) -> Snapshot:
    objects = []
    for i, obj in enumerate(load_manifests(baseline_dir())):
        if obj["kind"] == "Gateway" and kinds is not None:
            obj = copy.deepcopy(obj)
            obj["spec"]["listeners"][0]["allowedRoutes"]["kinds"] = kinds
        out = validate(obj)
        out["metadata"].update(uid=f"uid-{i}", generation=1,
                               creationTimestamp="2026-01-01T00:00:00Z")
        objects.append(out)
    return Snapshot(revision=1, objects=(*objects, *extra), bind=BIND)


@pytest.fixture
def toy() -> Iterator[ModuleType]:
    with registered("toy_route_kind") as module:
        yield module


def _listener(result: Any) -> dict[str, Any]:
    return dict(result.statuses[GATEWAY_KEY]["listeners"][0])


def test_httproute_is_the_one_kind_registered() -> None:
    assert route_kind_names() == ("HTTPRoute",)
    result = translate(_snapshot(ECHO))
    assert ECHO_KEY not in result.statuses  # not a kind we serve: not ours to report on
    assert _listener(result)["supportedKinds"] == [
        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}]
    assert _listener(result)["attachedRoutes"] == 1


def test_a_registered_kind_attaches_and_reaches_the_ir(toy: ModuleType) -> None:
    result = translate(_snapshot(ECHO))
    parent = result.statuses[ECHO_KEY]["parents"][0]
    accepted = next(c for c in parent["conditions"] if c["type"] == "Accepted")
    assert accepted["status"] == "True", accepted
    listener = _listener(result)
    assert {"group": "gateway.networking.k8s.io", "kind": "EchoRoute"} in listener["supportedKinds"]
    assert listener["attachedRoutes"] == 2
    routes = [r.name for vh in result.ir.listeners[0].virtual_hosts for r in vh.routes]
    # Exact /echo wins over the HTTPRoute's PathPrefix "/", as precedence says.
    assert routes == ["echoroute/default/echo/rule/0/match/0/*",
                      "httproute/default/task-api/rule/0/match/0/*"]
    assert evaluate(result.ir, Request("/echo")).shares == {"default/task-api-v2": 1.0}
    assert evaluate(result.ir, Request("/other")).shares == {"default/task-api-v1": 1.0}
    rendered = json.dumps(dataclasses.asdict(render(result.ir)))
    assert "echoroute/default/echo/rule/0/match/0/*" in rendered
    # The evaluator's snapshots keep the kind too.
    assert ECHO_KEY in translate(snapshot_of(_snapshot(ECHO).objects)).statuses


def test_the_cached_pass_gives_the_same_result_for_every_kind(toy: ModuleType) -> None:
    snapshot = _snapshot(ECHO)
    cache = TranslateCache()
    translate(snapshot, cache)
    again = translate(snapshot, cache)
    assert cache.hits == 2 and cache.misses == 0
    plain = translate(snapshot)
    assert again == plain
    assert list(again.statuses) == sorted(plain.statuses)  # EchoRoute sorts before Gateway


def test_allowed_kinds_name_registered_kinds_only(toy: ModuleType) -> None:
    only_http = [{"kind": "HTTPRoute"}]
    result = translate(_snapshot(ECHO, kinds=only_http))
    parent = result.statuses[ECHO_KEY]["parents"][0]
    accepted = next(c for c in parent["conditions"] if c["type"] == "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "NotAllowedByListeners")
    assert "does not allow EchoRoutes (allowedRoutes.kinds)" in accepted["message"]
    toy.remove()
    refused = translate(_snapshot(kinds=[{"kind": "EchoRoute"}]))
    resolved = next(c for c in _listener(refused)["conditions"] if c["type"] == "ResolvedRefs")
    assert resolved["reason"] == "InvalidRouteKinds"
    assert resolved["message"].endswith("only HTTPRoute is")
