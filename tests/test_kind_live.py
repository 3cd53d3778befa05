"""The whole lab on a real kind cluster: up, the contract's verbs, traffic, the graders, a
rollout, Prometheus, and down. Marked ``kind``; it runs only where a Docker engine answers and
kind, kubectl and helm are installed (and the network reaches docker.io, github.com and PyPI),
and is skipped with that reason elsewhere, such as on CI machines without Docker.

    pytest -m kind tests/test_kind_live.py        # about 5-10 minutes on a laptop
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from trafficlab import Lab


def _why_not() -> str:
    for tool in ("docker", "kind", "kubectl", "helm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    try:
        ok = subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return "" if ok else "no Docker engine answers ('docker info' failed)"


_REASON = _why_not()
pytestmark = [
    pytest.mark.kind,
    pytest.mark.skipif(bool(_REASON), reason=f"needs a kind cluster: {_REASON}"),
]

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions" / "exercises"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One kind lab for the module; its cluster is deleted at the end, whatever happened."""
    lab = Lab(tmp_path_factory.mktemp("kind-lab"), backend="kind")
    try:
        lab.backend.up(timeout=900)  # kind needs longer than the CLI default
        yield lab
    finally:
        lab.down()


def test_up_serves_the_baseline(lab: Lab) -> None:
    status = lab.status()
    assert status["backend"] == "kind" and status["ready"] is True
    result = lab.send(requests=200, concurrency=4)
    assert result.by_status[200] + result.by_status[404] == 200
    assert set(result.by_version) == {"v1"}  # v2 has weight 0: not one request


def test_up_again_reuses_the_cluster(lab: Lab) -> None:
    before = lab.get("HTTPRoute", "task-api")["metadata"]["uid"]
    lab.backend.up(timeout=300)
    assert lab.get("HTTPRoute", "task-api")["metadata"]["uid"] == before


def test_apply_patch_and_the_consistency_gate(lab: Lab) -> None:
    lab.apply(SOLUTIONS / "canary.yaml")
    route = lab.wait_programmed(timeout=60)
    weights = [r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]]
    assert weights == [90, 10]
    lab.patch("httproute", "task-api", [
        {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 50},
        {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 50}],
        type="json")
    lab.wait_programmed(timeout=60)
    result = lab.send(requests=1000, concurrency=8)
    assert 0.4 < result.share("v2") < 0.6


def test_the_canary_grader_passes_the_reference_solution(lab: Lab) -> None:
    result = lab.check("canary", SOLUTIONS)
    assert result.passed, str(result)


def test_prometheus_has_per_version_task_api_metrics(lab: Lab) -> None:
    url = lab.status()["prometheus"]
    assert url
    lab.send(requests=300, concurrency=4)
    query = url + "/api/v1/query?query=sum%20by%20(version)%20(taskapi_requests_total)"
    versions: set[str] = set()
    for _ in range(30):  # Prometheus scrapes every second; pods may still be starting
        with urllib.request.urlopen(query, timeout=10) as resp:
            data = json.loads(resp.read())
        versions = {r["metric"].get("version", "") for r in data["data"]["result"]}
        if {"v1", "v2"} <= versions:
            break
        time.sleep(2)
    assert {"v1", "v2"} <= versions


def test_a_rollout_runs_to_the_end(lab: Lab) -> None:
    from trafficlab.monitoring.rollout import load_policy, run_rollout

    lab.apply(ROOT / "cluster" / "manifests" / "baseline" / "30-httproute-task-api.yaml")
    lab.wait_programmed(timeout=60)
    policy = load_policy({"steps": [20, 100], "interval": "10s", "minRequests": 20})
    result = run_rollout(lab, policy)
    assert result.outcome == "promoted", str(result)


def test_down_deletes_the_cluster(lab: Lab) -> None:
    name = lab.backend.cluster_name  # type: ignore[attr-defined]
    lab.down()
    clusters = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True,
                              check=True).stdout.split()
    assert name not in clusters
    assert lab.status()["ready"] is False
