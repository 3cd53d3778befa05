"""Per-version metrics: requests/s, error rate and p50/p99 latency of every Task API version.

Two sources give the same figures:

``prometheus``
    PromQL over the lab's Prometheus (:func:`queries` shows the exact text). Rates come
    from ``rate()``/``increase()`` over the window; percentiles from ``histogram_quantile()``
    over the summed bucket rates of ``taskapi_request_duration_seconds``.

``direct``
    No Prometheus: each pod's ``/metrics`` is read now and compared with an earlier reading
    of the same pod (same name, same start time). The earlier reading is the one nearest to
    the window's start among those kept in ``<home>/monitoring/direct-samples.json`` (every
    direct collection stores one), or the pod's start, where every counter was 0. So the
    figures cover the span between that reading and now: exactly the window when an earlier
    ``collect`` ran a window ago, else as close as the readings allow; :attr:`MetricsReport.notes`
    says which span each pod's figures cover. Requests/s is each pod's counter increase over
    its span, summed over the version's pods; error rate is 5xx over all requests of those
    increases; percentiles interpolate within the increased histogram buckets exactly as
    Prometheus' ``histogram_quantile`` does.

An error is an answer with a 5xx status (a 4xx is the client's fault, not the version's).
Where a version got no request in the window, its error rate and percentiles are *no data*
(``None`` in JSON): 0 errors out of 0 requests is not a 0 % error rate.

>>> report = collect(lab, "1m")                     # doctest: +SKIP
>>> report.to_dict()["versions"]["v2"]["error_rate"]  # doctest: +SKIP
0.2012
"""

from __future__ import annotations

import html
import io
import json
import math
import os
import re
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trafficlab.monitoring.prometheus import SCRAPE_INTERVAL_S, MonitoringError, PrometheusClient

if TYPE_CHECKING:
    from rich.table import Table

    from trafficlab.labapi import LabAPI

__all__ = [
    "SOURCES",
    "MetricsReport",
    "PodSample",
    "VersionMetrics",
    "collect",
    "direct_report",
    "format_duration",
    "histogram_quantile",
    "parse_duration",
    "parse_pod_metrics",
    "plot",
    "prometheus_report",
    "queries",
    "sample_lab_pods",
    "wait_scraped",
]

SOURCES = ("auto", "prometheus", "direct")

_REQUESTS = "taskapi_requests_total"
_BUCKETS = "taskapi_request_duration_seconds_bucket"
_INFO = "taskapi_info"
_COUNT = "taskapi_request_duration_seconds_count"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# Direct readings older than this are dropped from the state file.
_KEEP_S = 3600.0


# -- durations -------------------------------------------------------------------------------
def parse_duration(text: str | float, *, what: str = "duration") -> float:
    """Seconds in ``"500ms"``, ``"30s"``, ``"1m30s"``, ``"2h"`` or a plain number of seconds.

    >>> parse_duration("1m30s"), parse_duration("250ms"), parse_duration(5)
    (90.0, 0.25, 5.0)
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        value = str(text).strip()
        try:
            seconds = float(value)
        except ValueError:
            parts = _DURATION.findall(value)
            if not parts or "".join(n + u for n, u in parts) != value:
                raise ValueError(f"{what} {text!r} is not a duration; write e.g. 500ms, 30s, "
                                 "1m or 1m30s") from None
            seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{what} must be more than 0 seconds, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A PromQL duration for ``seconds``: ``"1m"``, ``"90s"``, ``"2500ms"``.

    >>> format_duration(60), format_duration(90), format_duration(2.5)
    ('1m', '90s', '2500ms')
    """
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    whole = ms // 1000
    if whole % 3600 == 0:
        return f"{whole // 3600}h"
    if whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{whole}s"


def _window(window: str | float) -> tuple[str, float]:
    seconds = parse_duration(window, what="window")
    return format_duration(seconds), seconds


