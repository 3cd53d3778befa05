"""Finding, starting and resetting the lab a notebook works with."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from trafficlab._errors import NotFoundError, TrafficLabError
from trafficlab.backends.local import LocalBackend
from trafficlab.baseline import reset_to_baseline
from trafficlab.lab import Lab, default_home
from trafficlab.manifests import manifests_dir

__all__ = ["BACKEND_ENV", "deploy", "find_home", "point_kubectl_at", "reset_lab", "start_lab", "wait_pods"]

#: Which backend a notebook's ``start_lab`` asks for (``auto`` when unset). The autograder sets
#: it to ``local`` so every submission is graded the same way, whatever the machine has.
BACKEND_ENV = "TRAFFICLAB_BACKEND"


def find_home(start: str | os.PathLike[str] | None = None) -> Path:
    """The lab home a notebook should use.

    ``$TRAFFICLAB_HOME`` when set (the autograder and the tests set it, so each run is
    isolated); else the nearest ``.lab`` folder, in ``start`` (the working directory) or
    one of its parents, whose lab is running, so a notebook opened from ``notebooks/``
    finds the lab ``make lab-up`` started at the repository's root; else ``./.lab``.
    """
    if os.environ.get("TRAFFICLAB_HOME"):
        return default_home()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        home = folder / ".lab"
        if (home / "lab.json").is_file() and Lab(home).running:
            return home
    return here / ".lab"


def start_lab(home: str | os.PathLike[str] | None = None, *, quiet: bool = False) -> Lab:
    """``Lab(home)`` then ``lab.up()``: start the lab unless it runs already; print where it answers.

    ``home`` defaults to :func:`find_home`; the backend to ``$TRAFFICLAB_BACKEND``, else
    ``auto`` (kind when Docker and kind work, else the local backend).

    >>> lab = start_lab()                     # doctest: +SKIP
    Lab ready (local backend): the gateway answers at http://127.0.0.1:8080
    """
    lab = Lab(home if home is not None else find_home(),
              backend=os.environ.get(BACKEND_ENV) or "auto")
    with _starting():
        status = lab.up()
    kubectl = point_kubectl_at(status)
    if not quiet:
        urls = [item["url"] for gw in status.get("gateways", []) for item in gw.get("listeners", [])
                if item.get("url")]
        print(f"Lab ready ({status.get('backend', '?')} backend): the gateway answers at "
              f"{', '.join(urls) or '(no listener yet)'}; home {lab.home}")
        if kubectl:
            print("kubectl talks to this lab: try !kubectl get httproute")
    return lab


def point_kubectl_at(status: dict[str, object]) -> bool:
    """Set ``KUBECONFIG`` (and ``PATH``, for the venv's kubectl) so ``!kubectl`` cells reach the lab.

    A notebook's shell cells inherit the kernel's environment: this is the notebook's
    ``export KUBECONFIG=...``. False when the lab wrote no kubeconfig.
    """
    kubeconfig = status.get("kubeconfig")
    if not kubeconfig:
        return False
    os.environ["KUBECONFIG"] = str(kubeconfig)
    venv_bin = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if (Path(venv_bin) / "kubectl").exists() and venv_bin not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([venv_bin, path]) if path else venv_bin
    return True


@contextlib.contextmanager
def _starting() -> Iterator[None]:
    """One lab start at a time on this machine (the autograder runs several notebooks at once).

    A starting lab takes the gateway's preferred port (8080) when it looks free, and Envoy
    binds it a moment later; two labs starting together could both pick it, and one of them
    would fail to bind. Once ``up`` returns, the port is bound and the next lab sees it taken.
    """
    path = Path(tempfile.gettempdir()) / "trafficlab-lab-start.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def reset_lab(lab: Lab, *, quiet: bool = False) -> None:
    """Back to the baseline (:func:`trafficlab.baseline.reset_to_baseline`), pods ready.

    A lab keeps its objects across ``down``/``up``; a notebook starts from here so that what
    an earlier notebook changed (a faulty v2, a blue-green pair) does not leak into it.
    """
    reset_to_baseline(lab)
    lab.wait_programmed()
    wait_pods(lab)
    if not quiet:
        print("The lab is back to its baseline: HTTPRoute task-api sends everything to task-api-v1.")


def deploy(lab: Lab, *names: str) -> None:
    """Deploy extra workloads of the lab (``blue``, ``green``, ``premium``) and wait until ready.

    >>> deploy(lab, "blue", "green")          # doctest: +SKIP
    """
    for name in names:
        short = name.removeprefix("task-api-")
        path = manifests_dir() / "workloads" / f"task-api-{short}.yaml"
        if not path.is_file():
            raise NotFoundError(f'no workload "{name}"; the lab has blue, green and premium')
        result = lab.apply(path)
        print(result)
    wait_pods(lab)


def wait_pods(lab: Lab, *, timeout: float = 30.0) -> None:
    """Wait until every Deployment has as many ready pods as it asks for, and no others run."""
    if not isinstance(lab.backend, LocalBackend):
        return  # on kind, the readiness probes and Envoy Gateway's endpoints handle this
    deadline = time.monotonic() + timeout
    pending = ""
    while time.monotonic() < deadline:
        wanted = {d["metadata"]["name"]: int(d["spec"].get("replicas", 1))
                  for d in lab.get("Deployment")}
        ready: dict[str, int] = {}
        others = 0  # pods not ready, or of no Deployment: a rollout still under way
        for pod in lab.get("pods"):
            name = _deployment_of(pod["metadata"]["name"], wanted)
            if name is not None and pod.get("status", {}).get("ready"):
                ready[name] = ready.get(name, 0) + 1
            else:
                others += 1
        if not others and all(ready.get(n, 0) == c for n, c in wanted.items()):
            # The pods are right; Envoy learns the new endpoints a moment later (the old pod
            # stops as the new one turns ready), so wait for its endpoints to match too.
            if _envoy_in_sync(lab):
                return
            pending = "the gateway's endpoints lag behind the pods"
            time.sleep(0.05)
            continue
        pending = ", ".join(f"{n} ({ready.get(n, 0)}/{c} ready)" for n, c in wanted.items()
                            if ready.get(n, 0) != c) or f"{others} pods starting or stopping"
        time.sleep(0.1)
    raise TrafficLabError(f"pods not ready after {timeout:.0f}s: {pending}; "
                          "see 'trafficlab get pods'")


def _envoy_in_sync(lab: Lab) -> bool:
    """Envoy's endpoints of each Service cluster are exactly the ready pods the Service selects."""
    admin = (lab.status().get("envoy") or {}).get("admin")
    if not admin:
        return True
    try:
        with urllib.request.urlopen(f"{admin}/clusters", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return False
    served: dict[str, set[int]] = {}
    for line in text.splitlines():
        # service/<ns>/<name>/<port>::<ip>:<port>::health_flags::healthy (Envoy's /clusters text)
        parts = line.split("::")
        if len(parts) >= 3 and parts[0].startswith("service/") and parts[2] == "health_flags":
            served.setdefault(parts[0], set()).add(int(parts[1].rsplit(":", 1)[1]))
    pods = [p for p in lab.get("pods") if p.get("status", {}).get("ready")]
    for svc in lab.get("Service"):
        selector = svc["spec"].get("selector") or {}
        ports = {int(p["status"]["hostPort"]) for p in pods if selector and all(
            p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())}
        for port in svc["spec"].get("ports", []):
            name = f"service/{svc['metadata']['namespace']}/{svc['metadata']['name']}/{port['port']}"
            if name in served and served[name] != ports:
                return False
    return True


def _deployment_of(pod: str, deployments: dict[str, int]) -> str | None:
    # Pod names are <deployment>-<template hash>-<suffix>, as Kubernetes names them.
    base = pod.rsplit("-", 2)[0]
    return base if base in deployments else None
