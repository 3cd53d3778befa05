"""Exercise automated-rollout: a rollout policy that promotes a healthy canary and rolls back a bad one.

The student writes ``rollout-policy.yaml`` (notebook 7) for :mod:`trafficlab.monitoring.rollout`:
canary ``task-api-v2`` through 10%, 50%, 100%, analysed every 2 s on the rollout's own load,
rolled back at the second failed check when v2's error rate is above 1% or its p99 above
300 ms, and judged only on enough requests. The checks run the policy on the lab, for real.
"""

from __future__ import annotations

from typing import Any

import yaml

from trafficlab._errors import UnsafeFileError
from trafficlab.course.exercises import AnswerContext
from trafficlab.course.observe import set_env
from trafficlab.grading.checks import CheckFailure, check
from trafficlab.manifests import baseline_dir, load_manifests
from trafficlab.safe_files import load_yaml, read_text

FILE = "rollout-policy.yaml"
STEPS = (10, 50, 100)
INTERVAL_S = 2.0
MAX_ERROR_RATE = 0.01
MAX_P99_MS = 300.0
MIN_REQUESTS = 20
MAX_THRESHOLD = 2
MAX_LOAD = 1000.0
HINT_FIELDS = ("the settings are canary, steps, interval, maxErrorRate, maxP99, minRequests, "
               "threshold and load (see lessons/07-automated-rollouts.md)")


def _policy(ctx: AnswerContext) -> Any:
    if "policy" not in ctx.notes:
        raise CheckFailure(f"not checked, because {FILE} could not be read", subject="",
                           hint="make the first check pass first")
    if not ctx.notes.get("settings_ok"):
        raise CheckFailure("not run on the lab yet, because the policy's settings are not right "
                           "(a rollout with them could take minutes)", subject="",
                           hint="make the settings check pass first")
    return ctx.notes["policy"]


def _baseline(ctx: AnswerContext, **env: str | float) -> None:
    """The baseline route (v2 at weight 0), v2 with ``env`` (its faults) and no other change."""
    ctx.lab.delete("HTTPRoute", "task-api", ignore_not_found=True)
    ctx.lab.apply(load_manifests(baseline_dir()))
    set_env(ctx.lab, "task-api-v2", quiet=True, **env)


def _run(ctx: AnswerContext) -> Any:
    import dataclasses

    from trafficlab.monitoring.rollout import run_rollout

    # The figures come from the pods directly: the same numbers as Prometheus gives, without
    # waiting some 5 s for it to discover each restarted v2 pod. The policy is judged as written.
    policy = dataclasses.replace(_policy(ctx), source="direct")
    return run_rollout(ctx.lab, policy, progress=False)


def _v2_weight(ctx: AnswerContext) -> int:
    route = ctx.lab.get("HTTPRoute", "task-api")
    for rule in route["spec"].get("rules", []):
        for ref in rule.get("backendRefs", []):
            if ref.get("name") == "task-api-v2":
                return int(ref.get("weight", 1))
    return 0


@check(points=1, success=f"{FILE} is a rollout policy the lab can read")
def test_policy_reads(ctx: AnswerContext) -> None:
    from trafficlab.monitoring.rollout import PolicyError, load_policy

    path = ctx.directory / FILE
    if not path.is_file():
        raise CheckFailure(f"not submitted: {FILE} is missing", subject="",
                           hint=f"run the cell that starts with %%writefile {FILE}")
    try:
        text = read_text(FILE, ctx.directory)
    except UnsafeFileError as exc:
        raise CheckFailure(f"{FILE} was refused: {exc.problem}", subject="", hint=exc.todo) from exc
    try:
        settings = load_yaml(text)
    except yaml.YAMLError:
        settings = "?"  # load_policy says what is wrong, with the line
    if not settings:
        raise CheckFailure(f"{FILE} holds no setting yet", subject="",
                           hint=f"write the policy in the cell that starts with %%writefile {FILE}")
    try:
        ctx.notes["policy"] = load_policy(path)
    except PolicyError as exc:
        raise CheckFailure(f"{FILE} was rejected: {exc.message}", subject="", hint=HINT_FIELDS) from exc


