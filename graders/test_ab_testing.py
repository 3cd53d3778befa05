"""Exercise ab-testing: beta users (x-user-type: beta) to v2, everyone else to v1."""

from __future__ import annotations

from trafficlab.gateway.evaluate import Request
from trafficlab.grading import GradingContext, check
from trafficlab.grading.expect import expect_observed_only, expect_shares, file_checks

EXERCISE = "ab-testing"
FILE = "ab-testing.yaml"
BETA = {"x-user-type": "beta"}
HINT_BETA = ("a rule with matches[].headers [{name: x-user-type, value: beta}] sends beta users "
             "to task-api-v2; header names ignore case, values do not")
HINT_OTHERS = ("requests without the beta header need a rule too: one without header matches "
               "that sends them to task-api-v1")


test_applies, test_attached = file_checks(FILE, points=(1, 1))


@check(points=2, success="the spec sends beta users to v2 and everyone else to v1")
def test_spec(ctx: GradingContext) -> None:
    ctx.require(FILE)
    expect_shares(ctx, Request("/", headers=BETA), {"task-api-v2": 1.0}, hint=HINT_BETA)
    expect_shares(ctx, Request("/"), {"task-api-v1": 1.0}, hint=HINT_OTHERS)
    expect_shares(ctx, Request("/", headers={"x-user-type": "regular"}), {"task-api-v1": 1.0},
                  hint=HINT_OTHERS)


@check(points=2, success="every beta request was answered by v2")
def test_beta_observed(ctx: GradingContext) -> None:
    ctx.require(FILE)
    expect_observed_only(ctx, Request("/", headers=BETA), "task-api-v2", hint=HINT_BETA)


@check(points=1, success="every other request was answered by v1")
def test_others_observed(ctx: GradingContext) -> None:
    ctx.require(FILE)
    expect_observed_only(ctx, Request("/"), "task-api-v1", hint=HINT_OTHERS)


@check(points=1, hidden=True, success="beta users reach v2 on every path")
def test_beta_everywhere(ctx: GradingContext) -> None:
    ctx.require(FILE)
    expect_shares(ctx, Request("/tasks", headers=BETA), {"task-api-v2": 1.0},
                  hint="the experiment covers the whole API: match PathPrefix / in the beta rule")
    expect_shares(ctx, Request("/tasks"), {"task-api-v1": 1.0}, hint=HINT_OTHERS)
