"""Local pods: each Deployment of the Task API image runs as ``replicas`` local processes.

A pod here is one ``python -m taskapi`` process bound on 127.0.0.1 with a free port. Names are
shaped like Kubernetes' (``<deployment>-<template hash>-<suffix>``), readiness comes from the
pod's ``/readyz``, crashed processes restart, and a changed template rolls: new pods first,
old ones stop once the new ones are ready.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trafficlab._errors import ValidationError
from trafficlab._process import end_process, free_port, process_start, same_process
from trafficlab.gateway.ir import Endpoint
from trafficlab.resources import check_pod_limits

__all__ = ["TASK_API_PORT", "Pod", "PodManager", "admit_deployment", "is_task_api_image",
           "pod_environment"]

Obj = dict[str, Any]

# The port the Task API listens on inside its container (taskapi/Dockerfile); a Service's
# targetPort must reach it, by number or by the container port's name.
TASK_API_PORT = 8000
# How long a pod that left the endpoints keeps running, so Envoy stops sending to it first.
TERMINATION_GRACE_S = 1.0
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' own, no vowels


def is_task_api_image(image: str) -> bool:
    """True for ``task-api``, ``task-api:v2``, ``registry.example/course/task-api:1.0``..."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0] == "task-api"


def admit_deployment(obj: Obj, existing: Mapping[Any, Obj]) -> None:
    """The local backend's admission check: only the Task API image runs as local processes,
    one container per pod, within the lab's env and replica bounds (`check_pod_limits`).

    ``existing`` is what the store holds once this write is done, by key.
    """
    if obj.get("kind") != "Deployment":
        return
    meta = obj["metadata"]
    containers = obj["spec"]["template"]["spec"].get("containers", [])
    for i, container in enumerate(containers):
        image = str(container.get("image", ""))
        if not is_task_api_image(image):
            raise ValidationError(
                "Deployment", meta.get("namespace"), meta["name"],
                f"spec.template.spec.containers[{i}].image",
                f'the local lab runs only the Task API image ("task-api[:tag]"), not "{image}"; '
                "use image task-api, or run this Deployment on the kind backend "
                "(trafficlab up --backend kind)")
    if len(containers) != 1:
        raise ValidationError(
            "Deployment", meta.get("namespace"), meta["name"], "spec.template.spec.containers",
            f"the local lab runs one container per pod, got {len(containers)}")
    check_pod_limits(obj, existing)


