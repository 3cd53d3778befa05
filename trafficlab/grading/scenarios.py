"""Exercise scenarios whose truth the student does not know, reproducible from a seed.

The monitoring exercise gives each student a canary that is healthy, failing or slow; the
seed (the student's name, say) decides which, so the grader can rebuild the same scenario.
"""

from __future__ import annotations

import hashlib

from trafficlab.lab import Lab
from trafficlab.manifests import load_manifests, manifests_dir

__all__ = ["MONITORING_SCENARIOS", "monitoring_scenario", "start_monitoring"]

# scenario -> the manifest of task-api-v2 it runs
MONITORING_SCENARIOS = {
    "healthy": "baseline/21-task-api-v2.yaml",
    "failing": "workloads/task-api-v2-faulty.yaml",
    "slow": "workloads/task-api-v2-slow.yaml",
}


def monitoring_scenario(seed: str) -> str:
    """Which canary ``seed`` gets: healthy, failing or slow (stable for a given seed)."""
    digest = hashlib.sha256(seed.strip().encode()).digest()
    names = sorted(MONITORING_SCENARIOS)
    return names[digest[0] % len(names)]


def canary_route(v1: int, v2: int) -> dict[str, object]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "task-api", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "task-api-gateway"}], "rules": [{"backendRefs": [
                {"name": "task-api-v1", "port": 80, "weight": v1},
                {"name": "task-api-v2", "port": 80, "weight": v2}]}]}}


def start_monitoring(lab: Lab, seed: str, *, split: tuple[int, int] = (90, 10)) -> None:
    """Deploy the seed's v2 and a canary route; the student's job is to find out how v2 is doing.

    >>> start_monitoring(lab, seed="alice")  # doctest: +SKIP
    """
    manifest = MONITORING_SCENARIOS[monitoring_scenario(seed)]
    lab.apply(load_manifests(manifests_dir() / manifest))
    lab.apply(canary_route(*split))
    lab.wait_programmed()
