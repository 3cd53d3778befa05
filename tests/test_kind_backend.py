"""The kind backend without a cluster: its plan, its checks, its command runner, and its
Kubernetes client against recorded API responses replayed by a real HTTP server.

The recorded exchanges are in tests/testdata/kind/ (see the README there). The client under
test is the real one (the ``kubernetes`` package's ApiClient over urllib3); only the API
server is a replay.
"""

from __future__ import annotations

import collections
import io
import json
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

from trafficlab._errors import (
    BackendError,
    ConflictError,
    LabNotRunningError,
    NotFoundError,
    ValidationError,
)
from trafficlab.backends import _kind_plan as plan_mod
from trafficlab.backends._kind_preflight import parse_version, preflight
from trafficlab.backends.kind import KindBackend, Step, render_plan
from trafficlab.backends.kubeclient import error_from_status
from trafficlab.manifests import baseline_dir, load_manifests, parse_manifests

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = Path(__file__).parent / "testdata" / "kind"
ROUTE_PATH = "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/task-api"


# -- a replaying API server ------------------------------------------------------------------
@dataclass
class Seen:
    """One request as the API server received it."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    authorization: str


class ReplayApiServer:
    """Serves the recorded responses of a scenario over HTTP on a free port, recording requests.

    Responses for the same method and path are served in order; the last one repeats.
    """

    def __init__(self, scenario: str) -> None:
        data = yaml.safe_load((TESTDATA / f"{scenario}.yaml").read_text())
        self.queues: dict[tuple[str, str], collections.deque[dict[str, Any]]] = {}
        for exchange in data["exchanges"]:
            key = (exchange["request"]["method"], exchange["request"]["path"])
            self.queues.setdefault(key, collections.deque()).append(exchange["response"])
        self.seen: list[Seen] = []
        self.unexpected: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                ctype = self.headers.get("content-type") or ""
                # An apply patch is YAML (JSON is YAML), the rest JSON.
                body = (yaml.safe_load(raw) if "yaml" in ctype else json.loads(raw)) if raw else None
                server.seen.append(Seen(self.command, parts.path, dict(parse_qsl(parts.query)),
                                        ctype, body, self.headers.get("authorization") or ""))
                queue = server.queues.get((self.command, parts.path))
                if not queue:
                    server.unexpected.append(f"{self.command} {parts.path}")
                    response: dict[str, Any] = {"status": 599, "body": {"unexpected": True}}
                else:
                    response = queue.popleft() if len(queue) > 1 else queue[0]
                payload = json.dumps(response["body"]).encode()
                self.send_response(int(response["status"]))
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in (response.get("headers") or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> ReplayApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def writes(self) -> list[Seen]:
        return [s for s in self.seen if s.method in ("PATCH", "DELETE", "POST", "PUT")]


def make_home(home: Path, server_url: str, *, gateway_port: int = 8080) -> None:
    """A lab home as ``up`` leaves it: lab.json and a kubeconfig (here: for the replay server)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "kubeconfig").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "kind-test", "cluster": {"server": server_url}}],
        "users": [{"name": "kind-test", "user": {"token": "test-token"}}],
        "contexts": [{"name": "kind-trafficlab-test",
                      "context": {"cluster": "kind-test", "user": "kind-test"}}],
        "current-context": "kind-trafficlab-test",
    }))
    (home / "lab.json").write_text(json.dumps({
        "backend": "kind", "cluster": "trafficlab-test", "kubeconfig": str(home / "kubeconfig"),
        "context": "kind-trafficlab-test", "gatewayPort": gateway_port, "prometheusPort": 9090}))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Any]:
    """``lab(scenario)`` -> (backend, server); servers are stopped at the end."""
    servers: list[ReplayApiServer] = []
    backends: list[KindBackend] = []

    def start(scenario: str, *, gateway_port: int = 8080) -> tuple[KindBackend, ReplayApiServer]:
        server = ReplayApiServer(scenario).__enter__()
        servers.append(server)
        home = tmp_path / scenario
        make_home(home, server.url, gateway_port=gateway_port)
        backend = KindBackend(home, out=io.StringIO())
        backends.append(backend)
        return backend, server

    try:
        yield start
    finally:
        for backend in backends:
            if backend._client is not None:
                backend._client.close()
        for server in servers:
            server.__exit__(None, None, None)


