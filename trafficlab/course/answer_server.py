"""A student's Python answer (``decide(report)``), served from its own sandbox to the grader.

The monitoring exercise's answer is a function. Calling it inside the grader would let it
rewrite the grader's score; calling it in the student's kernel would let the kernel fake it.
So the function's cell runs alone in a sandbox of its own (:func:`serve`, no network, the
student bundle read-only) and answers calls on a Unix socket; the trusted grader, in its own
sandbox, holds a :class:`RemoteFunction` that sends each report as JSON and gets back only the
function's return value (or the name and message of what it raised). Nothing else crosses.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import time
from pathlib import Path
from typing import Any

__all__ = ["CALL_TIMEOUT", "RemoteError", "RemoteFunction", "serve"]

#: Seconds one call may take before the grader gives up on it.
CALL_TIMEOUT = 10.0
_MAX_LINE = 64 * 1024


class RemoteError(Exception):
    """What the student's function raised, by name and message (no object crosses)."""


def _report(data: dict[str, Any]) -> Any:
    from trafficlab.monitoring.metrics import MetricsReport, VersionMetrics

    versions = {name: VersionMetrics(**fields) for name, fields in data.get("versions", {}).items()}
    return MetricsReport(data["source"], data["window"], versions, dict(data.get("queries", {})),
                         list(data.get("notes", [])), float(data.get("at", 0.0)))


def _reply(value: Any) -> dict[str, Any]:
    if value is None or isinstance(value, (str, int, float, bool)):
        return {"value": value}
    return {"value": repr(value)[:200]}


def serve(source: str, name: str, path: Path) -> None:
    """Run ``source`` (the student's cell), then answer calls of ``name`` on socket ``path``."""
    namespace: dict[str, Any] = {"__name__": "__answer__"}
    failure = None
    try:
        exec(compile(source, "<answer cell>", "exec"), namespace)  # running it is why we are here
    except BaseException as exc:  # the cell's own error is the answer's problem, not ours
        failure = f"{type(exc).__name__}: {exc}"
    function = namespace.get(name)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    while True:
        conn, _ = server.accept()
        with conn, conn.makefile("rwb") as stream:
            line = stream.readline(_MAX_LINE)
            try:
                if not callable(function):
                    raise NameError(f"{name} is not defined" + (f" ({failure})" if failure else ""))
                reply = _reply(function(_report(json.loads(line))))
            except BaseException as exc:
                reply = {"error": type(exc).__name__, "message": str(exc)[:500]}
            stream.write(json.dumps(reply).encode() + b"\n")
            stream.flush()


class RemoteFunction:
    """The grader's handle on the served function: called with a report, returns its value."""

    def __init__(self, path: Path, name: str = "decide") -> None:
        self.path = path
        self.name = name

    def __call__(self, report: Any) -> Any:
        data = json.dumps(dataclasses.asdict(report)).encode() + b"\n"
        deadline = time.monotonic() + CALL_TIMEOUT
        while True:  # the server may still be starting
            try:
                conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conn.settimeout(CALL_TIMEOUT)
                conn.connect(str(self.path))
                break
            except OSError:
                conn.close()
                if time.monotonic() > deadline:
                    raise RemoteError(f"{self.name} could not be called: its answer cell "
                                      "did not start") from None
                time.sleep(0.1)
        try:
            with conn, conn.makefile("rwb") as stream:
                stream.write(data)
                stream.flush()
                reply = json.loads(stream.readline(_MAX_LINE) or b"{}")
        except (OSError, ValueError) as exc:
            raise RemoteError(f"{self.name} gave no answer within {CALL_TIMEOUT:g} s ({exc})") from None
        if "error" in reply:
            raise type(str(reply["error"])[:60] or "Error", (RemoteError,), {})(
                str(reply.get("message", "")))
        if "value" not in reply:
            raise RemoteError(f"{self.name} gave no answer")
        return reply["value"]
