"""What a transport is, the failures it raises, and the short names they are counted by.

:func:`~trafficlab.traffic.send` sends each request through a :class:`Transport`; the
default one is :class:`~trafficlab.traffic.httptools_transport.HttptoolsTransport`, the
fallback :class:`~trafficlab.traffic.aiohttp_transport.AiohttpTransport`. Tests and
notebooks may pass any object with the same ``request`` coroutine.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Mapping
from typing import Protocol

__all__ = [
    "BadResponseError",
    "InvalidURLError",
    "ServerDisconnectedError",
    "Transport",
    "error_kind",
]


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



def error_kind(exc: BaseException) -> str:
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
