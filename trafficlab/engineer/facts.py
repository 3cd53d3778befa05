"""What the traffic-engineer tools know about the lab: its fixed names, and its current objects.

Two sources, same shape. Without a running lab the facts come from the manifests in
``cluster/manifests`` (the baseline plus the optional workloads blue, green and premium); with a
running lab they come from the lab itself, so a Service a student deleted or a Gateway a student
changed is seen as it is. Either way the generator and reviewer never touch the lab.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trafficlab.manifests import load_manifests, manifests_dir

__all__ = [
    "BETA_HEADER",
    "DEFAULT_GATEWAY",
    "DEFAULT_LISTENER",
    "DEFAULT_NAMESPACE",
    "DEFAULT_ROUTE",
    "FIXED_SERVICES",
    "KNOWN_HEADERS",
    "PREMIUM_HEADER",
    "SERVICE_PORT",
    "TASK_API_PATHS",
    "LabFacts",
    "ListenerFact",
    "baseline_facts",
    "lab_facts",
    "load_facts",
]

Obj = dict[str, Any]

# The names DESIGN.md fixes ("Names the lab fixes").
DEFAULT_NAMESPACE = "default"
DEFAULT_GATEWAY = "task-api-gateway"
DEFAULT_LISTENER = "http"
DEFAULT_ROUTE = "task-api"
SERVICE_PORT = 80
FIXED_SERVICES = ("task-api-v1", "task-api-v2", "task-api-blue", "task-api-green", "task-api-premium")
BETA_HEADER = ("x-user-type", "beta")
PREMIUM_HEADER = ("x-user-tier", "premium")
KNOWN_HEADERS: Mapping[str, str] = dict((BETA_HEADER, PREMIUM_HEADER))
# The Task API's resources (taskapi/routes.py): a route for it must reach these.
TASK_API_PATHS = ("/tasks", "/tasks/1")
# Paths the Task API also serves that a rule may target on purpose (identity and operations).
TASK_API_OTHER_PATHS = ("/", "/healthz", "/readyz", "/metrics")

# Routes from the manifests are older than anything a student applies: precedence breaks ties
# between routes by creation time (oldest first), so they get a timestamp in the past.
_BASELINE_CREATED = "2000-01-01T00:00:00Z"


@dataclass(frozen=True)
class ListenerFact:
    """One listener of one Gateway, reduced to what route attachment looks at."""

    namespace: str
    gateway: str
    name: str
    port: int
    protocol: str = "HTTP"
    hostname: str | None = None
    allowed_from: str = "Same"


@dataclass(frozen=True)
class LabFacts:
    """The lab's objects as the reviewer sees them.

    ``objects`` are plain Kubernetes objects (status removed); ``source`` says where they came
    from, for messages ("the baseline manifests" or "the running lab in /path").
    """

    objects: tuple[Obj, ...]
    source: str
    running: bool = False
    workload_files: Mapping[str, str] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Obj]:
        """Every object of ``kind``."""
        return [o for o in self.objects if o.get("kind") == kind]

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        """One object, or None."""
        for obj in self.of_kind(kind):
            meta = obj.get("metadata") or {}
            if meta.get("name") == name and (meta.get("namespace") or "") == namespace:
                return copy.deepcopy(obj)
        return None

    def service_ports(self, namespace: str, name: str) -> tuple[int, ...] | None:
        """The ports of a Service, or None when there is no such Service."""
        svc = self.get("Service", namespace, name)
        if svc is None:
            return None
        ports = (svc.get("spec") or {}).get("ports") or []
        return tuple(int(p["port"]) for p in ports if isinstance(p, dict) and "port" in p)

    def service_names(self, namespace: str) -> list[str]:
        """Names of the Services in ``namespace``."""
        return sorted(str(s["metadata"]["name"]) for s in self.of_kind("Service")
                      if (s.get("metadata") or {}).get("namespace") == namespace)

    @property
    def listeners(self) -> tuple[ListenerFact, ...]:
        """Every listener of every Gateway."""
        out: list[ListenerFact] = []
        for gw in self.of_kind("Gateway"):
            meta = gw.get("metadata") or {}
            for item in (gw.get("spec") or {}).get("listeners") or []:
                origin = (((item.get("allowedRoutes") or {}).get("namespaces") or {})
                          .get("from", "Same"))
                out.append(ListenerFact(
                    namespace=str(meta.get("namespace") or DEFAULT_NAMESPACE),
                    gateway=str(meta.get("name")), name=str(item.get("name")),
                    port=int(item.get("port", 0)), protocol=str(item.get("protocol", "HTTP")),
                    hostname=item.get("hostname"), allowed_from=str(origin)))
        return tuple(out)

    @property
    def routes(self) -> list[Obj]:
        """The HTTPRoutes in the lab (or in the baseline)."""
        return self.of_kind("HTTPRoute")

    def with_objects(self, extra: Iterable[Obj]) -> LabFacts:
        """These facts plus objects a reviewed file brings along (a Service for a new version)."""
        return LabFacts(objects=self.objects + tuple(copy.deepcopy(o) for o in extra),
                        source=self.source, running=self.running,
                        workload_files=self.workload_files)


def _strip(obj: Obj) -> Obj:
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k != "status"}
    meta = out.setdefault("metadata", {})
    if obj.get("kind") not in ("Namespace", "GatewayClass"):
        meta.setdefault("namespace", DEFAULT_NAMESPACE)
    return out


def baseline_facts(root: Path | None = None) -> LabFacts:
    """Facts from ``cluster/manifests``: the baseline plus the workloads of the lab's fixed names.

    Other workloads there (fault-injected variants, a v3) are not part of the lab until someone
    applies them; their files are remembered (``workload_files``) so a finding can say which file
    deploys a missing Service. The first definition of an object wins (the baseline's v2 over a
    variant's).
    """
    base = root or manifests_dir()
    objects: list[Obj] = []
    seen: set[tuple[str, str, str]] = set()
    workloads: dict[str, str] = {}
    repo = base.parents[1] if len(base.parents) > 1 else base
    for sub in sorted(p for p in base.iterdir() if p.is_dir()):
        for path in sorted(sub.glob("*.y*ml")):
            docs = [_strip(o) for o in load_manifests(path)]
            for obj in docs:
                meta = obj["metadata"]
                if obj.get("kind") == "Service":
                    workloads.setdefault(str(meta["name"]), os.path.relpath(path, repo))
            if sub.name != "baseline" and not any(
                    o.get("kind") == "Service" and o["metadata"]["name"] in FIXED_SERVICES
                    for o in docs):
                continue
            for obj in docs:
                meta = obj["metadata"]
                key = (str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))
                if key in seen:
                    continue
                seen.add(key)
                if obj.get("kind") == "HTTPRoute":
                    meta["creationTimestamp"] = _BASELINE_CREATED
                objects.append(obj)
    return LabFacts(objects=tuple(objects), source="the lab's manifests (cluster/manifests)",
                    workload_files=workloads)


def lab_facts(lab: Any) -> LabFacts:
    """Facts from a running :class:`trafficlab.Lab` (read only)."""
    objects: list[Obj] = []
    for kind in ("Namespace", "GatewayClass", "Gateway", "HTTPRoute", "Service", "Deployment",
                 "ReferenceGrant"):
        objects.extend(_strip(o) for o in lab.get(kind, all_namespaces=True))
    workloads = dict(baseline_facts().workload_files)
    return LabFacts(objects=tuple(objects), source=f"the running lab in {lab.home}", running=True,
                    workload_files=workloads)


def load_facts(home: str | os.PathLike[str] | None = None, *, use_lab: bool | None = None) -> LabFacts:
    """The running lab's facts when one runs in ``home`` (and ``use_lab`` allows), else the manifests.

    ``use_lab``: None means "if one runs", True insists on a running lab, False never asks one.
    """
    if use_lab is False:
        return baseline_facts()
    from trafficlab._errors import LabNotRunningError
    from trafficlab.lab import Lab

    lab = Lab(home, backend="local")  # a running lab's own backend wins over this choice
    try:
        running = lab.running
    except Exception as exc:  # a backend that cannot even be asked (kind not installed, say)
        if use_lab:
            raise LabNotRunningError(f"cannot reach the lab in {lab.home}: {exc}") from exc
        return baseline_facts()
    if not running:
        if use_lab:
            raise LabNotRunningError(f"no lab runs in {lab.home}; start one with 'trafficlab up' "
                                     "or use --no-lab to check against the manifests")
        return baseline_facts()
    return lab_facts(lab)
