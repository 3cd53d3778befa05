"""Running exercises: one submission in an isolated lab, a whole class in parallel, or self-checks."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from trafficlab._errors import TrafficLabError
from trafficlab.grading.catalog import Exercise, catalog, exercise, load_module
from trafficlab.grading.checks import assign_points, checks_of, run_checks
from trafficlab.grading.context import GradingContext
from trafficlab.grading.report import CheckResult, ExerciseResult, GradeReport, gradebook_csv
from trafficlab.lab import Lab

__all__ = ["grade", "grade_batch", "run_exercise", "self_check"]


def run_exercise(lab: Lab, submission: Path, item: Exercise, *,
                 include_hidden: bool = True) -> ExerciseResult:
    """Set up, apply the student's files and run every check of one exercise."""
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
    except TrafficLabError as exc:
        result.error = f"the exercise's setup failed: {exc.message}"
        return result
    result.checks = run_checks(specs, by_name, ctx)
    return result


def _selected(exercise_ids: Sequence[str] | None) -> list[Exercise]:
    return [exercise(i) for i in exercise_ids] if exercise_ids else list(catalog())


def grade(submission: Path, exercise_ids: Sequence[str] | None = None, *,
          home: Path | None = None, progress: Callable[[str], None] | None = None) -> GradeReport:
    """Grade one submission in a fresh, isolated local lab that is stopped afterwards."""
    started = time.monotonic()
    items = _selected(exercise_ids)
    with tempfile.TemporaryDirectory(prefix="trafficlab-grade-") as tmp:
        lab = Lab(home or Path(tmp) / "lab", backend="local")
        report = GradeReport(student=submission.name)
        try:
            lab.up()
            for item in items:
                if progress:
                    progress(item.id)
                report.exercises.append(run_exercise(lab, submission, item))
                _reset(lab)
        finally:
            lab.down()
    report.seconds = time.monotonic() - started
    return report


def _reset(lab: Lab) -> None:
    """Back to the baseline between exercises, so each starts from the same lab: the
    baseline applied again, and every route, Deployment and Service it does not have deleted."""
    from trafficlab.manifests import baseline_dir, load_manifests

    baseline = load_manifests(baseline_dir())
    keep = {(o["kind"], o["metadata"]["name"]) for o in baseline}
    extra = [(kind, "default", obj["metadata"]["name"])
             for kind in ("HTTPRoute", "Deployment", "Service")
             for obj in lab.get(kind, namespace="default")
             if (kind, obj["metadata"]["name"]) not in keep]
    if extra:
        lab.backend.delete(extra, ignore_not_found=True)
    lab.apply(baseline)


def self_check(lab: Lab, exercise_id: str, directory: Path) -> ExerciseResult:
    """The public checks of one exercise against the student's own running lab."""
    return run_exercise(lab, directory, exercise(exercise_id), include_hidden=False).visible()


def grade_batch(folder: Path, *, jobs: int = 2, out: Path | None = None,
                exercise_ids: Sequence[str] | None = None,
                on_done: Callable[[str, GradeReport], None] | None = None) -> list[GradeReport]:
    """Grade every student subfolder, each in its own lab and process; write CSV and JSON."""
    students = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    reports: list[GradeReport] = []
    reports_dir = (out.parent if out else folder) / "reports"
    reports_dir.mkdir(parents=True, exist_ok=True)

    def one(student: Path) -> GradeReport:
        cmd = [sys.executable, "-m", "trafficlab.cli", "grade", str(student), "-o", "json"]
        for item in exercise_ids or []:
            cmd += ["--exercise", item]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            failed = GradeReport(student=student.name)
            failed.exercises = [ExerciseResult(e.id, e.title, max_score=e.points,
                                               error=proc.stderr.strip()[-500:] or "grading failed")
                                for e in _selected(exercise_ids)]
            return failed
        return report_from_dict(json.loads(proc.stdout), student.name)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, s): s for s in students}
        for future in as_completed(futures):
            report = future.result()
            reports.append(report)
            (reports_dir / f"{report.student}.json").write_text(json.dumps(report.to_dict(), indent=2))
            if on_done:
                on_done(str(report.student), report)
    reports.sort(key=lambda r: str(r.student))
    if out is not None:
        ids = [e.id for e in _selected(exercise_ids)]
        out.write_text(gradebook_csv(reports, ids))
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
