"""A class of hostile submissions: every student gets a row, the correct one full marks, and no
process of any lab survives; a student whose grading runs too long is stopped with a reason."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trafficlab._process import pid_alive
from trafficlab.grading.limits import recorded_daemons, run_in_session
from trafficlab.grading.runner import grade, grade_batch

REPO = Path(__file__).resolve().parents[2]
SOLUTIONS = REPO / "solutions" / "exercises"
EXERCISES = ["canary", "blue-green"]
FILES = ["canary.yaml", "blue-green.yaml"]
BOMB = "".join(
    [f'l0: &l0 [{", ".join(["lol"] * 9)}]\n']
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)])
FORMULA = '=HYPERLINK("x","y")'  # a folder name cannot hold the "/" of a URL


def _student(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    return folder


def _class(root: Path, outside: Path) -> dict[str, str]:
    """The submissions, and a phrase each refused one's feedback must hold."""
    for name in ("correct", "crash"):
        for f in FILES:
            shutil.copy(SOLUTIONS / f, _student(root, name) / f if f == FILES[0] else root / name / f)
    crash = root / "crash" / "blue-green.yaml"
    crash.write_text(crash.read_text().replace("name: task-api-gateway", "name: no-gateway"))
    for f in FILES:
        (_student(root, "link-solution") if f == FILES[0] else root / "link-solution").joinpath(
            f).symlink_to(SOLUTIONS / f)
    _student(root, "link-out").joinpath("canary.yaml").symlink_to("/etc/passwd")
    outside.mkdir()
    for f in FILES:
        shutil.copy(SOLUTIONS / f, outside / f)
    (root / "folder-link").symlink_to(outside, target_is_directory=True)
    os.mkfifo(_student(root, "fifo") / "canary.yaml")
    (_student(root, "huge") / "canary.yaml").write_bytes(b"#" * (2 * 1024 * 1024))
    (_student(root, "bomb") / "canary.yaml").write_text(BOMB)
    (_student(root, "duplicate") / "canary.yaml").write_text(
        (SOLUTIONS / "canary.yaml").read_text() + "kind: HTTPRoute\n")
    (_student(root, FORMULA) / "canary.yaml").write_text("kind: [\n")
    return {"link-solution": "symbolic link", "link-out": "symbolic link",
            "folder-link": "symbolic link", "fifo": "named pipe", "huge": "over the limit",
            "bomb": "aliases expand", "duplicate": "duplicate key 'kind'",
            FORMULA: "could not be read"}


@pytest.mark.integration
def test_a_hostile_class_gets_every_row_and_leaves_no_process(tmp_path: Path) -> None:
    submissions = tmp_path / "class"
    submissions.mkdir()
    refused = _class(submissions, tmp_path / "elsewhere")
    out = tmp_path / "grades.csv"
    work = tmp_path / "work"
    reports = grade_batch(submissions, jobs=2, out=out, exercise_ids=EXERCISES, work_root=work)

    rows = {r[0]: r for r in csv.reader(out.open())}
    header = rows.pop("student")
    assert header[:3] == ["student", "score", "max_score"]
    names = sorted(p.name for p in submissions.iterdir())
    assert sorted(r.student for r in reports if r.student) == names
    assert len(rows) == len(names)
    correct = next(r for r in reports if r.student == "correct")
    assert rows["correct"][1:3] == ["20", "20"], correct.render()
    assert rows["crash"][1:5] == ["10", "20", "10", "0"], rows["crash"]
    assert rows["'" + FORMULA][1] == "0"

    by_student = {r.student: r for r in reports}
    for student, phrase in refused.items():
        canary = next(e for e in by_student[student].exercises if e.id == "canary")
        assert canary.score == 0 and canary.error is None
        applies = next(c for c in canary.checks if c.name == "applies")
        assert phrase in applies.message, (student, applies.message)
        assert "root:" not in json.dumps(by_student[student].to_dict())

    daemons = [pid for d in sorted(work.iterdir()) for pid in recorded_daemons(d)]
    assert len(daemons) >= len(names)
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in daemons) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in daemons if pid_alive(p)]


@pytest.mark.integration
def test_an_exercise_past_its_limit_is_stopped_with_its_lab(tmp_path: Path) -> None:
    folder = _student(tmp_path, "slow")
    for f in FILES:
        shutil.copy(SOLUTIONS / f, folder / f)
    work = tmp_path / "work"
    work.mkdir()
    # Blue-green alone keeps steady load for 3 s per switch: 1 s is too short.
    report = grade(folder, ["blue-green"], timeout_exercise=1.0, work_dir=work)
    (result,) = report.exercises
    assert result.score == 0 and result.max_score == 10
    assert result.error is not None and "limit of 1 s" in result.error
    daemons = recorded_daemons(work)
    assert daemons and not [p for p in daemons if pid_alive(p)]


def test_the_student_time_limit_fails_the_rest_unrun(tmp_path: Path) -> None:
    report = grade(_student(tmp_path, "late"), ["canary", "blue-green"], timeout_student=0.0)
    assert [e.error for e in report.exercises] == [
        "not graded: the time limit of 0 s for the whole submission ran out"] * 2


def test_a_stuck_grading_process_is_ended_with_its_whole_group(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    code = ("import subprocess, sys, time\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
            f"open({str(marker)!r}, 'w').write(str(p.pid))\n"
            "time.sleep(300)\n")
    started = time.monotonic()
    exit_code, _, _ = run_in_session([sys.executable, "-c", code], timeout=3.0)
    assert exit_code is None and time.monotonic() - started < 60
    child = int(marker.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(child)


def test_the_grade_command_has_the_limits() -> None:
    out = subprocess.run([sys.executable, "-m", "trafficlab.cli", "grade", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--timeout-exercise" in out and "--timeout-student" in out
