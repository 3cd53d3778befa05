"""Exercises whose answer is Python, not a file: the monitoring and automated-rollout notebooks.

They are declared like the graders in ``graders/`` (checks with points, hidden flags and
messages, :func:`trafficlab.grading.check`) and report the same :class:`ExerciseResult`, but
their answers are objects from the notebook (a function, a policy file's name), so they are
run here rather than by ``trafficlab grade``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trafficlab.grading.catalog import Exercise, catalog
from trafficlab.grading.checks import CheckFailure, assign_points, checks_of, run_checks
from trafficlab.grading.report import ExerciseResult
from trafficlab.lab import Lab

__all__ = ["EXERCISES", "AnswerContext", "NotebookExercise", "run_notebook_exercise"]


#: A notebook exercise: its entry (``kind: notebook``) in ``graders/catalog.yaml``.
NotebookExercise = Exercise

#: The notebook exercises by id, from the one catalog.
EXERCISES: dict[str, Exercise] = {e.id: e for e in catalog("notebook")}


@dataclass
class AnswerContext:
    """What a check of a notebook exercise gets: the lab, the answers, a folder, and notes."""

    lab: Lab
    answers: dict[str, Any]
    directory: Path
    include_hidden: bool = True
    notes: dict[str, Any] = field(default_factory=dict)

    def answer(self, name: str) -> Any:
        if name not in self.answers or self.answers[name] is None:
            raise CheckFailure(f"no answer: {name} is not defined", subject="",
                               hint=f"run the cell where you write {name} first")
        return self.answers[name]


def run_notebook_exercise(lab: Lab, exercise_id: str, answers: dict[str, Any], *,
                          include_hidden: bool = True, directory: Path | None = None) -> ExerciseResult:
    """Run every check of a notebook exercise (the hidden ones only with ``include_hidden``)."""
    item = EXERCISES[exercise_id]
    module = importlib.import_module(item.module)
    specs = checks_of(module)
    points = dict(zip((s.name for s in specs), assign_points(specs, item.points), strict=True))
    chosen = [s for s in specs if include_hidden or not s.hidden]
    result = ExerciseResult(item.id, item.title, max_score=sum(points[s.name] for s in chosen))
    ctx = AnswerContext(lab, dict(answers), (directory or Path.cwd()).resolve(), include_hidden)
    teardown = getattr(module, "teardown", None)
    try:
        result.checks = run_checks(chosen, points, ctx)
    finally:
        if teardown is not None:
            teardown(ctx)
    return result
