"""Autograde: a folder of submitted notebooks, each run against its own fresh lab, grades to CSV.

As nbgrader's ``autograde`` does, the test cells (and every locked cell) of a submission are
first put back as the instructor wrote them, hidden tests included, matched by their
``grade_id``: what a student changed there does not count. The notebook then runs top to
bottom (:func:`trafficlab.course.execute.execute_notebook`) and each test cell is graded by
nbgrader's own rule (:func:`nbgrader.utils.determine_grade`): an error or anything on stderr
is 0, a number as the cell's value is partial credit, anything else is full marks. A test
cell that did not run, or that the student deleted, is 0.

Layout: ``SUBMISSIONS/<student>/.../<notebook>.ipynb`` (nbgrader's ``submitted/<student>/
<assignment>/`` fits), the notebook's name being one of ``solutions/notebooks/``. Each
notebook runs in its own process and lab; ``jobs`` of them at a time.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from trafficlab.course.execute import CELL_TIMEOUT, execute_notebook
from trafficlab.course.release import (
    grade_cells,
    read_notebook,
    repo_root,
    source_notebooks,
    write_notebook,
)
from trafficlab.grading.report import csv_cell

__all__ = [
    "CellGrade",
    "NotebookGrade",
    "autograde",
    "find_submissions",
    "grade_notebook",
    "grades_csv",
    "restore_cells",
    "score_cells",
]


@dataclass
class CellGrade:
    """The points of one autograder test cell."""

    grade_id: str
    points: float
    max_points: float
    note: str = ""


@dataclass
class NotebookGrade:
    """The grade of one submitted notebook."""

    student: str
    notebook: str
    cells: list[CellGrade] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.cells), 6)

    @property
    def max_score(self) -> float:
        return round(sum(c.max_points for c in self.cells), 6)

    def to_dict(self) -> dict[str, Any]:
        return {"student": self.student, "notebook": self.notebook, "score": self.score,
                "max_score": self.max_score, "seconds": round(self.seconds, 2), "error": self.error,
                "cells": [c.__dict__ for c in self.cells]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NotebookGrade:
        return cls(str(data["student"]), str(data["notebook"]),
                   [CellGrade(**c) for c in data.get("cells", [])], float(data.get("seconds", 0.0)),
                   data.get("error"))


def _copy(node: Any) -> NotebookNode:
    copied: NotebookNode = nbformat.from_dict(json.loads(json.dumps(node)))  # type: ignore[no-untyped-call]
    return copied


def _grade_id(cell: NotebookNode) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return str(meta["grade_id"]) if meta.get("grade_id") else None


def _protected(cell: NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade") or meta.get("locked")) and not meta.get("solution")


def restore_cells(submitted: NotebookNode, source: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """The submission with its test and locked cells as the instructor wrote them.

    Returns the notebook and the ``grade_id`` of each protected cell the student deleted.
    Cells are matched by ``grade_id``; a submitted cell that claims a protected ``grade_id``
    gets the source's text, metadata and type back.
    """
    nb = _copy(submitted)
    originals = {gid: cell for cell in source.cells
                 if _protected(cell) and (gid := _grade_id(cell)) is not None}
    seen = set()
    for index, cell in enumerate(nb.cells):
        gid = _grade_id(cell)
        if gid is None or gid not in originals or gid in seen:
            if gid is not None and gid in seen:  # a copied test cell must not count twice
                cell.metadata.get("nbgrader", {}).pop("grade", None)
            continue
        seen.add(gid)
        original = originals[gid]
        restored = _copy(original)
        restored["outputs"] = []
        if restored.cell_type == "code":
            restored["execution_count"] = None
        if "id" in cell:
            restored["id"] = cell["id"]
        nb.cells[index] = restored
    return nb, [gid for gid in originals if gid not in seen]


def score_cells(executed: NotebookNode, source: NotebookNode) -> list[CellGrade]:
    """Points per test cell of the source, by nbgrader's rule; deleted or not run: 0."""
    from nbgrader.utils import determine_grade

    ran = {_grade_id(c): c for c in grade_cells(executed)}
    grades = []
    for original in grade_cells(source):
        gid = str(_grade_id(original))
        worth = float(original.metadata["nbgrader"]["points"])
        cell = ran.get(gid)
        if cell is None:
            grades.append(CellGrade(gid, 0.0, worth, "the test cell was deleted"))
            continue
        if cell.get("execution_count") is None:
            grades.append(CellGrade(gid, 0.0, worth, "the test cell did not run"))
            continue
        try:
            points, _ = determine_grade(cell)
        except ValueError as exc:  # a value above the cell's points
            grades.append(CellGrade(gid, 0.0, worth, f"invalid partial credit: {exc}"))
            continue
        note = ""
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            note = "the test cell raised an error"
        elif any(o.get("output_type") == "stream" and o.get("name") == "stderr"
                 for o in cell.get("outputs", [])):
            note = "the test cell wrote to stderr"
        grades.append(CellGrade(gid, float(points or 0.0), worth, note))
    return grades


