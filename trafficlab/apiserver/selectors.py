"""Label and field selectors on lists (``kubectl get -l app=x``, ``fieldSelector=metadata.name=y``).

The equality subset: ``k=v``, ``k==v``, ``k!=v``, ``k`` and ``!k``, comma-separated (all must
hold). Set-based selectors (``k in (a,b)``) are refused with a message rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trafficlab.apiserver.status import ApiError, status

__all__ = ["field_selector", "label_selector"]

Obj = dict[str, Any]
Test = Callable[[Obj], bool]


def _terms(text: str, what: str) -> list[tuple[str, str, str | None]]:
    terms: list[tuple[str, str, str | None]] = []
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            continue
        if "(" in term or " in " in term or " notin " in term:
            raise ApiError(status("BadRequest", f'unable to parse requirement "{term}": the lab '
                                  f"understands only equality {what} selectors (k=v, k!=v, k, !k)"))
        if "!=" in term:
            key, _, value = term.partition("!=")
            terms.append((key.strip(), "!=", value.strip()))
        elif "=" in term:
            key, _, value = term.partition("==" if "==" in term else "=")
            terms.append((key.strip(), "=", value.strip()))
        elif term.startswith("!"):
            terms.append((term[1:].strip(), "!", None))
        else:
            terms.append((term, "exists", None))
    return terms


def _holds(op: str, present: bool, actual: str | None, wanted: str | None) -> bool:
    if op == "=":
        return present and actual == wanted
    if op == "!=":
        return not present or actual != wanted
    if op == "!":
        return not present
    return present


def label_selector(text: str | None) -> Test:
    """A test for ``labelSelector``; no selector selects everything."""
    terms = _terms(text or "", "label")

    def test(obj: Obj) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(_holds(op, key in labels, labels.get(key), value) for key, op, value in terms)

    return test


_FIELDS = ("metadata.name", "metadata.namespace",
           # Events, as kubectl describe selects them:
           "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
           "involvedObject.uid", "involvedObject.apiVersion", "reason", "type")


def _field(obj: Obj, dotted: str) -> str:
    value: Any = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def field_selector(text: str | None) -> Test:
    """A test for ``fieldSelector`` on ``metadata.name``, ``metadata.namespace`` and an
    Event's ``involvedObject.*``, ``reason`` and ``type``."""
    terms = _terms(text or "", "field")
    for key, op, _ in terms:
        if key not in _FIELDS or op not in ("=", "!="):
            raise ApiError(status("BadRequest", f'"{key}" is not a known field selector: the lab '
                                  "selects on metadata.name and metadata.namespace (and an "
                                  "Event's involvedObject fields) with = or !="))

    def test(obj: Obj) -> bool:
        return all(_holds(op, True, _field(obj, key), value) for key, op, value in terms)

    return test
