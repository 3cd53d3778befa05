"""The load loop: ``asend`` drives keep-alive HTTP/1.1 load at a gateway, optionally paced.

Like ``hey -n``/``hey -z``: a fixed number of requests, or for a duration, from
``concurrency`` workers sharing one connection pool, optionally paced to a fixed total
rate. Each response is counted by the Task API's identity headers (``x-version`` and
``x-pod``) and by status; transport failures are counted by kind.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from array import array
from collections.abc import Mapping
from typing import Any

from trafficlab._errors import UsageError
from trafficlab.traffic.aiohttp_transport import AiohttpTransport
from trafficlab.traffic.httptools_transport import HttptoolsTransport
from trafficlab.traffic.progress import start_progress, want_progress
from trafficlab.traffic.result import NO_VERSION, TrafficResult, collect
from trafficlab.traffic.transport import Transport, error_kind

__all__ = ["DEFAULT_REQUESTS", "asend", "default_transport"]

#: Requests sent when neither ``requests`` nor ``duration`` is given (as ``hey -n``).
DEFAULT_REQUESTS = 200


def _join(url: str, path: str) -> str:
    if not path:
        return url
    return url.rstrip("/") + "/" + path.lstrip("/")


async def _drive(
    transport: Transport,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    requests: int | None,
    duration: float | None,
    concurrency: int,
    rate: float | None,
    show_progress: bool,
    stop: threading.Event | None = None,
) -> TrafficResult:
    # Per request the loop touches one dict (keyed by version, pod, status) and one
    # array of ints; everything else is aggregated once at the end.
    counts: dict[tuple[str, str, int], int] = {}
    errors: dict[str, int] = {}
    latencies = array("q")
    limit = requests if requests is not None else sys.maxsize
    perf = time.perf_counter_ns
    start = perf()
    deadline = start + int(duration * 1e9) if duration is not None else None
    interval = int(1e9 / rate) if rate else 0
    issued = 0

    async def worker() -> None:
        nonlocal issued
        send_one = transport.request
        latency_append = latencies.append
        while issued < limit:
            if stop is not None and stop.is_set():
                return  # asked to stop early (a background load): keep what was counted
            ticket = issued
            issued += 1
            if interval:
                # Open loop: request i is due at start + i/rate whichever worker
                # takes it, so the total rate is fixed, not the per-worker one.
                due = start + ticket * interval
                if deadline is not None and due >= deadline:
                    return
                wait = due - perf()
                if wait > 0:
                    await asyncio.sleep(wait / 1e9)
            elif deadline is not None and perf() >= deadline:
                return
            sent = perf()
            try:
                status, resp_headers = await send_one(method, url, headers, body)
            except Exception as exc:
                kind = error_kind(exc)
                errors[kind] = errors.get(kind, 0) + 1
                continue
            latency_append(perf() - sent)
            key = (
                resp_headers.get("x-version") or NO_VERSION,
                resp_headers.get("x-pod") or NO_VERSION,
                status,
            )
            counts[key] = counts.get(key, 0) + 1

    workers = max(1, min(concurrency, limit))
    reporter: asyncio.Task[None] | None = None
    progress_ctx: Any = None
    if show_progress:
        progress_ctx, reporter = start_progress(
            lambda: len(latencies) + sum(errors.values()),
            lambda: (perf() - start) / 1e9,
            requests, duration,
        )
    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        if reporter is not None:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
            progress_ctx.stop()
    elapsed = (perf() - start) / 1e9
    return collect(counts, errors, latencies, elapsed)


def _check_options(requests: int | None, duration: float | None, concurrency: int,
                   rate: float | None, timeout: float) -> None:
    if requests is not None and requests < 0:
        raise UsageError(f"requests must be >= 0, got {requests}")
    if duration is not None and not duration > 0:
        raise UsageError(f"duration must be > 0 seconds, got {duration}")
    if concurrency < 1:
        raise UsageError(f"concurrency must be >= 1, got {concurrency}")
    if rate is not None and not rate > 0:
        raise UsageError(f"rate must be > 0 requests/s, got {rate}")
    if not timeout > 0:
        raise UsageError(f"timeout must be > 0 seconds, got {timeout}")


async def asend(
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
    stop: threading.Event | None = None,
) -> TrafficResult:
    """Async :func:`send`: the same options, awaited on the caller's loop.

    ``stop``, when set (from any thread), ends the run early; the result counts what was
    sent until then (see :mod:`trafficlab.traffic.background`).
    """
    if requests is None and duration is None:
        requests = DEFAULT_REQUESTS
    _check_options(requests, duration, concurrency, rate, timeout)
    target = _join(url, path)
    sent_headers = dict(headers or {})
    show = want_progress(progress, requests, duration)
    args = (method.upper(), target, sent_headers, body, requests, duration, concurrency,
            rate, show, stop)
    if transport is not None:
        return await _drive(transport, *args)
    chosen = default_transport(concurrency=concurrency, timeout=timeout,
                               tls=target.startswith("https://"))
    async with chosen as default:
        return await _drive(default, *args)


def default_transport(*, concurrency: int = 10, timeout: float = 10.0,
                      tls: bool = False) -> HttptoolsTransport | AiohttpTransport:
    """The transport :func:`send` uses: httptools' when installed, else aiohttp's.

    ``tls`` (an ``https://`` URL) picks aiohttp, which speaks TLS.
    """
    if not tls:
        try:
            return HttptoolsTransport(concurrency=concurrency, timeout=timeout)
        except ImportError:
            pass
    return AiohttpTransport(concurrency=concurrency, timeout=timeout)

