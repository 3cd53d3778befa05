"""Exercise canary: exactly 10% of requests to task-api-v2."""

from __future__ import annotations

from trafficlab.gateway.evaluate import Request
from trafficlab.grading import GradingContext, check
from trafficlab.grading.expect import expect_observed_split, expect_shares, file_checks

EXERCISE = "canary"
FILE = "canary.yaml"
SPLIT = {"task-api-v1": 0.9, "task-api-v2": 0.1}
WEIGHT_HINT = ("weights are relative: a backend's share is its weight divided by the sum of all "
               "weights in the rule (100:10 is 9.1%, not 10%)")


test_applies, test_attached = file_checks(FILE, points=(2, 1))


@check(points=3, success="the weights send exactly 10% of / to task-api-v2")
def test_exact_share(ctx: GradingContext) -> None:
    ctx.require(FILE)
    expect_shares(ctx, Request("/"), SPLIT, hint=WEIGHT_HINT)


@check(points=3, success="real traffic splits 90/10 within the grading bounds")
def test_observed_split(ctx: GradingContext) -> None:
    ctx.require(FILE)
    expect_observed_split(ctx, Request("/"), SPLIT, hint=WEIGHT_HINT)


@check(points=1, hidden=True, success="the whole API is in the canary, not just /")
def test_other_paths_in_canary(ctx: GradingContext) -> None:
    ctx.require(FILE)
    expect_shares(ctx, Request("/tasks"), SPLIT,
                  hint="a canary tests the whole new version: match every path (PathPrefix /)")
