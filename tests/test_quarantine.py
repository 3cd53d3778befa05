"""The safety net behind the translator: when Envoy still refuses a configuration, the routes
to blame are found (asking Envoy itself) and left out, and every other route keeps serving."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from trafficlab._errors import ProxyError
from trafficlab.controlplane.snapshot import ObjectKey, Snapshot
from trafficlab.gateway import ir
from trafficlab.gateway.evaluate import snapshot_of
from trafficlab.gateway.proxy import find_envoy
from trafficlab.gateway.quarantine import (
    envoy_validator,
    find_refused_routes,
    refused_status,
    without,
)
from trafficlab.gateway.translate import translate
from trafficlab.manifests import baseline_dir, load_manifests


def _snapshot(*names: str) -> Snapshot:
    objects: list[dict[str, Any]] = []
    for obj in load_manifests(baseline_dir()):
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        if obj["kind"] != "GatewayClass":
            meta.setdefault("namespace", "default")
        meta.update(generation=1, creationTimestamp="2024-05-01T10:00:00Z", uid=meta["name"])
        objects.append(obj)
    base = next(o for o in objects if o["kind"] == "HTTPRoute")
    for name in names:
        extra = copy.deepcopy(base)
        extra["metadata"].update(name=name, uid=name)
        extra["spec"]["hostnames"] = [f"{name}.example.com"]
        objects.append(extra)
    return snapshot_of(objects)


def _refusing(*bad: str) -> Any:
    """A stand-in for Envoy's judgement that refuses the routes of the named HTTPRoutes."""
    calls: list[int] = []

    def validate(xds: ir.Xds) -> str | None:
        calls.append(1)
        names = {r.name.split("/")[2] for li in xds.listeners for vh in li.virtual_hosts
                 for r in vh.routes}
        hit = sorted(names & set(bad))
        return f"refused {hit[0]}" if hit else None

    validate.calls = calls  # type: ignore[attr-defined]
    return validate


def test_each_route_to_blame_is_found_and_only_those() -> None:
    names = [f"r{i:02d}" for i in range(20)]
    snapshot = _snapshot(*names)
    validate = _refusing("r03", "r17")

    culprits = find_refused_routes(snapshot, validate)

    assert culprits == {ObjectKey("HTTPRoute", "default", "r03"): "refused r03",
                        ObjectKey("HTTPRoute", "default", "r17"): "refused r17"}
    assert len(validate.calls) < 25  # halving, not one validation per route


def test_a_fine_snapshot_leaves_nothing_out() -> None:
    assert find_refused_routes(_snapshot("a", "b"), _refusing()) == {}


def test_a_refusal_no_single_route_explains_leaves_nothing_out() -> None:
    def only_together(xds: ir.Xds) -> str | None:
        names = {r.name.split("/")[2] for li in xds.listeners for vh in li.virtual_hosts
                 for r in vh.routes}
        return "refused" if {"a", "b"} <= names else None

    assert find_refused_routes(_snapshot("a", "b", "c"), only_together) == {}


def test_the_left_out_route_says_why_on_every_parent() -> None:
    snapshot = _snapshot("bad")
    key = ObjectKey("HTTPRoute", "default", "bad")
    status = translate(snapshot).statuses[key]
    route = snapshot.get("HTTPRoute", "default", "bad")
    assert route is not None
    refused = refused_status(status, route, "regex 'x' RE2 program size of 104 > 100")
    (parent,) = refused["parents"]
    accepted = next(c for c in parent["conditions"] if c["type"] == "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "UnsupportedValue")
    assert "RE2 program size" in accepted["message"]
    assert parent["parentRef"] == status["parents"][0]["parentRef"]


@pytest.mark.envoy
def test_envoy_itself_is_the_judge(tmp_path: Path) -> None:
    try:
        validate = envoy_validator(find_envoy())
    except ProxyError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))

    def with_path(value: str) -> ir.Xds:
        return ir.Xds("1", listeners=(ir.HTTPListener("l", "127.0.0.1", 80, 18080, (
            ir.VirtualHost("v", ("*",), (
                ir.Route("r", ir.DirectResponse(200), path=ir.PathMatch("regex", value)),)),)),))

    assert validate(with_path("/tasks/[0-9]+")) is None
    reason = validate(with_path("("))
    assert reason is not None and "missing )" in reason


def test_without_drops_only_the_named_routes() -> None:
    snapshot = _snapshot("a", "b")
    left = without(snapshot, [ObjectKey("HTTPRoute", "default", "a")])
    assert {o["metadata"]["name"] for o in left.of_kind("HTTPRoute")} == {"task-api", "b"}
    assert len(left.objects) == len(snapshot.objects) - 1
