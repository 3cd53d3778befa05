"""The fallback transport on aiohttp: for ``https://`` URLs and when httptools is missing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["AiohttpTransport"]


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
