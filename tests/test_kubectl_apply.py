"""``kubectl apply --server-side`` against the local lab: managedFields, conflicts, force, prune."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubectl_helpers import kubectl, requires_kubectl

from trafficlab import Lab
from trafficlab.traffic import send

pytestmark = [pytest.mark.integration, requires_kubectl]

ROUTE = yaml.safe_load((Path(__file__).resolve().parents[1] / "cluster" / "manifests"
                        / "baseline" / "30-httproute-task-api.yaml").read_text())
GROUP = "httproute.gateway.networking.k8s.io"


def route(name: str = "task-api", weights: tuple[int, int] = (100, 0), **spec: Any) -> Any:
    obj = copy.deepcopy(ROUTE)
    obj["metadata"]["name"] = name
    for ref, weight in zip(obj["spec"]["rules"][0]["backendRefs"], weights, strict=True):
        ref["weight"] = weight
    obj["spec"].update(spec)
    return obj


def write(tmp_path: Path, obj: Any, name: str = "route.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(obj))
    return str(path)


def weights(lab: Lab, name: str = "task-api") -> list[int]:
    rule = lab.get("httproute", name)["spec"]["rules"][0]
    return [int(ref.get("weight", 1)) for ref in rule["backendRefs"]]


def managers(lab: Lab, name: str) -> dict[tuple[str, str], Any]:
    out = kubectl(lab, "get", "httproute", name, "-o", "yaml", "--show-managed-fields").stdout
    entries = yaml.safe_load(out)["metadata"].get("managedFields", [])
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in entries}


def fresh(lab: Lab, name: str) -> None:
    """Start from no such route (a new uid starts with no managers)."""
    kubectl(lab, "delete", "httproute", name, "--ignore-not-found")


def test_create_reapply_and_change_weights(lab: Lab, tmp_path: Path) -> None:
    fresh(lab, "task-api")
    path = write(tmp_path, route())
    out = kubectl(lab, "apply", "--server-side", "-f", path).stdout
    assert out.strip() == f"{GROUP}/task-api serverside-applied"
    owned = managers(lab, "task-api")
    assert list(owned) == [("kubectl", "Apply")]
    assert owned[("kubectl", "Apply")]["f:spec"] == {"f:parentRefs": {}, "f:rules": {}}
    plain = yaml.safe_load(kubectl(lab, "get", "httproute", "task-api", "-o", "yaml").stdout)
    assert "managedFields" not in plain["metadata"]  # kubectl hides them unless asked
    version = plain["metadata"]["resourceVersion"]
    again = kubectl(lab, "apply", "--server-side", "-f", path).stdout
    assert again.strip() == f"{GROUP}/task-api serverside-applied"
    assert lab.get("httproute", "task-api")["metadata"]["resourceVersion"] == version
    kubectl(lab, "apply", "--server-side", "-f", write(tmp_path, route(weights=(0, 100))))
    assert weights(lab) == [0, 100]
    lab.wait_programmed()
    result = send(lab.url(), requests=40, concurrency=4)
    assert set(result.by_version) == {"v2"}, result.by_version


def test_conflict_after_kubectl_patch_then_force(lab: Lab, tmp_path: Path) -> None:
    fresh(lab, "task-api")
    kubectl(lab, "apply", "--server-side", "-f", write(tmp_path, route()))
    ops = [{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 90},
           {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 10}]
    kubectl(lab, "patch", "httproute", "task-api", "--type", "json", "-p", json.dumps(ops))
    assert ("kubectl-patch", "Update") in managers(lab, "task-api")
    half = write(tmp_path, route(weights=(50, 50)))
    refused = kubectl(lab, "apply", "--server-side", "-f", half, check=False)
    assert refused.returncode == 1
    assert ('Apply failed with 1 conflict: conflict with "kubectl-patch" using '
            "gateway.networking.k8s.io/v1 at ") in refused.stderr, refused.stderr
    assert ": .spec.rules" in refused.stderr
    assert "--force-conflicts" in refused.stderr  # kubectl's own advice
    assert weights(lab) == [90, 10]
    forced = kubectl(lab, "apply", "--server-side", "--force-conflicts", "-f", half).stdout
    assert forced.strip() == f"{GROUP}/task-api serverside-applied"
    assert weights(lab) == [50, 50]
    owned = managers(lab, "task-api")
    assert "f:rules" in owned[("kubectl", "Apply")]["f:spec"]
    assert ("kubectl-patch", "Update") not in owned  # it owned only the rules it lost


def only_hostnames(name: str, hostnames: list[str]) -> Any:
    """A configuration of just the hostnames (what a second team might own)."""
    return {"apiVersion": ROUTE["apiVersion"], "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"hostnames": hostnames}}


def test_two_field_managers_share_conflict_and_prune(lab: Lab, tmp_path: Path) -> None:
    fresh(lab, "shared")
    first = route("shared", hostnames=["a.example"])
    first["metadata"]["labels"] = {"team": "a"}
    kubectl(lab, "apply", "--server-side", "--field-manager=alice", "-f", write(tmp_path, first))
    bob = write(tmp_path, only_hostnames("shared", ["b.example"]), "bob.yaml")
    refused = kubectl(lab, "apply", "--server-side", "--field-manager=bob", "-f", bob,
                      check=False)
    assert refused.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "alice": .spec.hostnames' in refused.stderr
    assert lab.get("httproute", "shared")["spec"]["hostnames"] == ["a.example"]
    # The same value: both own it, no conflict.
    kubectl(lab, "apply", "--server-side", "--field-manager=bob", "-f",
            write(tmp_path, only_hostnames("shared", ["a.example"]), "bob.yaml"))
    assert set(managers(lab, "shared")) == {("alice", "Apply"), ("bob", "Apply")}
    # Alice drops her label and hostnames: the label goes (only she owned it), the hostnames
    # stay (Bob owns them too).
    kubectl(lab, "apply", "--server-side", "--field-manager=alice", "-f",
            write(tmp_path, route("shared")))
    stored = lab.get("httproute", "shared")
    assert "team" not in stored["metadata"].get("labels", {})
    assert stored["spec"]["hostnames"] == ["a.example"]
    # Bob drops them as well: now nobody owns them and they are removed.
    nothing = {k: v for k, v in only_hostnames("shared", []).items() if k != "spec"}
    kubectl(lab, "apply", "--server-side", "--field-manager=bob", "-f",
            write(tmp_path, nothing, "bob.yaml"))
    assert "hostnames" not in lab.get("httproute", "shared")["spec"]
    assert set(managers(lab, "shared")) == {("alice", "Apply")}
    kubectl(lab, "delete", "httproute", "shared")


def test_server_dry_run_stores_nothing(lab: Lab, tmp_path: Path) -> None:
    fresh(lab, "task-api")
    kubectl(lab, "apply", "--server-side", "-f", write(tmp_path, route()))
    # A write returns once stored; the controller's status follows. Read the version after it.
    before = lab.wait_programmed("task-api")["metadata"]["resourceVersion"]
    out = kubectl(lab, "apply", "--server-side", "--dry-run=server", "-o", "yaml", "-f",
                  write(tmp_path, route(weights=(0, 100)))).stdout
    answered = yaml.safe_load(out)
    assert [r["weight"] for r in answered["spec"]["rules"][0]["backendRefs"]] == [0, 100]
    assert weights(lab) == [100, 0]
    assert lab.get("httproute", "task-api")["metadata"]["resourceVersion"] == before
    fresh(lab, "dry")
    kubectl(lab, "apply", "--server-side", "--dry-run=server", "-f",
            write(tmp_path, route("dry")))
    assert kubectl(lab, "get", "httproute", "dry", check=False).returncode == 1


def test_client_side_then_server_side_apply(lab: Lab, tmp_path: Path) -> None:
    # As on a cluster: the client-side manager owns the atomic lists, defaulted on create.
    fresh(lab, "task-api")
    path = write(tmp_path, route())
    kubectl(lab, "apply", "-f", path)
    assert ("kubectl-client-side-apply", "Update") in managers(lab, "task-api")
    refused = kubectl(lab, "apply", "--server-side", "-f", path, check=False)
    assert refused.returncode == 1
    assert "Apply failed with 2 conflicts" in refused.stderr, refused.stderr
    assert "- .spec.parentRefs" in refused.stderr and "- .spec.rules" in refused.stderr
    forced = kubectl(lab, "apply", "--server-side", "--force-conflicts", "-f", path).stdout
    assert forced.strip() == f"{GROUP}/task-api serverside-applied"
    assert ("kubectl", "Apply") in managers(lab, "task-api")
    kubectl(lab, "apply", "--server-side", "-f", write(tmp_path, route(weights=(0, 100))))
    assert weights(lab) == [0, 100]


def test_invalid_server_side_apply_changes_nothing(lab: Lab, tmp_path: Path) -> None:
    fresh(lab, "task-api")
    kubectl(lab, "apply", "--server-side", "-f", write(tmp_path, route()))
    # A write returns once stored; the controller's status follows. Read the version after it.
    before = lab.wait_programmed("task-api")["metadata"]["resourceVersion"]
    bad = kubectl(lab, "apply", "--server-side", "-f",
                  write(tmp_path, route(weights=(1000001, 0))), check=False)
    assert bad.returncode == 1
    assert 'The HTTPRoute "task-api" is invalid' in bad.stderr, bad.stderr
    assert lab.get("httproute", "task-api")["metadata"]["resourceVersion"] == before
    assert list(managers(lab, "task-api")) == [("kubectl", "Apply")]


V2_DEPLOYMENT = next(d for d in yaml.safe_load_all(
    (Path(__file__).resolve().parents[1] / "cluster" / "manifests" / "baseline"
     / "21-task-api-v2.yaml").read_text()) if d["kind"] == "Deployment")


def test_deployment_env_is_owned_by_name(lab: Lab, tmp_path: Path) -> None:
    # Built-ins: containers and env are lists keyed by name, so two managers can each own
    # one variable of the same container.
    kubectl(lab, "apply", "--server-side", "--force-conflicts", "-f",
            write(tmp_path, V2_DEPLOYMENT, "deploy.yaml"))
    extra = {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "task-api-v2", "namespace": "default"},
             "spec": {"template": {"spec": {"containers": [
                 {"name": "task-api", "env": [{"name": "EXTRA", "value": "1"}]}]}}}}
    kubectl(lab, "apply", "--server-side", "--field-manager=ops", "-f",
            write(tmp_path, extra, "extra.yaml"))
    out = kubectl(lab, "get", "deployment", "task-api-v2", "-o", "yaml",
                  "--show-managed-fields").stdout
    deploy = yaml.safe_load(out)
    env = deploy["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["VERSION", "POD_NAME", "EXTRA"]
    ops = next(e for e in deploy["metadata"]["managedFields"] if e["manager"] == "ops")
    container = ops["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert container['k:{"name":"task-api"}']["f:env"] == {
        'k:{"name":"EXTRA"}': {".": {}, "f:name": {}, "f:value": {}}}
    mine = next(e for e in deploy["metadata"]["managedFields"] if e["manager"] == "kubectl")
    ports = mine["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"][
        'k:{"name":"task-api"}']["f:ports"]
    assert list(ports) == ['k:{"containerPort":8000,"protocol":"TCP"}']
    # ops drops its variable: it goes; the rest of the container stays.
    extra["spec"]["template"]["spec"]["containers"][0]["env"] = []
    kubectl(lab, "apply", "--server-side", "--field-manager=ops", "-f",
            write(tmp_path, extra, "extra.yaml"))
    env = lab.get("deployment", "task-api-v2")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["VERSION", "POD_NAME"]


def test_the_kubernetes_client_applies_server_side(lab: Lab) -> None:
    from kubernetes import client, config

    fresh(lab, "py-route")
    api = config.new_client_from_config(config_file=str(lab.home / "kubeconfig"))
    try:
        custom = client.CustomObjectsApi(api)
        args = ("gateway.networking.k8s.io", "v1", "default", "httproutes", "py-route")
        body = route("py-route", hostnames=["py.example"])
        # A create answers 201, which this client method does not decode (None, as on a
        # cluster); a read shows the manager.
        custom.patch_namespaced_custom_object(
            *args, body, field_manager="notebook", force=True,
            _content_type="application/apply-patch+yaml")
        made = custom.get_namespaced_custom_object(*args)
        assert made["metadata"]["managedFields"][0]["manager"] == "notebook"
        other = only_hostnames("py-route", ["elsewhere.example"])
        with pytest.raises(client.ApiException) as conflict:
            custom.patch_namespaced_custom_object(
                *args, other, field_manager="grader",
                _content_type="application/apply-patch+yaml")
        assert conflict.value.status == 409
        causes = json.loads(conflict.value.body)["details"]["causes"]
        assert causes == [{"type": "FieldManagerConflict", "message": 'conflict with "notebook"',
                           "field": ".spec.hostnames"}]
    finally:
        api.close()
        fresh(lab, "py-route")


def _raw_patch(lab: Lab, name: str, patch: Any) -> int:
    """A merge patch straight to the API; its status code."""
    import ssl
    import urllib.error
    import urllib.request

    config = yaml.safe_load((lab.home / "kubeconfig").read_text())
    server = config["clusters"][0]["cluster"]["server"]
    context = ssl.create_default_context(cafile=str(lab.home / "pki" / "ca.crt"))
    request = urllib.request.Request(
        f"{server}/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/{name}",
        data=json.dumps(patch).encode(), method="PATCH",
        headers={"Authorization": f"Bearer {config['users'][0]['user']['token']}",
                 "Content-Type": "application/merge-patch+json"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_two_writes_with_one_resource_version_one_wins(lab: Lab, tmp_path: Path) -> None:
    # Both carry the version they read: whichever is stored first makes the other stale.
    from concurrent.futures import ThreadPoolExecutor

    fresh(lab, "raced")
    kubectl(lab, "apply", "--server-side", "-f", write(tmp_path, route("raced")))
    with ThreadPoolExecutor(max_workers=2) as pool:
        for round_ in range(8):
            # After the controller's status write for the last round, which moves the version.
            version = lab.wait_programmed("raced")["metadata"]["resourceVersion"]
            patches = [{"metadata": {"resourceVersion": version},
                        "spec": {"hostnames": [f"{who}{round_}.example"]}} for who in "ab"]
            codes = list(pool.map(lambda p: _raw_patch(lab, "raced", p), patches))
            assert sorted(codes) == [200, 409], (round_, codes)
            winner = "ab"[codes.index(200)]
            assert lab.get("httproute", "raced")["spec"]["hostnames"] == [
                f"{winner}{round_}.example"]
    fresh(lab, "raced")
