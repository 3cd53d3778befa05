"""Writes return once stored; the controller follows, serving every waiting write at once.

What a client sees in between is honest: a changed route says Programmed=False (Pending) at
its new generation, so neither ``kubectl wait`` nor ``trafficlab apply`` mistakes the old
generation's Programmed=True for the new one; and the lab's reconciled barrier answers once
everything stored before it is served.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trafficlab.controlplane.controller import Controller
from trafficlab.controlplane.snapshot import ObjectKey
from trafficlab.controlplane.status import PENDING, mark_pending
from trafficlab.controlplane.store import ObjectStore
from trafficlab.manifests import baseline_dir, load_manifests

Obj = dict[str, Any]
KEY = ObjectKey("HTTPRoute", "default", "task-api")


def route(name: str = "task-api", v2: int = 0) -> Obj:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"parentRefs": [{"name": "task-api-gateway"}],
                     "rules": [{"backendRefs": [
                         {"name": "task-api-v1", "port": 80, "weight": 100 - v2},
                         {"name": "task-api-v2", "port": 80, "weight": v2}]}]}}


SERVED = {"parents": [{
    "parentRef": {"name": "task-api-gateway"},
    "controllerName": "trafficlab.dev/gateway-controller",
    "conditions": [
        {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
         "observedGeneration": 1, "lastTransitionTime": "2026-01-01T00:00:00Z"},
        {"type": "Programmed", "status": "True", "reason": "Programmed", "message": "",
         "observedGeneration": 1, "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]}


def conditions(obj: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in obj["status"]["parents"][0]["conditions"]}


def test_a_spec_change_makes_programmed_pending_at_the_new_generation() -> None:
    store = ObjectStore(pending=mark_pending)
    store.apply([route()])
    store.write_statuses({KEY: copy.deepcopy(SERVED)})

    store.apply([route(v2=5)])

    stored = store.get(KEY)
    assert stored["metadata"]["generation"] == 2
    programmed = conditions(stored)["Programmed"]
    assert (programmed["status"], programmed["reason"], programmed["observedGeneration"]) == (
        "False", PENDING, 2)
    assert "generation 2" in programmed["message"]
    # What was observed stays at the generation it was observed for.
    assert conditions(stored)["Accepted"]["observedGeneration"] == 1


def test_a_metadata_only_change_keeps_the_served_status() -> None:
    store = ObjectStore(pending=mark_pending)
    store.apply([route()])
    store.write_statuses({KEY: copy.deepcopy(SERVED)})
    store.patch(KEY, {"metadata": {"labels": {"team": "a"}}}, "merge")
    assert store.get(KEY)["metadata"]["generation"] == 1
    assert conditions(store.get(KEY))["Programmed"]["status"] == "True"


def test_other_controllers_parents_are_not_marked() -> None:
    theirs = copy.deepcopy(SERVED["parents"][0])
    theirs["controllerName"] = "example.com/other"
    obj = {**route(), "metadata": {**route()["metadata"], "generation": 2},
           "status": {"parents": [theirs]}}
    marked = mark_pending(obj, "2026-01-02T00:00:00Z")
    assert marked is not None
    assert marked["parents"][0]["conditions"] == theirs["conditions"]


def test_a_gateway_change_makes_its_programmed_pending() -> None:
    gateway = {"kind": "Gateway", "metadata": {"name": "g", "generation": 3}, "status": {
        "conditions": [{"type": "Programmed", "status": "True", "reason": "Programmed",
                        "message": "", "observedGeneration": 2}],
        "listeners": [{"name": "http", "conditions": [
            {"type": "Programmed", "status": "True", "reason": "Programmed", "message": "",
             "observedGeneration": 2}]}]}}
    marked = mark_pending(gateway, "2026-01-02T00:00:00Z")
    assert marked is not None
    top = marked["conditions"][0]
    listener = marked["listeners"][0]["conditions"][0]
    assert (top["status"], top["reason"], top["observedGeneration"]) == ("False", PENDING, 3)
    assert (listener["status"], listener["reason"]) == ("False", PENDING)


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    """A real controller (real Envoy, real pods) in this process, without Prometheus."""
    home = Path(tmp_path_factory.mktemp("async")) / "lab"
    home.mkdir(mode=0o700)
    ctl = Controller(home)
    ctl.prometheus = None  # not what this module is about
    ctl.start()
    try:
        ctl.apply(load_manifests(baseline_dir()))
        assert ctl.wait_reconciled(60)
        yield ctl
    finally:
        ctl.stop()


def test_writes_made_while_the_controller_works_are_served_by_one_reconcile(
        controller: Controller) -> None:
    # Hold the reconcile thread, as a long reconcile would, while 30 writes arrive.
    busy, release = threading.Event(), threading.Event()

    def long_reconcile() -> None:
        busy.set()
        release.wait(30)

    controller._worker.submit(long_reconcile)
    assert busy.wait(10)
    before = controller.reconciles
    for i in range(30):
        controller.apply([route(f"burst-{i:02d}")])
    assert not controller.wait_reconciled(0)  # stored, not yet served
    release.set()

    assert controller.wait_reconciled(60)
    assert controller.reconciles - before == 1
    for i in range(30):
        stored = controller.store.get(ObjectKey("HTTPRoute", "default", f"burst-{i:02d}"))
        assert conditions(stored)["Programmed"]["status"] == "True", stored["status"]
    controller.delete([ObjectKey("HTTPRoute", "default", f"burst-{i:02d}") for i in range(30)])
    assert controller.wait_reconciled(60)


def test_a_write_returns_before_the_reconcile_and_says_pending(controller: Controller) -> None:
    controller.apply([route("pending-demo")])
    assert controller.wait_reconciled(60)
    busy, release = threading.Event(), threading.Event()
    controller._worker.submit(lambda: (busy.set(), release.wait(30)))
    assert busy.wait(10)
    try:
        controller.apply([route("pending-demo", v2=40)])
        stored = controller.store.get(ObjectKey("HTTPRoute", "default", "pending-demo"))
        programmed = conditions(stored)["Programmed"]
        assert (programmed["status"], programmed["reason"]) == ("False", PENDING)
    finally:
        release.set()
    assert controller.wait_reconciled(60)
    stored = controller.store.get(ObjectKey("HTTPRoute", "default", "pending-demo"))
    programmed = conditions(stored)["Programmed"]
    assert (programmed["status"], programmed["observedGeneration"]) == ("True", 2)
    controller.delete([ObjectKey("HTTPRoute", "default", "pending-demo")])
    assert controller.wait_reconciled(60)


def test_a_failed_reconcile_is_said_at_once_and_tried_again(
        controller: Controller, monkeypatch: pytest.MonkeyPatch) -> None:
    # A bug in the pipeline (not bad input, which becomes status) must not leave writers
    # waiting out their timeout: the barrier says so, status says so, and it is retried.
    from trafficlab.controlplane import controller as controller_module

    real = controller_module.translate
    monkeypatch.setattr(controller_module, "_RETRY_FAILED_S", 0.2)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected translator bug")

    monkeypatch.setattr(controller_module, "translate", broken)
    controller.apply([route("failing-demo")])
    problem = controller.serve_barrier(30)
    assert problem is not None and problem.failed, problem
    assert "injected translator bug" in problem.reason and "daemon.log" in problem.reason
    assert controller.reconcile_failure is not None
    from trafficlab.controlplane.daemon import local_status

    said = local_status(controller)
    assert not said["ready"]
    assert any("reconcile failed" in p and "injected" in p for p in said["problems"]), said

    monkeypatch.setattr(controller_module, "translate", real)
    deadline = time.monotonic() + 30
    while controller.serve_barrier(1.0) is not None:  # until the supervisor's retry serves it
        assert time.monotonic() < deadline, controller.reconcile_failure
        time.sleep(0.1)
    assert controller.reconcile_failure is None
    stored = controller.store.get(ObjectKey("HTTPRoute", "default", "failing-demo"))
    assert conditions(stored)["Programmed"]["status"] == "True"
    controller.delete([ObjectKey("HTTPRoute", "default", "failing-demo")])
    assert controller.wait_reconciled(60)