# -- the queries -----------------------------------------------------------------------------
def queries(window: str | float = "1m") -> dict[str, str]:
    """The PromQL behind every figure, by field of :class:`VersionMetrics`.

    ``version`` is the Task API's own label (its ``VERSION``), the same value as the
    ``x-version`` header of its answers.

    >>> print(queries("1m")["rps"])
    sum by (version) (rate(taskapi_request_duration_seconds_count[1m]))
    """
    w, _ = _window(window)
    # Requests are counted from the latency histogram's _count: the Task API creates that
    # series at 0 when it starts, while a requests_total series appears only with its first
    # answer, and rate() cannot count what happened before a series' first sample.
    counted = f"sum by (version) (rate({_COUNT}[{w}]))"
    total = f"sum by (version) (rate({_REQUESTS}[{w}]))"
    errors = f'sum by (version) (rate({_REQUESTS}{{status=~"5.."}}[{w}]))'

    def quantile(q: str) -> str:
        return f"histogram_quantile({q}, sum by (version, le) (rate({_BUCKETS}[{w}]))) * 1000"

    return {
        "rps": counted,
        "requests": f"sum by (version) (increase({_COUNT}[{w}]))",
        # The share of 5xx among the answers, both from requests_total so that both lose the
        # same first scrape. A version that never failed has no status="5xx" series at all,
        # and a division by an absent series drops the version: "or ... * 0" supplies its zero.
        # A version without requests still divides 0 by 0: NaN, reported as no data.
        "error_rate": f"({errors} or {total} * 0) / {total}",
        "p50_ms": quantile("0.5"),
        "p99_ms": quantile("0.99"),
    }


# -- the report ------------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionMetrics:
    """The figures of one version over a window; ``None`` means no data.

    ``rps`` and ``requests`` are 0 when the version was scraped but got no request; then
    ``error_rate``, ``p50_ms`` and ``p99_ms`` are ``None`` (0/0 is not 0 %).
    """

    rps: float | None = None
    requests: float | None = None
    error_rate: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        """The JSON fields (rounded for reading; the attributes keep full precision)."""
        return {"rps": _round(self.rps, 3), "requests": _round(self.requests, 1),
                "error_rate": _round(self.error_rate, 6), "p50_ms": _round(self.p50_ms, 3),
                "p99_ms": _round(self.p99_ms, 3)}


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else float(value)


@dataclass
class MetricsReport:
    """Per-version figures over ``window`` from ``source`` (``"prometheus"`` or ``"direct"``).

    ``queries`` holds the PromQL used (empty for the direct source); ``notes`` explains how
    direct figures were derived; ``at`` is the unix time the figures end at.
    """

    source: str
    window: str
    versions: dict[str, VersionMetrics] = field(default_factory=dict)
    queries: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    at: float = 0.0

    def get(self, version: str) -> VersionMetrics:
        """The figures of ``version``; all ``None`` (no data) when it was not seen."""
        return self.versions.get(version, VersionMetrics())

    def to_dict(self) -> dict[str, Any]:
        """``{"source", "window", "versions": {version: {rps, requests, error_rate, p50_ms, p99_ms}}}``."""
        return {"source": self.source, "window": self.window,
                "versions": {v: m.to_dict() for v, m in sorted(self.versions.items())}}

    def _title(self) -> str:
        label = "Prometheus" if self.source == "prometheus" else "read directly from the pods"
        return f"per-version metrics, last {self.window} ({label})"

    def _rows(self) -> list[list[str]]:
        rows = []
        for version, m in sorted(self.versions.items()):
            rows.append([version, _fmt(m.rps, "{:.2f}"), _fmt(m.requests, "{:.0f}"),
                         _fmt(None if m.error_rate is None else m.error_rate * 100, "{:.2f}%"),
                         _fmt(m.p50_ms, "{:.1f} ms"), _fmt(m.p99_ms, "{:.1f} ms")])
        return rows

    def table(self) -> Table:
        """A rich table: one row per version; ``no data`` where there is none."""
        from rich.table import Table

        table = Table(title=self._title())
        for name in ("version", "req/s", "requests", "errors (5xx)", "p50", "p99"):
            table.add_column(name, justify="left" if name == "version" else "right")
        for row in self._rows():
            table.add_row(*[f"[dim]{c}[/dim]" if c == "no data" else c for c in row])
        if not self.versions:
            table.add_row("[dim](no Task API version seen)[/dim]", "", "", "", "", "")
        return table

    def __str__(self) -> str:
        from rich.console import Console

        buffer = io.StringIO()
        console = Console(file=buffer, width=100, color_system=None, force_terminal=False)
        console.print(self.table())
        for note in self.notes:
            console.print(f"note: {note}")
        return buffer.getvalue()

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{h}</th>" for h in ("version", "req/s", "requests", "errors (5xx)",
                                                  "p50", "p99"))
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                       for row in self._rows())
        notes = "".join(f"<p><small>{esc(n)}</small></p>" for n in self.notes)
        return (f"<table><caption>{esc(self._title())}</caption><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>{notes}")