def grade_notebook(submitted: Path, source: Path, *, student: str, out: Path | None = None,
                   timeout: int = CELL_TIMEOUT, tmp_root: Path | None = None) -> NotebookGrade:
    """Restore, execute in a fresh lab (a temporary folder), score; save the executed notebook to ``out``.

    The notebook runs in ``<tmp>/work`` with its lab in ``<tmp>/lab``, ``<tmp>`` being a new
    temporary folder (inside ``tmp_root`` when given), removed afterwards.
    """
    result = NotebookGrade(student, source.stem)
    try:
        sub_nb = read_notebook(submitted)
    except Exception as exc:  # an unreadable file is the student's: it scores 0, grading goes on
        result.error = f"{submitted.name} is not a notebook nbformat can read: {exc}"
        src_nb = read_notebook(source)
        result.cells = [CellGrade(str(_grade_id(c)), 0.0, float(c.metadata["nbgrader"]["points"]),
                                  "unreadable notebook") for c in grade_cells(src_nb)]
        return result
    src_nb = read_notebook(source)
    nb, _deleted = restore_cells(sub_nb, src_nb)
    with tempfile.TemporaryDirectory(prefix="trafficlab-autograde-", dir=tmp_root) as tmp:
        workdir = Path(tmp) / "work"
        run = execute_notebook(nb, workdir, home=Path(tmp) / "lab", timeout=timeout)
    result.seconds = run.seconds
    result.error = run.error
    result.cells = score_cells(run.notebook, src_nb)
    if out is not None:
        write_notebook(run.notebook, out)
    return result


def find_submissions(folder: Path, sources: dict[str, Path]) -> list[tuple[str, Path]]:
    """``(student, notebook path)`` for every submitted notebook whose name is a course notebook."""
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        parts = path.relative_to(folder).parts
        if any(p.startswith(".") for p in parts) or path.name not in sources:
            continue
        student = parts[0] if len(parts) > 1 else folder.name
        found.append((student, path))
    return found


def _grade_in_process(student: str, path: Path, source: Path, out: Path | None,
                      timeout: int, tmp_root: Path | None) -> NotebookGrade:
    cmd = [sys.executable, "-m", "trafficlab.course", "grade-notebook", str(path),
           "--source", str(source), "--student", student, "--timeout", str(timeout)]
    if out is not None:
        cmd += ["--out", str(out)]
    if tmp_root is not None:
        cmd += ["--tmp-root", str(tmp_root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=repo_root(),
                          timeout=timeout * 40 + 300)
    if proc.returncode == 0:
        try:
            return NotebookGrade.from_dict(json.loads(proc.stdout))
        except (ValueError, KeyError):
            pass
    failed = NotebookGrade(student, source.stem)
    failed.error = (proc.stderr.strip()[-500:] or f"grading exited with {proc.returncode}")
    src_nb = read_notebook(source)
    failed.cells = [CellGrade(str(_grade_id(c)), 0.0, float(c.metadata["nbgrader"]["points"]),
                              "grading failed") for c in grade_cells(src_nb)]
    return failed


def autograde(folder: Path, *, out: Path | None = None, autograded: Path | None = None,
              jobs: int = 2, timeout: int = CELL_TIMEOUT, source_dir: Path | None = None,
              tmp_root: Path | None = None,
              on_done: Callable[[NotebookGrade], None] | None = None) -> list[NotebookGrade]:
    """Grade every submitted notebook under ``folder``; write the CSV to ``out``.

    Executed notebooks go to ``autograded/<student>/<notebook>.ipynb`` (default: an
    ``autograded`` folder beside the CSV, or inside ``folder`` without one). Each notebook
    runs in its own process, folder and lab (see :func:`grade_notebook`; ``tmp_root`` is where
    their temporary folders go).
    """
    sources = {p.name: p for p in source_notebooks(source_dir)}
    todo = find_submissions(folder, sources)
    keep = autograded or ((out.parent if out else folder) / "autograded")

    def one(item: tuple[str, Path]) -> NotebookGrade:
        student, path = item
        grade = _grade_in_process(student, path, sources[path.name],
                                  keep / student / path.name, timeout, tmp_root)
        if on_done:
            on_done(grade)
        return grade

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        grades = list(pool.map(one, todo))
    grades.sort(key=lambda g: (g.student, g.notebook))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(grades_csv(grades, source_dir), encoding="utf-8")
    return grades


def grades_csv(grades: Sequence[NotebookGrade], source_dir: Path | None = None) -> str:
    """One row per student and notebook: score, max, each test cell's points, seconds, error."""
    cell_ids: list[str] = []
    for path in source_notebooks(source_dir):
        for cell in grade_cells(read_notebook(path)):
            gid = str(_grade_id(cell))
            if gid not in cell_ids:
                cell_ids.append(gid)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(c) for c in ("student", "notebook", "score", "max_score",
                                            *cell_ids, "seconds", "error")])
    for grade in grades:
        by_id = {c.grade_id: c for c in grade.cells}
        notes = "; ".join(f"{c.grade_id}: {c.note}" for c in grade.cells if c.note)
        error = "; ".join(p for p in (grade.error, notes) if p)
        # Student, notebook and error texts come from the submission: never a formula.
        writer.writerow([csv_cell(c) for c in (
            grade.student, grade.notebook, f"{grade.score:g}", f"{grade.max_score:g}",
            *[f"{by_id[i].points:g}" if i in by_id else "" for i in cell_ids],
            f"{grade.seconds:.1f}", error)])
    return buffer.getvalue()
