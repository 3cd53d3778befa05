"""Hostile notebooks through ``autograde``: each runs under bubblewrap and is graded from outside.

One autograde run (two at a time) grades a class: a notebook that fakes its score, one that
reads ``solutions/``, one that leaves a lingering process, one that connects to another lab's
port on the host's loopback, one that writes outside its folder, and the instructor's solution.
The hostile ones are small (start the lab, attack, the test cell, stop) so the run stays short.
Each attack must score nothing and leave nothing: no marker file, no process, no connection.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from trafficlab.course.autograde import NotebookGrade, SandboxUnavailable, autograde
from trafficlab.course.release import RELEASE_DIR, read_notebook, repo_root
from trafficlab.course.sandbox import BWRAP_ENV, probe

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(probe() is not None, reason=f"bubblewrap cannot run: {probe()}")]

ROOT = repo_root()
NOTEBOOK = "02-rollback.ipynb"
SOLUTION = ROOT / "solutions" / "notebooks" / NOTEBOOK
MARKER = f"trafficlab-linger-{uuid.uuid4().hex[:10]}"


def _attack_notebook(attack: str) -> nbformat.NotebookNode:
    """The student notebook cut to: start the lab, the attack, the (empty) answer, grade, stop."""
    nb = read_notebook(ROOT / RELEASE_DIR / NOTEBOOK)
    keep = ("start", "rollback-answer", "rollback-grade", "stop")
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    attack_cell = nbformat.v4.new_code_cell(attack)  # type: ignore[no-untyped-call]
    nb.cells = [cells["start"], attack_cell, *[cells[k] for k in keep[1:]]]
    return nb


def _attacks(outside: Path, port: int) -> dict[str, str]:
    solution = ROOT / "solutions" / "exercises" / "rollback.yaml"
    return {
        "fake-score": (
            "course.score = lambda *args, **kwargs: 6.0\n"
            "import trafficlab.course.scoring as s; s.score = course.score\n"
            "print('rollback results: 6/6 points. All checks passed!')\n"),
        "read-solutions": (
            "import shutil\n"
            f"shutil.copy({str(solution)!r}, 'rollback.yaml')\n"),
        "linger": (
            "import subprocess\n"
            f"subprocess.Popen(['setsid', 'sh', '-c', 'sleep 3600', {MARKER!r}])\n"),
        "socket": (
            "import socket\n"
            f"socket.create_connection(('127.0.0.1', {port}), timeout=5).sendall(b'patch')\n"),
        "write-outside": (
            "from pathlib import Path\n"
            f"target = Path({str(outside / 'escaped')!r})\n"
            "target.parent.mkdir(parents=True, exist_ok=True)\n"
            "target.write_text('out')\n"),
    }


def _processes_with(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(f"{proc.name}: {cmdline!r}")
    return found


class _Listener:
    """Another lab's port on the host's loopback: it records every connection."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.server.close()


Graded = tuple[Path, dict[str, NotebookGrade], int]


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graded]:
    base = tmp_path_factory.mktemp("hostile-notebooks")
    submissions, work, outside = base / "submitted", base / "work", base / "outside"
    work.mkdir()
    listener = _Listener()
    try:
        for student, attack in _attacks(outside, listener.port).items():
            (submissions / student).mkdir(parents=True)
            nbformat.write(_attack_notebook(attack), submissions / student / NOTEBOOK)
        (submissions / "correct").mkdir()
        shutil.copy(SOLUTION, submissions / "correct" / NOTEBOOK)
        grades = autograde(submissions, out=base / "grades.csv", autograded=base / "autograded",
                           jobs=2, tmp_root=work)
        yield base, {g.student: g for g in grades}, listener.connections
    finally:
        listener.close()


def _outputs(base: Path, student: str) -> str:
    nb = nbformat.read(base / "autograded" / student / NOTEBOOK, as_version=4)
    return json.dumps([c.get("outputs", []) for c in nb.cells])


