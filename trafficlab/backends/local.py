"""The local backend: a daemon in the lab home runs Envoy and the Task API pods.

This module is the client side: it starts and stops the daemon, and does everything else over
the daemon's Kubernetes API with the client the kind backend uses too (``kubeclient``,
``kubeverbs``), authenticated by ``<home>/kubeconfig``. The lab's own calls (status, shutdown,
health) are paths on that API (``apiserver/lab_paths.py``).

The daemon's writes return once stored, as kube-apiserver's do; an apply, patch or delete here
then waits on the lab's reconciled barrier and, for an HTTPRoute, reads its ``Programmed``
condition on every parent at the written generation: the daemon sets it when Envoy confirmed
that version (or says why it did not), so what returns is served (DESIGN.md, "The lab contract").
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from trafficlab._errors import BackendError, LabNotRunningError, NotFoundError, TrafficLabError
from trafficlab._private import secure_home
from trafficlab._process import pid_alive, same_process
from trafficlab.backends.base import Obj, route_pending
from trafficlab.backends.kubeclient import KubeClient
from trafficlab.backends.kubeverbs import KubeVerbs
from trafficlab.controlplane.snapshot import ObjectKey
from trafficlab.controlplane.status import PENDING
from trafficlab.labapi import RECONCILED_PATH, SHUTDOWN_PATH, STATUS_PATH
from trafficlab.manifests import baseline_dir, load_manifests
from trafficlab.resources import check_pod_limits

__all__ = ["LocalBackend"]


class LocalBackend:
    """Runs the lab as local processes under a daemon owned by ``home``."""

    name = "local"

    def __init__(self, home: Path) -> None:
        self.home = home
        self._client: KubeClient | None = None
        self._client_for: tuple[int, int] | None = None  # the kubeconfig file it was made from
        self._verbs = KubeVerbs(self._kube, apply_mode="replace", batch_check=self._pod_total)

    # -- daemon life cycle -------------------------------------------------------------
    def _info(self) -> dict[str, Any] | None:
        try:
            info = json.loads((self.home / "lab.json").read_text())
        except (OSError, ValueError):
            return None
        # The pid and its start time together: a lab.json left by a killed daemon must not
        # make a stranger that reused the pid look like our lab.
        if info.get("backend") != "local" or not same_process(int(info.get("pid", 0)),
                                                                info.get("pidStart")):
            return None
        return dict(info)

    def running(self) -> bool:
        info = self._info()
        if info is None:
            return False
        try:
            self._kube(timeout=2).request("GET", "/healthz")
        except TrafficLabError:
            return False
        return True

    def up(self, *, timeout: float = 60.0) -> dict[str, Any]:
        """Start the daemon if needed, apply the baseline's missing objects, wait until serving."""
        deadline = time.monotonic() + timeout
        if not self.running():
            self._start_daemon(deadline)
        self._apply_missing_baseline()
        return self._wait_ready(deadline)

    def _start_daemon(self, deadline: float) -> None:
        secure_home(self.home)
        (self.home / "logs").mkdir(exist_ok=True)
        (self.home / "lab.json").unlink(missing_ok=True)
        log_path = self.home / "logs" / "daemon.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                # -I: no PYTHON* variable of the caller (a grader, say) steers the daemon.
                [sys.executable, "-I", "-m", "trafficlab.controlplane.daemon",
                 "--home", str(self.home)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, close_fds=True,
            )
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BackendError("the lab daemon exited during start-up:\n"
                                   + _tail(log_path) + f"\n(full log: {log_path})")
            if self._info() is not None and self.running():
                return
            time.sleep(0.02)
        proc.terminate()
        raise BackendError(f"the lab did not start in time; see {log_path}")

    def _apply_missing_baseline(self) -> None:
        objects = load_manifests(baseline_dir())
        missing = []
        for obj in objects:
            key = ObjectKey(obj["kind"], obj["metadata"].get("namespace", "default")
                            if obj["kind"] not in ("GatewayClass", "Namespace") else "",
                            obj["metadata"]["name"])
            if not self.get(key.kind, key.name, namespace=key.namespace or None,
                            missing_ok=True):
                missing.append(obj)
        if missing:
            self.apply(missing)

    def _wait_ready(self, deadline: float) -> dict[str, Any]:
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status()
            if status.get("ready"):
                return status
            time.sleep(0.05)
        raise BackendError("the lab started but is not ready yet: "
                           f"{json.dumps(status.get('pods'))} pods; see {self.home / 'logs'}")

    def down(self) -> None:
        info = self._info()
        if info is not None:
            pid, start = int(info["pid"]), info.get("pidStart")
            try:
                self._kube(timeout=5).request("POST", SHUTDOWN_PATH)
            except TrafficLabError:
                _signal(pid, start, signal.SIGTERM)
            if not _wait_exit(pid, 15):
                _signal(pid, start, signal.SIGKILL)
                _wait_exit(pid, 5)
        self._reap_leftovers()
        self._forget_client()
        (self.home / "lab.json").unlink(missing_ok=True)

    def _reap_leftovers(self) -> None:
        """End processes the daemon recorded but could not stop (it was killed, say)."""
        try:
            pids = json.loads((self.home / "pids.json").read_text())
        except (OSError, ValueError):
            return
        recorded = [pids.get("envoy"), pids.get("prometheus"), *pids.get("pods", {}).values()]
        starts = pids.get("starts") or {}
        for pid in (int(p) for p in recorded if p):
            if same_process(pid, starts.get(str(pid))) and _looks_like_ours(pid):
                start = starts.get(str(pid))
                _signal(pid, start, signal.SIGTERM)
                if not _wait_exit(pid, 5):
                    _signal(pid, start, signal.SIGKILL)
        (self.home / "pids.json").unlink(missing_ok=True)

    # -- the contract ------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        if not self.running():
            return {"backend": "local", "ready": False, "gateways": [], "prometheus": None}
        return dict(self._kube().request("GET", STATUS_PATH))

    def apply(self, objects: list[Obj], *, namespace: str = "default",
              dry_run: bool = False) -> dict[str, Any]:
        """Every object, all or none (each is dry-run first), then wait until Envoy serves it."""
        self._require_running()
        result = self._verbs.apply(objects, namespace=namespace, dry_run=dry_run)
        return self._settle(result, dry_run)

    def get(self, kind: str, name: str | None = None, *, namespace: str | None = "default",
            all_namespaces: bool = False, missing_ok: bool = False) -> list[Obj]:
        self._require_running()
        try:
            return self._verbs.get(kind, name, namespace=namespace,
                                   all_namespaces=all_namespaces)
        except NotFoundError:
            if missing_ok:
                return []
            raise

    def patch(self, kind: str, name: str, patch: Any, *, patch_type: str = "merge",
              namespace: str = "default", dry_run: bool = False) -> dict[str, Any]:
        self._require_running()
        result = self._verbs.patch(kind, name, patch, patch_type=patch_type,
                                   namespace=namespace or "default", dry_run=dry_run)
        return self._settle(result, dry_run)

    def delete(self, refs: list[tuple[str, str, str]], *, dry_run: bool = False,
               ignore_not_found: bool = False) -> dict[str, Any]:
        self._require_running()
        result = self._verbs.delete(refs, dry_run=dry_run, ignore_not_found=ignore_not_found)
        if not dry_run:
            self._served()
        return result

    def wait_route(self, name: str, *, namespace: str = "default", timeout: float = 30.0) -> Obj:
        """Wait for TrafficLab's Programmed condition at the route's current generation."""
        deadline = time.monotonic() + timeout
        while True:
            obj = self.get("HTTPRoute", name, namespace=namespace)[0]
            generation = obj["metadata"]["generation"]
            pending = route_pending(obj, ("Accepted", "ResolvedRefs", "Programmed"),
                                    required=("Programmed",))
            if not pending:
                return obj
            if time.monotonic() > deadline:
                raise BackendError(f"HTTPRoute {namespace}/{name} generation {generation} is not "
                                   f"served after {timeout:.0f}s: {pending}")
            time.sleep(0.02)

    # -- consistency -------------------------------------------------------------------
    def _settle(self, result: dict[str, Any], dry_run: bool, timeout: float = 30.0
                ) -> dict[str, Any]:
        """Wait until each written HTTPRoute's generation is programmed; say what is not served.

        Programmed=False at that generation is an answer too (Envoy refused it, or no parent
        accepts the route): it becomes a warning, or the result's ``error``, not a wait.
        """
        written = result.pop("objects", [])
        if dry_run:
            return result
        self._served(timeout)
        warnings = list(result.get("warnings") or [])
        for change, obj in zip(result["changes"], written, strict=False):
            if change["kind"] != "HTTPRoute" or change["action"] == "unchanged":
                continue
            route = self._programmed(change["name"], change["namespace"] or "default",
                                     int(obj["metadata"]["generation"]), timeout)
            problems, error = _route_problems(route)
            warnings += problems
            result["error"] = result.get("error") or error
        result["warnings"] = list(dict.fromkeys(warnings))
        return result

    def _served(self, timeout: float = 30.0) -> None:
        """Wait until the lab served every write so far: writes return once stored."""
        try:
            self._kube(timeout=timeout + 5).request(
                "GET", RECONCILED_PATH, query={"timeoutSeconds": f"{timeout:g}"})
        except TrafficLabError as exc:
            raise BackendError(f"the lab stored the change but has not served it: {exc}") from exc

    def _programmed(self, name: str, namespace: str, generation: int, timeout: float) -> Obj:
        """The route once every parent reports Programmed for ``generation`` (or a later one).

        After :meth:`_served` this is one GET; it waits only if a newer write (someone else's)
        made the route pending again.
        """
        deadline = time.monotonic() + timeout
        while True:
            route = self.get("HTTPRoute", name, namespace=namespace)[0]
            parents = route.get("status", {}).get("parents", [])
            settled = all(
                any(c["type"] == "Programmed" and int(c.get("observedGeneration") or 0)
                    >= generation and c.get("reason") != PENDING
                    for c in p.get("conditions", [])) for p in parents)
            if settled:  # no parent at all: nothing will ever program it; the warning says so
                return route
            if time.monotonic() > deadline:
                raise BackendError(f"HTTPRoute {namespace}/{name} generation {generation} is not "
                                   f"served after {timeout:.0f}s: "
                                   f"{route_pending(route, ('Programmed',), required=('Programmed',))}")
            time.sleep(0.01)

    def _pod_total(self, objects: list[Obj]) -> None:
        """The local lab's one rule across objects: all Deployments together stay within its
        pod total. Each object's dry run sees only itself, so the batch is checked here, with
        the API server's own check and message, before anything is written."""
        batch = {_deployment_key(o): o for o in objects if o.get("kind") == "Deployment"}
        if not batch:
            return
        staged: dict[tuple[str, str], Obj] = {
            _deployment_key(o): o for o in self.get("Deployment", all_namespaces=True)}
        staged.update(batch)
        for obj in batch.values():
            check_pod_limits(obj, staged)

    # -- transport ---------------------------------------------------------------------
    def _kube(self, timeout: float = 60.0) -> KubeClient:
        """The client for the running daemon's kubeconfig (a new one after a restart)."""
        path = self.home / "kubeconfig"
        try:
            stat = path.stat()
        except OSError:
            self._forget_client()
            raise LabNotRunningError(f"no lab is running in {self.home}; start one with "
                                     "'trafficlab up' (or 'make lab-up')") from None
        made_from = (stat.st_ino, stat.st_mtime_ns)
        if self._client is None or self._client_for != made_from:
            self._forget_client()
            # Its current context is the lab's ("trafficlab", apiserver/kubeconfig.py).
            self._client = KubeClient(path, None, unreachable=(
                "restart the lab with 'trafficlab down && trafficlab up'"))
            self._client_for = made_from
        self._client.timeout = timeout
        return self._client

    def _forget_client(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client, self._client_for = None, None

    def _require_running(self) -> None:
        if self._info() is None:
            raise LabNotRunningError(f"no lab is running in {self.home}; start one with "
                                     "'trafficlab up' (or 'make lab-up')")


def _deployment_key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return str(meta.get("namespace") or "default"), str(meta.get("name"))


def _route_problems(route: Obj) -> tuple[list[str], str | None]:
    """Warnings for the route's False conditions at its generation; Envoy's refusal as error."""
    meta = route["metadata"]
    who = f"HTTPRoute {meta.get('namespace', 'default')}/{meta['name']}"
    parents = route.get("status", {}).get("parents", [])
    if not parents:
        return [f"{who}: no parent has accepted the route (check spec.parentRefs)"], None
    warnings, error = [], None
    for parent in parents:
        gw = parent.get("parentRef", {}).get("name", "?")
        for cond in parent.get("conditions", []):
            if cond.get("status") == "True" or cond.get("observedGeneration") != meta["generation"]:
                continue
            text = f"{who}: {gw}: {cond['type']}={cond['status']} ({cond.get('reason')}): " \
                   f"{cond.get('message', '')}"
            if cond["type"] == "Programmed" and cond.get("reason") == "Invalid":
                error = error or str(cond.get("message", ""))
            elif cond["type"] != "Programmed":  # Programmed=False follows from the others
                warnings.append(text)
    return warnings, error


def _looks_like_ours(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return any(name in cmdline for name in ("envoy", "taskapi", "prometheus"))


def _signal(pid: int, start: int | None, sig: int) -> None:
    """Signal ``pid`` only while it is still the process that started at ``start``."""
    if not same_process(pid, start):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
