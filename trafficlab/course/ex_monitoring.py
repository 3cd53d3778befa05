"""Exercise monitoring: ``decide(report)`` reads per-version metrics and says what to do with v2.

The rule the student implements (notebook 6):

- ``"wait"`` when v2 got fewer than 100 requests in the window (no data counts as none), or
  its error rate or p99 is no data: too little to judge;
- else ``"rollback"`` when v2's error rate is above 1% or its p99 above 200 ms;
- else ``"promote"``.

The checks on the lab's own metrics read the pods directly (the same figures as Prometheus
gives, without waiting for it to discover a restarted pod).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trafficlab.course.exercises import AnswerContext
from trafficlab.course.observe import observe, set_env
from trafficlab.grading.checks import CheckFailure, check
from trafficlab.monitoring.metrics import MetricsReport, VersionMetrics

MIN_REQUESTS = 100
MAX_ERROR_RATE = 0.01
MAX_P99_MS = 200.0
CHOICES = ("promote", "rollback", "wait")
HEALTHY = VersionMetrics(rps=40.0, requests=2400, error_rate=0.002, p50_ms=3.0, p99_ms=40.0)
HINT_WAIT = ("with fewer than 100 requests, or a figure that is None (no data), v2 cannot be "
             "judged yet: return 'wait'")
HINT_ERRORS = "v2's error rate is a share (0.2 is 20%): above 0.01, roll back"
HINT_LATENCY = "look at v2's p99_ms too: above 200 ms, roll back"
HINT_PROMOTE = "v2 is within both limits on enough requests: promote"
HINT_BOUNDS = "'above' a limit means strictly greater: exactly 1% or exactly 200 ms is within it"

CANARY_25 = {
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
    "metadata": {"name": "task-api", "namespace": "default"},
    "spec": {"parentRefs": [{"name": "task-api-gateway"}], "rules": [{"backendRefs": [
        {"name": "task-api-v1", "port": 80, "weight": 75},
        {"name": "task-api-v2", "port": 80, "weight": 25}]}]},
}


def report(v2: VersionMetrics | None, v1: VersionMetrics = HEALTHY) -> MetricsReport:
    """A report as :func:`trafficlab.monitoring.metrics.collect` returns it (v2 left out when None)."""
    versions = {"v1": v1} if v2 is None else {"v1": v1, "v2": v2}
    return MetricsReport(source="prometheus", window="1m", versions=versions)


def _describe(metrics: Mapping[str, Any]) -> str:
    v2 = metrics.get("v2")
    if v2 is None:
        return "a report without v2"
    parts = [f"{k}={v}" for k, v in v2.items() if k != "rps"]
    return "v2 with " + ", ".join(parts)


def ask(ctx: AnswerContext, metrics: MetricsReport, expected: str, hint: str) -> None:
    """Call the student's ``decide`` on ``metrics``; fail unless it returns ``expected``."""
    decide = ctx.answer("decide")
    shown = _describe(metrics.to_dict()["versions"])
    try:
        got = decide(metrics)
    except Exception as exc:  # the student's code: any error is feedback, not a crash
        raise CheckFailure(f"decide(report) raised {type(exc).__name__}: {exc} for {shown}",
                           subject="", hint="report.get('v2') gives v2's figures (requests, "
                           "error_rate, p99_ms); each may be None") from exc
    if got not in CHOICES:
        raise CheckFailure(f"decide(report) returned {got!r} for {shown}",
                           "'promote', 'rollback' or 'wait'", subject="", hint="return one of the "
                           "three words, as a string")
    if got != expected:
        raise CheckFailure(f"decide(report) returned {got!r} for {shown}", repr(expected), hint,
                           subject="")


@check(points=1, success="a healthy v2 on enough requests is promoted")
def test_promotes_healthy(ctx: AnswerContext) -> None:
    ask(ctx, report(HEALTHY), "promote", HINT_PROMOTE)


@check(points=1, success="a v2 failing 20% of its requests is rolled back")
def test_rolls_back_errors(ctx: AnswerContext) -> None:
    ask(ctx, report(VersionMetrics(rps=40, requests=2400, error_rate=0.2, p50_ms=3, p99_ms=40)),
        "rollback", HINT_ERRORS)


@check(points=1, success="a v2 with a p99 of 800 ms is rolled back")
def test_rolls_back_latency(ctx: AnswerContext) -> None:
    ask(ctx, report(VersionMetrics(rps=40, requests=2400, error_rate=0.0, p50_ms=300, p99_ms=800)),
        "rollback", HINT_LATENCY)


@check(points=1, success="30 requests are too few to judge: wait")
def test_waits_on_few_requests(ctx: AnswerContext) -> None:
    ask(ctx, report(VersionMetrics(rps=0.5, requests=30, error_rate=0.5, p50_ms=3, p99_ms=900)),
        "wait", HINT_WAIT)


@check(points=1, hidden=True, success="no data for v2 means wait, not promote")
def test_waits_without_data(ctx: AnswerContext) -> None:
    ask(ctx, report(None), "wait", HINT_WAIT)
    ask(ctx, report(VersionMetrics(rps=0.0, requests=0.0)), "wait", HINT_WAIT)
    ask(ctx, report(VersionMetrics(rps=5, requests=300, error_rate=None, p50_ms=None, p99_ms=None)),
        "wait", HINT_WAIT)


@check(points=1, hidden=True, success="the limits themselves are within bounds")
def test_boundaries(ctx: AnswerContext) -> None:
    ask(ctx, report(VersionMetrics(rps=2, requests=MIN_REQUESTS, error_rate=MAX_ERROR_RATE,
                                   p50_ms=20, p99_ms=MAX_P99_MS)), "promote", HINT_BOUNDS)


def _requires_basics(ctx: AnswerContext) -> None:
    """Measuring takes seconds: only once decide gets the two plainest reports right."""
    try:
        ask(ctx, report(HEALTHY), "promote", HINT_PROMOTE)
        ask(ctx, report(VersionMetrics(rps=40, requests=2400, error_rate=0.2, p50_ms=3, p99_ms=40)),
            "rollback", HINT_ERRORS)
    except CheckFailure:
        raise CheckFailure("not checked on the lab yet, because decide gets the given reports "
                           "wrong", subject="", hint="make the checks above pass first") from None


@check(points=2, success="on the lab's own metrics, a healthy 25% canary is promoted")
def test_live_healthy(ctx: AnswerContext) -> None:
    _requires_basics(ctx)
    ctx.lab.apply([CANARY_25])
    set_env(ctx.lab, "task-api-v2", quiet=True)
    _, metrics = observe(ctx.lab, source="direct", quiet=True)
    ask(ctx, metrics, "promote", HINT_PROMOTE)


@check(points=2, success="on the lab's own metrics, a 25% canary failing 30% of requests is rolled back")
def test_live_failing(ctx: AnswerContext) -> None:
    _requires_basics(ctx)
    ctx.lab.apply([CANARY_25])
    set_env(ctx.lab, "task-api-v2", quiet=True, ERROR_RATE=0.3)
    _, metrics = observe(ctx.lab, source="direct", quiet=True)
    ask(ctx, metrics, "rollback", HINT_ERRORS)


def teardown(ctx: AnswerContext) -> None:
    """v2 back to normal and the route back to the baseline, whatever the checks did."""
    from trafficlab.manifests import baseline_dir, load_manifests

    ctx.lab.delete("HTTPRoute", "task-api", ignore_not_found=True)
    ctx.lab.apply(load_manifests(baseline_dir()))
    set_env(ctx.lab, "task-api-v2", quiet=True)
