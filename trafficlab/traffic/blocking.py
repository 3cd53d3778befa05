"""``send``: the blocking front door to the load loop, from scripts and from Jupyter.

Outside an event loop it runs :func:`~trafficlab.traffic.load.asend` on a private loop
(uvloop's when installed); inside a running one (a notebook cell) it runs it as a
:class:`~trafficlab.traffic.background.BackgroundLoad` and waits, so Ctrl-C stops the load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from trafficlab.traffic.background import start_load
from trafficlab.traffic.load import DEFAULT_REQUESTS, asend
from trafficlab.traffic.result import TrafficResult
from trafficlab.traffic.sync import run
from trafficlab.traffic.transport import Transport

__all__ = ["send"]


def send(
    url: str,
    *,
    requests: int | None = None,
    duration: float | None = None,
    concurrency: int = 10,
    rate: float | None = None,
    method: str = "GET",
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
    progress: bool | None = None,
    transport: Transport | None = None,
) -> TrafficResult:
    """Send HTTP requests to ``url`` + ``path`` and count the answers.

    ``url`` is the gateway's base URL (``http://127.0.0.1:8080``). Stop after
    ``requests`` requests or ``duration`` seconds, whichever comes first (200 requests
    when neither is given). ``concurrency`` workers share one keep-alive pool of as
    many connections; ``rate`` paces the total (not per-worker) requests per second.
    ``headers`` are sent with every request (a ``Host`` entry overrides the host).
    ``timeout`` bounds each request of the default transport, in seconds.

    >>> send("http://127.0.0.1:8080", requests=500, path="/tasks").by_version  # doctest: +SKIP
    Counter({'v1': 451, 'v2': 49})
    """
    options: dict[str, Any] = dict(
        requests=requests, duration=duration, concurrency=concurrency, rate=rate,
        method=method, path=path, headers=headers, body=body, timeout=timeout,
        progress=progress, transport=transport,
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run(asend(url, **options))
    if requests is None and duration is None:
        options["requests"] = DEFAULT_REQUESTS  # a background load without either never ends
    # The caller's loop is busy (Jupyter): run on a private loop in a worker thread.
    load = start_load(url, name="trafficlab-send", **options)
    try:
        while not load.join(0.1):
            pass
    except KeyboardInterrupt:
        # Interrupting the notebook cell stops the load instead of orphaning it.
        load.cancel()
        raise
    return load.result(timeout=0)
