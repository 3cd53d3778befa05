"""Per-version metrics: the PromQL, the direct derivation, and both against a real lab.

The lab tests run one local lab (real Envoy, real Task API processes, the real Prometheus
when installed) for the whole module. Tolerances, stated once:

* error rate: a version with ``ERROR_RATE=0.2`` must read 0.2 ± 0.05. With at least 1 500
  of its requests in the window, the sampled share has a standard deviation of at most
  0.0103, so ±0.05 is more than 4.8 standard deviations: a correct lab fails this check
  with probability below 2e-6. Prometheus' reading must also match the share the client
  saw to ±0.01 (its ``rate()`` ratio over one scrape target extrapolates numerator and
  denominator alike), and the direct source must match it exactly (it counts the same
  requests).
* p99: ``LATENCY_MS=600`` plus up to 100 ms of jitter puts every answer in the
  (0.5 s, 0.75 s] bucket, so ``histogram_quantile`` must land in [600, 750] ms.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from trafficlab import Lab
from trafficlab.cli import main
from trafficlab.monitoring.metrics import (
    MetricsReport,
    PodSample,
    VersionMetrics,
    collect,
    direct_report,
    format_duration,
    histogram_quantile,
    parse_duration,
    parse_pod_metrics,
    plot,
    queries,
    wait_scraped,
)
from trafficlab.monitoring.prometheus import MonitoringError, PrometheusClient, find_prometheus
from trafficlab.traffic import TrafficResult, send

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "cluster" / "manifests"
PROMETHEUS = find_prometheus()
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="Prometheus is not installed (apt-get install prometheus; "
                               ".ci/run installs it)")
INF = math.inf


# -- pure pieces -----------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "seconds"), [("1m", 60), ("90s", 90), ("1m30s", 90), ("250ms", 0.25),
                                               ("2h", 7200), (5, 5), ("2.5", 2.5)])
def test_parse_duration(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "m", "-5s", "0s", "1m 30s", "abc"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="window"):
        parse_duration(text, what="window")


def test_format_duration_gives_promql_durations() -> None:
    assert [format_duration(s) for s in (60, 90, 3600, 2.5, 1)] == ["1m", "90s", "1h", "2500ms", "1s"]


def test_queries_are_the_exact_promql() -> None:
    q = queries("30s")
    assert q == {
        "rps": "sum by (version) (rate(taskapi_request_duration_seconds_count[30s]))",
        "requests": "sum by (version) (increase(taskapi_request_duration_seconds_count[30s]))",
        "error_rate": '(sum by (version) (rate(taskapi_requests_total{status=~"5.."}[30s])) or '
                      "sum by (version) (rate(taskapi_requests_total[30s])) * 0) / "
                      "sum by (version) (rate(taskapi_requests_total[30s]))",
        "p50_ms": "histogram_quantile(0.5, sum by (version, le) "
                  "(rate(taskapi_request_duration_seconds_bucket[30s]))) * 1000",
        "p99_ms": "histogram_quantile(0.99, sum by (version, le) "
                  "(rate(taskapi_request_duration_seconds_bucket[30s]))) * 1000",
    }
    assert queries(90)["rps"].endswith("[90s]))")
    with pytest.raises(ValueError, match="window"):
        queries("soon")


@pytest.mark.parametrize(("q", "buckets", "expected"), [
    (0.5, [(0.1, 50), (0.2, 100), (INF, 100)], 0.1),
    (0.75, [(0.1, 50), (0.2, 100), (INF, 100)], 0.15),
    (0.99, [(0.5, 0), (0.75, 100), (INF, 100)], 0.7475),
    (0.99, [(0.1, 10), (INF, 100)], 0.1),  # the rank falls in +Inf: the highest finite bound
    (0.5, [(0.1, 0), (INF, 0)], math.nan),  # no observations
    (0.5, [(0.1, 5)], math.nan),  # no +Inf bucket
])
def test_histogram_quantile_matches_promql(q: float, buckets: list[tuple[float, float]],
                                           expected: float) -> None:
    got = histogram_quantile(q, buckets)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def _sample(pod: str, at: float, ok: float, failed: float, *, started: float = 1000.0,
            version: str = "v2") -> PodSample:
    return PodSample(pod=pod, version=version, started=started, at=at,
                     requests={"200": ok, "500": failed},
                     buckets=((0.01, ok + failed), (0.1, ok + failed), (INF, ok + failed)))


def test_direct_report_is_the_difference_of_two_readings() -> None:
    before = [_sample("p1", 1010, 100, 10), _sample("p2", 1010, 50, 0)]
    after = [_sample("p1", 1020, 180, 30), _sample("p2", 1020, 90, 0)]
    report = direct_report(after, before, window="10s")
    v2 = report.versions["v2"]
    assert v2.requests == 80 + 20 + 40
    assert v2.rps == pytest.approx(14.0)  # (100 + 40) requests over 10 s
    assert v2.error_rate == pytest.approx(20 / 140)
    assert report.source == "direct"


def test_direct_report_counts_from_pod_start_without_a_reading() -> None:
    report = direct_report([_sample("p1", 1020, 30, 10, started=1000)], [], window="1m")
    assert report.versions["v2"].requests == 40
    assert report.versions["v2"].rps == pytest.approx(2.0)  # 40 requests in the 20 s since start
    # A restarted pod (counters fell) also counts from its start.
    restarted = direct_report([_sample("p1", 1020, 5, 0)], [_sample("p1", 1010, 100, 10)])
    assert restarted.versions["v2"].requests == 5


def test_no_requests_is_no_data_never_zero_errors() -> None:
    same = _sample("p1", 1010, 100, 10)
    report = direct_report([_sample("p1", 1020, 100, 10)], [same], window="10s")
    v2 = report.versions["v2"]
    assert v2.requests == 0 and v2.rps == 0
    assert v2.error_rate is None and v2.p50_ms is None and v2.p99_ms is None
    doc = report.to_dict()
    assert doc == {"source": "direct", "window": "10s", "versions": {"v2": {
        "rps": 0.0, "requests": 0.0, "error_rate": None, "p50_ms": None, "p99_ms": None}}}
    assert "no data" in str(report) and "0.00%" not in str(report)
    assert "no data" in report._repr_html_()
    assert MetricsReport("prometheus", "1m").get("v9") == VersionMetrics()


def test_parse_pod_metrics_sums_over_routes_and_methods() -> None:
    from taskapi.metrics import TaskApiMetrics

    metrics = TaskApiMetrics(version="v7", pod="p0")
    for route, status in (("/", 200), ("/", 500), ("/tasks", 200), ("/tasks/{task_id}", 404)):
        metrics.observe("GET", route, status, 0.004)
    sample = parse_pod_metrics(metrics.render().decode(), pod="p0", started=1.0, at=2.0)
    assert sample.version == "v7"
    assert sample.requests == {"200": 2.0, "500": 1.0, "404": 1.0}
    assert dict(sample.buckets)[0.005] == 4.0 and dict(sample.buckets)[INF] == 4.0


# -- a real lab ------------------------------------------------------------------------------
def _route(v1: int, v2: int) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "task-api", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "task-api-gateway"}], "rules": [{"backendRefs": [
                {"name": "task-api-v1", "port": 80, "weight": v1},
                {"name": "task-api-v2", "port": 80, "weight": v2}]}]}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    the_lab = Lab(tmp_path_factory.mktemp("metrics-lab"), backend="local")
    try:
        the_lab.up(timeout=60)
        yield the_lab
    finally:
        the_lab.down()


def _use(lab: Lab, manifest: Path, v1: int, v2: int) -> None:
    """Run ``manifest``'s v2, split the route, and wait until Envoy and Prometheus see it all."""
    lab.apply(manifest)
    lab.apply(_route(v1, v2))
    lab.wait_programmed()
    deadline = time.monotonic() + 30
    while not lab.status()["ready"]:
        assert time.monotonic() < deadline, "the new v2 pod did not get ready"
        time.sleep(0.1)
    wait_scraped(lab, timeout=30)


