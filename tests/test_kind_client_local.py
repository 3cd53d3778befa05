"""The kind backend's client, run against the local lab's Kubernetes API (issue 11, item 5).

A KindBackend is pointed at the local lab's kubeconfig (a home whose lab.json says "kind" and
names that kubeconfig), so its own apply, get, patch, delete and wait paths run over HTTPS
against a real API server, not recorded answers. Nothing of kind (Docker, a cluster) is needed.
"""

from __future__ import annotations

import copy
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trafficlab import Lab
from trafficlab._errors import (
    BackendError,
    LabNotRunningError,
    NotFoundError,
    ValidationError,
)
from trafficlab.backends.kind import KindBackend
from trafficlab.manifests import baseline_dir, load_manifests

pytestmark = pytest.mark.integration


@pytest.fixture
def kind(lab: Lab, tmp_path: Path) -> Iterator[KindBackend]:
    """The kind backend's client object on the local lab's kubeconfig."""
    home = tmp_path / "kind-home"
    home.mkdir()
    (home / "lab.json").write_text(json.dumps({
        "backend": "kind", "cluster": "trafficlab-local-api",
        "kubeconfig": str(lab.home / "kubeconfig"), "context": "trafficlab",
        "gatewayPort": 1, "prometheusPort": 1}))
    backend = KindBackend(home, out=io.StringIO())
    try:
        yield backend
    finally:
        backend._reset_client()


def _route(weights: tuple[int, int], name: str = "task-api") -> dict[str, Any]:
    obj = copy.deepcopy(next(o for o in load_manifests(baseline_dir()) if o["kind"] == "HTTPRoute"))
    obj["metadata"]["name"] = name
    refs = obj["spec"]["rules"][0]["backendRefs"]
    refs[0]["weight"], refs[1]["weight"] = weights
    return obj


def _weights(route: dict[str, Any]) -> list[int]:
    return [int(r["weight"]) for r in route["spec"]["rules"][0]["backendRefs"]]


def test_running_and_get_over_the_local_api(kind: KindBackend) -> None:
    assert kind.running()
    route = kind.get("HTTPRoute", "task-api")[0]
    assert route["kind"] == "HTTPRoute" and "managedFields" not in route["metadata"]
    names = {o["metadata"]["name"] for o in kind.get("Deployment")}
    assert {"task-api-v1", "task-api-v2"} <= names
    assert all(o["kind"] == "Deployment" for o in kind.get("Deployment"))
    with pytest.raises(NotFoundError, match='"nope" not found'):
        kind.get("HTTPRoute", "nope")


def test_apply_then_wait_route_sees_the_new_generation(kind: KindBackend, lab: Lab) -> None:
    before = kind.get("HTTPRoute", "task-api")[0]
    result = kind.apply([_route((70, 30))])
    assert [c["text"] for c in result["changes"]] == [
        "httproute.gateway.networking.k8s.io/task-api configured"]
    served = kind.wait_route("task-api", timeout=20)
    assert served["metadata"]["generation"] > before["metadata"]["generation"]
    assert _weights(served) == [70, 30]
    # The local lab serves it: the same object through the local backend.
    assert _weights(lab.get("httproute", "task-api")) == [70, 30]
    again = kind.apply([_route((70, 30))])
    assert [c["action"] for c in again["changes"]] == ["unchanged"]


def test_apply_dry_run_and_invalid_objects_change_nothing(kind: KindBackend) -> None:
    kind.apply([_route((100, 0))])
    # The controller's status write follows the write: read the version after it.
    version = kind.wait_route("task-api")["metadata"]["resourceVersion"]
    dry = kind.apply([_route((1, 1))], dry_run=True)
    assert [c["text"] for c in dry["changes"]] == [
        "httproute.gateway.networking.k8s.io/task-api configured (dry run)"]
    same = kind.apply([_route((100, 0))], dry_run=True)
    assert [c["action"] for c in same["changes"]] == ["unchanged"]
    with pytest.raises(ValidationError) as info:
        kind.apply([_route((50, 50), name="other"), _route((1, 1_000_001))])
    assert info.value.name == "task-api" and "weight" in info.value.field
    with pytest.raises(NotFoundError):
        kind.get("HTTPRoute", "other")  # the valid first object was not written either
    assert kind.get("HTTPRoute", "task-api")[0]["metadata"]["resourceVersion"] == version


