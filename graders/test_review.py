"""Exercise review: fix three flawed, plausible-looking AI routes; graded by the reviewer and traffic."""

from __future__ import annotations

from trafficlab.engineer.review import review_objects
from trafficlab.gateway.evaluate import Request
from trafficlab.grading import CheckFailure, GradingContext, check
from trafficlab.grading.expect import expect_observed_only, expect_observed_split, expect_shares

EXERCISE = "review"
SPLIT = {"task-api-v1": 0.9, "task-api-v2": 0.1}
BETA = {"x-user-type": "beta"}


def _reviewed(ctx: GradingContext, filename: str) -> None:
    """The fixed file applies, and the reviewer finds no error left in it."""
    objects = ctx.read(filename)
    report = review_objects([(filename, o) for o in objects])
    errors = [f for f in report.findings if f.severity in ("error", "warning")]
    if errors:
        first = errors[0]
        raise CheckFailure(f"{filename} still has a problem at {first.field}: {first.problem}",
                           "no errors or warnings from the reviewer",
                           f"run 'trafficlab review {filename}': {first.fix}", subject="")
    ctx.apply_file(filename)


@check(points=1, success="review-1.yaml is fixed and applies")
def test_review_1_fixed(ctx: GradingContext) -> None:
    _reviewed(ctx, "review-1.yaml")


@check(points=2, success="review-1.yaml splits 90/10 with no request failing")
def test_review_1_traffic(ctx: GradingContext) -> None:
    ctx.require("review-1.yaml")
    hint = "a backendRef's port is the Service's port (80), not the container's (8000)"
    expect_shares(ctx, Request("/"), SPLIT, hint=hint)
    expect_observed_split(ctx, Request("/"), SPLIT, hint=hint)


@check(points=1, success="review-2.yaml is fixed and applies")
def test_review_2_fixed(ctx: GradingContext) -> None:
    _reviewed(ctx, "review-2.yaml")


@check(points=2, success="review-2.yaml sends beta users to v2 and everyone else to v1")
def test_review_2_traffic(ctx: GradingContext) -> None:
    ctx.require("review-2.yaml")
    hint = "compare the header name letter by letter with what clients send: x-user-type"
    expect_observed_only(ctx, Request("/", headers=BETA), "task-api-v2", hint=hint)
    expect_observed_only(ctx, Request("/"), "task-api-v1", hint=hint)


@check(points=1, success="review-3.yaml is fixed and applies")
def test_review_3_fixed(ctx: GradingContext) -> None:
    _reviewed(ctx, "review-3.yaml")


@check(points=2, success="review-3.yaml splits 90/10 on every path")
def test_review_3_traffic(ctx: GradingContext) -> None:
    ctx.require("review-3.yaml")
    hint = "an Exact match on / matches only /; the API lives under /tasks too"
    for path in ("/", "/tasks", "/tasks/1"):
        expect_shares(ctx, Request(path), SPLIT, hint=hint)
    expect_observed_split(ctx, Request("/tasks"), SPLIT, hint=hint)
