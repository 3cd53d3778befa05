"""Run the async load from synchronous code: a private event loop, uvloop's when installed.

``send`` runs on one in the caller's thread; inside Jupyter (whose loop is busy) it runs on
one in a worker thread (:mod:`trafficlab.traffic.background`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

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

