"""Autograde: a folder of submitted notebooks, each run in a sandbox, graded from outside it.

The student's kernel never computes a score. Per submitted notebook:

1. The test cells (and every locked cell) are put back as the instructor wrote them, matched
   by their ``grade_id`` (as nbgrader's ``autograde`` does), so the notebook runs the
   instructor's start and stop cells.
2. The notebook runs top to bottom under bubblewrap (:mod:`trafficlab.course.sandbox`): its
   own network namespace (its lab on its own loopback), uid 65534, a read-only view of the
   student bundle (``make release``'s ``release/student/``, built once per run into a
   temporary folder: no ``solutions/``, no hidden check, no other student's files) mounted
   where the course lives, a private writable home, time, memory and process limits. Whatever
   the notebook prints or computes in its own test cells is kept for feedback only.
3. Only the answer files of the notebook's exercises (those of ``graders/catalog.yaml``,
   ``rollout-policy.yaml`` for the automated rollout) are taken out of that home, read by the
   rules of :mod:`trafficlab.safe_files` (no link followed, no special file, 1 MiB).
4. Those files are graded by TrafficLab's own checks, hidden ones included (the instructor's
   ``graders/``), in a second sandbox with its own network namespace and lab, the course
   read-only and ``solutions/`` hidden. An answer that is a Python function (the monitoring
   notebook's ``decide``) is the student's answer cells run alone in a third sandbox, called
   by the grader over a Unix socket (:mod:`trafficlab.course.answer_server`): only the report
   and the returned value cross.

Points: each autograder test cell of the instructor's notebook names one exercise
(``course.score(lab, "canary", ...)``); the cell gets the exercise's grade scaled to the
cell's ``points`` (``score * points / max_score``, the same figure when, as in this course,
the cell is worth what the exercise is worth). A deleted test cell still scores its exercise,
since the grade comes from the answer files, not from the cell; what a test cell printed in
the student's kernel is feedback only.

Layout: ``SUBMISSIONS/<student>/.../<notebook>.ipynb`` (nbgrader's ``submitted/<student>/
<assignment>/`` fits), the notebook's name being one of ``solutions/notebooks/``.
``jobs`` notebooks are graded at once. ``grades.csv`` gets one row per student and notebook:
``student, notebook, score, max_score``, the points of each test cell, seconds, and a
``reason`` (why points were lost or not given). Where an nbgrader gradebook exists
(``gradebook.db`` beside the submissions folder, or ``gradebook=``), each test cell's points
are written into it as its ``auto_score`` through :class:`nbgrader.api.Gradebook`.

Where bubblewrap cannot run, :func:`autograde` refuses (:class:`SandboxUnavailable`) unless
``sandbox=False`` (``--no-sandbox``): then the notebook runs as the grading user on the host,
where it can read the instructor's repository (``solutions/``, hidden checks), reach other
labs' ports and leave processes behind; its scores are still computed outside its kernel.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from trafficlab._errors import SandboxUnavailable
from trafficlab.course.execute import CELL_TIMEOUT, cell_timeout
from trafficlab.course.release import (
    grade_cells,
    read_notebook,
    repo_root,
    source_notebooks,
    write_notebook,
)
from trafficlab.course.sandbox import Limits, Running, SandboxResult
from trafficlab.grading.catalog import catalog
from trafficlab.grading.report import csv_cell
from trafficlab.lab import Lab

__all__ = [
    "CellGrade",
    "Course",
    "NotebookGrade",
    "SandboxUnavailable",
    "answer_files",
    "answer_source",
    "autograde",
    "cell_exercises",
    "check_sandbox",
    "collect_answers",
    "find_submissions",
    "grade_answers",
    "grade_notebook",
    "grades_csv",
    "restore_cells",
    "score_cells",
    "write_gradebook",
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
    """Points per test cell of the source by nbgrader's rule (deleted or not run: 0).

    That is the grade the student's kernel printed: :func:`autograde` never uses it, since
    the kernel controls it; it is kept to compare with, and for the notebooks' own tests.
    """
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


SANDBOX_HOME = Path("/home/student")
GRADER_HOME = Path("/home/grader")
#: Exercises answered in Python with files of their own, from the catalog.
_NOTEBOOK_FILES = {e.id: e.files for e in catalog("notebook") if e.files}
#: Exercises answered by a function: served from its own sandbox (trafficlab.course.answer_server).
_FUNCTIONS = {e.id: e.function for e in catalog("notebook") if e.function}
RPC_DIR = Path("/rpc")
_SCORE_CALL = re.compile(r"course\.score\(\s*lab\s*,\s*[\"']([A-Za-z0-9_-]+)[\"']")
#: Bytes of an executed notebook read back for feedback (charts make them large).
_EXECUTED_LIMIT = 32 * 1024 * 1024


@dataclass
class Course:
    """Where each side's code comes from: the student bundle for the notebook, the repository
    for the grader; whether they run sandboxed."""

    bundle: Path
    root: Path
    sandboxed: bool = True


def cell_exercises(source: NotebookNode) -> dict[str, str]:
    """``grade_id`` of each test cell -> the exercise its ``course.score(lab, ...)`` grades."""
    found = {}
    for cell in grade_cells(source):
        match = _SCORE_CALL.search(cell.source)
        if match:
            found[str(_grade_id(cell))] = match.group(1)
    return found


def answer_files(exercise_id: str) -> tuple[str, ...] | None:
    """The files that answer an exercise; None when its answer is Python (a function)."""
    from trafficlab.course.exercises import EXERCISES
    from trafficlab.grading.catalog import exercise

    if exercise_id in EXERCISES:  # course.score gives these precedence, so do we
        return _NOTEBOOK_FILES.get(exercise_id)
    return tuple(exercise(exercise_id).files)


def collect_answers(workdir: Path, names: Sequence[str], dest: Path) -> list[str]:
    """Copy the answer files ``names`` from the student's ``workdir`` to ``dest``, safely.

    A link, a special file, a file over 1 MiB or a missing one is left out with the reason.
    """
    from trafficlab.safe_files import UnsafeFileError, read_bytes

    dest.mkdir(parents=True, exist_ok=True)
    problems = []
    for name in names:
        if not os.path.lexists(workdir / name):
            problems.append(f"{name} was not written")
            continue
        try:
            data = read_bytes(name, workdir)
        except (UnsafeFileError, OSError) as exc:
            problems.append(f"{name} was not collected: {getattr(exc, 'message', exc)}")
            continue
        (dest / name).write_bytes(data)
    return problems


def grade_answers(directory: Path, exercise_ids: Sequence[str], home: Path,
                  functions: dict[str, Path] | None = None) -> dict[str, Any]:
    """Grade answer files with TrafficLab's own checks, hidden ones included (the trusted side).

    Returns ``{exercise: {"score", "max_score", "reason"}}``. Runs in the grading sandbox
    (``python -m trafficlab.course grade-answers``), each kind of exercise in a fresh lab.
    ``functions`` maps a Python answer's name (``decide``) to the socket it is served on.
    """
    from trafficlab.course.answer_server import RemoteFunction
    from trafficlab.course.exercises import EXERCISES, run_notebook_exercise
    from trafficlab.grading.runner import grade

    results: dict[str, Any] = {}
    files = [e for e in exercise_ids if e not in EXERCISES]
    if files:
        report = grade(directory, files, home=home / "files")
        for result in report.exercises:
            results[result.id] = _verdict(result)
    for exercise_id in (e for e in exercise_ids if e in EXERCISES):
        item = EXERCISES[exercise_id]
        answers: dict[str, Any] = {}
        name = _FUNCTIONS.get(exercise_id)
        if name is not None:
            if name not in (functions or {}):
                results[exercise_id] = {"score": 0.0, "max_score": item.points,
                                        "reason": f"{name} was not served to the grader"}
                continue
            answers[name] = RemoteFunction((functions or {})[name], name)
        lab = Lab(home / exercise_id, backend="local")
        try:
            lab.up()
            from trafficlab.course.labs import reset_lab

            reset_lab(lab, quiet=True)
            result = run_notebook_exercise(lab, exercise_id, answers, include_hidden=True,
                                           directory=directory)
            results[exercise_id] = _verdict(result)
        except Exception as exc:  # the grader's failure costs this exercise only
            results[exercise_id] = {"score": 0.0, "max_score": item.points,
                                    "reason": f"the grader could not run: {exc}"}
        finally:
            lab.down()
    return results


def _verdict(result: Any) -> dict[str, Any]:
    failed = [c.name for c in result.checks if not c.passed and not c.hidden]
    hidden = sum(1 for c in result.checks if not c.passed and c.hidden)
    parts = [result.error] if result.error else []
    if failed:
        parts.append("failed: " + ", ".join(failed))
    if hidden:
        parts.append(f"{hidden} hidden check(s) failed")
    return {"score": float(result.score), "max_score": float(result.max_score),
            "reason": "; ".join(parts)}


def answer_source(nb: NotebookNode) -> str:
    """The student's answer cells (nbgrader ``solution`` cells, magics left out) as one script."""
    parts = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution") and not cell.source.lstrip().startswith(
                ("%", "!")):
            parts.append(cell.source)
    return "\n\n".join(parts) + "\n"


