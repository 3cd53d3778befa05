"""The lab contract every backend implements (DESIGN.md, "The lab contract")."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Backend", "Obj", "route_pending"]

Obj = dict[str, Any]


class Backend(Protocol):
    """One way of running the lab: local processes, or a kind cluster."""

    name: str

    def running(self) -> bool: ...

    def up(self, *, timeout: float = 60.0) -> dict[str, Any]: ...

    def down(self) -> None: ...

    def status(self) -> dict[str, Any]: ...

    def apply(self, objects: list[Obj], *, namespace: str = "default",
              dry_run: bool = False) -> dict[str, Any]: ...

    def get(self, kind: str, name: str | None = None, *, namespace: str | None = "default",
            all_namespaces: bool = False) -> list[Obj]: ...

    def patch(self, kind: str, name: str, patch: Any, *, patch_type: str = "merge",
              namespace: str = "default", dry_run: bool = False) -> dict[str, Any]: ...

    def wait_route(self, name: str, *, namespace: str = "default", timeout: float = 30.0) -> Obj:
        """Block until the data plane serves the HTTPRoute's current generation; return the route.

        Raises BackendError naming the conditions that are not yet true when ``timeout`` passes.
        """
        ...

    def delete(self, refs: list[tuple[str, str, str]], *, dry_run: bool = False,
               ignore_not_found: bool = False) -> dict[str, Any]: ...


def route_pending(route: Obj, types: tuple[str, ...], *, required: tuple[str, ...] = ()) -> str:
    """Why a route is not yet served at its generation ("" when it is), from its parent status.

    A condition counts only when its observedGeneration is the route's generation. Conditions in
    ``required`` must be present and True; the other ``types`` must be True when present
    (ResolvedRefs=False still serves the valid backends, so it is reported, not waited on).
    """
    generation = route["metadata"]["generation"]
    parents = route.get("status", {}).get("parents", [])
    if not parents:
        return "no parent has accepted the route yet (check spec.parentRefs)"
    problems = []
    for parent in parents:
        conditions = {c["type"]: c for c in parent.get("conditions", [])}
        gw = parent.get("parentRef", {}).get("name", "?")
        for ctype in types:
            cond = conditions.get(ctype)
            if cond is None:
                if ctype in required:
                    problems.append(f"{gw}: {ctype} not reported yet")
                continue
            if cond.get("observedGeneration") != generation:
                problems.append(f"{gw}: {ctype} is for generation {cond.get('observedGeneration')}")
            elif cond["status"] != "True" and (ctype in required or ctype == "Accepted"):
                problems.append(f"{gw}: {ctype}={cond['status']} ({cond.get('reason')}: "
                                f"{cond.get('message', '')})")
    return "; ".join(problems)
