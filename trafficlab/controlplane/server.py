"""The lab daemon's API: a small JSON-over-HTTP server on 127.0.0.1, like a tiny apiserver.

The CLI and ``trafficlab.Lab`` talk to it; it hands every request to the Controller.
Every request, ``/healthz`` included, must carry the lab's bearer token (kept in the
owner-only ``lab.json``): any local user can reach a loopback port, so the port alone
proves nothing. As kube-apiserver does, a body over 3 MiB is refused before it is read.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from trafficlab._errors import NotFoundError, TrafficLabError
from trafficlab._http_gate import BearerAuth, Refusal, admit_request
from trafficlab.controlplane.controller import Controller, ReconcileReport
from trafficlab.controlplane.snapshot import ObjectKey
from trafficlab.controlplane.store import Change
from trafficlab.resources import KINDS

__all__ = ["LabServer"]

log = logging.getLogger("trafficlab.server")



def _changes(changes: list[Change], dry_run: bool) -> list[dict[str, Any]]:
    return [{"kind": c.key.kind, "namespace": c.key.namespace, "name": c.key.name,
             "action": c.action, "text": c.describe(dry_run)} for c in changes]


def _report(report: ReconcileReport | None) -> dict[str, Any]:
    if report is None:
        return {"warnings": [], "error": None, "seconds": 0.0}
    return {"warnings": list(report.warnings), "error": report.error,
            "seconds": report.seconds, "revision": report.revision}


def _key(body: dict[str, Any]) -> ObjectKey:
    kind = str(body["kind"])
    namespaced = KINDS[kind].namespaced
    return ObjectKey(kind, str(body.get("namespace") or "default") if namespaced else "",
                     str(body["name"]))


class LabServer:
    """Serves the lab API until ``shutdown`` is called (by a request or a signal)."""

    def __init__(self, controller: Controller, status: Any, token: str) -> None:
        self.controller = controller
        self._status = status  # callable returning the contract's status dict
        self.auth = BearerAuth(token)
        self.stopped = threading.Event()
        handler = self._handler_class()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        self.stopped.set()
        threading.Thread(target=self.httpd.shutdown, daemon=True).start()

    # -- routes ------------------------------------------------------------------------
    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Any:
        ctl = self.controller
        if (method, path) == ("GET", "/healthz"):
            return {"ok": True}
        if (method, path) == ("GET", "/status"):
            return self._status()
        if (method, path) == ("GET", "/objects"):
            return self._get(query)
        if (method, path) == ("GET", "/pods"):
            ns = query.get("namespace")
            return {"items": [p.to_object() for p in ctl.pods.pods()
                              if ns is None or p.namespace == ns]}
        if (method, path) == ("POST", "/apply"):
            dry = bool(body.get("dryRun"))
            changes, report = ctl.apply(body["objects"], dry_run=dry,
                                        namespace=body.get("namespace") or "default")
            return {"changes": _changes(changes, dry), **_report(report)}
        if (method, path) == ("POST", "/patch"):
            dry = bool(body.get("dryRun"))
            change, report = ctl.patch(_key(body), body["patch"], body.get("type", "merge"),
                                       dry_run=dry)
            return {"changes": _changes([change], dry), **_report(report)}
        if (method, path) == ("POST", "/delete"):
            dry = bool(body.get("dryRun"))
            keys = [_key(ref) for ref in body["refs"]]
            changes, report = ctl.delete(keys, dry_run=dry,
                                         ignore_not_found=bool(body.get("ignoreNotFound")))
            return {"changes": _changes(changes, dry), **_report(report)}
        if (method, path) == ("POST", "/reconcile"):
            return _report(ctl.reconcile())
        if (method, path) == ("POST", "/shutdown"):
            self.shutdown()
            return {"ok": True}
        raise NotFoundError(f"no such API endpoint: {method} {path}")


    def _get(self, query: dict[str, str]) -> dict[str, Any]:
        kind = query["kind"]
        store = self.controller.store
        ns = query.get("namespace")
        if not KINDS[kind].namespaced:
            ns = None
        if query.get("name"):
            return {"items": [store.get(ObjectKey(kind, ns or "", query["name"]))]}
        return {"items": store.items(kind, None if query.get("allNamespaces") else ns)}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

            def _refuse(self, code: int, reason: str, message: str) -> None:
                # The body (if any) is left unread, so the connection cannot be reused.
                self.close_connection = True
                self._send(code, {"ok": False, "error": {
                    "type": "TrafficLabError", "reason": reason, "message": message}})

            def _dispatch(self, method: str) -> None:
                length = admit_request(self.headers, server.auth, unauthorized=(
                    "this lab's API needs its credential (only the user who started the lab "
                    "holds it)"))
                if isinstance(length, Refusal):
                    self._refuse(*length)
                    return
                parsed = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                    result = server.route(method, parsed.path, query, body)
                    self._send(200, {"ok": True, "result": result})
                except TrafficLabError as exc:
                    code = {"NotFound": 404, "AlreadyExists": 409, "Conflict": 409,
                            "Invalid": 422}.get(exc.reason, 500)
                    self._send(code, {"ok": False, "error": exc.to_dict()})
                except (KeyError, ValueError, TypeError) as exc:
                    log.exception("bad request")
                    self._send(400, {"ok": False, "error": {
                        "type": "TrafficLabError", "reason": "BadRequest",
                        "message": f"bad request to the lab API: {exc!r}"}})
                except Exception as exc:
                    log.exception("request failed")
                    self._send(500, {"ok": False, "error": {
                        "type": "TrafficLabError", "reason": "InternalError",
                        "message": f"the lab daemon failed: {exc!r}; see its log in the lab home"}})

            def _send(self, code: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if self.close_connection:
                    self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

        return Handler
