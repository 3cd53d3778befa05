"""Incremental reconciles (issue 12, item 5) give exactly what a full pass gives.

The controller keeps a :class:`TranslateCache` and a :class:`RenderCache` between reconciles,
so a one-route change translates, renders and serialises one route. These tests drive a real
store through sequences of changes (routes patched, created and deleted, statuses written back,
a Service deleted, a Gateway listener changed, a ReferenceGrant added and removed, Namespace
labels changed, endpoints gone) and check after every step that the cached pass and a fresh
pass agree on the IR, the statuses, the warnings, the rendered resources and their JSON.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_envoy_property import rules

from trafficlab._errors import ValidationError
from trafficlab.controlplane.snapshot import ObjectKey, Snapshot
from trafficlab.controlplane.status import merge_status
from trafficlab.controlplane.store import ObjectStore
from trafficlab.gateway.envoy import RenderCache, canonical_json, render
from trafficlab.gateway.ir import Endpoint
from trafficlab.gateway.translate import TranslateCache, TranslateResult, translate
from trafficlab.manifests import baseline_dir, load_manifests

Obj = dict[str, Any]
BASELINE = load_manifests(baseline_dir())
GATEWAY = next(o for o in BASELINE if o["kind"] == "Gateway")


def _route(name: str, rules_: list[Obj], *, namespace: str = "default",
           hostnames: Iterable[str] = (), section: str | None = None,
           gateway: str = "task-api-gateway") -> Obj:
    parent: Obj = {"name": gateway, "namespace": "default"}
    if section:
        parent["sectionName"] = section
    spec: Obj = {"parentRefs": [parent], "rules": rules_}
    if hostnames:
        spec["hostnames"] = list(hostnames)
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _forward(*backends: tuple[str, int], namespace: str | None = None) -> Obj:
    refs = []
    for name, weight in backends:
        ref: Obj = {"name": name, "port": 80, "weight": weight}
        if namespace:
            ref["namespace"] = namespace
        refs.append(ref)
    return {"backendRefs": refs}


class World:
    """A store plus the runtime facts (endpoints, bound ports), checked after every step."""

    def __init__(self) -> None:
        self.store = ObjectStore()
        self.store.apply(copy.deepcopy(BASELINE))
        self.no_endpoints: set[str] = set()
        self.translations = TranslateCache()
        self.renders = RenderCache()

    def snapshot(self) -> Snapshot:
        base = self.store.shared_snapshot()
        endpoints: dict[tuple[str, str], dict[int, tuple[Endpoint, ...]]] = {}
        bind: dict[tuple[str, str, int], tuple[str, int]] = {}
        for obj in base.objects:
            key = ObjectKey.of(obj)
            if obj["kind"] == "Service":
                ready = () if key.name in self.no_endpoints else (Endpoint("127.0.0.1", 9),)
                endpoints[(key.namespace, key.name)] = {
                    int(p["port"]): ready for p in obj["spec"].get("ports", [])}
            elif obj["kind"] == "Gateway":
                for listener in obj["spec"].get("listeners", []):
                    bind[(key.namespace, key.name, int(listener["port"]))] = (
                        "127.0.0.1", 20000 + int(listener["port"]))
        return Snapshot(revision=base.revision, objects=base.objects, endpoints=endpoints,
                        bind=bind)

    def check(self, *, write_status: bool = True) -> TranslateResult:
        """Cached and fresh passes agree; then statuses are written back as the controller does."""
        snapshot = self.snapshot()
        before = copy.deepcopy(snapshot.objects)
        cached = translate(snapshot, self.translations)
        fresh = translate(snapshot)
        assert cached.ir == fresh.ir
        assert cached.statuses == fresh.statuses
        assert cached.warnings == fresh.warnings
        assert snapshot.objects == before, "translation mutated the store's objects"
        full = render(fresh.ir)
        incremental = render(cached.ir, cache=self.renders)
        assert incremental == full
        for name, rc in full.route_configs.items():
            expected = json.dumps([rc], sort_keys=True, separators=(",", ":"))
            assert canonical_json([incremental.route_configs[name]], self.renders) == expected
        if write_status:
            merged = {key: merge_status((snapshot.get(key.kind, key.namespace, key.name) or {})
                                        .get("status"), status, "2026-01-01T00:00:00Z")
                      for key, status in cached.statuses.items()}
            self.store.write_statuses(merged)
        return cached

    def apply(self, *objects: Obj) -> None:
        self.store.apply([copy.deepcopy(o) for o in objects])

    def delete(self, kind: str, name: str, namespace: str = "default") -> None:
        self.store.delete([ObjectKey(kind, namespace, name)])


def _statuses_of(result: TranslateResult, name: str, namespace: str = "default") -> Obj:
    return result.statuses[ObjectKey("HTTPRoute", namespace, name)]


def _conditions(result: TranslateResult, name: str, namespace: str = "default") -> dict[str, str]:
    parents = _statuses_of(result, name, namespace)["parents"]
    return {c["type"]: c["reason"] for p in parents for c in p["conditions"]}


def test_a_one_route_patch_translates_one_route() -> None:
    world = World()
    world.apply(*[_route(f"r{i}", [_forward(("task-api-v1", 1))], hostnames=[f"h{i}.example"])
                  for i in range(20)])
    world.check()
    world.check()  # statuses written back: every route now replays
    assert world.translations.misses == 0
    world.apply(_route("r7", [_forward(("task-api-v1", 90), ("task-api-v2", 10))],
                       hostnames=["h7.example"]))
    result = world.check()
    assert world.translations.misses == 1
    vhost = next(v for li in result.ir.listeners for v in li.virtual_hosts
                 if v.domains == ("h7.example",))
    assert len(vhost.routes) == 1


def test_every_input_a_route_reads_invalidates_it() -> None:
    world = World()
    world.apply({"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": "team", "labels": {"env": "dev"}}})
    world.apply(_route("local", [_forward(("task-api-v1", 1), ("task-api-v2", 1))]),
                _route("remote", [_forward(("task-api-v1", 1))], namespace="team"),
                _route("cross", [_forward(("task-api-v2", 1), namespace="default")],
                       namespace="team"))
    first = world.check()
    assert _conditions(first, "remote", "team")["Accepted"] == "NotAllowedByListeners"
    assert _conditions(first, "cross", "team")["Accepted"] == "NotAllowedByListeners"

    # A Gateway listener changed: routes from labelled namespaces are now allowed.
    gateway = copy.deepcopy(GATEWAY)
    gateway["spec"]["listeners"][0]["allowedRoutes"] = {"namespaces": {
        "from": "Selector", "selector": {"matchLabels": {"env": "dev"}}}}
    world.apply(gateway)
    opened = world.check()
    assert _conditions(opened, "remote", "team")["Accepted"] == "Accepted"
    assert _conditions(opened, "cross", "team")["ResolvedRefs"] == "RefNotPermitted"

    # A ReferenceGrant added, then removed.
    grant = {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
             "metadata": {"name": "from-team", "namespace": "default"},
             "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                "namespace": "team"}],
                      "to": [{"group": "", "kind": "Service"}]}}
    world.apply(grant)
    assert _conditions(world.check(), "cross", "team")["ResolvedRefs"] == "ResolvedRefs"
    world.delete("ReferenceGrant", "from-team")
    assert _conditions(world.check(), "cross", "team")["ResolvedRefs"] == "RefNotPermitted"

    # The Namespace's labels changed: its routes no longer match the selector.
    world.apply({"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": "team", "labels": {"env": "prod"}}})
    assert _conditions(world.check(), "remote", "team")["Accepted"] == "NotAllowedByListeners"

    # A Service deleted: its share answers 500, and the condition says so.
    world.delete("Service", "task-api-v2")
    gone = world.check()
    assert _conditions(gone, "local")["ResolvedRefs"] == "BackendNotFound"

    # Endpoints gone: the cluster is empty and a warning says 503.
    world.no_endpoints.add("task-api-v1")
    empty = world.check()
    assert any("no ready endpoints" in w for w in empty.warnings)
    assert all(not c.endpoints for c in empty.ir.clusters if "task-api-v1" in c.name)


def test_a_deleted_route_leaves_nothing_behind() -> None:
    world = World()
    world.apply(_route("a", [_forward(("task-api-v1", 1))], hostnames=["a.example"]),
                _route("b", [_forward(("task-api-v2", 1))], hostnames=["b.example"]))
    world.check()
    world.delete("HTTPRoute", "a")
    result = world.check()
    domains = [v.domains for li in result.ir.listeners for v in li.virtual_hosts]
    assert ("a.example",) not in domains and ("b.example",) in domains
    # Recreated under the same name (a new uid), it is translated again.
    world.apply(_route("a", [_forward(("task-api-v2", 1))], hostnames=["a.example"]))
    world.check()


def test_a_route_that_leaves_its_gateway_clears_its_status_once() -> None:
    world = World()
    world.apply(_route("a", [_forward(("task-api-v1", 1))]))
    world.check()
    world.apply(_route("a", [_forward(("task-api-v1", 1))], gateway="elsewhere"))
    cleared = world.check()
    assert _statuses_of(cleared, "a") == {"parents": []}
    after = world.check()  # our entries are gone now: nothing more to say about the route
    assert ObjectKey("HTTPRoute", "default", "a") not in after.statuses


_NAMES = st.sampled_from(["task-api", "alpha", "beta", "gamma"])
_HOSTS = st.lists(st.sampled_from(["a.example", "b.example", "*.example", "a.example"]),
                  max_size=2)
_STEP = st.one_of(
    st.tuples(st.just("route"), _NAMES, st.lists(rules(), min_size=1, max_size=2), _HOSTS,
              st.sampled_from(["task-api-gateway", "task-api-gateway", "elsewhere"])),
    st.tuples(st.just("delete-route"), _NAMES),
    st.tuples(st.just("status"), st.booleans()),
    st.tuples(st.just("service"), st.sampled_from(["task-api-v1", "task-api-v2"]),
              st.booleans()),
    st.tuples(st.just("listener-hostname"), st.sampled_from([None, "*.example", "a.example"])),
    st.tuples(st.just("endpoints"), st.sampled_from(["task-api-v1", "task-api-v2"])),
)


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(_STEP, min_size=1, max_size=8))
def test_incremental_passes_equal_full_passes(steps: list[tuple[Any, ...]]) -> None:
    world = World()
    services = {o["metadata"]["name"]: o for o in BASELINE if o["kind"] == "Service"}
    for step in steps:
        kind = step[0]
        try:
            if kind == "route":
                world.apply(_route(step[1], step[2], hostnames=step[3], gateway=step[4]))
            elif kind == "delete-route":
                world.store.delete([ObjectKey("HTTPRoute", "default", step[1])],
                                   ignore_not_found=True)
            elif kind == "service":
                if step[2]:
                    world.apply(services[step[1]])
                else:
                    world.store.delete([ObjectKey("Service", "default", step[1])],
                                       ignore_not_found=True)
            elif kind == "listener-hostname":
                gateway = copy.deepcopy(GATEWAY)
                if step[1]:
                    gateway["spec"]["listeners"][0]["hostname"] = step[1]
                world.apply(gateway)
            elif kind == "endpoints":
                world.no_endpoints ^= {step[1]}
        except ValidationError:
            continue  # the apiserver would refuse it: nothing changed
        world.check(write_status=kind != "status" or step[1])


def test_a_shared_snapshot_stays_as_it_was_while_the_store_moves_on() -> None:
    """The reconciler reads the store's own objects: no write may mutate one in place."""
    world = World()
    world.apply(_route("a", [_forward(("task-api-v1", 1))]))
    snapshot = world.store.shared_snapshot()
    frozen = copy.deepcopy(snapshot.objects)
    world.check()  # statuses written
    world.apply(_route("a", [_forward(("task-api-v2", 1))]), GATEWAY)
    world.store.patch(ObjectKey("HTTPRoute", "default", "a"),
                      {"metadata": {"labels": {"x": "y"}}}, "merge")
    world.delete("Service", "task-api-v1")
    world.check()
    assert snapshot.objects == frozen


