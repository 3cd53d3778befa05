"""The object store: Kubernetes metadata semantics and all-or-nothing writes (no processes)."""

from __future__ import annotations

import contextlib
import copy
import resource
import signal
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import trafficlab
from trafficlab import ConflictError, NotFoundError, ValidationError
from trafficlab.controlplane.snapshot import ObjectKey
from trafficlab.controlplane.store import ObjectStore, merge_patch

KEY = ObjectKey("HTTPRoute", "default", "task-api")


def route(v2: int = 0) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "task-api", "labels": {"app": "task-api"}},
            "spec": {"parentRefs": [{"name": "task-api-gateway"}], "rules": [{"backendRefs": [
                {"name": "task-api-v1", "port": 80, "weight": 100},
                {"name": "task-api-v2", "port": 80, "weight": v2}]}]}}


def test_exported_members() -> None:
    assert trafficlab.__all__ == sorted(trafficlab.__all__)
    assert {"Lab", "TrafficLabError", "ValidationError", "NotFoundError"} <= set(trafficlab.__all__)


def test_metadata_semantics(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "store.json")
    [created] = store.apply([route()])
    assert created.action == "created"
    assert created.describe() == "httproute.gateway.networking.k8s.io/task-api created"
    first = store.get(KEY)
    meta = first["metadata"]
    assert meta["generation"] == 1 and meta["namespace"] == "default"
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    # The CRD's defaults are applied, as the apiserver does.
    assert first["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]

    [same] = store.apply([route()])
    assert same.action == "unchanged"
    assert store.get(KEY)["metadata"]["resourceVersion"] == meta["resourceVersion"]

    [changed] = store.apply([route(v2=10)])
    assert changed.action == "configured"
    second = store.get(KEY)["metadata"]
    assert second["generation"] == 2 and second["uid"] == meta["uid"]
    assert int(second["resourceVersion"]) > int(meta["resourceVersion"])

    relabelled = route(v2=10)
    relabelled["metadata"]["labels"] = {"app": "other"}
    store.apply([relabelled])
    assert store.get(KEY)["metadata"]["generation"] == 2  # labels are not spec

    reopened = ObjectStore(tmp_path / "store.json")
    assert reopened.get(KEY)["metadata"]["uid"] == meta["uid"]
    assert reopened.revision == store.revision


def test_status_survives_updates_and_is_not_user_writable(tmp_path: Path) -> None:
    store = ObjectStore()
    store.apply([route()])
    store.write_statuses({KEY: {"parents": []}})
    with_status = route(v2=5)
    with_status["status"] = {"parents": [{"forged": True}]}
    store.apply([with_status])
    assert store.get(KEY)["status"] == {"parents": []}


def test_apply_is_all_or_nothing() -> None:
    store = ObjectStore()
    store.apply([route()])
    before = store.revision
    bad = route(v2=-1)
    bad["metadata"]["name"] = "other"
    with pytest.raises(ValidationError) as info:
        store.apply([route(v2=50), bad])
    assert info.value.name == "other"
    assert info.value.field == "spec.rules[0].backendRefs[1].weight"
    assert store.revision == before
    assert store.get(KEY)["spec"]["rules"][0]["backendRefs"][1]["weight"] == 0
    with pytest.raises(NotFoundError):
        store.get(ObjectKey("HTTPRoute", "default", "other"))


def test_missing_namespace_unless_created_in_the_same_apply() -> None:
    store = ObjectStore()
    elsewhere = route()
    elsewhere["metadata"]["namespace"] = "team-a"
    with pytest.raises(NotFoundError, match='namespaces "team-a" not found'):
        store.apply([elsewhere])
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    store.apply([namespace, elsewhere])
    assert store.get(ObjectKey("HTTPRoute", "team-a", "task-api"))
    store.delete([ObjectKey("Namespace", "", "team-a")])
    with pytest.raises(NotFoundError):
        store.get(ObjectKey("HTTPRoute", "team-a", "task-api"))
    with pytest.raises(ConflictError):
        store.delete([ObjectKey("Namespace", "", "default")])


def test_patch_merge_and_json() -> None:
    store = ObjectStore()
    store.apply([route()])
    change = store.patch(KEY, {"spec": {"hostnames": ["tasks.example.com"]}}, "merge")
    assert change.action == "patched"
    assert store.get(KEY)["spec"]["hostnames"] == ["tasks.example.com"]
    ops = [{"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 10}]
    store.patch(KEY, ops, "json")
    assert store.get(KEY)["spec"]["rules"][0]["backendRefs"][1]["weight"] == 10
    assert store.patch(KEY, ops, "json").action == "unchanged"
    with pytest.raises(ValidationError, match="cannot be applied"):
        store.patch(KEY, [{"op": "replace", "path": "/spec/rules/0/backendRefs/5/weight",
                           "value": 1}], "json")
    with pytest.raises(ValidationError, match="weight"):
        store.patch(KEY, [{"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight",
                           "value": 1000001}], "json")
    with pytest.raises(ConflictError):
        store.patch(KEY, [{"op": "test", "path": "/spec/rules/0/backendRefs/1/weight", "value": 3}],
                    "json")
    with pytest.raises(ValidationError, match="--type merge"):
        store.patch(KEY, {"spec": {}}, "strategic")
    with pytest.raises(ValidationError, match="cannot change"):
        store.patch(KEY, {"metadata": {"name": "renamed"}}, "merge")
    dry = store.patch(KEY, {"spec": {"hostnames": None}}, "merge", dry_run=True)
    assert dry.action == "patched" and store.get(KEY)["spec"]["hostnames"]


def test_merge_patch_is_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert merge_patch(target, {"c": ["x"]}) == {"a": "b", "c": ["x"]}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}}
    assert merge_patch(copy.deepcopy(target), []) == []


def test_admission_hook_refuses_without_changing_anything() -> None:
    def refuse(obj: dict[str, Any], existing: Mapping[ObjectKey, dict[str, Any]]) -> None:
        if obj["kind"] == "HTTPRoute":
            raise ValidationError("HTTPRoute", "default", "task-api", "spec", "refused")

    store = ObjectStore(admit=refuse)
    with pytest.raises(ValidationError, match="refused"):
        store.apply([route()])
    assert store.items("HTTPRoute") == []


@contextlib.contextmanager
def files_cannot_grow() -> Iterator[None]:
    """No file of this process may grow (EFBIG), as when the disk is full."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


def weight_v2(store: ObjectStore) -> int:
    return int(store.get(KEY)["spec"]["rules"][0]["backendRefs"][1]["weight"])


def test_a_write_that_cannot_reach_disk_changes_nothing(tmp_path: Path) -> None:
    # Issue 12: with the temporary file blocked, a patch failed but memory said weight 0 while
    # the file (and Envoy) said 5, and the retry answered "patched (no change)".
    path = tmp_path / "store.json"
    store = ObjectStore(path)
    store.apply([route(v2=5)])
    journal = path.with_suffix(".log")
    on_disk, revision = journal.read_bytes(), store.revision

    with files_cannot_grow():
        with pytest.raises(trafficlab.BackendError, match="nothing was changed"):
            store.patch(KEY, {"spec": {"rules": [{"backendRefs": [
                {"name": "task-api-v1", "port": 80, "weight": 100},
                {"name": "task-api-v2", "port": 80, "weight": 0}]}]}}, "merge")
        with pytest.raises(trafficlab.BackendError):
            store.write_statuses({KEY: {"parents": []}})

    assert weight_v2(store) == 5
    assert "status" not in store.get(KEY) or store.get(KEY)["status"] != {"parents": []}
    assert (store.revision, journal.read_bytes()) == (revision, on_disk)
    assert weight_v2(ObjectStore(path)) == 5
    [retry] = store.apply([route(v2=0)])
    assert retry.action == "configured"
    assert weight_v2(ObjectStore(path)) == 0


def test_a_write_cut_short_on_disk_is_dropped_and_the_next_one_lands(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    store = ObjectStore(path)
    store.apply([route(v2=5)])
    with path.with_suffix(".log").open("ab") as journal:  # the machine stopped mid-write
        journal.write(b'{"revision": 99, "put": [{"kind": "HTTPRo')

    reopened = ObjectStore(path)
    assert (reopened.revision, weight_v2(reopened)) == (store.revision, 5)
    reopened.apply([route(v2=7)])
    assert weight_v2(ObjectStore(path)) == 7


def test_a_snapshot_that_cannot_be_written_loses_no_write(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    store = ObjectStore(path)
    store.apply([route(v2=5)])
    (tmp_path / "store.tmp").mkdir()  # the snapshot's temporary path cannot be written
    with pytest.raises(trafficlab.BackendError, match="nothing was changed"):
        store.compact()
    store.apply([route(v2=9)])
    assert weight_v2(ObjectStore(path)) == 9
    (tmp_path / "store.tmp").rmdir()
    store.compact()
    assert path.with_suffix(".log").read_bytes() == b""
    assert weight_v2(ObjectStore(path)) == 9


def test_the_journal_is_folded_into_the_snapshot_when_it_outgrows_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trafficlab.controlplane import journal

    monkeypatch.setattr(journal, "_MIN_COMPACT_BYTES", 4096)
    path = tmp_path / "store.json"
    store = ObjectStore(path)
    sizes = []
    for v2 in range(40):
        store.apply([route(v2=v2)])
        sizes.append(path.with_suffix(".log").stat().st_size)
    assert 0 in sizes and max(sizes) <= 4096 + 2048  # emptied each time it passed the bound
    assert weight_v2(ObjectStore(path)) == 39
    assert ObjectStore(path).revision == store.revision
