"""The REST verbs on resources: get, list, create, patch and delete, over the Controller.

Reads come from the store (pods from the pod manager); writes go through the controller's
apply, patch and delete, which validate, store and reconcile exactly as for ``trafficlab``
commands. Every failure leaves as an :class:`~trafficlab.apiserver.status.ApiError`.
"""

from __future__ import annotations

import copy
import json
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

from trafficlab._errors import ConflictError, TrafficLabError
from trafficlab.apiserver import discovery, openapi, tables
from trafficlab.apiserver.apply import ApplyConflict, apply_patch, record_update
from trafficlab.apiserver.catalog import ApiResource, find
from trafficlab.apiserver.managed import ManagedFieldsTable, field_manager
from trafficlab.apiserver.selectors import field_selector, label_selector
from trafficlab.apiserver.status import ApiError, from_lab_error, status, success
from trafficlab.apiserver.strategic import strategic_merge
from trafficlab.apiserver.watch import MAX_WATCH_SECONDS, watch_events
from trafficlab.apiserver.workload_status import deployment_status
from trafficlab.controlplane.controller import Controller
from trafficlab.controlplane.snapshot import ObjectKey
from trafficlab.controlplane.store import merge_patch, now_rfc3339
from trafficlab.resources import validate
from trafficlab.safe_files import load_yaml
from trafficlab.workloads.pods import Pod

__all__ = ["Answer", "Request", "RestHandlers", "TextBody", "WatchStream"]

Obj = dict[str, Any]

_PATCH_TYPES = {"application/merge-patch+json": "merge",
                "application/json-patch+json": "json",
                "application/strategic-merge-patch+json": "strategic"}


@dataclass
class Request:
    """One API request, already authenticated and size-checked."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    accept: str = ""
    content_type: str = ""
    body: bytes = b""
    user_agent: str = ""


@dataclass(frozen=True)
class WatchStream:
    """A watch's answer: events to send one per line, as they come."""

    events: Iterator[Obj]


@dataclass(frozen=True)
class TextBody:
    """A plain-text answer (``pods/X/log``)."""

    text: bytes


Answer = tuple[int, "Obj | WatchStream | TextBody"]

_MAX_LOG_BYTES = 1024 * 1024  # the tail of a pod's log that one request returns


@dataclass(frozen=True)
class _Target:
    res: ApiResource
    version: str
    namespace: str | None  # None: all namespaces (or a cluster-scoped kind)
    name: str | None
    subresource: str | None


def _not_found_path(path: str) -> ApiError:
    return ApiError(status("NotFound", f"the server could not find the requested resource "
                           f"({path}): the lab serves the kinds `kubectl api-resources` lists"))