@dataclass
class Pod:
    name: str
    namespace: str
    deployment: str
    template_hash: str
    labels: dict[str, str]
    container_ports: dict[str, int]  # container port name -> number
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    #: The process's start time: with the pid it names this pod's process for good.
    start: int | None = None
    #: The pid of a process an earlier daemon started (adopted: no Popen to poll).
    adopted_pid: int | None = None
    ready: bool = False
    restarts: int = 0
    started_at: float = field(default_factory=time.time)
    log_path: Path | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else self.adopted_pid

    def alive(self) -> bool:
        if self.adopted_pid is not None:
            return same_process(self.adopted_pid, self.start)
        return self.process is not None and self.process.poll() is None

    def record(self) -> Obj:
        """What a later daemon needs to adopt this pod (see :meth:`PodManager.adopt`)."""
        return {"name": self.name, "namespace": self.namespace, "deployment": self.deployment,
                "templateHash": self.template_hash, "labels": self.labels,
                "containerPorts": self.container_ports, "env": self.env, "port": self.port,
                "pid": self.pid, "start": self.start, "restarts": self.restarts,
                "startedAt": self.started_at}

    def serves(self, target_port: int | str) -> bool:
        """Whether a Service targetPort (number or name) reaches this pod's server."""
        if isinstance(target_port, str):
            return self.container_ports.get(target_port) == TASK_API_PORT
        return target_port == TASK_API_PORT

    def to_object(self) -> Obj:
        phase = "Running" if self.alive() else "Pending"
        return {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": dict(self.labels)},
            "spec": {"containers": [{"name": "task-api", "env": [
                {"name": k, "value": v} for k, v in sorted(self.env.items())]}]},
            "status": {
                "phase": phase, "podIP": "127.0.0.1", "hostPort": self.port, "pid": self.pid,
                "ready": self.ready, "restartCount": self.restarts,
                "startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            },
        }


class PodManager:
    """Starts, probes, restarts and stops the local pods of every Deployment."""

    def __init__(self, home: Path, python: str | None = None) -> None:
        self._logs = home / "logs" / "pods"
        self._roots = home / "pods"
        self._logs.mkdir(parents=True, exist_ok=True)
        self._python = python or sys.executable
        self._pods: dict[str, Pod] = {}  # by "<namespace>/<name>"
        self._terminating: dict[str, tuple[Pod, float]] = {}

    # -- desired state -----------------------------------------------------------------
    def sync(self, deployments: list[Obj]) -> bool:
        """Start and stop processes so that every Deployment has its replicas; True if anything changed."""
        changed = False
        wanted: set[str] = set()
        for deploy in deployments:
            meta = deploy["metadata"]
            ns, name = meta["namespace"], meta["name"]
            replicas = int(deploy["spec"].get("replicas", 1))
            template = deploy["spec"]["template"]
            thash = _template_hash(template)
            current = [p for p in self._pods.values()
                       if p.namespace == ns and p.deployment == name and p.template_hash == thash]
            for pod in current[:replicas]:
                wanted.add(f"{ns}/{pod.name}")
            for _ in range(replicas - len(current)):
                pod = self._new_pod(ns, name, thash, template)
                self._start(pod)
                self._pods[f"{ns}/{pod.name}"] = pod
                wanted.add(f"{ns}/{pod.name}")
                changed = True
            new_ready = sum(1 for p in current if p.ready)
            # Roll: keep the previous template's pods serving until the new ones are ready.
            if new_ready < min(replicas, len(current)) or len(current) < replicas:
                for pod in self._pods.values():
                    if (pod.namespace == ns and pod.deployment == name
                            and pod.template_hash != thash and pod.ready):
                        wanted.add(f"{ns}/{pod.name}")
        # A pod leaving is first taken out of the endpoints (as Kubernetes marks it
        # terminating) and stopped after a short grace, once Envoy has been told, so no
        # request is sent to a process that is gone.
        now = time.monotonic()
        for key, (pod, since) in list(self._terminating.items()):
            if now - since >= TERMINATION_GRACE_S:
                self._stop(pod)
                del self._terminating[key]
        for key in [k for k in self._pods if k not in wanted]:
            pod = self._pods.pop(key)
            if pod.ready:
                pod.ready = False
                self._terminating[key] = (pod, now)
            else:
                self._stop(pod)
            changed = True
        return changed

    def probe(self) -> bool:
        """Restart crashed pods and refresh readiness; True if the set of ready pods changed."""
        changed = False
        for pod in self._pods.values():
            if not pod.alive():
                if pod.ready:
                    changed = True
                pod.ready = False
                pod.restarts += 1
                self._start(pod)
                continue
            ready = _http_ok(f"http://127.0.0.1:{pod.port}/readyz")
            if ready != pod.ready:
                pod.ready = ready
                changed = True
        return changed

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.probe()
            if all(p.ready for p in self._pods.values()):
                return True
            time.sleep(0.05)
        return False

    # -- what the data plane needs -----------------------------------------------------
    def endpoints(self, services: list[Obj]) -> dict[tuple[str, str], dict[int, tuple[Endpoint, ...]]]:
        """Ready endpoints per Service port, as an EndpointSlice controller would compute them."""
        out: dict[tuple[str, str], dict[int, tuple[Endpoint, ...]]] = {}
        for svc in services:
            meta, spec = svc["metadata"], svc.get("spec", {})
            selector: Mapping[str, str] = spec.get("selector") or {}
            pods = [p for p in self._pods.values()
                    if p.namespace == meta["namespace"] and p.ready and selector
                    and all(p.labels.get(k) == v for k, v in selector.items())]
            ports: dict[int, tuple[Endpoint, ...]] = {}
            for port in spec.get("ports", []):
                target = port.get("targetPort", port["port"])
                eps = sorted((Endpoint("127.0.0.1", p.port) for p in pods if p.serves(target)),
                             key=lambda e: e.port)
                ports[int(port["port"])] = tuple(eps)
            out[(meta["namespace"], meta["name"])] = ports
        return out

    def pods(self) -> list[Pod]:
        return sorted(self._pods.values(), key=lambda p: (p.namespace, p.name))

    def stop_all(self) -> None:
        for pod in [*self._pods.values(), *(p for p, _ in self._terminating.values())]:
            self._stop(pod)
        self._pods.clear()
        self._terminating.clear()

    def records(self) -> list[Obj]:
        """Every serving pod, as :meth:`adopt` takes them back."""
        return [p.record() for p in self._pods.values() if p.pid]

    def adopt(self, records: list[Obj]) -> int:
        """Take over the pods an earlier daemon left running; return how many.

        Only a record whose pid still names the same process (pid plus start time) and runs
        the Task API is adopted; readiness is probed at once, so the first configuration
        after a daemon restart keeps every ready endpoint.
        """
        adopted = 0
        for item in records:
            try:
                pid, start = int(item["pid"]), int(item["start"])
                pod = Pod(name=str(item["name"]), namespace=str(item["namespace"]),
                          deployment=str(item["deployment"]),
                          template_hash=str(item["templateHash"]),
                          labels=dict(item["labels"]), container_ports=dict(item["containerPorts"]),
                          env=dict(item["env"]), port=int(item["port"]), start=start,
                          adopted_pid=pid, restarts=int(item.get("restarts", 0)),
                          started_at=float(item.get("startedAt", time.time())))
            except (KeyError, TypeError, ValueError):
                continue
            if not pod.alive() or not _runs_task_api(pid):
                continue
            pod.log_path = self._logs / f"{pod.namespace}_{pod.name}.log"
            pod.ready = _http_ok(f"http://127.0.0.1:{pod.port}/readyz")
            self._pods[f"{pod.namespace}/{pod.name}"] = pod
            adopted += 1
        return adopted

    def pids(self) -> dict[str, int]:
        """Every process this manager started and has not stopped yet, terminating ones too."""
        pods = [*self._pods.values(), *(p for p, _ in self._terminating.values())]
        return {p.name: p.pid for p in pods if p.pid}

    # -- processes ---------------------------------------------------------------------
    def _new_pod(self, ns: str, deployment: str, thash: str, template: Obj) -> Pod:
        container = template["spec"]["containers"][0]
        name = f"{deployment}-{thash}-{''.join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))}"
        ports = {str(p["name"]): int(p["containerPort"])
                 for p in container.get("ports", []) if p.get("name")}
        labels = dict(template.get("metadata", {}).get("labels", {}))
        env = _container_env(container, pod_name=name, namespace=ns)
        return Pod(name=name, namespace=ns, deployment=deployment, template_hash=thash,
                   labels=labels, container_ports=ports, env=env)

    def _start(self, pod: Pod) -> None:
        pod.port = free_port()
        pod.started_at = time.time()
        pod.log_path = self._logs / f"{pod.namespace}_{pod.name}.log"
        root = self._root(pod)
        for sub in ("home", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        env = pod_environment(pod.env, pod_name=pod.name, namespace=pod.namespace,
                              python=self._python, root=root)
        log = open(pod.log_path, "ab")  # noqa: SIM115 - handed to the child process
        try:
            # -I: the interpreter ignores every PYTHON* variable and the user site, and puts
            # neither the cwd nor the script's directory on sys.path; taskapi is imported from
            # the venv's site-packages (the editable install's finder works under -I).
            pod.process = subprocess.Popen(
                [self._python, "-I", "-m", "taskapi",
                 "--host", "127.0.0.1", "--port", str(pod.port)],
                env=env, cwd=root / "home", stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, close_fds=True,
            )
        finally:
            log.close()
        # No parent-death signal: a pod outlives a crashed daemon and keeps serving; the next
        # daemon adopts it by this pair, and `down` ends it only if the pair still matches.
        pod.start = process_start(pod.process.pid)
        pod.adopted_pid = None

    def _root(self, pod: Pod) -> Path:
        """The pod's private directory in the lab home: its HOME, TMPDIR and working dir."""
        return self._roots / f"{pod.namespace}_{pod.name}"

    def _stop(self, pod: Pod) -> None:
        self._end(pod)
        shutil.rmtree(self._root(pod), ignore_errors=True)

    @staticmethod
    def _end(pod: Pod) -> None:
        if pod.adopted_pid is not None:
            end_process(pod.adopted_pid, pod.start)
            return
        proc = pod.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# What the task-api image sets itself (taskapi/Dockerfile: ENV); ERROR_RATE and LATENCY_MS it
# leaves unset, which the Task API reads as 0.
_IMAGE_ENV = {"VERSION": "v1"}


def pod_environment(declared: Mapping[str, str], *, pod_name: str, namespace: str,
                    python: str, root: Path) -> dict[str, str]:
    """The whole environment of a local pod's process, built from nothing.

    What a container of the task-api image would see: the image's defaults, the Deployment's
    declared env (which wins, as on Kubernetes), the pod identity, and what Python needs to
    run. Nothing of the lab's or the user's own environment is passed on, so neither a
    student's env nor the grader's shell can make the pod run something else.
    """
    venv_bin = str(Path(python).parent)  # not resolved: a venv's python is a symlink out of it
    return {**_IMAGE_ENV, "LANG": "C.UTF-8", "HOSTNAME": pod_name,
            "POD_NAME": pod_name, "POD_NAMESPACE": namespace, **declared,
            # The lab's own (admission refuses them in a Deployment): the pod's interpreter
            # and its private directories.
            "PATH": f"{venv_bin}:/usr/bin:/bin", "HOME": str(root / "home"),
            "TMPDIR": str(root / "tmp"), "PYTHONUNBUFFERED": "1"}


def _container_env(container: Obj, *, pod_name: str, namespace: str) -> dict[str, str]:
    env: dict[str, str] = {"POD_NAME": pod_name, "POD_NAMESPACE": namespace}
    field_values = {"metadata.name": pod_name, "metadata.namespace": namespace,
                    "status.podIP": "127.0.0.1", "spec.nodeName": "local"}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "valueFrom" in item and "fieldRef" in item["valueFrom"]:
            path = item["valueFrom"]["fieldRef"].get("fieldPath", "")
            env[item["name"]] = field_values.get(path, "")
        else:
            env[item["name"]] = ""
    return env


def _template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    # Kubernetes' pod-template-hash is 10 characters of the same safe alphabet.
    return "".join(_SUFFIX_ALPHABET[int(digest[i:i + 2], 16) % len(_SUFFIX_ALPHABET)]
                   for i in range(0, 20, 2))


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _runs_task_api(pid: int) -> bool:
    try:
        return b"taskapi" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
