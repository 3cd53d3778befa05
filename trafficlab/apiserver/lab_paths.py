"""The lab's own non-resource paths on its Kubernetes API, authenticated like every other path.

``GET /healthz`` answers ``ok`` as kube-apiserver's does; ``GET /trafficlab/v1/status`` is the
lab contract's status document (``trafficlab status -o json``); ``GET /trafficlab/v1/reconciled``
answers once every write made before it is served (``?timeoutSeconds=``, default 30), the
barrier behind ``trafficlab apply``'s "served" semantics; ``POST /trafficlab/v1/shutdown``
stops the lab (``trafficlab down``). They replace the daemon's former private JSON API, so the
lab has one listener and one credential: the kubeconfig's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trafficlab.apiserver.handlers import Answer, Request, TextBody
from trafficlab.apiserver.status import status
from trafficlab.controlplane.controller import Unserved
from trafficlab.labapi import RECONCILED_PATH, SHUTDOWN_PATH, STATUS_PATH

__all__ = ["RECONCILED_PATH", "SHUTDOWN_PATH", "STATUS_PATH", "LabPaths"]

_MAX_WAIT_S = 60.0


@dataclass(frozen=True)
class LabPaths:
    """Answers the lab's paths with the daemon's ``status`` document and ``shutdown`` action."""

    status: Callable[[], dict[str, Any]]
    shutdown: Callable[[], None]
    # None once every write made before the call is served, else why not (Controller.serve_barrier).
    serve_barrier: Callable[[float], Unserved | None]

    def handle(self, req: Request) -> Answer | None:
        """The answer for one of the lab's paths; None for any other path (the REST API's)."""
        path = req.path.rstrip("/")
        if path == "/healthz":
            return 200, TextBody(b"ok")
        if path not in (STATUS_PATH, SHUTDOWN_PATH, RECONCILED_PATH):
            return None
        wanted = "POST" if path == SHUTDOWN_PATH else "GET"
        if req.method != wanted:
            return 405, status("MethodNotAllowed", f"{path} takes {wanted} only")
        if path == STATUS_PATH:
            return 200, self.status()
        if path == RECONCILED_PATH:
            return self._reconciled(req)
        self.shutdown()
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "message": "the lab is stopping"}

    def _reconciled(self, req: Request) -> Answer:
        raw = req.query.get("timeoutSeconds", "30")
        try:
            timeout = float(raw)
        except ValueError:
            timeout = -1.0
        if not 0 <= timeout <= _MAX_WAIT_S:
            return 400, status("BadRequest", f"timeoutSeconds must be a number of seconds from 0 "
                               f"to {_MAX_WAIT_S:.0f}, not {raw!r}")
        problem = self.serve_barrier(timeout)
        if problem is None:
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                         "status": "Success", "message": "every write is served"}
        if problem.failed:
            return 500, status("InternalError", problem.reason)
        return 504, status("Timeout", problem.reason)
