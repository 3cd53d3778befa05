"""Results of grading: per check, per exercise, per submission; text, HTML, JSON and CSV."""

from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["CheckResult", "ExerciseResult", "GradeReport", "csv_cell", "gradebook_csv"]


def _fmt(points: float) -> str:
    return f"{points:g}"


@dataclass
class CheckResult:
    name: str
    passed: bool
    points: float
    max_points: float
    message: str
    hint: str = ""
    hidden: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "points": self.points,
                "max_points": self.max_points, "message": self.message, "hint": self.hint,
                "hidden": self.hidden}


@dataclass
class ExerciseResult:
    id: str
    title: str
    checks: list[CheckResult] = field(default_factory=list)
    max_score: float = 0.0
    error: str | None = None
    #: What the grader did not do with the submission, and why (objects it did not apply).
    notices: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.checks), 6)

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.passed for c in self.checks)

    def visible(self) -> ExerciseResult:
        """The result as a student may see it: hidden checks left out."""
        shown = [c for c in self.checks if not c.hidden]
        return ExerciseResult(self.id, self.title, shown,
                              sum(c.max_points for c in shown), self.error, list(self.notices))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "score": self.score,
                "max_score": self.max_score, "passed": self.passed, "error": self.error,
                "checks": [c.to_dict() for c in self.checks], "notices": list(self.notices)}

    # -- for people --------------------------------------------------------------------
    def summary(self) -> str:
        """Otter-like text: all passed, or each failing check with its message and hint."""
        head = f"{self.id} results: {_fmt(self.score)}/{_fmt(self.max_score)} points"
        notes = "".join(f"\n  note: {n}" for n in self.notices)
        if self.error:
            return f"{head}\n  grading could not run: {self.error}{notes}"
        if self.passed:
            return f"{head}. All checks passed!{notes}"
        lines = [head, *(f"  note: {n}" for n in self.notices)]
        for c in self.checks:
            mark = "✔" if c.passed else "✘"
            lines.append(f"  {mark} {c.name} ({_fmt(c.points)}/{_fmt(c.max_points)})")
            if not c.passed:
                lines.append(f"      {c.message}")
                if c.hint:
                    lines.append(f"      Hint: {c.hint}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        rows = []
        for c in self.checks:
            color = "#1a7f37" if c.passed else "#cf222e"
            detail = "" if c.passed else (html.escape(c.message)
                                          + (f"<br><i>Hint: {html.escape(c.hint)}</i>" if c.hint else ""))
            rows.append(f"<tr><td style='color:{color}'>{'✔' if c.passed else '✘'}</td>"
                        f"<td>{html.escape(c.name)}</td><td>{_fmt(c.points)}/{_fmt(c.max_points)}</td>"
                        f"<td style='text-align:left'>{detail}</td></tr>")
        title = (f"<b>{html.escape(self.id)}</b>: {_fmt(self.score)}/{_fmt(self.max_score)} points"
                 + (" — all checks passed!" if self.passed else ""))
        if self.error:
            title += f"<br>grading could not run: {html.escape(self.error)}"
        for notice in self.notices:
            title += f"<br><i>note: {html.escape(notice)}</i>"
        return f"<div>{title}<table>{''.join(rows)}</table></div>"

    def table(self) -> Table:
        table = Table(title=f"{self.id}: {_fmt(self.score)}/{_fmt(self.max_score)}", title_justify="left")
        for col in ("", "check", "points", "feedback"):
            table.add_column(col)
        for c in self.checks:
            feedback = "" if c.passed else c.message + (f"\nHint: {c.hint}" if c.hint else "")
            table.add_row("[green]✔[/]" if c.passed else "[red]✘[/]", c.name,
                          f"{_fmt(c.points)}/{_fmt(c.max_points)}", feedback)
        return table


@dataclass
class GradeReport:
    exercises: list[ExerciseResult] = field(default_factory=list)
    student: str | None = None
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return round(sum(e.score for e in self.exercises), 6)

    @property
    def max_score(self) -> float:
        return round(sum(e.max_score for e in self.exercises), 6)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"score": self.score, "max_score": self.max_score,
                               "exercises": [e.to_dict() for e in self.exercises]}
        if self.student is not None:
            out["student"] = self.student
        out["seconds"] = round(self.seconds, 2)
        return out

    def render(self) -> str:
        buffer = io.StringIO()
        console = Console(file=buffer, width=110, force_terminal=False, color_system=None)
        for exercise in self.exercises:
            console.print(exercise.table())
        console.print(f"Total: {_fmt(self.score)}/{_fmt(self.max_score)} points "
                      f"({self.seconds:.1f} s)")
        return buffer.getvalue()


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula (OWASP's rule).

    A text starting with = + - @ TAB or CR gets a leading apostrophe; numbers stay numbers.

    >>> print(csv_cell('=HYPERLINK("http://x","y")'), csv_cell("-1.5"), csv_cell(3))
    '=HYPERLINK("http://x","y") -1.5 3
    """
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def gradebook_csv(reports: list[GradeReport], exercise_ids: list[str]) -> str:
    """One row per student: total, then each exercise's score, then why any went ungraded.

    Every cell goes through :func:`csv_cell`: a student's folder name is not a formula.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_cell(c) for c in ("student", "score", "max_score", *exercise_ids,
                                            "error")])
    for report in reports:
        by_id = {e.id: e for e in report.exercises}
        errors = "; ".join(f"{e.id}: {e.error}" for e in report.exercises if e.error)
        writer.writerow([csv_cell(c) for c in (
            report.student, _fmt(report.score), _fmt(report.max_score),
            *[_fmt(by_id[i].score) if i in by_id else "" for i in exercise_ids], errors)])
    return buffer.getvalue()
