"""Local processes and ports: facts shared by the daemon, its client, port claims and rollouts."""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["free_port", "pid_alive"]


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


def free_port(address: str = "127.0.0.1") -> int:
    """A port free on ``address`` right now (the caller binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])