def _fmt(value: float | None, pattern: str) -> str:
    return "no data" if value is None else pattern.format(value)


# -- Prometheus ------------------------------------------------------------------------------
def prometheus_report(url: str, window: str | float = "1m", *, at: float | None = None,
                      timeout: float = 10.0) -> MetricsReport:
    """The figures Prometheus at ``url`` has for ``window`` ending at unix time ``at`` (now).

    Graders use this to learn "what Prometheus saw" over a past stretch of time.
    """
    w, _ = _window(window)
    client = PrometheusClient(url, timeout=timeout)
    when = time.time() if at is None else at
    text = queries(w)
    results: dict[str, dict[str, float | None]] = {}
    for name, expr in text.items():
        results[name] = {s.labels.get("version", ""): _number(s.value)
                         for s in client.query(expr, at=when)}
    versions: dict[str, VersionMetrics] = {}
    for version in sorted(v for v in results["rps"] if v):
        versions[version] = VersionMetrics(
            rps=results["rps"][version], requests=results["requests"].get(version),
            error_rate=results["error_rate"].get(version),
            p50_ms=results["p50_ms"].get(version), p99_ms=results["p99_ms"].get(version))
    return MetricsReport(source="prometheus", window=w, versions=versions, queries=text, at=when)


# -- direct ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PodSample:
    """One reading of one pod's ``/metrics``: counters summed over method and route.

    ``started`` (unix time the pod's process started) tells pod incarnations apart: a
    restarted pod counts from zero again.
    """

    pod: str
    version: str
    started: float
    at: float
    requests: dict[str, float]  # status code -> count
    buckets: tuple[tuple[float, float], ...]  # (upper bound in s, cumulative count), +Inf last

    @property
    def key(self) -> str:
        return f"{self.pod}@{self.started:.0f}"

    def to_dict(self) -> dict[str, Any]:
        return {"pod": self.pod, "version": self.version, "started": self.started, "at": self.at,
                "requests": self.requests, "buckets": [list(b) for b in self.buckets]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PodSample:
        return cls(pod=str(data["pod"]), version=str(data["version"]),
                   started=float(data["started"]), at=float(data["at"]),
                   requests={str(k): float(v) for k, v in data["requests"].items()},
                   buckets=tuple((float(le), float(c)) for le, c in data["buckets"]))

    def zero(self) -> PodSample:
        """This pod at its start: every counter 0."""
        return PodSample(self.pod, self.version, self.started, self.started, {},
                         tuple((le, 0.0) for le, _ in self.buckets))


def parse_pod_metrics(text: str, *, pod: str, started: float, at: float,
                      version: str = "") -> PodSample:
    """Read the Task API's Prometheus text format into a :class:`PodSample`."""
    from prometheus_client.parser import text_string_to_metric_families

    requests: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == _REQUESTS:
                status = sample.labels.get("status", "")
                requests[status] = requests.get(status, 0.0) + sample.value
                version = version or sample.labels.get("version", "")
            elif sample.name == _BUCKETS:
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
            elif sample.name == _INFO:
                version = sample.labels.get("version", version)
    return PodSample(pod=pod, version=version, started=started, at=at, requests=requests,
                     buckets=tuple(sorted(buckets.items())))


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets, as PromQL computes it.

    Linear interpolation inside the bucket that holds the rank; the +Inf bucket answers the
    highest finite bound; NaN without observations.

    >>> histogram_quantile(0.5, [(0.1, 50), (0.2, 100), (math.inf, 100)])
    0.1
    """
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return math.nan
    counts: list[float] = []
    for _, count in ordered:  # counts must not fall (a late scrape can make them), as in PromQL
        counts.append(max(count, counts[-1]) if counts else count)
    observations = counts[-1]
    if observations <= 0:
        return math.nan
    rank = q * observations
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(ordered) - 1:
        return ordered[-2][0]
    if b == 0 and ordered[0][0] <= 0:
        return ordered[0][0]
    start, end, count = 0.0, ordered[b][0], counts[b]
    if b > 0:
        start = ordered[b - 1][0]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count) if count > 0 else end


def direct_report(after: Iterable[PodSample], before: Iterable[PodSample] = (), *,
                  window: str = "", notes: Sequence[str] = ()) -> MetricsReport:
    """Per-version figures from two readings of the pods: ``after`` minus ``before``.

    A pod with no reading in ``before`` (or whose counters fell: it restarted) counts from
    its start, where every counter was 0.
    """
    bases = {s.key: s for s in before}
    per_version: dict[str, list[tuple[PodSample, PodSample]]] = {}
    for now in after:
        base = bases.get(now.key)
        if base is None or _fell(base, now):
            base = now.zero()
        per_version.setdefault(now.version, []).append((base, now))
    versions: dict[str, VersionMetrics] = {}
    latest = 0.0
    for version, pairs in sorted(per_version.items()):
        requests = errors = rps = 0.0
        buckets: dict[float, float] = {}
        for base, now in pairs:
            latest = max(latest, now.at)
            delta = sum(now.requests.values()) - sum(base.requests.values())
            requests += delta
            errors += sum(c - base.requests.get(s, 0.0) for s, c in now.requests.items()
                          if s.startswith("5"))
            span = now.at - base.at
            rps += delta / span if span > 0 else 0.0
            old = dict(base.buckets)
            for le, count in now.buckets:
                buckets[le] = buckets.get(le, 0.0) + count - old.get(le, 0.0)
        pairs_b = sorted(buckets.items())
        versions[version] = VersionMetrics(
            rps=rps, requests=requests, error_rate=errors / requests if requests > 0 else None,
            p50_ms=_ms(histogram_quantile(0.5, pairs_b)),
            p99_ms=_ms(histogram_quantile(0.99, pairs_b)))
    return MetricsReport(source="direct", window=window, versions=versions, notes=list(notes),
                         at=latest or time.time())


def _ms(seconds: float) -> float | None:
    return _number(seconds * 1000)


def _fell(base: PodSample, now: PodSample) -> bool:
    return any(now.requests.get(s, 0.0) < c for s, c in base.requests.items())


def _start_time(pod: Mapping[str, Any]) -> float:
    text = pod.get("status", {}).get("startTime")
    if not text:
        return 0.0
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def sample_lab_pods(lab: LabAPI, *, namespace: str = "default", timeout: float = 2.0,
                    names: Iterable[str] | None = None) -> tuple[list[PodSample], list[str]]:
    """Read ``/metrics`` of the lab's running pods (or those in ``names``); with notes on failures."""
    wanted = set(names) if names is not None else None
    samples, notes = [], []
    for pod in lab.get("pod", namespace=namespace):
        name = pod["metadata"]["name"]
        status = pod.get("status", {})
        if (wanted is not None and name not in wanted) or status.get("phase") != "Running":
            continue
        port = status.get("hostPort")
        if not port:
            notes.append(f"pod {name} has no host port to read /metrics from")
            continue
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
                text = r.read().decode()
        except OSError as exc:
            notes.append(f"pod {name}: /metrics did not answer ({exc})")
            continue
        # The Task API's own version label (taskapi_info) wins over the pod's label.
        samples.append(parse_pod_metrics(
            text, pod=name, started=_start_time(pod), at=time.time(),
            version=str(pod["metadata"].get("labels", {}).get("version", ""))))
    return samples, notes


def _direct_collect(lab: LabAPI, window: str, seconds: float) -> MetricsReport:
    state = lab.home / "monitoring" / "direct-samples.json"
    history = _load_history(state)
    now_samples, notes = sample_lab_pods(lab)
    if not now_samples and not notes:
        raise MonitoringError(f"no running pod to read in the lab at {lab.home}; "
                              "is the lab up ('trafficlab status')?")
    bases: list[PodSample] = []
    for sample in now_samples:
        target = sample.at - seconds
        # The reading nearest to the window's start: an earlier direct collection, or the
        # pod's start (all counters 0), whichever is closer in time.
        candidates = [h for h in history if h.key == sample.key and h.at < sample.at]
        candidates.append(sample.zero())
        base = min(candidates, key=lambda h: abs(h.at - target))
        bases.append(base)
        span = sample.at - base.at
        since = "its start" if base.at == sample.started else "an earlier reading"
        if abs(span - seconds) > max(1.0, 0.1 * seconds):
            notes.append(f"pod {sample.pod} ({sample.version}): figures cover {span:.0f}s "
                         f"since {since}, not {window} (no reading from {window} ago)")
    _save_history(state, [*history, *now_samples])
    return direct_report(now_samples, bases, window=window, notes=notes)


def _load_history(path: Path) -> list[PodSample]:
    try:
        return [PodSample.from_dict(d) for d in json.loads(path.read_text())]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _save_history(path: Path, samples: list[PodSample]) -> None:
    cutoff = time.time() - _KEEP_S
    kept = [s.to_dict() for s in samples if s.at >= cutoff][-2000:]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(kept))
    os.replace(tmp, path)


