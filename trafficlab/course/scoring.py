"""The autograder cells' one call: grade an exercise in this notebook's lab, return the points.

nbgrader gives a test cell partial credit when its last value is a number, so :func:`score`
returns the points the exercise's checks (those of ``graders/``) award. The checks' code never
sits in a notebook cell: the instructor's version of a test cell only turns the hidden checks
on (``hidden = True`` between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``), and
what a hidden check saw is never printed, so feedback cannot leak it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trafficlab.baseline import reset_to_baseline
from trafficlab.course.exercises import EXERCISES, run_notebook_exercise
from trafficlab.grading.catalog import exercise
from trafficlab.grading.report import ExerciseResult
from trafficlab.grading.runner import run_exercise
from trafficlab.lab import Lab

__all__ = ["check", "hidden_summary", "score"]


def _run(lab: Lab, exercise_id: str, hidden: bool, directory: str | os.PathLike[str],
         answers: dict[str, Any]) -> tuple[ExerciseResult, float]:
    folder = Path(directory).resolve()
    if exercise_id in EXERCISES:  # answered in Python: the monitoring and rollout notebooks
        result = run_notebook_exercise(lab, exercise_id, answers, include_hidden=hidden,
                                       directory=folder)
        return result, EXERCISES[exercise_id].points
    item = exercise(exercise_id)
    # Routes only: the workloads the notebook deployed (blue, green, premium) stay up.
    reset_to_baseline(lab, kinds=("HTTPRoute",))
    return run_exercise(lab, folder, item, include_hidden=hidden), item.points


def score(lab: Lab, exercise_id: str, *, hidden: bool = False,
          directory: str | os.PathLike[str] = ".", **answers: Any) -> float:
    """Grade ``exercise_id`` on the files in ``directory``; show the result, return the points.

    For a file exercise (``graders/``) the route is first put back to the baseline, so the
    grade depends on your files only, not on what earlier cells did. Exercises answered in
    Python take the answers as keywords (``decide=decide``). With ``hidden=True`` (the
    autograder's copy of the cell) the hidden checks run too; only their count and points
    are shown.

    >>> score(lab, "canary")          # doctest: +SKIP
    canary results: 9/9 points. All checks passed!
    9.0
    """
    result, points = _run(lab, exercise_id, hidden, directory, answers)
    _display(result.visible())
    if hidden:
        print(hidden_summary(result))
    else:
        unseen = points - result.max_score
        if unseen > 0:
            print(f"(The autograder also runs hidden checks worth {unseen:g} more points.)")
    return float(result.score)


def check(lab: Lab, exercise_id: str, *, directory: str | os.PathLike[str] = ".",
          **answers: Any) -> ExerciseResult:
    """The self-check of an exercise answered in Python (``lab.check`` does the file exercises).

    >>> course.check(lab, "metrics-decision", decide=decide)     # doctest: +SKIP
    metrics-decision results: 8/8 points. All checks passed!
    """
    if exercise_id not in EXERCISES:
        result: ExerciseResult = lab.check(exercise_id, directory)
        return result
    return _run(lab, exercise_id, False, directory, answers)[0].visible()


def hidden_summary(result: ExerciseResult) -> str:
    """How the hidden checks went, as counts only: never their names or what they saw."""
    hidden = [c for c in result.checks if c.hidden]
    if not hidden:
        return "No hidden checks in this exercise."
    passed = sum(c.passed for c in hidden)
    points = sum(c.points for c in hidden)
    worth = sum(c.max_points for c in hidden)
    return (f"Hidden checks: {passed} of {len(hidden)} passed ({points:g}/{worth:g} points). "
            f"Total: {result.score:g}/{result.max_score:g} points.")


def _display(result: ExerciseResult) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        print(result.summary())
        return
    if get_ipython() is None:
        print(result.summary())
    else:
        display(result)  # type: ignore[no-untyped-call]
