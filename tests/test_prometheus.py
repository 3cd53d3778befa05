"""The lab's Prometheus: generated configuration, file-based discovery, a real process.

The integration tests start the real ``prometheus`` binary (Debian's package in CI) and let
it scrape small HTTP servers on 127.0.0.1 that serve Prometheus text and record the paths
they were asked for. They are skipped, saying why, where Prometheus is not installed.
Prometheus applies discovered target changes every 5 s, so these tests wait for targets
(with a timeout) instead of sleeping a fixed time.
"""

from __future__ import annotations

import http.server
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from trafficlab.monitoring.prometheus import (
    DEFAULT_JOBS,
    MonitoringError,
    PrometheusClient,
    PrometheusServer,
    ScrapeTarget,
    find_prometheus,
    render_config,
    target_groups,
)

PROMETHEUS = find_prometheus()
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="Prometheus is not installed (apt-get install prometheus; "
                               ".ci/run installs it)")


class _Exporter(http.server.ThreadingHTTPServer):
    """An HTTP server that answers every GET with a counter and remembers the paths asked."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.paths: list[str] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert isinstance(self.server, _Exporter)
        self.server.paths.append(self.path)
        body = b"# TYPE demo_requests_total counter\ndemo_requests_total 42\n"
        self.send_response(200)
        self.send_header("content-type", "text/plain; version=0.0.4")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def exporters() -> Iterator[list[_Exporter]]:
    servers = [_Exporter() for _ in range(3)]
    try:
        yield servers
    finally:
        for server in servers:
            server.close()


# -- configuration, no process ---------------------------------------------------------------
def test_find_prometheus_takes_the_binary_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "prometheus"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    assert find_prometheus() == fake


def test_config_reads_each_job_from_its_targets_file(tmp_path: Path) -> None:
    config = yaml.safe_load(render_config(tmp_path))
    assert config["global"]["scrape_interval"] == "1s"
    assert config["global"]["scrape_timeout"] == "1s"  # never longer than the interval
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"task-api", "envoy"}
    assert jobs["envoy"]["metrics_path"] == "/stats/prometheus"
    assert jobs["task-api"]["metrics_path"] == "/metrics"
    for name, job in jobs.items():
        assert job["file_sd_configs"][0]["files"] == [str(tmp_path / "targets" / f"{name}.json")]


def test_target_groups_keep_labels_and_fix_bad_label_names() -> None:
    labels = {"pod": "p", "app.kubernetes.io/name": "x", "9lives": "y"}
    groups = target_groups([ScrapeTarget("task-api", "127.0.0.1:1", labels)])
    assert groups == [{"targets": ["127.0.0.1:1"],
                       "labels": {"pod": "p", "app_kubernetes_io_name": "x", "_9lives": "y"}}]


def test_set_targets_before_start_writes_every_job_file(tmp_path: Path) -> None:
    server = PrometheusServer(tmp_path, Path("/nonexistent/prometheus"))
    assert server.pid is None and server.url is None
    server.set_targets([ScrapeTarget("task-api", "127.0.0.1:1234", {"pod": "a"})])
    task_api = json.loads((tmp_path / "targets" / "task-api.json").read_text())
    assert task_api == [{"targets": ["127.0.0.1:1234"], "labels": {"pod": "a"}}]
    assert json.loads((tmp_path / "targets" / "envoy.json").read_text()) == []
    # A pod that goes away leaves an empty list behind, so Prometheus stops scraping it.
    server.set_targets([])
    assert json.loads((tmp_path / "targets" / "task-api.json").read_text()) == []
    assert not [p for p in (tmp_path / "targets").iterdir() if p.name.endswith(".tmp")]


def test_set_targets_rejects_a_job_the_config_does_not_have(tmp_path: Path) -> None:
    server = PrometheusServer(tmp_path, Path("/nonexistent/prometheus"))
    with pytest.raises(ValueError, match="no scrape job 'node'"):
        server.set_targets([ScrapeTarget("node", "127.0.0.1:9100")])


def test_start_failure_reports_the_log(tmp_path: Path) -> None:
    broken = tmp_path / "bin" / "prometheus"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\necho 'err: cannot open the TSDB' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    server = PrometheusServer(tmp_path / "work", broken)
    with pytest.raises(MonitoringError, match=r"exited with code 3[\s\S]*cannot open the TSDB"):
        server.start(timeout=5)
    assert server.pid is None and server.url is None


# -- a real Prometheus -----------------------------------------------------------------------
def _active(client: PrometheusClient) -> dict[str, dict[str, object]]:
    return {str(t["labels"]["instance"]): t for t in client.targets()}


@needs_prometheus
def test_prometheus_scrapes_targets_and_follows_them_without_restart(
        tmp_path: Path, exporters: list[_Exporter]) -> None:
    assert PROMETHEUS is not None
    pod_a, pod_b, envoy = exporters
    server = PrometheusServer(tmp_path / "prometheus", PROMETHEUS)
    server.set_targets([ScrapeTarget("task-api", pod_a.address, {"pod": "a", "label_version": "v1"}),
                        ScrapeTarget("envoy", envoy.address)])
    try:
        server.start()
        assert server.pid is not None and server.url is not None
        assert server.url.startswith("http://127.0.0.1:")
        pid = server.pid
        client = PrometheusClient(server.url)
        client.wait_for_targets([pod_a.address, envoy.address], timeout=20)
        # Target labels land on every series; the envoy job scrapes Envoy's Prometheus path.
        deadline = time.monotonic() + 10
        while not (samples := client.query('demo_requests_total{job="task-api"}')):
            assert time.monotonic() < deadline, "no sample of the task-api job"
            time.sleep(0.2)
        assert samples[0].labels["pod"] == "a" and samples[0].labels["label_version"] == "v1"
        assert samples[0].value == 42
        assert "/stats/prometheus" in envoy.paths and set(envoy.paths) == {"/stats/prometheus"}
        assert set(pod_a.paths) == {"/metrics"}

        # A new pod is discovered from the rewritten file, and a gone one is dropped.
        server.set_targets([ScrapeTarget("task-api", pod_b.address, {"pod": "b"}),
                            ScrapeTarget("envoy", envoy.address)])
        client.wait_for_targets([pod_b.address], timeout=20)
        deadline = time.monotonic() + 20
        while pod_a.address in _active(client):
            assert time.monotonic() < deadline, "the removed target is still scraped"
            time.sleep(0.2)

        # A pod that takes over an address is waited for by its own name: until Prometheus
        # relabels the target, the address is up under the previous pod's labels.
        with pytest.raises(MonitoringError, match=pod_b.address):
            client.wait_for_targets({pod_b.address: "c"}, timeout=0.5)
        server.set_targets([ScrapeTarget("task-api", pod_b.address, {"pod": "c"}),
                            ScrapeTarget("envoy", envoy.address)])
        client.wait_for_targets({pod_b.address: "c", envoy.address: None}, timeout=20)
        assert server.pid == pid  # same process: no restart, no reload
    finally:
        server.stop()
    assert server.pid is None and server.url is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    server.stop()  # idempotent


@needs_prometheus
def test_client_reports_bad_queries_and_reads_ranges(tmp_path: Path) -> None:
    assert PROMETHEUS is not None
    server = PrometheusServer(tmp_path / "prometheus", PROMETHEUS)
    server.start()
    try:
        assert server.url is not None
        client = PrometheusClient(server.url)
        with pytest.raises(MonitoringError, match="parse error"):
            client.query("sum(rate(x[1m])")
        with pytest.raises(MonitoringError, match="already running"):
            server.start()
        assert client.query("1 + 1")[0].value == 2.0
        now = time.time()
        series = client.query_range("vector(3)", now - 10, now, 5)
        assert [v for _, v in series[0].points] == [3.0, 3.0, 3.0]
        assert client.query("0/0")[0].value != client.query("0/0")[0].value  # NaN comes back as NaN
    finally:
        server.stop()


def test_default_jobs_are_the_lab_contract() -> None:
    assert dict(DEFAULT_JOBS) == {"task-api": "/metrics", "envoy": "/stats/prometheus"}
