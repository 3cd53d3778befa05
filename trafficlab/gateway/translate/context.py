"""What every stage of one translation pass reads and writes: the snapshot, indexed, and the
results so far (statuses, clusters, IR routes placed, warnings).

The stages (listeners, attachment, backends, rules) are functions over one :class:`Pass`;
none of them keeps state of its own between calls: what one stage leaves for the next is here
(or, for listeners, on the ``Listener`` values the translator hands to attachment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trafficlab.controlplane.snapshot import CONTROLLER_NAMES, ObjectKey, Snapshot
from trafficlab.gateway.ir import Cluster, Route

__all__ = ["EntryKey", "Obj", "Pass", "Placed", "Recorder", "generation", "had_ours",
           "namespace_name"]

Obj = dict[str, Any]

#: Where one IR route goes: listener, domain, route, rule, match.
EntryKey = tuple[str, str, str, int, int]


@dataclass(frozen=True)
class Placed:
    """One IR route placed in a virtual host, with the key that orders it there."""

    route: Route
    sort_key: tuple[Any, ...]


class Recorder:
    """What translating one route added to the pass (see ``TranslateCache``)."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.attached: list[tuple[str, str, int]] = []
        self.clusters: list[str] = []
        self.read_own_status = False


class Pass:
    """One translation pass: the snapshot by kind and by key, and what the stages produced.

    ``presorted``: the objects come in the store's order and only need grouping (the cached
    pass over thousands of routes); otherwise they are sorted here (a hand-made snapshot).
    """

    def __init__(self, snapshot: Snapshot, *, presorted: bool = False) -> None:
        self.snapshot = snapshot
        # The snapshot's own index, which status writing uses too: built once per snapshot.
        self.index: dict[tuple[str, str, str], Obj] = snapshot.index
        self.by_kind: dict[str, list[Obj]] = {}
        if not presorted:
            for key in sorted(self.index):  # namespace/name order makes the output deterministic
                self.by_kind.setdefault(key[0], []).append(self.index[key])
        else:
            # Thousands of routes, already in the store's order: one grouping pass, and sorts
            # that are cheap on sorted runs.
            for obj in snapshot.objects:
                self.by_kind.setdefault(str(obj.get("kind")), []).append(obj)
            for objects in self.by_kind.values():
                objects.sort(key=namespace_name)  # linear on the store's sorted runs
        self.warnings: list[str] = []
        self._warned: set[str] = set()
        self.recording: Recorder | None = None
        self.statuses: dict[ObjectKey, dict[str, Any]] = {}
        self.clusters: dict[str, Cluster] = {}
        self.entries: dict[EntryKey, Placed] = {}

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        """The object of ``kind`` named ``namespace/name``, or None."""
        return self.index.get((kind, namespace, name))

    def of_kind(self, kind: str) -> list[Obj]:
        """Objects of ``kind`` sorted by namespace/name."""
        return self.by_kind.get(kind, [])

    def warn(self, text: str) -> None:
        """Add a warning for a human (once per pass)."""
        if self.recording is not None:
            # Route warnings of a cached pass are assembled by the cache, in route order.
            self.recording.warnings.append(text)
            return
        if text not in self._warned:
            self._warned.add(text)
            self.warnings.append(text)


def namespace_name(obj: Obj) -> tuple[str, str]:
    """``(namespace, name)`` of an object ("" for a cluster-scoped one)."""
    meta = obj.get("metadata", {})
    return str(meta.get("namespace", "")), str(meta.get("name"))


def had_ours(route: Obj) -> bool:
    """Whether the route's status holds entries this controller wrote."""
    parents = (route.get("status") or {}).get("parents") or []
    return any(p.get("controllerName") in CONTROLLER_NAMES for p in parents)


def generation(obj: Obj) -> int | None:
    """``metadata.generation``, which conditions echo as ``observedGeneration``."""
    gen = obj.get("metadata", {}).get("generation")
    return int(gen) if gen is not None else None
