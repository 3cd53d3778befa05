"""Run the async load from synchronous code: a private event loop, in a thread under Jupyter.

``send`` works from scripts and from Jupyter: inside a running event loop it runs the load
on a private loop in a worker thread (uvloop's when installed).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run", "run_in_thread"]

_T = TypeVar("_T")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed (faster sockets), else asyncio's default."""
    if os.environ.get("TRAFFICLAB_NO_UVLOOP"):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to its end on a new loop of this thread, then close the loop."""
    factory = _loop_factory()
    loop = factory() if factory is not None else asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def run_in_thread(make: Callable[[], Awaitable[_T]]) -> _T:
    """Run on a private loop in a worker thread (the caller's loop is busy: Jupyter)."""
    outcome: dict[str, Any] = {}
    started = threading.Event()

    async def main() -> _T:
        outcome["task"] = asyncio.current_task()
        outcome["loop"] = asyncio.get_running_loop()
        started.set()
        return await make()

    def target() -> None:
        try:
            outcome["value"] = run(main())
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=target, name="trafficlab-send", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.1)
    except KeyboardInterrupt:
        # Interrupting the notebook cell stops the load instead of orphaning it.
        started.wait()
        if "loop" in outcome:
            outcome["loop"].call_soon_threadsafe(outcome["task"].cancel)
        thread.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    value: _T = outcome["value"]
    return value
