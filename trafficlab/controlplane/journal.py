"""The store on disk: a snapshot plus an append-only journal of the writes since, like etcd's WAL.

Rewriting every object on every write made each write cost in proportion to the whole store
(25 ms at 5,000 routes, so a 5,000-object apply took minutes); appending one line costs in
proportion to what changed. ``store.json`` is the plain dump of the store at some revision;
``store.log`` holds one JSON line per later write (``{"revision", "put", "delete"}``). When the
journal outgrows the snapshot, the snapshot is rewritten and the journal emptied.

A write is on disk when its line, newline included, is fsynced. A line cut short (the machine
stopped mid-write) was never acknowledged, so loading drops it and everything after it; an
append that fails is cut back off, so the next append never lands after half a line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trafficlab._errors import BackendError
from trafficlab.controlplane.snapshot import ObjectKey

__all__ = ["Journal"]

log = logging.getLogger("trafficlab.store")
Obj = dict[str, Any]
# The journal is folded into the snapshot once it is larger than this and than the snapshot.
_MIN_COMPACT_BYTES = 1 << 20


class Journal:
    """Persists an object store at ``path`` (the snapshot) and ``path.log`` (the journal)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.log_path = path.with_suffix(".log")
        self._log_size = 0
        self._snapshot_size = 0
        # Each snapshotted object's JSON, by key, with the object it was made from: a committed
        # object is never mutated, so while it is the same object its text is still right.
        self._json: dict[ObjectKey, tuple[Obj, str]] = {}

    def load(self) -> tuple[int, dict[ObjectKey, Obj]]:
        """The store's revision and objects as last written (0 and nothing for a new home)."""
        revision, objects = 0, {}
        if self.path.exists():
            text = self.path.read_text()
            self._snapshot_size = len(text)
            data = json.loads(text)
            revision = int(data["revision"])
            objects = {ObjectKey.of(o): o for o in data["objects"]}
        if not self.log_path.exists():
            return revision, objects
        raw = self.log_path.read_bytes()
        good = 0
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # cut short: never acknowledged
            try:
                record = json.loads(line)
            except ValueError:
                break
            good += len(line)
            if int(record["revision"]) <= revision:
                continue  # already in the snapshot (the journal was not yet emptied)
            revision = int(record["revision"])
            for obj in record["put"]:
                objects[ObjectKey.of(obj)] = obj
            for kind, namespace, name in record["delete"]:
                objects.pop(ObjectKey(kind, namespace, name), None)
        if good != len(raw):
            log.warning("%s: dropped %d bytes of a write that never completed",
                        self.log_path, len(raw) - good)
            os.truncate(self.log_path, good)
        self._log_size = good
        return revision, objects

    def append(self, revision: int, objects: Mapping[ObjectKey, Obj],
               changed: Iterable[ObjectKey]) -> None:
        """Record that ``changed`` keys now hold what ``objects`` has (absent: deleted).

        Raises BackendError when the line cannot be made durable; then nothing was recorded.
        Afterwards the journal may be folded into a new snapshot of ``objects``.
        """
        put, delete = [], []
        for key in changed:
            obj = objects.get(key)
            if obj is None:
                delete.append([key.kind, key.namespace, key.name])
            else:
                put.append(obj)
        line = (json.dumps({"revision": revision, "put": put, "delete": delete},
                           sort_keys=True, separators=(",", ":")) + "\n").encode()
        try:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError as exc:
            raise _not_saved(self.log_path, exc) from exc
        try:
            os.ftruncate(fd, self._log_size)  # a failed append's remains go first
            os.pwrite(fd, line, self._log_size)
            os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._log_size)
            raise _not_saved(self.log_path, exc) from exc
        finally:
            os.close(fd)
        self._log_size += len(line)
        if self._log_size > max(_MIN_COMPACT_BYTES, self._snapshot_size):
            try:
                self.compact(revision, objects)
            except BackendError as exc:  # the journal still has every write: keep going
                log.warning("could not fold the journal into a snapshot: %s", exc)

    def compact(self, revision: int, objects: Mapping[ObjectKey, Obj]) -> None:
        """Write the whole store as the snapshot and empty the journal."""
        texts: dict[ObjectKey, tuple[Obj, str]] = {}
        for key, obj in objects.items():
            known = self._json.get(key)
            if known is None or known[0] is not obj:
                # Compact, so json's C encoder writes it (indent= falls back to Python's).
                known = (obj, json.dumps(obj, sort_keys=True, separators=(",", ":")))
            texts[key] = known
        ordered = sorted(texts, key=lambda k: (k.kind, k.namespace, k.name))
        # The same bytes as json.dumps({"objects": [...], "revision": n}, sort_keys=True).
        text = ('{"objects":[' + ",".join(texts[k][1] for k in ordered)
                + '],"revision":' + json.dumps(revision) + "}")
        tmp = self.path.with_suffix(".tmp")
        try:
            with open(tmp, "w") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _not_saved(self.path, exc) from exc
        self._json, self._snapshot_size = texts, len(text)
        # Once the snapshot holds everything the journal may go; loading skips the lines a
        # crash right here would leave, by their revision.
        try:
            os.truncate(self.log_path, 0)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not empty %s (%s); its lines are skipped on load", self.log_path, exc)
            return
        self._log_size = 0


def _not_saved(path: Path, exc: OSError) -> BackendError:
    return BackendError(f"the lab could not save its objects to {path} ({exc}); nothing was "
                        "changed: free some disk space or fix the lab home's permissions, then "
                        "try again")
