"""The sandbox's cost: a class graded with and without bubblewrap, two at a time.

    python benchmarks/bench_batch.py [--students 20] [--exercise canary] [--notebooks 2] [--json]

Part 1 (grading): ``--students`` answer folders, copied from ``solutions/exercises`` (every
fifth one wrong: v2's weight doubled), graded by autograde's trusted grading step (the
instructor's checks, hidden ones included, each student in a fresh lab: what ``trafficlab
grade`` does) twice, inside the grading sandbox and without it, ``--jobs 2``.
Part 2 (notebooks): ``--notebooks`` copies of the rollback solution notebook through the
whole ``autograde`` (student sandbox, answer collection, grading sandbox), with and without
the sandbox. Prints wall times, the per-student overhead of the sandbox, and one JSON line.
Run it once: it keeps both cores busy for several minutes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from trafficlab.course.autograde import Course, _course, _run_grader, autograde
from trafficlab.course.release import repo_root
from trafficlab.course.sandbox import probe
from trafficlab.grading.catalog import exercise

ROOT = repo_root()


def _class(folder: Path, students: int, exercise_id: str) -> list[Path]:
    """Answer folders: the reference files, every fifth student's weights off."""
    made = []
    for index in range(students):
        student = folder / f"student-{index:02d}" / "answers"
        student.mkdir(parents=True)
        for name in exercise(exercise_id).files:
            text = (ROOT / "solutions" / "exercises" / name).read_text()
            if index % 5 == 4:
                text = text.replace("weight: 10", "weight: 20").replace("weight: 90", "weight: 80")
            (student / name).write_text(text)
        made.append(student)
    return made


def _grade_class(answers: list[Path], exercise_id: str, course: Course, jobs: int,
                 work: Path) -> tuple[float, list[float], list[float]]:
    """Wall time of the batch, each student's seconds and score."""
    def one(folder: Path) -> tuple[float, float]:
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix="bench-", dir=work))
        try:
            verdicts, error = _run_grader(folder, [exercise_id], tmp, course)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        score = float(verdicts.get(exercise_id, {}).get("score", -1.0)) if not error else -1.0
        return time.monotonic() - started, score

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, answers))
    return time.monotonic() - started, [r[0] for r in results], [r[1] for r in results]


def _notebooks(folder: Path, count: int, sandbox: bool, jobs: int) -> tuple[float, list[float]]:
    submissions = folder / ("sandboxed" if sandbox else "unsandboxed")
    for index in range(count):
        (submissions / f"student-{index:02d}").mkdir(parents=True)
        shutil.copy(ROOT / "solutions" / "notebooks" / "02-rollback.ipynb",
                    submissions / f"student-{index:02d}" / "02-rollback.ipynb")
    work = folder / "work"
    work.mkdir(exist_ok=True)
    started = time.monotonic()
    grades = autograde(submissions, out=folder / f"grades-{sandbox}.csv", jobs=jobs,
                       tmp_root=work, sandbox=sandbox)
    return time.monotonic() - started, [g.score for g in grades]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--exercise", default="canary")
    parser.add_argument("--notebooks", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    args = parser.parse_args()
    problem = probe()
    if problem:
        print(f"bubblewrap cannot run here: {problem}", file=sys.stderr)
        return 1
    figures: dict[str, Any] = {"students": args.students, "exercise": args.exercise,
                               "jobs": args.jobs}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        base = Path(tmp)
        answers = _class(base / "class", args.students, args.exercise)
        course = _course(str(base / "bundle"))
        (base / "work").mkdir()
        for label, sandboxed in (("sandbox", True), ("no_sandbox", False)):
            course.sandboxed = sandboxed
            wall, seconds, scores = _grade_class(answers, args.exercise, course, args.jobs,
                                                 base / "work")
            figures[label] = {"wall_s": round(wall, 1),
                              "per_student_median_s": round(statistics.median(seconds), 2),
                              "scores": scores}
        figures["overhead_per_student_s"] = round(
            (figures["sandbox"]["wall_s"] - figures["no_sandbox"]["wall_s"]) * args.jobs
            / args.students, 2)
        if args.notebooks:
            for label, sandboxed in (("notebooks_sandbox", True), ("notebooks_no_sandbox", False)):
                wall, scores = _notebooks(base / "nb", args.notebooks, sandboxed, args.jobs)
                figures[label] = {"wall_s": round(wall, 1), "scores": scores}
            figures["notebook_overhead_s"] = round(
                (figures["notebooks_sandbox"]["wall_s"] - figures["notebooks_no_sandbox"]["wall_s"])
                * args.jobs / args.notebooks, 2)
    if not args.json:
        print(f"{args.students} students, {args.exercise}, --jobs {args.jobs}")
        for label in ("sandbox", "no_sandbox"):
            row = figures[label]
            print(f"  {label:<11} wall {row['wall_s']:7.1f} s, median per student "
                  f"{row['per_student_median_s']:6.2f} s")
        print(f"  sandbox overhead per student: {figures['overhead_per_student_s']:+.2f} s")
        if args.notebooks:
            for label in ("notebooks_sandbox", "notebooks_no_sandbox"):
                print(f"  {label:<21} wall {figures[label]['wall_s']:7.1f} s "
                      f"({args.notebooks} notebooks)")
            print(f"  sandbox overhead per notebook: {figures['notebook_overhead_s']:+.2f} s")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
