"""``python -m trafficlab.course``: release the student notebooks and bundle, autograde submissions.

    python -m trafficlab.course release [--check] [--out release/student]
    python -m trafficlab.course autograde SUBMISSIONS [--out grades.csv] [--jobs 2] [--timeout 120]
    python -m trafficlab.course run NOTEBOOK [--out EXECUTED.ipynb]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from trafficlab.course.execute import CELL_TIMEOUT


def _release(args: argparse.Namespace) -> int:
    from trafficlab._errors import TrafficLabError
    from trafficlab.course.bundle import BUNDLE_DIR, build_bundle
    from trafficlab.course.release import RELEASE_DIR, check_release, release, repo_root

    if args.check:
        problems = check_release()
        for problem in problems:
            print(f"error: {problem}; run 'make release'", file=sys.stderr)
        return 1 if problems else 0
    for path in release():
        print(f"{RELEASE_DIR / path.name} written")
    out = Path(args.out) if args.out else repo_root() / BUNDLE_DIR
    try:
        bundle = build_bundle(out)
    except TrafficLabError as exc:  # where it goes, a symlink, a check that cannot be cut
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    cut = sum(len(names) for names in bundle.hidden_checks.values())
    print(f"{out}: the student bundle, {len(bundle.files)} files; {cut} hidden checks left out of "
          f"{len(bundle.hidden_checks)} files, no solutions/, tests/ or benchmarks/")
    return 0


def _autograde(args: argparse.Namespace) -> int:
    from trafficlab.course.autograde import NotebookGrade, autograde

    folder = Path(args.submissions)
    if not folder.is_dir():
        print(f"error: {folder} is not a folder of submissions", file=sys.stderr)
        return 1

    def done(grade: NotebookGrade) -> None:
        tail = f" ({grade.error})" if grade.error else ""
        print(f"{grade.student}/{grade.notebook}: {grade.score:g}/{grade.max_score:g} points "
              f"in {grade.seconds:.1f} s{tail}", file=sys.stderr, flush=True)

    out = Path(args.out)
    grades = autograde(folder, out=out, autograded=Path(args.autograded) if args.autograded else None,
                       jobs=args.jobs, timeout=args.timeout, on_done=done)
    if not grades:
        print(f"error: no course notebook found under {folder}", file=sys.stderr)
        return 1
    print(f"{len(grades)} notebooks graded; grades in {out}")
    return 0


def _grade_notebook(args: argparse.Namespace) -> int:
    from trafficlab.course.autograde import grade_notebook

    grade = grade_notebook(Path(args.notebook), Path(args.source), student=args.student,
                           out=Path(args.out) if args.out else None, timeout=args.timeout,
                           tmp_root=Path(args.tmp_root) if args.tmp_root else None)
    print(json.dumps(grade.to_dict()))
    return 0


def _run(args: argparse.Namespace) -> int:
    from trafficlab.course.execute import execute_notebook
    from trafficlab.course.release import read_notebook, write_notebook

    path = Path(args.notebook)
    nb = read_notebook(path)
    with tempfile.TemporaryDirectory(prefix="trafficlab-run-") as tmp:
        run = execute_notebook(nb, Path(tmp) / "work", home=Path(tmp) / "lab", timeout=args.timeout)
    if args.out:
        write_notebook(run.notebook, Path(args.out))
    print(f"{path.name}: {run.seconds:.1f} s, {len(run.error_cells)} cells with errors, "
          f"{len(run.stderr_cells)} with stderr output" + (f"; {run.error}" if run.error else ""))
    return 1 if run.error or run.error_cells else 0


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point of ``python -m trafficlab.course``."""
    parser = argparse.ArgumentParser(prog="python -m trafficlab.course",
                                     description="Release and autograde the TrafficLab notebooks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("release", help="write notebooks/ from solutions/notebooks/ (nbgrader), then "
                       "the student bundle release/student/ (no answers, no hidden checks)")
    p.add_argument("--check", action="store_true", help="only check that notebooks/ is up to date")
    p.add_argument("--out", default=None,
                   help="where the bundle goes (default release/student; rebuilt from scratch)")
    p.set_defaults(func=_release)
    p = sub.add_parser("autograde", help="grade a folder of submitted notebooks, each in its own lab")
    p.add_argument("submissions", help="SUBMISSIONS/<student>/.../<notebook>.ipynb")
    p.add_argument("--out", default="grades.csv", help="the CSV to write (default grades.csv)")
    p.add_argument("--autograded", default=None,
                   help="where executed notebooks go (default: autograded/ beside the CSV)")
    p.add_argument("--jobs", type=int, default=2, help="notebooks graded at once (default 2)")
    p.add_argument("--timeout", type=int, default=CELL_TIMEOUT,
                   help=f"seconds per cell without its own timeout (default {CELL_TIMEOUT})")
    p.set_defaults(func=_autograde)
    p = sub.add_parser("grade-notebook", help="(internal) grade one notebook, print JSON")
    p.add_argument("notebook")
    p.add_argument("--source", required=True)
    p.add_argument("--student", required=True)
    p.add_argument("--out", default=None)
    p.add_argument("--timeout", type=int, default=CELL_TIMEOUT)
    p.add_argument("--tmp-root", default=None)
    p.set_defaults(func=_grade_notebook)
    p = sub.add_parser("run", help="execute one notebook top to bottom in a fresh lab")
    p.add_argument("notebook")
    p.add_argument("--out", default=None, help="save the executed notebook here")
    p.add_argument("--timeout", type=int, default=CELL_TIMEOUT)
    p.set_defaults(func=_run)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
