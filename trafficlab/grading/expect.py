"""Checks shared by the exercises: attachment, exact shares from the spec, observed splits.

Each raises :class:`CheckFailure` with what it saw, what it expected and a hint that
nudges before it gives the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from trafficlab.gateway.evaluate import Request
from trafficlab.grading.checks import CheckFailure, check
from trafficlab.grading.context import GradingContext

__all__ = [
    "describe",
    "expect_attached",
    "expect_observed_only",
    "expect_observed_split",
    "expect_shares",
    "file_checks",
    "weights_text",
]

GATEWAY = "task-api-gateway"


def describe(request: Request) -> str:
    headers = " ".join(f"with {k}: {v}" for k, v in request.headers.items())
    return f"{request.method} {request.path}" + (f" {headers}" if headers else "")


def _pct(share: float) -> str:
    return f"{share * 100:.4g}%"


def _shares_text(shares: Mapping[str, float]) -> str:
    parts = [f"{_pct(s)} to {k.split('/', 1)[-1]}" for k, s in sorted(shares.items(), key=lambda i: -i[1])]
    return ", ".join(parts) if parts else "nothing"


def weights_text(route: Mapping[str, Any]) -> str:
    """The backendRefs of each rule with weights, e.g. "rule 0: task-api-v1=100, task-api-v2=10"."""
    parts = []
    for i, rule in enumerate(route.get("spec", {}).get("rules", [])):
        refs = ", ".join(f"{r.get('name')}={r.get('weight', 1)}" for r in rule.get("backendRefs", []))
        parts.append(f"rule {i}: {refs or 'no backendRefs'}")
    return "; ".join(parts)


def expect_attached(ctx: GradingContext) -> None:
    """The route is accepted by the lab's Gateway, with every backend resolved."""
    route = ctx.route()
    parents = route.get("status", {}).get("parents", [])
    mine = [p for p in parents if p.get("parentRef", {}).get("name") == GATEWAY]
    refs = [p.get("name") for p in route["spec"].get("parentRefs", [])]
    if not mine:
        raise CheckFailure(f"the route is not attached to {GATEWAY} (parentRefs: {refs or 'none'})",
                           f"spec.parentRefs to name: {GATEWAY}",
                           "a route serves traffic only through the Gateway its parentRefs name")
    conditions = {c["type"]: c for c in mine[0].get("conditions", [])}
    accepted = conditions.get("Accepted", {})
    if accepted.get("status") != "True":
        raise CheckFailure(f"{GATEWAY} did not accept the route: {accepted.get('reason')}: "
                           f"{accepted.get('message')}", "Accepted=True",
                           "check spec.parentRefs (name, sectionName) and spec.hostnames")
    resolved = conditions.get("ResolvedRefs", {})
    if resolved.get("status") != "True":
        raise CheckFailure(f"a backend is not resolved: {resolved.get('reason')}: "
                           f"{resolved.get('message')}", "every backendRef to an existing Service",
                           "compare each backendRefs[].name and port with 'trafficlab get services'")


def expect_shares(ctx: GradingContext, request: Request, expected: Mapping[str, float], *,
                  hint: str) -> None:
    """The route's spec sends ``request`` to Services in exactly these shares."""
    outcome = ctx.predict(request)
    got = {k.split("/", 1)[-1]: v for k, v in outcome.shares.items() if v > 0}
    want = {k: v for k, v in expected.items() if v > 0}
    if set(got) == set(want) and all(abs(got[k] - want[k]) < 1e-9 for k in want):
        return
    raise CheckFailure(f"{describe(request)} goes {_shares_text(got)} ({weights_text(ctx.route())})",
                       _shares_text(want), hint)


def expect_observed_split(ctx: GradingContext, request: Request, expected_services: Mapping[str, float],
                          *, hint: str) -> None:
    """Real traffic: the share of each version is within the grading policy's bounds."""
    expected = ctx.services_to_versions(expected_services)
    verdict, result = ctx.observe(request, expected)
    if result.errors:
        raise CheckFailure(f"{sum(result.errors.values())} of {result.total} requests failed "
                           f"({dict(result.errors)})", "no failed request", hint)
    if not verdict.passed:
        raise CheckFailure(f"{describe(request)}: " + verdict.message.replace("\n", "; "),
                           subject="HTTPRoute default/task-api", hint=hint)


def expect_observed_only(ctx: GradingContext, request: Request, version_service: str, *,
                         hint: str, requests: int = 200) -> None:
    """Real traffic: every request answered 200 by the one expected version."""
    version = ctx.version_of(version_service)
    ctx.gate(request)
    result = ctx.send(request, requests)
    wrong = {v: c for v, c in result.by_version.items() if v != version}
    bad_status = {s: c for s, c in result.by_status.items() if s != 200}
    if wrong or bad_status or result.errors:
        seen = ", ".join(f"{c} to {v}" for v, c in sorted(wrong.items()))
        parts = [p for p in (seen and f"{seen} of {result.total}",
                             bad_status and f"status codes {dict(bad_status)}",
                             result.errors and f"errors {dict(result.errors)}") if p]
        raise CheckFailure(f"{describe(request)}: " + "; ".join(parts),
                           f"all {result.total} answered by {version_service} (x-version: {version})",
                           hint)


def file_checks(filename: str, *, points: tuple[float, float] = (1, 1)
                ) -> tuple[Callable[[GradingContext], None], Callable[[GradingContext], None]]:
    """The two checks most exercises open with: the file applies, and the route attaches.

    Assign them to ``test_applies, test_attached`` first in a grader module.
    """

    @check(points=points[0], success=f"{filename} is a valid route and was applied", name="applies")
    def test_applies(ctx: GradingContext) -> None:
        ctx.apply_file(filename)

    @check(points=points[1], name="attached",
           success="the route is attached to task-api-gateway with resolved backends")
    def test_attached(ctx: GradingContext) -> None:
        ctx.require(filename)
        expect_attached(ctx)

    return test_applies, test_attached
