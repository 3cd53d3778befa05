"""When Envoy still refuses a configuration: find the routes that cause it, serve all the others.

The translator refuses what it knows Envoy refuses (regexes, header values...), so this is
the safety net for what it does not know yet. Envoy rejects a whole xDS file, and with it
every route that shares the listener; rather than go dark, the controller asks Envoy itself
(``envoy --mode validate``, no sockets) which HTTPRoutes to leave out, one culprit at a time by
halving, and reports each on its own status, as Envoy Gateway reports a route it cannot
translate.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from trafficlab.controlplane.snapshot import ObjectKey, Snapshot
from trafficlab.controlplane.status import condition
from trafficlab.gateway.envoy import render, validation_bootstrap
from trafficlab.gateway.ir import Xds
from trafficlab.gateway.translate import route_kind_names, translate

__all__ = ["MAX_CULPRITS", "envoy_validator", "find_refused_routes", "refused_status", "without"]

Obj = dict[str, Any]

#: Past this many culprits the snapshot is not one bad route among good ones: stop looking.
MAX_CULPRITS = 8

#: Returns Envoy's reason for refusing an IR, or None when Envoy accepts it.
Validator = Callable[[Xds], str | None]


def without(snapshot: Snapshot, routes: Sequence[ObjectKey]) -> Snapshot:
    """``snapshot`` with the routes ``routes`` left out."""
    left_out = set(routes)
    return replace(snapshot, objects=tuple(o for o in snapshot.objects
                                           if ObjectKey.of(o) not in left_out))


def find_refused_routes(snapshot: Snapshot, validate: Validator) -> dict[ObjectKey, str]:
    """The routes (of any registered kind) to leave out so that Envoy accepts the rest, with
    Envoy's reason for each.

    Empty when the snapshot is fine, or when no single route is to blame (then nothing is left
    out and the caller reports the refusal as before).
    """
    routes = sorted(ObjectKey.of(o) for kind in route_kind_names() for o in snapshot.of_kind(kind))
    culprits: dict[ObjectKey, str] = {}

    def reason_with(only: Sequence[ObjectKey]) -> str | None:
        # The routes in ``only`` and no other route: does Envoy refuse that?
        others = [r for r in routes if r not in only]
        return validate(translate(without(snapshot, others)).ir)

    while len(culprits) < MAX_CULPRITS:
        suspects = [r for r in routes if r not in culprits]
        if reason_with(suspects) is None:
            return culprits
        while len(suspects) > 1:
            half = suspects[: len(suspects) // 2]
            if reason_with(half) is not None:
                suspects = half
            elif reason_with(suspects[len(half):]) is not None:
                suspects = suspects[len(half):]
            else:
                return {}  # only a combination is refused: no single route to blame
        reason = reason_with(suspects)
        if reason is None:
            return {}
        culprits[suspects[0]] = reason
    return {}


def envoy_validator(binary: Path) -> Validator:
    """A validator that asks the Envoy at ``binary`` (``--mode validate``: no sockets, no xDS)."""

    def validate(ir: Xds) -> str | None:
        with tempfile.TemporaryDirectory(prefix="trafficlab-validate-") as tmp:
            config = Path(tmp) / "config.json"
            config.write_text(json.dumps(validation_bootstrap(render(ir))))
            done = subprocess.run(
                [str(binary), "--mode", "validate", "-c", str(config), "--log-level", "error",
                 "--use-dynamic-base-id"],
                capture_output=True, text=True, timeout=60, check=False)
        if done.returncode == 0:
            return None
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        return lines[-1] if lines else f"envoy exited with code {done.returncode}"

    return validate



def refused_status(status: dict[str, Any] | None, route: Obj, reason: str) -> dict[str, Any]:
    """The status of a route left out: not Accepted by any parent, with Envoy's words."""
    generation = (route.get("metadata") or {}).get("generation")
    parents = []
    for parent in (status or {}).get("parents", []):
        kept = [c for c in parent.get("conditions", [])
                if c["type"] not in ("Accepted", "PartiallyInvalid")]
        refused = condition("Accepted", False, "UnsupportedValue",
                            f"Envoy refused the configuration this route produces, so it is "
                            f"left out and every other route keeps serving: {reason}", generation)
        parents.append({**parent, "conditions": [refused, *kept]})
    return {"parents": parents}
