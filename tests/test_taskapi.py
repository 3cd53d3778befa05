"""Tests of the sample Task API (taskapi/): identity headers, CRUD, faults, metrics.

Unit behaviour runs in-process through FastAPI's TestClient; one test starts the
real process (`python -m taskapi`) on a free port and stops it by PID.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from taskapi import Settings, SettingsError, create_app
from taskapi.__main__ import main
from taskapi.faults import FaultInjector
from taskapi.metrics import DURATION_BUCKETS

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 but still works with httpx, which the dev
    # dependencies pin; the warning says nothing about this project.
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient

REPO_ROOT = Path(__file__).resolve().parents[1]


def make_client(**settings: object) -> TestClient:
    """A TestClient (lifespan not yet run) for an app with the given settings."""
    values: dict[str, object] = {"version": "v1", "pod": "pod-a"}
    values.update(settings)
    return TestClient(create_app(Settings(**values)))  # type: ignore[arg-type]


@pytest.fixture
def v1() -> Iterator[TestClient]:
    with make_client(version="v1", pod="task-api-v1-0") as client:
        yield client


@pytest.fixture
def v2() -> Iterator[TestClient]:
    with make_client(version="v2", pod="task-api-v2-0") as client:
        yield client


def samples(client: TestClient, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of one metric (by sample name) as {sorted label items: value}."""
    text = client.get("/metrics").text
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def request_count(client: TestClient, method: str, route: str, status: int) -> float:
    """The value of taskapi_requests_total for one label set (0 when absent)."""
    version = client.app.state.settings.version  # type: ignore[attr-defined]
    key = tuple(
        sorted(
            {"version": version, "method": method, "route": route, "status": str(status)}.items()
        )
    )
    return samples(client, "taskapi_requests_total").get(key, 0.0)


# --- settings -------------------------------------------------------------------------


def test_settings_defaults_from_empty_env() -> None:
    settings = Settings.from_env({})
    assert settings.version == "v1"
    assert settings.pod == socket.gethostname()
    assert (settings.error_rate, settings.latency_ms, settings.latency_jitter_ms) == (0, 0, 0)
    assert settings.fault_seed is None
    assert settings.has_priority is False


def test_settings_read_every_variable() -> None:
    env = {
        "VERSION": "v2",
        "POD_NAME": "task-api-v2-7d9f-abcde",
        "ERROR_RATE": "0.25",
        "LATENCY_MS": "150",
        "LATENCY_JITTER_MS": "20.5",
        "FAULT_SEED": "42",
    }
    assert Settings.from_env(env) == Settings(
        version="v2",
        pod="task-api-v2-7d9f-abcde",
        error_rate=0.25,
        latency_ms=150.0,
        latency_jitter_ms=20.5,
        fault_seed=42,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ERROR_RATE", "2"),
        ("ERROR_RATE", "-0.1"),
        ("ERROR_RATE", "5%"),
        ("LATENCY_MS", "-1"),
        ("LATENCY_MS", "fast"),
        ("LATENCY_JITTER_MS", "nan"),
        ("LATENCY_JITTER_MS", "inf"),
        ("FAULT_SEED", "1.5"),
        ("VERSION", "v 2"),
        ("POD_NAME", "pod\x01name"),
    ],
)
def test_settings_reject_bad_values_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name) as caught:
        Settings.from_env({name: value})
    assert repr(value) in str(caught.value)


def test_settings_in_code_are_validated_too() -> None:
    with pytest.raises(SettingsError, match="ERROR_RATE"):
        Settings(error_rate=1.5)


def test_main_exits_1_with_a_message_naming_the_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--port", "0"], env={"ERROR_RATE": "2"}) == 1
    err = capsys.readouterr().err
    assert "ERROR_RATE" in err
    assert "'2'" in err


# --- identity and headers -----------------------------------------------------------


