"""Tests of the traffic generator against real aiohttp servers on 127.0.0.1.

Two backend servers play the Task API's versions (``x-version``/``x-pod`` headers);
``v2`` answers every 4th request with a 500, and ``/gateway-404`` answers without
identity headers, as a response made by the gateway would. Each server runs on its own
event loop in a thread, on a port picked free at runtime, and is stopped by the fixture.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from rich.table import Table

from trafficlab.traffic import (
    NO_VERSION,
    AiohttpTransport,
    HttptoolsTransport,
    TrafficResult,
    asend,
    default_transport,
    format_result,
    send,
)

TRANSPORTS = ["httptools", "aiohttp"]


def run(kind: str, url: str, *, concurrency: int = 10, timeout: float = 10.0,
        **options: Any) -> TrafficResult:
    """``send`` through the default transport, or through an aiohttp one."""
    if kind == "httptools":
        return send(url, concurrency=concurrency, timeout=timeout, **options)

    async def go() -> TrafficResult:
        async with AiohttpTransport(concurrency=concurrency, timeout=timeout) as transport:
            return await asend(url, concurrency=concurrency, timeout=timeout,
                               transport=transport, **options)

    return asyncio.run(go())


@dataclass
class Backend:
    """What one test server saw; the handler runs on the server thread's loop."""

    version: str
    error_every: int = 0  # every Nth request (1-based) gets a 500
    seen: int = 0
    methods: Counter[str] = field(default_factory=Counter)
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)
    in_flight: int = 0
    max_in_flight: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self.methods[request.method] += 1
            self.headers.append(dict(request.headers))
            self.bodies.append(await request.read())
            peer = request.transport.get_extra_info("peername") if request.transport else None
            if peer:
                self.peers.add((peer[0], peer[1]))
            if request.path == "/gateway-404":
                return web.Response(status=404, text="no route")  # no identity headers
            if request.path == "/chunked":
                resp = web.StreamResponse(headers={"x-version": self.version})
                resp.enable_chunked_encoding()
                await resp.prepare(request)
                for part in (b"one,", b"two,", b"three"):
                    await resp.write(part)
                await resp.write_eof()
                return resp
            if request.path == "/close":
                return web.Response(text="bye", headers={"x-version": self.version,
                                                         "Connection": "close"})
            if request.path == "/slow":
                await asyncio.sleep(float(request.query.get("s", "0.02")))
            status = 500 if self.error_every and self.seen % self.error_every == 0 else 200
            return web.Response(
                status=status, text="ok",
                headers={"x-version": self.version, "x-pod": f"task-api-{self.version}-0"},
            )
        finally:
            self.in_flight -= 1


class ServerThread:
    """aiohttp servers on one private loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runners: list[web.AppRunner] = []
        self.raw_servers: list[asyncio.Server] = []

    def start(self) -> None:
        self.thread.start()

    def serve(self, backend: Backend, keepalive_timeout: float = 75.0) -> Backend:
        async def up() -> int:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", backend.handle)
            runner = web.AppRunner(app, access_log=None, keepalive_timeout=keepalive_timeout)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)  # port 0: the OS picks a free one
            await site.start()
            self.runners.append(runner)
            port: int = runner.addresses[0][1]
            return port

        port = asyncio.run_coroutine_threadsafe(up(), self.loop).result(10)
        backend.url = f"http://127.0.0.1:{port}"
        return backend

    def serve_garbage(self) -> str:
        """A TCP server answering every request with bytes that are not HTTP."""
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1024)
            writer.write(b"SPAM/9 nonsense\r\n\r\n")
            await writer.drain()
            writer.close()

        async def up() -> int:
            server = await asyncio.start_server(answer, "127.0.0.1", 0)
            self.raw_servers.append(server)
            port: int = server.sockets[0].getsockname()[1]
            return port

        port = asyncio.run_coroutine_threadsafe(up(), self.loop).result(10)
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        async def down() -> None:
            for runner in self.runners:
                await runner.cleanup()
            for server in self.raw_servers:
                server.close()
                await server.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(down(), self.loop).result(10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture
def server_thread() -> Iterator[ServerThread]:
    thread = ServerThread()
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture
def servers(server_thread: ServerThread) -> tuple[Backend, Backend]:
    return server_thread.serve(Backend("v1")), server_thread.serve(Backend("v2", error_every=4))


def closed_port() -> int:
    """A port nothing listens on: bound, read, closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- real servers --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_counts_versions_pods_and_statuses(
    servers: tuple[Backend, Backend], kind: str,
) -> None:
    v1, v2 = servers
    one = run(kind, v1.url, requests=60, concurrency=6)
    two = run(kind, v2.url, requests=40, concurrency=4, path="/tasks")
    assert one.total == 60 and v1.seen == 60
    assert one.by_version == Counter(v1=60)
    assert one.by_pod == Counter({"task-api-v1-0": 60})
    assert one.by_status == Counter({200: 60})
    assert one.share("v1") == 1.0 and one.share("v2") == 0.0
    assert len(one.latencies_ms) == 60 and all(ms > 0 for ms in one.latencies_ms)
    # every 4th request to v2 is a 500, whatever the interleaving of workers
    assert two.by_version_status == {"v2": Counter({200: 30, 500: 10})}
    assert two.by_status == Counter({200: 30, 500: 10})
    assert not one.errors and not two.errors


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_gateway_made_answers_count_as_none(
    servers: tuple[Backend, Backend], kind: str,
) -> None:
    v1, _ = servers
    result = run(kind, v1.url, requests=10, path="/gateway-404")
    assert result.by_version == Counter({NO_VERSION: 10})
    assert result.by_version_status == {NO_VERSION: Counter({404: 10})}
    assert result.share(NO_VERSION) == 1.0


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_headers_method_body_and_host_override(
    servers: tuple[Backend, Backend], kind: str,
) -> None:
    v1, _ = servers
    run(kind, v1.url, requests=12, concurrency=3, method="post", path="/tasks", body=b'{"a":1}',
         headers={"x-user-type": "beta", "Host": "tasks.example.test",
                  "Content-Type": "application/json"})
    assert v1.methods == Counter(POST=12)
    assert v1.bodies == [b'{"a":1}'] * 12
    assert {h["x-user-type"] for h in v1.headers} == {"beta"}
    assert {h["Host"] for h in v1.headers} == {"tasks.example.test"}


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_concurrency_bounds_in_flight_and_keeps_connections_alive(
    servers: tuple[Backend, Backend], kind: str,
) -> None:
    v1, _ = servers
    result = run(kind, v1.url, requests=40, concurrency=4, path="/slow?s=0.01")
    assert result.total == 40
    assert 1 <= v1.max_in_flight <= 4
    # keep-alive: 40 requests over at most 4 pooled connections
    assert 1 <= len(v1.peers) <= 4


