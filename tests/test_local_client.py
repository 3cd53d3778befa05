"""The local backend over its Kubernetes API: what the batch JSON API used to guarantee.

An apply is all or none (every object dry-run first), also when it creates a Namespace and
objects in it; an HTTPRoute apply returns once its generation is Programmed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trafficlab import Lab
from trafficlab._errors import LabNotRunningError, NotFoundError, ValidationError

pytestmark = pytest.mark.integration


def _team(ns: str, port: Any = 80) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": port, "targetPort": 8000}]}},
    ]


def test_a_namespace_and_what_is_in_it_apply_together(lab: Lab) -> None:
    dry = lab.apply(_team("team-dry"), dry_run=True)
    assert dry.lines == ["namespace/team-dry created (dry run)", "service/web created (dry run)"]
    assert any("not checked by the server" in w for w in dry.warnings)
    with pytest.raises(NotFoundError):
        lab.get("namespace", "team-dry")
    result = lab.apply(_team("team-a"))
    assert result.lines == ["namespace/team-a created", "service/web created"]
    assert lab.get("service", "web", namespace="team-a")["spec"]["ports"][0]["port"] == 80
    lab.delete("service", "web", namespace="team-a")
    lab.delete("namespace", "team-a")


def test_a_refused_object_takes_its_new_namespace_back(lab: Lab) -> None:
    with pytest.raises(ValidationError) as info:
        lab.apply(_team("team-b", port=70000))
    assert info.value.name == "web" and "port" in info.value.field
    with pytest.raises(NotFoundError):
        lab.get("namespace", "team-b")


def test_the_pod_total_spans_the_whole_apply_and_nothing_is_written(lab: Lab) -> None:
    """Each Deployment alone fits; together they exceed the lab's pods: none is created."""
    deployment = next(o for o in lab.get("deployment") if o["metadata"]["name"] == "task-api-v2")
    batch = []
    for i in range(7):
        obj = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": f"five-{i}", "namespace": "default"},
               "spec": {**deployment["spec"], "replicas": 5}}
        batch.append(obj)
    with pytest.raises(ValidationError, match="more than its 32"):
        lab.apply(batch)
    names = {o["metadata"]["name"] for o in lab.get("deployment")}
    assert not any(name.startswith("five-") for name in names)


def test_a_route_apply_returns_once_its_generation_is_programmed(lab: Lab) -> None:
    route = lab.get("httproute", "task-api")
    route["spec"]["rules"][0]["backendRefs"][1]["weight"] = 3
    lab.apply(route)
    served = lab.get("httproute", "task-api")
    generation = served["metadata"]["generation"]
    programmed = [c for p in served["status"]["parents"] for c in p["conditions"]
                  if c["type"] == "Programmed"]
    assert programmed and all(c["status"] == "True" and c["observedGeneration"] == generation
                              for c in programmed)


def test_no_lab_no_call(tmp_path: Path) -> None:
    idle = Lab(tmp_path / "none", backend="local")
    assert not idle.running
    assert idle.status()["ready"] is False
    with pytest.raises(LabNotRunningError, match="trafficlab up"):
        idle.get("httproute", "task-api")


def test_the_daemon_never_loads_cryptography_and_its_keys_are_private(lab: Lab) -> None:
    # Its certificates are made in a forked child: cryptography's own OpenSSL would otherwise
    # stay mapped for the daemon's life (12 MiB of the lab's 250 MB).
    import json
    import stat

    pid = json.loads((lab.home / "lab.json").read_text())["pid"]
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert "cryptography" not in maps
    for name in ("ca.key", "apiserver.key"):
        mode = stat.S_IMODE((lab.home / "pki" / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert lab.get("httproute", "task-api")["kind"] == "HTTPRoute"  # and TLS works
