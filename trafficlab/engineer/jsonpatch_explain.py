"""RFC 6902 JSON patch, applied the way the API server does, with errors that say exactly why.

kubectl sends ``--type=json`` patches to the API server, which applies them with
github.com/evanphx/json-patch: ``replace`` and ``remove`` need the target to exist, ``add`` needs
its parent (an array index may be the length, or ``-``, to append), ``test`` compares values. On
the first failing operation nothing is changed. Here each failure names the operation, the part
of the JSON pointer that does not exist, and what is there instead.

>>> doc = {"spec": {"rules": [{"backendRefs": [{"name": "v1", "weight": 1}]}]}}
>>> apply_json_patch(doc, [{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight",
...                         "value": 9}])["spec"]["rules"][0]["backendRefs"][0]["weight"]
9
>>> try:
...     apply_json_patch(doc, [{"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight",
...                             "value": 1}])
... except PatchError as err:
...     print(err.message.split("): ")[1])
/spec/rules/0/backendRefs has 1 item (index 0: v1), so index 1 does not exist
"""

from __future__ import annotations

import copy
import re
from typing import Any

__all__ = ["OPS", "PatchError", "apply_json_patch", "parse_pointer"]

OPS = ("add", "remove", "replace", "move", "copy", "test")
_INDEX = re.compile(r"0|[1-9][0-9]*")


