"""Send HTTP traffic through the gateway and count who answered.

:func:`send` (blocking) and :func:`asend` (async) drive keep-alive HTTP/1.1 load at a
gateway, like ``hey -n``/``hey -z``: a fixed number of requests, or for a duration,
from ``concurrency`` workers sharing one connection pool, optionally paced to a fixed
total rate. Each response is counted by the Task API's identity headers (``x-version``
and ``x-pod``; answers made by the gateway itself carry neither and count as
``"none"``) and by status; connection failures are counted by kind.

>>> result = send("http://127.0.0.1:8080", requests=1000,
...               headers={"x-user-type": "beta"})          # doctest: +SKIP
>>> result.share("v2")                                       # doctest: +SKIP
0.1

``send`` works from scripts and from Jupyter: inside a running event loop it runs the
load on a private loop in a worker thread (uvloop's when installed).

Transports: the default, :class:`HttptoolsTransport`, is a lean keep-alive HTTP/1.1
client on asyncio with the httptools parser, about 3x cheaper per request than
aiohttp's client (~18 against ~57 microseconds of CPU). Measured side by side through
Envoy to a Task API on this 2-core machine (benchmarks/bench_traffic.py), it reached
0.98-1.14x wrk's requests/s where aiohttp's client reached 0.66-0.86x, too close to
the 0.6x budget. :class:`AiohttpTransport` (one ``ClientSession`` per run) remains for
``https://`` URLs and when httptools is missing. Tests and notebooks may pass any
:class:`Transport`.

One job per module: :mod:`~trafficlab.traffic.transport` (the protocol, its failures),
:mod:`~trafficlab.traffic.httptools_transport` and :mod:`~trafficlab.traffic.aiohttp_transport`,
:mod:`~trafficlab.traffic.result` (what a run saw), :mod:`~trafficlab.traffic.load` (the loop
and its pacing), :mod:`~trafficlab.traffic.progress` (the bar), :mod:`~trafficlab.traffic.sync`
(a private event loop), :mod:`~trafficlab.traffic.background` (load in a worker thread until
done or stopped) and :mod:`~trafficlab.traffic.blocking` (``send``, from scripts and Jupyter).
"""

from __future__ import annotations

from trafficlab.traffic.aiohttp_transport import AiohttpTransport
from trafficlab.traffic.background import BackgroundLoad, start_load
from trafficlab.traffic.blocking import send
from trafficlab.traffic.httptools_transport import HttptoolsTransport
from trafficlab.traffic.load import DEFAULT_REQUESTS as DEFAULT_REQUESTS
from trafficlab.traffic.load import asend, default_transport
from trafficlab.traffic.result import NO_VERSION, TrafficResult, format_result
from trafficlab.traffic.sync import run as _run  # noqa: F401  (benchmarks/bench_traffic.py)
from trafficlab.traffic.transport import (
    BadResponseError,
    InvalidURLError,
    ServerDisconnectedError,
    Transport,
)

__all__ = [
    "NO_VERSION",
    "AiohttpTransport",
    "BackgroundLoad",
    "BadResponseError",
    "HttptoolsTransport",
    "InvalidURLError",
    "ServerDisconnectedError",
    "TrafficResult",
    "Transport",
    "asend",
    "default_transport",
    "format_result",
    "send",
    "start_load",
]