def _start_functions(nb: NotebookNode, names: list[str], tmp: Path, course: Course,
                     limit: float) -> list[Running]:
    """One sandbox per Python answer, serving it on ``<rpc>/<name>.sock`` (no network, no lab)."""
    from trafficlab.course.sandbox import start

    host_home = tmp / "answer"
    host_home.mkdir()
    (host_home / "answer.py").write_text(answer_source(nb), encoding="utf-8")
    inside = SANDBOX_HOME if course.sandboxed else host_home
    rpc = RPC_DIR if course.sandboxed else tmp / "rpc"
    running = []
    for name in names:
        argv = [_python(), "-m", "trafficlab.course", "serve-answer", str(inside / "answer.py"),
                "--name", name, "--socket", str(rpc / f"{name}.sock")]
        running.append(start(argv, ro=[(course.bundle, course.root)],
                             rw=[(host_home, SANDBOX_HOME), (tmp / "rpc", RPC_DIR)],
                             home=str(inside), cwd=inside, sandbox=course.sandboxed,
                             limits=Limits(wall_seconds=limit, max_processes=16)))
    return running


def _wall_limit(nb: NotebookNode, timeout: int) -> float:
    cells = [c for c in nb.cells if c.cell_type == "code"]
    return float(min(3600, sum(cell_timeout(c, timeout) for c in cells) + 120))