def test_root_names_service_version_and_pod(v2: TestClient) -> None:
    response = v2.get("/")
    assert response.status_code == 200
    assert response.json() == {"service": "task-api", "version": "v2", "pod": "task-api-v2-0"}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/", None, 200),
        ("GET", "/tasks", None, 200),
        ("POST", "/tasks", {"title": "t"}, 201),
        ("DELETE", "/tasks/1", None, 204),
        ("GET", "/tasks/999", None, 404),
        ("GET", "/no/such/route", None, 404),
        ("GET", "/tasks/", None, 404),
        ("DELETE", "/tasks", None, 405),
        ("POST", "/", None, 405),
        ("POST", "/tasks", {"done": True}, 422),
        ("GET", "/tasks/abc", None, 422),
        ("GET", "/echo/x", None, 200),
        ("GET", "/healthz", None, 200),
        ("GET", "/readyz", None, 200),
        ("GET", "/metrics", None, 200),
        ("GET", "/openapi.json", None, 200),
    ],
)
def test_every_response_carries_version_and_pod(
    method: str, path: str, body: dict[str, object] | None, status: int
) -> None:
    with make_client(version="v2", pod="task-api-v2-0") as client:
        client.post("/tasks", json={"title": "first"})
        response = client.request(method, path, json=body)
    assert response.status_code == status
    assert response.headers["x-version"] == "v2"
    assert response.headers["x-pod"] == "task-api-v2-0"
    # One value each, never a duplicate.
    assert response.headers.get_list("x-version") == ["v2"]


def test_injected_500_carries_identity_and_fault_body() -> None:
    with make_client(version="v2", pod="p", error_rate=1.0) as client:
        response = client.get("/tasks")
    assert response.status_code == 500
    assert response.json() == {"error": "injected fault", "version": "v2"}
    assert (response.headers["x-version"], response.headers["x-pod"]) == ("v2", "p")


def test_unhandled_exception_500_carries_identity() -> None:
    app = create_app(Settings(version="v3", pod="p"))

    @app.get("/tasks-boom")
    async def boom() -> None:
        raise RuntimeError("bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/tasks-boom")
        assert request_count(client, "GET", "/tasks-boom", 500) == 1
    assert response.status_code == 500
    assert (response.headers["x-version"], response.headers["x-pod"]) == ("v3", "p")
    assert response.json()["version"] == "v3"


# --- tasks ------------------------------------------------------------------------------


def test_crud_round_trip_v1(v1: TestClient) -> None:
    assert v1.get("/tasks").json() == []
    created = v1.post("/tasks", json={"title": "write docs", "priority": "high"})
    assert created.status_code == 201
    assert created.headers["location"] == "/tasks/1"
    # v1 has no priority: the field is ignored, not rejected (v1 and v2 share clients).
    assert created.json() == {"id": 1, "title": "write docs", "description": "", "done": False}
    assert v1.get("/tasks/1").json() == created.json()

    replaced = v1.put("/tasks/1", json={"title": "write more docs", "description": "d"})
    assert replaced.status_code == 200
    assert replaced.json() == {
        "id": 1,
        "title": "write more docs",
        "description": "d",
        "done": False,
    }

    patched = v1.patch("/tasks/1", json={"done": True})
    assert patched.json() == {"id": 1, "title": "write more docs", "description": "d", "done": True}

    v1.post("/tasks", json={"title": "second"})
    assert [task["id"] for task in v1.get("/tasks").json()] == [1, 2]

    deleted = v1.delete("/tasks/1")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert [task["id"] for task in v1.get("/tasks").json()] == [2]
    # Ids are never reused.
    assert v1.post("/tasks", json={"title": "third"}).json()["id"] == 3


def test_v2_tasks_have_priority(v2: TestClient) -> None:
    created = v2.post("/tasks", json={"title": "canary"})
    assert created.json()["priority"] == "medium"
    assert v2.post("/tasks", json={"title": "hot", "priority": "high"}).json()["priority"] == "high"
    assert v2.patch("/tasks/1", json={"priority": "low"}).json() == {
        "id": 1,
        "title": "canary",
        "description": "",
        "done": False,
        "priority": "low",
    }
    assert v2.put("/tasks/1", json={"title": "reset"}).json()["priority"] == "medium"
    assert v2.post("/tasks", json={"title": "x", "priority": "urgent"}).status_code == 422


def test_any_version_but_v1_has_priority() -> None:
    with make_client(version="green") as client:
        assert client.post("/tasks", json={"title": "t"}).json()["priority"] == "medium"


@pytest.mark.parametrize(
    ("method", "body"),
    [("GET", None), ("PUT", {"title": "t"}), ("PATCH", {"done": True}), ("DELETE", None)],
)
def test_missing_task_is_a_json_404(v1: TestClient, method: str, body: object) -> None:
    response = v1.request(method, "/tasks/41", json=body)
    assert response.status_code == 404
    assert response.json() == {"detail": "task 41 not found"}


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("POST", {}),
        ("POST", {"title": ""}),
        ("POST", {"title": "t", "done": "maybe"}),
        ("PUT", {"description": "no title"}),
        ("PATCH", {"title": None}),
        ("PATCH", {"done": None}),
    ],
)
def test_invalid_bodies_are_422(v1: TestClient, method: str, body: object) -> None:
    v1.post("/tasks", json={"title": "t"})
    path = "/tasks" if method == "POST" else "/tasks/1"
    assert v1.request(method, path, json=body).status_code == 422
    assert v1.get("/tasks/1").json()["title"] == "t"