def test_the_store_file_is_the_plain_dump_of_the_store(tmp_path: Path) -> None:
    """The snapshot reuses each unchanged object's JSON when it is rewritten: the bytes stay the
    same as a plain dump; between snapshots the journal replays to the same store."""
    store = ObjectStore(tmp_path / "store.json")
    store.apply(copy.deepcopy(BASELINE))
    store.apply([_route(f"r{i}", [_forward(("task-api-v1", 1))]) for i in range(5)])

    def expected() -> str:
        objects = [o for _, o in sorted(store._objects.items())]
        return json.dumps({"revision": store.revision, "objects": objects}, sort_keys=True,
                          separators=(",", ":"))

    store.compact()  # writes go to the journal; the snapshot is written when it outgrows it
    assert (tmp_path / "store.json").read_text() == expected()
    key = ObjectKey("HTTPRoute", "default", "r3")
    store.patch(key, {"spec": {"hostnames": ["r3.example"]}}, "merge")
    store.write_statuses({key: {"parents": []}})
    store.delete([ObjectKey("HTTPRoute", "default", "r1")])
    assert ObjectStore(tmp_path / "store.json")._objects == store._objects  # snapshot + journal
    store.compact()
    assert (tmp_path / "store.json").read_text() == expected()
    assert ObjectStore(tmp_path / "store.json").get(key) == store.get(key)
