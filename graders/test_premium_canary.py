"""Exercise premium-canary: premium users always on v1 while others get a 10% canary.

The lesson behind the feedback: in the Gateway API the most specific match wins (path type and
length, then method, then the number of header matches...), not the first rule in the list.
"""

from __future__ import annotations

from trafficlab.gateway.evaluate import Request
from trafficlab.grading import CheckFailure, GradingContext, check
from trafficlab.grading.expect import (
    describe,
    expect_observed_only,
    expect_observed_split,
    expect_shares,
    file_checks,
)

EXERCISE = "premium-canary"
FILE = "premium-canary.yaml"
PREMIUM = {"x-user-tier": "premium"}
SPLIT = {"task-api-v1": 0.9, "task-api-v2": 0.1}
PATHS = ("/", "/tasks", "/tasks/1")
HINT_PREMIUM = ("premium users need a rule with a header match on x-user-tier: premium that "
                "sends them to task-api-v1 only")
HINT_ORDER = ("the Gateway API does not pick the first rule in the list: it picks the most "
              "specific match — path first (Exact, then the longest PathPrefix), then method, "
              "then the number of header matches. Give the premium rule the same path match as "
              "the canary rule, plus the header")
HINT_SPLIT = "everyone else gets the canary: task-api-v1 and task-api-v2 weighted 9:1"


test_applies, test_attached = file_checks(FILE, points=(1, 1))


@check(points=2, success="by the spec, premium users reach only v1, on every path")
def test_premium_spec(ctx: GradingContext) -> None:
    ctx.require(FILE)
    for path in PATHS:
        request = Request(path, headers=PREMIUM)
        outcome = ctx.predict(request)
        if outcome.share("task-api-v2") > 0:
            raise CheckFailure(
                f"{describe(request)} reaches task-api-v2 through {outcome.route}",
                "premium users never on v2", HINT_ORDER)
    for path in PATHS:
        expect_shares(ctx, Request(path, headers=PREMIUM), {"task-api-v1": 1.0}, hint=HINT_PREMIUM)


@check(points=2, success="by the spec, everyone else gets exactly 10% of v2")
def test_canary_spec(ctx: GradingContext) -> None:
    ctx.require(FILE)
    for path in ("/", "/tasks"):
        expect_shares(ctx, Request(path), SPLIT, hint=HINT_SPLIT)


@check(points=2, success="not one premium request reached v2")
def test_premium_observed(ctx: GradingContext) -> None:
    ctx.require(FILE)
    expect_observed_only(ctx, Request("/", headers=PREMIUM), "task-api-v1", hint=HINT_PREMIUM,
                         requests=500)


@check(points=2, success="real traffic of other users splits 90/10")
def test_canary_observed(ctx: GradingContext) -> None:
    ctx.require(FILE)
    expect_observed_split(ctx, Request("/"), SPLIT, hint=HINT_SPLIT)
