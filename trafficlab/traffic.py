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
"""

from __future__ import annotations

import asyncio
import errno
import functools
import html
import io
import json
import math
import os
import socket
import sys
import threading
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, cast
from urllib.parse import urlsplit

from trafficlab._errors import UsageError

if TYPE_CHECKING:
    from rich.table import Table

__all__ = [
    "NO_VERSION",
    "AiohttpTransport",
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
]

#: The label for responses without ``x-version``/``x-pod`` (gateway-made 404/500/503).
NO_VERSION = "none"
#: Requests sent when neither ``requests`` nor ``duration`` is given (as ``hey -n``).
DEFAULT_REQUESTS = 200
# Show a progress bar (when not asked explicitly) for runs at least this long.
_PROGRESS_MIN_REQUESTS = 1000
_PROGRESS_MIN_SECONDS = 2.0

_T = TypeVar("_T")


# --- transports ------------------------------------------------------------------------


class ServerDisconnectedError(ConnectionError):
    """The server closed the connection before a whole response arrived."""


class BadResponseError(ConnectionError):
    """The response was not valid HTTP/1.1."""


class InvalidURLError(ValueError):
    """The URL is not an ``http://host[:port]/...`` URL."""


class Transport(Protocol):
    """What :func:`send` needs to send one request.

    ``request`` returns the status and the response headers; header names are looked
    up in lower case (``x-version``), so a mapping that is not case-insensitive should
    use lower-case keys. Raise on a transport failure: the exception's kind is counted
    in :attr:`TrafficResult.errors`.
    """

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, Mapping[str, str]]:
        """Send one request and return ``(status, headers)`` once the body is read."""
        ...


