"""Steady traffic while something changes: what users see during a switch or a rollback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from trafficlab._errors import TrafficLabError
from trafficlab.lab import Lab
from trafficlab.traffic import TrafficResult

__all__ = ["under_load"]


def under_load(lab: Lab, change: Callable[[], Any], *, seconds: float = 3.0, rate: float = 200.0,
               after: float = 0.5, **send_options: Any) -> TrafficResult:
    """Send paced traffic for ``seconds``; ``after`` seconds in, call ``change()``; return what was seen.

    >>> during = under_load(lab, lambda: apply_file(lab, "blue-green.yaml"))   # doctest: +SKIP
    >>> during.by_status                                                        # doctest: +SKIP
    Counter({200: 600})
    """
    box: dict[str, Any] = {}

    def load() -> None:
        try:
            box["result"] = lab.send(duration=seconds, rate=rate, concurrency=8, progress=False,
                                     **send_options)
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=load, name="trafficlab-under-load", daemon=True)
    thread.start()
    time.sleep(after)
    try:
        change()
    finally:
        thread.join(seconds + 30)
    if "error" in box:
        raise box["error"]
    if "result" not in box:
        raise TrafficLabError("the traffic sent during the change did not finish in time")
    result: TrafficResult = box["result"]
    return result
