"""core/v1 Events the controller records, as ``kubectl describe`` lists them.

What is recorded: a route's Accepted and ResolvedRefs conditions as they change and its
Programmed condition for each generation Envoy serves (per parent, with the condition's
reason and message), a route Envoy refuses and the lab leaves out,
pods started, ready, not ready, restarted and stopped, and a Deployment's replicas scaled.
Events are kept in memory only, the last :data:`MAX_EVENTS` of the lab, and a repeat of the
same event (same object, type, reason and message) raises its ``count`` and
``lastTimestamp`` instead of adding one, as Kubernetes' event recorder does.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from trafficlab.workloads.pods import Pod

__all__ = ["MAX_EVENTS", "EventRecorder", "route_events"]

Obj = dict[str, Any]
MAX_EVENTS = 1000
COMPONENT = "trafficlab-controller"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _parent_name(parent: Obj) -> str:
    ref = parent.get("parentRef") or {}
    return str(ref.get("name", "?")) + (f"/{ref['sectionName']}" if ref.get("sectionName")
                                        else "")


def route_events(old_status: Obj | None, new_status: Obj) -> list[tuple[str, str, str]]:
    """(type, reason, message) for each route condition that changed from old to new."""
    def conditions(status: Obj | None) -> dict[tuple[str, str], Obj]:
        out: dict[tuple[str, str], Obj] = {}
        for parent in (status or {}).get("parents") or []:
            for cond in parent.get("conditions") or []:
                if cond.get("type") in ("Accepted", "ResolvedRefs", "Programmed"):
                    out[(_parent_name(parent), str(cond["type"]))] = cond
        return out

    before = conditions(old_status)
    found = []
    for (parent, kind), cond in sorted(conditions(new_status).items()):
        old = before.get((parent, kind))
        # Programmed is news for every generation served; the others when they change.
        facts = ("status", "reason", "message") + (
            ("observedGeneration",) if kind == "Programmed" else ())
        if old is not None and all(old.get(f) == cond.get(f) for f in facts):
            continue
        ok = cond.get("status") == "True"
        if ok and kind == "ResolvedRefs" and old is None:
            continue  # resolved from the start: nothing to tell
        reason = kind if ok else str(cond.get("reason") or f"Not{kind}")
        message = f"{parent}: {cond.get('message') or reason}"
        if kind == "Programmed" and ok:
            message += f" (generation {cond.get('observedGeneration')})"
        found.append(("Normal" if ok else "Warning", reason, message))
    return found


class EventRecorder:
    """The lab's recent Events, deduplicated; thread-safe."""

    def __init__(self, limit: int = MAX_EVENTS) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._events: OrderedDict[tuple[str, ...], Obj] = OrderedDict()
        self.revision = 0
        self._pods: dict[str, tuple[bool, int]] | None = None  # "<ns>/<name>" -> ready, restarts
        self._replicas: dict[str, int] = {}

    def record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record an Event about ``obj`` (Normal or Warning)."""
        meta = obj.get("metadata") or {}
        involved = {"kind": str(obj.get("kind", "")), "namespace": str(meta.get("namespace", "")),
                    "name": str(meta.get("name", "")), "uid": str(meta.get("uid", "")),
                    "apiVersion": str(obj.get("apiVersion", ""))}
        key = (involved["kind"], involved["namespace"], involved["name"], involved["uid"],
               type_, reason, message)
        now = _now()
        with self._lock:
            self.revision += 1
            event = self._events.pop(key, None)
            if event is not None:
                event = {**event, "count": event["count"] + 1, "lastTimestamp": now,
                         "metadata": {**event["metadata"],
                                      "resourceVersion": str(self.revision)}}
            else:
                event = {"apiVersion": "v1", "kind": "Event",
                         "metadata": {"name": f"{involved['name']}.{uuid.uuid4().hex[:16]}",
                                      "namespace": involved["namespace"] or "default",
                                      "uid": str(uuid.uuid4()), "creationTimestamp": now,
                                      "resourceVersion": str(self.revision)},
                         "involvedObject": involved, "type": type_, "reason": reason,
                         "message": message, "count": 1, "firstTimestamp": now,
                         "lastTimestamp": now, "source": {"component": COMPONENT},
                         "reportingComponent": COMPONENT, "reportingInstance": ""}
            self._events[key] = event  # the most recent last
            while len(self._events) > self._limit:
                self._events.popitem(last=False)

    def items(self, namespace: str | None = None) -> list[Obj]:
        """The Events (of one namespace), oldest first, as copies."""
        with self._lock:
            events = list(self._events.values())
        return [copy.deepcopy(e) for e in events
                if namespace is None or e["metadata"]["namespace"] == namespace]

    def observe(self, deployments: Iterable[Obj], pods: Iterable[Pod]) -> None:
        """Record what changed in Deployments' replicas and in pods since the last call."""
        for deploy in deployments:
            meta = deploy["metadata"]
            key = f"{meta.get('namespace', '')}/{meta['name']}"
            replicas = int(deploy.get("spec", {}).get("replicas", 1))
            before = self._replicas.get(key)
            if before != replicas:
                self._replicas[key] = replicas
                way = "down" if before is not None and replicas < before else "up"
                since = f" from {before}" if before is not None else ""
                self.record(deploy, "Normal", "ScalingReplicaSet",
                            f"Scaled {way} {meta['name']} to {replicas}{since}")
        now: dict[str, tuple[bool, int]] = {}
        objects: dict[str, Obj] = {}
        for pod in pods:
            key = f"{pod.namespace}/{pod.name}"
            now[key] = (pod.ready, pod.restarts)
            objects[key] = {"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": pod.name, "namespace": pod.namespace}}
        before_pods, self._pods = self._pods, now
        if before_pods is None:
            before_pods = {}
        for key, (ready, restarts) in now.items():
            old = before_pods.get(key)
            if old is None:
                self.record(objects[key], "Normal", "Started", "Started container task-api")
            elif restarts > old[1]:
                self.record(objects[key], "Warning", "BackOff",
                            f"Restarted container task-api (restart {restarts})")
            if ready and (old is None or not old[0]):
                self.record(objects[key], "Normal", "Ready", "Readiness probe passed: the pod "
                            "receives traffic")
            elif not ready and old is not None and old[0]:
                self.record(objects[key], "Warning", "Unhealthy",
                            "Readiness probe failed: the pod receives no traffic")
        for key in before_pods.keys() - now.keys():
            namespace, _, name = key.partition("/")
            self.record({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": name, "namespace": namespace}},
                        "Normal", "Killing", "Stopping container task-api")