class PatchError(Exception):
    """A JSON patch that cannot be applied; ``code`` says which kind of problem.

    Codes: ``patch-shape`` (not a list of objects), ``op-missing``, ``op-unknown``,
    ``path-syntax``, ``value-missing``, ``path-missing``, ``test-failed``.
    """

    def __init__(self, code: str, message: str, hint: str = "", index: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.index = index


def parse_pointer(pointer: str) -> list[str]:
    """RFC 6901: ``/spec/rules/0`` -> ``["spec", "rules", "0"]`` (``~1`` is ``/``, ``~0`` is ``~``)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(pointer)
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _label(item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        return str(item["name"])
    if isinstance(item, dict):
        return "{" + ", ".join(list(item)[:4]) + "}"
    return repr(item)


def _describe(container: Any, where: str) -> str:
    if isinstance(container, list):
        if not container:
            return f"{where} is an empty list"
        items = ", ".join(f"index {i}: {_label(x)}" for i, x in enumerate(container))
        return f"{where} has {len(container)} item{'s' if len(container) != 1 else ''} ({items})"
    if isinstance(container, dict):
        return f"{where} has the keys {', '.join(container) or '(none)'}"
    return f"{where} is {type(container).__name__} {container!r}, which has no members"


def _join(tokens: list[str]) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens) or "(the root)"


def _walk(doc: Any, tokens: list[str], label: str) -> Any:
    """The value at ``tokens``; raises path-missing naming the first token that does not exist."""
    node = doc
    for depth, token in enumerate(tokens):
        where = _join(tokens[:depth])
        if isinstance(node, dict):
            if token not in node:
                close = [k for k in node if k.lower() == token.lower()]
                hint = f' (keys are case-sensitive: "{close[0]}")' if close else ""
                raise PatchError("path-missing", f"{label}: {_describe(node, where)}, not "
                                 f'"{token}"{hint}')
            node = node[token]
        elif isinstance(node, list):
            if not _INDEX.fullmatch(token):
                raise PatchError("path-missing", f"{label}: {where} is a list, and {token!r} is not "
                                 "an index (0, 1, ...)")
            if int(token) >= len(node):
                raise PatchError("path-missing", f"{label}: {_describe(node, where)}, so index "
                                 f"{token} does not exist")
            node = node[int(token)]
        else:
            raise PatchError("path-missing", f"{label}: {_describe(node, where)}")
    return node


def _add(doc: Any, tokens: list[str], value: Any, label: str) -> Any:
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1], label)
    last = tokens[-1]
    where = _join(tokens[:-1])
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif _INDEX.fullmatch(last) and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError("path-missing", f"{label}: {_describe(parent, where)}; add takes an "
                             f"index from 0 to {len(parent)} (or - to append), not {last}")
    else:
        raise PatchError("path-missing", f"{label}: {_describe(parent, where)}")
    return doc


def _remove(doc: Any, tokens: list[str], label: str) -> tuple[Any, Any]:
    if not tokens:
        raise PatchError("path-syntax", f"{label}: the whole object cannot be removed")
    _walk(doc, tokens, label)  # must exist
    parent = _walk(doc, tokens[:-1], label)
    last = tokens[-1]
    if isinstance(parent, dict):
        return doc, parent.pop(last)
    return doc, parent.pop(int(last))


def _replace(doc: Any, tokens: list[str], value: Any, label: str) -> Any:
    if not tokens:
        return value
    _walk(doc, tokens, label)  # replace needs the target to exist, unlike add
    parent = _walk(doc, tokens[:-1], label)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    else:
        parent[int(last)] = value
    return doc


def _pointer(op: dict[str, Any], key: str, label: str) -> list[str]:
    if key not in op:
        raise PatchError("path-syntax", f'{label}: "{key}" is missing')
    value = op[key]
    if not isinstance(value, str):
        raise PatchError("path-syntax", f'{label}: "{key}" must be a string, not {value!r}')
    try:
        return parse_pointer(value)
    except ValueError:
        slashes = "/" + re.sub(r"\[(\d+)\]", r"/\1", value).replace(".", "/").lstrip("/")
        raise PatchError("path-syntax", f'{label}: "{key}" {value!r} is not a JSON pointer (it must '
                         'start with "/")', f"write it as {slashes!r}") from None


def apply_json_patch(document: Any, patch: Any) -> Any:
    """Apply ``patch`` to a copy of ``document``; raise :class:`PatchError` on the first problem."""
    if not isinstance(patch, list):
        raise PatchError("patch-shape", "a JSON patch is a list of operations, not a "
                         f"{type(patch).__name__}",
                         "write [{\"op\": \"replace\", \"path\": \"/spec/...\", \"value\": ...}], "
                         "or use --type=merge for an object")
    doc = copy.deepcopy(document)
    for i, op in enumerate(patch):
        if not isinstance(op, dict):
            raise PatchError("patch-shape", f"operation {i} is a {type(op).__name__}, not an object",
                             index=i)
        if "op" not in op:
            raise PatchError("op-missing", f'operation {i} has no "op" (it has {", ".join(op) or "nothing"})',
                             'add "op": "replace" (or add, remove, move, copy, test)', i)
        name = op["op"]
        if name not in OPS:
            raise PatchError("op-unknown", f'operation {i}: "op" {name!r} is not one of {", ".join(OPS)}',
                             "RFC 6902 has only these six operations", i)
        label = f"operation {i} ({name} {op.get('path', '')})"
        tokens = _pointer(op, "path", label)
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError("value-missing", f'{label}: "value" is missing', "add \"value\": ...", i)
        try:
            if name == "add":
                doc = _add(doc, tokens, copy.deepcopy(op["value"]), label)
            elif name == "remove":
                doc, _ = _remove(doc, tokens, label)
            elif name == "replace":
                doc = _replace(doc, tokens, copy.deepcopy(op["value"]), label)
            elif name == "test":
                actual = _walk(doc, tokens, label)
                if actual != op["value"]:
                    raise PatchError("test-failed", f"{label}: the value is {actual!r}, not "
                                     f"{op['value']!r}; the whole patch is refused",
                                     "the live object is not what the patch expects: look at it "
                                     "first (kubectl get httproute NAME -o yaml)")
            else:  # move, copy
                source = _pointer(op, "from", label)
                if name == "move":
                    if tokens[:len(source)] == source and tokens != source:
                        raise PatchError("path-syntax", f"{label}: cannot move a value into itself")
                    doc, value = _remove(doc, source, label)
                else:
                    value = copy.deepcopy(_walk(doc, source, label))
                doc = _add(doc, tokens, value, label)
        except PatchError as err:
            err.index = i
            raise
    return doc
