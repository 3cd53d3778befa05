"""Exercise blue-green: switch all traffic from blue to green and back, failing no request."""

from __future__ import annotations

import copy
import json
from typing import Any

from trafficlab.gateway.evaluate import Request
from trafficlab.grading import CheckFailure, GradingContext, check
from trafficlab.grading.expect import expect_attached, expect_observed_only, expect_shares

EXERCISE = "blue-green"
FILE = "blue-green.yaml"
HINT = ("blue-green switches everything at once: green gets all the weight (or is the only "
        "backendRef) and blue gets none")
LOAD_SECONDS = 3.0
LOAD_RATE = 150.0

ALL_BLUE = {
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
    "metadata": {"name": "task-api", "namespace": "default"},
    "spec": {"parentRefs": [{"name": "task-api-gateway"}],
             "rules": [{"backendRefs": [{"name": "task-api-blue", "port": 80}]}]},
}


def setup(ctx: GradingContext) -> None:
    """Blue and green run; all traffic goes to blue."""
    ctx.apply_manifest("workloads/task-api-blue.yaml")
    ctx.apply_manifest("workloads/task-api-green.yaml")
    ctx.apply_objects([ALL_BLUE])
    ctx.gate(Request("/"))


def _switch_under_load(ctx: GradingContext, apply: Any) -> Any:
    import time

    with ctx.steady_load(Request("/"), seconds=LOAD_SECONDS, rate=LOAD_RATE) as load:
        time.sleep(0.5)
        apply()
    return load.result()


def _swapped(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The student's route with blue and green exchanged: the switch back."""
    text = json.dumps(copy.deepcopy(objects))
    text = text.replace("task-api-green", "\0").replace("task-api-blue", "task-api-green")
    return list(json.loads(text.replace("\0", "task-api-blue")))


@check(points=2, success="blue-green.yaml was applied under steady load")
def test_switch_applies(ctx: GradingContext) -> None:
    ctx.notes["switch"] = _switch_under_load(ctx, lambda: ctx.apply_file(FILE))


@check(points=1, success="the route is attached with resolved backends")
def test_attached(ctx: GradingContext) -> None:
    ctx.require(FILE)
    expect_attached(ctx)


@check(points=2, success="after the switch every request goes to green")
def test_all_green(ctx: GradingContext) -> None:
    ctx.require(FILE)
    expect_shares(ctx, Request("/"), {"task-api-green": 1.0}, hint=HINT)
    expect_observed_only(ctx, Request("/"), "task-api-green", hint=HINT)


@check(points=3, success="no request failed while traffic switched to green")
def test_no_failed_request(ctx: GradingContext) -> None:
    ctx.require(FILE)
    result = ctx.note("switch", "switch applies")
    failed = {s: c for s, c in result.by_status.items() if s >= 500}
    if failed or result.errors:
        raise CheckFailure(f"during the switch {sum(failed.values())} requests answered "
                           f"{dict(failed)} and {sum(result.errors.values())} failed outright, "
                           f"of {result.total}", "0 failed requests",
                           "switch in one apply of a route whose every backend exists and is "
                           "ready; a backendRef to a missing Service answers 500")


@check(points=2, success="switching back to blue the same way works, with no failed request")
def test_switch_back(ctx: GradingContext) -> None:
    ctx.require(FILE)
    ctx.note("switch", "switch applies")  # switching back is checked once the switch worked
    back = _swapped(ctx.applied[FILE])
    result = _switch_under_load(ctx, lambda: ctx.apply_objects(back))
    failed = sum(c for s, c in result.by_status.items() if s >= 500) + sum(result.errors.values())
    if failed:
        raise CheckFailure(f"switching back failed {failed} of {result.total} requests",
                           "0 failed requests", HINT)
    expect_observed_only(ctx, Request("/"), "task-api-blue", hint=HINT)
