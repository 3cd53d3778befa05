"""The local controller: store -> workloads -> translate -> Envoy -> status, one way.

A write returns once it is stored, as with kube-apiserver; the controller follows on its one
reconcile thread, and writes that arrive while it works are served together by the next
reconcile (one Envoy update for a thousand-object apply, not a thousand). Until then a changed
route or Gateway says ``Programmed=False`` (``Pending``) at its new generation, and
:meth:`Controller.wait_reconciled` is the barrier for clients that want "served" semantics.
A supervisor keeps pods, Envoy and Prometheus alive and pushes endpoint changes.
"""

from __future__ import annotations

import copy
import gc
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from trafficlab._errors import ProxyError
from trafficlab._process import process_start
from trafficlab.controlplane.events import EventRecorder, route_events
from trafficlab.controlplane.ports import PortAllocator
from trafficlab.controlplane.snapshot import ObjectKey, Snapshot
from trafficlab.controlplane.status import NOT_ACCEPTED, mark_pending, merge_status
from trafficlab.controlplane.store import Change, ObjectStore, now_rfc3339
from trafficlab.controlplane.supervision import Restarter
from trafficlab.gateway.proxy import EnvoyProxy
from trafficlab.gateway.quarantine import envoy_validator, find_refused_routes, refused_status, without
from trafficlab.gateway.translate import TranslateCache, TranslateResult, route_kind_names, translate
from trafficlab.monitoring.prometheus import PrometheusServer, ScrapeTarget, find_prometheus
from trafficlab.workloads.pods import PodManager, admit_deployment

__all__ = ["Controller", "ReconcileReport", "Unserved"]

log = logging.getLogger("trafficlab.controller")
Obj = dict[str, Any]
T = TypeVar("T")
# After a reconcile that translated this many routes, the objects it made are frozen out of
# the cyclic garbage collector (see _reconcile).
_FREEZE_AFTER_MISSES = 500
# A burst of writes is served once writes pause this long, or after the longer wait at most.
_BURST_PAUSE_S = 0.02
_BURST_MAX_WAIT_S = 1.0
# A reconcile that failed is tried again this long after.
_RETRY_FAILED_S = 5.0


@dataclass(frozen=True)
class Unserved:
    """Why the writes a client waits for are not served: still in progress, or failed."""

    reason: str
    failed: bool  # the controller failed (and retries), rather than still being at work


class ReconcileReport:
    """What one reconcile did: the data plane version it confirmed and what it warned about."""

    def __init__(self, revision: int, seconds: float, warnings: tuple[str, ...], error: str | None) -> None:
        self.revision = revision
        self.seconds = seconds
        self.warnings = warnings
        self.error = error


