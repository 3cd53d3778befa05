"""Exercise monitoring: figures per version within tolerance, the right decision, and its route."""

from __future__ import annotations

import math
import time
from typing import Any

import yaml

from trafficlab.gateway.evaluate import Request
from trafficlab.grading import CheckFailure, GradingContext, check
from trafficlab.grading.expect import expect_observed_only, expect_shares
from trafficlab.grading.scenarios import canary_route, monitoring_scenario, start_monitoring
from trafficlab.monitoring.metrics import collect, wait_scraped
from trafficlab.monitoring.prometheus import SCRAPE_INTERVAL_S
from trafficlab.safe_files import load_yaml

EXERCISE = "monitoring"
REPORT = "monitoring.yaml"
ROUTE_FILE = "monitoring-route.yaml"
ERROR_TOLERANCE = 0.05  # absolute, as a fraction
P99_TOLERANCE = (0.3, 100.0)  # 30% of the truth or 100 ms, whichever is larger
BASELINE_S = 1.5 * SCRAPE_INTERVAL_S  # every pod is scraped once before the measured traffic


def _report(ctx: GradingContext) -> dict[str, Any]:
    if "report" in ctx.notes:
        return dict(ctx.notes["report"])
    text = ctx.read_text(REPORT)
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise CheckFailure(f"{REPORT} is not valid YAML: {exc}", subject="") from exc
    hint = ("monitoring.yaml holds seed, decision (promote or rollback) and versions: {v1: "
            "{error_rate: 0.0, p99_ms: 12}, v2: {...}}")
    if not isinstance(data, dict) or not isinstance(data.get("seed"), str):
        raise CheckFailure(f"{REPORT} has no seed", "seed: the name you started the scenario with",
                           hint, subject="")
    if data.get("decision") not in ("promote", "rollback"):
        raise CheckFailure(f"{REPORT} decision is {data.get('decision')!r}", "promote or rollback",
                           hint, subject="")
    versions = data.get("versions")
    for version in ("v1", "v2"):
        figures = versions.get(version) if isinstance(versions, dict) else None
        if not isinstance(figures, dict) or not all(
                isinstance(figures.get(k), (int, float)) for k in ("error_rate", "p99_ms")):
            raise CheckFailure(f"{REPORT} has no numbers for versions.{version}",
                               "error_rate and p99_ms as numbers", hint, subject="")
        if not 0 <= figures["error_rate"] <= 1:
            raise CheckFailure(f"versions.{version}.error_rate is {figures['error_rate']}",
                               "a fraction between 0 and 1 (5% is 0.05)", hint, subject="")
    ctx.notes["report"] = data
    return dict(data)


def _truth(ctx: GradingContext) -> dict[str, Any]:
    """Rebuild the student's scenario and measure it, as Prometheus (or the pods) sees it."""
    if "truth" in ctx.notes:
        return dict(ctx.notes["truth"])
    seed = _report(ctx)["seed"]
    start_monitoring(ctx.lab, seed, split=(50, 50))
    _wait_rolled_out(ctx, "task-api-v2")
    ctx.gate(Request("/"))
    wait_scraped(ctx.lab)
    slow = monitoring_scenario(seed) == "slow"
    # The window opens after the rollout and the gate: a replaced pod that still had samples
    # inside it (it served the previous check's traffic) would count its healthy answers as
    # v2's. A scrape inside the window before the traffic gives every pod its baseline.
    opened = time.time()
    time.sleep(BASELINE_S)
    ctx.send(Request("/"), 600 if slow else 3200, concurrency=64 if slow else 16)
    time.sleep(2.5)  # two scrapes, so the last requests are in Prometheus
    # Rounded down to the millisecond: Prometheus evaluates a little later than now, so the
    # window starts after ``opened``, never before.
    report = collect(ctx.lab, math.floor((time.time() - opened) * 1000) / 1000)
    truth = {"scenario": monitoring_scenario(seed), "source": report.source,
             "v1": report.get("v1"), "v2": report.get("v2")}
    ctx.notes["truth"] = truth
    return truth


