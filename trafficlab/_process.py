"""Local processes and ports: facts shared by the daemon, its client, port claims and rollouts."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["end_process", "free_port", "pid_alive", "process_start", "same_process",
           "start_retrying_port_clash"]


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` names a live process (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def process_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, /proc/PID/stat field 22), or None if gone.

    A pid alone names whichever process holds it now; the pair (pid, start) names one process
    for good, so a recorded pid reused by a stranger is never signalled.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])  # field 22 overall; fields[0] here is field 3 (state)
    except (OSError, IndexError, ValueError):
        return None


def same_process(pid: int, start: int | None) -> bool:
    """Whether ``pid`` is still the process that had start time ``start`` (and is alive)."""
    return start is not None and pid_alive(pid) and process_start(pid) == start


def end_process(pid: int, start: int | None, *, grace: float = 5.0) -> None:
    """SIGTERM the process (pid, start), SIGKILL it after ``grace`` s; never a stranger.

    For processes this lab started but is not the parent of (adopted after a daemon restart):
    there is no Popen to wait on, so the pair is polled until the process is gone.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not same_process(pid, start):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 5.0)
        while same_process(pid, start) and time.monotonic() < deadline:
            time.sleep(0.02)


def free_port(address: str = "127.0.0.1") -> int:
    """A port free on ``address`` right now (the caller binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def start_retrying_port_clash(start: Callable[[], None], stop: Callable[[], None],
                              log_tail: Callable[[], str], failure: type[Exception],
                              attempts: int = 3) -> None:
    """Start a server on a port picked a moment before it binds, again if another process
    took the port in between (its log says "address already in use")."""
    for attempt in range(attempts):
        try:
            start()
            return
        except failure:
            log = log_tail()
            stop()
            if attempt == attempts - 1 or "address already in use" not in log.lower():
                raise
