"""The live view of a running rollout on stderr: a rich Live panel on a terminal, else one line per event.

It reads the rollout through :class:`Watched` (what the run loop exposes), so the view does
not depend on the run loop that starts it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from trafficlab.monitoring.metrics import format_duration
from trafficlab.monitoring.rollout.policy import RolloutPolicy

__all__ = ["Watched"]


class Watched(Protocol):
    """What the view reads of a rollout (:class:`~trafficlab.monitoring.rollout.run.Rollout`)."""

    policy: RolloutPolicy
    canary: str
    phase: str
    step: int
    weight: int
    failed: int
    no_data_streak: int
    last_message: str
    deadline: float | None
    _on_event: Callable[[dict[str, Any]], None] | None


# -- live view -------------------------------------------------------------------------------
class _View:
    """The live progress on stderr: a rich Live panel on a terminal, else one line per event."""

    def __init__(self, rollout: Watched) -> None:
        self.rollout = rollout
        self._live: Any = None
        self._console: Any = None
        self._chain: Callable[[dict[str, Any]], None] | None = rollout._on_event

    def start(self, progress: bool | None) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console(stderr=True)
        if self._console.is_terminal:
            self._live = Live(self, console=self._console, refresh_per_second=4, transient=False)
            self._live.start()
        elif progress is None:
            self._console = None  # not a terminal and not asked for: stay quiet
        self.rollout._on_event = self._event

    def _event(self, record: dict[str, Any]) -> None:
        if self._live is None and self._console is not None:
            self._console.print(f"[{record['t']:7.1f}s] {record['event']}: {record['message']}",
                                markup=False, highlight=False, soft_wrap=True)
        if self._chain is not None:
            self._chain(record)

    def stop(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
        self.rollout._on_event = self._chain

    def __rich__(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        r = self.rollout
        policy = r.policy
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold")
        grid.add_column()
        # Text, not markup: a phase like "[paused]" or a message with brackets is shown as is.
        grid.add_row("rollout", Text(f"HTTPRoute {policy.namespace}/{policy.route}: "
                                     f"{policy.stable} → {r.canary}   [{r.phase}]"))
        steps = Text()
        for i, weight in enumerate(policy.steps, start=1):
            style = "green" if i < r.step or r.phase == "promoted" else \
                "yellow" if i == r.step else "dim"
            steps.append(f"{weight}% ", style=style)
        grid.add_row("steps", steps)
        grid.add_row("weights", Text(f"{policy.stable} {100 - r.weight}%  ·  {r.canary} {r.weight}%"))
        if r.deadline is not None:
            left = max(0.0, r.deadline - time.monotonic())
            grid.add_row("analysis", Text(f"{left:.0f}s left of {format_duration(policy.interval_s)}"))
        grid.add_row("failed", Text(f"{r.failed}/{policy.threshold} checks" + (
            f", {r.no_data_streak} intervals without data" if r.no_data_streak else "")))
        grid.add_row("last", Text(r.last_message))
        grid.add_row("control", Text(f"trafficlab rollout --pause|--resume|--promote|--abort "
                                     f"--route {policy.route}"))
        return grid