def test_the_solution_keeps_full_marks(graded: Graded) -> None:
    _, grades, _ = graded
    grade = grades["correct"]
    assert grade.score == grade.max_score == 6, (grade.cells, grade.error)


def test_a_faked_score_earns_nothing(graded: Graded) -> None:
    base, grades, _ = graded
    grade = grades["fake-score"]
    assert grade.score == 0
    assert "failed: applies" in grade.cells[0].note  # the grader's reason, not the kernel's
    # The kernel did print its own full marks: it does not count.
    assert "6/6 points" in _outputs(base, "fake-score")


def test_solutions_are_not_there_to_read(graded: Graded) -> None:
    base, grades, _ = graded
    assert grades["read-solutions"].score == 0
    assert "FileNotFoundError" in _outputs(base, "read-solutions")


def test_no_lingering_process_survives(graded: Graded) -> None:
    base, grades, _ = graded
    assert "Popen" in _outputs(base, "linger")  # it did start one
    assert grades["linger"].score == 0
    assert _processes_with(MARKER) == []


def test_another_labs_port_is_out_of_reach(graded: Graded) -> None:
    base, grades, connections = graded
    assert connections == 0
    assert "ConnectionRefusedError" in _outputs(base, "socket")
    assert grades["socket"].score == 0


def test_nothing_is_written_outside_the_sandbox(graded: Graded) -> None:
    base, grades, _ = graded
    assert not (base / "outside").exists()
    assert grades["write-outside"].score == 0


def test_every_row_is_written_and_nothing_is_left(graded: Graded) -> None:
    base, grades, _ = graded
    with open(base / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["student"] for r in rows) == sorted(grades) == sorted(
        ["correct", "fake-score", "read-solutions", "linger", "socket", "write-outside"])
    assert all(r["notebook"] == "02-rollback" and r["max_score"] == "6" for r in rows)
    assert not any((base / "work").iterdir())  # every temporary folder was removed
    assert _processes_with(str(base / "work")) == []


def test_without_bubblewrap_autograde_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from trafficlab.course.__main__ import main

    monkeypatch.setenv(BWRAP_ENV, str(tmp_path / "no-bwrap"))
    (tmp_path / "sub" / "ana").mkdir(parents=True)
    shutil.copy(SOLUTION, tmp_path / "sub" / "ana" / NOTEBOOK)
    with pytest.raises(SandboxUnavailable, match="--no-sandbox"):
        autograde(tmp_path / "sub", out=tmp_path / "grades.csv")
    assert main(["autograde", str(tmp_path / "sub"), "--out", str(tmp_path / "g.csv")]) == 2
    err = capsys.readouterr().err
    assert "no-bwrap is missing" in err and "can read solutions/" in err
    assert not (tmp_path / "grades.csv").exists() and not (tmp_path / "g.csv").exists()
    # The instructor's explicit choice: the same flow, unsandboxed, scores still from outside.
    grades = autograde(tmp_path / "sub", out=tmp_path / "grades.csv", sandbox=False,
                       tmp_root=tmp_path)
    assert [(g.student, g.score, g.max_score) for g in grades] == [("ana", 6, 6)]
    assert (tmp_path / "grades.csv").read_text().count("\n") == 2