def _window_since(started: float) -> str:
    """A window from 2 s before ``started`` to now: it then holds a scrape taken before the
    load began (Prometheus scrapes every second), so rate() sees the whole load, and nothing
    older (the tests wait 2.5 s after earlier traffic before they start)."""
    return f"{math.ceil(time.time() - started) + 2}s"


def _share_5xx(result: TrafficResult, version: str) -> float:
    statuses = result.by_version_status[version]
    return sum(c for s, c in statuses.items() if s >= 500) / sum(statuses.values())


def test_lab_reports_prometheus_and_it_scrapes_envoy_and_pods(lab: Lab) -> None:
    url = lab.status()["prometheus"]
    if PROMETHEUS is None:
        assert url is None
        pytest.skip("Prometheus is not installed (apt-get install prometheus)")
    assert url and url.startswith("http://127.0.0.1:")
    assert wait_scraped(lab, timeout=30) is True
    targets = PrometheusClient(url).targets()
    envoy = [t for t in targets if t["labels"]["job"] == "envoy"]
    assert len(envoy) == 1 and envoy[0]["scrapeUrl"].endswith("/stats/prometheus")
    pods = {t["labels"]["pod"]: t["labels"] for t in targets if t["labels"]["job"] == "task-api"}
    assert {p["metadata"]["name"] for p in lab.get("pod")} == set(pods)
    assert {labels["label_version"] for labels in pods.values()} == {"v1", "v2"}
    # Envoy's per-Service upstream stats are there too.
    client = PrometheusClient(url)
    clusters = {s.labels.get("envoy_cluster_name")
                for s in client.query("envoy_cluster_upstream_cx_total")}
    assert "service/default/task-api-v1/80" in clusters


