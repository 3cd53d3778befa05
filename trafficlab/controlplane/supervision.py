"""Restart with backoff: when a part of the lab dies, bring it back without hammering it.

A part that crashes at once after each start (a broken binary, a port taken for good) is
tried again after 0.5 s, 1 s, 2 s ... up to 30 s, so the daemon neither gives up on it nor
spins on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["Restarter"]

log = logging.getLogger("trafficlab.supervision")

_FIRST_DELAY_S = 0.5
_MAX_DELAY_S = 30.0


class Restarter:
    """Decides when to restart one supervised part, and counts what happened."""

    def __init__(self, name: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.restarts = 0
        self.failures = 0  # consecutive failed starts
        self.last_error: str | None = None
        self._clock = clock
        self._next_try = 0.0

    def revive(self, alive: bool, start: Callable[[], None]) -> bool:
        """Start the part again if it is dead and its backoff has passed; True if it was."""
        if alive:
            return False
        if self._clock() < self._next_try:
            return False
        try:
            start()
        except Exception as exc:
            self.failures += 1
            self.last_error = str(exc)
            delay = min(_MAX_DELAY_S, _FIRST_DELAY_S * 2 ** (self.failures - 1))
            self._next_try = self._clock() + delay
            log.error("%s did not restart (attempt %d, next in %.1fs): %s",
                      self.name, self.failures, delay, exc)
            return False
        self.restarts += 1
        self.failures = 0
        self.last_error = None
        log.warning("%s had exited and was restarted (restart %d)", self.name, self.restarts)
        return True
