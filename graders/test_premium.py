"""Exercise premium: x-user-tier: premium to task-api-premium, everyone else to v1."""

from __future__ import annotations

from trafficlab.gateway.evaluate import Request
from trafficlab.grading import GradingContext, check
from trafficlab.grading.expect import expect_observed_only, expect_shares, file_checks

EXERCISE = "premium"
FILE = "premium.yaml"
PREMIUM = {"x-user-tier": "premium"}
HINT_PREMIUM = ("a rule with matches[].headers [{name: x-user-tier, value: premium}] and a "
                "backendRef to task-api-premium")
HINT_OTHERS = "everyone else needs a rule without header matches that goes to task-api-v1"


def setup(ctx: GradingContext) -> None:
    ctx.apply_manifest("workloads/task-api-premium.yaml")


test_applies, test_attached = file_checks(FILE, points=(1, 1))


@check(points=2, success="the spec sends premium users to task-api-premium, others to v1")
def test_spec(ctx: GradingContext) -> None:
    ctx.require(FILE)
    for path in ("/", "/tasks"):
        expect_shares(ctx, Request(path, headers=PREMIUM), {"task-api-premium": 1.0},
                      hint=HINT_PREMIUM)
        expect_shares(ctx, Request(path), {"task-api-v1": 1.0}, hint=HINT_OTHERS)


@check(points=2, success="every premium request was answered by task-api-premium")
def test_premium_observed(ctx: GradingContext) -> None:
    ctx.require(FILE)
    expect_observed_only(ctx, Request("/", headers=PREMIUM), "task-api-premium", hint=HINT_PREMIUM)


@check(points=2, success="every other request was answered by v1")
def test_others_observed(ctx: GradingContext) -> None:
    ctx.require(FILE)
    expect_observed_only(ctx, Request("/"), "task-api-v1", hint=HINT_OTHERS)
    expect_observed_only(ctx, Request("/", headers={"x-user-tier": "basic"}), "task-api-v1",
                         hint=HINT_OTHERS)
