"""A small Kubernetes API client for the kind backend, on the ``kubernetes`` package's ApiClient.

The ApiClient does what is hard to get right (kubeconfig, client certificates, tokens, TLS);
this module builds the REST paths of the few kinds the lab uses and turns API ``Status``
failures into TrafficLab's errors, with the API server's own, kubectl-like, messages.

The ``kubernetes`` package is imported only when a client is made, so the rest of TrafficLab
imports without it: ``pip install 'trafficlab[kind]'``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trafficlab._errors import (
    AlreadyExistsError,
    BackendError,
    ConflictError,
    LabNotRunningError,
    NotFoundError,
    TrafficLabError,
    ValidationError,
)
from trafficlab.backends._kind_plan import FIELD_MANAGER
from trafficlab.resources import KINDS

__all__ = ["APPLY_PATCH", "FIELD_MANAGER_QUERY", "JSON_PATCH", "MERGE_PATCH", "STRATEGIC_PATCH",
           "KubeClient", "Resource", "error_from_status", "resource_for"]

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
                            "Recreate the lab's credentials with 'trafficlab up --backend kind'")
    return BackendError(f"the cluster's API server answered {code} {reason}: {message}")


class KubeClient:
    """JSON over the Kubernetes REST API with the credentials of a kubeconfig file."""

    def __init__(self, kubeconfig: Path, context: str | None = None, *,
                 timeout: float = 30.0) -> None:
        try:
            from kubernetes import config as kube_config  # heavy; only the kind backend needs it
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise BackendError("the kind backend needs the 'kubernetes' package: "
                               "pip install 'trafficlab[kind]'") from exc
        if not kubeconfig.exists():
            raise LabNotRunningError(f"no kubeconfig at {kubeconfig}: start the kind lab with "
                                     "'trafficlab up --backend kind'")
        try:
            self._api: Any = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig), context=context, persist_config=False)
        except Exception as exc:  # the loader raises ConfigException and plain errors alike
            raise BackendError(f"cannot read the kubeconfig {kubeconfig}: {exc}") from exc
        self.timeout = timeout
        self.host = str(self._api.configuration.host)
        self.warnings: list[str] = []

    def close(self) -> None:
        """Release the connection pool."""
        self._api.close()

    def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                body: Any = None, content_type: str | None = None, kind: str = "",
                namespace: str | None = None, name: str | None = None) -> Any:
        """One API call; the decoded JSON answer, or a TrafficLab error for a failure status."""
        import urllib3

        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        elif body is not None:
            headers["Content-Type"] = "application/json"
        method, url, headers, body, _ = self._api.param_serialize(
            method=method, resource_path=path, query_params=list((query or {}).items()),
            header_params=headers, body=body, auth_settings=["BearerToken"])
        try:
            response = self._api.call_api(method, url, header_params=headers, body=body,
                                          _request_timeout=self.timeout)
            data = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise LabNotRunningError(
                f"the kind cluster's API server at {self.host} does not answer ({exc}); is the "
                "cluster running ('kind get clusters', 'docker ps')? Start it with "
                "'trafficlab up --backend kind'") from exc
        self._collect_warnings(response.headers)
        if not 200 <= response.status < 300:
            raise error_from_status(response.status, data, kind=kind, namespace=namespace,
                                    name=name)
        return json.loads(data) if data else None

    def _collect_warnings(self, headers: Any) -> None:
        # Deprecation and validation warnings arrive as "Warning: 299 - "text"" headers.
        values = headers.getlist("Warning") if hasattr(headers, "getlist") else []
        for value in values:
            match = re.match(r'\s*\d{3}\s+\S+\s+"(.*)"\s*$', value)
            # The text is a quoted string (RFC 7234 warn-text): drop the quoting of quotes.
            self.warnings.append(match.group(1).replace('\\"', '"') if match else value)