def _python() -> str:
    return str(Path(sys.executable).parent / "python")


def _run_student(nb: NotebookNode, name: str, tmp: Path, course: Course,
                 timeout: int) -> tuple[NotebookNode | None, str | None, Path]:
    """Execute the notebook in the student sandbox; (executed notebook, error, its workdir)."""
    host_home = tmp / "student"
    (host_home / "work").mkdir(parents=True)
    inside = SANDBOX_HOME if course.sandboxed else host_home
    write_notebook(nb, host_home / "work" / name)
    argv = [_python(), "-m", "trafficlab.course", "execute", str(inside / "work" / name),
            "--workdir", str(inside / "work"), "--home", str(inside / "lab"),
            "--out", str(inside / "executed.ipynb"), "--timeout", str(timeout)]
    limits = Limits(wall_seconds=_wall_limit(nb, timeout))
    run = sandbox_run(argv, ro=[(course.bundle, course.root)], rw=[(host_home, SANDBOX_HOME)],
                      home=str(inside), env={"TRAFFICLAB_HOME": str(inside / "lab")},
                      cwd=inside / "work", limits=limits, sandbox=course.sandboxed)
    error = None
    if run.timed_out:
        error = f"the notebook ran past its limit of {limits.wall_seconds:g} s and was stopped"
    elif run.returncode != 0:
        error = f"the notebook's run exited with {run.returncode}: {run.stderr.strip()[-300:]}"
    executed = None
    try:
        from trafficlab.safe_files import read_text

        executed = nbformat.reads(read_text("executed.ipynb", host_home, limit=_EXECUTED_LIMIT),
                                  as_version=4)  # type: ignore[no-untyped-call]
    except Exception as exc:  # feedback only: its loss costs no point
        error = error or f"the executed notebook could not be read back: {exc}"
    return executed, error, host_home / "work"


def _run_grader(answers: Path, exercise_ids: list[str], tmp: Path, course: Course,
                functions: Sequence[str] = ()) -> tuple[dict[str, Any], str | None]:
    """Grade the collected answers in the grading sandbox; (verdicts, error)."""
    host_home = tmp / "grader"
    host_home.mkdir()
    inside = GRADER_HOME if course.sandboxed else host_home
    rpc = RPC_DIR if course.sandboxed else tmp / "rpc"
    where = inside / "answers" if course.sandboxed else answers
    argv = [_python(), "-m", "trafficlab.course", "grade-answers", str(where),
            "--home", str(inside / "labs"), *[a for e in exercise_ids for a in ("--exercise", e)],
            *[a for n in functions for a in ("--function", f"{n}={rpc / n}.sock")]]
    # The instructor's repository (graders/ with hidden checks) read-only, solutions/ hidden,
    # the answers read-only over the grader's writable home.
    ro = [(course.root, course.root)]
    tmpfs = [course.root / "solutions"] if (course.root / "solutions").is_dir() else []
    rw = [(host_home, GRADER_HOME)] + ([(tmp / "rpc", RPC_DIR)] if functions else [])
    run = sandbox_run(argv, ro=ro, rw=rw, tmpfs=tmpfs,
                      home=str(inside), cwd=inside, sandbox=course.sandboxed,
                      limits=Limits(wall_seconds=300.0 * max(1, len(exercise_ids)) + 120),
                      extra_ro=[(answers, GRADER_HOME / "answers")])
    if run.timed_out:
        return {}, "grading ran past its time limit and was stopped"
    try:
        verdicts: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
        return verdicts, None
    except (ValueError, IndexError):
        return {}, f"grading failed (exit {run.returncode}): {run.stderr.strip()[-300:]}"


