"""What the translator sees: a consistent, read-only view of the store at one revision."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trafficlab.gateway.ir import Endpoint

__all__ = ["CONTROLLER_NAMES", "ObjectKey", "Snapshot"]

# The local control plane stands in for Envoy Gateway, so it claims GatewayClasses written for
# Envoy Gateway too: that is what lets the same manifests run on kind unchanged.
CONTROLLER_NAMES = ("trafficlab.dev/gateway-controller", "gateway.envoyproxy.io/gatewayclass-controller")

Obj = dict[str, Any]


@dataclass(frozen=True, order=True)
class ObjectKey:
    """Identity of a stored object. ``namespace`` is "" for cluster-scoped kinds."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectKey:
        meta = obj.get("metadata", {})
        return cls(str(obj["kind"]), str(meta.get("namespace", "")), str(meta["name"]))


@dataclass(frozen=True)
class Snapshot:
    """The store at ``revision``, plus the facts the runtime knows and the store does not.

    - ``objects``: validated objects with defaults applied and Kubernetes metadata
      (uid, generation, resourceVersion, creationTimestamp), status included.
    - ``endpoints``: ``(namespace, service) -> {service port: ready endpoints}``; a Service
      that exists but has no ready pod maps its ports to ``()``.
    - ``bind``: ``(gateway namespace, gateway name, gateway port) -> (address, local port)``,
      where the runtime bound (or will bind) that Gateway port on this machine.
    """

    revision: int
    objects: tuple[Obj, ...] = ()
    endpoints: Mapping[tuple[str, str], Mapping[int, tuple[Endpoint, ...]]] = field(default_factory=dict)
    bind: Mapping[tuple[str, str, int], tuple[str, int]] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o.get("kind") == kind]

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.index.get((kind, namespace, name))

    @functools.cached_property
    def index(self) -> dict[tuple[str, str, str], Obj]:
        """``(kind, namespace, name) -> object``; read only (the translator shares it)."""
        # Built once per snapshot: status writing looks up every object, and a scan per
        # lookup made a patch among 5,000 routes cost seconds.
        index: dict[tuple[str, str, str], Obj] = {}
        for obj in self.objects:
            meta = obj.get("metadata", {})
            index.setdefault((str(obj.get("kind")), str(meta.get("namespace", "")),
                              str(meta.get("name"))), obj)
        return index