# Methods that may be sent again when a reused keep-alive connection turns out to be
# closed by the server (RFC 9110 section 9.2.2), as aiohttp and browsers do.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; the httptools parser calls back into it."""

    def __init__(self) -> None:
        import httptools

        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.parse_error: type[Exception] = httptools.HttpParserError
        self.waiter: asyncio.Future[tuple[int, dict[str, str]]] | None = None
        self.headers: dict[str, str] = {}
        self.headers_done = False
        self.got_data = False
        self.head = False
        self.lost = False
        self.keep_alive = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.got_data = True
        try:
            self.parser.feed_data(data)
        except self.parse_error as exc:
            self._fail(BadResponseError(f"invalid HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.headers_done and not self.head:
            # A response without Content-Length or chunking ends when the server closes.
            self._finish()
        self._fail(ServerDisconnectedError("the server closed the connection"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.headers_done = True
        if self.head:  # a HEAD response has no body, whatever Content-Length says
            self._finish()

    def on_message_complete(self) -> None:
        # Ask now: once the callback returns, the parser resets for the next message.
        self.keep_alive = self.parser.should_keep_alive()
        self._finish()

    # helpers

    def _finish(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), self.headers))

    def _fail(self, exc: Exception) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, data: bytes, timeout: float, head: bool) -> tuple[int, dict[str, str]]:
        """Write one request and wait for its response (the body is parsed and dropped)."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.headers = {}
        self.headers_done = self.got_data = self.keep_alive = False
        self.head = head
        waiter: asyncio.Future[tuple[int, dict[str, str]]] = loop.create_future()
        self.waiter = waiter
        self.transport.write(data)
        timer = loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self.waiter = None

    def reusable(self) -> bool:
        return self.keep_alive and not self.lost and not self.head


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no response within the timeout"))


class HttptoolsTransport:
    """The default transport: keep-alive HTTP/1.1 on asyncio, parsed by httptools (llhttp).

    At most ``concurrency`` connections, reused across requests. It does only what a
    load generator needs (no redirects, cookies, TLS or decompression; the body is
    parsed and dropped), which makes it about 3x cheaper per request than aiohttp's
    client: what lets one Python process keep up with wrk through Envoy on two cores.
    A reused connection that the server had closed is retried once for idempotent
    methods. Use it as an async context manager, like :class:`AiohttpTransport`.
    """

    def __init__(self, *, concurrency: int = 10, timeout: float = 10.0) -> None:
        import httptools  # noqa: F401  (fail here, not in the middle of a run)

        self._timeout = timeout
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._prepared: dict[tuple[Any, ...], tuple[bytes, str, int]] = {}

    async def __aenter__(self) -> HttptoolsTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection."""
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports finish closing

    def _prepare(self, method: str, url: str, headers: Mapping[str, str],
                 body: bytes | None) -> tuple[bytes, str, int]:
        # The request bytes are built once per distinct request, not per request.
        key = (method, url, body, tuple(headers.items()))
        prepared = self._prepared.get(key)
        if prepared is None:
            parts = urlsplit(url)
            if parts.scheme != "http" or not parts.hostname:
                raise InvalidURLError(f"only http:// URLs with a host are supported, got {url!r}")
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            lines = {"host": ("Host", parts.netloc), "user-agent": ("User-Agent", "trafficlab")}
            for name, value in headers.items():
                lines[name.lower()] = (name, value)  # the caller's Host wins
            if body is not None or method in ("POST", "PUT", "PATCH"):
                lines["content-length"] = ("Content-Length", str(len(body or b"")))
            head = f"{method} {target} HTTP/1.1\r\n" + "".join(
                f"{name}: {value}\r\n" for name, value in lines.values()
            ) + "\r\n"
            prepared = (head.encode("latin-1") + (body or b""), parts.hostname,
                        parts.port or 80)
            self._prepared[key] = prepared
        return prepared

    async def _connect(self, host: str, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(_Connection, host, port), self._timeout)
        self._all.add(conn)
        return conn

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, Mapping[str, str]]:
        """Send one request on a pooled connection and return status and headers."""
        data, host, port = self._prepare(method, url, headers, body)
        head = method == "HEAD"
        async with self._slots:
            while True:
                conn = None
                while self._idle:
                    candidate = self._idle.pop()
                    if not candidate.lost:
                        conn = candidate
                        break
                    self._all.discard(candidate)
                reused = conn is not None
                if conn is None:
                    conn = await self._connect(host, port)
                try:
                    result = await conn.exchange(data, self._timeout, head)
                except ServerDisconnectedError:
                    self._all.discard(conn)
                    if reused and not conn.got_data and method in _IDEMPOTENT:
                        continue  # the server had closed the idle connection: retry fresh
                    raise
                except BaseException:
                    conn.close()  # a timed-out or broken exchange leaves it unusable
                    self._all.discard(conn)
                    raise
                if conn.reusable():
                    self._idle.append(conn)
                else:
                    conn.close()
                    self._all.discard(conn)
                return result


class AiohttpTransport:
    """A transport on aiohttp: one session with a keep-alive pool of ``concurrency``.

    The fallback when httptools is missing; a full client (redirects off, cookies off).

    Use it as an async context manager (the session needs a running loop)::

        async with AiohttpTransport(concurrency=20) as transport:
            result = await asend(url, transport=transport)
    """

    def __init__(self, *, concurrency: int = 10, timeout: float = 10.0) -> None:
        self._concurrency = max(1, concurrency)
        self._timeout = timeout
        self._session: Any = None
        self._urls: dict[str, Any] = {}

    async def __aenter__(self) -> AiohttpTransport:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self._concurrency,
            limit_per_host=self._concurrency,
            keepalive_timeout=30.0,
            ttl_dns_cache=300,
            force_close=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            # Nothing in the lab needs cookies or decompression; skipping them saves
            # per-request work.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            headers={"User-Agent": "trafficlab"},
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, Mapping[str, str]]:
        """Send one request on a pooled connection; read and drop the body."""
        session = self._session
        if session is None:
            raise RuntimeError("AiohttpTransport is not open; use `async with` first")
        target = self._urls.get(url)
        if target is None:
            from yarl import URL

            # Parse the URL once, not per request.
            target = self._urls[url] = URL(url)
        async with session.request(method, target, headers=headers, data=body,
                                   allow_redirects=False) as resp:
            await resp.read()
            return resp.status, resp.headers