def sandbox_run(argv: list[str], *, ro: list[tuple[Path, Path]], rw: list[tuple[Path, Path]],
                home: str, cwd: Path, limits: Limits, sandbox: bool,
                env: dict[str, str] | None = None, tmpfs: Sequence[Path] = (),
                extra_ro: Sequence[tuple[Path, Path]] = ()) -> SandboxResult:
    """:func:`trafficlab.course.sandbox.run`, with read-only binds that go over the writable ones."""
    from trafficlab.course.sandbox import run

    return run(argv, ro=ro, rw=rw, tmpfs=tmpfs, home=home, env=env, cwd=cwd, limits=limits,
               sandbox=sandbox, ro_after=extra_ro)


def grade_notebook(submitted: Path, source: Path, *, student: str, out: Path | None = None,
                   timeout: int = CELL_TIMEOUT, tmp_root: Path | None = None,
                   course: Course | None = None) -> NotebookGrade:
    """Restore, run in the student sandbox, collect the answers, grade them in the grading sandbox.

    ``course`` says where the bundle is (default: built now, for this notebook alone). The
    executed notebook goes to ``out`` (feedback). Everything happens in a new temporary folder
    (inside ``tmp_root`` when given), removed afterwards.
    """
    result = NotebookGrade(student, source.stem)
    src_nb = read_notebook(source)
    exercises = cell_exercises(src_nb)
    try:
        sub_nb = read_notebook(submitted)
    except Exception as exc:  # an unreadable file is the student's: it scores 0, grading goes on
        result.error = f"{submitted.name} is not a notebook nbformat can read: {exc}"
        result.cells = [CellGrade(str(_grade_id(c)), 0.0, float(c.metadata["nbgrader"]["points"]),
                                  "unreadable notebook") for c in grade_cells(src_nb)]
        return result
    nb, _deleted = restore_cells(sub_nb, src_nb)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="trafficlab-autograde-", dir=tmp_root) as tmp_name:
        tmp = Path(tmp_name)
        with contextlib.ExitStack() as stack:
            if course is None:
                course = _course(stack.enter_context(tempfile.TemporaryDirectory(
                    prefix="trafficlab-bundle-", dir=tmp_root)))
            executed, error, workdir = _run_student(nb, source.name, tmp, course, timeout)
            wanted = {e: answer_files(e) for e in dict.fromkeys(exercises.values())}
            names = [n for files in wanted.values() for n in files or ()]
            problems = collect_answers(workdir, names, tmp / "answers")
            served = [_FUNCTIONS[e] for e in wanted if e in _FUNCTIONS]
            if served:
                (tmp / "rpc").mkdir()
            limit = 300.0 * max(1, len(wanted)) + 120
            servers = _start_functions(nb, served, tmp, course, limit) if served else []
            try:
                verdicts, grading_error = _run_grader(tmp / "answers", list(wanted), tmp,
                                                      course, served)
            finally:
                for server in servers:
                    server.finish(0)
    result.seconds = time.monotonic() - started
    result.error = "; ".join(p for p in (error, grading_error, *problems) if p) or None
    for original in grade_cells(src_nb):
        gid = str(_grade_id(original))
        worth = float(original.metadata["nbgrader"]["points"])
        verdict = verdicts.get(exercises.get(gid, ""))
        if verdict is None:
            result.cells.append(CellGrade(gid, 0.0, worth, "not graded"))
            continue
        top = float(verdict["max_score"]) or 1.0
        points = round(min(worth, float(verdict["score"]) * worth / top), 6)
        result.cells.append(CellGrade(gid, points, worth, str(verdict.get("reason") or "")))
    if out is not None and executed is not None:
        write_notebook(executed, out)
    return result


def _course(tmp: str, *, sandboxed: bool = True) -> Course:
    """The student bundle built into ``tmp`` (with an empty ``.venv`` to bind the venv over)."""
    from trafficlab.course.bundle import build_bundle

    bundle = Path(tmp) / "student"
    build_bundle(bundle)
    root = repo_root()
    venv = Path(sys.prefix)
    if root in venv.parents:  # the venv lives in the repository: give it a mount point
        (bundle / venv.relative_to(root)).mkdir(parents=True, exist_ok=True)
    return Course(bundle, root, sandboxed)


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


