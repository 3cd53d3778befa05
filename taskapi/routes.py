"""The Task API's routes: identity, task CRUD, echo, health and metrics.

No ``from __future__ import annotations`` in this module, on purpose: FastAPI
reads endpoint annotations when a route is added and resolves string annotations
against the module's globals only. The body models here are chosen per app (v1
or v2) inside `add_api_routes`, so the annotations must be the model objects
themselves, not strings.
"""

from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from taskapi.metrics import METRICS_CONTENT_TYPE, TaskApiMetrics
from taskapi.models import TaskModels
from taskapi.settings import Settings
from taskapi.store import TaskStore

__all__ = ["add_api_routes", "add_ops_routes", "describe_request"]

# Routes are added to the app itself, not through include_router(): the app's route
# list then holds the routes themselves, which the metrics middleware matches to
# name the route template of requests the router never saw (injected faults).


def add_api_routes(app: FastAPI, settings: Settings, store: TaskStore, models: TaskModels) -> None:
    """Add the routes students' traffic reaches: ``/``, ``/tasks*`` and ``/echo*``."""
    identity = {"service": "task-api", "version": settings.version, "pod": settings.pod}
    task_create = models.create
    task_patch = models.patch

    @app.get("/", summary="Which service, version and pod answered")
    async def root() -> JSONResponse:
        return JSONResponse(identity)

    @app.get("/tasks", summary="List tasks")
    async def list_tasks() -> JSONResponse:
        return JSONResponse(store.list())

    @app.post("/tasks", status_code=201, summary="Create a task")
    async def create_task(body: task_create) -> JSONResponse:  # type: ignore[valid-type]
        task = store.create(_fields(body))
        return JSONResponse(task, status_code=201, headers={"location": f"/tasks/{task['id']}"})

    @app.get("/tasks/{task_id}", summary="Get a task")
    async def get_task(task_id: int) -> JSONResponse:
        return JSONResponse(_found(task_id, store.get(task_id)))

    @app.put("/tasks/{task_id}", summary="Replace a task")
    async def replace_task(task_id: int, body: task_create) -> JSONResponse:  # type: ignore[valid-type]
        return JSONResponse(_found(task_id, store.replace(task_id, _fields(body))))

    @app.patch("/tasks/{task_id}", summary="Change some fields of a task")
    async def patch_task(task_id: int, body: task_patch) -> JSONResponse:  # type: ignore[valid-type]
        fields = _fields(body, exclude_unset=True)
        return JSONResponse(_found(task_id, store.update(task_id, fields)))

    @app.delete("/tasks/{task_id}", status_code=204, summary="Delete a task")
    async def delete_task(task_id: int) -> Response:
        if not store.delete(task_id):
            raise _not_found(task_id)
        return Response(status_code=204)

    # A Starlette route whose endpoint is an ASGI app (not a function) answers any
    # method, custom ones too; FastAPI's routes need a method list. It stays out
    # of /docs.
    echo = _Echo(settings)
    app.router.routes.append(Route("/echo", echo))
    app.router.routes.append(Route("/echo/{path:path}", echo))


def add_ops_routes(app: FastAPI, metrics: TaskApiMetrics) -> None:
    """Add liveness, readiness and metrics routes: never faulted, never counted."""

    @app.get("/healthz", summary="Liveness: the process serves HTTP")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", summary="Readiness: started and not shutting down")
    async def readyz(request: Request) -> JSONResponse:
        if getattr(request.app.state, "ready", False):
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)


class _Echo:
    """ASGI endpoint of ``/echo*``: answers with `describe_request`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse(describe_request(scope, self._settings))(scope, receive, send)


def describe_request(scope: Scope, settings: Settings) -> dict[str, Any]:
    """The echo body: the request as this process received it.

    ``path`` is the raw path (before percent-decoding), so URL rewrites by the
    gateway can be checked exactly. ``query`` and ``headers`` follow httpbin: a
    name seen once maps to a string, a repeated one to a list (query) or to the
    values joined by ", " (headers, as RFC 9110 section 5.3 allows).
    """
    raw_path: bytes | None = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    query: dict[str, str | list[str]] = {}
    query_string = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        seen = query.get(name)
        if seen is None:
            query[name] = value
        elif isinstance(seen, list):
            seen.append(value)
        else:
            query[name] = [seen, value]
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return {
        "method": scope["method"],
        "path": path,
        "query": query,
        "headers": headers,
        "version": settings.version,
        "pod": settings.pod,
    }


def _fields(body: BaseModel, *, exclude_unset: bool = False) -> dict[str, Any]:
    # Also gives mypy a typed view of the per-app body models (see module docstring).
    return body.model_dump(exclude_unset=exclude_unset)


def _found(task_id: int, task: dict[str, Any] | None) -> dict[str, Any]:
    if task is None:
        raise _not_found(task_id)
    return task


def _not_found(task_id: int) -> HTTPException:
    return HTTPException(status_code=404, detail=f"task {task_id} not found")
