"""How server-side apply treats each list and map of a kind: atomic, set or keyed by fields.

Gateway API kinds: read from the vendored CRD schemas (``x-kubernetes-list-type``,
``-list-map-keys``, ``-map-type``; a list without a type is atomic, as for any CRD). Built-in
kinds (Deployment, Service, Namespace): the list-map keys of the Kubernetes OpenAPI for the
fields the lab's subset has (containers by name, container ports by containerPort and protocol,
Service ports by port and protocol, ...); every other list is atomic, as in Kubernetes.

A location is the tuple of field names from the object's root, ``"[]"`` standing for "an
element of the list", e.g. ``("spec", "rules", "[]", "backendRefs")``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal

from trafficlab.resources import KINDS
from trafficlab.resources._crds import CRD_PLURALS, openapi_schema

__all__ = ["ListInfo", "list_info", "map_type"]

Location = tuple[str, ...]
MapType = Literal["struct", "granular", "atomic"]


@dataclass(frozen=True)
class ListInfo:
    """One list's merge semantics; ``defaults`` fill key fields an element leaves out."""

    list_type: Literal["atomic", "set", "map"]
    keys: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)


_ATOMIC = ListInfo("atomic")
_TCP = {"protocol": "TCP"}
# Built-in lists keyed by fields (the Kubernetes OpenAPI's x-kubernetes-list-map-keys).
_BUILTIN_LISTS: dict[str, ListInfo] = {
    "containers": ListInfo("map", ("name",)),
    "initContainers": ListInfo("map", ("name",)),
    "env": ListInfo("map", ("name",)),
    "volumes": ListInfo("map", ("name",)),
    "volumeMounts": ListInfo("map", ("mountPath",)),
    "imagePullSecrets": ListInfo("map", ("name",)),
    "conditions": ListInfo("map", ("type",)),
    "finalizers": ListInfo("set"),
}
# Built-in maps of strings (owned key by key) and atomic maps (LabelSelector is atomic).
_GRANULAR = {"labels", "annotations", "nodeSelector", "limits", "requests", "matchLabels"}


@functools.cache
def _crd_root(kind: str) -> dict[str, Any] | None:
    info = KINDS.get(kind)
    if info is None or info.plural not in CRD_PLURALS:
        return None
    return openapi_schema(info.plural, "v1")


def _crd_node(kind: str, location: Location) -> dict[str, Any] | None:
    """The CRD schema node at ``location``, or None when the schema says nothing there."""
    node = _crd_root(kind)
    for name in location:
        if node is None:
            return None
        if name == "[]":
            node = node.get("items")
        else:
            props = node.get("properties") or {}
            extra = node.get("additionalProperties")
            node = props.get(name) if name in props else (extra if isinstance(extra, dict)
                                                          else None)
    return node


def list_info(kind: str, location: Location) -> ListInfo:
    """How the list at ``location`` of a ``kind`` merges."""
    if location[:1] == ("metadata",):
        return ListInfo("set") if location[-1:] == ("finalizers",) else _ATOMIC
    if _crd_root(kind) is not None:
        node = _crd_node(kind, location)
        if node is None:
            return _ATOMIC
        list_type = node.get("x-kubernetes-list-type", "atomic")
        if list_type == "map":
            keys = tuple(node.get("x-kubernetes-list-map-keys") or ())
            props = (node.get("items") or {}).get("properties") or {}
            defaults = {k: props[k]["default"] for k in keys
                        if isinstance(props.get(k), dict) and "default" in props[k]}
            return ListInfo("map", keys, defaults)
        return ListInfo("set") if list_type == "set" else _ATOMIC
    name = location[-1] if location else ""
    if name == "ports":  # container ports and Service ports: both default their protocol
        keyed = "containerPort" if location[-3:-1] == ("containers", "[]") or \
            location[-3:-1] == ("initContainers", "[]") else "port"
        return ListInfo("map", (keyed, "protocol"), _TCP)
    return _BUILTIN_LISTS.get(name, _ATOMIC)


def map_type(kind: str, location: Location) -> MapType:
    """Whether the object at ``location`` is a struct, a map owned key by key, or atomic."""
    if location in (("metadata", "labels"), ("metadata", "annotations")):
        return "granular"
    if _crd_root(kind) is not None:
        node = _crd_node(kind, location)
        if node is None:
            return "struct"
        if node.get("x-kubernetes-map-type") == "atomic":
            return "atomic"
        if "properties" not in node and isinstance(node.get("additionalProperties"), dict):
            return "granular"
        return "struct"
    name = location[-1] if location else ""
    if name == "selector":  # a Deployment's LabelSelector is atomic, a Service's a string map
        return "granular" if kind == "Service" else "atomic"
    return "granular" if name in _GRANULAR else "struct"
