"""OpenAPI v3 documents: ``GET /openapi/v3`` and ``GET /openapi/v3/<api|apis/G>/<V>``.

kubectl reads them before ``apply``, ``create`` and ``explain``. What it needs from them: a
PATCH (and POST) operation per kind carrying ``x-kubernetes-group-version-kind`` and an inline
``fieldValidation`` parameter, which tells kubectl that the server validates fields itself
(it then sends ``fieldValidation=Strict`` and validates nothing client-side), and a schema per
kind for ``explain``: the vendored CRD schema for Gateway API kinds, an open object for
built-ins. The built-ins' PATCH does not offer strategic merge here, so kubectl computes its
strategic patches from its compiled-in types rather than from these schemas.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from typing import Any

from trafficlab.apiserver.catalog import RESOURCES, ApiResource
from trafficlab.resources._crds import CRD_PLURALS, openapi_schema

__all__ = ["document", "root"]

Obj = dict[str, Any]

_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                "application/apply-patch+yaml")


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _schema_name(res: ApiResource, version: str) -> str:
    if res.group.endswith("k8s.io"):  # io.k8s.networking.gateway.v1.HTTPRoute
        prefix = ".".join(reversed(res.group.split(".")))
    else:
        prefix = f"io.k8s.api.{res.group or 'core'}"
    return f"{prefix}.{version}.{res.kind}"


def _gvk(res: ApiResource, version: str) -> Obj:
    return {"group": res.group, "version": version, "kind": res.kind}


def _kind_schema(res: ApiResource, version: str) -> Obj:
    if res.plural in CRD_PLURALS:
        schema = copy.deepcopy(openapi_schema(res.plural, version))
    else:
        schema = {"type": "object", "description": f"A {res.kind} (the lab's subset).",
                  "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                 "spec": {"type": "object"}, "status": {"type": "object"}}}
    properties = schema.setdefault("properties", {})
    properties["metadata"] = {"allOf": [{"$ref": f"#/components/schemas/{_META}"}],
                              "default": {}, "description": "Standard object metadata."}
    schema["x-kubernetes-group-version-kind"] = [_gvk(res, version)]
    return schema


def _ref(name: str) -> Obj:
    return {"schema": {"$ref": f"#/components/schemas/{name}"}}


def _param(name: str, location: str = "query") -> Obj:
    return {"name": name, "in": location, "schema": {"type": "string", "uniqueItems": True},
            **({"required": True} if location == "path" else {})}


def _operation(res: ApiResource, version: str, action: str, verb: str, schema: str) -> Obj:
    op: Obj = {"operationId": f"{verb}{res.kind}", "tags": [res.group or "core"],
               "x-kubernetes-action": action,
               "x-kubernetes-group-version-kind": _gvk(res, version),
               "parameters": [], "responses": {"200": {"content": {
                   "application/json": _ref(schema)}}}}
    if action in ("patch", "post"):
        op["parameters"] = [_param("dryRun"), _param("fieldManager"),
                            _param("fieldValidation")]
    return op


def _paths(res: ApiResource, version: str) -> Obj:
    base = "/" + _gv_path(res.group, version)
    ns = "/namespaces/{namespace}" if res.namespaced else ""
    schema = _schema_name(res, version)
    collection = f"{base}{ns}/{res.plural}"
    item = f"{collection}/{{name}}"
    path_params = [_param("name", "path")] + ([_param("namespace", "path")] if ns else [])
    item_ops: Obj = {"parameters": path_params,
                     "get": _operation(res, version, "get", "read", schema)}
    collection_ops: Obj = {"parameters": path_params[1:],
                           "get": _operation(res, version, "list", "list", schema)}
    if "patch" in res.verbs:
        patch = _operation(res, version, "patch", "patch", schema)
        patch["requestBody"] = {"content": {t: _ref("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")
                                            for t in _PATCH_TYPES}, "required": True}
        item_ops["patch"] = patch
        item_ops["delete"] = _operation(res, version, "delete", "delete", _STATUS)
        post = _operation(res, version, "post", "create", schema)
        post["requestBody"] = {"content": {"*/*": _ref(schema)}, "required": True}
        collection_ops["post"] = post
    return {collection: collection_ops, item: item_ops}


@functools.cache
def _documents() -> dict[str, str]:
    """Every group-version's document, serialized once (they never change while serving)."""
    docs: dict[str, Obj] = {}
    for res in RESOURCES:
        for version in res.versions:
            doc = docs.setdefault(_gv_path(res.group, version), {
                "openapi": "3.0.0",
                "info": {"title": "TrafficLab", "version": "v1.37.0-trafficlab"},
                "paths": {},
                "components": {"schemas": {
                    _META: {"type": "object", "description": "Standard object metadata.",
                            "properties": {n: {"type": t} for n, t in (
                                ("name", "string"), ("namespace", "string"),
                                ("labels", "object"), ("annotations", "object"),
                                ("uid", "string"), ("resourceVersion", "string"),
                                ("generation", "integer"), ("creationTimestamp", "string"))}},
                    _STATUS: {"type": "object"},
                    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch": {"type": "object"}}}})
            doc["paths"].update(_paths(res, version))
            doc["components"]["schemas"][_schema_name(res, version)] = _kind_schema(res, version)
    return {path: json.dumps(doc, sort_keys=True) for path, doc in docs.items()}


def root() -> Obj:
    """``GET /openapi/v3``: one entry per group-version, with a content hash."""
    return {"paths": {path: {"serverRelativeURL": f"/openapi/v3/{path}?hash="
                             + hashlib.sha512(text.encode()).hexdigest()[:32]}
                      for path, text in _documents().items()}}


def document(path: str) -> str | None:
    """The serialized document for ``api/v1`` or ``apis/<group>/<version>``, or None."""
    return _documents().get(path)
