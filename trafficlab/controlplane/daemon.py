"""The local lab daemon: ``python -m trafficlab.controlplane.daemon --home DIR``.

It runs the Controller (Envoy, pods, reconcile loop) and the lab's one API, the Kubernetes
API that kubectl, ``trafficlab`` and ``trafficlab.Lab`` all use (``<home>/kubeconfig``, mode
0600, holds its address, CA and token). The lab's own paths (``/healthz``, the status document,
shutdown) are served there too (``apiserver/lab_paths.py``). Once it serves, the daemon writes
``<home>/lab.json`` (which process it is: pid and start time, no credential); on SIGTERM or
``POST /trafficlab/v1/shutdown`` it stops every process it started and removes both files.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from trafficlab._private import secure_home, write_private
from trafficlab._process import process_start
from trafficlab.apiserver import KubeApiServer
from trafficlab.apiserver.lab_paths import LabPaths
from trafficlab.controlplane.controller import Controller

__all__ = ["local_status", "main"]


def local_status(controller: Controller, kubeconfig: Path | None = None) -> dict[str, Any]:
    """The lab contract's status document for the local backend."""
    gateways = []
    envoy_up = controller.proxy.running()
    # Running is not serving: a restarted Envoy is ready once it confirmed a configuration.
    all_ready = envoy_up and controller.proxy.version is not None
    snapshot = controller.store.shared_snapshot()  # read only: no copy of every route
    bind = controller.ports.bindings()  # assigned by the reconciler; status only reads
    for gw in snapshot.of_kind("Gateway"):
        meta = gw["metadata"]
        conditions = gw.get("status", {}).get("conditions", [])
        programmed = any(c["type"] == "Programmed" and c["status"] == "True" for c in conditions)
        all_ready = all_ready and programmed
        listeners = []
        for listener in gw["spec"].get("listeners", []):
            address, port = bind.get((meta["namespace"], meta["name"], int(listener["port"])),
                                     ("127.0.0.1", 0))
            listeners.append({"name": listener["name"], "port": int(listener["port"]),
                              "url": f"http://{address}:{port}" if port else None})
        gateways.append({"namespace": meta["namespace"], "name": meta["name"], "listeners": listeners})
    pods = controller.pods.pods()
    served = controller.served_pods
    prometheus = controller.prometheus
    problems = []
    if not envoy_up:
        problems.append("Envoy is not running; the lab restarts it"
                        + (f" (last attempt: {controller.envoy_restarts.last_error})"
                           if controller.envoy_restarts.last_error else ""))
    reconcile_problem = controller.reconcile_problem
    if reconcile_problem is not None:
        problems.append(reconcile_problem)
    if prometheus is not None and not prometheus.running():
        problems.append("Prometheus is not running; the lab restarts it, and `trafficlab "
                        "metrics` reads the pods meanwhile")
    return {
        "backend": "local",
        # A pod counts once Envoy has its endpoint, not as soon as its probe passes.
        "ready": bool(all_ready and gateways and reconcile_problem is None
                      and all(p.ready and (p.namespace, p.name) in served for p in pods)),
        "kubeconfig": str(kubeconfig) if kubeconfig is not None and kubeconfig.exists() else None,
        "gateways": gateways,
        "prometheus": prometheus.url if prometheus is not None and prometheus.running() else None,
        "pods": {"total": len(pods), "ready": sum(1 for p in pods if p.ready)},
        # Only the read-only stats door: the admin API is on an owner-only Unix socket.
        "envoy": {"pid": controller.proxy.pid if envoy_up else None, "running": envoy_up,
                  "restarts": controller.envoy_restarts.restarts,
                  "stats": controller.proxy.stats_address if envoy_up else None},
        # Writes return once stored; these say how far the controller has followed.
        "reconciler": {"runs": controller.reconciles,
                       "servedRevision": controller.reconciled_revision,
                       "lastSeconds": round(controller.last.seconds, 4) if controller.last else None},
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trafficlab-daemon")
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--envoy", type=Path, default=None)
    args = parser.parse_args(argv)
    home: Path = args.home.resolve()
    secure_home(home)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    controller = Controller(home, envoy_binary=args.envoy)
    stopping = threading.Event()
    kube_api = KubeApiServer(controller, home, LabPaths(
        status=lambda: local_status(controller, kube_api.kubeconfig), shutdown=stopping.set,
        serve_barrier=controller.serve_barrier))
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    lab_file = home / "lab.json"
    try:
        controller.start()
        kube_api.start()
        info = {"backend": "local", "pid": os.getpid(), "pidStart": process_start(os.getpid()),
                "started": time.time(), "python": sys.executable}
        write_private(lab_file, json.dumps(info))
        while not stopping.wait(0.5):  # a timeout, so that signal handlers get to run
            pass
    finally:
        kube_api.stop()
        controller.stop()
        lab_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
