"""One Kubernetes API client for both backends: the local lab's API server and kind's.

It reads a kubeconfig (the context's server, CA, and a bearer token or client certificate),
speaks JSON over HTTPS on a kept-alive connection, builds the REST paths of the kinds the lab
uses and turns API ``Status`` failures into TrafficLab's errors, with the API server's own,
kubectl-like, messages. What differs between the backends is only how their cluster starts.

It does not import the ``kubernetes`` package: importing it costs 1.5 s or more on the course
machines (every model class loads), which every ``trafficlab get`` would pay. The kubeconfigs
the lab writes and kind writes need only what is read here; one that needs more (an exec
credential plugin, say) is refused with a message saying so.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import yaml

from trafficlab._errors import (
    AlreadyExistsError,
    BackendError,
    ConflictError,
    LabNotRunningError,
    NotFoundError,
    TrafficLabError,
    ValidationError,
)
from trafficlab.resources import KINDS

__all__ = ["APPLY_PATCH", "FIELD_MANAGER", "FIELD_MANAGER_QUERY", "JSON_PATCH", "MERGE_PATCH",
           "STRATEGIC_PATCH", "KubeClient", "Resource", "error_from_status", "resource_for"]

FIELD_MANAGER = "trafficlab"  # the lab's own writes, as managedFields name them
APPLY_PATCH = "application/apply-patch+yaml"          # server-side apply (KEP-555)
MERGE_PATCH = "application/merge-patch+json"          # RFC 7386
JSON_PATCH = "application/json-patch+json"            # RFC 6902
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
# Every write names the lab as its field manager, and asks the API server to reject unknown
# fields instead of dropping them silently (kubectl's --validate=strict, the default since 1.27).
FIELD_MANAGER_QUERY = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict"}


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the API: group, version, plural, and whether it is namespaced."""

    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified_singular(self) -> str:
        """kubectl's name for it in ``deployment.apps/web configured``."""
        return f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()

    @property
    def custom(self) -> bool:
        """Served from a CustomResourceDefinition (no strategic merge patch there)."""
        return self.group.endswith(".k8s.io") and self.group not in _BUILT_IN_GROUPS

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """``/api/v1/namespaces/NS/services/NAME`` and the like; no namespace lists them all."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


_BUILT_IN_GROUPS = {"rbac.authorization.k8s.io", "apiextensions.k8s.io", "networking.k8s.io"}

# Kinds the cluster's own manifests use besides the lab's kinds (cluster/kind/prometheus.yaml).
_EXTRA = {
    r.kind: r for r in (
        Resource("Pod", "", "v1", "pods", True),
        Resource("ConfigMap", "", "v1", "configmaps", True),
        Resource("ServiceAccount", "", "v1", "serviceaccounts", True),
        Resource("ClusterRole", "rbac.authorization.k8s.io", "v1", "clusterroles", False),
        Resource("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", "clusterrolebindings",
                 False),
    )
}


def resource_for(kind: str, api_version: str | None = None) -> Resource:
    """The REST resource of ``kind`` (at ``api_version``, else the preferred version)."""
    info = KINDS.get(kind)
    if info is not None:
        version = info.versions[0]
        if api_version and api_version in info.api_versions:
            version = api_version.rpartition("/")[2]
        return Resource(info.kind, info.group, version, info.plural, info.namespaced)
    if kind in _EXTRA:
        return _EXTRA[kind]
    known = sorted([*KINDS, *_EXTRA])
    raise ValidationError(kind or "(object)", None, None, "kind",
                          f'unsupported kind "{kind}": the lab handles {", ".join(known)}')


def error_from_status(code: int, body: bytes, *, kind: str = "", namespace: str | None = None,
                      name: str | None = None) -> TrafficLabError:
    """A TrafficLab error for a failed API call, from its ``Status`` body (metav1.Status).

    422 Invalid becomes a ValidationError naming the first field of ``details.causes``; the
    message is the API server's, which is what kubectl prints after "Error from server".
    """
    try:
        status = json.loads(body)
    except ValueError:
        status = {}
    if not isinstance(status, dict) or status.get("kind") != "Status":
        status = {"message": body.decode(errors="replace").strip() or f"HTTP {code}"}
    message = str(status.get("message") or f"HTTP {code}")
    reason = str(status.get("reason") or "")
    details = status.get("details") or {}
    if code == 422 or reason == "Invalid":
        causes = [c for c in details.get("causes") or [] if isinstance(c, dict)]
        kind = kind or str(details.get("kind") or "")
        name = name or details.get("name")
        if causes:
            first, rest = causes[0], causes[1:]
            problem = str(first.get("message", ""))
            if rest:
                problem += "; also " + "; ".join(f"{c.get('field', '')}: {c.get('message', '')}"
                                                 for c in rest)
            return ValidationError(kind, namespace, name, str(first.get("field", "")), problem)
        return ValidationError(kind, namespace, name, "", message)
    if code == 400 or code == 415:
        # Strict field validation ("unknown field") and undecodable bodies come back as 400.
        field = ""
        match = re.search(r'unknown field "([^"]+)"', message)
        if match:
            field = match.group(1)
        return ValidationError(kind, namespace, name, field, message)
    if code == 404:
        return NotFoundError(message)
    if code == 409:
        return AlreadyExistsError(message) if reason == "AlreadyExists" else ConflictError(message)
    if code in (401, 403):
        return BackendError(f"the cluster refused the request ({reason or code}): {message}. "
                            "Check that KUBECONFIG is this lab's kubeconfig; 'trafficlab down' then "
                            "'trafficlab up' makes new credentials")
    return BackendError(f"the cluster's API server answered {code} {reason}: {message}")


_UNREACHABLE = "is the lab running? Start it with 'trafficlab up'"


class KubeClient:
    """JSON over the Kubernetes REST API with the credentials of a kubeconfig file.

    ``unreachable`` is what to tell the user when the server does not answer (each backend
    knows how its cluster is started again).
    """

    def __init__(self, kubeconfig: Path, context: str | None = None, *,
                 timeout: float = 30.0, unreachable: str = _UNREACHABLE) -> None:
        if not kubeconfig.exists():
            raise LabNotRunningError(f"no kubeconfig at {kubeconfig}: start the lab with "
                                     "'trafficlab up'")
        try:
            server, self._ssl, self._headers = _read_kubeconfig(kubeconfig, context)
        except (OSError, ValueError, KeyError, TypeError, ssl.SSLError) as exc:
            raise BackendError(f"cannot read the kubeconfig {kubeconfig}: {exc}") from exc
        self.timeout = timeout
        self.host = server.rstrip("/")
        parts = urlsplit(self.host)
        self._address = (parts.hostname or "127.0.0.1",
                         parts.port or (443 if parts.scheme == "https" else 80))
        self._prefix = parts.path  # a server URL may carry a path (a proxy's, say)
        self._unreachable = unreachable
        # One kept-alive connection (http.client: urllib3 alone costs 40 ms to import, paid by
        # every command); the lock makes the client safe to share between threads.
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self.warnings: list[str] = []
        self.last_status = 0  # of the last answer: 415 tells a server without server-side apply

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                body: Any = None, content_type: str | None = None, kind: str = "",
                namespace: str | None = None, name: str | None = None) -> Any:
        """One API call; the decoded JSON (or text) answer, or a TrafficLab error for a failure."""
        headers = {"Accept": "application/json", **self._headers}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
            data = json.dumps(body).encode()
        target = self._prefix + path + (("?" + urlencode(query)) if query else "")
        with self._lock:
            try:
                status, answer, payload = self._exchange(method, target, data, headers)
            except (OSError, http.client.HTTPException) as exc:
                raise LabNotRunningError(f"the API server at {self.host} does not answer "
                                         f"({exc}); " + self._unreachable) from exc
            self.last_status = status
        self.warnings.extend(_warnings(answer.get_all("Warning") or []))
        if not 200 <= status < 300:
            raise error_from_status(status, payload, kind=kind, namespace=namespace, name=name)
        if not payload:
            return None
        if "json" not in (answer.get("Content-Type") or "application/json"):
            return payload.decode(errors="replace")  # /healthz, pods/X/log: text
        return json.loads(payload)

    def _exchange(self, method: str, target: str, data: bytes | None, headers: dict[str, str]
                  ) -> tuple[int, Any, bytes]:
        """Send on the kept connection; a connection the server closed meanwhile is made again
        once (the request never reached it)."""
        for attempt in (1, 2):
            reused = self._conn is not None
            if self._conn is None:
                host, port = self._address
                self._conn = (http.client.HTTPSConnection(host, port, timeout=self.timeout,
                                                          context=self._ssl)
                              if self._ssl is not None else
                              http.client.HTTPConnection(host, port, timeout=self.timeout))
            self._conn.timeout = self.timeout
            if self._conn.sock is not None:
                self._conn.sock.settimeout(self.timeout)
            try:
                self._conn.request(method, target, body=data, headers=headers)
                response = self._conn.getresponse()
                payload = response.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self._conn.close()
                self._conn = None
                if reused and attempt == 1:
                    continue
                raise
            except BaseException:
                self._conn.close()
                self._conn = None
                raise
            if response.will_close:
                self._conn.close()
                self._conn = None
            return response.status, response.msg, payload
        raise AssertionError("unreachable")  # pragma: no cover

def _warnings(values: list[str]) -> list[str]:
    """The texts of ``Warning: 299 - "text"`` headers (deprecation and validation warnings)."""
    out = []
    for value in values:
        match = re.match(r'\s*\d{3}\s+\S+\s+"(.*)"\s*$', value)
        # The text is a quoted string (RFC 7234 warn-text): drop the quoting of quotes.
        out.append(match.group(1).replace('\\"', '"') if match else value)
    return out


def _read_kubeconfig(path: Path, context: str | None
                     ) -> tuple[str, ssl.SSLContext | None, dict[str, str]]:
    """The server URL, the TLS context and the auth header of a kubeconfig's context."""
    config = yaml.safe_load(path.read_text()) or {}
    name = context or config.get("current-context")

    def entry(section: str, wanted: str | None) -> dict[str, Any]:
        for item in config.get(section) or []:
            if item.get("name") == wanted:
                return dict(item.get(section.rstrip("s")) or {})
        raise ValueError(f'no {section.rstrip("s")} named "{wanted}"')

    ctx = entry("contexts", name)
    cluster = entry("clusters", ctx.get("cluster"))
    user = entry("users", ctx.get("user"))
    server = str(cluster["server"])
    unsupported = sorted({"exec", "auth-provider", "username", "tokenFile"} & set(user))
    if unsupported:
        raise ValueError(f'the user of context "{name}" authenticates with {unsupported[0]}, '
                         "which TrafficLab's client does not support: use a token or a client "
                         "certificate")
    headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
    if not server.startswith("https://"):
        return server, None, headers
    base = path.parent
    ssl_context = ssl.create_default_context(
        cadata=_pem(cluster, "certificate-authority", base).decode() or None)
    if cluster.get("insecure-skip-tls-verify"):
        ssl_context.check_hostname = False
        ssl_context.verify_mode = ssl.CERT_NONE
    cert, key = _pem(user, "client-certificate", base), _pem(user, "client-key", base)
    if cert and key:
        # ssl takes a certificate and key only from files: a private, short-lived copy.
        with tempfile.TemporaryDirectory(prefix="trafficlab-tls-") as tmp:
            pem = Path(tmp) / "client.pem"
            pem.touch(mode=0o600)
            pem.write_bytes(cert + b"\n" + key)
            ssl_context.load_cert_chain(pem)
    return server, ssl_context, headers


def _pem(section: dict[str, Any], field: str, base: Path) -> bytes:
    """``field-data`` (base64) or the file ``field`` names (relative to the kubeconfig)."""
    if section.get(f"{field}-data"):
        return base64.b64decode(section[f"{field}-data"])
    if section.get(field):
        return (base / str(section[field])).read_bytes()
    return b""
