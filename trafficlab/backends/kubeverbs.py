"""The lab contract's object verbs (apply, get, patch, delete) over the Kubernetes API.

Both backends use this one implementation on a :class:`~trafficlab.backends.kubeclient.KubeClient`;
what differs is the ``apply`` write: the kind backend uses server-side apply (field manager
``trafficlab``, forced), the local backend a create or a whole-object update (POST or PUT), which
is what its API server's apply has always meant (the file states the object). A server that does
not take server-side apply patches (415) gets the create-or-update too.

All or none: every object of an apply (and every target of a delete) is first checked by the
server (``dryRun=All``, or a GET for a delete) before the first write, so an invalid object stops
the whole call; a backend adds the rules that span objects (``batch_check``). Two writers
racing, or a server failing between two writes, can still leave the first objects written: the
Kubernetes API has no multi-object transaction.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any, Literal

from trafficlab._errors import NotFoundError, TrafficLabError, ValidationError
from trafficlab.backends.base import Obj
from trafficlab.backends.kubeclient import (
    APPLY_PATCH,
    FIELD_MANAGER_QUERY,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_PATCH,
    KubeClient,
    Resource,
    resource_for,
)

__all__ = ["ApplyMode", "KubeVerbs", "prepare"]

ApplyMode = Literal["server-side", "replace"]
Prepared = tuple[Resource, "str | None", str, Obj]

# Read-only metadata the API server sets; sent back in an apply it would be rejected or
# misread (managedFields must be empty in an apply; resourceVersion would make it conditional).
_SERVER_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation",
                    "selfLink")


class KubeVerbs:
    """apply / get / patch / delete of the lab contract on the client ``kube()`` returns."""

    def __init__(self, kube: Callable[[], KubeClient], *, apply_mode: ApplyMode,
                 batch_check: Callable[[list[Obj]], None] | None = None) -> None:
        self._kube = kube
        self.apply_mode: ApplyMode = apply_mode
        # Rules that span objects (the local lab's pod total), which a dry run of one object
        # cannot see: called with every object of an apply after the dry runs, before a write.
        self._batch_check = batch_check

    def apply(self, objects: list[Obj], *, namespace: str = "default",
              dry_run: bool = False) -> dict[str, Any]:
        """Apply every object: all are dry-run first, so an invalid one stops all.

        Objects in a Namespace this same apply creates cannot be dry-run before it exists: the
        new Namespaces are written first, the rest is dry-run, and a refusal deletes those
        Namespaces again. In a dry run such objects are not checked by the server (a warning
        says so), as ``kubectl apply --dry-run=server`` cannot check them either.
        """
        started = time.monotonic()
        kube = self._kube()
        kube.warnings.clear()
        prepared = [prepare(obj, namespace) for obj in objects]
        before = [self.get_or_none(res, ns, name) for res, ns, name, _ in prepared]
        new_namespaces = {name for (res, _, name, _), old in zip(prepared, before, strict=True)
                          if res.kind == "Namespace" and old is None}
        waits = [i for i, (res, ns, _, _) in enumerate(prepared)
                 if res.namespaced and ns in new_namespaces]
        results: list[Obj | None] = [None] * len(prepared)
        for i, (item, old) in enumerate(zip(prepared, before, strict=True)):
            if i not in waits:
                results[i] = self._write(kube, item, old, dry_run=True)
        if self._batch_check is not None:
            self._batch_check([body for _, _, _, body in prepared])
        extra: list[str] = []
        if dry_run:
            for i in waits:
                res, ns, name, body = prepared[i]
                results[i] = body
                extra.append(f"{res.kind} {ns}/{name} was not checked by the server: its "
                             f"namespace {ns} is created by this apply")
        else:
            created = []
            for i, (item, old) in enumerate(zip(prepared, before, strict=True)):
                if item[0].kind == "Namespace" and item[2] in new_namespaces:
                    results[i] = self._write(kube, item, old, dry_run=False)
                    created.append(item)
            try:
                for i in waits:
                    results[i] = self._write(kube, prepared[i], None, dry_run=True)
            except TrafficLabError:
                for res, _, name, _ in created:  # all or none: take them back
                    kube.request("DELETE", res.path(None, name), kind=res.kind, name=name)
                raise
            for i, (item, old) in enumerate(zip(prepared, before, strict=True)):
                if item not in created:
                    results[i] = self._write(kube, item, old, dry_run=False)
        changes = []
        for (res, ns, name, _), old, new in zip(prepared, before, results, strict=True):
            action = ("created" if old is None else
                      "unchanged" if _comparable(old) == _comparable(new) else "configured")
            changes.append(change(res, ns, name, action, dry_run))
        return {"changes": changes, "warnings": _unique(kube.warnings + extra), "error": None,
                "seconds": time.monotonic() - started, "objects": results}

    def get(self, kind: str, name: str | None = None, *, namespace: str | None = "default",
            all_namespaces: bool = False) -> list[Obj]:
        """Objects with their status (managedFields left out, as kubectl does by default)."""
        res = resource_for(kind)
        ns = namespace if res.namespaced and not all_namespaces else None
        kube = self._kube()
        if name:
            obj = kube.request("GET", res.path(ns or "default" if res.namespaced else None, name),
                               kind=kind, namespace=ns, name=name)
            return [_clean(obj)]
        answer = kube.request("GET", res.path(ns))
        items = []
        for item in answer.get("items", []):
            # List items come without apiVersion and kind; kubectl fills them in the same way.
            item.setdefault("apiVersion", res.api_version)
            item.setdefault("kind", res.kind)
            items.append(_clean(item))
        return items

    def get_or_none(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        """The object, or None when the server answers 404."""
        try:
            return dict(self._kube().request("GET", res.path(namespace, name), kind=res.kind,
                                             namespace=namespace, name=name))
        except NotFoundError:
            return None

    def patch(self, kind: str, name: str, patch: Any, *, patch_type: str = "merge",
              namespace: str = "default", dry_run: bool = False) -> dict[str, Any]:
        """kubectl patch: ``merge`` (RFC 7386), ``json`` (RFC 6902) or ``strategic`` (core kinds)."""
        started = time.monotonic()
        res = resource_for(kind)
        ns = (namespace or "default") if res.namespaced else None
        content_type = _patch_content_type(res, ns, name, patch, patch_type)
        kube = self._kube()
        kube.warnings.clear()
        old = kube.request("GET", res.path(ns, name), kind=kind, namespace=ns, name=name)
        query = dict(FIELD_MANAGER_QUERY)
        if dry_run:
            query["dryRun"] = "All"
        new = kube.request("PATCH", res.path(ns, name), query=query, body=patch,
                           content_type=content_type, kind=kind, namespace=ns, name=name)
        action = "unchanged" if _comparable(old) == _comparable(new) else "patched"
        return {"changes": [change(res, ns, name, action, dry_run)],
                "warnings": _unique(kube.warnings), "error": None,
                "seconds": time.monotonic() - started, "objects": [new]}

    def delete(self, refs: list[tuple[str, str, str]], *, dry_run: bool = False,
               ignore_not_found: bool = False) -> dict[str, Any]:
        """Delete every object; a missing one stops all of them unless ``ignore_not_found``."""
        started = time.monotonic()
        kube = self._kube()
        kube.warnings.clear()
        targets = []
        for kind, namespace, name in refs:
            res = resource_for(kind)
            ns = (namespace or "default") if res.namespaced else None
            if self.get_or_none(res, ns, name) is None:
                if ignore_not_found:
                    continue
                raise NotFoundError(f'{res.plural}{"." + res.group if res.group else ""} '
                                    f'"{name}" not found')
            targets.append((res, ns, name))
        changes = []
        for res, ns, name in targets:
            query = {"dryRun": "All"} if dry_run else {}
            kube.request("DELETE", res.path(ns, name), query=query, kind=res.kind, namespace=ns,
                         name=name, body={"kind": "DeleteOptions", "apiVersion": "v1",
                                          "propagationPolicy": "Background"})
            changes.append(change(res, ns, name, "deleted", dry_run))
        return {"changes": changes, "warnings": _unique(kube.warnings), "error": None,
                "seconds": time.monotonic() - started}

    # -- writes -----------------------------------------------------------------------------
    def _write(self, kube: KubeClient, item: Prepared, old: Obj | None, *, dry_run: bool) -> Obj:
        if self.apply_mode == "server-side":
            try:
                return _server_side_apply(kube, item, dry_run=dry_run)
            except TrafficLabError:
                if kube.last_status != 415:
                    raise
                self.apply_mode = "replace"  # 415: this server takes no apply patches
        return _create_or_update(kube, item, old, dry_run=dry_run)


def _server_side_apply(kube: KubeClient, item: Prepared, *, dry_run: bool) -> Obj:
    res, ns, name, body = item
    # force: the lab's apply states the desired spec, like 'kubectl apply --server-side
    # --force-conflicts'; fields another manager set (kubectl edit, say) move to trafficlab.
    query = {**FIELD_MANAGER_QUERY, "force": "true"}
    if dry_run:
        query["dryRun"] = "All"
    return dict(kube.request("PATCH", res.path(ns, name), query=query, body=body,
                             content_type=APPLY_PATCH, kind=res.kind, namespace=ns, name=name))


def _create_or_update(kube: KubeClient, item: Prepared, old: Obj | None, *,
                      dry_run: bool) -> Obj:
    """POST a new object, PUT an existing one whole (at the version read, else 409 Conflict)."""
    res, ns, name, body = item
    query = dict(FIELD_MANAGER_QUERY)
    if dry_run:
        query["dryRun"] = "All"
    if old is None:
        return dict(kube.request("POST", res.path(ns), query=query, body=body, kind=res.kind,
                                 namespace=ns, name=name))
    return dict(kube.request("PUT", res.path(ns, name), query=query, body=body, kind=res.kind,
                             namespace=ns, name=name))


# -- pure helpers ---------------------------------------------------------------------------
def prepare(obj: Obj, namespace: str) -> Prepared:
    """Where ``obj`` goes (resource, namespace, name) and the body to send."""
    if not isinstance(obj, dict):
        raise ValidationError("(object)", None, None, "", "each manifest must be an object")
    kind = str(obj.get("kind") or "")
    res = resource_for(kind, obj.get("apiVersion"))
    body = copy.deepcopy(obj)
    body.pop("status", None)
    meta = body.setdefault("metadata", {})
    name = meta.get("name")
    if not name:
        raise ValidationError(kind, None, None, "metadata.name", "Required value: name is required")
    for key in _SERVER_METADATA:
        meta.pop(key, None)
    ns: str | None = None
    if res.namespaced:
        ns = str(meta.get("namespace") or namespace or "default")
        meta["namespace"] = ns
    else:
        meta.pop("namespace", None)
    body["apiVersion"] = body.get("apiVersion") or res.api_version
    return res, ns, str(name), body


def _unique(warnings: list[str]) -> list[str]:
    """Each warning once (the dry run and the write of an object both carry it)."""
    return list(dict.fromkeys(warnings))


def _clean(obj: Obj) -> Obj:
    obj.get("metadata", {}).pop("managedFields", None)
    return obj


def _comparable(obj: Obj | None) -> Obj | None:
    """The object without what the server changes on every write (for created/unchanged)."""
    if obj is None:
        return None
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in out.get("metadata", {}).items() if k not in _SERVER_METADATA}
    out["metadata"] = meta
    return out


def change(res: Resource, ns: str | None, name: str, action: str, dry_run: bool) -> dict[str, Any]:
    """One line of kubectl's output (``deployment.apps/web configured``), with its parts."""
    return {"kind": res.kind, "namespace": ns or "", "name": name, "action": action,
            "text": f"{res.qualified_singular}/{name} {action}{' (dry run)' if dry_run else ''}"}


