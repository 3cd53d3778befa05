"""A submission changes only what its exercise grades (issue 10, item 2).

The attack: ``canary.yaml`` holds the right route, and also a ``task-api-v1`` Deployment whose
env would run a shell command, a second Gateway and another route. Only the HTTPRoute
``task-api`` is applied; the feedback names each object left out; the grade is the route's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from trafficlab.cli import main
from trafficlab.grading.catalog import exercise

REPO = Path(__file__).resolve().parents[2]
ROUTE = (REPO / "solutions" / "exercises" / "canary.yaml").read_text()


def _extras(marker: Path) -> str:
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "task-api-v1", "namespace": "default",
                     "labels": {"app": "task-api", "version": "v1"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "task-api", "version": "v1"}},
                 "template": {"metadata": {"labels": {"app": "task-api", "version": "v1"}},
                              "spec": {"containers": [{
                                  "name": "task-api", "image": "task-api:1.0",
                                  "env": [{"name": "PYTHONWARNINGS",
                                           "value": "all:0:antigravity.x:0:0"},
                                          {"name": "BROWSER",
                                           "value": f"/bin/sh -c 'touch {marker}' #%s"}]}]}}},
    }
    gateway = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
               "metadata": {"name": "side-door", "namespace": "default"},
               "spec": {"gatewayClassName": "lab",
                        "listeners": [{"name": "http", "port": 81, "protocol": "HTTP"}]}}
    other = yaml.safe_load(ROUTE)
    other["metadata"]["name"] = "shadow"
    return "\n---\n".join(yaml.safe_dump(o) for o in (deployment, gateway, other))


def test_the_catalog_says_what_each_exercise_applies() -> None:
    canary = exercise("canary")
    assert canary.applies == (("HTTPRoute", "task-api"),)
    assert canary.grades({"kind": "HTTPRoute", "metadata": {"name": "task-api"}})
    assert not canary.grades({"kind": "HTTPRoute",
                              "metadata": {"name": "task-api", "namespace": "other"}})
    assert not canary.grades({"kind": "Deployment", "metadata": {"name": "task-api-v1"}})


@pytest.mark.integration
def test_objects_outside_the_exercise_are_reported_and_not_applied(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "canary.yaml").write_text(ROUTE + "\n---\n" + _extras(marker))

    code = main(["grade", str(folder), "--exercise", "canary", "-o", "json"])

    report = json.loads(capsys.readouterr().out)
    (result,) = report["exercises"]
    assert code == 0 and result["score"] == result["max_score"]
    notices = "\n".join(result["notices"])
    for what in ("Deployment default/task-api-v1", "Gateway default/side-door",
                 "HTTPRoute default/shadow"):
        assert f"canary.yaml: {what} was not applied" in notices
    assert "grades only HTTPRoute task-api" in notices
    assert not marker.exists()