def test_patch_changes_only_sent_fields(v1: TestClient) -> None:
    v1.post("/tasks", json={"title": "t", "description": "keep me"})
    assert v1.patch("/tasks/1", json={"title": "new"}).json() == {
        "id": 1,
        "title": "new",
        "description": "keep me",
        "done": False,
    }


def test_each_app_has_its_own_store() -> None:
    with make_client() as first, make_client() as second:
        first.post("/tasks", json={"title": "only in first"})
        assert second.get("/tasks").json() == []


# --- echo -------------------------------------------------------------------------------


def test_echo_describes_the_request_as_received(v1: TestClient) -> None:
    response = v1.get(
        "/echo/a%2Fb/c?x=1&x=2&y=&z=3",
        headers={"x-user-type": "beta", "X-Multi": "one"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["method"] == "GET"
    assert body["path"] == "/echo/a%2Fb/c"  # raw: the gateway's rewrite, exactly
    assert body["query"] == {"x": ["1", "2"], "y": "", "z": "3"}
    assert body["headers"]["x-user-type"] == "beta"
    assert body["headers"]["x-multi"] == "one"
    assert (body["version"], body["pod"]) == ("v1", "task-api-v1-0")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"])
def test_echo_answers_any_method(v1: TestClient, method: str) -> None:
    response = v1.request(method, "/echo")
    assert response.status_code == 200
    assert response.json()["method"] == method
    assert response.json()["path"] == "/echo"


def test_echo_joins_repeated_headers(v1: TestClient) -> None:
    response = v1.get("/echo/h", headers=[("x-dup", "a"), ("x-dup", "b")])
    assert response.json()["headers"]["x-dup"] == "a, b"


# --- health -----------------------------------------------------------------------------


def test_readyz_is_200_only_after_startup() -> None:
    client = make_client()
    # Without the lifespan (no `with`), the app has not started.
    assert client.get("/readyz").status_code == 503
    with client:
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.get("/healthz").json() == {"status": "ok"}
    # After shutdown it reports not ready, so probers stop sending traffic.
    assert client.get("/readyz").status_code == 503


# --- faults -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "faulted"),
    [
        ("/", True),
        ("/tasks", True),
        ("/tasks/7", True),
        ("/echo", True),
        ("/echo/a/b", True),
        ("/healthz", False),
        ("/readyz", False),
        ("/metrics", False),
        ("/docs", False),
        ("/other", False),
    ],
)
def test_fault_paths(path: str, faulted: bool) -> None:
    assert FaultInjector.applies_to(path) is faulted


def test_error_rate_1_fails_api_paths_but_never_ops_paths() -> None:
    with make_client(error_rate=1.0) as client:
        for path in ["/", "/tasks", "/tasks/1", "/echo/x"]:
            assert client.get(path).status_code == 500, path
        for path in ["/healthz", "/readyz", "/metrics"]:
            assert client.get(path).status_code == 200, path
        assert client.post("/tasks", json={"title": "t"}).status_code == 500


def test_error_rate_0_never_fails() -> None:
    with make_client(error_rate=0.0) as client:
        assert all(client.get("/").status_code == 200 for _ in range(200))


def test_seeded_faults_repeat_exactly() -> None:
    def statuses() -> list[int]:
        with make_client(error_rate=0.5, fault_seed=1234) as client:
            return [client.get("/").status_code for _ in range(60)]

    first = statuses()
    assert first == statuses()
    assert set(first) == {200, 500}


def test_error_share_matches_error_rate() -> None:
    # 20,000 seeded draws at 0.2: the count is Binomial(20000, 0.2), sd ~57; a band
    # of +-400 (7 sd) could fail a correct injector with probability < 1e-11.
    faults = FaultInjector(error_rate=0.2, seed=7)
    failures = sum(faults.should_fail() for _ in range(20_000))
    assert 3_600 <= failures <= 4_400


def test_error_share_through_the_app() -> None:
    # 400 requests at 0.3: mean 120, sd ~9.2; 60..180 is +-6.5 sd.
    with make_client(error_rate=0.3, fault_seed=99) as client:
        failures = sum(client.get("/tasks").status_code == 500 for _ in range(400))
    assert 60 <= failures <= 180


def test_delay_is_latency_plus_uniform_jitter() -> None:
    faults = FaultInjector(latency_ms=100, latency_jitter_ms=50, seed=3)
    delays = [faults.delay_seconds() for _ in range(2_000)]
    assert all(0.100 <= delay <= 0.150 for delay in delays)
    # Uniform over 0..50 ms: both ends are reached closely.
    assert min(delays) < 0.105
    assert max(delays) > 0.145
    assert FaultInjector(latency_ms=20).delay_seconds() == pytest.approx(0.020)
    assert FaultInjector().delay_seconds() == 0


def test_latency_delays_api_requests() -> None:
    # A lower bound only: a sleep never ends early, so this cannot flake.
    with make_client(latency_ms=60) as client:
        started = time.perf_counter()
        assert client.get("/").status_code == 200
        assert time.perf_counter() - started >= 0.060
        duration_sum = samples(client, "taskapi_request_duration_seconds_sum")
    assert next(iter(duration_sum.values())) >= 0.060


# --- metrics ----------------------------------------------------------------------------


def test_metrics_count_by_route_template_and_status() -> None:
    with make_client(version="v2", pod="p") as client:
        client.post("/tasks", json={"title": "t"})
        client.get("/tasks/1")
        client.get("/tasks/2")
        client.get("/tasks/3")
        client.delete("/tasks")
        client.get("/random/a")
        client.get("/random/b")
        client.request("PURGE", "/echo/x")
        for _ in range(3):
            client.get("/healthz")
            client.get("/readyz")
            client.get("/metrics")

        assert request_count(client, "POST", "/tasks", 201) == 1
        assert request_count(client, "GET", "/tasks/{task_id}", 200) == 1
        assert request_count(client, "GET", "/tasks/{task_id}", 404) == 2
        assert request_count(client, "DELETE", "/tasks", 405) == 1
        assert request_count(client, "GET", "unmatched", 404) == 2
        # Unknown methods share one label value, like unknown paths.
        assert request_count(client, "OTHER", "/echo/{path:path}", 200) == 1
        routes = {dict(key)["route"] for key in samples(client, "taskapi_requests_total")}
        assert routes.isdisjoint({"/healthz", "/readyz", "/metrics"})
        assert samples(client, "taskapi_request_duration_seconds_count") == {
            (("version", "v2"),): 8.0
        }


def test_injected_faults_are_counted_under_their_route() -> None:
    with make_client(error_rate=1.0) as client:
        client.get("/tasks/5")
        client.get("/tasks/6")
        client.get("/echo")
        assert request_count(client, "GET", "/tasks/{task_id}", 500) == 2
        assert request_count(client, "GET", "/echo", 500) == 1


def test_metrics_histogram_buckets_and_info() -> None:
    with make_client(version="v2", pod="task-api-v2-0") as client:
        client.get("/")
        response = client.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        buckets = samples(client, "taskapi_request_duration_seconds_bucket")
        info = samples(client, "taskapi_info")
    bounds = sorted(float(dict(key)["le"]) for key in buckets)
    assert bounds[:-1] == list(DURATION_BUCKETS)
    assert math.isinf(bounds[-1])
    assert bounds[0] == 0.001
    assert 5.0 in bounds
    assert info == {(("pod", "task-api-v2-0"), ("version", "v2")): 1.0}


def test_apps_have_separate_registries() -> None:
    with make_client(version="v1") as first, make_client(version="v2") as second:
        first.get("/")
        first.get("/")
        second.get("/")
        assert request_count(first, "GET", "/", 200) == 2
        assert request_count(second, "GET", "/", 200) == 1
        assert "v2" not in first.get("/metrics").text


# --- the real process -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_real_process_serves_and_stops_on_sigterm() -> None:
    port = free_port()
    env = dict(os.environ, VERSION="v2", POD_NAME="proc-pod-0", PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskapi", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30  # a generous wait, not a performance check
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "task-api never became ready"
            time.sleep(0.05)

        response = httpx.post(f"{base}/tasks", json={"title": "real"}, timeout=5)
        assert response.status_code == 201
        assert response.json()["priority"] == "medium"
        assert (response.headers["x-version"], response.headers["x-pod"]) == ("v2", "proc-pod-0")
        assert httpx.get(f"{base}/nope", timeout=5).headers["x-pod"] == "proc-pod-0"

        os.kill(proc.pid, signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal, so the exit
        # status is the conventional "terminated by SIGTERM".
        assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
        output = proc.stdout.read().decode() if proc.stdout else ""
        assert "Finished server process" in output
        # No access log: request lines never reach the output.
        assert "POST /tasks" not in output
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()
