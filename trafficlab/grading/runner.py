"""Running exercises: one submission in an isolated lab, a whole class in parallel, or self-checks."""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from trafficlab._errors import TrafficLabError
from trafficlab.baseline import reset_to_baseline
from trafficlab.grading.catalog import Exercise, catalog, exercise, load_module
from trafficlab.grading.checks import (
    CheckFailure,
    assign_points,
    checks_of,
    crash_message,
    run_checks,
)
from trafficlab.grading.context import GradingContext
from trafficlab.grading.limits import (
    EXERCISE_TIMEOUT,
    STUDENT_TIMEOUT,
    end_lab,
    end_recorded_labs,
    record_daemon,
    run_in_session,
)
from trafficlab.grading.report import CheckResult, ExerciseResult, GradeReport, gradebook_csv
from trafficlab.labapi import LabAPI, open_lab

__all__ = ["grade", "grade_batch", "run_exercise", "self_check"]

# Beyond the student's limit, for starting Python and stopping the last lab.
_MARGIN = 60.0


def run_exercise(lab: LabAPI, submission: Path, item: Exercise, *,
                 include_hidden: bool = True) -> ExerciseResult:
    """Set up, apply the student's files and run every check of one exercise.

    A setup that fails (a lab error, a failed gate, a crash) is the exercise's error; a check
    that fails or crashes fails that check only.
    """
    module = load_module(item)
    specs = [s for s in checks_of(module) if include_hidden or not s.hidden]
    points = assign_points(checks_of(module), item.points)
    by_name = {s.name: p for s, p in zip(checks_of(module), points, strict=False)}
    result = ExerciseResult(item.id, item.title, max_score=sum(by_name[s.name] for s in specs))
    ctx = GradingContext(lab, submission, item.id, include_hidden=include_hidden)
    setup = getattr(module, "setup", None)
    try:
        if setup is not None:
            setup(ctx)
    except CheckFailure as failure:
        result.error = f"the exercise's setup failed: {failure.message}"
        return result
    except TrafficLabError as exc:
        result.error = f"the exercise's setup failed: {exc.message}"
        return result
    except Exception as exc:  # the other exercises still get their verdict
        result.error = f"the exercise's setup failed: {crash_message(exc)}"
        return result
    result.checks = run_checks(specs, by_name, ctx)
    result.notices = list(ctx.notices)
    return result


def _selected(exercise_ids: Sequence[str] | None) -> list[Exercise]:
    return [exercise(i) for i in exercise_ids] if exercise_ids else list(catalog())


def _failed(item: Exercise, reason: str) -> ExerciseResult:
    return ExerciseResult(item.id, item.title, max_score=item.points, error=reason)


class _Labs:
    """The lab a submission is graded in; a killed lab is replaced by a fresh one in a new home,
    so a check still running against the old one (after a timeout) only meets errors."""

    def __init__(self, first_home: Path, work_dir: Path | None) -> None:
        self._first = first_home
        self._work_dir = work_dir
        self._count = 0
        self._homes: list[Path] = []
        self._lock = threading.Lock()
        self.current: LabAPI | None = None

    def get(self) -> LabAPI:
        with self._lock:
            if self.current is not None:
                return self.current
            home = self._first if self._count == 0 else self._first.with_name(
                f"{self._first.name}-{self._count}")
            self._count += 1
            lab = open_lab(home, backend="local")
            self._homes.append(lab.home)
            self.current = lab
        try:
            lab.up()
        finally:
            record_daemon(self._work_dir, lab.home)
        if self.current is not lab:  # killed while it started: a timeout ran out meanwhile
            end_lab(lab.home)
            raise TrafficLabError("the lab was stopped while it started")
        return lab

    def kill(self) -> None:
        """End the current lab at once (its daemon's process group), then tidy its home."""
        with self._lock:
            lab, self.current = self.current, None
        if lab is not None:
            end_lab(lab.home)
            with contextlib.suppress(Exception):
                lab.down()

    def reset(self) -> None:
        lab = self.current
        if lab is None:
            return
        try:
            reset_to_baseline(lab)
        except Exception:  # a lab that cannot be reset is replaced
            self.kill()

    def close(self) -> None:
        with self._lock:
            lab, self.current = self.current, None
        try:
            if lab is not None:
                lab.down()
        finally:
            for home in self._homes:
                end_lab(home)


