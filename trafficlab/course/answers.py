"""The student's answer files: apply one with friendly output, show what the lab holds."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from trafficlab._errors import TrafficLabError
from trafficlab.lab import Lab
from trafficlab.manifests import load_manifests

__all__ = ["apply_file", "route_yaml", "show_route"]

# Server-set fields a student never writes; left out when a route is shown.
_SERVER_FIELDS = ("creationTimestamp", "generation", "resourceVersion", "uid", "managedFields")
# Defaults the CRD's schema sets on references (gateway.networking.k8s.io_httproutes.yaml).
_PARENT_DEFAULTS = {"group": "gateway.networking.k8s.io", "kind": "Gateway"}
_BACKEND_DEFAULTS = {"group": "", "kind": "Service"}


def apply_file(lab: Lab, path: str | os.PathLike[str], *, dry_run: bool = False) -> None:
    """Apply a file you wrote and wait until the gateway serves it; print what happened.

    On a mistake the lab keeps serving the previous route and this prints the problem (the
    object, the field, the reason) instead of raising, so the notebook can go on and the
    self-check explains what to fix. Nothing is returned, so a cell shows the messages once.

    >>> apply_file(lab, "canary.yaml")            # doctest: +SKIP
    httproute.gateway.networking.k8s.io/task-api configured
    The gateway serves generation 3 of HTTPRoute task-api.
    """
    where = Path(path)
    if not where.is_file():
        print(f"{where} does not exist yet: run the cell that writes it first.")
        return
    try:
        objects = load_manifests(where)
        if not objects:
            print(f"{where} holds no object yet: write your route in the cell that starts with "
                  f"%%writefile {where.name}, run it, then this cell again.")
            return
        result = lab.apply(objects, dry_run=dry_run)
    except TrafficLabError as exc:
        print(f"{where} was not applied; the lab keeps serving the previous route.\n"
              f"  {exc.message}")
        return
    print(result)
    if dry_run:
        return
    names = [c.get("name") for c in result.changes if str(c.get("kind", "")).lower() == "httproute"]
    for name in names:
        try:
            route = lab.wait_programmed(str(name))
        except TrafficLabError as exc:
            print(f"HTTPRoute {name} is not served yet: {exc.message}")
            continue
        print(f"The gateway serves generation {route['metadata']['generation']} of HTTPRoute {name}.")


def _without_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec without the group and kind the API server fills in for Gateways and Services."""
    out = copy.deepcopy(spec)
    for ref in out.get("parentRefs", []):
        for key, default in _PARENT_DEFAULTS.items():
            if ref.get(key) == default:
                ref.pop(key)
    for rule in out.get("rules", []):
        for ref in rule.get("backendRefs", []):
            for key, default in _BACKEND_DEFAULTS.items():
                if ref.get(key) == default:
                    ref.pop(key)
    return out


def route_yaml(route: dict[str, Any], *, status: bool = False) -> str:
    """A route as YAML, as you would write it: server-set fields, defaults and status left out."""
    meta = {k: v for k, v in route.get("metadata", {}).items() if k not in _SERVER_FIELDS}
    shown: dict[str, Any] = {"apiVersion": route.get("apiVersion"), "kind": route.get("kind"),
                             "metadata": meta, "spec": _without_defaults(route.get("spec", {}))}
    if status and "status" in route:
        shown["status"] = route["status"]
    return yaml.safe_dump(shown, sort_keys=False, default_flow_style=False)


def show_route(lab: Lab, name: str = "task-api", *, status: bool = False) -> None:
    """Print an HTTPRoute as YAML (``trafficlab get httproute NAME -o yaml``), without server fields."""
    print(route_yaml(lab.get("HTTPRoute", name), status=status), end="")
