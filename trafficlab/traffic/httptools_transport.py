"""The default transport: a lean keep-alive HTTP/1.1 client on asyncio and httptools.

About 3x cheaper per request than aiohttp's client (~18 against ~57 microseconds of CPU),
which is what lets one Python process keep up with wrk through Envoy on two cores
(benchmarks/bench_traffic.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit

from trafficlab.traffic.transport import (
    BadResponseError,
    InvalidURLError,
    ServerDisconnectedError,
)

__all__ = ["HttptoolsTransport"]


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

