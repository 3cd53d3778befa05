"""Incremental reconciles on a real lab: every input a cached route depends on, changed, changes
what Envoy serves and what the route's status says (issue 12, item 5).

The lab holds the baseline plus a few dozen routes, each on its own hostname, so each change
below is made while the controller's caches hold every other route.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from trafficlab import Lab
from trafficlab.manifests import baseline_dir, load_manifests

pytestmark = pytest.mark.integration

Obj = dict[str, Any]
BASELINE = load_manifests(baseline_dir())
GATEWAY = next(o for o in BASELINE if o["kind"] == "Gateway")
SERVICE_V2 = next(o for o in BASELINE if o["kind"] == "Service"
                  and o["metadata"]["name"] == "task-api-v2")
ROUTES = 40


def _route(i: int, v1: int = 100, v2: int = 0, *, namespace: str = "default",
           service_namespace: str | None = None) -> Obj:
    refs = [{"name": "task-api-v1", "port": 80, "weight": v1},
            {"name": "task-api-v2", "port": 80, "weight": v2}]
    if service_namespace:
        for ref in refs:
            ref["namespace"] = service_namespace
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": f"scale-{i:03d}", "namespace": namespace},
            "spec": {"parentRefs": [{"name": "task-api-gateway", "namespace": "default"}],
                     "hostnames": [f"app-{i:03d}.example.com"],
                     "rules": [{"backendRefs": refs}]}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    the_lab = Lab(Path(tmp_path_factory.mktemp("lab")), backend="local")
    try:
        the_lab.up(timeout=60)
        the_lab.apply([_route(i) for i in range(ROUTES)])
        yield the_lab
    finally:
        the_lab.down()


def _served(lab: Lab, i: int, n: int = 20) -> Counter[str]:
    """What n requests to route i's hostname get: a version, or the status code."""
    out: Counter[str] = Counter()
    with httpx.Client(base_url=lab.url(), timeout=5) as client:
        for _ in range(n):
            resp = client.get("/tasks", headers={"host": f"app-{i:03d}.example.com"})
            out[resp.headers.get("x-version") or str(resp.status_code)] += 1
    return out


def _conditions(lab: Lab, i: int, namespace: str = "default") -> dict[str, Obj]:
    obj = lab.get("httproute", f"scale-{i:03d}", namespace=namespace)
    parents = obj.get("status", {}).get("parents", [])
    return {c["type"]: c for p in parents for c in p["conditions"]}


def test_a_one_route_patch_is_served_and_leaves_the_others_alone(lab: Lab) -> None:
    assert _served(lab, 7) == Counter({"v1": 20})
    lab.apply(_route(7, 0, 100))
    assert _served(lab, 7) == Counter({"v2": 20})
    assert _served(lab, 8) == Counter({"v1": 20})
    cond = _conditions(lab, 7)
    generation = lab.get("httproute", "scale-007")["metadata"]["generation"]
    assert cond["Programmed"]["status"] == "True"
    assert cond["Programmed"]["observedGeneration"] == generation == 2
    lab.apply(_route(7))
    assert _served(lab, 7) == Counter({"v1": 20})


def test_a_deleted_service_turns_its_share_into_500_and_back(lab: Lab) -> None:
    lab.apply(_route(3, 0, 100))
    assert _served(lab, 3) == Counter({"v2": 20})
    lab.delete("service", "task-api-v2")
    try:
        assert _served(lab, 3) == Counter({"500": 20})
        assert _conditions(lab, 3)["ResolvedRefs"]["reason"] == "BackendNotFound"
        # Routes that give the Service weight 0 keep serving their other backend.
        assert _served(lab, 4) == Counter({"v1": 20})
    finally:
        lab.apply(copy.deepcopy(SERVICE_V2))
    assert _conditions(lab, 3)["ResolvedRefs"]["status"] == "True"
    lab.wait_programmed("scale-003")
    assert _served(lab, 3) == Counter({"v2": 20})
    lab.apply(_route(3))


def test_a_changed_listener_detaches_and_reattaches_every_cached_route(lab: Lab) -> None:
    narrowed = copy.deepcopy(GATEWAY)
    narrowed["spec"]["listeners"][0]["hostname"] = "*.elsewhere.test"
    lab.apply(narrowed)
    try:
        assert _served(lab, 11) == Counter({"404": 20})
        accepted = _conditions(lab, 11)["Accepted"]
        assert (accepted["status"], accepted["reason"]) == ("False", "NoMatchingListenerHostname")
        gateway = lab.get("gateway", "task-api-gateway")
        # Only task-api stays: it has no hostnames, so it takes the listener's.
        assert gateway["status"]["listeners"][0]["attachedRoutes"] == 1
    finally:
        lab.apply(copy.deepcopy(GATEWAY))
    assert _conditions(lab, 11)["Accepted"]["status"] == "True"
    assert _served(lab, 11) == Counter({"v1": 20})
    gateway = lab.get("gateway", "task-api-gateway")
    assert gateway["status"]["listeners"][0]["attachedRoutes"] == ROUTES + 1  # + task-api


def test_a_reference_grant_added_and_removed_changes_what_is_served(lab: Lab) -> None:
    everyone = copy.deepcopy(GATEWAY)
    everyone["spec"]["listeners"][0]["allowedRoutes"] = {"namespaces": {"from": "All"}}
    grant = {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
             "metadata": {"name": "from-team", "namespace": "default"},
             "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                "namespace": "team"}],
                      "to": [{"group": "", "kind": "Service"}]}}
    lab.apply([everyone, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}},
               _route(900, namespace="team", service_namespace="default")])
    try:
        assert _served(lab, 900) == Counter({"500": 20})
        assert _conditions(lab, 900, "team")["ResolvedRefs"]["reason"] == "RefNotPermitted"
        lab.apply(grant)
        assert _served(lab, 900) == Counter({"v1": 20})
        assert _conditions(lab, 900, "team")["ResolvedRefs"]["status"] == "True"
        lab.delete("referencegrant", "from-team")
        assert _served(lab, 900) == Counter({"500": 20})
        assert _conditions(lab, 900, "team")["ResolvedRefs"]["reason"] == "RefNotPermitted"
    finally:
        lab.delete("namespace", "team", ignore_not_found=True)
        lab.delete("referencegrant", "from-team", ignore_not_found=True)
        lab.apply(copy.deepcopy(GATEWAY))
    assert _served(lab, 12) == Counter({"v1": 20})
