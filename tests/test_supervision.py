"""The lab supervises its parts: Envoy and Prometheus come back when they die, and status is
honest meanwhile (issue 12: a killed Envoy used to stay dead while status said ready)."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import eventually

from trafficlab import Lab
from trafficlab.traffic import send

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    the_lab = Lab(tmp_path_factory.mktemp("lab"), backend="local")
    try:
        the_lab.up(timeout=60)
        yield the_lab
    finally:
        the_lab.down()


def test_a_killed_envoy_is_restarted_and_serves_the_same_configuration(lab: Lab) -> None:
    before = lab.status()
    pid = before["envoy"]["pid"]
    os.kill(pid, signal.SIGKILL)

    after = eventually(lambda: (s := lab.status())["ready"] and s["envoy"]["pid"] != pid
                       and s["envoy"]["restarts"] >= 1 and s)
    assert after, lab.status()
    lab.wait_programmed()
    result = send(lab.url(), requests=50, concurrency=4)
    assert Counter(result.by_version) == Counter({"v1": 50})


def test_a_killed_prometheus_is_restarted(lab: Lab) -> None:
    url = lab.status()["prometheus"]
    if not url:
        pytest.skip("no Prometheus on this machine")
    prom = json.loads((lab.home / "pids.json").read_text())["prometheus"]
    assert "prometheus" in _cmdline(Path(f"/proc/{prom}"))
    os.kill(prom, signal.SIGKILL)

    back = eventually(lambda: (s := lab.status())["prometheus"] and s)
    assert back and back["ready"], lab.status()


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_the_data_plane_outlives_the_daemon_and_the_next_up_adopts_it(
        tmp_path: Path) -> None:
    # Issue 12: the daemon killed took Envoy, every pod and Prometheus with it (97,293 refused).
    lab = Lab(tmp_path / "lab", backend="local")
    try:
        lab.up(timeout=60)
        before = json.loads((lab.home / "pids.json").read_text())
        daemon = json.loads((lab.home / "lab.json").read_text())["pid"]
        url = lab.url()
        os.kill(daemon, signal.SIGKILL)
        assert eventually(lambda: not Path(f"/proc/{daemon}/status").exists()
                          or "zombie" in Path(f"/proc/{daemon}/status").read_text())

        served = send(url, requests=100, concurrency=4)  # no daemon: Envoy and pods serve on
        assert Counter(served.by_version) == Counter({"v1": 100})

        status = lab.up(timeout=60)
        after = json.loads((lab.home / "pids.json").read_text())
        assert status["ready"] and lab.url() == url
        assert after["envoy"] == before["envoy"]
        assert sorted(after["pods"].values()) == sorted(before["pods"].values())
        lab.apply({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                   "metadata": {"name": "task-api", "namespace": "default"},
                   "spec": {"parentRefs": [{"name": "task-api-gateway"}], "rules": [
                       {"backendRefs": [{"name": "task-api-v2", "port": 80}]}]}})
        lab.wait_programmed()
        assert Counter(send(url, requests=50, concurrency=4).by_version) == Counter({"v2": 50})
    finally:
        lab.down()
    for pid in [after["envoy"], *after["pods"].values()]:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