def route(weights: tuple[int, int]) -> dict[str, Any]:
    """The baseline HTTPRoute with other weights, as a student would apply it."""
    obj = next(o for o in load_manifests(baseline_dir()) if o["kind"] == "HTTPRoute")
    refs = obj["spec"]["rules"][0]["backendRefs"]
    refs[0]["weight"], refs[1]["weight"] = weights
    return obj


def baseline(kind: str, name: str) -> dict[str, Any]:
    return next(o for o in load_manifests(baseline_dir())
                if o["kind"] == kind and o["metadata"]["name"] == name)


# -- apply --------------------------------------------------------------------------------------
SSA_QUERY = {"fieldManager": "trafficlab", "fieldValidation": "Strict", "force": "true"}


def test_apply_is_server_side_apply_after_a_dry_run_of_every_object(lab: Any) -> None:
    backend, server = lab("apply")
    service = baseline("Service", "task-api-v1")
    result = backend.apply([service, route((80, 20))])

    assert [c["text"] for c in result["changes"]] == [
        "service/task-api-v1 unchanged",
        "httproute.gateway.networking.k8s.io/task-api configured",
    ]
    assert result["error"] is None and not server.unexpected
    writes = server.writes()
    # All objects are dry-run first (the contract's all-or-none), then written.
    assert [(w.path.rsplit("/", 2)[-2], w.query.get("dryRun")) for w in writes] == [
        ("services", "All"), ("httproutes", "All"), ("services", None), ("httproutes", None)]
    for write in writes:
        assert write.method == "PATCH"
        assert write.content_type == "application/apply-patch+yaml"
        assert {k: v for k, v in write.query.items() if k != "dryRun"} == SSA_QUERY
        assert write.authorization == "Bearer test-token"
    assert writes[2].body == service
    assert writes[3].body["spec"]["rules"][0]["backendRefs"][1] == {
        "name": "task-api-v2", "port": 80, "weight": 20}
    assert writes[3].body["metadata"] == {"name": "task-api", "namespace": "default"}


def test_apply_dry_run_writes_nothing(lab: Any) -> None:
    backend, server = lab("apply")
    result = backend.apply([baseline("Service", "task-api-v1"), route((80, 20))], dry_run=True)
    assert [c["text"] for c in result["changes"]] == [
        "service/task-api-v1 unchanged (dry run)",
        "httproute.gateway.networking.k8s.io/task-api configured (dry run)",
    ]
    assert [w.query.get("dryRun") for w in server.writes()] == ["All", "All"]