def test_duration_mode_stops(servers: tuple[Backend, Backend]) -> None:
    v1, _ = servers
    result = send(v1.url, duration=0.3, concurrency=2)
    assert result.total > 0 and result.total == v1.seen
    assert result.elapsed >= 0.3
    assert result.elapsed < 30  # sanity: it ended


def test_rate_paces_total_requests(servers: tuple[Backend, Backend]) -> None:
    v1, _ = servers
    # Request i is due at i/rate whichever worker sends it: 20 requests at 50/s
    # cannot finish before the last one is due (19/50 s), however many workers.
    result = send(v1.url, requests=20, rate=50, concurrency=8)
    assert result.total == 20
    # 10 ms of slack for where the clock starts; unpaced, 20 requests take a few ms.
    assert result.elapsed >= 19 / 50 - 0.01
    # With a duration, only requests due before the end are sent: at most 0.5 * 100.
    capped = send(v1.url, duration=0.5, rate=100, concurrency=4)
    assert 1 <= capped.total <= 50


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_connect_refused_is_counted(servers: tuple[Backend, Backend], kind: str) -> None:
    result = run(kind, f"http://127.0.0.1:{closed_port()}", requests=5, concurrency=2)
    assert result.total == 5
    assert result.errors == Counter({"connect refused": 5})
    assert result.responses == 0 and not result.by_version
    assert result.share("v1") == 0.0
    assert result.latency()["p50"] is None


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_timeout_is_counted(servers: tuple[Backend, Backend], kind: str) -> None:
    v1, _ = servers
    result = run(kind, v1.url, requests=2, concurrency=2, path="/slow?s=0.3", timeout=0.1)
    assert result.errors == Counter(timeout=2)


def test_asend_and_send_inside_a_running_loop(servers: tuple[Backend, Backend]) -> None:
    v1, v2 = servers

    async def notebook_cell() -> tuple[TrafficResult, TrafficResult]:
        # As in Jupyter: a loop is running, and send() is called synchronously.
        blocking = send(v1.url, requests=7)
        awaited = await asend(v2.url, requests=8)
        return blocking, awaited

    blocking, awaited = asyncio.run(notebook_cell())
    assert blocking.by_version == Counter(v1=7)
    assert awaited.by_version["v2"] == 8


def test_result_renders_as_json_table_and_html(servers: tuple[Backend, Backend]) -> None:
    _, v2 = servers
    result = send(v2.url, requests=8, concurrency=2)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["total"] == 8
    assert data["by_status"] == {"200": 6, "500": 2}
    assert data["by_version_status"] == {"v2": {"200": 6, "500": 2}}
    assert data["shares"] == {"v2": 1.0}
    assert set(data["latency_ms"]) == {"mean", "p50", "p90", "p99", "max"}
    assert json.loads(format_result(result, "json")) == data

    assert isinstance(result.table(), Table)
    text = format_result(result, "table")
    assert "v2" in text and "100.0%" in text and "200×6" in text and "500×2" in text
    assert "latency" in text and "p99" in text
    html = result._repr_html_()
    assert html.startswith("<table>") and "500×2" in html
    with pytest.raises(ValueError, match="unknown output format"):
        format_result(result, "yaml")  # type: ignore[arg-type]


