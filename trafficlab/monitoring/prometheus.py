"""The lab's Prometheus: a real ``prometheus`` process, its generated configuration, its HTTP API.

The local lab runs Debian's (or any) ``prometheus`` binary as a plain child process of the
lab daemon. The configuration is generated: one scrape job per kind of target (the Task API
pods' ``/metrics``, Envoy's ``/stats/prometheus``), each reading its targets from a file in
``<workdir>/targets/`` through file-based service discovery. Prometheus watches those files,
so targets follow pods as they come and go without a restart or a reload; the controller
rewrites them after every reconcile (:meth:`PrometheusServer.set_targets`).

>>> server = PrometheusServer(Path("/tmp/lab/prometheus"), find_prometheus())  # doctest: +SKIP
>>> server.set_targets([ScrapeTarget("task-api", "127.0.0.1:8001", {"pod": "v1-abc"})])  # doctest: +SKIP
>>> server.start()                                                          # doctest: +SKIP
>>> PrometheusClient(server.url).query("up")                                # doctest: +SKIP
[Sample(labels={'__name__': 'up', 'instance': '127.0.0.1:8001', ...}, value=1.0)]
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trafficlab._errors import MonitoringError
from trafficlab._process import free_port, start_retrying_port_clash

__all__ = [
    "DEFAULT_JOBS",
    "INSTALL_HINT",
    "SCRAPE_INTERVAL_S",
    "MonitoringError",
    "PrometheusClient",
    "PrometheusServer",
    "Sample",
    "ScrapeTarget",
    "Series",
    "find_prometheus",
    "render_config",
    "target_groups",
]

INSTALL_HINT = ("Prometheus is not installed, so the lab runs without it ('trafficlab metrics' "
                "reads the pods directly). Install it with 'sudo apt-get install prometheus' "
                "(Debian/Ubuntu) or put a 'prometheus' binary on PATH, then restart the lab: "
                "'trafficlab down && trafficlab up'.")
"""What to tell a user whose machine has no Prometheus."""

SCRAPE_INTERVAL_S = 1
"""Seconds between scrapes. A lab's analysis intervals are seconds, not minutes: at 1 s a
10 s window already holds ten samples, enough for ``rate()`` (which needs two)."""

DEFAULT_JOBS: Mapping[str, str] = {"task-api": "/metrics", "envoy": "/stats/prometheus"}
"""Scrape job name -> metrics path. Envoy serves Prometheus text at ``/stats/prometheus`` on
its admin port; the Task API at ``/metrics``."""

# Data is a lab's scratch: two hours is more than any lesson looks back, and keeps the disk small.
_RETENTION = "2h"
# Prometheus' GOGC (see PrometheusServer._launch).
_GOGC = "20"
# Prometheus label names (https://prometheus.io/docs/concepts/data_model/).
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ScrapeTarget:
    """One endpoint Prometheus scrapes: its job, ``host:port`` and the labels it adds to every series.

    >>> ScrapeTarget("task-api", "127.0.0.1:8001", {"pod": "task-api-v1-x"}).job
    'task-api'
    """

    job: str
    address: str
    labels: dict[str, str] = field(default_factory=dict)


def find_prometheus() -> Path | None:
    """The ``prometheus`` binary: on PATH, else ``/usr/bin/prometheus``; None when absent."""
    found = shutil.which("prometheus")
    if found:
        return Path(found)
    fallback = Path("/usr/bin/prometheus")
    return fallback if fallback.is_file() and os.access(fallback, os.X_OK) else None


def render_config(workdir: Path, jobs: Mapping[str, str] = DEFAULT_JOBS, *,
                  scrape_interval_s: int = SCRAPE_INTERVAL_S) -> str:
    """The ``prometheus.yml`` a lab runs with: one file-discovered scrape job per entry of ``jobs``.

    >>> "/lab/prometheus/targets/envoy.json" in render_config(Path("/lab/prometheus"))
    True
    """
    interval = f"{scrape_interval_s}s"
    config = {
        "global": {
            "scrape_interval": interval,
            # A scrape must finish before the next one starts (Prometheus rejects a longer timeout).
            "scrape_timeout": interval,
            "evaluation_interval": interval,
            "external_labels": {"lab": "trafficlab"},
        },
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": path,
                # Prometheus watches these files (inotify) and re-reads them on this period as a
                # fallback, so a new or vanished pod is picked up without a restart or reload.
                "file_sd_configs": [{"files": [str(workdir / "targets" / f"{job}.json")],
                                     "refresh_interval": interval}],
            }
            for job, path in jobs.items()
        ],
    }
    header = ("# Generated by TrafficLab: every job discovers its targets from a JSON file in\n"
              f"# {workdir / 'targets'}, rewritten by the lab as pods come and go.\n")
    return header + yaml.safe_dump(config, sort_keys=False)


def target_groups(targets: Iterable[ScrapeTarget]) -> list[dict[str, Any]]:
    """The file_sd document for ``targets``: one group per target, since each has its own labels.

    Label names that Prometheus would reject are rewritten to ``_`` (as its Kubernetes
    discovery does for pod labels).

    >>> target_groups([ScrapeTarget("envoy", "127.0.0.1:9901", {"a-b": "1"})])
    [{'targets': ['127.0.0.1:9901'], 'labels': {'a_b': '1'}}]
    """
    groups = []
    for target in targets:
        labels = {_label_name(k): str(v) for k, v in target.labels.items()}
        groups.append({"targets": [target.address], "labels": labels})
    return groups


def _label_name(name: str) -> str:
    if _LABEL_NAME.match(name):
        return name
    cleaned = re.sub(r"[^a-zA-Z0-9_]", "_", name)
    return cleaned if _LABEL_NAME.match(cleaned) else f"_{cleaned}"


def _write_atomically(path: Path, text: str) -> None:
    # Prometheus must never read a half-written file: write beside it, then rename over it.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook: Linux ends Prometheus if the thread that started it exits (a killed lab)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


class PrometheusServer:
    """One Prometheus process serving a lab from ``workdir`` (config, targets, data, log).

    ``pid`` and ``url`` are None until :meth:`start` returns and again after :meth:`stop`.
    """

    def __init__(self, workdir: Path, binary: Path, *,
                 jobs: Mapping[str, str] = DEFAULT_JOBS) -> None:
        self.workdir = workdir
        self.binary = binary
        self.jobs = dict(jobs)
        self.pid: int | None = None
        self.url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        (workdir / "targets").mkdir(parents=True, exist_ok=True)

    @property
    def config_path(self) -> Path:
        return self.workdir / "prometheus.yml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def set_targets(self, targets: Iterable[ScrapeTarget]) -> None:
        """Replace every job's targets; Prometheus picks them up within a scrape interval.

        May be called before :meth:`start`. Every job of the configuration gets a file (an
        empty list when it has no target), so a target that disappears stops being scraped.
        Raises ``ValueError`` for a job the configuration does not have.
        """
        by_job: dict[str, list[ScrapeTarget]] = {job: [] for job in self.jobs}
        for target in targets:
            if target.job not in by_job:
                raise ValueError(f"no scrape job {target.job!r} in this Prometheus; "
                                 f"jobs: {', '.join(sorted(self.jobs))}")
            by_job[target.job].append(target)
        folder = self.workdir / "targets"
        folder.mkdir(parents=True, exist_ok=True)
        for job, items in by_job.items():
            path = folder / f"{job}.json"
            text = json.dumps(target_groups(items), indent=1, sort_keys=True)
            with contextlib.suppress(OSError):
                if path.read_text() == text:
                    continue  # unchanged: spare Prometheus a reload
            _write_atomically(path, text)

    def start(self, timeout: float = 15.0) -> None:
        """Start Prometheus on a free 127.0.0.1 port and wait until ``/-/ready`` answers 200.

        Data from an earlier run is removed first: a lab's history starts with the lab.
        Raises :class:`MonitoringError` with the end of Prometheus' log when it exits or is
        not ready within ``timeout`` seconds.
        """
        if self._proc is not None and self._proc.poll() is None:
            raise MonitoringError(f"Prometheus is already running (pid {self._proc.pid}).")
        self.workdir.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.config_path, render_config(self.workdir, self.jobs))
        for job in self.jobs:  # every job's file must exist, even before set_targets
            path = self.workdir / "targets" / f"{job}.json"
            if not path.exists():
                _write_atomically(path, "[]")
        shutil.rmtree(self.workdir / "data", ignore_errors=True)
        deadline = time.monotonic() + timeout
        # The port is free when picked and bound by Prometheus a moment later.
        def attempt() -> None:
            port = free_port()
            self._launch(port)
            self._wait_ready(port, deadline)

        start_retrying_port_clash(attempt, self._kill, self._log_tail, MonitoringError)

    def _launch(self, port: int) -> None:
        args = [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--storage.tsdb.retention.time={_RETENTION}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        env = dict(os.environ)
        # One OS thread for Go code is plenty for a few targets, and leaves the 2-core lab
        # machine to Envoy, the pods and the load generator.
        env.setdefault("GOMAXPROCS", "1")
        # Go's collector lets the heap grow to twice the live data by default (GOGC=100); with
        # a few thousand series that slack is most of Prometheus' anonymous memory. At 20 the
        # heap stays near what it holds: after a minute of 1 s scrapes of a lab under load,
        # RSS 52.1 -> 48.0 MiB (two runs each) for 0.1% more of a CPU. GOMEMLIMIT is left
        # unset: below ~24 MiB the collector runs all the time (8x the CPU).
        env.setdefault("GOGC", _GOGC)
        with self.log_path.open("ab") as log:
            try:
                self._proc = subprocess.Popen(
                    args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=env, cwd=self.workdir, close_fds=True, preexec_fn=_die_with_parent(),
                )
            except OSError as exc:
                raise MonitoringError(f"Prometheus could not be started from {self.binary}: "
                                      f"{exc}. {INSTALL_HINT}") from exc
        self.pid = self._proc.pid

    def _wait_ready(self, port: int, deadline: float) -> None:
        assert self._proc is not None
        url = f"http://127.0.0.1:{port}"
        while True:
            if self._proc.poll() is not None:
                raise MonitoringError(f"Prometheus exited with code {self._proc.returncode} "
                                      f"during startup. Its log ends with:\n{self._log_tail()}")
            if PrometheusClient(url, timeout=0.5).ready():
                self.url = url
                return
            if time.monotonic() > deadline:
                raise MonitoringError(f"Prometheus (pid {self._proc.pid}) was not ready in time. "
                                      f"Its log ends with:\n{self._log_tail()}")
            time.sleep(0.02)

    def running(self) -> bool:
        """Whether the Prometheus we started is still alive."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop Prometheus by its PID: SIGTERM, wait ``timeout`` s, then SIGKILL. Idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None
        self.pid = None
        self.url = None

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        self.pid = None
        self.url = None

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# -- the HTTP API ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One element of an instant vector: the series' labels and its value (NaN allowed)."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One element of a range query's matrix: labels and ``(unix time, value)`` points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


