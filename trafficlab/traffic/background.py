"""Traffic in the background: load sent from a worker thread while the caller does something else.

The one helper behind a rollout's own load, a grader's steady load during a blue-green
switch, the course's ``under_load`` and :func:`~trafficlab.traffic.send` inside Jupyter:
start paced (``rate``) or unpaced load, for a ``duration`` (or a number of ``requests``)
or until stopped; wait for the result; stop and join; an exception raised by the load is
raised again in the caller's thread.

>>> load = start_load("http://127.0.0.1:8080", duration=3, rate=200)   # doctest: +SKIP
>>> apply_the_switch()                                                 # doctest: +SKIP
>>> load.result().by_status                                            # doctest: +SKIP
Counter({200: 600})
>>> load = start_load("http://127.0.0.1:8080", rate=50)  # until stopped  # doctest: +SKIP
>>> load.stop().total                                                  # doctest: +SKIP
1500
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from trafficlab._errors import TrafficLabError
from trafficlab.traffic.load import asend
from trafficlab.traffic.result import TrafficResult, merge
from trafficlab.traffic.sync import run

__all__ = ["SLICE_S", "BackgroundLoad", "start_load"]

#: How long each run of a load that lasts until stopped is. Each slice starts its pacing
#: afresh, so a slow spell (a canary answering in hundreds of ms) is not followed by a
#: burst that catches up on the requests it missed.
SLICE_S = 1.0


class BackgroundLoad:
    """Load sent from a daemon thread on a private event loop; make one with :func:`start_load`.

    With a ``duration`` or ``requests``: one run of :func:`~trafficlab.traffic.asend` (one
    connection pool throughout). With neither: runs of :data:`SLICE_S` seconds one after
    the other until :meth:`stop`. The other keywords are ``send``'s (``rate``,
    ``concurrency``, ``path``, ``headers``, ``timeout``...); progress is off unless asked.
    """

    def __init__(self, url: str, *, duration: float | None = None, requests: int | None = None,
                 name: str = "trafficlab-background-load", **send_options: Any) -> None:
        self.url = url
        self.duration = duration
        self.requests = requests
        self._options = {"progress": False, **send_options}
        self._stop = threading.Event()
        self._sent = TrafficResult()
        self._error: BaseException | None = None
        self._running: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)

    @property
    def until_stopped(self) -> bool:
        """True when the load has neither a duration nor a number of requests."""
        return self.duration is None and self.requests is None

    def start(self) -> BackgroundLoad:
        """Start sending; returns self."""
        self._thread.start()
        return self

    def _work(self) -> None:
        try:
            if not self.until_stopped:
                self._sent = run(self._send(self.duration, self.requests))
                return
            while not self._stop.is_set():
                # A new object each slice: a reader in another thread never sees half a merge.
                self._sent = merge(self._sent, run(self._send(SLICE_S, None)))
        except BaseException as exc:  # raised again in the caller's thread by result()
            self._error = exc
        finally:
            self._running = None

    async def _send(self, duration: float | None, requests: int | None) -> TrafficResult:
        task = asyncio.current_task()
        assert task is not None
        self._running = (asyncio.get_running_loop(), task)  # what cancel() interrupts
        return await asend(self.url, duration=duration, requests=requests, stop=self._stop,
                           **self._options)

    @property
    def done(self) -> bool:
        """True once the load has ended (its run is over, it was stopped, or it failed)."""
        return self._thread.ident is not None and not self._thread.is_alive()

    @property
    def sent(self) -> TrafficResult:
        """What the load counted so far (for a load until stopped: its finished slices)."""
        return self._sent

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the load, if one did."""
        return self._error

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the load to end; True when it has."""
        self._thread.join(timeout)
        return self.done

    def result(self, timeout: float = 60.0) -> TrafficResult:
        """Wait for the end and return what was seen; raise the load's own exception if any.

        Raises :class:`TrafficLabError` when the load has not ended within ``timeout``
        seconds (a load without a duration or requests ends only when stopped).
        """
        if not self.join(timeout):
            raise TrafficLabError(f"the background load did not finish within {timeout:g}s"
                                  + ("; it runs until stopped: call stop()"
                                     if self.until_stopped else ""))
        if self._error is not None:
            raise self._error
        return self._sent

    def stop(self, timeout: float = 10.0) -> TrafficResult:
        """Stop after the requests in flight, wait (up to ``timeout`` s) and return :meth:`result`."""
        self._stop.set()
        return self.result(timeout)

    def cancel(self) -> None:
        """Stop at once, dropping the requests in flight, and wait; what was counted is lost."""
        self._stop.set()  # a run that starts after this ends at its first request
        running = self._running
        if running is not None:
            loop, task = running
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: done anyway
                loop.call_soon_threadsafe(task.cancel)
        self._thread.join()


def start_load(url: str, *, duration: float | None = None, requests: int | None = None,
               name: str = "trafficlab-background-load", **send_options: Any) -> BackgroundLoad:
    """Start a :class:`BackgroundLoad` at ``url`` and return it (see the module docstring)."""
    return BackgroundLoad(url, duration=duration, requests=requests, name=name,
                          **send_options).start()