def _timed_exercise(labs: _Labs, submission: Path, item: Exercise, limit: float,
                    why: str) -> ExerciseResult:
    """One exercise with a wall-clock limit; on expiry its lab is killed and it gets ``why``.

    The lab is started before the clock runs (its start has its own limit).
    """
    try:
        lab = labs.get()
    except Exception as exc:
        labs.kill()
        reason = exc.message if isinstance(exc, TrafficLabError) else crash_message(exc)
        return _failed(item, f"the lab could not start: {reason}")
    box: dict[str, ExerciseResult] = {}

    def work() -> None:
        try:
            box["result"] = run_exercise(lab, submission, item)
        except Exception as exc:  # never the run, never another exercise
            box["result"] = _failed(item, crash_message(exc))

    thread = threading.Thread(target=work, name=f"grade-{item.id}", daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive() or "result" not in box:
        labs.kill()
        # The check meets a dead lab and ends; if it does not, it is a daemon thread whose
        # lab is gone, and the next exercise runs in a new home.
        thread.join(5.0)
        return _failed(item, why)
    return box["result"]


def grade(submission: Path, exercise_ids: Sequence[str] | None = None, *,
          home: Path | None = None, progress: Callable[[str], None] | None = None,
          timeout_exercise: float = EXERCISE_TIMEOUT, timeout_student: float = STUDENT_TIMEOUT,
          work_dir: Path | None = None) -> GradeReport:
    """Grade one submission in a fresh, isolated local lab that is stopped afterwards.

    Every exercise gets a verdict: a check that crashes fails alone, an exercise that runs
    past ``timeout_exercise`` seconds has its lab killed and is failed with the reason, and
    once ``timeout_student`` seconds are spent the remaining exercises are failed unrun.
    ``work_dir`` (the batch runner's) is where the lab homes go and their daemons are noted.
    """
    started = time.monotonic()
    deadline = started + timeout_student
    items = _selected(exercise_ids)
    report = GradeReport(student=submission.name)
    with tempfile.TemporaryDirectory(prefix="trafficlab-grade-", dir=work_dir) as tmp:
        labs = _Labs(Path(home) if home else Path(tmp) / "lab", work_dir)
        try:
            for item in items:
                left = deadline - time.monotonic()
                if left <= 0:
                    report.exercises.append(_failed(
                        item, f"not graded: the time limit of {timeout_student:g} s for the "
                        "whole submission ran out"))
                    continue
                if progress:
                    progress(item.id)
                if timeout_exercise <= left:
                    why = (f"timed out: the exercise ran past its limit of {timeout_exercise:g} s, "
                           "so its lab was stopped")
                else:
                    why = (f"timed out: the time limit of {timeout_student:g} s for the whole "
                           "submission ran out during this exercise, so its lab was stopped")
                result = _timed_exercise(labs, submission, item, min(timeout_exercise, left), why)
                report.exercises.append(result)
                labs.reset()
        finally:
            labs.close()
    report.seconds = time.monotonic() - started
    return report


def self_check(lab: LabAPI, exercise_id: str, directory: Path) -> ExerciseResult:
    """The public checks of one exercise against the student's own running lab."""
    return run_exercise(lab, directory, exercise(exercise_id), include_hidden=False).visible()


def grade_batch(folder: Path, *, jobs: int = 2, out: Path | None = None,
                exercise_ids: Sequence[str] | None = None,
                on_done: Callable[[str, GradeReport], None] | None = None,
                timeout_exercise: float = EXERCISE_TIMEOUT,
                timeout_student: float = STUDENT_TIMEOUT,
                work_root: Path | None = None) -> list[GradeReport]:
    """Grade every student subfolder, each in its own lab and process; write CSV and JSON.

    Each student's grading runs in its own session: past ``timeout_student`` (plus a margin
    for starting and stopping) its whole process group and every lab it started are ended.
    Whatever happens, each student gets a row. ``work_root`` keeps the per-student work
    folders (lab homes and the noted daemon pids) instead of a temporary folder.
    """
    students = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    reports: list[GradeReport] = []
    reports_dir = (out.parent if out else folder) / "reports"
    reports_dir.mkdir(parents=True, exist_ok=True)
    items = _selected(exercise_ids)

    def one(student: Path, root: Path) -> GradeReport:
        work = Path(tempfile.mkdtemp(prefix="student-", dir=root))
        cmd = [sys.executable, "-m", "trafficlab.cli", "grade", str(student), "-o", "json",
               "--timeout-exercise", f"{timeout_exercise:g}",
               "--timeout-student", f"{timeout_student:g}", "--work-dir", str(work)]
        for item in exercise_ids or []:
            cmd += ["--exercise", item]
        try:
            code, stdout, stderr = run_in_session(cmd, timeout_student + _MARGIN)
            if code is None:
                reason = (f"grading did not finish within {timeout_student + _MARGIN:g} s; "
                          "it and its labs were stopped")
            elif code == 0:
                return report_from_dict(json.loads(stdout), student.name)
            else:
                reason = stderr.strip()[-500:] or f"grading exited with {code}"
        except Exception as exc:  # every student gets a row
            reason = crash_message(exc).replace("this check", "this submission")
        finally:
            end_recorded_labs(work)
        failed = GradeReport(student=student.name)
        failed.exercises = [_failed(e, reason) for e in items]
        return failed

    with contextlib.ExitStack() as stack:
        root = work_root or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="trafficlab-batch-")))
        root.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(one, s, root): s for s in students}
            for future in as_completed(futures):
                report = future.result()
                reports.append(report)
                (reports_dir / f"{report.student}.json").write_text(
                    json.dumps(report.to_dict(), indent=2))
                if on_done:
                    on_done(str(report.student), report)
    reports.sort(key=lambda r: str(r.student))
    if out is not None:
        out.write_text(gradebook_csv(reports, [e.id for e in items]))
    return reports


def report_from_dict(data: dict[str, Any], student: str | None = None) -> GradeReport:
    report = GradeReport(student=student)
    for raw in data.get("exercises", []):
        result = ExerciseResult(str(raw["id"]), str(raw.get("title", raw["id"])),
                                max_score=float(raw["max_score"]), error=raw.get("error"))
        result.checks = [CheckResult(c["name"], c["passed"], c["points"], c.get("max_points", 0.0),
                                     c["message"], c.get("hint", ""), c.get("hidden", False))
                         for c in raw["checks"]]
        report.exercises.append(result)
    report.seconds = float(data.get("seconds", 0.0))
    return report
