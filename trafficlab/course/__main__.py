"""``python -m trafficlab.course``: release the student notebooks and bundle, autograde submissions.

    python -m trafficlab.course release [--check] [--out release/student]
    python -m trafficlab.course autograde SUBMISSIONS [--out grades.csv] [--jobs 2] [--timeout 120]
                                          [--no-sandbox] [--gradebook gradebook.db]
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
    from trafficlab.course.autograde import NotebookGrade, SandboxUnavailable, autograde

    folder = Path(args.submissions)
    if not folder.is_dir():
        print(f"error: {folder} is not a folder of submissions", file=sys.stderr)
        return 1

    def done(grade: NotebookGrade) -> None:
        tail = f" ({grade.error})" if grade.error else ""
        print(f"{grade.student}/{grade.notebook}: {grade.score:g}/{grade.max_score:g} points "
              f"in {grade.seconds:.1f} s{tail}", file=sys.stderr, flush=True)

    out = Path(args.out)
    if args.no_sandbox:
        print("warning: --no-sandbox: each notebook runs as you, on this host: it can read "
              "solutions/ and the hidden checks, reach other labs and leave processes behind",
              file=sys.stderr)
    try:
        grades = autograde(folder, out=out,
                           autograded=Path(args.autograded) if args.autograded else None,
                           jobs=args.jobs, timeout=args.timeout, on_done=done,
                           sandbox=not args.no_sandbox,
                           gradebook=Path(args.gradebook) if args.gradebook else None)
    except SandboxUnavailable as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    if not grades:
        print(f"error: no course notebook found under {folder}", file=sys.stderr)
        return 1
    print(f"{len(grades)} notebooks graded; grades in {out}")
    return 0


def _execute(args: argparse.Namespace) -> int:
    """Inside the student sandbox: run the notebook where it is, save it executed."""
    from trafficlab.course.execute import execute_notebook
    from trafficlab.course.release import read_notebook, write_notebook

    nb = read_notebook(Path(args.notebook))
    run = execute_notebook(nb, Path(args.workdir), home=Path(args.home), timeout=args.timeout)
    write_notebook(run.notebook, Path(args.out))
    if run.error:
        print(run.error, file=sys.stderr)
    return 0


def _serve_answer(args: argparse.Namespace) -> int:
    """Inside its own sandbox: the student's answer cell, served to the grader (never returns)."""
    from trafficlab.course.answer_server import serve

    serve(Path(args.source).read_text(encoding="utf-8"), args.name, Path(args.socket))
    return 0


def _grade_answers(args: argparse.Namespace) -> int:
    """Inside the grading sandbox: grade collected answer files, print JSON on the last line."""
    from trafficlab.course.autograde import grade_answers

    functions = {}
    for item in args.function:
        name, _, path = item.partition("=")
        functions[name] = Path(path)
    verdicts = grade_answers(Path(args.answers), args.exercise, Path(args.home), functions)
    print(json.dumps(verdicts))
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
    p.add_argument("--no-sandbox", action="store_true",
                   help="run notebooks without bubblewrap (they can then read solutions/ and the "
                   "hidden checks, reach other labs and leave processes behind)")
    p.add_argument("--gradebook", default=None,
                   help="nbgrader gradebook to fill (default: gradebook.db beside SUBMISSIONS, "
                   "when there is one)")
    p.set_defaults(func=_autograde)
    p = sub.add_parser("execute", help="(internal, in the sandbox) run one notebook in place")
    p.add_argument("notebook")
    p.add_argument("--workdir", required=True)
    p.add_argument("--home", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--timeout", type=int, default=CELL_TIMEOUT)
    p.set_defaults(func=_execute)
    p = sub.add_parser("grade-answers", help="(internal, in the sandbox) grade answer files, JSON")
    p.add_argument("answers")
    p.add_argument("--exercise", action="append", default=[])
    p.add_argument("--home", required=True)
    p.add_argument("--function", action="append", default=[], help="NAME=SOCKET of a served answer")
    p.set_defaults(func=_grade_answers)
    p = sub.add_parser("serve-answer", help="(internal, in the sandbox) serve a Python answer")
    p.add_argument("source")
    p.add_argument("--name", required=True)
    p.add_argument("--socket", required=True)
    p.set_defaults(func=_serve_answer)
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
