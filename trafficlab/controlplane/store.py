"""The object store: Kubernetes metadata semantics, all-or-nothing writes, persisted in the lab home.

Data flows one way: callers hand in raw objects, ``validate`` (resources) checks and defaults them,
the store assigns metadata and keeps them. Status is written only by the reconciler.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import jsonpatch

from trafficlab._errors import (
    AlreadyExistsError,
    ConflictError,
    NotFoundError,
    TrafficLabError,
    ValidationError,
)
from trafficlab.controlplane.journal import Journal
from trafficlab.controlplane.snapshot import ObjectKey, Snapshot
from trafficlab.resources import KINDS, validate

__all__ = ["Change", "ObjectStore", "merge_patch", "now_rfc3339"]

Obj = dict[str, Any]
Action = Literal["created", "configured", "unchanged", "deleted", "patched"]

# Seeded like a fresh cluster: these namespaces always exist.
_BUILTIN_NAMESPACES = ("default", "kube-system")
_METADATA_FROM_USER = ("labels", "annotations")


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Change:
    """What one write did to one object, in kubectl's words."""

    key: ObjectKey
    action: Action

    def describe(self, dry_run: bool = False) -> str:
        info = KINDS[self.key.kind]
        resource = f"{info.kind.lower()}.{info.group}" if info.group else info.kind.lower()
        suffix = " (dry run)" if dry_run else ""
        if self.action == "patched" and dry_run:
            return f"{resource}/{self.key.name} patched{suffix}"
        return f"{resource}/{self.key.name} {self.action}{suffix}"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as ``kubectl patch --type merge`` applies it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


