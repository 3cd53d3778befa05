"""Steady traffic while something changes: what users see during a switch or a rollback."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from trafficlab._errors import TrafficLabError
from trafficlab.lab import DEFAULT_GATEWAY, Lab
from trafficlab.traffic import TrafficResult
from trafficlab.traffic.background import start_load

__all__ = ["under_load"]


def under_load(lab: Lab, change: Callable[[], Any], *, seconds: float = 3.0, rate: float = 200.0,
               after: float = 0.5, **send_options: Any) -> TrafficResult:
    """Send paced traffic for ``seconds``; ``after`` seconds in, call ``change()``; return what was seen.

    >>> during = under_load(lab, lambda: apply_file(lab, "blue-green.yaml"))   # doctest: +SKIP
    >>> during.by_status                                                        # doctest: +SKIP
    Counter({200: 600})
    """
    # As lab.send: gateway and listener pick the URL, the rest are send's options.
    url = lab.url(send_options.pop("gateway", DEFAULT_GATEWAY),
                  listener=send_options.pop("listener", None))
    options = {"concurrency": 8, **send_options}
    load = start_load(url, duration=seconds, rate=rate, name="trafficlab-under-load", **options)
    time.sleep(after)
    try:
        change()
    finally:
        load.join(seconds + 30)
    if not load.done:
        raise TrafficLabError("the traffic sent during the change did not finish in time")
    return load.result(timeout=0)
