"""Exercise progressive: 5% -> 25% -> 50% -> 100% to task-api-v2, each stage observed."""

from __future__ import annotations

from typing import Any

from trafficlab.gateway.evaluate import Request
from trafficlab.grading import CheckFailure, GradingContext, check
from trafficlab.grading.expect import expect_observed_only, expect_observed_split, expect_shares

EXERCISE = "progressive"
STAGES = [(1, 0.05), (2, 0.25), (3, 0.50), (4, 1.00)]
HINT = ("each stage sets the weights of task-api-v1 and task-api-v2 so that v2's weight divided "
        "by the sum of both is the stage's share")


def _file(stage: int) -> str:
    return f"progressive-{stage}.yaml"


def _split(share: float) -> dict[str, float]:
    return {"task-api-v1": 1.0 - share, "task-api-v2": share}


def _stage(ctx: GradingContext, stage: int, share: float) -> None:
    ctx.apply_file(_file(stage))
    request = Request("/")
    expect_shares(ctx, request, _split(share), hint=HINT)
    if share >= 1.0:
        expect_observed_only(ctx, request, "task-api-v2", hint=HINT, requests=300)
    else:
        expect_observed_split(ctx, request, _split(share), hint=HINT)


def _without_weights(route: dict[str, Any]) -> Any:
    spec = route.get("spec", {})
    rules = [{**r, "backendRefs": [{k: v for k, v in b.items() if k != "weight"}
                                   for b in r.get("backendRefs", [])]} for r in spec.get("rules", [])]
    return {**spec, "rules": rules}


@check(points=3, success="stage 1 sends 5% to v2")
def test_stage_1(ctx: GradingContext) -> None:
    _stage(ctx, 1, 0.05)


@check(points=3, success="stage 2 sends 25% to v2")
def test_stage_2(ctx: GradingContext) -> None:
    _stage(ctx, 2, 0.25)


@check(points=2, success="stage 3 sends 50% to v2")
def test_stage_3(ctx: GradingContext) -> None:
    _stage(ctx, 3, 0.50)


@check(points=2, success="stage 4 sends all traffic to v2")
def test_stage_4(ctx: GradingContext) -> None:
    _stage(ctx, 4, 1.00)


@check(points=2, success="each stage changes only the weights of the one before")
def test_stages_differ_only_in_weights(ctx: GradingContext) -> None:
    routes = []
    for stage, _ in STAGES:
        objects = ctx.read(_file(stage))
        routes.append(next(o for o in objects if o.get("kind") == "HTTPRoute"))
    for (stage, _), before, after in zip(STAGES[1:], routes, routes[1:], strict=False):
        if _without_weights(before) != _without_weights(after):
            raise CheckFailure(f"{_file(stage)} changes more than weights compared with "
                               f"{_file(stage - 1)}", "only backendRefs[].weight to change",
                               "copy the previous stage and edit the two weights only: a "
                               "progressive rollout moves traffic, nothing else", subject="")
