"""ObjectMeta checks (the apiserver's ``ValidateObjectMeta`` for what the lab uses).

``metadata.name`` is required (``generateName`` is refused: ``apply`` finds objects by
name), names follow the kind's rule, labels and annotations are maps of strings with
valid keys, and only the standard ObjectMeta fields are accepted.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from . import _names
from ._kinds import KindInfo
from ._problems import Problem, forbidden, invalid, required, too_long, unknown_field, wrong_type

__all__ = ["check_annotations", "check_labels", "check_metadata", "name_rule"]

# Fields the store or a `get -o yaml` round trip may carry; checked lightly, kept as given.
_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                  "finalizers", "ownerReferences")
_KNOWN = ("name", "namespace", "labels", "annotations", "generateName", *_SERVER_FIELDS)

# k8s.io/apimachinery/pkg/api/validation: TotalAnnotationSizeLimitB.
_ANNOTATIONS_LIMIT = 256 * 1024

_NAME_RULES: dict[str, Callable[[str], str]] = {
    # Service names become DNS names, so the apiserver wants a DNS-1035 label
    # (ValidateServiceName); Namespace names are RFC 1123 labels (ValidateNamespaceName).
    "Service": _names.dns1035_label,
    "Namespace": _names.dns1123_label,
}


def name_rule(kind: str) -> Callable[[str], str]:
    """The name check for a kind (RFC 1123 subdomain unless listed above)."""
    return _NAME_RULES.get(kind, _names.dns1123_subdomain)


def check_labels(labels: Any, path: str, out: list[Problem]) -> dict[str, str]:
    """Label map: string keys that are qualified names, string values that are label values."""
    if not isinstance(labels, dict):
        out.append(wrong_type(path, labels, "object"))
        return {}
    for key, value in labels.items():
        where = f"{path}[{key}]"
        if not isinstance(key, str):
            out.append(invalid(where, key, "label keys must be strings (quote it in YAML)"))
            continue
        problem = _names.qualified_name(key)
        if problem:
            out.append(invalid(path, key, f"label key {problem}"))
        if not isinstance(value, str):
            out.append(wrong_type(where, value, "string"))
            continue
        problem = _names.label_value(value)
        if problem:
            out.append(invalid(where, value, problem))
    return dict(labels)


def check_annotations(annotations: Any, path: str, out: list[Problem]) -> dict[str, str]:
    """Annotation map: qualified-name keys, string values, at most 256 KiB in all (keys too)."""
    if not isinstance(annotations, dict):
        out.append(wrong_type(path, annotations, "object"))
        return {}
    size = 0
    for key, value in annotations.items():
        where = f"{path}[{key}]"
        if not isinstance(key, str):
            out.append(invalid(where, key, "annotation keys must be strings (quote it in YAML)"))
            continue
        problem = _names.qualified_name(key)
        if problem:
            out.append(invalid(path, key, f"annotation key {problem}"))
        if not isinstance(value, str):
            out.append(wrong_type(where, value, "string"))
            continue
        size += len(key) + len(value)
    if size > _ANNOTATIONS_LIMIT:
        out.append(too_long(path, _ANNOTATIONS_LIMIT))
    return dict(annotations)


def _check_server_field(key: str, value: Any, path: str, out: list[Problem]) -> None:
    if key in ("uid", "resourceVersion") and not isinstance(value, str):
        out.append(wrong_type(path, value, "string"))
    elif key == "generation" and (isinstance(value, bool) or not isinstance(value, int)):
        out.append(wrong_type(path, value, "integer"))
    elif key == "creationTimestamp" and not isinstance(value, str):
        out.append(wrong_type(path, value, "string"))
    elif key in ("managedFields", "ownerReferences"):
        if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
            out.append(wrong_type(path, value, "array of objects"))
        elif key == "ownerReferences":
            for i, ref in enumerate(value):
                for field in ("apiVersion", "kind", "name", "uid"):
                    if not isinstance(ref.get(field), str) or not ref[field]:
                        out.append(required(f"{path}[{i}].{field}"))
    elif key == "finalizers":
        if not isinstance(value, list):
            out.append(wrong_type(path, value, "array"))
            return
        for i, item in enumerate(value):
            if not isinstance(item, str):
                out.append(wrong_type(f"{path}[{i}]", item, "string"))
            elif _names.qualified_name(item):
                out.append(invalid(f"{path}[{i}]", item, _names.qualified_name(item)))


def check_metadata(meta: Any, info: KindInfo, out: list[Problem]) -> dict[str, Any]:
    """Check ``metadata``; return a copy (``namespace`` dropped for cluster-scoped kinds)."""
    if meta is None:
        out.append(required("metadata.name", "every object needs a name"))
        return {}
    if not isinstance(meta, dict):
        out.append(wrong_type("metadata", meta, "object"))
        return {}
    result: dict[str, Any] = {}
    for key, value in meta.items():
        path = f"metadata.{key}"
        if key not in _KNOWN:
            out.append(unknown_field(path, _KNOWN))
            continue
        if value is None:
            continue  # `creationTimestamp: null` from `kubectl create --dry-run -o yaml`
        if key == "generateName":
            out.append(forbidden(path, "generateName is not supported: apply finds objects by "
                                       "name, so set metadata.name"))
        elif key == "labels":
            result[key] = check_labels(value, path, out)
        elif key == "annotations":
            result[key] = check_annotations(value, path, out)
        elif key == "namespace" and not info.namespaced:
            continue  # the apiserver ignores a namespace on cluster-scoped objects
        elif key in ("name", "namespace"):
            if not isinstance(value, str):
                out.append(wrong_type(path, value, "string"))
                continue
            if not value:
                out.append(required(path))
                continue
            check = _names.dns1123_label if key == "namespace" else name_rule(info.kind)
            problem = check(value)
            if problem:
                out.append(invalid(path, value, problem))
            result[key] = value
        else:
            _check_server_field(key, value, path, out)
            result[key] = copy.deepcopy(value)
    if "name" not in result and not any(p.field == "metadata.name" for p in out):
        out.append(required("metadata.name", "every object needs a name"))
    if info.namespaced and "namespace" not in result and not any(
            p.field == "metadata.namespace" for p in out):
        out.append(required("metadata.namespace"))
    return result
