"""Server-side apply and ``metadata.managedFields``, as Kubernetes' structured merge defines them.

What this implements, read from the Kubernetes server-side apply documentation (not ported):

* an apply merges the applied configuration into the live object (keyed lists element by
  element, sets as a union, atomic lists and maps replaced whole) and makes the manager own
  exactly the fields of its configuration (operation ``Apply``);
* a field the apply changes that another manager owns is a conflict (409, listing each
  manager and field) unless ``force``, which takes the field from them;
* a field the manager applied before and leaves out now is removed from the object when no
  other manager owns it;
* any other write (create, update, patch) records operation ``Update``: its manager owns what
  it changed, and other managers lose those fields without a conflict.

Only user fields count: ``apiVersion``, ``kind``, ``status`` and metadata other than labels
and annotations are never owned, as on a cluster. Merging compares the configuration as sent
(before defaulting), which is why an HTTPRoute applied client-side conflicts on its atomic
``rules`` when first applied server-side.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from trafficlab._errors import ApplyConflict
from trafficlab.apiserver import fieldset
from trafficlab.apiserver.fieldset import NONLEAF, Path
from trafficlab.apiserver.listtypes import Location, list_info, map_type

__all__ = ["ApplyConflict", "apply_patch", "record_update", "user_fields"]

Obj = dict[str, Any]
_USER_METADATA = ("labels", "annotations", "finalizers")


def user_fields(obj: Obj | None) -> Obj:
    """The part of ``obj`` managers own: spec and the like, labels and annotations."""
    if not obj:
        return {}
    out = {k: copy.deepcopy(v) for k, v in obj.items()
           if k not in ("apiVersion", "kind", "metadata", "status") and v is not None}
    meta = obj.get("metadata") or {}
    kept = {k: copy.deepcopy(meta[k]) for k in _USER_METADATA if meta.get(k) is not None}
    if kept:
        out["metadata"] = kept
    return out


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _merge(live: Any, applied: Any, kind: str, location: Location) -> Any:
    if isinstance(live, dict) and isinstance(applied, dict) and \
            map_type(kind, location) != "atomic":
        out = dict(live)
        for name, value in applied.items():
            out[name] = _merge(live.get(name), value, kind, (*location, name))
        return out
    if isinstance(live, list) and isinstance(applied, list):
        info = list_info(kind, location)
        if info.list_type == "set":
            return list(live) + [v for v in applied if v not in live]
        if info.list_type == "map":
            out_list = list(live)
            for index, item in enumerate(applied):
                el = fieldset.element(info, item, index)
                at = next((i for i, old in enumerate(out_list)
                           if fieldset.element(info, old, i) == el), None)
                if at is None:
                    out_list.append(copy.deepcopy(item))
                else:
                    out_list[at] = _merge(out_list[at], item, kind, (*location, "[]"))
            return out_list
    return copy.deepcopy(applied)


def _changed(old: dict[Path, Any], new: dict[Path, Any]) -> set[Path]:
    """Paths added or modified from ``old`` to ``new`` (a parent whose children change is not)."""
    return {p for p, v in new.items()
            if p not in old or (old[p] != v and not (v is NONLEAF and old[p] is NONLEAF))}


def _entry_id(entry: Obj) -> tuple[str, str, str]:
    return (str(entry.get("manager", "")), str(entry.get("operation", "")),
            str(entry.get("subresource", "")))


def _who(entry: Obj) -> str:
    """A manager as the API names it in a conflict."""
    text = f'"{entry.get("manager", "")}"'
    if entry.get("subresource"):
        text += f' with subresource "{entry["subresource"]}"'
    if entry.get("operation") == "Update":
        text += f" using {entry.get('apiVersion', '')}"
        if entry.get("time"):
            text += f" at {entry['time']}"
    return text


def _entry(manager: str, operation: str, api_version: str, now: str, paths: Iterable[Path],
           subresource: str) -> Obj:
    out: Obj = {"manager": manager, "operation": operation, "apiVersion": api_version,
                "time": now, "fieldsType": "FieldsV1", "fieldsV1": fieldset.encode(paths)}
    if subresource:
        out["subresource"] = subresource
    return out


def _with_set(entry: Obj, paths: set[Path]) -> Obj:
    return {**entry, "fieldsV1": fieldset.encode(paths)}


def _entries(obj: Obj | None) -> list[Obj]:
    found = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    return [dict(e) for e in found if isinstance(e, dict)]


def _assemble(base: Obj, user: Obj, managed: list[Obj]) -> Obj:
    """``base``'s identity and status around new user fields and managedFields."""
    out: Obj = {k: copy.deepcopy(v) for k, v in base.items() if k in ("apiVersion", "kind")}
    meta = {k: copy.deepcopy(v) for k, v in (base.get("metadata") or {}).items()
            if k not in _USER_METADATA and k != "managedFields"}
    meta.update(user.get("metadata") or {})
    if managed:
        meta["managedFields"] = managed
    out["metadata"] = meta
    out.update({k: v for k, v in user.items() if k != "metadata"})
    return out


