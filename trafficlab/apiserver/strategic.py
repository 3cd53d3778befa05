"""Strategic merge patch for the built-in kinds the lab stores (Deployment, Service, Namespace).

``kubectl apply`` and ``kubectl set env`` send these for built-ins. What this implements,
read from the Kubernetes API conventions (not ported from any code):

* maps merge key by key; ``null`` deletes a key;
* lists of objects with a merge key merge element by element (``containers`` by ``name``,
  container ``ports`` by ``containerPort``, Service ``ports`` by ``port`` ...); an element
  ``{"<key>": ..., "$patch": "delete"}`` removes one; other lists are replaced whole;
* directives: ``$patch: replace|delete`` on a map, ``$retainKeys``,
  ``$setElementOrder/<list>`` (the order of a merged list) and
  ``$deleteFromPrimitiveList/<list>``.
"""

from __future__ import annotations

import copy
from typing import Any

from trafficlab._errors import StrategicPatchError

__all__ = ["StrategicPatchError", "strategic_merge"]

# Lists whose elements merge by a key, by the list's field name. "ports" is decided by content.
_MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name",
               "env": "name", "volumes": "name", "volumeMounts": "mountPath",
               "volumeDevices": "devicePath", "imagePullSecrets": "name", "hostAliases": "ip",
               "topologySpreadConstraints": "topologyKey", "resourceClaims": "name",
               "conditions": "type"}

_DELETE = object()  # a map that a "$patch: delete" removed


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        dicts = [i for i in items if isinstance(i, dict)]
        if dicts and all("containerPort" in i for i in dicts):
            return "containerPort"
        return "port"
    return _MERGE_KEYS.get(field)


def strategic_merge(original: Any, patch: Any) -> Any:
    """``original`` with ``patch`` applied strategically; neither is modified."""
    result = _merge_value(copy.deepcopy(original), patch, "")
    if result is _DELETE:
        raise StrategicPatchError('a strategic merge patch cannot delete the whole object '
                                  '("$patch: delete" at the top)')
    return result


def _merge_value(original: Any, patch: Any, field: str) -> Any:
    if isinstance(patch, dict):
        return _merge_map(original if isinstance(original, dict) else {}, patch)
    if isinstance(patch, list):
        key = _merge_key(field, patch + (original if isinstance(original, list) else []))
        if key is not None and isinstance(original, list):
            return _merge_list(original, patch, key)
        return [_strip(item) for item in patch]
    return copy.deepcopy(patch)


def _strip(value: Any) -> Any:
    """A patch value without directives (what a replaced list or map becomes)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return copy.deepcopy(value)


def _merge_map(original: dict[str, Any], patch: dict[str, Any]) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strip(patch)
    if directive is not None and directive != "merge":
        raise StrategicPatchError(f'unknown "$patch" directive "{directive}" in a map')
    result = dict(original)
    retain = patch.get("$retainKeys")
    if retain is not None:
        if not isinstance(retain, list):
            raise StrategicPatchError('"$retainKeys" must be a list of field names')
        result = {k: v for k, v in result.items() if k in retain}
    orders: dict[str, list[Any]] = {}
    for name, value in patch.items():
        if name in ("$patch", "$retainKeys"):
            continue
        if name.startswith("$setElementOrder/"):
            if not isinstance(value, list):
                raise StrategicPatchError(f'"{name}" must be a list')
            orders[name.partition("/")[2]] = value
            continue
        if name.startswith("$deleteFromPrimitiveList/"):
            target = name.partition("/")[2]
            if isinstance(result.get(target), list) and isinstance(value, list):
                result[target] = [v for v in result[target] if v not in value]
            continue
        if name.startswith("$"):
            raise StrategicPatchError(f'unknown strategic merge directive "{name}"')
        if value is None:
            result.pop(name, None)
            continue
        merged = _merge_value(result.get(name), value, name)
        if merged is _DELETE:
            result.pop(name, None)
        else:
            result[name] = merged
    for name, order in orders.items():
        if isinstance(result.get(name), list):
            result[name] = _ordered(result[name], order, _merge_key(name, result[name]))
    return result


def _merge_list(original: list[Any], patch: list[Any], key: str) -> list[Any]:
    result = [copy.deepcopy(item) for item in original]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise StrategicPatchError(f'every element of a list merged by "{key}" needs "{key}"')
        index = next((i for i, old in enumerate(result)
                      if isinstance(old, dict) and old.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(_strip(item))
        else:
            merged = _merge_map(result[index], item)
            if merged is _DELETE:
                del result[index]
            else:
                result[index] = merged
    return result


def _ordered(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def identity(value: Any) -> Any:
        return value.get(key) if key is not None and isinstance(value, dict) else value

    wanted = [identity(v) for v in order]

    def rank(pair: tuple[int, Any]) -> tuple[int, int]:
        position, value = pair
        ident = identity(value)
        return (wanted.index(ident), position) if ident in wanted else (len(wanted), position)

    return [value for _, value in sorted(enumerate(items), key=rank)]
