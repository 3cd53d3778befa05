"""``validate``: what the apiserver does to an object on create, without the apiserver.

Order of work (as in kube-apiserver): apiVersion/kind are resolved, metadata checked,
unknown fields reported, ``status`` dropped, the spec pruned, defaulted and validated
against its schema, then the CEL rules (Gateway API kinds) or the built-in Go rules
(core kinds, see ``_core``) run. All problems are collected and reported together.
"""

from __future__ import annotations

import functools
from typing import Any

from .._errors import ValidationError
from ._core import CORE_CHECKS, CORE_SCHEMAS
from ._crds import CRD_PLURALS, openapi_schema
from ._gateway_rules import binder
from ._kinds import KINDS, KindInfo
from ._metadata import check_metadata
from ._problems import Problem, required, unknown_field, unsupported, wrong_type
from ._schema import MISSING, Node, compile_schema, walk

__all__ = ["find_problems", "schema_node", "validate"]

_TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")
_LISTED = 10  # problems spelled out in one error message; the rest are counted


@functools.cache
def schema_node(kind: str, version: str) -> Node:
    """The compiled root schema of a kind at a version (cached)."""
    info = KINDS[kind]
    if info.plural in CRD_PLURALS:
        raw = openapi_schema(info.plural, version)
        return compile_schema(raw, bind=binder(info.plural))
    return compile_schema(CORE_SCHEMAS[kind], checks=CORE_CHECKS[kind])


def _resolve(obj: dict[str, Any], out: list[Problem]) -> tuple[KindInfo, str] | None:
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        out.append(required("kind", "every object needs a kind, such as HTTPRoute"))
        return None
    info = KINDS.get(kind)
    if info is None:
        problem = unsupported("kind", kind, sorted(KINDS))
        close = [k for k in KINDS if k.lower() == kind.lower()]
        if close:  # kinds are case-sensitive in manifests, unlike on the command line
            problem = Problem("kind", f'{problem.message} (did you mean "{close[0]}"?)',
                              problem.detail)
        out.append(problem)
        return None
    if not isinstance(api_version, str) or not api_version:
        out.append(required("apiVersion", f"{kind} needs apiVersion "
                                          f"{' or '.join(info.api_versions)}"))
        return None
    if api_version not in info.api_versions:
        out.append(unsupported("apiVersion", api_version, info.api_versions))
        return None
    return info, api_version.rpartition("/")[2]


def _check(obj: Any, old: Any) -> tuple[dict[str, Any], list[Problem]]:
    out: list[Problem] = []
    if not isinstance(obj, dict):
        out.append(wrong_type("", obj, "object"))
        return {}, out
    resolved = _resolve(obj, out)
    if resolved is None:
        return {}, out
    info, version = resolved
    root = schema_node(info.kind, version)
    result: dict[str, Any] = {"apiVersion": obj["apiVersion"], "kind": obj["kind"]}
    result["metadata"] = check_metadata(obj.get("metadata"), info, out)
    for key in obj:
        if key not in _TOP_LEVEL:
            out.append(unknown_field(str(key), _TOP_LEVEL))
    spec_node = (root.properties or {}).get("spec")
    spec = obj.get("spec")
    if spec_node is not None and spec is not None:
        old_spec = old.get("spec", MISSING) if isinstance(old, dict) else MISSING
        result["spec"] = walk(spec_node, spec, "spec", out, old_spec)
    elif "spec" in root.required:
        out.append(required("spec"))
    # Strict decoding fails before validation in the apiserver: unknown fields come first.
    out.sort(key=lambda p: not p.unknown)
    return result, out


def find_problems(obj: Any, *, old: Any = None) -> list[Problem]:
    """Every problem :func:`validate` would report, as a list (empty when valid).

    >>> [str(p) for p in find_problems({"apiVersion": "v1", "kind": "Namespace",
    ...                                 "metadata": {"name": "Lab"}})][0][:40]
    'metadata.name: Invalid value: "Lab": mus'
    """
    return _check(obj, old)[1]


def validate(obj: dict[str, Any], *, source: str | None = None,
             old: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate an object and return a new one with the schema defaults applied.

    ``obj`` has ``apiVersion``, ``kind``, ``metadata.name`` and, for namespaced kinds,
    ``metadata.namespace``. ``status`` is dropped, as the apiserver ignores it.
    ``old`` (the stored object, on update) enables transition rules such as
    GatewayClass's immutable ``controllerName``. ``source`` (a file name) goes into the
    error.

    >>> route = validate({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
    ...                   "metadata": {"name": "web", "namespace": "default"},
    ...                   "spec": {"rules": [{"backendRefs": [{"name": "v1", "port": 80}]}]}})
    >>> route["spec"]["rules"][0]["backendRefs"][0]["weight"]
    1

    Raises :class:`~trafficlab._errors.ValidationError` naming the first problem's field;
    its ``problem`` text lists the others too.
    """
    result, problems = _check(obj, old)
    if not problems:
        return result
    first, rest = problems[0], problems[1:]
    text = first.message
    if rest:
        listed = ", ".join(str(p) for p in rest[:_LISTED])
        more = f" (and {len(rest) - _LISTED} others)" if len(rest) > _LISTED else ""
        text += f"; and {len(rest)} more: {listed}{more}"
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    kind = obj.get("kind") if isinstance(obj, dict) else None
    name, namespace = meta.get("name"), meta.get("namespace")
    info = KINDS.get(kind) if isinstance(kind, str) else None
    raise ValidationError(
        kind if isinstance(kind, str) and kind else "object",
        namespace if isinstance(namespace, str) and (info is None or info.namespaced) else None,
        name if isinstance(name, str) else None,
        first.field,
        text,
        source=source,
    )