@check(points=2, success="the policy's steps, interval, limits, threshold and load fit the task")
def test_policy_settings(ctx: AnswerContext) -> None:
    if "policy" not in ctx.notes:
        raise CheckFailure(f"not checked, because {FILE} could not be read", subject="",
                           hint="make the first check pass first")
    p = ctx.notes["policy"]
    problems = []
    if p.canary != "task-api-v2" or p.stable != "task-api-v1":
        problems.append(f"canary {p.canary!r} against stable {p.stable!r} (want task-api-v2 "
                        "against task-api-v1)")
    if tuple(p.steps) != STEPS:
        problems.append(f"steps {list(p.steps)} (want {list(STEPS)})")
    if p.interval_s != INTERVAL_S:
        problems.append(f"interval {p.interval_s:g}s (want 2s)")
    if not 0 < p.max_error_rate <= MAX_ERROR_RATE:
        problems.append(f"maxErrorRate {p.max_error_rate:g} (want at most 1%, above 0)")
    if p.max_p99_ms > MAX_P99_MS:
        problems.append(f"maxP99 {p.max_p99_ms:g}ms (want at most 300ms)")
    if p.threshold > MAX_THRESHOLD:
        problems.append(f"threshold {p.threshold} (want a rollback at the second failed check "
                        "at the latest)")
    if p.min_requests < MIN_REQUESTS:
        problems.append(f"minRequests {p.min_requests} (want at least {MIN_REQUESTS})")
    if not p.load_rps:
        problems.append("no load: nobody else sends traffic, so the rollout must (load: N req/s)")
    elif p.load_rps > MAX_LOAD:
        problems.append(f"load {p.load_rps:g} req/s (want at most {MAX_LOAD:g} on this machine)")
    else:
        expected = p.load_rps * STEPS[0] / 100 * p.interval_s
        if expected < 2 * p.min_requests:
            problems.append(f"at 10% v2 gets about {expected:.0f} requests per interval "
                            f"(load {p.load_rps:g} × 10% × {p.interval_s:g}s), less than twice "
                            f"minRequests {p.min_requests}: steps would often have no data")
    if problems:
        raise CheckFailure("; ".join(problems), subject=FILE,
                           hint="requests per interval at a step = load × the step's share × "
                           "interval; leave room above minRequests")
    ctx.notes["settings_ok"] = True


@check(points=3, success="with a healthy v2 the rollout promotes it: v2 ends at 100%")
def test_promotes_healthy(ctx: AnswerContext) -> None:
    _policy(ctx)
    _baseline(ctx)
    result = _run(ctx)
    if result.outcome != "promoted":
        raise CheckFailure(f"the rollout ended {result.outcome}: {result.reason}",
                           "promoted", "a healthy canary must pass every step: are the limits "
                           "and minRequests reachable with your load?", subject="rollout")
    if _v2_weight(ctx) != 100:
        raise CheckFailure(f"after the rollout v2 has weight {_v2_weight(ctx)}", "100", subject="rollout")


@check(points=2, success="with a v2 failing 30% of requests the rollout rolls back: v2 ends at 0")
def test_rolls_back_errors(ctx: AnswerContext) -> None:
    _policy(ctx)
    _baseline(ctx, ERROR_RATE=0.3)
    result = _run(ctx)
    if result.outcome != "rolled_back" or _v2_weight(ctx) != 0:
        raise CheckFailure(f"the rollout ended {result.outcome} with v2 at weight "
                           f"{_v2_weight(ctx)}: {result.reason}", "rolled_back, v2 at 0",
                           "maxErrorRate is a fraction: 0.01 (or 1%) is one request in a hundred",
                           subject="rollout")


@check(points=2, hidden=True, success="with a v2 slowed by 500 ms the rollout rolls back")
def test_rolls_back_latency(ctx: AnswerContext) -> None:
    _policy(ctx)
    _baseline(ctx, LATENCY_MS=500)
    result = _run(ctx)
    if result.outcome != "rolled_back" or _v2_weight(ctx) != 0:
        raise CheckFailure(f"the rollout ended {result.outcome} with v2 at weight "
                           f"{_v2_weight(ctx)}", "rolled_back, v2 at 0",
                           "maxP99 bounds v2's latency", subject="rollout")


def teardown(ctx: AnswerContext) -> None:
    """v2 back to normal, the route back to the baseline."""
    _baseline(ctx)