# -- the entry points ------------------------------------------------------------------------
def _prometheus_url(lab: LabAPI) -> str | None:
    url = lab.status().get("prometheus")
    return str(url) if url else None


def wait_scraped(lab: LabAPI, *, timeout: float = 15.0, namespace: str = "default") -> bool:
    """Block until the lab's Prometheus scrapes every running pod (and Envoy); False when no
    Prometheus runs.

    The consistency gate of monitoring: figures of a pod that Prometheus does not scrape yet
    are missing, not zero. Raises :class:`MonitoringError` after ``timeout`` seconds.
    """
    status = lab.status()
    url = status.get("prometheus")
    if not url:
        return False
    client = PrometheusClient(str(url))
    envoy_stats = (status.get("envoy") or {}).get("stats")  # the local backend says where
    deadline = time.monotonic() + timeout
    while True:
        # Pods come and go during a rollout, so the set to wait for is read again each time.
        # Address and pod name together: a new pod on a replaced pod's port is scraped under
        # the old pod's labels until Prometheus applies the discovery change.
        targets: dict[str, str | None] = {
            f"127.0.0.1:{p['status']['hostPort']}": p["metadata"]["name"]
            for p in lab.get("pod", namespace=namespace)
            if p.get("status", {}).get("ready") and p["status"].get("hostPort")}
        if envoy_stats:
            targets[str(envoy_stats)] = None
        try:
            client.wait_for_targets(targets, timeout=min(1.0, max(0.0, deadline - time.monotonic())))
            return True
        except MonitoringError:
            if time.monotonic() >= deadline:
                raise


