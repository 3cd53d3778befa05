"""Wall time of a full grade of one submission (budget: 30 s on the 2-core machine).

    python benchmarks/bench_grade.py [SUBMISSION_DIR] [--rounds 1]

Grades the reference solutions by default, exactly as `trafficlab grade` does: a fresh
isolated lab, every exercise, the lab stopped afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from trafficlab.grading.runner import grade

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("submission", nargs="?", default=str(ROOT / "solutions" / "exercises"))
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    times = []
    per_exercise: dict[str, float] = {}
    for _ in range(args.rounds):
        marks: list[tuple[str, float]] = []

        def mark(ex: str, marks: list[tuple[str, float]] = marks) -> None:
            marks.append((ex, time.perf_counter()))

        started = time.perf_counter()
        report = grade(Path(args.submission).resolve(), progress=mark)
        ended = time.perf_counter()
        times.append(ended - started)
        for (ex, t0), (_, t1) in zip(marks, [*marks[1:], ("end", ended)], strict=False):
            per_exercise[ex] = round(t1 - t0, 2)
        print(f"score {report.score:g}/{report.max_score:g} in {ended - started:.1f} s", file=sys.stderr)
    print(f"{'exercise':16} {'seconds':>8}")
    for ex, seconds in per_exercise.items():
        print(f"{ex:16} {seconds:>8.2f}")
    print(f"{'full grade':16} {min(times):>8.2f}   (budget 30 s)")
    print(json.dumps({"full_grade_s": round(min(times), 2), "per_exercise_s": per_exercise}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
