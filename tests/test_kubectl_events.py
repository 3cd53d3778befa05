"""Events the controller records, as ``kubectl describe`` and ``kubectl get events`` show them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import waiting
import yaml
from kubectl_helpers import kubectl, requires_kubectl

from trafficlab import Lab
from trafficlab.controlplane.events import EventRecorder, route_events

ROUTE = yaml.safe_load((Path(__file__).resolve().parents[1] / "cluster" / "manifests"
                        / "baseline" / "30-httproute-task-api.yaml").read_text())


def events_section(text: str) -> list[list[str]]:
    """The rows of describe's Events table, split on runs of two spaces."""
    lines = text[text.index("\nEvents:") + 1:].splitlines()[1:]
    rows = []
    for line in lines[2:]:  # header and dashes
        cells = [c.strip() for c in line.strip().split("  ") if c.strip()]
        if cells:
            rows.append(cells)
    return rows


def eventually(check: Any) -> Any:
    """Poll ``check`` (a kubectl call) until it returns something true: Events come later."""
    return waiting.eventually(check, timeout=20.0, interval=0.2)


@pytest.mark.integration
@requires_kubectl
def test_describe_route_shows_accepted_and_programmed(lab: Lab) -> None:
    ops = [{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 70},
           {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 30}]
    kubectl(lab, "patch", "httproute", "task-api", "--type", "json", "-p", json.dumps(ops))
    lab.wait_programmed()
    generation = lab.get("httproute", "task-api")["metadata"]["generation"]

    def programmed() -> list[list[str]]:
        rows = events_section(kubectl(lab, "describe", "httproute", "task-api").stdout)
        return rows if any(f"(generation {generation})" in r[-1] for r in rows) else []

    rows = eventually(programmed)
    assert rows, kubectl(lab, "describe", "httproute", "task-api").stdout
    reasons = {(r[0], r[1]) for r in rows}
    assert ("Normal", "Accepted") in reasons and ("Normal", "Programmed") in reasons
    assert all(r[3] == "trafficlab-controller" for r in rows), rows


@pytest.mark.integration
@requires_kubectl
def test_describe_refused_route_shows_the_reason(lab: Lab, tmp_path: Path) -> None:
    lost = copy.deepcopy(ROUTE)
    lost["metadata"]["name"] = "lost"
    lost["spec"]["parentRefs"][0]["sectionName"] = "nowhere"
    path = tmp_path / "lost.yaml"
    path.write_text(yaml.safe_dump(lost))
    kubectl(lab, "apply", "-f", str(path))
    try:
        def warning() -> list[list[str]]:
            rows = events_section(kubectl(lab, "describe", "httproute", "lost").stdout)
            return [r for r in rows if r[0] == "Warning"]

        rows = eventually(warning)
        assert rows, kubectl(lab, "describe", "httproute", "lost").stdout
        status = lab.get("httproute", "lost")["status"]["parents"][0]["conditions"]
        accepted = next(c for c in status if c["type"] == "Accepted")
        assert accepted["status"] == "False"
        assert [accepted["reason"]] == [r[1] for r in rows if r[1] == accepted["reason"]]
        # Only this route's events: describe selects on the involved object.
        plain = kubectl(lab, "describe", "httproute", "lost").stdout
        assert "task-api-v1" not in plain.split("\nEvents:")[1]
    finally:
        kubectl(lab, "delete", "httproute", "lost")


@pytest.mark.integration
@requires_kubectl
def test_describe_deployment_shows_scaling_and_pods_come_and_go(lab: Lab) -> None:
    rows = events_section(kubectl(lab, "describe", "deployment", "task-api-v2").stdout)
    assert rows[0][:2] == ["Normal", "ScalingReplicaSet"]
    assert rows[0][-1] == "Scaled up task-api-v2 to 1"
    kubectl(lab, "scale", "deployment", "task-api-v2", "--replicas=2")
    kubectl(lab, "rollout", "status", "deployment/task-api-v2", "--timeout=60s")
    kubectl(lab, "scale", "deployment", "task-api-v2", "--replicas=1")
    messages = eventually(lambda: [r[-1] for r in events_section(
        kubectl(lab, "describe", "deployment", "task-api-v2").stdout)
        if r[-1].startswith("Scaled down")])
    assert messages == ["Scaled down task-api-v2 to 1 from 2"]

    def pod_events() -> dict[str, list[str]]:
        out = kubectl(lab, "get", "events", "-o", "json",
                      "--field-selector", "involvedObject.kind=Pod").stdout
        by_pod: dict[str, list[str]] = {}
        for event in json.loads(out)["items"]:
            by_pod.setdefault(event["involvedObject"]["name"], []).append(event["reason"])
        stopped = [p for p, reasons in by_pod.items() if "Killing" in reasons]
        return by_pod if stopped else {}

    by_pod = eventually(pod_events)
    assert by_pod
    stopped = [reasons for reasons in by_pod.values() if "Killing" in reasons]
    assert stopped == [["Started", "Ready", "Killing"]]
    table = kubectl(lab, "get", "events").stdout.splitlines()
    assert table[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]


def test_recorder_counts_repeats_and_keeps_the_last_thousand() -> None:
    recorder = EventRecorder()
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "r", "namespace": "default", "uid": "u1"}}
    recorder.record(route, "Warning", "NotAllowedByListeners", "no listener")
    recorder.record(route, "Warning", "NotAllowedByListeners", "no listener")
    [event] = recorder.items("default")
    assert (event["count"], event["involvedObject"]["uid"]) == (2, "u1")
    for n in range(1005):
        recorder.record(route, "Normal", "Programmed", f"generation {n}")
    kept = recorder.items()
    assert len(kept) == 1000
    assert kept[-1]["message"] == "generation 1004" and kept[0]["message"] == "generation 5"
    assert recorder.items("other") == []


def test_route_events_only_on_change() -> None:
    def status(accepted: str, generation: int) -> dict[str, Any]:
        return {"parents": [{"parentRef": {"name": "gw", "sectionName": "http"}, "conditions": [
            {"type": "Accepted", "status": accepted, "reason": "Accepted" if accepted == "True"
             else "NoMatchingParent", "message": "m", "observedGeneration": generation},
            {"type": "Programmed", "status": "True", "reason": "Programmed",
             "message": "served", "observedGeneration": generation}]}]}

    assert route_events(None, status("True", 1)) == [
        ("Normal", "Accepted", "gw/http: m"),
        ("Normal", "Programmed", "gw/http: served (generation 1)")]
    assert route_events(status("True", 1), status("True", 1)) == []
    assert route_events(status("True", 1), status("True", 2)) == [
        ("Normal", "Programmed", "gw/http: served (generation 2)")]
    assert route_events(status("True", 2), status("False", 2)) == [
        ("Warning", "NoMatchingParent", "gw/http: m")]
