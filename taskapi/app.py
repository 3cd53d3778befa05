"""The Task API app factory.

Example:
    >>> from fastapi.testclient import TestClient
    >>> app = create_app(Settings(version="v2", pod="demo-0"))
    >>> TestClient(app).get("/").headers["x-version"]
    'v2'

Run it with ``python -m taskapi --port 8000`` (see `taskapi.__main__`), or as a
uvicorn factory: ``uvicorn --factory taskapi.app:create_app``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from taskapi.faults import FaultInjector
from taskapi.metrics import TaskApiMetrics
from taskapi.middleware import TaskApiMiddleware
from taskapi.models import task_models
from taskapi.routes import add_api_routes, add_ops_routes
from taskapi.settings import Settings
from taskapi.store import TaskStore

__all__ = ["create_app"]

# uvicorn configures this logger (format, level), so the line lands in the pod's log
# beside uvicorn's own; a logger of our own would have no handler.
_log = logging.getLogger("uvicorn.error")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build one Task API app; ``settings`` default to `Settings.from_env()`.

    Each call makes a fresh store, fault RNG and metrics registry, so several apps
    (v1 and v2, say) can live in one process. Raises `SettingsError` on bad env.
    """
    if settings is None:
        settings = Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.ready = True
        _log.info("task-api %s ready as pod %s", settings.version, settings.pod)
        yield
        # Fail readiness while uvicorn drains, so a prober stops sending traffic.
        app.state.ready = False

    app = FastAPI(
        title="Task API",
        version=settings.version,
        description="Sample service of TrafficLab (progressive delivery lab).",
        lifespan=lifespan,
        # "/tasks/" is a plain 404 rather than a 307 to "/tasks": a redirect would
        # hide what path a gateway rewrite really produced.
        redirect_slashes=False,
    )
    app.state.ready = False
    app.state.settings = settings
    metrics = TaskApiMetrics(version=settings.version, pod=settings.pod)
    app.state.metrics = metrics
    add_ops_routes(app, metrics)
    add_api_routes(app, settings, TaskStore(), task_models(settings.has_priority))
    app.add_middleware(
        TaskApiMiddleware,
        version=settings.version,
        pod=settings.pod,
        faults=FaultInjector(
            error_rate=settings.error_rate,
            latency_ms=settings.latency_ms,
            latency_jitter_ms=settings.latency_jitter_ms,
            seed=settings.fault_seed,
        ),
        metrics=metrics,
        routes=app.router.routes,
    )

    identity = {"x-version": settings.version, "x-pod": settings.pod}

    async def unhandled_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette answers an unhandled exception outside every user middleware,
        # so this answer must carry the identity headers itself.
        return JSONResponse(
            {"error": "internal server error", "version": settings.version},
            status_code=500,
            headers=identity,
        )

    app.add_exception_handler(Exception, unhandled_error)
    return app