class ObjectStore:
    """Thread-safe store of lab objects with a global revision, persisted by a Journal.

    Every mutating method validates everything first and commits last, so a failing
    request leaves the store exactly as it was.
    """

    def __init__(self, path: Path | None = None,
                 admit: Callable[[Obj, Mapping[ObjectKey, Obj]], None] | None = None,
                 pending: Callable[[Obj, str], Obj | None] | None = None) -> None:
        self._admit = admit
        # The status an object gets when its generation moves on, until the controller has
        # reconciled it (controlplane/status.py's mark_pending).
        self._pending = pending
        self._lock = threading.RLock()
        self._journal = Journal(path) if path is not None else None
        self.revision, self._objects = self._journal.load() if self._journal else (0, {})
        # The keys in snapshot order, kept while no key comes or goes (sorting 5,000 keys on
        # every reconcile cost milliseconds).
        self._order: list[ObjectKey] | None = None
        for ns in _BUILTIN_NAMESPACES:
            key = ObjectKey("Namespace", "", ns)
            if key not in self._objects:
                self._objects[key] = self._stamp(
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, None)

    # -- reads -------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(revision=self.revision,
                            objects=tuple(copy.deepcopy(o) for _, o in sorted(self._objects.items())))

    def shared_snapshot(self) -> Snapshot:
        """The store at this revision without copying: the objects are the store's own.

        What the reconciler reads on every write: deep-copying thousands of routes cost it
        more than translating them. Callers must not mutate the objects; the store never
        mutates an object once committed (every write replaces it), so the view stays as it
        was while the store moves on.
        """
        with self._lock:
            if self._order is None:
                self._order = sorted(self._objects, key=lambda k: (k.kind, k.namespace, k.name))
            objects = self._objects
            return Snapshot(revision=self.revision, objects=tuple(objects[k] for k in self._order))

    def get(self, key: ObjectKey) -> Obj:
        with self._lock:
            obj = self._objects.get(key)
            if obj is None:
                raise NotFoundError(_not_found(key))
            return copy.deepcopy(obj)

    def items(self, kind: str, namespace: str | None = None) -> list[Obj]:
        with self._lock:
            return [copy.deepcopy(o) for k, o in sorted(self._objects.items())
                    if k.kind == kind and (namespace is None or k.namespace == namespace)]

    # -- writes ------------------------------------------------------------------------
    def apply(self, objects: Iterable[Obj], *, dry_run: bool = False,
              default_namespace: str = "default") -> list[Change]:
        """Create or update every object, or none of them (kubectl apply)."""
        with self._lock:
            staged = dict(self._objects)
            changes: list[Change] = []
            for raw in objects:
                obj = self._prepare(raw, default_namespace, staged)
                key = ObjectKey.of(obj)
                old = staged.get(key)
                if old is None:
                    staged[key] = obj
                    changes.append(Change(key, "created"))
                    continue
                merged = self._updated(old, obj)
                changed = merged != old
                staged[key] = merged
                changes.append(Change(key, "configured" if changed else "unchanged"))
            if not dry_run:
                self._commit(staged, [c for c in changes if c.action != "unchanged"])
            return changes

    def create(self, raw: Obj, *, default_namespace: str = "default") -> Change:
        with self._lock:
            obj = self._prepare(raw, default_namespace, self._objects)
            key = ObjectKey.of(obj)
            if key in self._objects:
                raise AlreadyExistsError(f'{_resource(key)} "{key.name}" already exists')
        return self.apply([raw], default_namespace=default_namespace)[0]

    def patch(self, key: ObjectKey, patch: Any, patch_type: str, *,
              dry_run: bool = False) -> Change:
        """kubectl patch: ``merge`` (RFC 7386) or ``json`` (RFC 6902), validated like an apply."""
        with self._lock:
            current = self.get(key)
            user_view = {k: v for k, v in current.items() if k != "status"}
            patched = _apply_patch(user_view, patch, patch_type, key)
            if not isinstance(patched, dict):
                raise ValidationError(key.kind, key.namespace or None, key.name, "",
                                      "the patch must produce an object")
            if ObjectKey.of(_with_identity(patched, key)) != key:
                raise ValidationError(key.kind, key.namespace or None, key.name, "metadata.name",
                                      "a patch cannot change the kind, name or namespace")
            staged = dict(self._objects)
            obj = self._prepare(patched, key.namespace or "default", staged)
            merged = self._updated(self._objects[key], obj)
            changed = merged != self._objects[key]
            staged[key] = merged
            if changed and not dry_run:
                self._commit(staged, [Change(key, "patched")])
            return Change(key, "patched" if changed else "unchanged")

    def delete(self, keys: Iterable[ObjectKey], *, dry_run: bool = False,
               ignore_not_found: bool = False) -> list[Change]:
        with self._lock:
            staged = dict(self._objects)
            changes: list[Change] = []
            for key in keys:
                if key not in staged:
                    if ignore_not_found:
                        continue
                    raise NotFoundError(_not_found(key))
                if key.kind == "Namespace" and key.name in _BUILTIN_NAMESPACES:
                    raise ConflictError(f'namespaces "{key.name}" is built in and cannot be deleted')
                del staged[key]
                if key.kind == "Namespace":  # a namespace takes its objects with it
                    for other in [k for k in staged if k.namespace == key.name]:
                        del staged[other]
                changes.append(Change(key, "deleted"))
            if not dry_run:
                self._commit(staged, changes)
            return changes

    def write_statuses(self, statuses: dict[ObjectKey, Obj]) -> None:
        """Write the status blocks the reconciler computed; unchanged ones are skipped."""
        with self._lock:
            updated = dict(self._objects)
            revision = self.revision
            for key, status in statuses.items():
                obj = updated.get(key)
                if obj is None or obj.get("status") == status:
                    continue
                obj = copy.deepcopy(obj)
                obj["status"] = copy.deepcopy(status)
                revision += 1
                obj["metadata"]["resourceVersion"] = str(revision)
                updated[key] = obj
            if revision != self.revision:
                self._save(updated, revision, [k for k in statuses if updated.get(k) is not
                                               self._objects.get(k)])
                self._objects, self.revision = updated, revision

    # -- internals ---------------------------------------------------------------------
    def _prepare(self, raw: Obj, default_namespace: str, staged: dict[ObjectKey, Obj]) -> Obj:
        if not isinstance(raw, dict):
            raise ValidationError("(unknown)", None, None, "", "expected an object (a YAML mapping)")
        obj = copy.deepcopy(raw)
        kind = obj.get("kind")
        info = KINDS.get(kind) if isinstance(kind, str) else None
        meta = obj.get("metadata")
        if info is not None and isinstance(meta, dict):
            if info.namespaced:
                meta.setdefault("namespace", default_namespace)
            elif "namespace" in meta:
                meta.pop("namespace")  # cluster-scoped: kubectl drops it too
        validated = validate(obj)
        key = ObjectKey.of(validated)
        if key.namespace and ObjectKey("Namespace", "", key.namespace) not in staged:
            raise NotFoundError(f'namespaces "{key.namespace}" not found '
                                f"(while applying {key}); create the Namespace first")
        if self._admit is not None:
            self._admit(validated, {**staged, key: validated})  # the store after this write
        return self._stamp(validated, staged.get(key))

    def _stamp(self, obj: Obj, old: Obj | None) -> Obj:
        meta = obj.setdefault("metadata", {})
        for field in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"):
            meta.pop(field, None)
        obj.pop("status", None)
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            meta["generation"] = 1
            meta["resourceVersion"] = "0"
        return obj

    def _updated(self, old: Obj, new: Obj) -> Obj:
        """The stored object after an update: user fields from ``new``, identity and status kept."""
        merged = copy.deepcopy(new)
        meta = merged["metadata"]
        old_meta = old["metadata"]
        for field in ("uid", "creationTimestamp", "generation", "resourceVersion"):
            meta[field] = old_meta[field]
        for field in _METADATA_FROM_USER:
            if not meta.get(field):
                meta.pop(field, None)
        if "status" in old:
            merged["status"] = copy.deepcopy(old["status"])
        user_old = {k: v for k, v in old.items() if k not in ("metadata", "status")}
        user_new = {k: v for k, v in merged.items() if k not in ("metadata", "status")}
        if user_old != user_new:
            meta["generation"] = int(old_meta["generation"]) + 1
            if self._pending is not None and "status" in merged:
                marked = self._pending(merged, now_rfc3339())
                if marked is not None:
                    merged["status"] = marked
        old_cmp = {k: old_meta.get(k) for k in _METADATA_FROM_USER}
        new_cmp = {k: meta.get(k) for k in _METADATA_FROM_USER}
        if user_old == user_new and old_cmp == new_cmp:
            return old
        return merged

    def _commit(self, staged: dict[ObjectKey, Obj], changes: list[Change]) -> None:
        if not changes:
            return
        revision = self.revision + 1
        for change in changes:
            obj = staged.get(change.key)
            if obj is not None:
                obj["metadata"]["resourceVersion"] = str(revision)
        # Disk first: a change that cannot be stored is not made in memory either, so the
        # store, the file and what Envoy serves never disagree.
        self._save(staged, revision, [c.key for c in changes])
        if any(c.action in ("created", "deleted") for c in changes):
            self._order = None
        self._objects, self.revision = staged, revision

    def _save(self, objects: dict[ObjectKey, Obj], revision: int,
              changed: list[ObjectKey]) -> None:
        if self._journal is not None:
            self._journal.append(revision, objects, changed)

    def compact(self) -> None:
        """Fold the journal into a new snapshot now (writes do it when the journal grows)."""
        with self._lock:
            if self._journal is not None:
                self._journal.compact(self.revision, self._objects)