def _wait_rolled_out(ctx: GradingContext, deployment: str, timeout: float = 30.0) -> None:
    """Until every pod of the Deployment runs its current env and is ready (old ones gone)."""
    deadline = time.monotonic() + timeout
    while True:
        spec = ctx.lab.get("Deployment", deployment)["spec"]
        env = {e["name"]: str(e["value"]) for e in spec["template"]["spec"]["containers"][0]
               .get("env", []) if "value" in e}
        pods = [p for p in ctx.lab.get("pod") if p["metadata"]["name"].startswith(deployment + "-")]
        current = [p for p in pods if all(
            {e["name"]: e["value"] for e in p["spec"]["containers"][0]["env"]}.get(k) == v
            for k, v in env.items())]
        if len(pods) == len(current) == int(spec.get("replicas", 1)) and all(
                p["status"]["ready"] for p in pods):
            return
        if time.monotonic() > deadline:
            raise CheckFailure(f"{deployment} did not finish rolling out in {timeout:.0f}s",
                               hint="grading problem: tell your instructor", subject="")
        time.sleep(0.1)


def _compare(ctx: GradingContext, version: str) -> None:
    reported = _report(ctx)["versions"][version]
    truth = _truth(ctx)
    seen = truth[version]
    if seen.error_rate is None or seen.p99_ms is None:
        raise CheckFailure(f"the grader's own measurement of {version} has no data",
                           hint="grading problem: tell your instructor", subject="")
    source = "Prometheus" if truth["source"] == "prometheus" else "the pods' metrics"
    if abs(reported["error_rate"] - seen.error_rate) > ERROR_TOLERANCE:
        raise CheckFailure(
            f"you reported an error rate of {reported['error_rate']:.3f} for {version}; "
            f"{source} saw {seen.error_rate:.3f}", f"within ±{ERROR_TOLERANCE}",
            "error rate = rate of 5xx answers / rate of all answers of that version, as a "
            "fraction; 'trafficlab metrics --show-queries' shows the query", subject="")
    allowed = max(P99_TOLERANCE[0] * seen.p99_ms, P99_TOLERANCE[1])
    if abs(reported["p99_ms"] - seen.p99_ms) > allowed:
        raise CheckFailure(
            f"you reported p99 {reported['p99_ms']:.0f} ms for {version}; {source} saw "
            f"{seen.p99_ms:.0f} ms", f"within ±{allowed:.0f} ms",
            "p99 comes from the latency histogram: histogram_quantile(0.99, ...) per version, "
            "in milliseconds", subject="")


@check(points=1, success="monitoring.yaml has your seed, figures and decision")
def test_report_complete(ctx: GradingContext) -> None:
    _report(ctx)


@check(points=3, success="your v2 figures match what the metrics show")
def test_v2_figures(ctx: GradingContext) -> None:
    _compare(ctx, "v2")


@check(points=2, success="your v1 figures match what the metrics show")
def test_v1_figures(ctx: GradingContext) -> None:
    _compare(ctx, "v1")


@check(points=2, success="your decision fits the canary's health")
def test_decision(ctx: GradingContext) -> None:
    decision = _report(ctx)["decision"]
    scenario = _truth(ctx)["scenario"]
    right = "promote" if scenario == "healthy" else "rollback"
    if decision != right:
        raise CheckFailure(f"you decided to {decision}, but this canary is {scenario}",
                           right, "compare v2's error rate and p99 with v1's: a canary is "
                           "promoted only when it is as healthy as the stable version", subject="")


@check(points=2, success="monitoring-route.yaml carries out your decision")
def test_decision_route(ctx: GradingContext) -> None:
    decision = _report(ctx)["decision"]
    ctx.apply_objects([canary_route(90, 10)])
    ctx.apply_file(ROUTE_FILE)
    service = "task-api-v2" if decision == "promote" else "task-api-v1"
    hint = ("promote: all weight on task-api-v2; roll back: all weight on task-api-v1 "
            "(weight 0 for the other)")
    expect_shares(ctx, Request("/"), {service: 1.0}, hint=hint)
    expect_observed_only(ctx, Request("/"), service, hint=hint)
