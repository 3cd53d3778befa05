"""Declaring checks: points, hidden, and the messages a student reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["CheckFailure", "CheckSpec", "NotSubmitted", "check", "checks_of", "crash_message",
           "run_checks"]

F = TypeVar("F", bound=Callable[..., Any])
_ATTR = "__trafficlab_check__"


class CheckFailure(AssertionError):
    """A check saw something other than what it expected.

    ``saw`` and ``expected`` are plain facts; ``hint`` nudges before it gives the answer.
    Raised as an AssertionError so pytest reports it as a test failure.
    """

    def __init__(self, saw: str, expected: str = "", hint: str = "", *,
                 subject: str = "HTTPRoute default/task-api") -> None:
        self.saw = saw
        self.expected = expected
        self.hint = hint
        self.subject = subject
        text = f"{subject}: {saw}" if subject else saw
        if expected:
            text += f"; expected {expected}"
        super().__init__(text + (f". Hint: {hint}" if hint else ""))

    @property
    def message(self) -> str:
        text = f"{self.subject}: {self.saw}" if self.subject else self.saw
        return text + (f"; expected {self.expected}" if self.expected else "")


class NotSubmitted(CheckFailure):
    """A file the exercise needs is missing from the submission."""

    def __init__(self, filename: str) -> None:
        super().__init__(f"not submitted: {filename} is missing", subject="",
                         hint=f"save your answer as {filename} in the submission folder")


@dataclass(frozen=True)
class CheckSpec:
    """One graded check, as declared with :func:`check`."""

    name: str
    points: float | None
    hidden: bool
    success: str
    description: str
    func: Callable[..., Any]


def check(points: float | None = None, *, hidden: bool = False, success: str | None = None,
          name: str | None = None) -> Callable[[F], F]:
    """Declare a grader check.

    >>> @check(points=2, success="v2 gets exactly 10% of requests")
    ... def test_exact_share(ctx): ...
    """

    def mark(func: F) -> F:
        doc = (func.__doc__ or "").strip().splitlines()
        label = name or func.__name__.removeprefix("test_").replace("_", " ")
        spec = CheckSpec(name=label, points=points, hidden=hidden,
                         success=success or (doc[0] if doc else f"{label}: passed"),
                         description=doc[0] if doc else label, func=func)
        setattr(func, _ATTR, spec)
        return func

    return mark


def checks_of(module: Any) -> list[CheckSpec]:
    """The checks a grader module declares, in the order the module defines them."""
    return [getattr(v, _ATTR) for v in vars(module).values() if hasattr(v, _ATTR)]


def assign_points(specs: list[CheckSpec], total: float | None) -> list[float]:
    """Otter's rule: declared points stand; the rest of the total is split among the others."""
    declared = sum(s.points for s in specs if s.points is not None)
    undeclared = [s for s in specs if s.points is None]
    if total is None:
        total = declared if declared else 1.0
    share = max(total - declared, 0.0) / len(undeclared) if undeclared else 0.0
    return [s.points if s.points is not None else share for s in specs]


def crash_message(exc: BaseException) -> str:
    """How a check that raised something unexpected is reported."""
    return f"the grader could not run this check: {type(exc).__name__}: {exc}"[:500]


def run_checks(specs: list[CheckSpec], points: dict[str, float], ctx: Any) -> list[Any]:
    """Run checks in order; a failure is feedback, a lab error or a crash of the check itself
    fails only that check, never the exercise or the run."""
    from trafficlab._errors import TrafficLabError
    from trafficlab.grading.report import CheckResult

    results: list[CheckResult] = []
    for spec in specs:
        worth = points[spec.name]
        try:
            spec.func(ctx)
        except CheckFailure as failure:
            results.append(CheckResult(spec.name, False, 0.0, worth, failure.message,
                                       failure.hint, spec.hidden))
        except TrafficLabError as exc:
            results.append(CheckResult(spec.name, False, 0.0, worth,
                                       f"the lab failed during this check: {exc.message}",
                                       "", spec.hidden))
        except Exception as exc:  # one broken check must not cost the others
            results.append(CheckResult(spec.name, False, 0.0, worth, crash_message(exc),
                                       "this is the grader's fault or an answer it did not "
                                       "expect; the other checks still count", spec.hidden))
        else:
            results.append(CheckResult(spec.name, True, worth, worth, spec.success, "",
                                       spec.hidden))
    return results