class PrometheusClient:
    """A small client of Prometheus' HTTP API (``/api/v1/query``, ``query_range``, ``targets``).

    >>> PrometheusClient("http://127.0.0.1:9090").query("sum(up)")  # doctest: +SKIP
    [Sample(labels={}, value=3.0)]
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def ready(self) -> bool:
        """Whether ``/-/ready`` answers 200 (the TSDB is open and Prometheus serves queries)."""
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=self.timeout) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                payload = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            # A bad query answers 400 with a JSON body that says what is wrong with it.
            try:
                payload = json.loads(exc.read() or b"{}")
            except ValueError:
                payload = {"error": f"HTTP {exc.code}"}
        except (OSError, ValueError) as exc:
            raise MonitoringError(f"Prometheus at {self.url} does not answer ({exc}); "
                                  "is the lab up ('trafficlab status')?") from exc
        if payload.get("status") != "success":
            raise MonitoringError(f"Prometheus rejected the request {path} "
                                  f"{dict(params)}: {payload.get('error', payload)}")
        return payload["data"]

    def query(self, expr: str, *, at: float | None = None) -> list[Sample]:
        """Evaluate ``expr`` at unix time ``at`` (now by default); a scalar comes back as one sample."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        if data["resultType"] in ("scalar", "string"):
            return [Sample({}, _value(data["result"][1]))]
        return [Sample(dict(item["metric"]), _value(item["value"][1])) for item in data["result"]]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """Evaluate ``expr`` every ``step`` seconds from ``start`` to ``end`` (unix times)."""
        data = self._get("/api/v1/query_range", {"query": expr, "start": f"{start:.3f}",
                                                 "end": f"{end:.3f}", "step": f"{step:g}"})
        return [Series(dict(item["metric"]), [(float(t), _value(v)) for t, v in item["values"]])
                for item in data["result"]]

    def targets(self) -> list[dict[str, Any]]:
        """The active targets with their labels, health (``up``/``down``) and last error."""
        return list(self._get("/api/v1/targets", {"state": "active"})["activeTargets"])

    def wait_for_targets(self, addresses: Iterable[str] | Mapping[str, str | None], *,
                         timeout: float = 15.0) -> None:
        """Block until every ``host:port`` in ``addresses`` is an active target scraped healthily.

        A mapping gives, per address, the ``pod`` label its target must carry (None: any). A new
        pod on a port a replaced pod used is scraped under the old pod's labels until Prometheus
        applies the discovery change, and those samples belong to the old pod's series.

        Prometheus applies discovered target changes every 5 s, so a pod is scraped some 5-6 s
        after it appears; traffic it answers before its first scrape is invisible to
        ``rate()``. Raises :class:`MonitoringError` naming the targets still missing.
        """
        pods = dict(addresses) if isinstance(addresses, Mapping) else {}
        wanted = set(addresses)
        deadline = time.monotonic() + timeout
        while True:
            healthy = {labels.get("instance") or t.get("scrapeUrl", "")
                       for t in self.targets() if t.get("health") == "up"
                       for labels in [t.get("labels", {})]
                       if pods.get(labels.get("instance")) in (None, labels.get("pod"))}
            missing = wanted - healthy
            if not missing:
                return
            if time.monotonic() > deadline:
                raise MonitoringError(f"Prometheus at {self.url} has not scraped "
                                      f"{', '.join(sorted(missing))} after {timeout:.0f}s; see "
                                      "its targets page, /targets")
            time.sleep(0.1)


def _value(text: str) -> float:
    # Prometheus writes NaN and infinities as strings ("NaN", "+Inf"), which float() reads.
    return float(text)
