"""Adding a filter is its handler plus its renderer: a toy CORS filter from a test-only module
reaches the IR and the Envoy configuration, and a real Envoy takes it; without it, the same
route is refused with UnsupportedValue as the spec asks for unknown filter types."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from toys import registered

from trafficlab._errors import ProxyError
from trafficlab.controlplane.snapshot import ObjectKey, Snapshot
from trafficlab.gateway.envoy import render, validation_bootstrap
from trafficlab.gateway.filters import registered_filters
from trafficlab.gateway.ir import RouteExtension
from trafficlab.gateway.proxy import find_envoy
from trafficlab.gateway.translate import translate
from trafficlab.manifests import baseline_dir, load_manifests
from trafficlab.resources import validate

ROUTE_KEY = ObjectKey("HTTPRoute", "default", "task-api")


def _snapshot(filters: list[dict[str, Any]]) -> Snapshot:
    objects = []
    for i, obj in enumerate(load_manifests(baseline_dir())):
        if obj["kind"] == "HTTPRoute":
            obj = copy.deepcopy(obj)
            obj["spec"]["rules"][0]["filters"] = filters
        out = validate(obj)
        out["metadata"].update(uid=f"uid-{i}", generation=1,
                               creationTimestamp="2026-01-01T00:00:00Z")
        objects.append(out)
    # Bound as the runtime would: without a local port a listener is not programmed.
    return Snapshot(revision=1, objects=tuple(objects),
                    bind={("default", "task-api-gateway", 80): ("127.0.0.1", 18080)})


CORS = [{"type": "CORS", "cors": {"allowOrigins": ["https://shop.example"]}}]


@pytest.fixture
def toy() -> Iterator[ModuleType]:
    with registered("toy_filter") as module:
        yield module


def _accepted(snapshot: Snapshot) -> dict[str, Any]:
    status = translate(snapshot).statuses[ROUTE_KEY]
    return next(c for c in status["parents"][0]["conditions"] if c["type"] == "Accepted")


def test_an_unknown_filter_type_is_refused_as_the_spec_says() -> None:
    assert "CORS" not in registered_filters()
    accepted = _accepted(_snapshot(CORS))
    assert accepted["status"] == "False" and accepted["reason"] == "UnsupportedValue"
    assert "spec.rules[0].filters[0].type: CORS filters are not supported" in accepted["message"]


def test_a_registered_filter_reaches_the_ir_and_envoy(toy: ModuleType) -> None:
    snapshot = _snapshot(CORS)
    assert _accepted(snapshot)["status"] == "True"
    result = translate(snapshot)
    routes = [r for vh in result.ir.listeners[0].virtual_hosts for r in vh.routes]
    assert routes[0].extensions == (RouteExtension("CORS", (("origin", "https://shop.example"),)),)
    rendered = json.dumps(dataclasses.asdict(render(result.ir)))
    assert '"access-control-allow-origin"' in rendered and "https://shop.example" in rendered
    # Its own validation, through the same path as every filter: the field is named.
    bad = _accepted(_snapshot([{"type": "CORS", "cors": {"allowOrigins": []}}]))
    assert bad["status"] == "False" and "filters[0].cors.allowOrigins" in bad["message"]


def test_real_envoy_takes_the_registered_filter(toy: ModuleType, tmp_path: Path) -> None:
    try:
        envoy = find_envoy()
    except ProxyError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    config = tmp_path / "config.json"
    config.write_text(json.dumps(validation_bootstrap(render(translate(_snapshot(CORS)).ir))))
    done = subprocess.run([str(envoy), "--mode", "validate", "-c", str(config), "--log-level",
                           "error", "--use-dynamic-base-id"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