def test_default_transport_is_httptools_and_https_uses_aiohttp() -> None:
    assert isinstance(default_transport(), HttptoolsTransport)
    assert isinstance(default_transport(tls=True), AiohttpTransport)


def test_chunked_bodies_and_server_closed_connections(servers: tuple[Backend, Backend]) -> None:
    v1, _ = servers
    chunked = send(v1.url, requests=20, concurrency=2, path="/chunked")
    assert chunked.by_version == Counter(v1=20) and not chunked.errors
    # "Connection: close" on every answer: each request needs a new connection.
    closing = send(v1.url, requests=10, concurrency=2, path="/close")
    assert closing.by_status == Counter({200: 10}) and not closing.errors
    assert len(v1.peers) >= 10


def test_idle_connections_closed_by_the_server_are_replaced(server_thread: ServerThread) -> None:
    # The server drops keep-alive connections idle for 20 ms; pacing at 10/s leaves
    # each idle for ~100 ms, so every request finds its pooled connection closed.
    backend = server_thread.serve(Backend("v1"), keepalive_timeout=0.02)
    result = send(backend.url, requests=5, concurrency=1, rate=10)
    assert result.by_status == Counter({200: 5}) and not result.errors
    assert len(backend.peers) == 5


def test_head_requests_end_without_a_body(servers: tuple[Backend, Backend]) -> None:
    v1, _ = servers
    result = send(v1.url, requests=6, concurrency=2, method="HEAD")
    assert result.by_status == Counter({200: 6}) and not result.errors
    assert v1.methods == Counter(HEAD=6)


def test_garbage_answers_count_as_bad_responses(server_thread: ServerThread) -> None:
    url = server_thread.serve_garbage()
    result = send(url, requests=4, concurrency=2, timeout=5)
    assert result.errors == Counter({"bad response": 4})


def test_unsupported_url_is_counted_not_raised() -> None:
    result = send("ftp://127.0.0.1:1", requests=3, concurrency=1)
    assert result.errors == Counter({"invalid url": 3})


# --- the generator's logic, through a fake transport ---------------------------------------


class FakeTransport:
    """Answers from a script: version per request index, or raises."""

    def __init__(self, script: list[object]) -> None:
        self.script = script
        self.calls: list[tuple[str, str, dict[str, str], bytes | None]] = []

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, Mapping[str, str]]:
        step = self.script[len(self.calls) % len(self.script)]
        self.calls.append((method, url, dict(headers), body))
        await asyncio.sleep(0)
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, tuple)
        status, version = step
        return status, ({"x-version": version, "x-pod": f"{version}-pod"} if version else {})


def test_fake_transport_counts_and_error_kinds() -> None:
    fake = FakeTransport([
        (200, "v1"), (200, "v1"), (500, "v2"), (503, None),
        ConnectionRefusedError(), TimeoutError(), RuntimeError("odd"),
    ])
    result = send("http://gw.invalid/", requests=70, concurrency=5, path="tasks",
                  headers={"x-user-type": "beta"}, transport=fake)
    assert result.total == 70 and len(fake.calls) == 70
    assert {c[1] for c in fake.calls} == {"http://gw.invalid/tasks"}
    assert {c[0] for c in fake.calls} == {"GET"}
    assert all(c[2] == {"x-user-type": "beta"} for c in fake.calls)
    assert result.by_version == Counter(v1=20, v2=10, none=10)
    assert result.by_pod == Counter({"v1-pod": 20, "v2-pod": 10, "none": 10})
    assert result.by_version_status == {
        "v1": Counter({200: 20}), "v2": Counter({500: 10}), "none": Counter({503: 10}),
    }
    assert result.errors == Counter({"connect refused": 10, "timeout": 10, "RuntimeError": 10})
    assert result.responses == 40
    assert result.share("v1") == 0.5


def test_default_is_200_requests_and_progress_path_runs() -> None:
    fake = FakeTransport([(200, "v1")])
    result = send("http://gw.invalid", transport=fake, progress=True)
    assert result.total == 200
    assert asyncio.run(asend("http://gw.invalid", requests=0, transport=fake)).total == 0


@pytest.mark.parametrize("options", [
    {"concurrency": 0}, {"requests": -1}, {"duration": 0}, {"rate": 0}, {"timeout": 0},
])
def test_bad_options_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        send("http://gw.invalid", transport=FakeTransport([(200, "v1")]), **options)  # type: ignore[arg-type]


def test_percentiles_nearest_rank() -> None:
    result = TrafficResult(total=100, by_status=Counter({200: 100}))
    result.latencies_ms.extend(float(ms) for ms in range(100, 0, -1))
    assert result.latency() == {"mean": 50.5, "p50": 50.0, "p90": 90.0, "p99": 99.0,
                                "max": 100.0}


def test_plot_needs_matplotlib() -> None:
    result = TrafficResult(total=1, by_version=Counter(v1=1), by_status=Counter({200: 1}))
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        with pytest.raises(ImportError, match="pip install matplotlib"):
            result.plot()
    else:
        ax = result.plot()
        assert [t.get_text() for t in ax.get_xticklabels()] == ["v1"]