def apply_patch(live: Obj | None, applied: Obj, *, kind: str, manager: str, force: bool,
                now: str) -> Obj:
    """The object after ``manager`` applies ``applied`` to ``live`` (None: it does not exist).

    The result carries ``metadata.managedFields``; ``live``'s are read from its metadata.
    Raises :class:`ApplyConflict` when the apply changes another manager's fields and not
    ``force``.
    """
    applied = _drop_nulls(applied)
    live_user = user_fields(live)
    applied_user = user_fields(applied)
    merged = _merge(live_user, applied_user, kind, ())
    changed = _changed(fieldset.values(live_user, kind), fieldset.values(merged, kind))
    me = (manager, "Apply", "")
    entries = _entries(live)
    previous: set[Path] = set()
    others: list[tuple[Obj, set[Path]]] = []
    conflicts: list[tuple[str, str]] = []
    for entry in entries:
        owned = fieldset.decode(entry.get("fieldsV1"))
        if _entry_id(entry) == me:
            previous = owned
            continue
        hit = owned & changed
        conflicts.extend((_who(entry), fieldset.path_string(p)) for p in sorted(hit))
        others.append((entry, owned - hit if force else owned))
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    mine = set(fieldset.values(applied_user, kind, granular=False))
    kept = mine.union(*(owned for _, owned in others))
    removed: list[Path] = []
    for path in sorted(previous - kept, key=len):  # a list element before its fields
        if any(p[:len(path)] == path for p in kept):
            continue  # someone still owns a field inside it
        if any(path[:len(r)] == r for r in removed):
            continue  # gone with its parent
        merged = fieldset.remove(merged, path, kind)
        removed.append(path)
    managed: list[Obj] = []
    placed = False
    for entry in entries:
        if _entry_id(entry) == me:
            if mine:  # a manager that owns nothing any more is no longer listed
                managed.append(_entry(manager, "Apply", str(applied.get("apiVersion", "")),
                                      now, mine, ""))
            placed = True
            continue
        owned = next(o for e, o in others if e is entry)
        if owned:
            managed.append(_with_set(entry, owned) if force else entry)
    if not placed and mine:
        managed.append(_entry(manager, "Apply", str(applied.get("apiVersion", "")), now, mine, ""))
    base = live if live is not None else applied
    result = _assemble(base, merged, managed)
    result["apiVersion"] = applied.get("apiVersion", result.get("apiVersion"))
    result["kind"] = applied.get("kind", result.get("kind"))
    return result


def record_update(old: Obj | None, new: Obj, *, kind: str, manager: str,
                  operation: str = "Update", now: str, subresource: str = "") -> list[Obj]:
    """``new``'s managedFields after ``manager`` wrote it over ``old`` (None: a create).

    The managers start from ``old``'s managedFields; ``manager`` owns what changed, others
    lose it, and fields no longer in the object are owned by nobody.
    """
    old_values = fieldset.values(user_fields(old), kind)
    new_values = fieldset.values(user_fields(new), kind)
    changed = _changed(old_values, new_values)
    entries = _entries(old)
    if not changed and all(set(old_values) >= fieldset.decode(e.get("fieldsV1"))
                           for e in entries):
        return entries
    existing = set(new_values)
    me = (manager, operation, subresource)
    managed: list[Obj] = []
    mine: set[Path] = set(changed)
    for entry in entries:
        owned = fieldset.decode(entry.get("fieldsV1")) & existing
        if _entry_id(entry) == me:
            mine |= owned
            continue
        owned -= changed
        if owned:
            managed.append(entry if owned == fieldset.decode(entry.get("fieldsV1"))
                           else _with_set(entry, owned))
    if mine:
        managed.append(_entry(manager, operation, str(new.get("apiVersion", "")), now, mine,
                              subresource))
    return managed
