"""What ``trafficlab up --backend kind`` does, as data: the pinned versions and the ordered steps.

``build_plan`` returns the steps; ``render_plan`` turns them into a bash script that does the
same thing (``--dry-run`` prints it, and a test runs shellcheck on it). Nothing here runs a
command: ``trafficlab.backends.kind`` executes the steps.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from trafficlab.backends.kubeclient import FIELD_MANAGER
from trafficlab.manifests import baseline_dir

__all__ = [
    "ENVOY_GATEWAY_VERSION",
    "FIELD_MANAGER",
    "GATEWAY_API_VERSION",
    "GATEWAY_NODE_PORT",
    "PROMETHEUS_NODE_PORT",
    "TASK_API_IMAGE",
    "PlanConfig",
    "Step",
    "build_plan",
    "kind_config_text",
    "render_plan",
]

# -- pinned versions (the issue: Gateway API v1.6.1 standard channel, Envoy Gateway v1.9.0) ----
GATEWAY_API_VERSION = "v1.6.1"
GATEWAY_API_INSTALL_URL = (
    "https://github.com/kubernetes-sigs/gateway-api/releases/download/"
    f"{GATEWAY_API_VERSION}/standard-install.yaml")
ENVOY_GATEWAY_VERSION = "v1.9.0"
ENVOY_GATEWAY_CHART = "oci://docker.io/envoyproxy/gateway-helm"
ENVOY_GATEWAY_CRDS_CHART = "oci://docker.io/envoyproxy/gateway-crds-helm"
ENVOY_GATEWAY_NAMESPACE = "envoy-gateway-system"
ENVOY_GATEWAY_RELEASE = "eg"

# -- names the other files agree on (tests check that they do) -------------------------------
TASK_API_IMAGE = "task-api:1.0"          # the baseline Deployments' image
GATEWAY_NODE_PORT = 30080                # cluster/kind/envoy-gateway-values.yaml
PROMETHEUS_NODE_PORT = 30090             # cluster/kind/prometheus.yaml
MONITORING_NAMESPACE = "monitoring"      # cluster/kind/prometheus.yaml
DEFAULT_GATEWAY_PORT = 8080              # cluster/kind-config.yaml hostPort
DEFAULT_PROMETHEUS_PORT = 9090
GATEWAY_NAME = ("default", "task-api-gateway")
BASELINE_DEPLOYMENTS = ("task-api-v1", "task-api-v2")

# The Gateway API CRDs the lab uses; the plan waits until the API server serves them.
_LAB_CRDS = ("gatewayclasses", "gateways", "httproutes", "referencegrants")

StepKind = Literal["write", "run", "apply"]


def repo_root() -> Path:
    """The checkout this package runs from (the package is installed in place)."""
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Step:
    """One thing ``up`` does, in order.

    ``kind`` is ``write`` (write ``text`` to ``path``), ``run`` (run ``argv``; when
    ``pipe_from`` is set, its standard output feeds ``argv``'s standard input, like a shell
    pipe) or ``apply`` (server-side apply of the manifests at ``path`` with field manager
    ``trafficlab``; with ``only_missing``, only objects that do not exist yet, so a re-run
    keeps the student's edits).
    """

    title: str
    kind: StepKind
    argv: tuple[str, ...] = ()
    pipe_from: tuple[str, ...] = ()
    path: Path | None = None
    text: str = ""
    only_missing: bool = False
    timeout: float = 900.0

    def command(self) -> str:
        """The step as one shell command line (for ``write`` and ``apply``, its equivalent)."""
        if self.kind == "run":
            line = shlex.join(self.argv)
            return f"{shlex.join(self.pipe_from)} | {line}" if self.pipe_from else line
        if self.kind == "write":
            return f"cat > {shlex.quote(str(self.path))}"
        return shlex.join(self.argv)


@dataclass(frozen=True)
class PlanConfig:
    """Everything a plan depends on, so the same inputs give the same plan."""

    cluster: str
    home: Path
    root: Path = field(default_factory=repo_root)
    gateway_port: int = DEFAULT_GATEWAY_PORT
    prometheus_port: int = DEFAULT_PROMETHEUS_PORT
    cluster_exists: bool = False
    node_image: str | None = None

    @property
    def kubeconfig(self) -> Path:
        """The lab's own kubeconfig: the user's ~/.kube/config is left alone."""
        return self.home / "kubeconfig"

    @property
    def context(self) -> str:
        """The context kind names after the cluster."""
        return f"kind-{self.cluster}"

    @property
    def kind_config(self) -> Path:
        return self.home / "kind-config.yaml"


def kind_config_text(source: Path, gateway_port: int, prometheus_port: int) -> str:
    """``cluster/kind-config.yaml`` with the host ports chosen for this lab."""
    config = yaml.safe_load(source.read_text())
    host_ports = {GATEWAY_NODE_PORT: gateway_port, PROMETHEUS_NODE_PORT: prometheus_port}
    for node in config.get("nodes", []):
        for mapping in node.get("extraPortMappings", []):
            if mapping.get("containerPort") in host_ports:
                mapping["hostPort"] = host_ports[mapping["containerPort"]]
    header = (f"# Written by trafficlab from {source}; host ports: gateway {gateway_port}, "
              f"prometheus {prometheus_port}.\n")
    return header + yaml.safe_dump(config, sort_keys=False)


def build_plan(cfg: PlanConfig) -> list[Step]:
    """The ordered steps of ``up`` for this configuration (a pure function of ``cfg``)."""
    kubectl = ("kubectl", "--kubeconfig", str(cfg.kubeconfig), "--context", cfg.context)
    helm_target = ("--kubeconfig", str(cfg.kubeconfig), "--kube-context", cfg.context)
    kind_config = cfg.root / "cluster" / "kind-config.yaml"
    steps: list[Step] = [
        Step("Write the kind cluster configuration", "write", path=cfg.kind_config,
             text=kind_config_text(kind_config, cfg.gateway_port, cfg.prometheus_port)),
        # Built first: a broken image build stops before a cluster exists.
        Step(f"Build the Task API image {TASK_API_IMAGE}", "run",
             ("docker", "build", "-f", str(cfg.root / "taskapi" / "Dockerfile"),
              "-t", TASK_API_IMAGE, str(cfg.root)), timeout=1200),
    ]
    if cfg.cluster_exists:
        steps.append(Step(f"Reuse the kind cluster {cfg.cluster}", "run",
                          ("kind", "export", "kubeconfig", "--name", cfg.cluster,
                           "--kubeconfig", str(cfg.kubeconfig)), timeout=60))
    else:
        create = ["kind", "create", "cluster", "--name", cfg.cluster,
                  "--config", str(cfg.kind_config), "--kubeconfig", str(cfg.kubeconfig),
                  "--wait", "180s"]
        if cfg.node_image:
            create += ["--image", cfg.node_image]
        steps.append(Step(f"Create the kind cluster {cfg.cluster}", "run", tuple(create),
                          timeout=600))
    steps += [
        # Loaded before the baseline is applied: with imagePullPolicy IfNotPresent a pod that
        # starts first would try docker.io/library/task-api and wait out an image-pull backoff.
        Step(f"Load {TASK_API_IMAGE} into the cluster's node", "run",
             ("kind", "load", "docker-image", TASK_API_IMAGE, "--name", cfg.cluster), timeout=600),
        Step(f"Install the Gateway API {GATEWAY_API_VERSION} standard-channel CRDs", "run",
             (*kubectl, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}",
              "-f", GATEWAY_API_INSTALL_URL), timeout=300),
        Step("Wait until the API server serves the Gateway API CRDs", "run",
             (*kubectl, "wait", "--for=condition=Established", "--timeout=120s",
              *(f"crd/{plural}.gateway.networking.k8s.io" for plural in _LAB_CRDS)), timeout=180),
        # Envoy Gateway's chart bundles experimental-channel Gateway API CRDs; the lab pins the
        # standard channel above, so only Envoy Gateway's own CRDs come from its CRD chart
        # (the install path its v1.9 docs give for clusters that manage Gateway API CRDs).
        Step(f"Install the Envoy Gateway {ENVOY_GATEWAY_VERSION} CRDs", "run",
             (*kubectl, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-"),
             pipe_from=("helm", "template", "eg-crds", ENVOY_GATEWAY_CRDS_CHART,
                        "--version", ENVOY_GATEWAY_VERSION,
                        "--set", "crds.gatewayAPI.enabled=false",
                        "--set", "crds.envoyGateway.enabled=true"), timeout=600),
        Step(f"Install Envoy Gateway {ENVOY_GATEWAY_VERSION}", "run",
             ("helm", "upgrade", "--install", ENVOY_GATEWAY_RELEASE, ENVOY_GATEWAY_CHART,
              "--version", ENVOY_GATEWAY_VERSION, "--namespace", ENVOY_GATEWAY_NAMESPACE,
              "--create-namespace", "--set", "crds.enabled=false",
              "--values", str(cfg.root / "cluster" / "kind" / "envoy-gateway-values.yaml"),
              *helm_target, "--wait", "--timeout", "5m"), timeout=600),
        Step("Install Prometheus", "apply",
             (*kubectl, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}",
              "--force-conflicts", "-f", str(cfg.root / "cluster" / "kind" / "prometheus.yaml")),
             path=cfg.root / "cluster" / "kind" / "prometheus.yaml"),
        Step("Apply the baseline (objects that do not exist yet)", "apply",
             (*kubectl, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}",
              "--force-conflicts", "-f", str(baseline_dir())),
             path=baseline_dir(), only_missing=True),
        Step("Wait for the Task API Deployments", "run",
             (*kubectl, "wait", "--namespace", "default", "--for=condition=Available",
              "--timeout=300s", *(f"deployment/{name}" for name in BASELINE_DEPLOYMENTS)),
             timeout=360),
        Step("Wait until the Gateway is programmed", "run",
             (*kubectl, "wait", "--namespace", GATEWAY_NAME[0], "--for=condition=Programmed",
              "--timeout=300s", f"gateway/{GATEWAY_NAME[1]}"), timeout=360),
        Step("Wait for Prometheus", "run",
             (*kubectl, "wait", "--namespace", MONITORING_NAMESPACE, "--for=condition=Available",
              "--timeout=300s", "deployment/prometheus"), timeout=360),
    ]
    return steps


def render_plan(steps: list[Step]) -> str:
    """The steps as a bash script: the commands in order, manifests inline as here-documents.

    Running the script does what ``up`` does, except that ``up`` also skips cluster creation
    when the cluster exists and applies only the missing baseline objects.
    """
    lines = ["#!/usr/bin/env bash",
             "# trafficlab up --backend kind, as commands (dry run: nothing has been run).",
             "set -euo pipefail", ""]
    for number, step in enumerate(steps, 1):
        lines.append(f"# {number}. {step.title}")
        if step.kind == "write":
            lines.append(f"mkdir -p {shlex.quote(str(step.path.parent if step.path else '.'))}")
            lines.append(f"{step.command()} <<'EOF'")
            lines.extend(step.text.rstrip("\n").splitlines())
            lines.append("EOF")
        elif step.kind == "apply":
            if step.only_missing:
                lines.append("# (trafficlab applies only the objects that do not exist yet, so a "
                             "re-run keeps your edits)")
            # The manifests, as applied (files in name order, as `kubectl apply -f DIR` reads).
            argv = [*step.argv[:-1], "-"]
            lines.append(f"{shlex.join(argv)} <<'EOF'")
            lines.extend(_manifest_text(step.path).rstrip("\n").splitlines())
            lines.append("EOF")
        else:
            lines.append(step.command())
        lines.append("")
    return "\n".join(lines)


def _manifest_text(path: Path | None) -> str:
    if path is None:
        return ""
    files = sorted(f for f in path.rglob("*") if f.suffix in (".yaml", ".yml", ".json") and f.is_file()) \
        if path.is_dir() else [path]
    parts = []
    for f in files:
        text = f.read_text().strip("\n")
        parts.append(text if text.startswith("---") else f"---\n{text}")
    return "\n".join(parts) + "\n"