def collect(lab: LabAPI, window: str | float = "1m", *, source: str = "auto") -> MetricsReport:
    """Per-version figures of ``lab`` over the last ``window``.

    ``source``: ``"prometheus"``, ``"direct"`` (read the pods), or ``"auto"``: Prometheus
    when the lab runs one, else direct.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    w, seconds = _window(window)
    url = _prometheus_url(lab) if source != "direct" else None
    if source == "prometheus" and url is None:
        raise MonitoringError("this lab runs no Prometheus. Install it ('sudo apt-get install "
                              "prometheus'), restart the lab ('trafficlab down && trafficlab up'), "
                              "or read the pods directly with --source direct.")
    if url is not None:
        report = prometheus_report(url, w)
        report.notes.extend(_unscraped(lab, url))
        return report
    return _direct_collect(lab, w, seconds)


def _unscraped(lab: LabAPI, url: str) -> list[str]:
    """Notes on running pods Prometheus does not scrape yet: their figures are missing, not 0."""
    try:
        healthy = {str(t["labels"].get("instance")) for t in PrometheusClient(url).targets()
                   if t.get("health") == "up"}
    except MonitoringError:
        return []
    return [f"Prometheus has not scraped pod {p['metadata']['name']} yet (it discovers new pods "
            "within about 5 s); its figures are missing, not zero"
            for p in lab.get("pod") if p.get("status", {}).get("phase") == "Running"
            and f"127.0.0.1:{p['status'].get('hostPort')}" not in healthy]


def plot(lab: LabAPI, range: str | float = "5m", *, step: str | float | None = None,
         versions: Iterable[str] | None = None) -> Any:
    """Requests/s, error rate and p99 per version over the last ``range``: a matplotlib Figure.

    Needs the lab's Prometheus (the direct source keeps no history) and matplotlib.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("metrics plot() needs matplotlib, which is not installed; "
                          "install it with 'pip install matplotlib' (or use collect().table())."
                          ) from exc
    url = _prometheus_url(lab)
    if url is None:
        raise MonitoringError("a time-series plot needs the lab's Prometheus, which is not "
                              "running; install it ('sudo apt-get install prometheus') and "
                              "restart the lab. 'trafficlab metrics' works without it.")
    span = parse_duration(range, what="range")
    step_s = parse_duration(step, what="step") if step is not None else max(1.0, span / 150)
    # rate() needs at least two samples per point: a few scrape intervals, or two steps.
    rate_window = format_duration(max(4.0 * SCRAPE_INTERVAL_S, 2 * step_s))
    text = queries(rate_window)
    wanted = set(versions) if versions is not None else None
    end = time.time()
    client = PrometheusClient(url)
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(8, 7))
    panels = (("rps", "requests/s", 1.0), ("error_rate", "error rate (%)", 100.0),
              ("p99_ms", "p99 latency (ms)", 1.0))
    for ax, (name, label, scale) in zip(axes, panels, strict=True):
        series = client.query_range(text[name], end - span, end, step_s)
        drawn = 0
        for item in sorted(series, key=lambda s: s.labels.get("version", "")):
            version = item.labels.get("version", "")
            if wanted is not None and version not in wanted:
                continue
            xs = [datetime.fromtimestamp(t) for t, _ in item.points]
            ys = [v * scale if math.isfinite(v) else math.nan for _, v in item.points]
            ax.plot(xs, ys, label=version)
            drawn += 1
        ax.set_ylabel(label)
        if drawn:
            ax.legend(loc="upper left", fontsize="small")
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
    axes[0].set_title(f"per version, last {format_duration(span)} (rate over {rate_window})")
    fig.autofmt_xdate()
    return fig
