"""The one background-traffic helper (trafficlab.traffic.background), against real HTTP servers.

The servers are test_traffic's aiohttp backends on a private loop in a thread, on ports the
OS picks; every load a test starts is stopped or ended before the test returns.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from test_traffic import Backend, ServerThread

from trafficlab._errors import TrafficLabError, UsageError
from trafficlab.traffic import BackgroundLoad, TrafficResult, start_load
from trafficlab.traffic.result import merge


@pytest.fixture
def backend() -> Iterator[Backend]:
    thread = ServerThread()
    thread.start()
    try:
        yield thread.serve(Backend("v1"))
    finally:
        thread.stop()


def test_a_load_with_a_duration_runs_while_the_caller_works(backend: Backend) -> None:
    load = start_load(backend.url, duration=1.0, rate=100, concurrency=4, name="test-load")
    assert any(t.name == "test-load" for t in threading.enumerate())
    time.sleep(0.2)
    seen_meanwhile = backend.seen
    result = load.result()
    assert load.done and seen_meanwhile > 0
    assert result.by_version == Counter(v1=result.total) and result.total == backend.seen
    assert not result.errors


def test_a_load_until_stopped_adds_up_its_slices(backend: Backend) -> None:
    load = start_load(backend.url, rate=100, concurrency=4, path="/until")
    assert load.until_stopped
    time.sleep(1.5)  # more than one slice of SLICE_S
    result = load.stop()
    assert load.done and result.total == backend.seen > 100
    assert result.by_status == Counter({200: result.total}) and len(result.latencies_ms) == result.total
    assert result.elapsed > 1.0


def test_result_of_a_load_until_stopped_says_to_stop_it(backend: Backend) -> None:
    load = start_load(backend.url, rate=50)
    with pytest.raises(TrafficLabError, match=r"did not finish within 0.1s; .*call stop\(\)"):
        load.result(timeout=0.1)
    assert load.stop().total > 0


def test_stop_ends_a_load_with_a_duration_early_and_keeps_its_counts(backend: Backend) -> None:
    load = start_load(backend.url, duration=60.0, rate=100)
    time.sleep(0.3)
    result = load.stop()
    assert load.done and 0 < result.total < 60 * 100 and result.total == backend.seen


def test_cancel_drops_the_requests_in_flight(backend: Backend) -> None:
    load = start_load(backend.url, requests=4, concurrency=4, path="/slow?s=2")
    while backend.seen < 4:
        time.sleep(0.01)
    load.cancel()
    assert load.done and backend.seen == 4
    assert load.error is not None  # the run was cancelled, so there is no result to give


def test_the_loads_exception_is_raised_in_the_callers_thread(backend: Backend) -> None:
    load = start_load(backend.url, duration=1.0, concurrency=0)
    with pytest.raises(UsageError, match="concurrency must be >= 1"):
        load.result()
    assert isinstance(load.error, UsageError)


def test_unstarted_settings_are_send_options() -> None:
    load = BackgroundLoad("http://127.0.0.1:9", requests=3)
    assert not load.until_stopped and not load.done


def test_merge_adds_counts_latencies_and_time() -> None:
    first = TrafficResult(total=2, by_version=Counter(v1=2), by_status=Counter({200: 2}),
                          by_version_status={"v1": Counter({200: 2})}, elapsed=1.0)
    second = TrafficResult(total=3, by_version=Counter(v1=1, v2=1), by_status=Counter({200: 1, 503: 1}),
                           by_version_status={"v1": Counter({503: 1}), "v2": Counter({200: 1})},
                           errors=Counter(timeout=1), elapsed=0.5)
    both = merge(first, second)
    assert both.total == 5 and both.by_version == Counter(v1=3, v2=1)
    assert both.by_version_status == {"v1": Counter({200: 2, 503: 1}), "v2": Counter({200: 1})}
    assert both.errors == Counter(timeout=1) and both.elapsed == 1.5
    assert first.by_version_status == {"v1": Counter({200: 2})}  # the inputs are left alone
