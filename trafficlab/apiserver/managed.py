"""Where the API keeps each object's ``metadata.managedFields`` between requests.

The store keeps user fields, identity and status; who manages which field is the API's
business, so it lives here, keyed by object and uid (a deleted and re-created object starts
with no managers). It is in memory: a restarted daemon serves its objects with no managers,
so the first apply after a restart conflicts with nobody.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from trafficlab.controlplane.snapshot import ObjectKey

__all__ = ["ManagedFieldsTable", "field_manager"]

Obj = dict[str, Any]


def field_manager(query_value: str | None, user_agent: str) -> str:
    """The manager of a write: ``?fieldManager=`` or, as kube-apiserver, the user agent's name."""
    if query_value:
        return query_value
    name = user_agent.split("/", 1)[0].strip()
    return name[:128] or "unknown"


class ManagedFieldsTable:
    """managedFields per object; entries are replaced whole, never edited in place."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[ObjectKey, tuple[str, list[Obj]]] = {}

    def get(self, key: ObjectKey, obj: Obj) -> list[Obj]:
        """The entries for ``obj`` (stored under ``key``), empty if another uid had them."""
        with self._lock:
            found = self._entries.get(key)
        if found is None or found[0] != obj.get("metadata", {}).get("uid"):
            return []
        return found[1]

    def set(self, key: ObjectKey, obj: Obj, entries: list[Obj]) -> None:
        """Record ``entries`` for the stored ``obj``."""
        uid = str(obj.get("metadata", {}).get("uid", ""))
        with self._lock:
            if entries:
                self._entries[key] = (uid, copy.deepcopy(entries))
            else:
                self._entries.pop(key, None)

    def forget(self, key: ObjectKey) -> None:
        """The object was deleted."""
        with self._lock:
            self._entries.pop(key, None)

    def attach(self, key: ObjectKey, obj: Obj) -> Obj:
        """``obj`` with its managedFields in its metadata (as every read answers it)."""
        entries = self.get(key, obj)
        if entries and "managedFields" not in obj.get("metadata", {}):
            # Shared, not copied: entries are replaced whole and nobody edits them.
            obj.setdefault("metadata", {})["managedFields"] = list(entries)
        return obj
