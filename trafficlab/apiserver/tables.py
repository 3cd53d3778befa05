"""``meta.k8s.io/v1`` Tables: the columns ``kubectl get`` prints, rendered by the server.

kubectl has no printers of its own for a server's resources: without a Table it prints only
NAME and AGE. The columns follow kubectl's for pods, deployments, services and namespaces,
and the Gateway API CRDs' printer columns for their kinds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

__all__ = ["human_age", "table", "wants_table"]

Obj = dict[str, Any]
Cell = str | int
Column = tuple[str, str, str, Callable[[Obj, "Context"], Cell]]  # name, type, description, value


class Context:
    """What some columns need besides the object: the pods, each with its Deployment's name."""

    def __init__(self, pods: Sequence[tuple[str, Obj]], now: float | None = None) -> None:
        self.pods = pods
        self.now = time.time() if now is None else now

    def pods_of(self, deployment: Obj) -> list[Obj]:
        meta = deployment["metadata"]
        return [p for owner, p in self.pods if owner == meta.get("name")
                and p["metadata"].get("namespace") == meta.get("namespace")]


def wants_table(accept: str | None) -> bool:
    """Whether an Accept header asks for a Table (``application/json;as=Table;...``)."""
    if not accept:
        return False
    for media in accept.split(","):
        params = {k.strip(): v.strip() for k, _, v in
                  (p.partition("=") for p in media.split(";")[1:])}
        if params.get("as") == "Table" and params.get("g", "meta.k8s.io") == "meta.k8s.io":
            return True
    return False


