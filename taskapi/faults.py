"""Fault injection: an added delay and a share of 500 answers, decided per request.

Faults exist so students can watch a bad canary in the metrics and roll it back;
they touch only the API paths, never health checks or metrics, so a "broken"
version still looks alive to the gateway and keeps being scraped.

Example:
    >>> faults = FaultInjector(error_rate=1.0, seed=7)
    >>> faults.applies_to("/tasks/3"), faults.applies_to("/healthz"), faults.should_fail()
    (True, False, True)
"""

from __future__ import annotations

import random

__all__ = ["FaultInjector"]

# The brief says faults apply to "/", "/tasks*" and "/echo*": a literal prefix match,
# so "/tasks" and "/tasks/7" are both covered.
_FAULTABLE_PREFIXES = ("/tasks", "/echo")


class FaultInjector:
    """Draws the delay and the fail/succeed decision for one request at a time.

    One RNG per app: with ``seed`` set, the sequence of decisions repeats exactly,
    which is what the tests rely on.
    """

    def __init__(
        self,
        *,
        error_rate: float = 0.0,
        latency_ms: float = 0.0,
        latency_jitter_ms: float = 0.0,
        seed: int | None = None,
    ) -> None:
        """Keep the fault parameters; ``seed=None`` seeds from the OS."""
        self.error_rate = error_rate
        self.latency_ms = latency_ms
        self.latency_jitter_ms = latency_jitter_ms
        self._rng = random.Random(seed)

    @staticmethod
    def applies_to(path: str) -> bool:
        """Whether faults apply to ``path``: ``/``, ``/tasks*`` and ``/echo*`` only."""
        return path == "/" or path.startswith(_FAULTABLE_PREFIXES)

    def delay_seconds(self) -> float:
        """The delay to add to one request: latency plus a uniform 0..jitter draw."""
        delay_ms = self.latency_ms
        if self.latency_jitter_ms > 0:
            delay_ms += self._rng.uniform(0.0, self.latency_jitter_ms)
        return delay_ms / 1000.0

    def should_fail(self) -> bool:
        """Whether this request is answered with an injected 500."""
        # No draw when disabled, so ERROR_RATE=0 never costs an RNG call per request.
        return self.error_rate > 0 and self._rng.random() < self.error_rate