def test_apply_creates_and_passes_on_the_api_servers_warnings(lab: Any) -> None:
    backend, server = lab("apply_create")
    blue = next(iter(load_manifests(ROOT / "cluster" / "manifests" / "workloads" /
                                    "task-api-blue.yaml")))
    blue["spec"]["template"]["metadata"]["annotations"] = {
        "seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}
    result = backend.apply([blue])
    assert [c["text"] for c in result["changes"]] == ["deployment.apps/task-api-blue created"]
    assert result["warnings"] == [
        'spec.template.metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: '
        'non-functional in v1.27+; use the "seccompProfile" field instead']
    assert [w.path for w in server.writes()] == [
        "/apis/apps/v1/namespaces/default/deployments/task-api-blue"] * 2


def test_an_invalid_object_stops_the_whole_apply(lab: Any) -> None:
    backend, server = lab("apply_invalid")
    with pytest.raises(ValidationError) as info:
        backend.apply([baseline("Service", "task-api-v2"), route((100, 1_000_001))])
    err = info.value
    assert (err.kind, err.namespace, err.name) == ("HTTPRoute", "default", "task-api")
    assert err.field == "spec.rules[0].backendRefs[1].weight"
    assert str(err) == ("HTTPRoute default/task-api is invalid: spec.rules[0].backendRefs[1].weight: "
                        "Invalid value: 1000001: spec.rules[0].backendRefs[1].weight in body "
                        "should be less than or equal to 1000000")
    # Only dry runs reached the server: the valid Service was not written either.
    assert [w.query.get("dryRun") for w in server.writes()] == ["All", "All"]


def test_apply_refuses_kinds_it_cannot_place_before_calling_the_server(lab: Any) -> None:
    backend, server = lab("apply")
    with pytest.raises(ValidationError, match='unsupported kind "Ingress"'):
        backend.apply([{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                        "metadata": {"name": "web"}}])
    assert server.seen == []


# -- get ----------------------------------------------------------------------------------------
def test_get_lists_objects_with_kind_and_without_managed_fields(lab: Any) -> None:
    backend, server = lab("get")
    items = backend.get("HTTPRoute", namespace="default")
    assert len(items) == 1
    item = items[0]
    assert (item["apiVersion"], item["kind"]) == ("gateway.networking.k8s.io/v1", "HTTPRoute")
    assert "managedFields" not in item["metadata"]
    assert item["status"]["parents"][0]["conditions"][0]["observedGeneration"] == 2
    assert server.seen[0].path == "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes"


def test_get_of_a_missing_object_says_what_kubectl_says(lab: Any) -> None:
    backend, _ = lab("get")
    with pytest.raises(NotFoundError) as info:
        backend.get("HTTPRoute", "nope")
    assert str(info.value) == 'httproutes.gateway.networking.k8s.io "nope" not found'


# -- patch --------------------------------------------------------------------------------------
def test_merge_patch_json_patch_and_a_conflict(lab: Any) -> None:
    backend, server = lab("patch")
    merge = {"spec": {"rules": [{"backendRefs": [{"name": "task-api-v1", "port": 80, "weight": 50},
                                                 {"name": "task-api-v2", "port": 80, "weight": 50}]}]}}
    result = backend.patch("HTTPRoute", "task-api", merge, patch_type="merge")
    assert result["changes"][0]["text"] == "httproute.gateway.networking.k8s.io/task-api patched"

    ops = [{"op": "test", "path": "/spec/rules/0/backendRefs/0/weight", "value": 80}]
    result = backend.patch("HTTPRoute", "task-api", ops, patch_type="json")
    assert result["changes"][0]["action"] == "unchanged"

    stale = {"metadata": {"resourceVersion": "1"}, "spec": {"parentRefs": []}}
    with pytest.raises(ConflictError, match="the object has been modified"):
        backend.patch("HTTPRoute", "task-api", stale, patch_type="merge")

    writes = server.writes()
    assert [(w.content_type, w.body) for w in writes] == [
        ("application/merge-patch+json", merge),
        ("application/json-patch+json", ops),
        ("application/merge-patch+json", stale)]
    assert all(w.query == {"fieldManager": "trafficlab", "fieldValidation": "Strict"}
               for w in writes)
    assert all(w.path == ROUTE_PATH for w in server.seen)


def test_strategic_patch_of_a_custom_resource_is_refused_as_kubectl_would(lab: Any) -> None:
    backend, server = lab("patch")
    with pytest.raises(ValidationError, match="use --type merge or --type json"):
        backend.patch("HTTPRoute", "task-api", {"spec": {}}, patch_type="strategic")
    with pytest.raises(ValidationError, match="must be a list of operations"):
        backend.patch("HTTPRoute", "task-api", {"op": "add"}, patch_type="json")
    assert server.seen == []


# -- delete -------------------------------------------------------------------------------------
def test_delete_checks_every_object_before_deleting_any(lab: Any) -> None:
    backend, server = lab("delete")
    refs = [("Deployment", "default", "task-api-green"), ("Service", "default", "task-api-premium")]
    with pytest.raises(NotFoundError, match='services "task-api-premium" not found'):
        backend.delete(refs)
    assert server.writes() == []

    result = backend.delete(refs, ignore_not_found=True)
    assert [c["text"] for c in result["changes"]] == ["deployment.apps/task-api-green deleted"]
    (delete,) = server.writes()
    assert delete.method == "DELETE"
    assert delete.body == {"kind": "DeleteOptions", "apiVersion": "v1",
                           "propagationPolicy": "Background"}


# -- status and the consistency gate ------------------------------------------------------------
def test_status_reports_the_gateway_where_the_host_reaches_it(lab: Any) -> None:
    backend, server = lab("status", gateway_port=8081)
    assert backend.status() == {
        "backend": "kind", "ready": True,
        "gateways": [{"namespace": "default", "name": "task-api-gateway",
                      "listeners": [{"name": "http", "port": 80, "url": "http://localhost:8081"}]}],
        "prometheus": "http://localhost:9090",
    }
    services = next(s for s in server.seen if s.path.endswith("/services"))
    assert services.query == {"labelSelector": "app.kubernetes.io/managed-by=envoy-gateway,"
                                               "app.kubernetes.io/component=proxy"}


class FakeGateway:
    """A real HTTP server standing where Envoy listens: one gateway-made 503, then the app."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.paths.append(self.path)
                first = len(outer.paths) == 1
                self.send_response(503 if first else 200)
                if not first:
                    self.send_header("x-version", "v1")
                self.send_header("content-length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def test_wait_route_waits_for_the_generation_then_for_agreeing_probes(lab: Any) -> None:
    gateway = FakeGateway()
    try:
        backend, server = lab("wait_route", gateway_port=gateway.port)
        obj = backend.wait_route("task-api", timeout=20)
    finally:
        gateway.close()
    assert obj["metadata"]["generation"] == 3
    assert obj["status"]["parents"][0]["conditions"][0]["observedGeneration"] == 3
    # One gateway-made 503 (no x-version) resets the count; three good answers in a row end it.
    assert gateway.paths == ["/"] * 4
    route_reads = [s for s in server.seen if s.path == ROUTE_PATH]
    assert len(route_reads) >= 2 and not server.unexpected


def test_wait_route_times_out_naming_the_stale_condition(lab: Any) -> None:
    backend, server = lab("wait_route")
    # Keep only the first recorded answer: conditions of generation 2 on a generation-3 route.
    stale = server.queues[("GET", ROUTE_PATH)][0]
    server.queues[("GET", ROUTE_PATH)] = collections.deque([stale])
    with pytest.raises(BackendError, match=r"generation 3 is not served after 0s: "
                                           r"task-api-gateway: Accepted is for generation 2"):
        backend.wait_route("task-api", timeout=0)


# -- errors and connection problems -------------------------------------------------------------
def test_error_from_status_maps_api_failures() -> None:
    invalid = json.dumps({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 422,
        "reason": "Invalid", "message": "HTTPRoute.gateway.networking.k8s.io \"r\" is invalid: ...",
        "details": {"name": "r", "group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                    "causes": [
                        {"reason": "FieldValueRequired", "message": "Required value",
                         "field": "spec.rules[0].backendRefs[0].name"},
                        {"reason": "FieldValueInvalid", "message": "Invalid value: -1",
                         "field": "spec.rules[0].backendRefs[0].port"}]}}).encode()
    err = error_from_status(422, invalid, namespace="default")
    assert isinstance(err, ValidationError)
    assert str(err) == ("HTTPRoute default/r is invalid: spec.rules[0].backendRefs[0].name: Required "
                        "value; also spec.rules[0].backendRefs[0].port: Invalid value: -1")
    strict = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 400,
                         "reason": "BadRequest", "message": ".spec.rules[0].backendRef: field not "
                         "declared in schema; strict decoding error: unknown field "
                         "\"spec.rules[0].backendRef\""}).encode()
    err = error_from_status(400, strict, kind="HTTPRoute", namespace="default", name="r")
    assert isinstance(err, ValidationError) and err.field == "spec.rules[0].backendRef"
    forbidden = json.dumps({"kind": "Status", "status": "Failure", "code": 403,
                            "reason": "Forbidden", "message": "nope"}).encode()
    assert isinstance(error_from_status(403, forbidden), BackendError)
    assert "Forbidden" in str(error_from_status(403, forbidden))
    assert str(error_from_status(502, b"Bad Gateway")) == (
        "the cluster's API server answered 502 : Bad Gateway")


def test_a_stopped_cluster_reads_as_not_running(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    make_home(tmp_path, f"http://127.0.0.1:{port}")
    backend = KindBackend(tmp_path, out=io.StringIO())
    assert backend.running() is False
    assert backend.status() == {"backend": "kind", "ready": False, "gateways": [],
                                "prometheus": None}
    with pytest.raises(LabNotRunningError, match="does not answer"):
        backend.get("HTTPRoute")


def test_no_lab_in_the_home(tmp_path: Path) -> None:
    backend = KindBackend(tmp_path, out=io.StringIO())
    assert backend.running() is False
    assert backend.status()["ready"] is False
    with pytest.raises(LabNotRunningError, match="trafficlab up --backend kind"):
        backend.get("HTTPRoute")


def test_the_client_needs_no_kubernetes_package(tmp_path: Path) -> None:
    """The shared client reads the kubeconfig itself: importing ``kubernetes`` costs seconds."""
    make_home(tmp_path, "http://127.0.0.1:9")
    code = textwrap.dedent(f"""
        import sys
        sys.modules["kubernetes"] = None  # as if it were not installed
        from pathlib import Path
        from trafficlab.backends.kind import KindBackend
        from trafficlab.backends.kubeclient import KubeClient
        client = KubeClient(Path({str(tmp_path / 'kubeconfig')!r}), "kind-trafficlab-test")
        print(client.host, client._headers["Authorization"])
        try:
            KubeClient(Path({str(tmp_path / 'missing')!r}))
        except Exception as exc:
            print(type(exc).__name__)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert proc.stdout.split("\n")[:2] == ["http://127.0.0.1:9 Bearer test-token",
                                           "LabNotRunningError"]


# -- the plan (dry run) -------------------------------------------------------------------------
def expected_commands(home: Path, cluster: str) -> list[str]:
    kubeconfig, ctx = home / "kubeconfig", f"kind-{cluster}"
    kubectl = f"kubectl --kubeconfig {kubeconfig} --context {ctx}"
    ssa = "apply --server-side --field-manager=trafficlab"
    return [
        f"cat > {home}/kind-config.yaml",
        f"docker build -f {ROOT}/taskapi/Dockerfile -t task-api:1.0 {ROOT}",
        f"kind create cluster --name {cluster} --config {home}/kind-config.yaml "
        f"--kubeconfig {kubeconfig} --wait 180s",
        f"kind load docker-image task-api:1.0 --name {cluster}",
        f"{kubectl} {ssa} -f https://github.com/kubernetes-sigs/gateway-api/releases/download/"
        "v1.6.1/standard-install.yaml",
        f"{kubectl} wait --for=condition=Established --timeout=120s "
        "crd/gatewayclasses.gateway.networking.k8s.io crd/gateways.gateway.networking.k8s.io "
        "crd/httproutes.gateway.networking.k8s.io crd/referencegrants.gateway.networking.k8s.io",
        "helm template eg-crds oci://docker.io/envoyproxy/gateway-crds-helm --version v1.9.0 "
        "--set crds.gatewayAPI.enabled=false --set crds.envoyGateway.enabled=true "
        f"| {kubectl} {ssa} -f -",
        "helm upgrade --install eg oci://docker.io/envoyproxy/gateway-helm --version v1.9.0 "
        "--namespace envoy-gateway-system --create-namespace --set crds.enabled=false "
        f"--values {ROOT}/cluster/kind/envoy-gateway-values.yaml --kubeconfig {kubeconfig} "
        f"--kube-context {ctx} --wait --timeout 5m",
        f"{kubectl} {ssa} --force-conflicts -f {ROOT}/cluster/kind/prometheus.yaml",
        f"{kubectl} {ssa} --force-conflicts -f {ROOT}/cluster/manifests/baseline",
        f"{kubectl} wait --namespace default --for=condition=Available --timeout=300s "
        "deployment/task-api-v1 deployment/task-api-v2",
        f"{kubectl} wait --namespace default --for=condition=Programmed --timeout=300s "
        "gateway/task-api-gateway",
        f"{kubectl} wait --namespace monitoring --for=condition=Available --timeout=300s "
        "deployment/prometheus",
    ]


@pytest.fixture
def tool_stubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """docker, kind, kubectl and helm on PATH that only record that they ran."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("docker", "kind", "kubectl", "helm"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{tmp_path}/ran.log"\n')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.delenv("TRAFFICLAB_KIND_NODE_IMAGE", raising=False)
    return tmp_path / "ran.log"


def test_dry_run_runs_nothing_and_prints_the_exact_commands(tmp_path: Path,
                                                            tool_stubs: Path) -> None:
    home = tmp_path / "home"
    backend = KindBackend(home, out=io.StringIO())
    result = backend.up(dry_run=True)
    assert not tool_stubs.exists(), "a dry run must not run any command"
    assert not home.exists(), "a dry run must not write anything"
    assert result["dry_run"] is True and result["ready"] is False
    assert result["commands"] == expected_commands(home.resolve(), backend.cluster_name)
    assert result["plan"].startswith("#!/usr/bin/env bash\n")


def test_the_plan_pins_the_versions_and_applies_the_baseline_unchanged(tmp_path: Path) -> None:
    text = render_plan(KindBackend(tmp_path).plan())
    assert "gateway-api/releases/download/v1.6.1/standard-install.yaml" in text
    assert text.count("--version v1.9.0") == 2
    # The baseline is applied as its files say, byte for byte, in name order.
    body = text.split("-f - <<'EOF'\n")[-1].split("\nEOF\n")[0]
    for path in sorted(baseline_dir().glob("*.yaml")):
        assert path.read_text().strip("\n") in body
    assert parse_manifests(body) == load_manifests(baseline_dir())
    prometheus = text.split("-f - <<'EOF'\n")[-2].split("\nEOF\n")[0]
    assert parse_manifests(prometheus) == load_manifests(ROOT / "cluster/kind/prometheus.yaml")


def test_the_plan_reuses_an_existing_cluster_and_its_ports(tmp_path: Path) -> None:
    steps = KindBackend(tmp_path).plan(cluster_exists=True, gateway_port=8082,
                                       prometheus_port=9092)
    commands = [s.command() for s in steps]
    assert not any(c.startswith("kind create cluster") for c in commands)
    assert any(c.startswith("kind export kubeconfig --name trafficlab-") for c in commands)
    config = yaml.safe_load(steps[0].text)
    mappings = config["nodes"][0]["extraPortMappings"]
    assert [(m["containerPort"], m["hostPort"]) for m in mappings] == [(30080, 8082), (30090, 9092)]


def test_the_rendered_plan_is_a_script_that_passes_shellcheck(tmp_path: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck; .ci/run does)")
    script = tmp_path / "plan.sh"
    script.write_text(render_plan(KindBackend(tmp_path / "home").plan()))
    proc = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_clusters_are_named_after_their_home(tmp_path: Path) -> None:
    a, b = KindBackend(tmp_path / "a"), KindBackend(tmp_path / "b")
    assert a.cluster_name != b.cluster_name
    assert a.cluster_name == KindBackend(tmp_path / "a").cluster_name
    assert len(a.cluster_name) == len("trafficlab-") + 8


# -- preflight ----------------------------------------------------------------------------------
def write_tool(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


def test_preflight_names_each_problem_and_what_to_do(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_tool(bin_dir, "docker", 'case "$1" in\n  version) echo 28.2.2;;\n'
                                  '  info) echo "Cannot connect to the Docker daemon at '
                                  'unix:///var/run/docker.sock." >&2; exit 1;;\nesac\n')
    write_tool(bin_dir, "kind", 'echo "kind v0.27.0 go1.23.6 linux/amd64"\n')
    write_tool(bin_dir, "kubectl", 'echo \'{"clientVersion": {"gitVersion": "v1.34.1"}}\'\n')
    monkeypatch.setenv("PATH", str(bin_dir))  # no helm
    result = preflight(gateway_port=8080, prometheus_port=9090, check_ports=False)
    assert not result.ok
    assert result.versions == {"docker": "28.2.2", "kind": "0.27.0", "kubectl": "1.34.1"}
    messages = {p.what: str(p) for p in result.problems}
    assert set(messages) == {"docker", "kind", "helm"}
    assert messages["docker"].startswith("docker: no Docker engine answers ('docker info' said: "
                                         "Cannot connect to the Docker daemon")
    assert messages["kind"] == ("kind: version 0.27.0 is older than the 0.29.0 the lab needs. "
                                "What to do: install kind v0.29.0 or newer (https://kind.sigs.k8s"
                                ".io/docs/user/quick-start/#installation).")
    assert messages["helm"].startswith("helm: helm is not on PATH. What to do: install Helm 3.8")


def test_preflight_takes_the_next_free_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tools: only the ports matter here
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = preflight(gateway_port=port, prometheus_port=port + 40)
    assert result.gateway_port != port and result.gateway_port > port
    notes = [p for p in result.problems if p.what == "gateway port"]
    assert len(notes) == 1 and not notes[0].fatal
    assert f"port {port} is in use" in notes[0].message


def test_up_stops_before_doing_anything_when_preflight_fails(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    home = tmp_path / "home"
    with pytest.raises(BackendError) as info:
        KindBackend(home, out=io.StringIO()).up()
    text = str(info.value)
    assert text.startswith("the kind lab cannot start on this machine:\n")
    for tool in ("docker", "kind", "kubectl", "helm"):
        assert f"  - {tool}: {tool} is not on PATH. What to do: install" in text
    assert "trafficlab up --backend local" in text
    assert not (home / "lab.json").exists()


def test_parse_version() -> None:
    assert parse_version("kind v0.29.0 go1.24.2 linux/amd64") == (0, 29, 0)
    assert parse_version("v3.17.3+ge4da497") == (3, 17, 3)
    assert parse_version("v1.32.4-dispatcher") == (1, 32, 4)
    assert parse_version("no digits") is None


# -- the step runner ----------------------------------------------------------------------------
def test_a_failing_step_says_which_command_failed_and_shows_its_output(tmp_path: Path) -> None:
    out = io.StringIO()
    backend = KindBackend(tmp_path, out=out)
    step = Step("Say hello", "run", ("sh", "-c", "echo hello; echo oops >&2; exit 3"))
    with pytest.raises(BackendError) as info:
        backend._run_step(step, 2, 5)
    text = str(info.value)
    assert text.startswith("step 2/5 'Say hello' failed: 'sh -c 'echo hello; echo oops >&2; "
                           "exit 3'' exited with code 3\n")
    assert "    oops" in text and "What to do:" in text
    assert "[2/5] Say hello\n      hello\n" in out.getvalue()


def test_a_piped_step_feeds_one_command_into_the_next(tmp_path: Path) -> None:
    target = tmp_path / "got.txt"
    step = Step("Pipe", "run", ("sh", "-c", f"cat > {target}"), pipe_from=("printf", "a\\nb\\n"))
    KindBackend(tmp_path, out=io.StringIO())._run_step(step, 1, 1)
    assert target.read_text() == "a\nb\n"
    failing = Step("Pipe", "run", ("cat",), pipe_from=("sh", "-c", "echo no-chart >&2; exit 4"))
    with pytest.raises(BackendError, match=r"exited with code 4\n    no-chart"):
        KindBackend(tmp_path, out=io.StringIO())._run_step(failing, 1, 1)


def test_a_write_step_writes_the_kind_config(tmp_path: Path) -> None:
    backend = KindBackend(tmp_path / "home", out=io.StringIO())
    step = backend.plan(gateway_port=18080)[0]
    backend._run_step(step, 1, 1)
    written = yaml.safe_load((tmp_path / "home" / "kind-config.yaml").read_text())
    assert written["nodes"][0]["extraPortMappings"][0]["hostPort"] == 18080
    assert written["nodes"][0]["extraPortMappings"][0]["containerPort"] == plan_mod.GATEWAY_NODE_PORT


# -- up and down with stand-in tools ------------------------------------------------------------
@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """docker, kind, kubectl and helm that answer like real ones and log each call.

    The Docker engine answers (8 GiB), no cluster exists, and ``kind create cluster`` fails
    the way it does when Docker cannot start the node.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    prelude = f'echo "$(basename "$0") $*" >> "{log}"\n'
    write_tool(bin_dir, "docker", prelude + 'case "$1" in\n  version) echo 28.2.2;;\n'
                                            '  info) echo 8589934592;;\n  build) echo built;;\n'
                                            '  *) exit 1;;\nesac\n')
    write_tool(bin_dir, "kind", prelude + 'case "$1" in\n'
                                          '  version) echo "kind v0.30.0 go1.24.6 linux/amd64";;\n'
                                          '  get) ;;\n  delete) echo "Deleting cluster";;\n'
                                          '  create) echo "ERROR: failed to create cluster: '
                                          'could not start the node" >&2; exit 1;;\nesac\n')
    write_tool(bin_dir, "kubectl", prelude + 'echo \'{"clientVersion": {"gitVersion": "v1.34.1"}}\'\n')
    write_tool(bin_dir, "helm", prelude + 'echo "v3.17.3+ge4da497"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.delenv("TRAFFICLAB_KIND_NODE_IMAGE", raising=False)
    return log


def test_up_runs_the_steps_in_order_and_a_failure_leaves_a_lab_down_can_remove(
        tmp_path: Path, fake_tools: Path) -> None:
    home = tmp_path / "home"
    out = io.StringIO()
    backend = KindBackend(home, out=out)
    name = backend.cluster_name
    with pytest.raises(BackendError) as info:
        backend.up()
    text = str(info.value)
    assert text.startswith(f"step 3/13 'Create the kind cluster {name}' failed: 'kind create "
                           f"cluster --name {name} ")
    assert "could not start the node" in text and "'trafficlab down' deletes it" in text
    calls = fake_tools.read_text().splitlines()
    # Checks first (nothing changed), then the steps in the plan's order, up to the failure.
    assert calls[-2:] == [f"docker build -f {ROOT}/taskapi/Dockerfile -t task-api:1.0 {ROOT}",
                          f"kind create cluster --name {name} --config "
                          f"{home.resolve()}/kind-config.yaml --kubeconfig "
                          f"{home.resolve()}/kubeconfig --wait 180s"]
    assert "docker info --format {{json .MemTotal}}" in calls
    assert "[1/13] Write the kind cluster configuration" in out.getvalue()
    assert "      built" in out.getvalue()  # command output is shown as it runs
    state = json.loads((home / "lab.json").read_text())
    assert state["backend"] == "kind" and state["cluster"] == name
    assert yaml.safe_load((home / "kind-config.yaml").read_text())["nodes"][0][
        "extraPortMappings"][0]["hostPort"] == state["gatewayPort"]

    backend.down()
    assert fake_tools.read_text().splitlines()[-1] == f"kind delete cluster --name {name}"
    assert not (home / "lab.json").exists() and not (home / "kind-config.yaml").exists()