def test_a_served_answer_cannot_reach_the_grader(tmp_path: Path) -> None:
    """The monitoring answer runs in its own sandbox: patching the checks there changes nothing
    here, and what it raises comes back by name only."""
    from trafficlab.course import ex_monitoring
    from trafficlab.course.answer_server import RemoteError, RemoteFunction
    from trafficlab.course.autograde import _course, _start_functions
    from trafficlab.course.exercises import AnswerContext
    from trafficlab.grading.checks import CheckFailure

    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    cell = nbformat.v4.new_code_cell(  # type: ignore[no-untyped-call]
        "import trafficlab.course.ex_monitoring as m\n"
        "m.ask = lambda *args, **kwargs: None\n"
        "open('/tmp/served-marker', 'w').write('x')\n"
        "def decide(report):\n"
        "    raise ZeroDivisionError('no figures ' + str(report.get('v2').requests))\n")
    cell.metadata["nbgrader"] = {"solution": True, "grade_id": "decide-answer"}
    nb.cells = [cell]
    course = _course(str(tmp_path / "bundle"))
    (tmp_path / "rpc").mkdir()
    servers = _start_functions(nb, ["decide"], tmp_path, course, 60)
    try:
        decide = RemoteFunction(tmp_path / "rpc" / "decide.sock")
        with pytest.raises(RemoteError, match="no figures 2400") as raised:
            decide(ex_monitoring.report(ex_monitoring.HEALTHY))
        assert type(raised.value).__name__ == "ZeroDivisionError"
        ctx = AnswerContext(None, {"decide": decide}, tmp_path)  # type: ignore[arg-type]
        with pytest.raises(CheckFailure, match="raised ZeroDivisionError"):
            ex_monitoring.test_promotes_healthy(ctx)
    finally:
        for server in servers:
            server.finish(0)
    assert not Path("/tmp/served-marker").exists()


def test_only_regular_answer_files_leave_the_sandbox(tmp_path: Path) -> None:
    from trafficlab.course.autograde import collect_answers

    work = tmp_path / "work"
    work.mkdir()
    (work / "canary.yaml").symlink_to(ROOT / "solutions" / "exercises" / "canary.yaml")
    os.mkfifo(work / "rollback.yaml")
    (work / "premium.yaml").write_bytes(b"x" * (2 * 1024 * 1024))
    (work / "ab-testing.yaml").write_text("kind: HTTPRoute\n")
    problems = collect_answers(work, ["canary.yaml", "rollback.yaml", "premium.yaml",
                                      "ab-testing.yaml", "blue-green.yaml"], tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ab-testing.yaml"]
    assert len(problems) == 4 and "blue-green.yaml was not written" in problems
    assert any("canary.yaml" in p and "link" in p for p in problems)


def test_the_sandbox_is_nobody_alone_with_its_own_loopback(tmp_path: Path) -> None:
    import sys

    from trafficlab.course.sandbox import run

    secret = tmp_path / "secret.txt"
    secret.write_text("host file")
    code = ("import os, json, pathlib; print(json.dumps({'uid': os.getuid(), 'env': sorted(os.environ),"
            " 'nics': [l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]],"
            f" 'secret': pathlib.Path({str(secret)!r}).exists(),"
            f" 'solutions': pathlib.Path({str(ROOT / 'solutions')!r}).exists(),"
            " 'pids': [p for p in os.listdir('/proc') if p.isdigit()]}))")
    os.environ["TRAFFICLAB_LEAK"] = "grader's"
    try:
        result = run([sys.executable, "-c", code])
    finally:
        del os.environ["TRAFFICLAB_LEAK"]
    seen = json.loads(result.stdout)
    assert seen["uid"] == 65534 and seen["nics"] == ["lo"]
    assert not seen["secret"] and not seen["solutions"]
    assert "TRAFFICLAB_LEAK" not in seen["env"] and len(seen["pids"]) <= 3


def test_the_sandbox_limits_time_memory_and_processes() -> None:
    import sys

    from trafficlab.course.sandbox import Limits, run

    slow = run(["/bin/sh", "-c", f"sleep 30 # {MARKER}-slow"], limits=Limits(wall_seconds=1))
    assert slow.timed_out and slow.returncode is None
    big = run([sys.executable, "-c", "b = bytearray(800 * 1024 * 1024)"],
              limits=Limits(memory_bytes=512 * 1024**2))
    assert big.returncode != 0 and "MemoryError" in big.stderr
    forks = run(["/bin/sh", "-c", "for i in $(seq 40); do sleep 5 & done; wait"],
                limits=Limits(max_processes=10))
    if not (forks.notes and os.getuid() == 0):  # root without a pids cgroup: RLIMIT_NPROC only
        assert forks.returncode != 0 and "fork" in forks.stderr.lower()
    assert _processes_with(f"{MARKER}-slow") == []
