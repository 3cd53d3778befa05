"""Grading: exercises checked by real traffic through the lab's gateway.

An exercise is a pytest module in ``graders/`` whose checks are plain functions taking a
:class:`GradingContext`, declared with :func:`check` (points, hidden, messages). The same
module runs under pytest (``pytest graders --submission DIR``) and under
``trafficlab grade`` / ``trafficlab check`` / ``Lab.check``.
"""

from __future__ import annotations

from trafficlab.grading.checks import CheckFailure, CheckSpec, check
from trafficlab.grading.context import GradingContext
from trafficlab.grading.report import CheckResult, ExerciseResult, GradeReport

__all__ = [
    "CheckFailure",
    "CheckResult",
    "CheckSpec",
    "ExerciseResult",
    "GradeReport",
    "GradingContext",
    "check",
]
