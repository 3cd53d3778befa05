"""Faults and observations: make a version misbehave, send load, read its per-version metrics."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from trafficlab.course.labs import wait_pods
from trafficlab.lab import Lab
from trafficlab.manifests import baseline_dir, load_manifests

if TYPE_CHECKING:
    from trafficlab.monitoring.metrics import MetricsReport
    from trafficlab.traffic import TrafficResult

__all__ = ["observe", "set_env"]

# The scrape interval of the lab's Prometheus is 1 s: after the load stops, two intervals
# make sure its last counters are in (trafficlab/monitoring/prometheus.py, SCRAPE_INTERVAL_S).
_SCRAPE_SETTLE_S = 2.0


def set_env(lab: Lab, deployment: str, *, quiet: bool = False, **env: str | float) -> None:
    """Set a baseline Deployment's container env to the baseline's plus ``env``; wait for the new pod.

    The Task API reads ``ERROR_RATE`` (share of 500s) and ``LATENCY_MS`` (added delay).
    With no ``env``, the Deployment goes back to its baseline.

    >>> set_env(lab, "task-api-v2", ERROR_RATE=0.3)     # doctest: +SKIP
    >>> set_env(lab, "task-api-v2")                     # back to normal  # doctest: +SKIP
    """
    base = next((o for o in load_manifests(baseline_dir())
                 if o["kind"] == "Deployment" and o["metadata"]["name"] == deployment), None)
    if base is None:
        raise ValueError(f"{deployment} is not a Deployment of the baseline "
                         "(task-api-v1, task-api-v2)")
    container = base["spec"]["template"]["spec"]["containers"][0]
    wanted = [e for e in container.get("env", []) if e.get("name") not in env]
    wanted += [{"name": k, "value": str(v)} for k, v in env.items()]
    result = lab.patch("deployment", deployment, [
        {"op": "replace", "path": "/spec/template/spec/containers/0/env", "value": wanted}],
        type="json")
    if not quiet:
        print(result)
    wait_pods(lab)


def observe(lab: Lab, *, seconds: float = 3.0, rate: float = 250.0, source: str = "auto",
            quiet: bool = False, **send_options: Any) -> tuple[TrafficResult, MetricsReport]:
    """Send ``rate`` requests/s for ``seconds``, then read the per-version metrics of that stretch.

    Returns what the client saw and what the monitoring saw (``collect`` over a window that
    covers the load; ``source`` as for ``collect``: Prometheus when the lab runs one, else the
    pods read directly). With Prometheus it first waits until every pod is scraped, since a
    pod not scraped yet would be missing from the figures, not zero: after a pod changes that
    takes some 5 s (Prometheus applies new targets every 5 s). ``source="direct"`` reads the
    pods before and after, with no wait.
    """
    from trafficlab.monitoring.metrics import collect, format_duration, wait_scraped

    prometheus = source != "direct" and wait_scraped(lab)
    settle = _SCRAPE_SETTLE_S if prometheus else 0.0
    window = format_duration(round(seconds + settle + 1))
    collect(lab, window, source=source)  # direct: the reading the next collect counts from
    result = lab.send(duration=seconds, rate=rate, concurrency=16, progress=False, **send_options)
    time.sleep(settle)
    report = collect(lab, window, source=source)
    if not quiet:
        print(f"sent {result.total} requests in {result.elapsed:.1f} s; metrics over the last {window}")
    return result, report
