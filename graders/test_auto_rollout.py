"""Exercise auto-rollout: the student's policy promotes a healthy v2 and rolls back a failing v3.

The grader runs both rollouts with the student's checks, shortening the interval to 4 s and
driving enough load that every interval has data, so the policy's thresholds decide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import yaml

from trafficlab.gateway.evaluate import Request
from trafficlab.grading import CheckFailure, GradingContext, check
from trafficlab.monitoring.rollout import PolicyError, RolloutPolicy, load_policy, run_rollout
from trafficlab.safe_files import load_yaml

EXERCISE = "auto-rollout"
FILE = "auto-rollout.yaml"
MAX_INTERVAL_S = 4.0  # at 1 s scrapes, 4 samples a window even when the machine is busy


def _route(canary: str) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "task-api", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "task-api-gateway"}], "rules": [{"backendRefs": [
                {"name": "task-api-v1", "port": 80, "weight": 100},
                {"name": canary, "port": 80, "weight": 0}]}]}}


def _policy(ctx: GradingContext) -> RolloutPolicy:
    if "policy" in ctx.notes:
        policy: RolloutPolicy = ctx.notes["policy"]
        return policy
    text = ctx.read_text(FILE)
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise CheckFailure(f"{FILE} is not valid YAML: {exc}", "a valid rollout policy",
                           "write one setting per line, each key once", subject="") from exc
    # Parsed here, with alias expansion bounded; a non-mapping is left to load_policy's message.
    source: Any = data if isinstance(data, Mapping) else text + "\n"
    try:
        policy = load_policy(source, base=RolloutPolicy(canary="task-api-v2")).validate()
    except PolicyError as exc:
        raise CheckFailure(f"{FILE}: {exc.message}", "a valid rollout policy",
                           f"fix {exc.field}; 'trafficlab rollout --policy {FILE} --help' lists "
                           "the settings", subject="") from exc
    ctx.notes["policy"] = policy
    return policy


def _run(ctx: GradingContext, canary: str) -> Any:
    policy = _policy(ctx)
    interval = min(policy.interval_s, MAX_INTERVAL_S)
    first = (policy.steps[0] if policy.steps else 5) / 100
    # Enough load that the first step's canary share meets minRequests twice over.
    rate = min(max(policy.load_rps or 0.0, 2 * policy.min_requests / (first * interval), 100.0), 2000.0)
    run = dataclasses.replace(policy, route="task-api", namespace="default", stable="task-api-v1",
                              canary=canary, interval_s=interval, load_rps=rate,
                              pause_before_steps=False)
    ctx.apply_objects([_route(canary)])
    ctx.gate(Request("/"))
    return run_rollout(ctx.lab, run, progress=False)


@check(points=2, success="auto-rollout.yaml is a valid rollout policy")
def test_policy_valid(ctx: GradingContext) -> None:
    _policy(ctx)


@check(points=4, success="your policy promoted the healthy v2 to 100%")
def test_healthy_promoted(ctx: GradingContext) -> None:
    result = _run(ctx, "task-api-v2")
    if result.outcome != "promoted":
        raise CheckFailure(f"the healthy v2 was {result.outcome.replace('_', ' ')}: {result.reason}",
                           "promoted", "a healthy version has no errors and a p99 of a few ms: "
                           "are your limits (maxErrorRate, maxP99, minRequests) reachable?",
                           subject="")


@check(points=4, success="your policy rolled the failing v3 back to v1")
def test_failing_rolled_back(ctx: GradingContext) -> None:
    ctx.apply_manifest("workloads/task-api-v3-faulty.yaml")
    result = _run(ctx, "task-api-v3")
    if result.outcome != "rolled_back":
        raise CheckFailure(f"the failing v3 (30% errors) was {result.outcome.replace('_', ' ')}: "
                           f"{result.reason}", "rolled back",
                           "maxErrorRate is a fraction: 0.01 means 1%, and v3 fails 30% of requests",
                           subject="")
