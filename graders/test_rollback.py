"""Exercise rollback: after a 10% canary, not one request may reach v2."""

from __future__ import annotations

from trafficlab.gateway.evaluate import Request
from trafficlab.grading import GradingContext, check
from trafficlab.grading.expect import expect_observed_only, expect_shares, file_checks

EXERCISE = "rollback"
FILE = "rollback.yaml"
HINT = ("a backend with weight 0 gets no traffic at all; so does a backend that is no longer "
        "listed in backendRefs")

CANARY = {
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
    "metadata": {"name": "task-api", "namespace": "default"},
    "spec": {"parentRefs": [{"name": "task-api-gateway"}], "rules": [{"backendRefs": [
        {"name": "task-api-v1", "port": 80, "weight": 90},
        {"name": "task-api-v2", "port": 80, "weight": 10}]}]},
}


def setup(ctx: GradingContext) -> None:
    """A 10% canary is live before the student's rollback."""
    ctx.apply_objects([CANARY])


test_applies, test_attached = file_checks(FILE, points=(1, 1))


@check(points=2, success="the spec sends nothing to v2, on any path")
def test_no_share_for_v2(ctx: GradingContext) -> None:
    ctx.require(FILE)
    for path in ("/", "/tasks"):
        expect_shares(ctx, Request(path), {"task-api-v1": 1.0}, hint=HINT)


@check(points=2, success="not one of the requests after the rollback reached v2")
def test_observed_zero(ctx: GradingContext) -> None:
    ctx.require(FILE)
    expect_observed_only(ctx, Request("/"), "task-api-v1", hint=HINT, requests=500)