def human_age(seconds: float) -> str:
    """A duration the way kubectl's AGE column shows it (``45s``, ``3m12s``, ``5h``, ``12d``)."""
    s = max(0, int(seconds))
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if s < 120:
        return f"{s}s"
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y{days % 365}d" if days < 365 * 8 else f"{days // 365}y"


def _age_of(stamp: str | None, now: float) -> str:
    if not stamp:
        return "<unknown>"
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return "<unknown>"
    return human_age(now - then.timestamp())


def _age(obj: Obj, ctx: Context) -> Cell:
    return _age_of(obj["metadata"].get("creationTimestamp"), ctx.now)


def _name(obj: Obj, ctx: Context) -> Cell:
    return str(obj["metadata"]["name"])


def _condition(obj: Obj, kind: str) -> str:
    for cond in obj.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == kind:
            return str(cond.get("status", "Unknown"))
    return "Unknown"


def _pod_ready(obj: Obj, ctx: Context) -> Cell:
    return f"{1 if obj.get('status', {}).get('ready') else 0}/1"


def _pod_status(obj: Obj, ctx: Context) -> Cell:
    return str(obj.get("status", {}).get("phase", "Unknown"))


def _pod_restarts(obj: Obj, ctx: Context) -> Cell:
    return int(obj.get("status", {}).get("restartCount", 0))


def _pod_age(obj: Obj, ctx: Context) -> Cell:
    return _age_of(obj.get("status", {}).get("startTime"), ctx.now)


def _replicas(obj: Obj) -> int:
    return int(obj.get("spec", {}).get("replicas", 1))


def _deploy_ready(obj: Obj, ctx: Context) -> Cell:
    ready = sum(1 for p in ctx.pods_of(obj) if p.get("status", {}).get("ready"))
    return f"{ready}/{_replicas(obj)}"


def _deploy_up_to_date(obj: Obj, ctx: Context) -> Cell:
    return min(len(ctx.pods_of(obj)), _replicas(obj))


def _deploy_available(obj: Obj, ctx: Context) -> Cell:
    return sum(1 for p in ctx.pods_of(obj) if p.get("status", {}).get("ready"))


def _svc_type(obj: Obj, ctx: Context) -> Cell:
    return str(obj.get("spec", {}).get("type", "ClusterIP"))


def _svc_cluster_ip(obj: Obj, ctx: Context) -> Cell:
    return str(obj.get("spec", {}).get("clusterIP") or "<none>")


def _svc_external_ip(obj: Obj, ctx: Context) -> Cell:
    return ",".join(obj.get("spec", {}).get("externalIPs", []) or []) or "<none>"


def _svc_ports(obj: Obj, ctx: Context) -> Cell:
    ports = [f"{p.get('port')}/{p.get('protocol', 'TCP')}"
             for p in obj.get("spec", {}).get("ports", []) or []]
    return ",".join(ports) or "<none>"


def _ns_status(obj: Obj, ctx: Context) -> Cell:
    return "Active"


def _hostnames(obj: Obj, ctx: Context) -> Cell:
    # A list in a string printer column is shown JSON-encoded, as kube-apiserver does.
    hostnames = obj.get("spec", {}).get("hostnames")
    return json.dumps(hostnames, separators=(",", ":")) if hostnames else ""


def _gateway_class(obj: Obj, ctx: Context) -> Cell:
    return str(obj.get("spec", {}).get("gatewayClassName", ""))


def _gateway_address(obj: Obj, ctx: Context) -> Cell:
    addresses = obj.get("status", {}).get("addresses", []) or []
    return " ".join(str(a.get("value", "")) for a in addresses)


def _controller(obj: Obj, ctx: Context) -> Cell:
    return str(obj.get("spec", {}).get("controllerName", ""))


def _event_last_seen(obj: Obj, ctx: Context) -> Cell:
    return _age_of(obj.get("lastTimestamp"), ctx.now)


def _event_object(obj: Obj, ctx: Context) -> Cell:
    involved = obj.get("involvedObject") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


_NAME: Column = ("Name", "string", "Name of the object", _name)
_AGE: Column = ("Age", "string", "Time since the object was created", _age)

COLUMNS: dict[str, list[Column]] = {
    "Pod": [_NAME, ("Ready", "string", "Ready containers", _pod_ready),
            ("Status", "string", "The pod's phase", _pod_status),
            ("Restarts", "integer", "Container restarts", _pod_restarts),
            ("Age", "string", "Time since the pod started", _pod_age)],
    "Deployment": [_NAME, ("Ready", "string", "Ready pods / desired replicas", _deploy_ready),
                   ("Up-to-date", "integer", "Pods of the current template", _deploy_up_to_date),
                   ("Available", "integer", "Pods ready to serve", _deploy_available), _AGE],
    "Service": [_NAME, ("Type", "string", "Service type", _svc_type),
                ("Cluster-IP", "string", "Cluster IP", _svc_cluster_ip),
                ("External-IP", "string", "External IPs", _svc_external_ip),
                ("Port(s)", "string", "Service ports", _svc_ports), _AGE],
    "Event": [("Last Seen", "string", "When the event last happened", _event_last_seen),
              ("Type", "string", "Normal or Warning", lambda o, c: str(o.get("type", ""))),
              ("Reason", "string", "Why", lambda o, c: str(o.get("reason", ""))),
              ("Object", "string", "The object it is about", _event_object),
              ("Message", "string", "What happened", lambda o, c: str(o.get("message", "")))],
    "Namespace": [_NAME, ("Status", "string", "The namespace's phase", _ns_status), _AGE],
    "HTTPRoute": [_NAME, ("Hostnames", "string", "spec.hostnames", _hostnames), _AGE],
    "Gateway": [_NAME, ("Class", "string", "spec.gatewayClassName", _gateway_class),
                ("Address", "string", "status.addresses[*].value", _gateway_address),
                ("Programmed", "string", "The Programmed condition",
                 lambda o, c: _condition(o, "Programmed")), _AGE],
    "GatewayClass": [_NAME, ("Controller", "string", "spec.controllerName", _controller),
                     ("Accepted", "string", "The Accepted condition",
                      lambda o, c: _condition(o, "Accepted")), _AGE],
}


def table(kind: str, objects: Sequence[Obj], ctx: Context, resource_version: str) -> Obj:
    """The Table for ``objects`` (all of ``kind``), one row each, with partial metadata."""
    columns = COLUMNS.get(kind, [_NAME, _AGE])
    rows = [{"cells": [value(obj, ctx) for _, _, _, value in columns],
             "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj["metadata"]}}
            for obj in objects]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": [
                {"name": name, "type": type_, "format": "name" if name == "Name" else "",
                 "description": description, "priority": 0}
                for name, type_, description, _ in columns],
            "rows": rows}