def check_sandbox(sandbox: bool) -> None:
    """Refuse to run student code where bubblewrap cannot run, unless ``sandbox`` is False."""
    from trafficlab.course.sandbox import probe

    if not sandbox:
        return
    problem = probe()
    if problem:
        raise SandboxUnavailable(
            f"bubblewrap cannot run here ({problem}), so student notebooks would run unsandboxed: "
            "install bubblewrap, or pass --no-sandbox to accept that each notebook runs as you, "
            "can read solutions/ and the hidden checks in graders/, reach other labs' ports, "
            "write wherever you can and leave processes behind (scores are still computed "
            "outside it)")


def autograde(folder: Path, *, out: Path | None = None, autograded: Path | None = None,
              jobs: int = 2, timeout: int = CELL_TIMEOUT, source_dir: Path | None = None,
              tmp_root: Path | None = None, sandbox: bool = True,
              gradebook: Path | None = None,
              on_done: Callable[[NotebookGrade], None] | None = None) -> list[NotebookGrade]:
    """Grade every submitted notebook under ``folder``; write the CSV to ``out``.

    Executed notebooks go to ``autograded/<student>/<notebook>.ipynb`` (default: an
    ``autograded`` folder beside the CSV, or inside ``folder`` without one). The student
    bundle is built once for the run (in ``tmp_root``, like each notebook's temporary folder).
    Raises :class:`SandboxUnavailable` when bubblewrap cannot run and ``sandbox`` is True.
    """
    check_sandbox(sandbox)
    sources = {p.name: p for p in source_notebooks(source_dir)}
    todo = find_submissions(folder, sources)
    keep = autograded or ((out.parent if out else folder) / "autograded")
    with tempfile.TemporaryDirectory(prefix="trafficlab-bundle-", dir=tmp_root) as tmp:
        course = _course(tmp, sandboxed=sandbox)

        def one(item: tuple[str, Path]) -> NotebookGrade:
            student, path = item
            try:
                grade = grade_notebook(path, sources[path.name], student=student,
                                       out=keep / student / path.name, timeout=timeout,
                                       tmp_root=tmp_root, course=course)
            except Exception as exc:  # one notebook's failure costs no other row
                grade = _failed(student, sources[path.name], f"grading failed: {exc}")
            if on_done:
                on_done(grade)
            return grade

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            grades = list(pool.map(one, todo))
    grades.sort(key=lambda g: (g.student, g.notebook))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(grades_csv(grades, source_dir), encoding="utf-8")
    book = gradebook or folder.parent / "gradebook.db"
    if book.is_file():
        write_gradebook(book, grades)
    return grades


def _failed(student: str, source: Path, reason: str) -> NotebookGrade:
    failed = NotebookGrade(student, source.stem, error=reason)
    failed.cells = [CellGrade(str(_grade_id(c)), 0.0, float(c.metadata["nbgrader"]["points"]),
                              "grading failed") for c in grade_cells(read_notebook(source))]
    return failed


def write_gradebook(path: Path, grades: Sequence[NotebookGrade]) -> list[str]:
    """Each test cell's points as its ``auto_score`` in an nbgrader gradebook, through its API.

    Only submissions the gradebook knows (``nbgrader collect``/``autograde`` made them) are
    updated; the others are returned as ``student/notebook`` so the caller can say so.
    """
    from nbgrader.api import Gradebook, MissingEntry

    skipped = []
    with Gradebook(f"sqlite:///{path}") as book:
        for grade in grades:
            for cell in grade.cells:
                try:
                    for assignment in book.assignments:
                        entry = book.find_grade(cell.grade_id, grade.notebook, assignment.name,
                                                grade.student)
                        entry.auto_score = cell.points
                        break
                    else:
                        raise MissingEntry()
                except MissingEntry:
                    skipped.append(f"{grade.student}/{grade.notebook}")
                    break
        book.db.commit()
    return skipped


def grades_csv(grades: Sequence[NotebookGrade], source_dir: Path | None = None) -> str:
    """One row per student and notebook: score, max, each test cell's points, seconds, reason."""
    cell_ids: list[str] = []
    for path in source_notebooks(source_dir):
        for cell in grade_cells(read_notebook(path)):
            gid = str(_grade_id(cell))
            if gid not in cell_ids:
                cell_ids.append(gid)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(c) for c in ("student", "notebook", "score", "max_score",
                                            *cell_ids, "seconds", "reason")])
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
