"""Server-side apply's merge and field sets, without a lab (the kubectl tests use a real one)."""

from __future__ import annotations

from typing import Any

import pytest

from trafficlab.apiserver import fieldset
from trafficlab.apiserver.apply import ApplyConflict, apply_patch, record_update


def gateway(listeners: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "default"},
            "spec": {"gatewayClassName": "trafficlab", "listeners": listeners}}


def test_listeners_are_keyed_by_name() -> None:
    live = apply_patch(None, gateway([{"name": "http", "port": 80, "protocol": "HTTP"}]),
                       kind="Gateway", manager="alice", force=False, now="t1")
    fields = live["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:listeners"]
    assert fields == {'k:{"name":"http"}': {".": {}, "f:name": {}, "f:port": {},
                                             "f:protocol": {}}}
    # Bob adds a listener of his own: no conflict, both listeners stay.
    both = apply_patch(live, {**gateway([{"name": "alt", "port": 8080, "protocol": "HTTP"}]),
                              "spec": {"listeners": [{"name": "alt", "port": 8080,
                                                      "protocol": "HTTP"}]}},
                       kind="Gateway", manager="bob", force=False, now="t2")
    assert [ln["name"] for ln in both["spec"]["listeners"]] == ["http", "alt"]
    # Bob changing Alice's port conflicts on that one field.
    with pytest.raises(ApplyConflict) as conflict:
        apply_patch(both, {**gateway([]), "spec": {"listeners": [
            {"name": "http", "port": 81, "protocol": "HTTP"}]}},
            kind="Gateway", manager="bob", force=False, now="t3")
    assert conflict.value.causes == [{"type": "FieldManagerConflict",
                                      "message": 'conflict with "alice"',
                                      "field": '.spec.listeners[name="http"].port'}]


def test_fields_v1_round_trip() -> None:
    paths = set(fieldset.values({"metadata": {"labels": {"a": "1"}},
                                 "spec": {"listeners": [{"name": "x", "port": 1}]}},
                                "Gateway"))
    encoded = fieldset.encode(paths)
    assert encoded["f:metadata"] == {"f:labels": {".": {}, "f:a": {}}}
    assert fieldset.decode(encoded) == paths


def test_update_takes_changed_fields_from_other_managers() -> None:
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "r", "namespace": "default"},
             "spec": {"hostnames": ["a.example"], "rules": [{"backendRefs": []}]}}
    created = apply_patch(None, route, kind="HTTPRoute", manager="kubectl", force=False,
                          now="t1")
    changed = {**created, "spec": {**created["spec"], "hostnames": ["b.example"]}}
    entries = record_update(created, changed, kind="HTTPRoute", manager="kubectl-patch",
                            now="t2")
    owners = {e["manager"]: e["fieldsV1"]["f:spec"] for e in entries}
    assert owners == {"kubectl": {"f:rules": {}}, "kubectl-patch": {"f:hostnames": {}}}
    assert record_update(changed | {"metadata": {**changed["metadata"],
                                                 "managedFields": entries}},
                         changed, kind="HTTPRoute", manager="x", now="t3") == entries