# --- results ---------------------------------------------------------------------------


@dataclass
class TrafficResult:
    """What a run of :func:`send` saw.

    ``total`` counts every request sent: responses (``by_status``) and transport
    failures (``errors``). Version and pod counts come from the ``x-version`` and
    ``x-pod`` response headers (``"none"`` when absent). Latencies are those of
    responses, in milliseconds.
    """

    total: int = 0
    by_version: Counter[str] = field(default_factory=Counter)
    by_pod: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    by_version_status: dict[str, Counter[int]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: array[float] = field(default_factory=lambda: array("d"), repr=False)
    elapsed: float = 0.0
    _sorted: list[float] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def responses(self) -> int:
        """Requests that got an HTTP response (any status)."""
        return sum(self.by_status.values())

    @property
    def rps(self) -> float:
        """Requests per second over the run."""
        return self.total / self.elapsed if self.elapsed > 0 else 0.0

    def share(self, version: str) -> float:
        """The share of responses that came from ``version`` (0 when none came back).

        >>> TrafficResult(total=4, by_version=Counter(v1=3, v2=1),
        ...               by_status=Counter({200: 4})).share("v2")
        0.25
        """
        responses = self.responses
        return self.by_version.get(version, 0) / responses if responses else 0.0

    def percentile(self, q: float) -> float:
        """The latency (ms) at percentile ``q`` in [0, 100], nearest rank; NaN if none."""
        if self._sorted is None:
            self._sorted = sorted(self.latencies_ms)
        values = self._sorted
        if not values:
            return math.nan
        rank = max(1, math.ceil(q / 100 * len(values)))
        return values[min(rank, len(values)) - 1]

    def latency(self) -> dict[str, float | None]:
        """Latency summary in ms: mean, p50, p90, p99, max (None when no response)."""
        if not self.latencies_ms:
            return dict.fromkeys(("mean", "p50", "p90", "p99", "max"))
        return {
            "mean": sum(self.latencies_ms) / len(self.latencies_ms),
            "p50": self.percentile(50),
            "p90": self.percentile(90),
            "p99": self.percentile(99),
            "max": self.percentile(100),
        }

    def _versions(self) -> list[str]:
        # Named versions first, alphabetically; gateway-made answers last.
        return sorted(self.by_version, key=lambda v: (v == NO_VERSION, v))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (status codes become string keys)."""
        return {
            "total": self.total,
            "responses": self.responses,
            "elapsed_s": round(self.elapsed, 6),
            "rps": round(self.rps, 3),
            "by_version": dict(self.by_version),
            "shares": {v: self.share(v) for v in self._versions()},
            "by_pod": dict(self.by_pod),
            "by_status": {str(s): c for s, c in sorted(self.by_status.items())},
            "by_version_status": {
                v: {str(s): c for s, c in sorted(st.items())}
                for v, st in self.by_version_status.items()
            },
            "errors": dict(self.errors),
            "latency_ms": self.latency(),
        }

    def _status_text(self, version: str) -> str:
        statuses = self.by_version_status.get(version, Counter())
        return " ".join(f"{s}×{c}" for s, c in sorted(statuses.items()))

    def _latency_text(self) -> str:
        lat = self.latency()
        if lat["p50"] is None:
            return "no responses"
        return " · ".join(f"{k} {lat[k]:.1f} ms" for k in ("p50", "p90", "p99", "max"))

    def _title(self) -> str:
        return f"{self.total} requests in {self.elapsed:.2f} s ({self.rps:.0f} req/s)"

    def table(self) -> Table:
        """A rich table: per version its count, share and statuses; then latency, errors."""
        from rich.table import Table

        table = Table(title=self._title())
        table.add_column("version")
        table.add_column("requests", justify="right")
        table.add_column("share", justify="right")
        table.add_column("statuses")
        for version in self._versions():
            table.add_row(
                version, str(self.by_version[version]), f"{self.share(version) * 100:.1f}%",
                self._status_text(version),
            )
        table.add_section()
        table.add_row("latency", "", "", self._latency_text())
        if self.errors:
            errors = ", ".join(f"{k}×{c}" for k, c in sorted(self.errors.items()))
            table.add_row("errors", str(sum(self.errors.values())), "", errors)
        return table

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><td>{esc(v)}</td><td style='text-align:right'>{self.by_version[v]}</td>"
            f"<td style='text-align:right'>{self.share(v) * 100:.1f}%</td>"
            f"<td>{esc(self._status_text(v))}</td></tr>"
            for v in self._versions()
        )
        rows += f"<tr><td>latency</td><td></td><td></td><td>{esc(self._latency_text())}</td></tr>"
        if self.errors:
            errors = ", ".join(f"{k}×{c}" for k, c in sorted(self.errors.items()))
            rows += (f"<tr><td>errors</td><td style='text-align:right'>"
                     f"{sum(self.errors.values())}</td><td></td><td>{esc(errors)}</td></tr>")
        return (
            f"<table><caption>{esc(self._title())}</caption>"
            "<thead><tr><th>version</th><th>requests</th><th>share</th><th>statuses</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )

    def __str__(self) -> str:
        return format_result(self, "table")

    def plot(self, ax: Any = None) -> Any:
        """A bar chart of the share of responses per version; returns the matplotlib axes.

        Needs matplotlib, which TrafficLab does not install by itself.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError(
                "TrafficResult.plot() needs matplotlib, which is not installed; "
                "install it with `pip install matplotlib` (or use .table())."
            ) from exc
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3))
        versions = self._versions()
        shares = [self.share(v) * 100 for v in versions]
        bars = ax.bar(versions, shares)
        for bar, version in zip(bars, versions, strict=True):
            ax.annotate(str(self.by_version[version]), (bar.get_x() + bar.get_width() / 2,
                        bar.get_height()), ha="center", va="bottom")
        ax.set_ylim(0, 105)
        ax.set_ylabel("share of responses (%)")
        ax.set_title(self._title())
        return ax


