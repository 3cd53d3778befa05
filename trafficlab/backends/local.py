"""The local backend: a daemon in the lab home runs Envoy and the Task API pods.

This module is the client side: it starts and stops the daemon and speaks its JSON API.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from trafficlab._errors import BackendError, LabNotRunningError, TrafficLabError, error_from_dict
from trafficlab._private import secure_home
from trafficlab._process import pid_alive, same_process
from trafficlab.backends.base import Obj, route_pending
from trafficlab.controlplane.snapshot import ObjectKey
from trafficlab.manifests import baseline_dir, load_manifests

__all__ = ["LocalBackend"]


class LocalBackend:
    """Runs the lab as local processes under a daemon owned by ``home``."""

    name = "local"

    def __init__(self, home: Path) -> None:
        self.home = home

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
            self._call("GET", "/healthz", info=info, timeout=2)
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
                self._call("POST", "/shutdown", info=info, timeout=5)
            except TrafficLabError:
                _signal(pid, start, signal.SIGTERM)
            if not _wait_exit(pid, 15):
                _signal(pid, start, signal.SIGKILL)
                _wait_exit(pid, 5)
        self._reap_leftovers()
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
        return dict(self._call("GET", "/status"))

    def apply(self, objects: list[Obj], *, namespace: str = "default",
              dry_run: bool = False) -> dict[str, Any]:
        return dict(self._call("POST", "/apply", {"objects": objects, "namespace": namespace,
                                                  "dryRun": dry_run}))

    def get(self, kind: str, name: str | None = None, *, namespace: str | None = "default",
            all_namespaces: bool = False, missing_ok: bool = False) -> list[Obj]:
        if kind == "Pod":
            return list(self._call("GET", "/pods?" + urlencode(
                {} if all_namespaces else {"namespace": namespace or "default"}))["items"])
        query = {"kind": kind}
        if namespace:
            query["namespace"] = namespace
        if name:
            query["name"] = name
        if all_namespaces:
            query["allNamespaces"] = "1"
        try:
            return list(self._call("GET", "/objects?" + urlencode(query))["items"])
        except TrafficLabError as exc:
            if missing_ok and exc.reason == "NotFound":
                return []
            raise

    def patch(self, kind: str, name: str, patch: Any, *, patch_type: str = "merge",
              namespace: str = "default", dry_run: bool = False) -> dict[str, Any]:
        return dict(self._call("POST", "/patch", {"kind": kind, "name": name, "namespace": namespace,
                                                  "patch": patch, "type": patch_type,
                                                  "dryRun": dry_run}))

    def delete(self, refs: list[tuple[str, str, str]], *, dry_run: bool = False,
               ignore_not_found: bool = False) -> dict[str, Any]:
        body = {"refs": [{"kind": k, "namespace": ns, "name": n} for k, ns, n in refs],
                "dryRun": dry_run, "ignoreNotFound": ignore_not_found}
        return dict(self._call("POST", "/delete", body))

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

    # -- transport ---------------------------------------------------------------------
    def _call(self, method: str, path: str, body: Any = None, *,
              info: dict[str, Any] | None = None, timeout: float = 60) -> Any:
        info = info or self._info()
        if info is None:
            raise LabNotRunningError(f"no lab is running in {self.home}; start one with "
                                     "'trafficlab up' (or 'make lab-up')")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(info["api"] + path, data=data, method=method, headers={
            "content-type": "application/json",
            "authorization": f"Bearer {info.get('token', '')}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                payload = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            payload = json.loads(exc.read() or b"{}")
        except OSError as exc:
            raise LabNotRunningError(f"the lab in {self.home} does not answer ({exc}); "
                                     "restart it with 'trafficlab down && trafficlab up'") from exc
        if not payload.get("ok"):
            raise error_from_dict(payload.get("error", {}))
        return payload["result"]


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
