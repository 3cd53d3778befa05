"""Wall time of each notebook executed top to bottom, and of autograding ten submissions.

    python benchmarks/bench_notebooks.py [--skip-notebooks] [--skip-autograde] [--jobs 2]

1. Each instructor notebook (``solutions/notebooks/``) runs alone, one after another, on its
   own fresh local lab, as in CI: the figure is its wall time, kernel start to lab stopped.
2. ``autograde`` (``make autograde``) grades a folder of ten submissions of notebook 1 (the
   canary) with ``--jobs`` at a time: four solved, three unanswered, three with the classic
   100:10 weights (9.1%, not 10%). Each runs in its own process and lab.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from trafficlab.course.autograde import autograde
from trafficlab.course.execute import execute_notebook
from trafficlab.course.release import read_notebook, repo_root, source_notebooks, write_notebook

ROOT = repo_root()
NOTEBOOK = "01-canary.ipynb"


def bench_notebooks() -> dict[str, float]:
    """Seconds per instructor notebook, each on its own fresh lab."""
    times: dict[str, float] = {}
    for path in source_notebooks():
        with tempfile.TemporaryDirectory(prefix="bench-notebook-") as tmp:
            started = time.perf_counter()
            run = execute_notebook(read_notebook(path), Path(tmp) / "work", home=Path(tmp) / "lab")
            times[path.stem] = round(time.perf_counter() - started, 2)
        problems = f"; {len(run.error_cells)} cells with errors" if run.error_cells else ""
        print(f"{path.stem:28} {times[path.stem]:7.1f} s{problems}", file=sys.stderr, flush=True)
    return times


def _submissions(folder: Path) -> None:
    solved = read_notebook(ROOT / "solutions" / "notebooks" / NOTEBOOK)
    wrong = read_notebook(ROOT / "solutions" / "notebooks" / NOTEBOOK)
    for cell in wrong.cells:  # the classic slip: v1 "100%", v2 "10%"
        if cell.source.startswith("%%writefile canary.yaml"):
            cell.source = cell.source.replace("weight: 90", "weight: 100")
    kinds = ["solved"] * 4 + ["unanswered"] * 3 + ["100-10"] * 3
    for index, kind in enumerate(kinds, start=1):
        target = folder / f"student-{index:02d}" / NOTEBOOK
        target.parent.mkdir(parents=True)
        if kind == "unanswered":
            shutil.copy(ROOT / "notebooks" / NOTEBOOK, target)
        else:
            write_notebook(solved if kind == "solved" else wrong, target)


def bench_autograde(jobs: int) -> dict[str, object]:
    """Wall time of autograde on ten submissions, and each one's score and seconds."""
    with tempfile.TemporaryDirectory(prefix="bench-autograde-") as tmp:
        folder = Path(tmp) / "submitted"
        _submissions(folder)
        started = time.perf_counter()
        grades = autograde(folder, out=Path(tmp) / "grades.csv", jobs=jobs)
        wall = round(time.perf_counter() - started, 2)
    scores = {g.student: f"{g.score:g}/{g.max_score:g}" for g in grades}
    seconds = [g.seconds for g in grades]
    print(f"autograde, 10 submissions of {NOTEBOOK}, {jobs} at a time: {wall:.1f} s "
          f"(each {min(seconds):.1f}-{max(seconds):.1f} s)", file=sys.stderr)
    return {"autograde_10_s": wall, "jobs": jobs, "scores": scores,
            "per_submission_s": [round(s, 1) for s in seconds]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--skip-autograde", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    out: dict[str, object] = {}
    if not args.skip_notebooks:
        times = bench_notebooks()
        out["notebook_s"] = times
        out["notebooks_total_s"] = round(sum(times.values()), 2)
    if not args.skip_autograde:
        out.update(bench_autograde(args.jobs))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
