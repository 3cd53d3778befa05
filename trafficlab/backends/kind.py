"""The kind backend: the lab on a real Kubernetes cluster (kind), with Envoy Gateway v1.9.0.

``up`` checks the machine (``_kind_preflight``), then runs the steps of ``_kind_plan``
(cluster, Task API image, Gateway API v1.6.1 CRDs, Envoy Gateway, Prometheus, the baseline)
with progress on stderr, and waits until the Gateway serves. The contract's verbs go to the
cluster's API server through the client both backends share (``kubeclient``, ``kubeverbs``): apply
is server-side apply with field manager ``trafficlab``, patch is kubectl's merge, JSON or strategic
patch. This module keeps only how the cluster starts and how its gateway is probed.

The lab's home keeps ``lab.json`` (which cluster, which host ports), the cluster's own
``kubeconfig`` (the user's ~/.kube/config is not touched) and the rendered ``kind-config.yaml``.

>>> from trafficlab.backends.kind import KindBackend, render_plan
>>> print(render_plan(KindBackend(Path("/tmp/lab")).plan())[:40])  # doctest: +SKIP
#!/usr/bin/env bash
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO

from trafficlab._errors import BackendError, LabNotRunningError, NotFoundError
from trafficlab._private import secure_home, write_private
from trafficlab.backends._kind_plan import (
    BASELINE_DEPLOYMENTS,
    DEFAULT_GATEWAY_PORT,
    DEFAULT_PROMETHEUS_PORT,
    ENVOY_GATEWAY_NAMESPACE,
    GATEWAY_NAME,
    GATEWAY_NODE_PORT,
    MONITORING_NAMESPACE,
    PROMETHEUS_NODE_PORT,
    PlanConfig,
    Step,
    build_plan,
    render_plan,
    repo_root,
)
from trafficlab.backends._kind_preflight import preflight
from trafficlab.backends.base import Obj, route_pending
from trafficlab.backends.kubeclient import KubeClient, Resource, resource_for
from trafficlab.backends.kubeverbs import KubeVerbs, prepare
from trafficlab.manifests import load_manifests

__all__ = ["KindBackend", "Step", "render_plan"]

_PROBES_NEEDED = 3  # consecutive answers that are not gateway errors (DESIGN: consistency gate)



class KindBackend:
    """The lab contract on a kind cluster owned by ``home``."""

    name = "kind"

    def __init__(self, home: Path, *, out: TextIO | None = None) -> None:
        self.home = Path(home)
        self.out = out if out is not None else sys.stderr
        self._client: KubeClient | None = None
        self._verbs = KubeVerbs(self._kube, apply_mode="server-side")

    # -- where things are ---------------------------------------------------------------
    @property
    def cluster_name(self) -> str:
        """``trafficlab-<hash of home>``: labs with different homes get different clusters."""
        state = self._state()
        if state is not None and state.get("cluster"):
            return str(state["cluster"])
        digest = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:8]
        return f"trafficlab-{digest}"

    def _state(self) -> dict[str, Any] | None:
        try:
            state = json.loads((self.home / "lab.json").read_text())
        except (OSError, ValueError):
            return None
        return dict(state) if isinstance(state, dict) and state.get("backend") == "kind" else None

    def _write_state(self, cfg: PlanConfig) -> None:
        secure_home(self.home)
        state = {"backend": "kind", "cluster": cfg.cluster, "kubeconfig": str(cfg.kubeconfig),
                 "context": cfg.context, "gatewayPort": cfg.gateway_port,
                 "prometheusPort": cfg.prometheus_port}
        write_private(self.home / "lab.json", json.dumps(state, indent=2) + "\n")

    def _reset_client(self) -> None:
        """Forget the API client: the next call reads the kubeconfig again (kind rewrites it)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _kube(self) -> KubeClient:
        if self._client is None:
            state = self._state()
            if state is None:
                raise LabNotRunningError(f"no kind lab in {self.home}; start one with "
                                         "'trafficlab up --backend kind'")
            self._client = KubeClient(
                Path(state.get("kubeconfig") or self.home / "kubeconfig"), state.get("context"),
                unreachable="is the kind cluster running ('kind get clusters', 'docker ps')? "
                            "Start it with 'trafficlab up --backend kind'")
        return self._client

    # -- plan ---------------------------------------------------------------------------
    def plan(self, *, cluster_exists: bool | None = None, gateway_port: int | None = None,
             prometheus_port: int | None = None) -> list[Step]:
        """The steps ``up`` runs (nothing is run to make them).

        Without arguments: the ports and cluster recorded in the home, else the defaults
        (8080 and 9090, a new cluster).
        """
        state = self._state() or {}
        return build_plan(self._config(
            cluster_exists=bool(state) if cluster_exists is None else cluster_exists,
            gateway_port=gateway_port or int(state.get("gatewayPort") or DEFAULT_GATEWAY_PORT),
            prometheus_port=prometheus_port or int(state.get("prometheusPort")
                                                   or DEFAULT_PROMETHEUS_PORT)))

    def _config(self, *, cluster_exists: bool, gateway_port: int, prometheus_port: int
                ) -> PlanConfig:
        return PlanConfig(cluster=self.cluster_name, home=self.home.resolve(), root=repo_root(),
                          gateway_port=gateway_port, prometheus_port=prometheus_port,
                          cluster_exists=cluster_exists,
                          node_image=os.environ.get("TRAFFICLAB_KIND_NODE_IMAGE") or None)

    # -- life cycle ---------------------------------------------------------------------
    def running(self) -> bool:
        """The home records a kind lab and its API server answers."""
        if self._state() is None:
            return False
        try:
            self._kube().request("GET", "/version")
        except Exception:  # any failure means "not usable now"
            return False
        return True

    def up(self, *, timeout: float = 300.0, dry_run: bool = False) -> dict[str, Any]:
        """Create (or reuse) the cluster, install everything, apply the baseline, wait.

        Each step has its own time limit (shown in the plan); ``timeout`` bounds the final
        wait until the Gateway serves. With ``dry_run`` nothing runs: the result holds the
        plan (``result["plan"]``, a bash script of the exact commands and manifests).
        """
        if dry_run:
            steps = self.plan()
            return {"backend": "kind", "ready": False, "dry_run": True, "gateways": [],
                    "prometheus": None, "plan": render_plan(steps),
                    "commands": [s.command() for s in steps]}
        state = self._state() or {}
        gateway_port = int(state.get("gatewayPort") or DEFAULT_GATEWAY_PORT)
        prometheus_port = int(state.get("prometheusPort") or DEFAULT_PROMETHEUS_PORT)
        exists_hint = self._cluster_exists_quietly()
        checks = preflight(gateway_port=gateway_port, prometheus_port=prometheus_port,
                           check_ports=not exists_hint)
        for problem in checks.problems:
            if not problem.fatal:
                self._say(f"note: {problem}")
        if not checks.ok:
            raise BackendError("the kind lab cannot start on this machine:\n" + checks.report()
                               + "\n(or use the local backend: 'trafficlab up --backend local')")
        secure_home(self.home)  # the kubeconfig in it is the cluster's admin credential
        exists = self._cluster_exists()
        if exists and not state:
            gateway_port, prometheus_port = self._published_ports(gateway_port, prometheus_port)
        elif not exists:
            gateway_port, prometheus_port = checks.gateway_port, checks.prometheus_port
        cfg = self._config(cluster_exists=exists, gateway_port=gateway_port,
                           prometheus_port=prometheus_port)
        self._write_state(cfg)  # from now on 'trafficlab down' knows what to delete
        steps = build_plan(cfg)
        started = time.monotonic()
        for number, step in enumerate(steps, 1):
            self._run_step(step, number, len(steps))
        status = self._wait_ready(time.monotonic() + timeout)
        self._say(f"kind lab ready in {time.monotonic() - started:.0f}s: gateway "
                  f"http://localhost:{gateway_port}, prometheus http://localhost:{prometheus_port}")
        return status

    def down(self) -> None:
        """Delete the cluster and forget it (nothing of the lab keeps running)."""
        state = self._state()
        if shutil.which("kind") is None:
            if state is not None:
                raise BackendError(f"kind is not on PATH, so the cluster {self.cluster_name} "
                                   "cannot be deleted; install kind, or delete the container "
                                   f"'{self.cluster_name}-control-plane' with docker")
            return
        if state is not None or self._cluster_exists_quietly():
            self._run_step(Step(f"Delete the kind cluster {self.cluster_name}", "run",
                                ("kind", "delete", "cluster", "--name", self.cluster_name),
                                timeout=300), 1, 1)
        self._reset_client()
        for name in ("lab.json", "kubeconfig", "kind-config.yaml"):
            (self.home / name).unlink(missing_ok=True)

    # -- the contract -------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The contract's status; ``ready`` once the Gateway and the baseline pods serve."""
        state = self._state()
        result: dict[str, Any] = {"backend": "kind", "ready": False, "gateways": [],
                                  "prometheus": None}
        if state is None:
            return result
        try:
            kube = self._kube()
            gateways = kube.request("GET", resource_for("Gateway").path())["items"]
        except (LabNotRunningError, NotFoundError):  # no cluster, or no Gateway API CRDs yet
            return result
        services = kube.request(
            "GET", resource_for("Service").path(ENVOY_GATEWAY_NAMESPACE),
            query={"labelSelector": "app.kubernetes.io/managed-by=envoy-gateway,"
                                    "app.kubernetes.io/component=proxy"})["items"]
        port = int(state.get("gatewayPort") or DEFAULT_GATEWAY_PORT)
        result["gateways"] = [_gateway_entry(gw, services, port) for gw in gateways]
        deployments = {d["metadata"]["name"]: d for d in kube.request(
            "GET", resource_for("Deployment").path("default"))["items"]}
        prometheus = self._get_or_none(resource_for("Deployment"), MONITORING_NAMESPACE,
                                       "prometheus")
        if prometheus is not None and _available(prometheus):
            result["prometheus"] = (f"http://localhost:"
                                    f"{int(state.get('prometheusPort') or DEFAULT_PROMETHEUS_PORT)}")
        gateway = next((gw for gw in gateways if (gw["metadata"].get("namespace"),
                                                  gw["metadata"]["name"]) == GATEWAY_NAME), None)
        result["ready"] = bool(
            gateway is not None and _condition_true(gateway, "Programmed")
            and all(name in deployments and _available(deployments[name])
                    for name in BASELINE_DEPLOYMENTS)
            and any(item.get("url") for gw in result["gateways"] for item in gw["listeners"]))
        return result

    def apply(self, objects: list[Obj], *, namespace: str = "default",
              dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply of every object: all are dry-run first, so an invalid one stops all."""
        result = self._verbs.apply(objects, namespace=namespace, dry_run=dry_run)
        result.pop("objects", None)
        return result

    def get(self, kind: str, name: str | None = None, *, namespace: str | None = "default",
            all_namespaces: bool = False) -> list[Obj]:
        """Objects with their status (managedFields left out, as kubectl does by default)."""
        return self._verbs.get(kind, name, namespace=namespace, all_namespaces=all_namespaces)

    def patch(self, kind: str, name: str, patch: Any, *, patch_type: str = "merge",
              namespace: str = "default", dry_run: bool = False) -> dict[str, Any]:
        """kubectl patch: ``merge`` (RFC 7386), ``json`` (RFC 6902) or ``strategic`` (core kinds)."""
        result = self._verbs.patch(kind, name, patch, patch_type=patch_type, namespace=namespace,
                                   dry_run=dry_run)
        result.pop("objects", None)
        return result

    def delete(self, refs: list[tuple[str, str, str]], *, dry_run: bool = False,
               ignore_not_found: bool = False) -> dict[str, Any]:
        """Delete every object; a missing one stops all of them unless ``ignore_not_found``."""
        return self._verbs.delete(refs, dry_run=dry_run, ignore_not_found=ignore_not_found)

    def wait_route(self, name: str, *, namespace: str = "default", timeout: float = 30.0) -> Obj:
        """The consistency gate on Envoy Gateway, which reports no Programmed on routes.

        First the route's Accepted (True) and ResolvedRefs conditions must carry the route's
        current generation on every parent, which says Envoy Gateway translated this version;
        then requests through the Gateway must get ``_PROBES_NEEDED`` answers in a row that
        are not gateway errors (a 5xx without the Task API's ``x-version``), which says Envoy
        took the new configuration and reaches a backend. ResolvedRefs=False still serves the
        valid backends, so it is waited for but not required to be True (as the local backend).
        """
        deadline = time.monotonic() + timeout
        route: Obj = {}
        good = 0
        last = ""
        url: str | None = None
        url_known = False
        while True:
            route = self.get("HTTPRoute", name, namespace=namespace)[0]
            generation = route["metadata"].get("generation")
            pending = route_pending(route, ("Accepted", "ResolvedRefs"), required=("Accepted",))
            pending = pending or _resolved_refs_missing(route)
            if pending:
                good, last = 0, pending
            else:
                if not url_known:  # the listener's address does not change while we wait
                    url, url_known = self._route_url(route), True
                if url is None:
                    return route  # attached to a listener the host cannot reach: nothing to probe
                ok, seen = _probe(url, route)
                good = good + 1 if ok else 0
                last = f"the gateway answered {seen} at {url}"
                if good >= _PROBES_NEEDED:
                    return route
            if time.monotonic() > deadline:
                raise BackendError(f"HTTPRoute {namespace}/{name} generation {generation} is not "
                                   f"served after {timeout:.0f}s: {last}")
            time.sleep(0.1 if not pending else 0.2)

    # -- helpers ------------------------------------------------------------------------
    def _get_or_none(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        return self._verbs.get_or_none(res, namespace, name)

    def _route_url(self, route: Obj) -> str | None:
        ns = route["metadata"].get("namespace", "default")
        listeners = {(gw["namespace"], gw["name"]): gw["listeners"]
                     for gw in self.status()["gateways"]}
        for parent in route.get("spec", {}).get("parentRefs", []):
            for listener in listeners.get((parent.get("namespace", ns), parent.get("name")), []):
                if parent.get("sectionName") in (None, listener["name"]) and listener.get("url"):
                    return str(listener["url"])
        return None

    def _wait_ready(self, deadline: float) -> dict[str, Any]:
        status: dict[str, Any] = {}
        while True:
            status = self.status()
            if status["ready"]:
                url = next(item["url"] for gw in status["gateways"] for item in gw["listeners"]
                           if item.get("url"))
                if _probe(url, {})[0]:
                    return status
            if time.monotonic() > deadline:
                raise BackendError(
                    "the kind lab was installed but does not serve yet: "
                    f"{json.dumps(status)}. See what is pending with "
                    f"'cluster/kind/diagnose.sh {self.home}', then run 'trafficlab up' again")
            time.sleep(1.0)

    def _cluster_exists_quietly(self) -> bool:
        if shutil.which("kind") is None:
            return False
        try:
            return self._cluster_exists()
        except BackendError:
            return False

    def _cluster_exists(self) -> bool:
        try:
            proc = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True,
                                  timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendError(f"'kind get clusters' failed: {exc}") from exc
        return self.cluster_name in proc.stdout.split()

    def _published_ports(self, gateway: int, prometheus: int) -> tuple[int, int]:
        """The host ports of an existing cluster, read from its node container."""
        found = []
        for node_port, default in ((GATEWAY_NODE_PORT, gateway), (PROMETHEUS_NODE_PORT, prometheus)):
            proc = subprocess.run(["docker", "port", f"{self.cluster_name}-control-plane",
                                   f"{node_port}/tcp"], capture_output=True, text=True,
                                  timeout=30, check=False)
            text = proc.stdout.strip().splitlines()
            found.append(int(text[0].rpartition(":")[2]) if proc.returncode == 0 and text
                         else default)
        return found[0], found[1]

    def _run_step(self, step: Step, number: int, total: int) -> None:
        self._say(f"[{number}/{total}] {step.title}")
        started = time.monotonic()
        if step.kind == "write":
            assert step.path is not None
            step.path.parent.mkdir(parents=True, exist_ok=True)
            step.path.write_text(step.text)
        elif step.kind == "apply":
            assert step.path is not None
            self._reset_client()  # the cluster (and its kubeconfig) may be new since the last call
            objects = load_manifests(step.path)
            if step.only_missing:
                objects = [o for o in objects if self._missing(o)]
            if objects:
                for change in self.apply(objects)["changes"]:
                    self._say(f"      {change['text']}")
        else:
            self._run_command(step, number, total)
        self._say(f"      done in {time.monotonic() - started:.1f}s")

    def _missing(self, obj: Obj) -> bool:
        res, ns, name, _ = prepare(obj, "default")
        return self._get_or_none(res, ns, name) is None

    def _run_command(self, step: Step, number: int, total: int) -> None:
        tail: collections.deque[str] = collections.deque(maxlen=25)
        source = None
        try:
            if step.pipe_from:
                source = subprocess.Popen(list(step.pipe_from), stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, cwd=repo_root())
            proc = subprocess.Popen(list(step.argv), stdin=source.stdout if source else None,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    cwd=repo_root())
        except OSError as exc:
            raise BackendError(f"step {number}/{total} '{step.title}' could not start "
                               f"'{step.command()}': {exc}") from exc
        if source is not None and source.stdout is not None:
            source.stdout.close()  # the consumer owns the pipe now (SIGPIPE reaches the source)
        timer = threading.Timer(step.timeout, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                tail.append(line.rstrip())
                self._say(f"      {line.rstrip()}")
            code = proc.wait()
        finally:
            timer.cancel()
        source_code, source_err = 0, ""
        if source is not None:
            source_code = source.wait()
            source_err = source.stderr.read().decode(errors="replace") if source.stderr else ""
        if code != 0 or source_code != 0:
            detail = "\n".join(f"    {line}" for line in [*source_err.splitlines()[-10:], *tail])
            timed_out = " (it ran out of time)" if code in (-9, 137) else ""
            raise BackendError(
                f"step {number}/{total} '{step.title}' failed{timed_out}: "
                f"'{step.command()}' exited with code {source_code or code}\n{detail}\n"
                f"What to do: {_hint(step)} Then run 'trafficlab up --backend kind' again "
                "(finished steps are quick to repeat).")

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)


# -- pure helpers ---------------------------------------------------------------------------
def _condition_true(obj: Obj, ctype: str) -> bool:
    generation = obj.get("metadata", {}).get("generation")
    for cond in obj.get("status", {}).get("conditions", []):
        if cond.get("type") == ctype:
            return bool(cond.get("status") == "True"
                        and cond.get("observedGeneration", generation) == generation)
    return False


def _available(deployment: Obj) -> bool:
    want = int(deployment.get("spec", {}).get("replicas", 1))
    status = deployment.get("status", {})
    return (int(status.get("availableReplicas") or 0) >= want
            and status.get("observedGeneration") == deployment["metadata"].get("generation"))


def _gateway_entry(gateway: Obj, services: list[Obj], host_port: int) -> dict[str, Any]:
    """One gateway for status(): its listeners, with a URL where the host reaches them."""
    meta = gateway["metadata"]
    exposed: set[int] = set()
    for svc in services:
        labels = svc["metadata"].get("labels", {})
        if (labels.get("gateway.envoyproxy.io/owning-gateway-name") == meta["name"]
                and labels.get("gateway.envoyproxy.io/owning-gateway-namespace")
                == meta.get("namespace")):
            exposed |= {int(p["port"]) for p in svc.get("spec", {}).get("ports", [])
                        if p.get("nodePort") == GATEWAY_NODE_PORT}
    listeners = []
    for listener in gateway.get("spec", {}).get("listeners", []):
        port = int(listener["port"])
        listeners.append({"name": listener["name"], "port": port,
                          "url": f"http://localhost:{host_port}" if port in exposed else None})
    return {"namespace": meta.get("namespace", "default"), "name": meta["name"],
            "listeners": listeners}


def _resolved_refs_missing(route: Obj) -> str:
    generation = route["metadata"].get("generation")
    for parent in route.get("status", {}).get("parents", []):
        conds = {c["type"]: c for c in parent.get("conditions", [])}
        gw = parent.get("parentRef", {}).get("name", "?")
        cond = conds.get("ResolvedRefs")
        if cond is None:
            return f"{gw}: ResolvedRefs not reported yet"
        if cond.get("observedGeneration") != generation:
            return f"{gw}: ResolvedRefs is for generation {cond.get('observedGeneration')}"
    return ""


def _probe_request(url: str, route: Obj) -> urllib.request.Request:
    """A request the route's first match accepts: its path, exact headers and first hostname."""
    spec = route.get("spec", {})
    rules = spec.get("rules") or [{}]
    match = (rules[0].get("matches") or [{}])[0]
    path = match.get("path", {})
    target = path.get("value", "/") if path.get("type", "PathPrefix") in ("PathPrefix", "Exact") \
        else "/"
    headers = {h["name"]: h["value"] for h in match.get("headers", [])
               if h.get("type", "Exact") == "Exact"}
    hostnames = spec.get("hostnames") or []
    if hostnames:
        headers["Host"] = str(hostnames[0]).replace("*", "probe", 1)
    return urllib.request.Request(url.rstrip("/") + target, headers=headers)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def _probe(url: str, route: Obj) -> tuple[bool, str]:
    """One request through the gateway: (not a gateway error, what was seen)."""
    try:
        with _OPENER.open(_probe_request(url, route), timeout=3) as resp:
            return True, str(resp.status)
    except urllib.error.HTTPError as exc:
        made_by_app = exc.headers.get("x-version") is not None
        return exc.code < 500 or made_by_app, f"{exc.code}{'' if made_by_app else ' (gateway)'}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"no answer ({exc})"


def _hint(step: Step) -> str:
    program = (step.pipe_from or step.argv or ("",))[0]
    if program == "docker":
        return ("check that Docker runs ('docker info') and that the image build can reach PyPI "
                "(it installs taskapi/requirements.txt).")
    if program == "helm":
        return ("helm pulls Envoy Gateway's charts from docker.io: check the network; "
                "'helm list -A' shows what is installed.")
    if program == "kind":
        return ("check 'docker ps' and 'kind get clusters'; if the cluster is broken, "
                "'trafficlab down' deletes it.")
    return (f"look at the output above; 'cluster/kind/diagnose.sh' prints the cluster's state "
            f"({' '.join(step.argv[:1])} needs the network for remote manifests).")
