"""The HTTPS server of the lab's Kubernetes API, on a free port of 127.0.0.1.

Every request is authenticated first (401 Status otherwise, whatever the path), then its
size is checked before a byte of the body is read (413 over 3 MiB, as kube-apiserver), then
:class:`~trafficlab.apiserver.handlers.RestHandlers` answers it.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from trafficlab._http_gate import MAX_BODY_BYTES, BearerAuth, Refusal, admit_request
from trafficlab._private import new_token
from trafficlab.apiserver.handlers import Request, RestHandlers, TextBody, WatchStream
from trafficlab.apiserver.identity import make_identity
from trafficlab.apiserver.kubeconfig import write_kubeconfig
from trafficlab.apiserver.lab_paths import LabPaths
from trafficlab.apiserver.status import status
from trafficlab.controlplane.controller import Controller

__all__ = ["MAX_BODY_BYTES", "KubeApiServer"]

log = logging.getLogger("trafficlab.apiserver")

_IDLE_SECONDS = 60  # a connection silent this long (mid-handshake included) is dropped


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops the connection or fails the TLS handshake is not the lab's fault.
        log.debug("connection from %s ended badly", client_address, exc_info=True)


class KubeApiServer:
    """Serves the API in a background thread from ``start`` until ``stop``."""

    def __init__(self, controller: Controller, home: Path,
                 lab_paths: LabPaths | None = None) -> None:
        pki = home / "pki"
        pki.mkdir(mode=0o700, exist_ok=True)
        pki.chmod(0o700)
        certs = make_identity(pki)
        self.kubeconfig = home / "kubeconfig"
        self._ca_pem = certs.ca_pem
        self._token = new_token()
        self._auth = BearerAuth(self._token)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certs.cert_path, certs.key_path)
        context.set_alpn_protocols(["http/1.1"])  # no HTTP/2: Go clients then speak HTTP/1.1
        self.httpd = _Server(("127.0.0.1", 0), self._handler_class())
        # The handshake runs in the request's thread, so a stalled client blocks only itself.
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True,
                                                do_handshake_on_connect=False)
        host, port = self.httpd.server_address[:2]
        self.address = f"{host!s}:{port}"
        self._stopping = threading.Event()
        self.handlers = RestHandlers(controller, self.address, self._stopping)
        self._thread: threading.Thread | None = None
        self.lab_paths = lab_paths  # /healthz and /trafficlab/v1/...: the daemon's own paths

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    def start(self) -> None:
        """Serve in a daemon thread and write ``<home>/kubeconfig`` (0600)."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="kube-api", daemon=True)
        self._thread.start()
        write_kubeconfig(self.kubeconfig, self.url, self._ca_pem, self._token)

    def stop(self) -> None:
        """Stop serving and remove the kubeconfig: its token dies with the daemon."""
        self._stopping.set()  # open watches end
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()
        self.kubeconfig.unlink(missing_ok=True)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = _IDLE_SECONDS
            # Headers and body leave in separate writes; Nagle would hold the body ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

            def _send(self, code: int, payload: dict[str, Any]) -> None:
                self._send_bytes(code, json.dumps(payload).encode(), "application/json")

            def _send_bytes(self, code: int, data: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            def _refuse(self, code: int, reason: str, message: str) -> None:
                # The body is left unread, so this connection cannot carry another request.
                self.close_connection = True
                self._send(code, status(reason, message, code=code))

            def _dispatch(self, method: str) -> None:
                length = admit_request(self.headers, server._auth, unauthorized="Unauthorized")
                if isinstance(length, Refusal):
                    self._refuse(*length)
                    return
                parsed = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
                body = self.rfile.read(length) if length else b""
                req = Request(method, parsed.path, query, self.headers.get("Accept") or "",
                              self.headers.get("Content-Type") or "", body,
                              self.headers.get("User-Agent") or "")
                try:
                    lab = server.lab_paths.handle(req) if server.lab_paths else None
                    code, payload = lab if lab is not None else server.handlers.handle(req)
                except Exception as exc:
                    log.exception("request failed: %s %s", method, self.path)
                    code, payload = 500, status("InternalError", f"the lab daemon failed: "
                                                f"{exc!r}; see its log in the lab home")
                if isinstance(payload, WatchStream):
                    self._stream(payload)
                elif isinstance(payload, TextBody):
                    self._send_bytes(code, payload.text, "text/plain; charset=utf-8")
                else:
                    self._send(code, payload)

            def _stream(self, stream: WatchStream) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for event in stream.events:
                        line = json.dumps(event).encode() + b"\n"
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.write(b"0\r\n\r\n")
                except (OSError, ssl.SSLError):
                    self.close_connection = True  # the client went away: the watch ends

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def do_PUT(self) -> None:
                self._dispatch("PUT")

            def do_PATCH(self) -> None:
                self._dispatch("PATCH")

            def do_DELETE(self) -> None:
                self._dispatch("DELETE")

        return Handler