class Controller:
    """Owns the store, the pods and Envoy of one local lab."""

    def __init__(self, home: Path, *, envoy_binary: Path | None = None,
                 preferred_ports: dict[int, int] | None = None) -> None:
        self.home = home
        self.store = ObjectStore(home / "store.json", admit=admit_deployment, pending=mark_pending)
        self.pods = PodManager(home)
        # No parent-death signal: Envoy keeps serving if the daemon dies; the next one adopts it.
        self.proxy = EnvoyProxy(home / "envoy", envoy_binary, die_with_parent=False)
        self.ports = PortAllocator(preferred=preferred_ports)
        binary = find_prometheus()
        self.prometheus = PrometheusServer(home / "prometheus", binary) if binary else None
        self.lock = threading.RLock()
        # Every reconcile runs on this one long-lived thread: Linux ends a child whose
        # parent *thread* exits (PR_SET_PDEATHSIG), so pods must not be started from request threads.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reconcile")
        self.last: ReconcileReport | None = None
        # Coalescing: at most one reconcile waits in the queue; it reads the store when it
        # starts, so it serves every write made before then.
        self._queue_lock = threading.Lock()
        self._queued = False
        self._written_revision = 0  # the store's revision after the latest write
        self._writes_waiting = 0  # writes since the last reconcile started
        self._last_write = 0.0  # time.monotonic() of the latest write
        self._reconciled = threading.Condition()
        self.reconciled_revision = -1  # the store revision the latest reconcile served
        # Why the latest queued reconcile failed (a bug, not bad input: that becomes status),
        # and the revision it tried; cleared by the next reconcile that succeeds.
        self.reconcile_failure: str | None = None
        self._failed_revision = -1
        self._retry_at = 0.0
        self.reconciles = 0
        # (namespace, name) of the ready pods the latest reconcile gave Envoy as endpoints: a
        # pod the probe just found ready is not served until the next reconcile pushes it.
        self.served_pods: frozenset[tuple[str, str]] = frozenset()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.envoy_restarts = Restarter("Envoy")
        self._envoy_down_reported = False
        self.prometheus_restarts = Restarter("Prometheus")
        self.events = EventRecorder()
        # Incremental reconciles: per-route translations, and per object the inputs and
        # result of its last status merge (so unchanged statuses are neither merged nor written).
        self._translations = TranslateCache()
        self._merged: dict[ObjectKey, tuple[object, object, bool, str | None, bool, Obj]] = {}

    def record_event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record a core/v1 Event about ``obj`` (``kubectl describe`` shows them)."""
        self.events.record(obj, type_, reason, message)

    # -- life cycle --------------------------------------------------------------------
    def _serial(self, fn: Callable[[], T]) -> T:
        if threading.current_thread().name.startswith("reconcile"):
            return fn()
        return self._worker.submit(fn).result()

    def start(self) -> None:
        if not self._serial(self._adopt_data_plane):
            self._serial(self.proxy.start)
        self.reconcile()
        if self.prometheus is not None:
            try:
                self._serial(self._start_prometheus)
            except Exception:  # the lab serves without monitoring; status says so
                log.exception("Prometheus did not start")
                self.prometheus = None
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        def stop_all() -> None:
            if self.prometheus is not None:
                self.prometheus.stop()
            self.pods.stop_all()
            self.proxy.stop()
            self.ports.release_all()
            self._write_pids()

        self._serial(stop_all)
        self._worker.shutdown(wait=True)

    # -- writes ------------------------------------------------------------------------
    # Writes run on the caller's thread (the store has its own lock) and return once stored.
    def apply(self, objects: Iterable[Obj], *, dry_run: bool = False,
              namespace: str = "default") -> list[Change]:
        changes = self.store.apply(objects, dry_run=dry_run, default_namespace=namespace)
        self._after_write(changes, dry_run)
        return changes

    def patch(self, key: ObjectKey, patch: Any, patch_type: str, *,
              dry_run: bool = False) -> Change:
        change = self.store.patch(key, patch, patch_type, dry_run=dry_run)
        self._after_write([change], dry_run)
        return change

    def delete(self, keys: Iterable[ObjectKey], *, dry_run: bool = False,
               ignore_not_found: bool = False) -> list[Change]:
        changes = self.store.delete(keys, dry_run=dry_run, ignore_not_found=ignore_not_found)
        self._after_write(changes, dry_run)
        return changes

    def _after_write(self, changes: list[Change], dry_run: bool) -> None:
        if dry_run or all(c.action == "unchanged" for c in changes) or self._stop.is_set():
            return
        with self._queue_lock:
            # Read after the write: the reconcile queued below starts later, so it sees at
            # least this revision.
            self._written_revision = max(self._written_revision, self.store.revision)
            self._writes_waiting += 1
            self._last_write = time.monotonic()
            if self._queued:
                return
            self._queued = True
        self._worker.submit(self._queued_reconcile)

    def _queued_reconcile(self) -> None:
        self._let_burst_finish()
        with self._queue_lock:
            self._queued = False
            self._writes_waiting = 0
        self._reconcile_or_record()

    def _reconcile_or_record(self) -> None:
        revision = self.store.revision
        try:
            self._reconcile()
        except Exception as exc:  # the reconcile thread must outlive one bad reconcile
            log.exception("reconcile failed")
            with self._reconciled:
                # Said at once to whoever waits for this write, not after their timeout.
                self.reconcile_failure = f"{type(exc).__name__}: {exc}"
                self._failed_revision = max(self._failed_revision, revision)
                self._retry_at = time.monotonic() + _RETRY_FAILED_S
                self._reconciled.notify_all()

    def _let_burst_finish(self) -> None:
        """While writes stream in (an apply of many objects), wait for a pause before serving.

        One write alone is served at once. Several that queued up while the last reconcile ran
        are a burst: a reconcile at 5,000 routes costs ~100 ms of Python and as much of
        Envoy's, so serving each batch as it comes would spend the apply's time on
        reconciles it replaces a moment later. The wait ends at the first pause between
        writes, or after _BURST_MAX_WAIT_S so that a long apply is still served as it goes.
        """
        with self._queue_lock:
            burst = self._writes_waiting > 1
        if not burst:
            return
        deadline = time.monotonic() + _BURST_MAX_WAIT_S
        while not self._stop.is_set():
            now = time.monotonic()
            with self._queue_lock:
                quiet = now - self._last_write
            if quiet >= _BURST_PAUSE_S or now >= deadline:
                return
            time.sleep(min(_BURST_PAUSE_S - quiet, deadline - now))

    def wait_reconciled(self, timeout: float) -> bool:
        """Wait until every write made so far is served (or refused by Envoy and reported)."""
        return self.serve_barrier(timeout) is None

    def serve_barrier(self, timeout: float) -> Unserved | None:
        """None once every write made so far is served; else why not, after at most ``timeout``."""
        with self._queue_lock:
            wanted = self._written_revision

        def served() -> bool:
            return self.reconciled_revision >= wanted

        def failed() -> bool:
            return self.reconcile_failure is not None and self._failed_revision >= wanted

        with self._reconciled:
            self._reconciled.wait_for(lambda: served() or failed(), timeout)
            if served():
                return None
            if failed():
                return Unserved(str(self.reconcile_problem), failed=True)
            return Unserved(f"the lab has not served every write after {timeout:g}s; "
                            "`trafficlab status` says why", failed=False)

    @property
    def reconcile_problem(self) -> str | None:
        """What to tell people while the last reconcile has failed; None when it has not."""
        failure = self.reconcile_failure
        if failure is None:
            return None
        return (f"the controller's last reconcile failed ({failure}); it tries again every few "
                "seconds, and the lab home's logs/daemon.log has the details")

    # -- the loop ----------------------------------------------------------------------
    def reconcile(self) -> ReconcileReport:
        """Bring pods and Envoy in line with the store now; write the resulting status."""
        return self._serial(self._reconcile)

    def _reconcile(self) -> ReconcileReport:
        with self.lock:
            started = time.perf_counter()
            # The store's own objects, not copies: nothing below mutates them (copying 5,000
            # routes cost more than translating them).
            base = self.store.shared_snapshot()
            # The runtime gets copies of the few objects it reads: they are the store's own.
            self.pods.sync(copy.deepcopy(base.of_kind("Deployment")))
            # Readiness changes only on this thread (probe, sync), so these are the ready pods
            # whose endpoints this pass hands to Envoy.
            serving = frozenset((p.namespace, p.name) for p in self.pods.pods() if p.ready)
            endpoints = self.pods.endpoints(copy.deepcopy(base.of_kind("Service")))
            self.events.observe(base.of_kind("Deployment"), self.pods.pods())
            bind = self.ports.assign(copy.deepcopy(base.of_kind("Gateway")))
            snapshot = Snapshot(revision=base.revision, objects=base.objects,
                                endpoints=endpoints, bind=bind)
            result = translate(snapshot, self._translations)
            error: str | None = None
            try:
                self.proxy.push(result.ir)
            except ProxyError as exc:
                error = exc.message
                log.error("Envoy rejected revision %s: %s", base.revision, exc.message)
                if self.proxy.running():
                    result, error = self._serve_without_refused_routes(snapshot, result, error)
            self._write_statuses(snapshot, result.statuses, programmed=error is None, error=error)
            self._update_scrape_targets()
            self._write_pids()
            report = ReconcileReport(base.revision, time.perf_counter() - started,
                                     result.warnings, error)
            self.last = report
            self.served_pods = serving
            self.reconciles += 1
            with self._reconciled:
                self.reconciled_revision = max(self.reconciled_revision, base.revision)
                self.reconcile_failure = None
                self._reconciled.notify_all()
            if self._translations.misses >= _FREEZE_AFTER_MISSES:
                # Thousands of long-lived objects were just made (translations, rendered hosts,
                # the store's JSON). Left to the cyclic collector, each of its full passes over
                # them (150 ms with 5,000 routes) would land on some later patch; frozen, they
                # are skipped. They hold no reference cycles, so reference counting frees them.
                gc.collect()
                gc.freeze()
            return report

    def _serve_without_refused_routes(self, snapshot: Snapshot, result: TranslateResult,
                                      error: str) -> tuple[TranslateResult, str | None]:
        """Leave out the routes Envoy refuses and push the rest; statuses say which and why."""
        culprits = find_refused_routes(snapshot, envoy_validator(self.proxy.binary))
        if not culprits:
            return result, error
        retry = translate(without(snapshot, list(culprits)))
        try:
            self.proxy.push(retry.ir)
        except ProxyError as exc:
            return result, exc.message
        statuses = dict(retry.statuses)
        warnings = list(retry.warnings)
        for key, reason in culprits.items():
            route = snapshot.get(key.kind, key.namespace, key.name) or {}
            statuses[key] = refused_status(result.statuses.get(key), route, reason)
            self.record_event(route, "Warning", "Refused", f"Envoy refuses this route ({reason}); "
                              "it is left out and every other route keeps serving")
            warnings.append(f"{key}: Envoy refuses the configuration it produces ({reason}); "
                            "it is left out and every other route keeps serving.")
            log.error("left out %s, which Envoy refuses: %s", key, reason)
        return TranslateResult(retry.ir, statuses, tuple(warnings)), None

    def _write_statuses(self, snapshot: Snapshot, statuses: dict[ObjectKey, Obj], *,
                        programmed: bool, error: str | None) -> None:
        now = now_rfc3339()
        envoy_running = self.proxy.running()
        merged: dict[ObjectKey, Obj] = {}
        seen: dict[ObjectKey, tuple[object, object, bool, str | None, bool, Obj]] = {}
        route_kinds = set(route_kind_names())
        for key, translated in statuses.items():
            obj = snapshot.get(key.kind, key.namespace, key.name)
            if obj is None:
                continue
            old = obj.get("status")
            inputs = (translated, old, programmed, error, envoy_running)
            last = self._merged.get(key)
            if last is not None and last[0] is translated and last[1] is old and \
                    last[2:5] == inputs[2:]:
                # Same translated status, same stored one (the store replaces an object on
                # every write, so identity means unchanged): merging again would give the
                # stored status back. Nothing to compute or write.
                seen[key] = last
                continue
            status = copy.deepcopy(translated)
            if key.kind in route_kinds:
                _mark_route_programmed(status, obj, programmed, error)
            elif key.kind == "Gateway" and not envoy_running:
                _mark_gateway_unserved(status)
            result = merge_status(old, status, now)
            seen[key] = (*inputs, result)
            if result != old:
                merged[key] = result
                if key.kind in route_kinds:
                    for event in route_events(old, result):
                        self.record_event(obj, *event)
        self.store.write_statuses(merged)
        self._merged = seen  # only once written: a failed write is tried again next time

    def _supervise(self) -> None:
        # Only Deployments matter here, re-read when the store changed: copying every object
        # four times a second cost half a CPU with thousands of routes.
        seen_revision, deployments = -1, []

        def one_pass() -> None:
            nonlocal seen_revision, deployments
            if self.store.revision != seen_revision:
                seen_revision = self.store.revision
                # Not store.items(): it sorts every object's key as a dataclass.
                deployments = copy.deepcopy(self.store.shared_snapshot().of_kind("Deployment"))
            envoy_alive = self.proxy.running()
            if not envoy_alive and not self._envoy_down_reported:
                # First say so (routes and Gateway not Programmed), so nobody waiting on
                # status mistakes the restarted, still empty Envoy for one serving the config.
                self._envoy_down_reported = True
                self._reconcile()
            revived = self.envoy_restarts.revive(envoy_alive, self._restart_envoy)
            if revived:
                self._envoy_down_reported = False
            if self.prometheus is not None and self.prometheus_restarts.revive(
                    self.prometheus.running(), self._restart_prometheus):
                self._update_scrape_targets()
            if self.pods.probe() or self.pods.sync(deployments) or revived:
                self._reconcile()
            elif self.reconcile_failure is not None and time.monotonic() >= self._retry_at:
                self._reconcile_or_record()  # a failed reconcile is tried again, with a pause

        while not self._stop.wait(0.25):
            try:
                self._serial(one_pass)
            except Exception:  # the supervisor must outlive one bad reconcile
                log.exception("supervisor pass failed")

    def _restart_envoy(self) -> None:
        self.proxy.stop()  # forget the dead process; the next reconcile pushes everything
        self.proxy.start()

    def _restart_prometheus(self) -> None:
        assert self.prometheus is not None
        self.prometheus.stop()
        self._start_prometheus()

    def _start_prometheus(self) -> None:
        assert self.prometheus is not None
        self._update_scrape_targets()
        self.prometheus.start()

    def _update_scrape_targets(self) -> None:
        """Prometheus follows pods through file-based discovery: no restart as pods come and go."""
        if self.prometheus is None:
            return
        targets = [ScrapeTarget(job="task-api", address=f"127.0.0.1:{p.port}", labels={
            "namespace": p.namespace, "pod": p.name, "deployment": p.deployment,
            **{f"label_{k.replace('-', '_').replace('.', '_').replace('/', '_')}": v
               for k, v in p.labels.items()}}) for p in self.pods.pods() if p.port]
        if self.proxy.stats_address:
            targets.append(ScrapeTarget(job="envoy", address=self.proxy.stats_address, labels={}))
        self.prometheus.set_targets(targets)

    def _adopt_data_plane(self) -> bool:
        """Take over the Envoy and pods a previous daemon of this home left serving.

        True when Envoy was adopted (the caller then does not start one). Pods are adopted on
        their own: with Envoy gone they still serve once a new Envoy is configured.
        """
        try:
            recorded = json.loads((self.home / "pids.json").read_text())
        except (OSError, ValueError):
            return False
        starts = recorded.get("starts") or {}
        pods = self.pods.adopt(list(recorded.get("podRecords") or []))
        envoy = recorded.get("envoy")
        start = starts.get(str(envoy)) if envoy else None
        adopted = bool(envoy and start is not None and self.proxy.adopt(int(envoy), int(start)))
        if adopted:
            listening = self.proxy.listener_ports()  # "ns/gateway/port" -> local port
            self.ports.adopt({(ns, gw, int(port)): local for name, local in listening.items()
                              for ns, gw, port in [name.split("/")]})
        if adopted or pods:
            log.warning("adopted the data plane left running: Envoy %s, %d pod(s)",
                        envoy if adopted else "restarted", pods)
        return adopted

    def _write_pids(self) -> None:
        """Record every process this lab started, so ``trafficlab down`` can always end them."""
        pids: dict[str, Any] = {"envoy": self.proxy.pid,
                                "prometheus": self.prometheus.pid if self.prometheus else None,
                                "pods": self.pods.pids()}
        # Start times prove identity later: `down` never signals a pid a stranger now holds.
        every = [pids["envoy"], pids["prometheus"], *pids["pods"].values()]
        pids["starts"] = {str(p): process_start(p) for p in every if p}
        pids["podRecords"] = self.pods.records()
        path = self.home / "pids.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(pids))
        os.replace(tmp, path)


def _mark_route_programmed(status: Obj, route: Obj, programmed: bool, error: str | None) -> None:
    """TrafficLab's own route condition: Programmed=True once Envoy confirmed this generation.

    The spec lets implementations add condition types; graders wait on this one.
    """
    generation = route["metadata"]["generation"]
    for parent in status.get("parents", []):
        accepted = any(c["type"] == "Accepted" and c["status"] == "True"
                       for c in parent.get("conditions", []))
        ok = programmed and accepted
        if ok:
            reason, message = "Programmed", "Envoy serves this generation of the route"
        elif not accepted:
            reason, message = NOT_ACCEPTED, "the route is not accepted by this parent"
        else:
            reason, message = "Invalid", f"Envoy did not load the configuration: {error}"
        parent.setdefault("conditions", []).append({
            "type": "Programmed", "status": "True" if ok else "False", "reason": reason,
            "message": message, "observedGeneration": generation,
        })


def _mark_gateway_unserved(status: Obj) -> None:
    """While Envoy is down no listener serves: the Gateway is not Programmed, whatever else."""
    for item in status.get("conditions", []):
        if item["type"] == "Programmed":
            item.update(status="False", reason="Pending",
                        message="Envoy, the data plane, is not running; TrafficLab is "
                                "restarting it")
