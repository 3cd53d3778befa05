"""Every notebook, executed top to bottom on its own fresh local lab, through ``autograde``.

One autograde run (two at a time, in its sandboxes, as ``make autograde`` does) grades two
submissions of each notebook: the instructor's solution, which must get every point with no
error and nothing on stderr, and the student version left unanswered, which must get none (so
the checks are not vacuous). Each notebook runs in its own sandbox with its own lab home in
this test's tmp folder; the fixture stops any lab still running there afterwards.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from trafficlab.course.autograde import NotebookGrade, autograde
from trafficlab.course.release import RELEASE_DIR, grade_cells, repo_root, source_notebooks
from trafficlab.course.sandbox import probe
from trafficlab.lab import Lab

pytestmark = pytest.mark.integration

ROOT = repo_root()
SOURCES = source_notebooks()
STUDENTS = ("solution", "unanswered")
Graded = tuple[Path, dict[tuple[str, str], NotebookGrade]]


def _processes_under(folder: Path) -> list[str]:
    """Processes (lab daemon, Envoy, pods, Prometheus) whose command line names ``folder``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(folder).encode() in cmdline:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{proc.name}: {command}")
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graded]:
    base = tmp_path_factory.mktemp("notebooks")
    submissions, work = base / "submitted", base / "work"
    work.mkdir()
    for path in SOURCES:
        for student, folder in (("solution", path.parent), ("unanswered", ROOT / RELEASE_DIR)):
            (submissions / student).mkdir(parents=True, exist_ok=True)
            shutil.copy(folder / path.name, submissions / student / path.name)
    try:
        # Sandboxed wherever bubblewrap runs (tests/hostile/test_notebooks.py tries the
        # attacks); where it cannot, the same flow unsandboxed, so the notebooks are still tested.
        grades = autograde(submissions, out=base / "grades.csv", autograded=base / "autograded",
                           jobs=2, tmp_root=work, sandbox=probe() is None)
        yield base, {(g.student, g.notebook): g for g in grades}
    finally:
        # A crashed grading process could leave its lab behind: stop it by its home.
        for home in work.glob("*/lab"):
            if (home / "lab.json").exists():
                Lab(home, backend="local").down()


def _executed(base: Path, student: str, notebook: str) -> nbformat.NotebookNode:
    return nbformat.read(base / "autograded" / student / f"{notebook}.ipynb", as_version=4)


@pytest.mark.parametrize("notebook", [p.stem for p in SOURCES])
def test_solution_notebook_runs_and_earns_every_point(graded: Graded, notebook: str) -> None:
    base, grades = graded
    grade = grades[("solution", notebook)]
    assert grade.error is None
    assert grade.cells and all(c.points == c.max_points for c in grade.cells), grade.cells
    nb = _executed(base, "solution", notebook)
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", (index, output.get("evalue"))
            assert not (output["output_type"] == "stream" and output["name"] == "stderr"), \
                (index, cell.source, output["text"])
    # Every code cell ran, in order, the last one being lab.down().
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    # The one-line self-check says so in friendly words.
    checks = [c for c in code if c.source.startswith(("lab.check(", "course.check("))]
    assert checks
    for cell in checks:
        text = cell.outputs[-1]["data"]["text/plain"]
        assert "All checks passed!" in text and "Traceback" not in text


@pytest.mark.parametrize("notebook", [p.stem for p in SOURCES])
def test_unanswered_student_notebook_earns_nothing(graded: Graded, notebook: str) -> None:
    base, grades = graded
    grade = grades[("unanswered", notebook)]
    assert grade.error is None  # it ran to the end: the checks failed, not the notebook
    assert grade.cells and all(c.points == 0 for c in grade.cells), grade.cells
    assert {c.grade_id for c in grade.cells} == {
        str(c.metadata["nbgrader"]["grade_id"])
        for c in grade_cells(nbformat.read(ROOT / "solutions" / "notebooks" / f"{notebook}.ipynb",
                                           as_version=4))}
    # The autograder restored the hidden-test regions in the test cells it ran.
    nb = _executed(base, "unanswered", notebook)
    assert all("hidden = True" in c.source for c in grade_cells(nb))


def test_grades_csv_lists_every_submission(graded: Graded) -> None:
    base, _ = graded
    rows = (base / "grades.csv").read_text().splitlines()
    assert len(rows) == 1 + len(STUDENTS) * len(SOURCES)
    assert rows[0].startswith("student,notebook,score,max_score,")


def test_no_lab_is_left_running(graded: Graded) -> None:
    base, _ = graded
    assert _processes_under(base / "work") == []
    assert not any((base / "work").iterdir())  # every temporary folder was removed