@needs_prometheus
def test_error_rate_of_a_faulty_version(lab: Lab) -> None:
    _use(lab, MANIFESTS / "workloads" / "task-api-v2-faulty.yaml", 50, 50)
    # Warm-up: the Task API creates a requests_total series on its first answer of each
    # status, and rate() counts only from a series' first scrape.
    send(lab.url(), requests=300, concurrency=8)
    time.sleep(2.5)
    collect(lab, "1m", source="direct")  # a direct reading to compare the next one against
    started = time.time()
    result = send(lab.url(), requests=4000, concurrency=16)
    time.sleep(2.5)  # two more scrapes
    window = _window_since(started)
    seen = _share_5xx(result, "v2")
    assert result.by_version["v2"] >= 1500

    report = collect(lab, window)
    assert report.source == "prometheus"
    v1, v2 = report.versions["v1"], report.versions["v2"]
    assert v2.error_rate is not None and abs(v2.error_rate - 0.2) <= 0.05, report.to_dict()
    assert abs(v2.error_rate - seen) <= 0.01, (v2.error_rate, seen)
    assert v1.error_rate == 0.0
    assert v2.rps is not None and v2.rps > 0

    direct = collect(lab, window, source="direct")
    assert direct.source == "direct"
    assert direct.versions["v2"].requests == result.by_version["v2"]
    assert direct.versions["v2"].error_rate == pytest.approx(seen, abs=1e-12)

    # Long after the load, the window holds no request: no data, not 0 % errors.
    time.sleep(3)
    quiet = collect(lab, "2s").to_dict()["versions"]
    assert quiet["v2"]["requests"] == 0 and quiet["v2"]["error_rate"] is None
    assert quiet["v2"]["p99_ms"] is None


@needs_prometheus
def test_p99_reflects_added_latency(lab: Lab) -> None:
    _use(lab, MANIFESTS / "workloads" / "task-api-v2-slow.yaml", 50, 50)
    send(lab.url(), requests=20, concurrency=8)  # creates the series before the window
    time.sleep(2.5)
    started = time.time()
    result = send(lab.url(), requests=600, concurrency=64)
    time.sleep(2.5)
    report = collect(lab, _window_since(started))
    v1, v2 = report.versions["v1"], report.versions["v2"]
    assert v2.p99_ms is not None and 600 <= v2.p99_ms <= 750, report.to_dict()
    assert v2.p50_ms is not None and 600 <= v2.p50_ms <= 750
    assert v1.p99_ms is not None and v1.p99_ms < 100
    assert min(x for x in result.latencies_ms) < 100  # v1 answered quickly through the same gateway
    direct = collect(lab, "1h", source="direct")
    assert direct.versions["v2"].p99_ms is not None and 600 <= direct.versions["v2"].p99_ms <= 750


def _cli(lab: Lab, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--home", str(lab.home), *argv])
    return code, out.getvalue(), err.getvalue()


def test_cli_metrics_json_and_queries(lab: Lab) -> None:
    lab.apply(MANIFESTS / "baseline" / "21-task-api-v2.yaml")
    lab.apply(_route(100, 0))
    lab.wait_programmed()
    send(lab.url(), requests=50, concurrency=4)
    code, out, _ = _cli(lab, "metrics", "--window", "30s", "-o", "json", "--source", "direct")
    doc = json.loads(out)
    assert code == 0 and set(doc) == {"source", "window", "versions"}
    assert doc["source"] == "direct" and doc["window"] == "30s"
    assert set(doc["versions"]["v1"]) == {"rps", "requests", "error_rate", "p50_ms", "p99_ms"}
    if PROMETHEUS is None:  # asked for Prometheus where none runs: say how to get it
        with pytest.raises(MonitoringError, match="apt-get install prometheus"):
            collect(lab, source="prometheus")
        return
    code, out, _ = _cli(lab, "metrics", "--window", "1m", "--show-queries")
    assert code == 0 and "(Prometheus)" in out
    assert queries("1m")["error_rate"] in out


@needs_prometheus
def test_plot_draws_a_line_per_version(lab: Lab) -> None:
    pytest.importorskip("matplotlib", reason="plot() needs matplotlib (pip install matplotlib)")
    import matplotlib

    matplotlib.use("Agg")
    send(lab.url(), requests=100, concurrency=4)
    time.sleep(1.5)
    fig = plot(lab, "1m")
    try:
        labels = {line.get_label() for line in fig.axes[0].get_lines()}
        assert "v1" in labels
        assert [ax.get_ylabel() for ax in fig.axes] == ["requests/s", "error rate (%)",
                                                        "p99 latency (ms)"]
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_faulty_manifests_inject_the_faults_they_name() -> None:
    def env(path: Path) -> dict[str, str]:
        docs = list(yaml.safe_load_all(path.read_text()))
        deployment = next(d for d in docs if d["kind"] == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e.get("value") for e in container["env"]}

    workloads = MANIFESTS / "workloads"
    assert env(workloads / "task-api-v2-faulty.yaml")["ERROR_RATE"] == "0.2"
    assert env(workloads / "task-api-v2-slow.yaml")["LATENCY_MS"] == "600"
    v3 = list(yaml.safe_load_all((workloads / "task-api-v3-faulty.yaml").read_text()))
    assert {d["kind"] for d in v3} == {"Deployment", "Service"}
    assert env(workloads / "task-api-v3-faulty.yaml") | {"POD_NAME": None} == {
        "VERSION": "v3", "POD_NAME": None, "ERROR_RATE": "0.3"}
