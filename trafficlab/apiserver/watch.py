"""Watches: ``?watch=true``, one JSON event per line over a chunked response.

The lab has no event log, so a watch polls: it lists the selected objects a few times a
second and sends ADDED, MODIFIED and DELETED for what changed. With ``sendInitialEvents=true``
(client-go's watch-list) it first sends every current object as ADDED and then the BOOKMARK
annotated ``k8s.io/initial-events-end``, which is what ``kubectl wait`` and ``rollout status``
wait for before they judge.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["MAX_WATCH_SECONDS", "watch_events"]

Obj = dict[str, Any]

MAX_WATCH_SECONDS = 600  # a client asking for longer reconnects, as with kube-apiserver
_POLL_SECONDS = 0.2


def _name(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def watch_events(list_objects: Callable[[], list[Obj]], *, kind: str, api_version: str,
                 revision: Callable[[], str], send_initial: bool, since: str | None,
                 timeout: float, stopping: threading.Event) -> Iterator[Obj]:
    """The events of one watch until ``timeout`` seconds pass or ``stopping`` is set."""
    deadline = time.monotonic() + min(max(timeout, 1.0), MAX_WATCH_SECONDS)
    known = {_name(o): o for o in list_objects()}
    if send_initial or since in (None, "", "0"):
        for obj in known.values():
            yield {"type": "ADDED", "object": obj}
    elif since is not None and since.isdigit():
        # Objects written after the client's resourceVersion: it has not seen them.
        for obj in known.values():
            version = str(obj["metadata"].get("resourceVersion", ""))
            if version.isdigit() and int(version) > int(since):
                yield {"type": "MODIFIED", "object": obj}
    if send_initial:
        yield {"type": "BOOKMARK", "object": {
            "kind": kind, "apiVersion": api_version,
            "metadata": {"resourceVersion": revision(),
                         "annotations": {"k8s.io/initial-events-end": "true"}}}}
    while not stopping.wait(_POLL_SECONDS) and time.monotonic() < deadline:
        current = {_name(o): o for o in list_objects()}
        for name, obj in current.items():
            old = known.get(name)
            if old is None:
                yield {"type": "ADDED", "object": obj}
            elif json.dumps(old, sort_keys=True) != json.dumps(obj, sort_keys=True):
                yield {"type": "MODIFIED", "object": obj}
        for name, obj in known.items():
            if name not in current:
                yield {"type": "DELETED", "object": obj}
        known = current
