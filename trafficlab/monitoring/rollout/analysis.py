"""Judgement and decision, pure: one interval's canary figures against the policy, then what to do.

No I/O, clock or lab: :func:`judge` checks the figures, :func:`decide` applies the
threshold and the no-data policy to the judgement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trafficlab.monitoring.metrics import VersionMetrics
from trafficlab.monitoring.rollout.policy import RolloutPolicy

__all__ = ["CheckResult", "Decision", "Judgement", "decide", "judge"]


@dataclass(frozen=True)
class CheckResult:
    """One check of one interval: ``status`` is ``pass``, ``fail`` or ``no_data``."""

    name: str
    value: float | None
    limit: float
    status: str

    @property
    def text(self) -> str:
        if self.name == "requests":
            seen = "no requests" if self.value is None else f"{self.value:.0f} requests"
            op = "≥" if self.status == "pass" else "<"
            return f"{seen} {op} min {self.limit:.0f}"
        what = "error rate" if self.name == "error_rate" else "p99"
        if self.value is None:
            return f"{what}: no data"
        if self.status == "no_data":
            shown = f"{self.value * 100:.2f}%" if self.name == "error_rate" else f"{self.value:.1f} ms"
            return f"{what} {shown} (not judged: too few requests)"
        if self.name == "error_rate":
            op = "≤" if self.status == "pass" else ">"
            return f"error rate {self.value * 100:.2f}% {op} max {self.limit * 100:.2f}%"
        op = "≤" if self.status == "pass" else ">"
        return f"p99 {self.value:.1f} ms {op} max {self.limit:.0f} ms"

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "value": self.value, "limit": self.limit,
                "result": self.status, "text": self.text}


@dataclass(frozen=True)
class Judgement:
    """An interval's verdict on the canary: ``pass``, ``fail`` or ``no_data``, with its checks."""

    verdict: str
    checks: tuple[CheckResult, ...]

    @property
    def text(self) -> str:
        return "; ".join(c.text for c in self.checks)


def judge(canary: VersionMetrics, policy: RolloutPolicy) -> Judgement:
    """Check the canary's figures of one interval against the policy.

    Fewer than ``min_requests`` requests (and never 0 of 0) is no data: error rate and p99
    are then not judged, since a handful of requests says little about either.

    >>> judge(VersionMetrics(rps=10, requests=300, error_rate=0.2, p50_ms=2, p99_ms=9),
    ...       RolloutPolicy(canary="v2")).verdict
    'fail'
    """
    requests = canary.requests
    enough = requests is not None and requests >= max(1, policy.min_requests)
    checks = [CheckResult("requests", requests, policy.min_requests,
                          "pass" if enough else "no_data")]
    for name, value, limit in (("error_rate", canary.error_rate, policy.max_error_rate),
                               ("p99", canary.p99_ms, policy.max_p99_ms)):
        if not enough or value is None:
            # The figure is kept for the record, but too few requests are not judged.
            checks.append(CheckResult(name, value, limit, "no_data"))
        else:
            checks.append(CheckResult(name, value, limit, "pass" if value <= limit else "fail"))
    statuses = {c.status for c in checks}
    verdict = "fail" if "fail" in statuses else "no_data" if "no_data" in statuses else "pass"
    return Judgement(verdict, tuple(checks))


@dataclass(frozen=True)
class Decision:
    """What to do after an interval: ``advance``, ``retry`` (same step again) or ``rollback``."""

    action: str
    failed_checks: int
    no_data_streak: int
    reason: str


def decide(judgement: Judgement, failed_checks: int, no_data_streak: int,
           policy: RolloutPolicy) -> Decision:
    """Apply the threshold and the no-data policy to one interval's judgement.

    Failed checks add up over the whole rollout (as Flagger counts them); consecutive
    no-data intervals count only under ``no_data: hold``.

    >>> p = RolloutPolicy(canary="v2", threshold=2)
    >>> decide(Judgement("fail", ()), 1, 0, p).action
    'rollback'
    """
    verdict = judgement.verdict
    if verdict == "pass":
        return Decision("advance", failed_checks, 0, f"the canary passed: {judgement.text}")
    if verdict == "no_data" and policy.no_data == "hold":
        streak = no_data_streak + 1
        if streak >= policy.no_data_limit:
            return Decision("rollback", failed_checks, streak,
                            f"no data for {streak} intervals in a row (noData: hold, noDataLimit: "
                            f"{policy.no_data_limit}): {judgement.text}")
        return Decision("retry", failed_checks, streak,
                        f"no data ({judgement.text}); holding this step "
                        f"({streak}/{policy.no_data_limit} intervals without data)")
    failed = failed_checks + 1
    why = (f"no data counts as a failed check (noData: fail): {judgement.text}"
           if verdict == "no_data" else f"the canary failed: {judgement.text}")
    if failed >= policy.threshold:
        return Decision("rollback", failed, 0,
                        f"{why}; {failed} failed checks reached the threshold of {policy.threshold}")
    return Decision("retry", failed, 0,
                    f"{why}; {failed}/{policy.threshold} failed checks, analysing this step again")
