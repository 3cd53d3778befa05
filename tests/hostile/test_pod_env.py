"""Pods are not the host: a Deployment's env, or the grader's own, runs no code on the machine.

The attack: ``PYTHONWARNINGS=all:0:antigravity.x:0:0`` makes any Python that reads it import
``antigravity``, which opens a web browser through ``$BROWSER``, here a shell command that
touches a marker file. One real lab is started with the hostile variables in the environment of
the process that starts it (as a grader's shell could hold them), and a submission-shaped
Deployment carries its own; no marker may appear, the pod must still serve, and what the
lab's bounds refuse must leave the lab as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trafficlab import Lab, NotFoundError, ValidationError
from trafficlab.course.labs import wait_pods
from trafficlab.traffic import send

pytestmark = pytest.mark.integration

TRIGGER = "all:0:antigravity.x:0:0"


def browser(marker: Path) -> str:
    """A ``$BROWSER`` that runs a shell command: webbrowser splits it and fills in ``%s``."""
    return f"/bin/sh -c 'touch {marker}' #%s"


def task_api_v2(env: list[dict[str, Any]], *, name: str = "task-api-v2",
                replicas: int = 1) -> dict[str, Any]:
    labels = {"app": "task-api", "version": "v2"} if name == "task-api-v2" else {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{
                "name": "task-api", "image": "task-api:1.0",
                "ports": [{"name": "http", "containerPort": 8000}],
                "env": [{"name": "VERSION", "value": "v2"},
                        {"name": "POD_NAME",
                         "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        *env]}]}}},
    }


ROUTE_V2 = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "task-api", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "task-api-gateway"}],
                     "rules": [{"backendRefs": [{"name": "task-api-v2", "port": 80}]}]}}


@pytest.fixture(scope="module")
def markers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("markers")
    return {"grader": root / "grader-env-ran", "pod": root / "pod-env-ran",
            "control": root / "control-ran"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, markers: dict[str, Path]) -> Iterator[Lab]:
    hostile = {"PYTHONWARNINGS": TRIGGER, "BROWSER": browser(markers["grader"]),
               "PYTHONSTARTUP": str(tmp_path_factory.mktemp("startup") / "evil.py")}
    Path(hostile["PYTHONSTARTUP"]).write_text(
        f"open({str(markers['grader'])!r}, 'w').close()\n")
    saved = {k: os.environ.get(k) for k in hostile}
    os.environ.update(hostile)
    the_lab = Lab(tmp_path_factory.mktemp("lab"), backend="local")
    try:
        try:
            the_lab.up(timeout=60)
        finally:
            for key, value in saved.items():  # the rest of the test process stays clean
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        yield the_lab
    finally:
        the_lab.down()


def settle() -> None:
    """webbrowser runs $BROWSER in the background: give a shell that was started time to run."""
    time.sleep(1.0)


def test_the_payload_is_live(markers: dict[str, Path]) -> None:
    """Control: the same variables do run the command in a Python started the ordinary way."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": TRIGGER,
           "BROWSER": browser(markers["control"])}
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True, capture_output=True,
                   timeout=60)
    settle()
    assert markers["control"].exists()


def test_a_hostile_deployment_env_serves_and_runs_nothing(lab: Lab,
                                                          markers: dict[str, Path]) -> None:
    lab.apply([task_api_v2([{"name": "PYTHONWARNINGS", "value": TRIGGER},
                            {"name": "BROWSER", "value": browser(markers["pod"])}]), ROUTE_V2])
    wait_pods(lab, timeout=60)
    lab.wait_programmed()
    result = send(lab.url(), requests=50, concurrency=4)
    assert Counter(result.by_version) == Counter({"v2": 50})
    settle()
    assert not markers["pod"].exists()


def test_pods_hold_only_their_own_environment(lab: Lab) -> None:
    wait_pods(lab, timeout=60)
    for pod in lab.get("pods"):
        pid = pod["status"]["pid"]
        raw = Path(f"/proc/{pid}/environ").read_bytes()
        names = {entry.split(b"=", 1)[0].decode() for entry in raw.split(b"\0") if entry}
        declared = {e["name"] for e in pod["spec"]["containers"][0]["env"]}
        assert names - declared == {"PATH", "LANG", "HOSTNAME", "HOME", "TMPDIR",
                                    "PYTHONUNBUFFERED"}, pod["metadata"]["name"]
        assert "PYTHONSTARTUP" not in names
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1] == b"-I"  # the interpreter reads no PYTHON* variable


def test_the_graders_environment_runs_nothing(lab: Lab, markers: dict[str, Path]) -> None:
    wait_pods(lab, timeout=60)
    settle()
    assert not markers["grader"].exists(), (
        "a process of the lab ran the grader's $BROWSER: something in the lab starts Python "
        "with the caller's environment")


def test_ld_preload_is_refused_and_nothing_is_applied(lab: Lab) -> None:
    before = lab.get("deployment", "task-api-v2")
    with pytest.raises(ValidationError) as err:
        lab.apply([task_api_v2([{"name": "LD_PRELOAD", "value": "/tmp/evil.so"}],
                               name="preloaded"), ROUTE_V2])
    assert ('spec.template.spec.containers[0].env[2].name: "LD_PRELOAD" is not allowed'
            in str(err.value))
    assert "Deployment default/preloaded" in str(err.value)
    with pytest.raises(NotFoundError):
        lab.get("deployment", "preloaded")
    assert lab.get("deployment", "task-api-v2")["metadata"]["resourceVersion"] == (
        before["metadata"]["resourceVersion"])


def test_replica_and_size_bounds_are_refused(lab: Lab) -> None:
    with pytest.raises(ValidationError, match=r"spec\.replicas: 9 .*8 or fewer"):
        lab.apply(task_api_v2([], name="nine", replicas=9))
    with pytest.raises(ValidationError, match=r"pods in the lab, more than its 32"):
        lab.apply([task_api_v2([], name=f"five-{i}", replicas=5) for i in range(7)])
    with pytest.raises(ValidationError, match=r"env\[2\]\.value: is 200000 bytes"):
        lab.apply(task_api_v2([{"name": "NOTE", "value": "x" * 200_000}], name="big"))
    names = {d["metadata"]["name"] for d in lab.get("deployment")}
    assert names == {"task-api-v1", "task-api-v2"}
    assert len(lab.get("pods")) == 2