def format_result(result: TrafficResult, output: Literal["table", "json"] = "table") -> str:
    """Render a result for the CLI: ``"table"`` (plain text) or ``"json"``."""
    if output == "json":
        return json.dumps(result.to_dict(), indent=2, sort_keys=False)
    if output != "table":
        raise ValueError(f"unknown output format {output!r}; use 'table' or 'json'")
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=100, color_system=None, force_terminal=False).print(result.table())
    return buffer.getvalue()


# --- the load loop ---------------------------------------------------------------------


def _error_kind(exc: BaseException) -> str:
    """A short, stable name for a transport failure."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connect refused"
    if isinstance(exc, ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, BadResponseError):
        return "bad response"
    if isinstance(exc, InvalidURLError):
        return "invalid url"
    if isinstance(exc, socket.gaierror):
        return "name resolution"
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiohttp is a dependency
        aiohttp = None  # type: ignore[assignment]
    if aiohttp is not None:
        if isinstance(exc, aiohttp.ClientConnectorError):
            code = getattr(exc.os_error, "errno", None)
            return "connect refused" if code == errno.ECONNREFUSED else "connect error"
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return "server disconnected"
        if isinstance(exc, aiohttp.ClientPayloadError):
            return "bad payload"
        if isinstance(exc, aiohttp.ClientResponseError):
            return "bad response"
        if isinstance(exc, aiohttp.InvalidURL):
            return "invalid url"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, OSError):
        return "os error"
    return type(exc).__name__


def _want_progress(progress: bool | None, requests: int | None, duration: float | None) -> bool:
    if progress is not None:
        return progress
    if not sys.stderr.isatty():
        return False
    return (requests or 0) >= _PROGRESS_MIN_REQUESTS or (duration or 0) >= _PROGRESS_MIN_SECONDS


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
                kind = _error_kind(exc)
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
        progress_ctx, reporter = _start_progress(
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
    return _collect(counts, errors, latencies, elapsed)


def _start_progress(
    done: Callable[[], int], elapsed: Callable[[], float],
    requests: int | None, duration: float | None,
) -> tuple[Any, asyncio.Task[None]]:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("sending"), BarColumn(), TextColumn("{task.fields[sent]} requests"),
        TimeElapsedColumn(), console=Console(stderr=True), transient=True,
    )
    by_time = requests is None
    task = progress.add_task("send", total=duration if by_time else requests, sent=0)
    progress.start()

    async def report() -> None:
        # A separate ticker keeps progress work off the per-request path.
        while True:
            sent = done()
            progress.update(task, completed=elapsed() if by_time else sent, sent=sent)
            await asyncio.sleep(0.1)

    return progress, asyncio.ensure_future(report())


def _collect(
    counts: Mapping[tuple[str, str, int], int], errors: Mapping[str, int],
    latencies: array[int], elapsed: float,
) -> TrafficResult:
    by_version: Counter[str] = Counter()
    by_pod: Counter[str] = Counter()
    by_status: Counter[int] = Counter()
    by_version_status: dict[str, Counter[int]] = {}
    for (version, pod, status), n in counts.items():
        by_version[version] += n
        by_pod[pod] += n
        by_status[status] += n
        by_version_status.setdefault(version, Counter())[status] += n
    error_counter = Counter(errors)
    return TrafficResult(
        total=sum(by_status.values()) + sum(error_counter.values()),
        by_version=by_version,
        by_pod=by_pod,
        by_status=by_status,
        by_version_status=by_version_status,
        errors=error_counter,
        latencies_ms=array("d", (ns / 1e6 for ns in latencies)),
        elapsed=elapsed,
    )


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
) -> TrafficResult:
    """Async :func:`send`: the same options, awaited on the caller's loop."""
    if requests is None and duration is None:
        requests = DEFAULT_REQUESTS
    _check_options(requests, duration, concurrency, rate, timeout)
    target = _join(url, path)
    sent_headers = dict(headers or {})
    show = _want_progress(progress, requests, duration)
    args = (method.upper(), target, sent_headers, body, requests, duration, concurrency,
            rate, show)
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
    run = functools.partial(
        asend, url, requests=requests, duration=duration, concurrency=concurrency,
        rate=rate, method=method, path=path, headers=headers, body=body, timeout=timeout,
        progress=progress, transport=transport,
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run(run())
    return _run_in_thread(run)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed (faster sockets), else asyncio's default."""
    if os.environ.get("TRAFFICLAB_NO_UVLOOP"):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    factory = _loop_factory()
    loop = factory() if factory is not None else asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _run_in_thread(make: Callable[[], Awaitable[_T]]) -> _T:
    """Run on a private loop in a worker thread (the caller's loop is busy: Jupyter)."""
    outcome: dict[str, Any] = {}
    started = threading.Event()

    async def main() -> _T:
        outcome["task"] = asyncio.current_task()
        outcome["loop"] = asyncio.get_running_loop()
        started.set()
        return await make()

    def target() -> None:
        try:
            outcome["value"] = _run(main())
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=target, name="trafficlab-send", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.1)
    except KeyboardInterrupt:
        # Interrupting the notebook cell stops the load instead of orphaning it.
        started.wait()
        if "loop" in outcome:
            outcome["loop"].call_soon_threadsafe(outcome["task"].cancel)
        thread.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    value: _T = outcome["value"]
    return value
