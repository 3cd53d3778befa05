"""The lab's own non-resource paths on its Kubernetes API, authenticated like every other path.

``GET /healthz`` answers ``ok`` as kube-apiserver's does; ``GET /trafficlab/v1/status`` is the
lab contract's status document (``trafficlab status -o json``); ``POST /trafficlab/v1/shutdown``
stops the lab (``trafficlab down``). They replace the daemon's former private JSON API, so the
lab has one listener and one credential: the kubeconfig's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trafficlab.apiserver.handlers import Answer, Request, TextBody
from trafficlab.apiserver.status import status
from trafficlab.labapi import SHUTDOWN_PATH, STATUS_PATH

__all__ = ["SHUTDOWN_PATH", "STATUS_PATH", "LabPaths"]


@dataclass(frozen=True)
class LabPaths:
    """Answers the lab's paths with the daemon's ``status`` document and ``shutdown`` action."""

    status: Callable[[], dict[str, Any]]
    shutdown: Callable[[], None]

    def handle(self, req: Request) -> Answer | None:
        """The answer for one of the lab's paths; None for any other path (the REST API's)."""
        path = req.path.rstrip("/")
        if path == "/healthz":
            return 200, TextBody(b"ok")
        if path not in (STATUS_PATH, SHUTDOWN_PATH):
            return None
        wanted = "GET" if path == STATUS_PATH else "POST"
        if req.method != wanted:
            return 405, status("MethodNotAllowed", f"{path} takes {wanted} only")
        if path == STATUS_PATH:
            return 200, self.status()
        self.shutdown()
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "message": "the lab is stopping"}