def _patch_content_type(res: Resource, ns: str | None, name: str, patch: Any,
                        patch_type: str) -> str:
    if patch_type == "merge":
        if not isinstance(patch, dict):
            raise ValidationError(res.kind, ns, name, "", "a merge patch must be a JSON object, "
                                  "like '{\"spec\": {...}}'")
        return MERGE_PATCH
    if patch_type == "json":
        if not isinstance(patch, list):
            raise ValidationError(res.kind, ns, name, "", "a JSON patch must be a list of "
                                  "operations, like '[{\"op\": \"replace\", \"path\": "
                                  "\"/spec/...\", \"value\": 1}]'")
        return JSON_PATCH
    if patch_type == "strategic":
        if res.custom:
            # The API server answers 415 for strategic merge patches of custom resources.
            raise ValidationError(res.kind, ns, name, "", "strategic merge patch is not supported "
                                  f"for custom resources like {res.kind} (kubectl answers 'the "
                                  "body of the request was in an unknown format'); use --type "
                                  "merge or --type json")
        if not isinstance(patch, dict):
            raise ValidationError(res.kind, ns, name, "", "a strategic merge patch must be a "
                                  "JSON object")
        return STRATEGIC_PATCH
    raise ValidationError(res.kind, ns, name, "", f'unknown patch type "{patch_type}": use '
                          "merge, json or strategic")
