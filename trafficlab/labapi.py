"""What grading, metrics and rollouts need of a lab: a protocol, so they never import ``Lab``.

``trafficlab.lab.Lab`` composes grading (``check``), metrics (``metrics``) and traffic
(``send``); those in turn need only this interface. Keeping them on the protocol breaks the
import cycle lab -> grading -> lab. Code that must *make* a lab (the grader starts a fresh
one per submission) calls :func:`open_lab`, which ``trafficlab.lab`` provides when the
package is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["RECONCILED_PATH", "SHUTDOWN_PATH", "STATUS_PATH", "ApplyResult", "LabAPI", "as_result",
           "open_lab", "provide_lab_factory"]

Obj = dict[str, Any]

# The lab's own paths on its Kubernetes API (served by apiserver/lab_paths.py). They live here,
# not in trafficlab.apiserver, so that a client never imports the server (~100 ms per command).
STATUS_PATH = "/trafficlab/v1/status"
SHUTDOWN_PATH = "/trafficlab/v1/shutdown"
# Answers once every write made before the request is served (writes return once stored).
RECONCILED_PATH = "/trafficlab/v1/reconciled"


@dataclass
class ApplyResult:
    """What a write did: kubectl-style lines, warnings, and how long the data plane took."""

    changes: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def lines(self) -> list[str]:
        return [str(c["text"]) for c in self.changes]

    def __str__(self) -> str:
        return "\n".join(self.lines + [f"Warning: {w}" for w in self.warnings])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


class LabAPI(Protocol):
    """The verbs of a running lab (both backends), as ``trafficlab.Lab`` offers them."""

    home: Path

    def up(self, *, timeout: float = 60.0, dry_run: bool = False) -> dict[str, Any]: ...

    def down(self) -> None: ...

    def status(self) -> dict[str, Any]: ...

    @property
    def running(self) -> bool: ...

    def apply(self, source: str | os.PathLike[str] | Obj | Sequence[Obj], *,
              namespace: str = "default", dry_run: bool = False) -> ApplyResult: ...

    def get(self, kind: str, name: str | None = None, *, namespace: str = "default",
            all_namespaces: bool = False) -> Any: ...

    def patch(self, kind: str, name: str, patch: Any, *, type: str = "merge",
              namespace: str = "default", dry_run: bool = False) -> ApplyResult: ...

    def delete(self, kind: str | None = None, name: str | None = None, *,
               namespace: str = "default", filename: str | os.PathLike[str] | None = None,
               ignore_not_found: bool = False, dry_run: bool = False) -> ApplyResult: ...

    def url(self, gateway: str = "task-api-gateway", *, listener: str | None = None,
            namespace: str = "default") -> str: ...

    def wait_programmed(self, route: str = "task-api", *, namespace: str = "default",
                        timeout: float = 30.0) -> Obj: ...


_factory: Callable[..., LabAPI] | None = None


def provide_lab_factory(factory: Callable[..., LabAPI]) -> None:
    """Called once by ``trafficlab.lab``: how :func:`open_lab` makes a lab."""
    global _factory
    _factory = factory


def open_lab(home: Path, *, backend: str | None = None) -> LabAPI:
    """A lab in ``home`` (not started), made by ``trafficlab.Lab``."""
    if _factory is None:  # pragma: no cover - trafficlab/__init__ imports trafficlab.lab
        raise RuntimeError("trafficlab.lab was not imported; import trafficlab first")
    return _factory(home, backend=backend)


def as_result(raw: Mapping[str, Any]) -> ApplyResult:
    """An ApplyResult from a backend's answer."""
    return ApplyResult(changes=list(raw.get("changes", [])), warnings=list(raw.get("warnings", [])),
                       error=raw.get("error"), seconds=float(raw.get("seconds") or 0.0))
