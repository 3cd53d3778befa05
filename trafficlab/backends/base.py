"""The lab contract every backend implements (DESIGN.md, "The lab contract")."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Backend", "Obj"]

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

    def delete(self, refs: list[tuple[str, str, str]], *, dry_run: bool = False,
               ignore_not_found: bool = False) -> dict[str, Any]: ...