def _tail(path: Path) -> bytes:
    """The last bytes of a regular file; a link (a pod could plant one) is not followed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as log:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        size = log.seek(0, 2)
        log.seek(max(0, size - _MAX_LOG_BYTES))
        return log.read()


def _parse(path: str) -> tuple[str, str, list[str]] | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    return None


class RestHandlers:
    """Answers every path of the API; ``server_address`` is ``host:port`` for ``/api``."""

    def __init__(self, controller: Controller, server_address: str,
                 stopping: threading.Event | None = None) -> None:
        self.controller = controller
        self.server_address = server_address
        self.stopping = stopping or threading.Event()
        self.managed = ManagedFieldsTable()
        # Every write through the API runs under this lock, from reading the live object (a
        # resourceVersion precondition, the managers) to recording its managedFields.
        self._writes = threading.RLock()

    # -- entry -------------------------------------------------------------------------
    def handle(self, req: Request) -> Answer:
        """The status code and JSON body answering ``req``."""
        try:
            return self._route(req)
        except ApiError as exc:
            return exc.code, exc.body

    def _route(self, req: Request) -> Answer:
        path = req.path.rstrip("/") or "/"
        if req.method == "GET":
            doc = self._discovery(path)
            if doc is not None:
                return 200, doc
        parsed = _parse(path)
        if parsed is None:
            raise _not_found_path(path)
        group, version, rest = parsed
        target = self._target(group, version, rest, path)
        return self._verb(req, target)

    def _discovery(self, path: str) -> Obj | None:
        if path == "/openapi/v3":
            return openapi.root()
        if path.startswith("/openapi/v3/"):
            text = openapi.document(path.removeprefix("/openapi/v3/"))
            if text is None:
                raise _not_found_path(path)
            doc: Obj = json.loads(text)
            return doc
        if path == "/version":
            return dict(discovery.version_info())
        if path == "/api":
            return discovery.api_versions(self.server_address)
        if path == "/apis":
            return discovery.group_list()
        parsed = _parse(path)
        if parsed is not None and not parsed[2]:
            resources = discovery.resource_list(parsed[0], parsed[1])
            if resources is None:
                raise _not_found_path(path)
            return resources
        return None

    def _target(self, group: str, version: str, rest: list[str], path: str) -> _Target:
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        res = find(group, version, rest[0]) if rest else None
        if res is None or len(rest) > 3:
            raise _not_found_path(path)
        if namespace is not None and not res.namespaced:
            raise _not_found_path(path)
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) == 3 else None
        return _Target(res, version, namespace, name, sub)

    def _verb(self, req: Request, t: _Target) -> Answer:
        if t.subresource is not None:
            if t.subresource == "scale" and t.res.kind == "Deployment" and t.namespace:
                try:
                    return 200, self._scale(req, t)
                except TrafficLabError as exc:
                    raise from_lab_error(exc, t.res.info, t.name, version=t.version) from exc
            if t.subresource == "log" and t.res.kind == "Pod" and req.method == "GET":
                return 200, self._log(req, t)
            raise ApiError(status("NotFound", f'{t.res.resource} "{t.name}": the lab does not '
                                  f'serve the "{t.subresource}" subresource yet'))
        verb = {("GET", True): "get", ("GET", False): "list", ("PATCH", True): "patch",
                ("DELETE", True): "delete", ("POST", False): "create",
                ("PUT", True): "update"}.get((req.method, t.name is not None))
        if verb is None or verb not in t.res.verbs:
            raise ApiError(status("MethodNotAllowed",
                                  f"{req.method} is not supported on {t.res.resource} "
                                  f"{'items' if t.name else 'collections'} by the lab"))
        if t.res.namespaced and t.namespace is None and verb != "list":
            raise _not_found_path(req.path)
        if verb == "list" and req.query.get("watch") in ("true", "1"):
            return 200, self._watch(req, t)
        try:
            if verb == "get":
                return 200, self._get(req, t)
            if verb == "list":
                return 200, self._list(req, t)
            if verb == "patch":
                return self._patch(req, t)
            if verb == "delete":
                return 200, self._delete(req, t)
            if verb == "update":
                return 200, self._update(req, t)
            return self._create(req, t)
        except TrafficLabError as exc:
            raise from_lab_error(exc, t.res.info, t.name, version=t.version) from exc

    # -- reads -------------------------------------------------------------------------
    def _key(self, t: _Target, name: str | None = None) -> ObjectKey:
        return ObjectKey(t.res.kind, t.namespace or "" if t.res.namespaced else "",
                         name if name is not None else str(t.name))

    def _pods(self) -> list[tuple[str, Obj]]:
        return [(p.deployment, p.to_object()) for p in self._running_pods()]

    def _running_pods(self) -> list[Pod]:
        # The pod manager's dict changes in the controller's thread; a read that races it
        # (RuntimeError: changed size during iteration) is simply made again.
        for _ in range(5):
            try:
                return self.controller.pods.pods()
            except RuntimeError:
                continue
        return self.controller.pods.pods()

    def _objects(self, t: _Target) -> list[Obj]:
        if t.res.kind == "Event":
            return self.controller.events.items(t.namespace)
        if t.res.info is None:  # pods
            return [obj for _, obj in self._pods()
                    if t.namespace is None or obj["metadata"]["namespace"] == t.namespace]
        return self.controller.store.items(t.res.kind, t.namespace)

    def _shaped(self, obj: Obj, t: _Target) -> Obj:
        obj["apiVersion"] = t.res.api_version(t.version)
        obj["kind"] = t.res.kind
        if t.res.info is not None:
            self.managed.attach(ObjectKey.of(obj), obj)
        if t.res.kind == "Deployment" and "status" not in obj:
            obj["status"] = deployment_status(obj, self._running_pods())
        return obj

    def _revision(self) -> str:
        return str(self.controller.store.revision)

    def _answer(self, req: Request, t: _Target, objects: list[Obj], one: bool) -> Obj:
        if tables.wants_table(req.accept):
            ctx = tables.Context(self._pods())
            return tables.table(t.res.kind, objects, ctx, self._revision())
        if one:
            return objects[0]
        return {"kind": f"{t.res.kind}List", "apiVersion": t.res.api_version(t.version),
                "metadata": {"resourceVersion": self._revision()}, "items": objects}

    def _get(self, req: Request, t: _Target) -> Obj:
        if t.res.info is None:
            found = [o for o in self._objects(t) if o["metadata"]["name"] == t.name]
            if not found:
                raise ApiError(status("NotFound", f'{t.res.resource} "{t.name}" not found',
                                      details={"name": t.name, "kind": t.res.plural}))
            obj = found[0]
        else:
            obj = self.controller.store.get(self._key(t))
        return self._answer(req, t, [self._shaped(obj, t)], one=True)

    def _list(self, req: Request, t: _Target) -> Obj:
        labels = label_selector(req.query.get("labelSelector"))
        fields = field_selector(req.query.get("fieldSelector"))
        objects = [self._shaped(o, t) for o in self._objects(t) if labels(o) and fields(o)]
        return self._answer(req, t, objects, one=False)

    def _watch(self, req: Request, t: _Target) -> WatchStream:
        labels = label_selector(req.query.get("labelSelector"))
        fields = field_selector(req.query.get("fieldSelector"))

        def list_objects() -> list[Obj]:
            return [self._shaped(o, t) for o in self._objects(t) if labels(o) and fields(o)]

        try:
            timeout = float(req.query.get("timeoutSeconds") or MAX_WATCH_SECONDS)
        except ValueError as exc:
            raise ApiError(status("BadRequest", "timeoutSeconds must be a number")) from exc
        return WatchStream(watch_events(
            list_objects, kind=t.res.kind, api_version=t.res.api_version(t.version),
            revision=self._revision, send_initial=req.query.get("sendInitialEvents") == "true",
            since=req.query.get("resourceVersion"), timeout=timeout, stopping=self.stopping))

    def _log(self, req: Request, t: _Target) -> TextBody:
        """``pods/X/log``: the tail of what the pod's process wrote (``kubectl logs``)."""
        pod = next((p for p in self._running_pods()
                    if p.namespace == t.namespace and p.name == t.name), None)
        if pod is None:
            raise ApiError(status("NotFound", f'pods "{t.name}" not found',
                                  details={"name": t.name, "kind": "pods"}))
        data = _tail(pod.log_path) if pod.log_path is not None else b""
        tail = req.query.get("tailLines")
        if tail is not None and tail.isdigit():
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-int(tail):]) if int(tail) else b""
        return TextBody(data)

    def _scale(self, req: Request, t: _Target) -> Obj:
        """``deployments/X/scale``: read or patch the replicas as an autoscaling/v1 Scale."""
        key = self._key(t)
        if req.method == "PATCH":
            patch = self._json_body(req)
            replicas = patch.get("spec", {}).get("replicas") if isinstance(patch, dict) else None
            if not isinstance(replicas, int) or isinstance(replicas, bool):
                raise ApiError(status("BadRequest", 'a scale patch sets {"spec": {"replicas": N}}'))
            dry = self._dry_run(req)
            with self._writes:
                old = self._live(key)
                self.controller.patch(key, {"spec": {"replicas": replicas}}, "merge", dry_run=dry)
                if not dry:
                    self._record(req, key, old, subresource="scale")
        elif req.method != "GET":
            raise ApiError(status("MethodNotAllowed", f"{req.method} is not supported on "
                                  "deployments/scale by the lab"))
        deploy = self._shaped(self.controller.store.get(key), t)
        meta = deploy["metadata"]
        selector = deploy["spec"].get("selector", {}).get("matchLabels", {})
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                 "creationTimestamp") if k in meta},
                "spec": {"replicas": int(deploy["spec"].get("replicas", 1))},
                "status": {"replicas": int(deploy["status"].get("replicas", 0)),
                           "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))}}

    # -- writes ------------------------------------------------------------------------
    def _json_body(self, req: Request) -> Any:
        try:
            return json.loads(req.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(status("BadRequest", f"the request body is not JSON: {exc}")) from exc

    def _dry_run(self, req: Request) -> bool:
        return req.query.get("dryRun") == "All"

    def _patch(self, req: Request, t: _Target) -> Answer:
        media = req.content_type.split(";")[0].strip().lower()
        if media == "application/apply-patch+yaml":
            return self._server_side_apply(req, t)
        patch_type = _PATCH_TYPES.get(media)
        if patch_type is None:
            raise ApiError(status("UnsupportedMediaType",
                                  f'the lab does not take "{media}" patches yet: use '
                                  "kubectl patch --type merge or --type json"))
        key = self._key(t)
        dry = self._dry_run(req)
        patch = self._json_body(req)
        if patch_type == "strategic" and t.res.group.endswith("gateway.networking.k8s.io"):
            # As kube-apiserver answers for any custom resource (kubectl patch's default type).
            raise ApiError(status(
                "UnsupportedMediaType", "the body of the request was in an unknown format - "
                "accepted media types include: application/json-patch+json, "
                "application/merge-patch+json, application/apply-patch+yaml"))
        with self._writes:
            self._check_precondition(patch, key, t)
            old = self._live(key)
            if patch_type == "json" and isinstance(patch, list):
                patch, old = self._managed_fields_ops(patch, old, key)
            if patch_type == "strategic":
                # Built-ins: the lab computes the strategic merge here and stores the result
                # as a JSON patch of the whole object, so validation and reconcile are the
                # controller's.
                user_view = {k: v for k, v in self.controller.store.get(key).items()
                             if k != "status"}
                merged = strategic_merge(user_view, patch)
                if not isinstance(merged, dict):
                    raise ApiError(status("BadRequest",
                                          "a strategic merge patch must be an object"))
                patch = [{"op": "add", "path": f"/{name}", "value": value}
                         for name, value in merged.items() if name not in ("apiVersion", "kind")]
                patch += [{"op": "remove", "path": f"/{name}"} for name in user_view
                          if name not in merged]
                patch_type = "json"
            self.controller.patch(key, patch, patch_type, dry_run=dry)
            if dry:  # validated and not stored: answer what would have been stored
                would_be = self._would_be(key, patch, patch_type)
                would_be["metadata"]["managedFields"] = record_update(
                    old, would_be, kind=t.res.kind, manager=self._manager(req),
                    now=now_rfc3339())
                return 200, self._shaped(would_be, t)
            self._record(req, key, old)
        # Unchanged: the very object a GET answers, so kubectl prints "patched (no change)".
        return 200, self._shaped(self.controller.store.get(key), t)

    # -- managedFields -----------------------------------------------------------------
    def _manager(self, req: Request) -> str:
        return field_manager(req.query.get("fieldManager"), req.user_agent)

    def _live(self, key: ObjectKey) -> Obj | None:
        """The stored object with its managedFields, or None (call under ``_writes``)."""
        try:
            obj = self.controller.store.get(key)
        except TrafficLabError:
            return None
        return self.managed.attach(key, obj)

    def _record(self, req: Request, key: ObjectKey, old: Obj | None, *,
                subresource: str = "") -> None:
        """Record what a write by this request's manager changed from ``old``."""
        new = self.controller.store.get(key)
        new.setdefault("apiVersion", (old or {}).get("apiVersion", ""))
        entries = record_update(old, new, kind=key.kind, manager=self._manager(req),
                                now=now_rfc3339(), subresource=subresource)
        self.managed.set(key, new, entries)

    def _managed_fields_ops(self, patch: list[Any], old: Obj | None,
                            key: ObjectKey) -> tuple[list[Any], Obj | None]:
        """A JSON patch that sets ``/metadata/managedFields`` (kubectl does, when it moves a
        client-side applied object to server-side apply): those operations apply to the
        managers, the rest to the object."""
        touches = [op for op in patch if isinstance(op, dict)
                   and str(op.get("path", "")).startswith("/metadata/managedFields")]
        if not touches or old is None:
            return patch, old
        doc = copy.deepcopy(old)
        doc["metadata"].setdefault("managedFields", [])
        try:
            patched = jsonpatch.apply_patch(doc, patch)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise ConflictError(f"{key}: the patch's test operation failed: {exc}") from exc
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError,
                KeyError, IndexError) as exc:
            raise ApiError(status("Invalid", f"the JSON patch cannot be applied: {exc}")) from exc
        entries = patched.get("metadata", {}).get("managedFields")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ApiError(status("BadRequest", "metadata.managedFields must be a list of "
                                  "ManagedFieldsEntry objects"))
        new_old = copy.deepcopy(old)
        new_old["metadata"]["managedFields"] = entries  # recorded once the write is stored
        return [op for op in patch if op not in touches], new_old

    def _server_side_apply(self, req: Request, t: _Target) -> Answer:
        """``kubectl apply --server-side``: merge the configuration, own its fields."""
        manager = req.query.get("fieldManager")
        if not manager:
            raise ApiError(status("Invalid", 'PatchOptions.meta.k8s.io "" is invalid: '
                                  "fieldManager: Required value: is required for apply patch"))
        force = req.query.get("force") == "true"
        applied = self._yaml_body(req)
        if not isinstance(applied, dict) or not isinstance(applied.get("metadata"), dict):
            raise ApiError(status("BadRequest", "an apply patch must be an object with "
                                  "apiVersion, kind and metadata"))
        if applied.get("kind") != t.res.kind or \
                applied.get("apiVersion") != t.res.api_version(t.version):
            raise ApiError(status("BadRequest", f'the applied object\'s kind and apiVersion '
                                  f'("{applied.get("kind")}", "{applied.get("apiVersion")}") '
                                  f"must match the URL ({t.res.api_version(t.version)} "
                                  f"{t.res.kind})"))
        meta = applied["metadata"]
        if meta.setdefault("name", t.name) != t.name:
            raise ApiError(status("BadRequest", "the name of the object does not match the "
                                  "name on the URL"))
        if t.namespace is not None and meta.setdefault("namespace", t.namespace) != t.namespace:
            raise ApiError(status("BadRequest", "the namespace of the provided object does "
                                  "not match the namespace sent on the request"))
        meta.pop("managedFields", None)
        key = self._key(t)
        dry = self._dry_run(req)
        with self._writes:
            live = self._live(key)
            if live is not None:
                self._check_precondition(applied, key, t)
            try:
                result = apply_patch(live, applied, kind=t.res.kind, manager=manager,
                                     force=force, now=now_rfc3339())
            except ApplyConflict as exc:
                raise ApiError(status("Conflict", exc.message,
                                      details={"causes": exc.causes})) from exc
            entries = result["metadata"].pop("managedFields", [])
            if live is not None and _same_managers(live["metadata"].get("managedFields") or [],
                                                   entries):
                entries = live["metadata"]["managedFields"]  # a no-op apply keeps its times
            self.controller.apply([result], dry_run=dry, namespace=t.namespace or "default")
            if dry:
                answer = validate(result, old=live)
                if live is not None:
                    identity = ("uid", "resourceVersion", "generation", "creationTimestamp")
                    answer["metadata"].update({k: live["metadata"][k] for k in identity
                                               if k in live["metadata"]})
                if entries:
                    answer["metadata"]["managedFields"] = entries
                return (201 if live is None else 200), self._shaped(answer, t)
            stored = self.controller.store.get(key)
            self.managed.set(key, stored, entries)
        return (201 if live is None else 200), self._shaped(stored, t)

    def _yaml_body(self, req: Request) -> Any:
        try:
            return json.loads(req.body or b"null")
        except (ValueError, UnicodeDecodeError):
            pass
        try:
            return load_yaml(req.body.decode())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ApiError(status("BadRequest", f"the apply patch is not YAML: {exc}")) from exc

    def _would_be(self, key: ObjectKey, patch: Any, patch_type: str) -> Obj:
        """The object a patch the controller accepted in a dry run would store."""
        current = self.controller.store.get(key)
        user_view = {k: v for k, v in current.items() if k != "status"}
        patched = (merge_patch(user_view, patch) if patch_type == "merge"
                   else jsonpatch.apply_patch(user_view, patch))
        result = validate(patched, old=current)
        identity = ("uid", "resourceVersion", "generation", "creationTimestamp")
        result["metadata"].update({k: current["metadata"][k] for k in identity
                                   if k in current["metadata"]})
        if "status" in current:
            result["status"] = current["status"]
        return result

    def _check_precondition(self, patch: Any, key: ObjectKey, t: _Target) -> None:
        """A resourceVersion in a merge patch is a precondition: a stale one is 409 Conflict."""
        if not isinstance(patch, dict) or not isinstance(patch.get("metadata"), dict):
            return
        wanted = patch["metadata"].get("resourceVersion")
        if wanted is None:
            return
        current = self.controller.store.get(key)["metadata"].get("resourceVersion")
        if str(wanted) != str(current):
            raise ApiError(status(
                "Conflict", f'Operation cannot be fulfilled on {t.res.resource} "{key.name}": '
                "the object has been modified; please apply your changes to the latest version "
                "and try again",
                details={"name": key.name, "kind": t.res.plural,
                         **({"group": t.res.group} if t.res.group else {})}))

    def _update(self, req: Request, t: _Target) -> Obj:
        """PUT (``kubectl replace``): the whole object; a stale resourceVersion is 409."""
        body = self._body_object(req, t)
        if body["metadata"].get("name") != t.name:
            raise ApiError(status("BadRequest", "the name of the object does not match the name "
                                  "on the URL"))
        key = self._key(t)
        body.pop("status", None)  # status is the controller's: PUT on the object ignores it
        dry = self._dry_run(req)
        with self._writes:
            self.controller.store.get(key)  # 404 if missing: PUT does not create here
            self._check_precondition(body, key, t)
            old = self._live(key)
            self.controller.apply([body], dry_run=dry, namespace=t.namespace or "default")
            if dry:  # validated and not stored: answer what would have been stored
                return self._shaped(self._would_be_replaced(key, body), t)
            self._record(req, key, old)
        return self._shaped(self.controller.store.get(key), t)

    def _would_be_replaced(self, key: ObjectKey, body: Obj) -> Obj:
        """The object a PUT the controller accepted in a dry run would store."""
        current = self.controller.store.get(key)
        result = validate(body, old=current)
        result["metadata"].update({k: v for k, v in current["metadata"].items()
                                   if k in ("uid", "resourceVersion", "generation",
                                            "creationTimestamp")})
        if "status" in current:
            result["status"] = current["status"]
        return result

    def _body_object(self, req: Request, t: _Target) -> Obj:
        body = self._json_body(req)
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise ApiError(status("BadRequest", "the request body must be an object with metadata"))
        if body.get("kind") != t.res.kind:
            raise ApiError(status("BadRequest", f'the object\'s kind "{body.get("kind")}" does '
                                  f"not match the resource {t.res.resource}"))
        meta = body["metadata"]
        if t.namespace is not None and meta.setdefault("namespace", t.namespace) != t.namespace:
            raise ApiError(status("BadRequest", "the namespace of the provided object does "
                                  "not match the namespace sent on the request"))
        return body

    def _delete(self, req: Request, t: _Target) -> Obj:
        key = self._key(t)
        with self._writes:
            obj = self.controller.store.get(key)
            self.controller.delete([key], dry_run=self._dry_run(req))
            if not self._dry_run(req):
                self.managed.forget(key)
        details: Obj = {"name": key.name, "kind": t.res.plural,
                        "uid": obj["metadata"].get("uid")}
        if t.res.group:
            details["group"] = t.res.group
        return success(details)

    def _create(self, req: Request, t: _Target) -> Answer:
        body = self._body_object(req, t)
        meta = body["metadata"]
        name = meta.get("name")
        key = self._key(t, str(name))
        dry = self._dry_run(req)
        with self._writes:
            if isinstance(name, str) and self._live(key) is not None:
                raise ApiError(status("AlreadyExists", f'{t.res.resource} "{name}" already exists',
                                      details={"name": name, "kind": t.res.plural,
                                               **({"group": t.res.group} if t.res.group else {})}))
            self.controller.apply([body], dry_run=dry, namespace=t.namespace or "default")
            if dry:
                answer = validate(body)
                answer["metadata"]["managedFields"] = record_update(
                    None, {**answer, "apiVersion": body.get("apiVersion")}, kind=t.res.kind,
                    manager=self._manager(req), now=now_rfc3339())
                return 201, self._shaped(answer, t)
            self._record(req, key, None)
        return 201, self._shaped(self.controller.store.get(key), t)


def _same_managers(old: list[Obj], new: list[Obj]) -> bool:
    """The same managers owning the same fields (times aside)."""
    def strip(entries: list[Obj]) -> list[Obj]:
        return [{k: v for k, v in e.items() if k != "time"} for e in entries]

    return strip(old) == strip(new)
