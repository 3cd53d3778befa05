"""Control files in the lab home: a running rollout's state, the commands sent to it, its event log.

``<home>/rollouts/<namespace>/<route>/`` holds ``state.json`` (written by the running
rollout, with a heartbeat), ``command.json`` (written by :func:`send_command`: pause,
resume, promote, abort) and ``events.jsonl`` (one JSON object per decision).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trafficlab._errors import TrafficLabError
from trafficlab._process import pid_alive

__all__ = [
    "ACTIVE",
    "COMMANDS",
    "is_running",
    "read_command",
    "read_events",
    "read_json",
    "read_state",
    "rollout_dir",
    "send_command",
    "write_json",
]

COMMANDS = ("pause", "resume", "promote", "abort")
ACTIVE = ("starting", "progressing", "paused")
# A state file whose heartbeat is older than this belongs to a rollout that is gone.
_STALE_S = 10.0


def rollout_dir(home: Path, route: str, namespace: str = "default") -> Path:
    """``<home>/rollouts/<namespace>/<route>``: state.json, command.json, events.jsonl."""
    return home / "rollouts" / namespace / route


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a reader in another process never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """The file's JSON, or None when it is missing or not (yet) valid."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_state(home: Path, route: str = "task-api", namespace: str = "default") -> dict[str, Any] | None:
    """The state of the route's latest rollout (running or finished), or None."""
    state = read_json(rollout_dir(home, route, namespace) / "state.json")
    return state if isinstance(state, dict) else None


def read_events(home: Path, route: str = "task-api", namespace: str = "default", *,
                rollout: str | None = None) -> list[dict[str, Any]]:
    """The event log of the route (one rollout's events when ``rollout`` is its id)."""
    path = rollout_dir(home, route, namespace) / "events.jsonl"
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    events = [json.loads(line) for line in lines if line.strip()]
    return [e for e in events if rollout is None or e.get("rollout") == rollout]


def is_running(state: Mapping[str, Any] | None) -> bool:
    """True for the state of a rollout that is active, alive and has a fresh heartbeat."""
    return bool(state and state.get("phase") in ACTIVE and pid_alive(int(state.get("pid", 0)))
                and time.time() - float(state.get("heartbeat", 0)) < _STALE_S)


def send_command(home: Path, route: str, command: str, *, namespace: str = "default",
                 timeout: float = 10.0) -> dict[str, Any]:
    """Ask the route's running rollout to ``pause``, ``resume``, ``promote`` or ``abort``.

    Returns the rollout's state once it took the command. Raises :class:`TrafficLabError`
    when no rollout of the route runs, or it did not answer within ``timeout`` seconds.
    """
    if command not in COMMANDS:
        raise TrafficLabError(f"unknown rollout command {command!r}; use one of {', '.join(COMMANDS)}")
    folder = rollout_dir(home, route, namespace)
    state = read_state(home, route, namespace)
    if not is_running(state):
        last = f" (the last one ended: {state.get('phase')})" if state else ""
        raise TrafficLabError(f"no rollout of HTTPRoute {namespace}/{route} is running in the lab "
                              f"at {home}{last}; start one with 'trafficlab rollout --route {route} "
                              "--canary NAME'")
    ident = uuid.uuid4().hex[:12]
    write_json(folder / "command.json", {"id": ident, "command": command, "time": time.time()})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(home, route, namespace)
        if state and state.get("acked") == ident:
            return state
        if state and state.get("phase") not in ACTIVE:
            raise TrafficLabError(f"the rollout of HTTPRoute {namespace}/{route} ended "
                                  f"({state.get('phase')}) before it took the {command} command")
        time.sleep(0.05)
    raise TrafficLabError(f"the rollout of HTTPRoute {namespace}/{route} did not take the "
                          f"{command} command within {timeout:.0f}s")



def read_command(folder: Path, acked: str | None, started: float) -> tuple[str, str] | None:
    """``(id, command)`` of a new command in ``folder/command.json`` for a rollout started at ``started``.

    None when there is none, it is the one already acknowledged (``acked``), it was written
    for an earlier rollout, or it is garbage.
    """
    data = read_json(folder / "command.json")
    if not isinstance(data, dict) or data.get("id") == acked:
        return None
    if float(data.get("time", 0)) < started or data.get("command") not in COMMANDS:
        return None  # a command for an earlier rollout, or garbage
    return str(data["id"]), str(data["command"])
