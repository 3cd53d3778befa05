"""Everything in cluster/ checked offline: Kubernetes schemas for the core kinds
(kubernetes-validate, strict), TrafficLab's Gateway API models for the Gateway API kinds,
the kind configuration's port mappings, the Envoy Gateway values, and shellcheck on scripts.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from trafficlab.backends import _kind_plan as plan
from trafficlab.manifests import load_manifests
from trafficlab.resources import validate

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="pip install kubernetes-validate (the kind extra's test tool)")

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
# Files in cluster/ that are not Kubernetes objects; each has its own test below.
NOT_OBJECTS = {CLUSTER / "kind-config.yaml", CLUSTER / "kind" / "envoy-gateway-values.yaml"}
# The Kubernetes minor the kind cluster runs (Envoy Gateway v1.9 supports 1.33 to 1.36).
K8S_VERSION = "1.34"
GATEWAY_GROUP = "gateway.networking.k8s.io"


def manifest_files() -> list[Path]:
    return sorted(p for p in CLUSTER.rglob("*") if p.suffix in (".yaml", ".yml", ".json")
                  and p not in NOT_OBJECTS)


def objects_of(path: Path) -> list[dict[str, Any]]:
    return load_manifests(path)


def test_cluster_has_the_manifests_the_kind_backend_needs() -> None:
    names = {p.relative_to(CLUSTER).as_posix() for p in manifest_files()}
    assert {"kind/prometheus.yaml", "manifests/baseline/30-httproute-task-api.yaml",
            "manifests/workloads/task-api-blue.yaml"} <= names


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.relative_to(CLUSTER).as_posix())
def test_every_manifest_validates(path: Path) -> None:
    objects = objects_of(path)
    assert objects, f"{path} holds no objects"
    for obj in objects:
        if obj["apiVersion"].startswith(GATEWAY_GROUP + "/"):
            validate(obj)  # the vendored v1.6.1 CRD schemas and their CEL rules
        else:
            try:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(str(p) for p in exc.path)
                pytest.fail(f"{path.name}: {obj['kind']} {obj['metadata'].get('name')}: "
                            f"{where}: {exc.message}")


def test_the_validator_really_rejects_a_broken_object() -> None:
    """Guards the test above: strict mode must catch an unknown field and a wrong type."""
    service = next(o for o in objects_of(CLUSTER / "kind" / "prometheus.yaml")
                   if o["kind"] == "Service")
    broken = yaml.safe_load(yaml.safe_dump(service))
    broken["spec"]["ports"][0]["nodePort"] = "thirty"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(service))
    broken["spec"]["portz"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_kind_config_maps_the_gateway_and_prometheus_node_ports_to_localhost() -> None:
    config = yaml.safe_load((CLUSTER / "kind-config.yaml").read_text())
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    (node,) = config["nodes"]
    assert node["role"] == "control-plane"
    mappings = {m["containerPort"]: m for m in node["extraPortMappings"]}
    assert set(mappings) == {plan.GATEWAY_NODE_PORT, plan.PROMETHEUS_NODE_PORT}
    assert mappings[plan.GATEWAY_NODE_PORT]["hostPort"] == plan.DEFAULT_GATEWAY_PORT == 8080
    assert mappings[plan.PROMETHEUS_NODE_PORT]["hostPort"] == plan.DEFAULT_PROMETHEUS_PORT == 9090
    for mapping in mappings.values():
        assert mapping["listenAddress"] == "127.0.0.1"
        assert mapping["protocol"] == "TCP"
        assert 30000 <= mapping["containerPort"] <= 32767  # the default NodePort range


def test_envoy_gateway_values_expose_listener_80_on_the_mapped_node_port() -> None:
    values = yaml.safe_load((CLUSTER / "kind" / "envoy-gateway-values.yaml").read_text())
    proxy = values["config"]["envoyGateway"]["envoyProxy"]
    kubernetes = proxy["provider"]["kubernetes"]
    assert proxy["provider"]["type"] == "Kubernetes"
    service = kubernetes["envoyService"]
    assert service["type"] == "NodePort"
    assert service["patch"]["type"] == "StrategicMerge"
    # Service ports merge on "port", so this sets the nodePort of the port-80 listener only.
    assert service["patch"]["value"] == {"spec": {"ports": [
        {"port": 80, "nodePort": plan.GATEWAY_NODE_PORT}]}}
    gateway = next(o for o in objects_of(CLUSTER / "manifests" / "baseline")
                   if o["kind"] == "Gateway")
    assert [listener["port"] for listener in gateway["spec"]["listeners"]] == [80]


def test_prometheus_is_exposed_and_scrapes_task_api_and_envoy() -> None:
    objects = {o["kind"]: o for o in objects_of(CLUSTER / "kind" / "prometheus.yaml")}
    service = objects["Service"]
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"][0]["nodePort"] == plan.PROMETHEUS_NODE_PORT
    assert service["metadata"]["namespace"] == plan.MONITORING_NAMESPACE
    container = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    image_tag = container["image"].rpartition(":")[2]
    assert image_tag.startswith("v") and image_tag != "latest", "the Prometheus image is pinned"
    config = yaml.safe_load(objects["ConfigMap"]["data"]["prometheus.yml"])
    # The same interval as the local lab's Prometheus, so the metrics queries' windows fit.
    from trafficlab.monitoring.prometheus import SCRAPE_INTERVAL_S

    assert config["global"]["scrape_interval"] == f"{SCRAPE_INTERVAL_S}s"
    assert config["global"]["scrape_timeout"] == config["global"]["scrape_interval"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"task-api", "envoy"}
    keep = {tuple(r["source_labels"]): r["regex"] for r in jobs["task-api"]["relabel_configs"]
            if r.get("action") == "keep"}
    # The baseline pods carry app=task-api and name their container port "http".
    assert keep[("__meta_kubernetes_pod_label_app",)] == "task-api"
    assert keep[("__meta_kubernetes_pod_container_port_name",)] == "http"
    assert jobs["task-api"]["honor_labels"] is True  # the app's own version label wins
    assert jobs["envoy"]["metrics_path"] == "/stats/prometheus"
    assert jobs["envoy"]["kubernetes_sd_configs"][0]["namespaces"]["names"] == [
        "envoy-gateway-system"]
    # RBAC: discovery reads pods, nothing more.
    assert objects["ClusterRole"]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]


def test_the_baseline_runs_the_image_the_kind_backend_loads() -> None:
    for obj in objects_of(CLUSTER / "manifests"):
        if obj["kind"] != "Deployment":
            continue
        (container,) = obj["spec"]["template"]["spec"]["containers"]
        assert container["image"] == plan.TASK_API_IMAGE
        # kind load puts the image on the node; a pull policy of Always would bypass it.
        assert container["imagePullPolicy"] == "IfNotPresent"
        assert obj["spec"]["template"]["metadata"]["labels"]["app"] == "task-api"
        assert container["ports"][0]["name"] == "http"
    gateway_class = next(o for o in objects_of(CLUSTER / "manifests" / "baseline")
                         if o["kind"] == "GatewayClass")
    assert gateway_class["spec"]["controllerName"] == "gateway.envoyproxy.io/gatewayclass-controller"
    assert "parametersRef" not in gateway_class["spec"]


def shell_scripts() -> list[Path]:
    return sorted(CLUSTER.rglob("*.sh"))


def test_cluster_has_scripts() -> None:
    assert CLUSTER / "kind" / "diagnose.sh" in shell_scripts()


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: p.relative_to(CLUSTER).as_posix())
def test_every_script_passes_shellcheck(script: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck; .ci/run does)")
    proc = subprocess.run(["shellcheck", "--severity=style", str(script)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout
    assert script.stat().st_mode & 0o111, f"{script} is not executable"
