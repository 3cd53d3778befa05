"""Field sets: the fields of an object a manager owns, and their ``FieldsV1`` form.

A path is a tuple of elements: ``("f", name)`` a field of a map, ``("k", '{"name":"x"}')`` the
element of a keyed list with those key values, ``("v", '"x"')`` an element of a set,
``("i", 0)`` an element by index (an element that lacks its keys). Atomic lists and maps are
one leaf. The paths of an object are its leaves and its list elements; with
``granular=True`` (what an update records) maps of strings such as labels are paths too,
as ``"."`` entries in FieldsV1.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from trafficlab.apiserver.listtypes import ListInfo, Location, list_info, map_type

__all__ = ["NONLEAF", "Path", "decode", "element", "encode", "path_string", "remove", "values"]

Element = tuple[str, Any]
Path = tuple[Element, ...]
Obj = dict[str, Any]


class _NonLeaf:
    def __repr__(self) -> str:
        return "NONLEAF"


NONLEAF: Any = _NonLeaf()
"""The value :func:`values` gives a path that has children (its own value is its children's)."""


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def element(info: ListInfo, item: Any, index: int) -> Element:
    """The path element naming ``item`` of a list with ``info``."""
    if info.list_type == "set":
        return ("v", _json(item))
    if info.list_type == "map" and isinstance(item, dict):
        key = {k: item.get(k, info.defaults.get(k)) for k in info.keys
               if k in item or k in info.defaults}
        if key:
            return ("k", _json(key))
    return ("i", index)


def values(obj: Obj, kind: str, *, granular: bool = True) -> dict[Path, Any]:
    """Every path of ``obj`` (its user fields) to its value, or NONLEAF when it has children."""
    out: dict[Path, Any] = {}
    for name, value in obj.items():
        _walk(value, kind, (name,), (("f", name),), out, granular)
    return out


def _walk(value: Any, kind: str, location: Location, path: Path, out: dict[Path, Any],
          granular: bool) -> None:
    if isinstance(value, dict):
        mtype = map_type(kind, location)
        if mtype == "atomic" or not value:
            out[path] = value
            return
        if mtype == "granular" and granular:
            out[path] = NONLEAF
        for name, child in value.items():
            _walk(child, kind, (*location, name), (*path, ("f", name)), out, granular)
        return
    if isinstance(value, list):
        info = list_info(kind, location)
        if info.list_type == "atomic" or not value:
            out[path] = value
            return
        for index, item in enumerate(value):
            item_path = (*path, element(info, item, index))
            if info.list_type == "map" and isinstance(item, dict) and item:
                out[item_path] = NONLEAF
                for name, child in item.items():
                    _walk(child, kind, (*location, "[]", name), (*item_path, ("f", name)), out,
                          granular)
            else:
                out[item_path] = item
        return
    out[path] = value


def _element_text(el: Element) -> str:
    return f"{el[0]}:{el[1]}"


def encode(paths: Iterable[Path]) -> Obj:
    """The FieldsV1 document for a set of paths (``"."`` marks a path that has children)."""
    root: Obj = {}
    members: set[Path] = set(paths)
    for path in members:
        node = root
        for el in path:
            node = node.setdefault(_element_text(el), {})

    def mark(node: Obj, prefix: Path) -> None:
        for text, child in node.items():
            kind, _, rest = text.partition(":")
            path = (*prefix, (kind, int(rest) if kind == "i" else rest))
            mark(child, path)
            if child and path in members:
                child["."] = {}

    mark(root, ())
    return _sorted(root)


def _sorted(node: Obj) -> Obj:
    return {k: _sorted(node[k]) for k in sorted(node)}


def decode(fields: Any) -> set[Path]:
    """The set of paths a FieldsV1 document names (malformed parts are ignored)."""
    out: set[Path] = set()

    def walk(node: Any, prefix: Path) -> None:
        if not isinstance(node, dict):
            return
        for text, child in node.items():
            if text == ".":
                if prefix:
                    out.add(prefix)
                continue
            kind, sep, rest = str(text).partition(":")
            if not sep or kind not in ("f", "k", "v", "i"):
                continue
            if kind == "i":
                if not rest.isdigit():
                    continue
                path: Path = (*prefix, ("i", int(rest)))
            else:
                path = (*prefix, (kind, rest))
            if isinstance(child, dict) and not child:
                out.add(path)
            else:
                walk(child, path)

    walk(fields, ())
    return out


def path_string(path: Path) -> str:
    """A path as the API prints it: ``.spec.rules``, ``.spec.listeners[name="http"].port``."""
    parts = []
    for kind, value in path:
        if kind == "f":
            parts.append(f".{value}")
        elif kind == "k":
            key = json.loads(value)
            parts.append("[" + ",".join(f"{k}={_json(v)}" for k, v in key.items()) + "]")
        elif kind == "v":
            parts.append(f"[={value}]")
        else:
            parts.append(f"[{value}]")
    return "".join(parts)


def _matches(info: ListInfo, item: Any, index: int, el: Element) -> bool:
    return element(info, item, index) == el


def remove(obj: Obj, path: Path, kind: str) -> Obj:
    """``obj`` without the field or list element at ``path`` (a copy; absent paths are no-ops)."""
    result = copy.deepcopy(obj)
    _remove(result, path, kind, ())
    return result


def _remove(node: Any, path: Path, kind: str, location: Location) -> None:
    head, rest = path[0], path[1:]
    if isinstance(node, dict) and head[0] == "f":
        name = head[1]
        if name not in node:
            return
        if not rest:
            del node[name]
            return
        child = node[name]
        if isinstance(child, list):
            _remove_from_list(child, rest, kind, (*location, name))
        else:
            _remove(child, rest, kind, (*location, name))


def _remove_from_list(items: list[Any], path: Path, kind: str, location: Location) -> None:
    info = list_info(kind, location)
    for index, item in enumerate(items):
        if _matches(info, item, index, path[0]):
            if len(path) == 1:
                del items[index]
            else:
                _remove(item, path[1:], kind, (*location, "[]"))
            return
