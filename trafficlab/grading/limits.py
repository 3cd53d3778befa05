"""Wall-clock limits for grading, and ending everything a lab or a grading process started.

A local lab's daemon runs in its own session (``start_new_session=True``) and Envoy, the pods
and Prometheus stay in its process group, so one ``killpg`` of the daemon's group ends the
whole lab. The batch runner starts each student's grading in its own session too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from trafficlab._process import pid_alive

__all__ = ["DAEMONS_FILE", "EXERCISE_TIMEOUT", "STUDENT_TIMEOUT", "end_group", "end_lab",
           "end_recorded_labs", "lab_daemon_pid", "record_daemon", "recorded_daemons",
           "run_in_session"]

EXERCISE_TIMEOUT = 300.0  # the slowest exercise (auto-rollout) takes well under a minute
STUDENT_TIMEOUT = 1800.0
DAEMONS_FILE = "lab-daemons.txt"
_DAEMON_MODULE = b"trafficlab.controlplane.daemon"


def lab_daemon_pid(home: Path) -> int | None:
    """The pid of the lab daemon recorded in ``home/lab.json``, if it still runs."""
    try:
        pid = int(json.loads((home / "lab.json").read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if _is_daemon(pid) else None


def _is_daemon(pid: int) -> bool:
    """A live lab daemon (the cmdline check keeps a reused pid from being killed)."""
    if not pid_alive(pid):
        return False
    try:
        return _DAEMON_MODULE in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def end_group(pgid: int, *, grace: float = 3.0) -> None:
    """SIGTERM the process group ``pgid``, then SIGKILL whatever is left after ``grace``."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _end_daemon(pid: int) -> None:
    if not _is_daemon(pid):
        return
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    # The daemon leads its own session; never signal a group that is not its own.
    if pgid == pid:
        end_group(pgid)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def end_lab(home: Path) -> None:
    """End the lab in ``home`` at once: its daemon's whole process group."""
    pid = lab_daemon_pid(home)
    if pid is not None:
        _end_daemon(pid)


def record_daemon(work_dir: Path | None, home: Path) -> None:
    """Note the pid of the lab just started in ``home``, so whoever started grading can end it."""
    pid = lab_daemon_pid(home)
    if work_dir is not None and pid is not None:
        with (work_dir / DAEMONS_FILE).open("a") as out:
            out.write(f"{pid}\n")


def recorded_daemons(work_dir: Path) -> list[int]:
    """The lab daemon pids grading noted in ``work_dir``."""
    try:
        lines = (work_dir / DAEMONS_FILE).read_text().split()
    except OSError:
        return []
    return [int(x) for x in lines if x.isdigit()]


def end_recorded_labs(work_dir: Path) -> None:
    """End every lab daemon noted in ``work_dir`` that still runs."""
    for pid in recorded_daemons(work_dir):
        _end_daemon(pid)


def run_in_session(cmd: list[str], timeout: float) -> tuple[int | None, str, str]:
    """Run ``cmd`` in its own session; on expiry end its whole process group.

    Returns (exit code or None when it timed out, stdout, stderr). Whatever the command left
    running in its group is ended either way.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    code: int | None
    try:
        out, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        end_group(proc.pid, grace=1.0)
        out, err = proc.communicate()
        code = None
    # Leftovers of a process that has exited (its group outlives it while members run).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return code, out, err
