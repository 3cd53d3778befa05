"""The ASGI middleware that every Task API request passes through.

It does three jobs that must see every answer, including the 404, 405 and 422
answers that FastAPI makes without calling an endpoint:

* stamps ``x-version`` and ``x-pod`` on every response (the lab tells a Task API
  answer from a gateway-made 404/500 by these headers);
* injects faults (delay, then maybe a 500) on ``/``, ``/tasks*`` and ``/echo*``;
* counts requests by route template and records their duration.

It is a plain ASGI middleware, not Starlette's ``BaseHTTPMiddleware``, which runs
the app in a separate task per request and costs throughput.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from time import perf_counter

import anyio
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskapi.faults import FaultInjector
from taskapi.metrics import UNMATCHED_ROUTE, TaskApiMetrics

__all__ = ["UNCOUNTED_PATHS", "TaskApiMiddleware", "identity_headers"]

UNCOUNTED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Health and metrics paths: never faulted, never counted in requests_total."""

_IDENTITY_NAMES = (b"x-version", b"x-pod")


def identity_headers(version: str, pod: str) -> list[tuple[bytes, bytes]]:
    """The raw ``x-version`` and ``x-pod`` headers (values are validated ASCII)."""
    return [(b"x-version", version.encode("ascii")), (b"x-pod", pod.encode("ascii"))]


class TaskApiMiddleware:
    """Identity headers, fault injection and request metrics for one app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        version: str,
        pod: str,
        faults: FaultInjector,
        metrics: TaskApiMetrics,
        routes: Sequence[BaseRoute],
    ) -> None:
        """Wrap ``app``; ``routes`` (the app's live route list) names faulted requests."""
        self.app = app
        self._identity = identity_headers(version, pod)
        self._faults = faults
        self._metrics = metrics
        self._routes = routes
        self._fault_body = json.dumps({"error": "injected fault", "version": version}).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] != "http":  # lifespan events pass straight through
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in UNCOUNTED_PATHS:
            await self.app(scope, receive, self._stamping(send))
            return

        started = perf_counter()
        status = 500  # stays 500 if the app raises before it starts an answer
        route: str | None = None

        async def send_stamped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = self._stamp(message)
            await send(message)

        try:
            if self._faults.applies_to(path):
                delay = self._faults.delay_seconds()
                if delay > 0:
                    await anyio.sleep(delay)
                if self._faults.should_fail():
                    # Answer before routing, so the endpoint never runs, as when a
                    # real dependency fails; name the route for the metrics anyway.
                    route = self._match_route(scope)
                    await self._send_fault(send_stamped)
                    return
            await self.app(scope, receive, send_stamped)
        finally:
            if route is None:
                # FastAPI stores a matched APIRoute (full or method-only match) in
                # the scope; plain Starlette routes (echo) and unknown paths are
                # matched here.
                route = getattr(scope.get("route"), "path", None) or self._match_route(scope)
            self._metrics.observe(scope["method"], route, status, perf_counter() - started)

    def _stamping(self, send: Send) -> Send:
        async def send_stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = self._stamp(message)
            await send(message)

        return send_stamped

    def _stamp(self, message: Message) -> Message:
        headers = [
            (name, value)
            for name, value in message.get("headers", ())
            if name.lower() not in _IDENTITY_NAMES
        ]
        headers.extend(self._identity)
        return {**message, "headers": headers}

    def _match_route(self, scope: Scope) -> str:
        """The template of the first route matching path (any method), or "unmatched"."""
        for candidate in self._routes:
            match, _ = candidate.matches(scope)
            if match is not Match.NONE:
                return getattr(candidate, "path", None) or UNMATCHED_ROUTE
        return UNMATCHED_ROUTE

    async def _send_fault(self, send: Send) -> None:
        body = self._fault_body
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