def _resource(key: ObjectKey) -> str:
    info = KINDS[key.kind]
    return f"{info.plural}.{info.group}" if info.group else info.plural


def _not_found(key: ObjectKey) -> str:
    return f'{_resource(key)} "{key.name}" not found'


def _with_identity(obj: Obj, key: ObjectKey) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return {"kind": obj.get("kind"), "metadata": {"name": None}}
    out = dict(obj)
    out["metadata"] = {**meta}
    if key.namespace:
        out["metadata"].setdefault("namespace", key.namespace)
    return out


def _apply_patch(current: Obj, patch: Any, patch_type: str, key: ObjectKey) -> Any:
    if patch_type == "merge":
        if not isinstance(patch, dict):
            raise ValidationError(key.kind, key.namespace or None, key.name, "",
                                  "a merge patch must be a JSON object, like "
                                  "'{\"spec\": {...}}'")
        return merge_patch(current, patch)
    if patch_type == "json":
        if not isinstance(patch, list):
            raise ValidationError(key.kind, key.namespace or None, key.name, "",
                                  "a JSON patch must be a list of operations, like "
                                  "'[{\"op\": \"replace\", \"path\": \"/spec/...\", \"value\": 1}]'")
        try:
            return jsonpatch.apply_patch(current, patch)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise ConflictError(f"{key}: the patch's test operation failed: {exc}") from exc
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise ValidationError(key.kind, key.namespace or None, key.name, "",
                                  f"the JSON patch cannot be applied: {exc}") from exc
        except (TypeError, KeyError, IndexError) as exc:
            raise ValidationError(key.kind, key.namespace or None, key.name, "",
                                  f"the JSON patch is malformed: {exc}") from exc
    if patch_type == "strategic":
        info = KINDS[key.kind]
        if info.group.endswith("gateway.networking.k8s.io"):
            # kubectl's default patch type does not work on custom resources; say so as it does.
            raise ValidationError(key.kind, key.namespace or None, key.name, "",
                                  "strategic merge patch is not supported for custom resources "
                                  f"like {info.kind} (kubectl answers 'the body of the request was "
                                  "in an unknown format'); use --type merge or --type json")
        # Core kinds: the lab applies strategic patches as merge patches (lists are replaced).
        return _apply_patch(current, patch, "merge", key)
    raise TrafficLabError(f'unknown patch type "{patch_type}"; use merge or json')
