"""Legacy discovery: ``/api``, ``/api/v1``, ``/apis`` and ``/apis/<group>/<version>``.

kubectl asks for aggregated discovery first; answering plain ``application/json`` makes it
fall back to these documents, which is all it needs.
"""

from __future__ import annotations

from typing import Any

from trafficlab.apiserver.catalog import RESOURCES, group_versions

__all__ = ["api_versions", "group_list", "resource_list", "version_info"]


def version_info() -> dict[str, str]:
    """``GET /version``: the Kubernetes version whose API subset the lab speaks."""
    return {"major": "1", "minor": "37", "gitVersion": "v1.37.0-trafficlab",
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "",
            "goVersion": "", "compiler": "", "platform": "linux/amd64"}


def api_versions(server_address: str) -> dict[str, Any]:
    """``GET /api``: the core group's versions."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": server_address}]}


def group_list() -> dict[str, Any]:
    """``GET /apis``: every named group with its versions."""
    groups = []
    for group, versions in group_versions().items():
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """``GET /apis/<group>/<version>`` (``/api/v1``): the resources served there, or None."""
    resources = []
    for res in RESOURCES:
        if res.group != group or version not in res.versions:
            continue
        entry: dict[str, Any] = {"name": res.plural, "singularName": res.singular,
                                 "namespaced": res.namespaced, "kind": res.kind,
                                 "verbs": list(res.verbs)}
        if res.short_names:
            entry["shortNames"] = list(res.short_names)
        if res.kind in ("Pod", "Service", "Deployment"):
            entry["categories"] = ["all"]  # kubectl get all
        resources.append(entry)
        if res.kind == "Deployment":  # kubectl scale finds the Scale kind here
            resources.append({"name": f"{res.plural}/scale", "singularName": "",
                              "namespaced": True, "group": "autoscaling", "version": "v1",
                              "kind": "Scale", "verbs": ["get", "patch"]})
    if not resources:
        return None
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": resources}
