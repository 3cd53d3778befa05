"""Local admission: what a Deployment may put in a local pod's process, and how many it may start.

The store runs the real admission hook (no processes); the attacks through a running lab are
in tests/hostile/test_pod_env.py.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from trafficlab import ValidationError
from trafficlab.controlplane.snapshot import ObjectKey
from trafficlab.controlplane.store import ObjectStore
from trafficlab.resources._pod_limits import (
    MAX_ENV_BYTES,
    MAX_ENV_ENTRIES,
    MAX_ENV_VALUE_BYTES,
    refused_env_name,
)
from trafficlab.workloads.pods import admit_deployment, pod_environment


def deployment(name: str = "task-api-v2", *, replicas: int = 1,
               env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    labels = {"app": "task-api", "version": name}
    container: dict[str, Any] = {"name": "task-api", "image": "task-api:1.0",
                                 "env": env if env is not None else [{"name": "VERSION",
                                                                      "value": "v2"}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [container]}}}}


@pytest.fixture()
def store() -> ObjectStore:
    return ObjectStore(admit=admit_deployment)


def test_a_plain_deployment_is_admitted(store: ObjectStore) -> None:
    store.apply([deployment(replicas=8, env=[{"name": "VERSION", "value": "v2"},
                                             {"name": "PYTHONWARNINGS", "value": "ignore"}])])
    assert store.items("Deployment")[0]["spec"]["replicas"] == 8


def test_ld_preload_is_refused_naming_the_field(store: ObjectStore) -> None:
    env = [{"name": "VERSION", "value": "v2"}, {"name": "ERROR_RATE", "value": "0"},
           {"name": "LATENCY_MS", "value": "0"}, {"name": "LD_PRELOAD", "value": "/tmp/x.so"}]
    with pytest.raises(ValidationError) as err:
        store.apply([deployment(env=env)])
    assert str(err.value) == (
        "Deployment default/task-api-v2 is invalid: spec.template.spec.containers[0].env[3].name: "
        '"LD_PRELOAD" is not allowed: names the dynamic loader or libc honour could change what '
        "the pod runs; remove it from env")
    assert store.items("Deployment") == []


@pytest.mark.parametrize("name", ["LD_LIBRARY_PATH", "LD_AUDIT", "GCONV_PATH", "GLIBC_TUNABLES",
                                  "MALLOC_CHECK_", "LOCPATH", "NLSPATH", "HOSTALIASES",
                                  "RES_OPTIONS", "TZDIR", "TMPDIR", "PATH", "HOME"])
def test_loader_libc_and_lab_names_are_refused(name: str) -> None:
    assert refused_env_name(name)


@pytest.mark.parametrize("name", ["VERSION", "POD_NAME", "PYTHONSTARTUP", "BROWSER", "LANG",
                                  "OLD_PRELOAD", "TZ"])
def test_other_names_are_left_to_the_clean_environment(name: str) -> None:
    assert refused_env_name(name) == ""


def test_replicas_are_capped_per_deployment(store: ObjectStore) -> None:
    with pytest.raises(ValidationError, match=r"spec\.replicas: 9 .*lower spec\.replicas to 8"):
        store.apply([deployment(replicas=9)])
    assert store.items("Deployment") == []


def test_replicas_are_capped_per_lab_counting_what_is_stored(store: ObjectStore) -> None:
    store.apply([deployment(f"d{i}", replicas=5) for i in range(6)])  # 30
    with pytest.raises(ValidationError, match=r"Deployment default/d6 .*35 pods in the lab"):
        store.apply([deployment("d6", replicas=5)])
    with pytest.raises(ValidationError, match="33 pods"):  # an update counts its new value
        store.apply([deployment("d0", replicas=8)])
    store.apply([deployment("d0", replicas=7)])  # 32 is fine
    assert sorted(d["metadata"]["name"] for d in store.items("Deployment")) == [
        f"d{i}" for i in range(6)]


def test_seven_deployments_of_five_in_one_apply_apply_nothing(store: ObjectStore) -> None:
    with pytest.raises(ValidationError, match=r"d6 .*35 pods"):
        store.apply([deployment(f"d{i}", replicas=5) for i in range(7)])
    assert store.items("Deployment") == []


def test_a_patch_is_admitted_like_an_apply(store: ObjectStore) -> None:
    store.apply([deployment()])
    dkey = ObjectKey("Deployment", "default", "task-api-v2")
    with pytest.raises(ValidationError, match=r"env\[1\]\.name: \"LD_AUDIT\""):
        store.patch(dkey, [{"op": "add", "path": "/spec/template/spec/containers/0/env/-",
                            "value": {"name": "LD_AUDIT", "value": "x"}}], "json")
    assert len(store.get(dkey)["spec"]["template"]["spec"]["containers"][0]["env"]) == 1


def test_env_values_and_counts_are_bounded(store: ObjectStore) -> None:
    big = "x" * (200 * 1000)
    with pytest.raises(ValidationError,
                       match=rf"env\[0\]\.value: is 200000 bytes.*\({MAX_ENV_VALUE_BYTES}\)"):
        store.apply([deployment(env=[{"name": "VERSION", "value": big}])])
    many = [{"name": f"V{i}", "value": "1"} for i in range(MAX_ENV_ENTRIES + 1)]
    with pytest.raises(ValidationError, match=r"containers\[0\]\.env: has 65 entries"):
        store.apply([deployment(env=many)])
    third = "y" * (MAX_ENV_BYTES // 3)
    with pytest.raises(ValidationError, match=rf"env: holds more than {MAX_ENV_BYTES} bytes"):
        store.apply([deployment(env=[{"name": f"V{i}", "value": third} for i in range(4)])])
    with pytest.raises(ValidationError, match="NUL"):
        store.apply([deployment(env=[{"name": "VERSION", "value": "v2\0x"}])])
    assert store.items("Deployment") == []


def test_pod_environment_holds_nothing_of_the_host(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setenv("PYTHONSTARTUP", "/tmp/evil.py")
    monkeypatch.setenv("BROWSER", "/bin/sh -c 'touch x' #%s")
    declared = {"POD_NAME": "p-1", "POD_NAMESPACE": "default", "VERSION": "v2",
                "PYTHONWARNINGS": "all:0:antigravity.x:0:0"}
    env = pod_environment(copy.deepcopy(declared), pod_name="p-1", namespace="default",
                          python="/lab/.venv/bin/python", root=tmp_path)
    assert env == {
        "VERSION": "v2", "LANG": "C.UTF-8", "HOSTNAME": "p-1", "POD_NAME": "p-1",
        "POD_NAMESPACE": "default", "PYTHONWARNINGS": "all:0:antigravity.x:0:0",
        "PATH": "/lab/.venv/bin:/usr/bin:/bin", "HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path / "tmp"), "PYTHONUNBUFFERED": "1"}


def test_pod_template_annotations_and_labels_have_kubernetes_bounds(store: ObjectStore) -> None:
    big = deployment()
    big["spec"]["template"]["metadata"]["annotations"] = {"note": "x" * (256 * 1024)}
    with pytest.raises(ValidationError, match=r"spec\.template\.metadata\.annotations: Too long"):
        store.apply([big])
    long_label = deployment()
    long_label["spec"]["template"]["metadata"]["labels"]["extra"] = "y" * 64
    with pytest.raises(ValidationError, match=r"spec\.template\.metadata\.labels.*63"):
        store.apply([long_label])
    assert store.items("Deployment") == []
