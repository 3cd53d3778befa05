"""Where a rollout's figures come from: the version behind each Service, and its metrics per interval.

Prometheus when the lab runs it (unless the policy says ``source: direct``), else the
pods' own ``/metrics`` sampled before and after the interval.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from trafficlab._errors import TrafficLabError
from trafficlab.monitoring.metrics import (
    MetricsReport,
    PodSample,
    direct_report,
    format_duration,
    prometheus_report,
    sample_lab_pods,
    wait_scraped,
)

if TYPE_CHECKING:
    from trafficlab.lab import Lab

__all__ = ["baseline", "figures", "pick_source", "pod_version", "resolve_versions"]

Obj = dict[str, Any]


def resolve_versions(lab: Lab, namespace: str, services: Iterable[str]
                     ) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The Task API version (metric label) behind each Service, and its running pods' names."""
    versions_of: dict[str, str] = {}
    pods_of: dict[str, list[str]] = {}
    pods = lab.get("pod", namespace=namespace)
    for service in services:
        svc = lab.get("service", service, namespace=namespace)
        selector = svc.get("spec", {}).get("selector") or {}
        chosen = [p for p in pods if selector and all(
            p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
        running = [p for p in chosen if p.get("status", {}).get("phase") == "Running"]
        versions = {pod_version(p) for p in running}
        if not running:
            raise TrafficLabError(f"Service {namespace}/{service} selects no running "
                                  "pod; apply its Deployment first (e.g. trafficlab apply -f "
                                  f"cluster/manifests/workloads/{service}.yaml)")
        if len(versions) != 1:
            raise TrafficLabError(f"the pods of Service {namespace}/{service} run "
                                  f"several versions ({', '.join(sorted(versions))}); a rollout "
                                  "needs one version per Service")
        versions_of[service] = versions.pop()
        pods_of[service] = [p["metadata"]["name"] for p in running]
    return versions_of, pods_of


def pick_source(lab: Lab, wanted: str, namespace: str) -> str:
    """``prometheus`` or ``direct``, as the policy's ``source`` asks and the lab allows."""
    url = lab.status().get("prometheus")
    if wanted == "prometheus" and not url:
        raise TrafficLabError("the policy asks for Prometheus (source: prometheus), but this lab "
                              "runs none; install it or use source: direct")
    source = "prometheus" if url and wanted != "direct" else "direct"
    if source == "prometheus":
        # Figures of a pod Prometheus does not scrape yet would be missing, not zero.
        wait_scraped(lab, timeout=20, namespace=namespace)
    return source


def baseline(lab: Lab, source: str, namespace: str, names: list[str]) -> list[PodSample]:
    """The pods' counters at the start of an interval (direct source only; Prometheus keeps its own)."""
    if source != "direct":
        return []
    return sample_lab_pods(lab, namespace=namespace, names=names)[0]


def figures(lab: Lab, source: str, namespace: str, names: list[str], since: float,
            start: list[PodSample]) -> MetricsReport:
    """The figures per version over the interval that began at ``since`` (wall clock)."""
    window = max(1.0, time.time() - since)
    if source == "prometheus":
        url = lab.status().get("prometheus")
        if not url:
            raise TrafficLabError("the lab's Prometheus stopped during the rollout")
        return prometheus_report(str(url), format_duration(round(window)))
    after = sample_lab_pods(lab, namespace=namespace, names=names)[0]
    return direct_report(after, start, window=format_duration(round(window)))


def pod_version(pod: Obj) -> str:
    """The version a pod's metrics are labelled with."""
    # The Task API labels its metrics with its VERSION env; the pod label is the fallback.
    for container in pod.get("spec", {}).get("containers", []):
        for item in container.get("env", []):
            if item.get("name") == "VERSION" and item.get("value"):
                return str(item["value"])
    return str(pod["metadata"].get("labels", {}).get("version", ""))