def test_patch_merge_json_and_strategic(kind: KindBackend) -> None:
    kind.apply([_route((100, 0))])
    merged = kind.patch("HTTPRoute", "task-api", {"spec": {"hostnames": ["lab.example"]}})
    assert merged["changes"][0]["action"] == "patched"
    same = kind.patch("HTTPRoute", "task-api", {"spec": {"hostnames": ["lab.example"]}})
    assert same["changes"][0]["action"] == "unchanged"
    kind.patch("HTTPRoute", "task-api", [{"op": "remove", "path": "/spec/hostnames"}],
               patch_type="json")
    assert "hostnames" not in kind.get("HTTPRoute", "task-api")[0]["spec"]
    with pytest.raises(ValidationError, match="strategic merge patch is not supported"):
        kind.patch("HTTPRoute", "task-api", {"spec": {}}, patch_type="strategic")
    kind.patch("Deployment", "task-api-v2", {"metadata": {"labels": {"tier": "canary"}}},
               patch_type="strategic")
    labels = kind.get("Deployment", "task-api-v2")[0]["metadata"]["labels"]
    assert labels["tier"] == "canary"
    with pytest.raises(ValidationError) as info:
        kind.patch("HTTPRoute", "task-api", [{"op": "replace", "path": "/spec/rules/0/"
                                              "backendRefs/0/weight", "value": -1}],
                   patch_type="json")
    assert "weight" in str(info.value)


def test_delete_checks_every_target_first(kind: KindBackend) -> None:
    kind.apply([_route((1, 1), name="scratch")])
    with pytest.raises(NotFoundError, match='"missing" not found'):
        kind.delete([("HTTPRoute", "default", "scratch"), ("HTTPRoute", "default", "missing")])
    assert kind.get("HTTPRoute", "scratch")  # still there: nothing was deleted
    dry = kind.delete([("HTTPRoute", "default", "scratch")], dry_run=True)
    assert dry["changes"][0]["text"] == "httproute.gateway.networking.k8s.io/scratch deleted (dry run)"
    assert kind.get("HTTPRoute", "scratch")
    kind.delete([("HTTPRoute", "default", "scratch"), ("HTTPRoute", "default", "missing")],
                ignore_not_found=True)
    with pytest.raises(NotFoundError):
        kind.get("HTTPRoute", "scratch")


def test_wait_route_times_out_naming_the_condition(kind: KindBackend) -> None:
    route = _route((1, 1), name="orphan")
    route["spec"]["parentRefs"] = [{"name": "no-such-gateway"}]
    kind.apply([route])
    try:
        with pytest.raises(BackendError, match="orphan generation 1 is not served"):
            kind.wait_route("orphan", timeout=0)
    finally:
        kind.delete([("HTTPRoute", "default", "orphan")])


def test_a_wrong_token_is_refused(kind: KindBackend, lab: Lab, tmp_path: Path) -> None:
    config = (lab.home / "kubeconfig").read_text()
    token = next(line.split(":", 1)[1].strip() for line in config.splitlines()
                 if line.strip().startswith("token:"))
    wrong = tmp_path / "wrong-kubeconfig"
    wrong.write_text(config.replace(token, "x" * len(token)))
    state = json.loads((kind.home / "lab.json").read_text())
    (kind.home / "lab.json").write_text(json.dumps({**state, "kubeconfig": str(wrong)}))
    kind._reset_client()
    with pytest.raises(BackendError, match="refused the request"):
        kind.get("HTTPRoute", "task-api")
    assert not kind.running()


def test_a_stopped_api_server_reads_as_not_running(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "short", backend="local")
    lab.up(timeout=60)
    home = tmp_path / "kind-home"
    home.mkdir()
    (home / "lab.json").write_text(json.dumps({
        "backend": "kind", "kubeconfig": str(tmp_path / "copy"), "context": "trafficlab"}))
    shutil.copy(lab.home / "kubeconfig", tmp_path / "copy")
    lab.down()
    backend = KindBackend(home, out=io.StringIO())
    assert not backend.running()
    with pytest.raises(LabNotRunningError, match="does not answer"):
        backend.get("HTTPRoute")
