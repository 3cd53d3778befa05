"""The progress bar of a long run on a terminal (rich, on stderr, off the per-request path)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["start_progress", "want_progress"]

# Show a progress bar (when not asked explicitly) for runs at least this long.
_PROGRESS_MIN_REQUESTS = 1000
_PROGRESS_MIN_SECONDS = 2.0


def want_progress(progress: bool | None, requests: int | None, duration: float | None) -> bool:
    """Draw a bar? As asked, else on a terminal for runs of 1,000 requests or 2 s and more."""
    if progress is not None:
        return progress
    if not sys.stderr.isatty():
        return False
    return (requests or 0) >= _PROGRESS_MIN_REQUESTS or (duration or 0) >= _PROGRESS_MIN_SECONDS


def start_progress(
    done: Callable[[], int], elapsed: Callable[[], float],
    requests: int | None, duration: float | None,
) -> tuple[Any, asyncio.Task[None]]:
    """Start the bar and its ticker task; the caller cancels the task and stops the bar."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("sending"), BarColumn(), TextColumn("{task.fields[sent]} requests"),
        TimeElapsedColumn(), console=Console(stderr=True), transient=True,
    )
    by_time = requests is None
    task = progress.add_task("send", total=duration if by_time else requests, sent=0)
    progress.start()

    async def report() -> None:
        # A separate ticker keeps progress work off the per-request path.
        while True:
            sent = done()
            progress.update(task, completed=elapsed() if by_time else sent, sent=sent)
            await asyncio.sleep(0.1)

    return progress, asyncio.ensure_future(report())
