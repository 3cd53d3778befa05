"""Automated rollouts: the policy file, the rule the rollout owns, its decisions, and real runs.

The lab tests run one local lab (real Envoy, Task API processes, and Prometheus when
installed) for the module, with short intervals (1-2 s) instead of the default 30 s.
Every test starts from a route with two header rules (beta users to v2, premium users to
task-api-premium) and the weighted rule v1 100 / v2 0, and checks that the header rules
come out of every rollout exactly as they went in.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from trafficlab import Lab
from trafficlab._errors import TrafficLabError
from trafficlab.cli import main
from trafficlab.monitoring.metrics import VersionMetrics
from trafficlab.monitoring.prometheus import find_prometheus
from trafficlab.monitoring.rollout import (
    Judgement,
    PolicyError,
    Rollout,
    RolloutPolicy,
    RolloutResult,
    decide,
    find_weighted_rule,
    judge,
    load_policy,
    read_events,
    read_state,
    run_rollout,
    send_command,
    weight_patch,
)
from trafficlab.traffic import send

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ROOT / "cluster" / "manifests" / "workloads"
PROMETHEUS = find_prometheus()
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="Prometheus is not installed (apt-get install prometheus; "
                               ".ci/run installs it)")


# -- the policy file -------------------------------------------------------------------------
def test_policy_file_with_every_setting(tmp_path: Path) -> None:
    path = tmp_path / "auto-rollout.yaml"
    path.write_text("""
route: shop
namespace: team-a
stable: shop-v1
canary: shop-v2
steps: [10, 50, 100]
interval: 1m30s
maxErrorRate: 2%
maxP99: 0.3s
minRequests: 50
threshold: 3
noData: hold
noDataLimit: 4
load: 25
loadPath: /tasks
pauseBeforeSteps: true
source: direct
""")
    policy = load_policy(path)
    assert policy == RolloutPolicy(
        route="shop", namespace="team-a", stable="shop-v1", canary="shop-v2", steps=(10, 50, 100),
        interval_s=90, max_error_rate=0.02, max_p99_ms=300, min_requests=50, threshold=3,
        no_data="hold", no_data_limit=4, load_rps=25, load_path="/tasks", pause_before_steps=True,
        source="direct")
    # It round-trips through its own file form.
    assert load_policy(policy.to_dict()) == policy


def test_policy_defaults_are_flagger_like() -> None:
    policy = load_policy("")
    assert (policy.steps, policy.interval_s, policy.max_error_rate, policy.max_p99_ms,
            policy.threshold, policy.no_data) == ((5, 25, 50, 100), 30, 0.01, 500, 2, "fail")
    assert load_policy({"max_error_rate": 0.05, "max-p99": 250}).max_p99_ms == 250  # bare = ms


@pytest.mark.parametrize(("doc", "field", "words"), [
    ({"maxErrorrRate": 0.1}, "maxErrorrRate", "did you mean maxErrorRate"),
    ({"steps": [5, 50, 25]}, "steps[2]", "must rise"),
    ({"steps": [0, 100]}, "steps[0]", "between 1 and 100"),
    ({"steps": "five"}, "steps[0]", "whole number"),
    ({"maxErrorRate": 5}, "maxErrorRate", "between 0 and 1"),
    ({"maxP99": "fast"}, "maxP99", "latency like 500ms"),
    ({"interval": "0s"}, "interval", "more than 0"),
    ({"interval": "500ms"}, "interval", "at least 1s"),
    ({"threshold": 0}, "threshold", "at least 1"),
    ({"noData": "maybe"}, "noData", "fail, hold"),
    ({"load": -3}, "load", "between 0 and 5000"),
    ({"canary": "Task_API"}, "canary", "Kubernetes object name"),
    ({"pauseBeforeSteps": "yes"}, "pauseBeforeSteps", "true or false"),
])
def test_policy_errors_name_the_field(doc: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(PolicyError, match=words) as info:
        load_policy(doc)
    assert info.value.field == field
    assert info.value.message.startswith(f"{field}: ")


def test_policy_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "auto-rollout.yaml"
    path.write_text("steps: [5, 25\n")
    with pytest.raises(PolicyError, match=r"auto-rollout\.yaml: policy: not valid YAML"):
        load_policy(path)
    path.write_text("- 5\n- 25\n")
    with pytest.raises(PolicyError, match=r"auto-rollout\.yaml: policy: must be a mapping"):
        load_policy(path)
    path.write_text("threshold: two\n")
    with pytest.raises(PolicyError, match=r"auto-rollout\.yaml: threshold: must be a whole number"):
        load_policy(path)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
    with pytest.raises(PolicyError, match="canary: which Service is the canary"):
        RolloutPolicy().validate()
    with pytest.raises(PolicyError, match="must differ"):
        RolloutPolicy(canary="task-api-v1").validate()


# -- the rule the rollout owns ---------------------------------------------------------------
def _ref(name: str, weight: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name, "port": 80}
    if weight is not None:
        ref["weight"] = weight
    return ref


BETA_RULE = {"matches": [{"headers": [{"name": "x-user-type", "value": "beta"}]}],
             "backendRefs": [_ref("task-api-v2")]}
PREMIUM_RULE = {"matches": [{"headers": [{"name": "x-user-tier", "value": "premium"}]}],
                "backendRefs": [_ref("task-api-premium")]}


def _route(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "task-api", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "task-api-gateway"}],
                     "rules": [copy.deepcopy(r) for r in rules]}}


def _weighted(v1: int, v2: int, **more: int) -> dict[str, Any]:
    return {"backendRefs": [_ref("task-api-v1", v1), _ref("task-api-v2", v2),
                            *[_ref(name, w) for name, w in more.items()]]}


def test_the_weighted_rule_is_the_one_listing_both_services() -> None:
    route = _route(BETA_RULE, PREMIUM_RULE, _weighted(100, 0))
    assert find_weighted_rule(route, "task-api-v1", "task-api-v2") == (2, 0, 1)
    patch = weight_patch(route, "task-api-v1", "task-api-v2", 25)
    assert patch == [
        {"op": "test", "path": "/spec/rules/2/backendRefs/0/name", "value": "task-api-v1"},
        {"op": "test", "path": "/spec/rules/2/backendRefs/1/name", "value": "task-api-v2"},
        {"op": "add", "path": "/spec/rules/2/backendRefs/0/weight", "value": 75},
        {"op": "add", "path": "/spec/rules/2/backendRefs/1/weight", "value": 25},
    ]
    with pytest.raises(TrafficLabError, match="no rule of HTTPRoute default/task-api lists both "
                                              "task-api-v1 and task-api-v3"):
        find_weighted_rule(route, "task-api-v1", "task-api-v3")
    twice = _route(_weighted(50, 50), {**_weighted(100, 0), "matches": [{"path": {"value": "/x"}}]})
    with pytest.raises(TrafficLabError, match=r"rules\[0\], rules\[1\]"):
        find_weighted_rule(twice, "task-api-v1", "task-api-v2")


# -- judgement and decisions -----------------------------------------------------------------
POLICY = RolloutPolicy(canary="task-api-v2", min_requests=20, max_error_rate=0.01, max_p99_ms=500,
                       threshold=2)


def _m(requests: float | None, error_rate: float | None = 0.0, p99: float | None = 5.0) -> VersionMetrics:
    return VersionMetrics(rps=None if requests is None else requests / 10, requests=requests,
                          error_rate=error_rate, p50_ms=p99, p99_ms=p99)


@pytest.mark.parametrize(("figures", "verdict"), [
    (_m(100), "pass"),
    (_m(100, error_rate=0.01), "pass"),  # at the limit passes
    (_m(100, error_rate=0.2), "fail"),
    (_m(100, p99=730.0), "fail"),
    (_m(19, error_rate=0.5), "no_data"),  # too few to judge, however bad they look
    (_m(0, error_rate=None, p99=None), "no_data"),  # 0 of 0 is no data, never 0 %
    (_m(None, error_rate=None, p99=None), "no_data"),
    (_m(100, error_rate=None), "no_data"),
])
def test_judge(figures: VersionMetrics, verdict: str) -> None:
    assert judge(figures, POLICY).verdict == verdict


def test_judge_with_min_requests_zero_still_needs_a_request() -> None:
    assert judge(_m(0, None, None), RolloutPolicy(canary="task-api-v2", min_requests=0)).verdict == "no_data"


def test_judgement_text_gives_the_figures() -> None:
    text = judge(_m(300, error_rate=0.2, p99=730.0), POLICY).text
    assert text == "300 requests ≥ min 20; error rate 20.00% > max 1.00%; p99 730.0 ms > max 500 ms"


def test_decisions_follow_threshold_and_no_data_policy() -> None:
    passed, failed, empty = Judgement("pass", ()), Judgement("fail", ()), Judgement("no_data", ())
    assert decide(passed, 1, 0, POLICY).action == "advance"
    first = decide(failed, 0, 0, POLICY)
    assert (first.action, first.failed_checks) == ("retry", 1)
    assert decide(failed, 1, 0, POLICY).action == "rollback"
    # noData: fail counts an empty interval as a failed check.
    assert (decide(empty, 0, 0, POLICY).action, decide(empty, 1, 0, POLICY).action) == ("retry", "rollback")
    # noData: hold does not count it, but gives up after noDataLimit intervals in a row.
    hold = RolloutPolicy(canary="task-api-v2", no_data="hold", no_data_limit=3, threshold=1)
    one = decide(empty, 0, 0, hold)
    assert (one.action, one.failed_checks, one.no_data_streak) == ("retry", 0, 1)
    assert decide(empty, 0, 1, hold).action == "retry"
    assert decide(empty, 0, 2, hold).action == "rollback"
    assert decide(passed, 0, 2, hold).no_data_streak == 0


# -- a real lab ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    the_lab = Lab(tmp_path_factory.mktemp("rollout-lab"), backend="local")
    try:
        the_lab.up(timeout=60)
        the_lab.apply(WORKLOADS / "task-api-premium.yaml")
        the_lab.apply(WORKLOADS / "task-api-v3-faulty.yaml")
        yield the_lab
    finally:
        the_lab.down()


@pytest.fixture()
def route(lab: Lab) -> Iterator[Lab]:
    """The route every test starts from: two header rules and the weighted rule v1/v2/v3."""
    lab.apply(_route(BETA_RULE, PREMIUM_RULE, _weighted(100, 0, **{"task-api-v3": 0})))
    lab.wait_programmed()
    yield lab
    rules = lab.get("httproute", "task-api")["spec"]["rules"]
    assert [_strip(r) for r in rules[:2]] == [_strip(BETA_RULE), _strip(PREMIUM_RULE)], \
        "a rollout changed a header rule"


def _strip(rule: dict[str, Any]) -> Any:
    """A rule without the defaults the store fills in (match types, weight 1, group, kind)."""
    return {"headers": [(h["name"], h["value"]) for m in rule.get("matches", [])
                        for h in m.get("headers", [])],
            "backends": [r["name"] for r in rule["backendRefs"]]}


def _weights(lab: Lab) -> dict[str, int]:
    rule = lab.get("httproute", "task-api")["spec"]["rules"][2]
    return {r["name"]: r.get("weight", 1) for r in rule["backendRefs"]}


def _served(lab: Lab) -> tuple[set[str], set[str]]:
    """Which versions answer ordinary requests, and which answer beta users."""
    lab.wait_programmed()
    plain = send(lab.url(), requests=100, concurrency=4)
    beta = send(lab.url(), requests=20, concurrency=4, headers={"x-user-type": "beta"})
    return set(plain.by_version), set(beta.by_version)


def _in_thread(fn: Callable[[], RolloutResult]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # surfaced by the test
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def _wait_for(lab: Lab, what: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(lab.home)
        if state is not None and what(state):
            return state
        time.sleep(0.05)
    raise AssertionError(f"rollout state never matched; last: {read_state(lab.home)}")


@needs_prometheus
def test_promotes_a_healthy_canary(route: Lab) -> None:
    lab = route
    # 3 s intervals: Prometheus scrapes every second and rate() needs two samples of a series
    # that the canary's first answers create.
    policy = RolloutPolicy(canary="task-api-v2", steps=(20, 60, 100), interval_s=3, load_rps=100,
                           min_requests=20)
    result = run_rollout(lab, policy)
    assert result.outcome == "promoted", result.reason
    assert result.weights == {"task-api-v1": 0, "task-api-v2": 100}
    assert _weights(lab) == {"task-api-v1": 0, "task-api-v2": 100, "task-api-v3": 0}
    assert [a["weight"] for a in result.analyses] == [20, 60, 100]
    assert all(a["source"] == "prometheus" and a["verdict"] == "pass" for a in result.analyses)
    assert result.load is not None and result.load["by_status"] == {"200": result.load["total"]}
    plain, beta = _served(lab)
    assert plain == {"v2"} and beta == {"v2"}
    # The event log explains every decision with its figures.
    events = read_events(lab.home, rollout=result.rollout)
    assert [e["event"] for e in events] == ["start", "weights", "analysis", "weights", "analysis",
                                            "weights", "analysis", "promoted"]
    analysis = events[2]
    assert analysis["decision"] == "advance" and analysis["figures"]["canary"]["requests"] >= 20
    assert "error rate 0.00% ≤ max 1.00%" in analysis["message"] and "next step 60%" in analysis["message"]
    assert read_state(lab.home)["phase"] == "promoted"  # type: ignore[index]


@needs_prometheus
def test_rolls_back_a_failing_canary_at_once(route: Lab) -> None:
    lab = route
    policy = RolloutPolicy(canary="task-api-v3", steps=(30, 60, 100), interval_s=3, load_rps=100,
                           max_error_rate=0.05, threshold=2)
    result = run_rollout(lab, policy)
    assert result.outcome == "rolled_back", result.reason
    assert "error rate" in result.reason and "threshold of 2" in result.reason
    assert result.weights == {"task-api-v1": 100, "task-api-v3": 0}
    assert _weights(lab) == {"task-api-v1": 100, "task-api-v2": 0, "task-api-v3": 0}  # v2 untouched
    assert [a["decision"] for a in result.analyses] == ["retry", "rollback"]
    assert all(a["weight"] == 30 for a in result.analyses)  # never got past the first step
    last = result.analyses[-1]
    assert last["verdict"] == "fail" and last["figures"]["canary"]["error_rate"] > 0.05
    assert [c["result"] for c in last["checks"]] == ["pass", "fail", "pass"]  # ERROR_RATE=0.3
    plain, beta = _served(lab)
    assert plain == {"v1"} and beta == {"v2"}
    assert read_events(lab.home, rollout=result.rollout)[-1]["event"] == "rolled_back"


def test_no_data_fails_by_default(route: Lab) -> None:
    # No load and nobody sending: the canary cannot be judged.
    policy = RolloutPolicy(canary="task-api-v2", steps=(50, 100), interval_s=1, threshold=2,
                           source="direct")
    result = run_rollout(route, policy)
    assert result.outcome == "rolled_back"
    assert "no data counts as a failed check (noData: fail)" in result.reason
    assert [a["verdict"] for a in result.analyses] == ["no_data", "no_data"]
    assert result.analyses[0]["figures"]["canary"]["error_rate"] is None
    assert _weights(route)["task-api-v2"] == 0


def test_no_data_hold_waits_then_gives_up(route: Lab) -> None:
    policy = RolloutPolicy(canary="task-api-v2", steps=(50, 100), interval_s=1, threshold=1,
                           no_data="hold", no_data_limit=2, source="direct")
    result = run_rollout(route, policy)
    assert result.outcome == "rolled_back"
    assert [a["decision"] for a in result.analyses] == ["retry", "rollback"]
    assert result.failed_checks == 0  # held, never counted as failures
    assert "no data for 2 intervals in a row" in result.reason


def test_direct_source_promotes_with_its_own_load(route: Lab) -> None:
    policy = RolloutPolicy(canary="task-api-v2", steps=(50, 100), interval_s=1, load_rps=80,
                           min_requests=10, source="direct")
    result = run_rollout(route, policy)
    assert result.outcome == "promoted", result.reason
    assert all(a["source"] == "direct" for a in result.analyses)
    assert _weights(route)["task-api-v2"] == 100


def test_pause_resume_promote_from_another_terminal(route: Lab) -> None:
    lab = route
    policy = RolloutPolicy(canary="task-api-v2", steps=(10, 20, 30, 100), interval_s=1, load_rps=40,
                           min_requests=1, source="direct")
    thread, out = _in_thread(lambda: run_rollout(lab, policy))
    _wait_for(lab, lambda s: s["phase"] == "progressing" and s["step"] >= 1)
    state = send_command(lab.home, "task-api", "pause")
    assert state["phase"] == "paused"
    step, weight = state["step"], state["weights"]["task-api-v2"]
    time.sleep(1.5)  # longer than an interval: a paused rollout does not move
    later = read_state(lab.home)
    assert later is not None and (later["phase"], later["step"]) == ("paused", step)
    assert _weights(lab)["task-api-v2"] == weight
    assert send_command(lab.home, "task-api", "resume")["phase"] == "progressing"
    send_command(lab.home, "task-api", "promote")
    thread.join(30)
    result = out["result"]
    assert result.outcome == "promoted" and "promoted by hand" in result.reason
    assert _weights(lab) == {"task-api-v1": 0, "task-api-v2": 100, "task-api-v3": 0}
    events = [e["event"] for e in read_events(lab.home, rollout=result.rollout)]
    assert "paused" in events and "resumed" in events
    with pytest.raises(TrafficLabError, match="no rollout of HTTPRoute default/task-api is running"):
        send_command(lab.home, "task-api", "pause")


def test_pause_before_steps_then_abort(route: Lab) -> None:
    lab = route
    policy = RolloutPolicy(canary="task-api-v2", steps=(10, 100), interval_s=1, load_rps=40,
                           min_requests=1, pause_before_steps=True, source="direct")
    thread, out = _in_thread(lambda: run_rollout(lab, policy))
    state = _wait_for(lab, lambda s: s["phase"] == "paused")
    assert state["step"] == 1 and state["weights"]["task-api-v2"] == 0  # paused before step 1
    send_command(lab.home, "task-api", "resume")
    _wait_for(lab, lambda s: s["phase"] == "paused" and s["step"] == 2)
    assert _weights(lab)["task-api-v2"] == 10
    send_command(lab.home, "task-api", "abort")
    thread.join(30)
    result = out["result"]
    assert result.outcome == "aborted" and "aborted by hand" in result.reason
    assert _weights(lab)["task-api-v2"] == 0  # all traffic back to stable


def test_a_route_changed_by_someone_else_stops_the_rollout(route: Lab) -> None:
    lab = route
    policy = RolloutPolicy(canary="task-api-v2", steps=(10, 50, 100), interval_s=2, load_rps=40,
                           min_requests=1, source="direct")
    thread, out = _in_thread(lambda: run_rollout(lab, policy))
    _wait_for(lab, lambda s: s["step"] == 1 and s["weights"]["task-api-v2"] == 10)
    lab.patch("httproute", "task-api", [{"op": "replace", "path": "/spec/rules/2/backendRefs/1/weight",
                                         "value": 70}], type="json")
    thread.join(30)
    result = out["result"]
    assert result.outcome == "aborted" and "changed by someone else" in result.reason
    assert _weights(lab)["task-api-v2"] == 70  # left as the other writer set it


def test_refuses_a_rule_whose_other_backends_get_traffic(route: Lab) -> None:
    route.apply(_route(BETA_RULE, PREMIUM_RULE, _weighted(100, 0, **{"task-api-v3": 5})))
    with pytest.raises(TrafficLabError, match=r"also sends traffic to task-api-v3 \(weight 5\)"):
        Rollout(route, RolloutPolicy(canary="task-api-v2", source="direct")).run()
    route.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "task-api-v9"},
                 "spec": {"selector": {"app": "nothing"}, "ports": [{"port": 80}]}})
    try:
        route.apply(_route(BETA_RULE, PREMIUM_RULE, _weighted(100, 0, **{"task-api-v9": 0})))
        with pytest.raises(TrafficLabError, match="Service default/task-api-v9 selects no running pod"):
            Rollout(route, RolloutPolicy(canary="task-api-v9", source="direct")).run()
    finally:
        route.delete("service", "task-api-v9")


def _cli(lab: Lab, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--home", str(lab.home), *argv])
    return code, out.getvalue(), err.getvalue()


def test_cli_rollout_with_a_policy_file_and_flags(route: Lab, tmp_path: Path) -> None:
    policy = tmp_path / "auto-rollout.yaml"
    policy.write_text("canary: task-api-v2\nsteps: [50, 100]\ninterval: 1s\nload: 60\n"
                      "minRequests: 5\nsource: direct\n")
    code, out, err = _cli(route, "rollout", "--policy", str(policy), "--max-error-rate", "0.02",
                          "-o", "json")
    doc = json.loads(out)
    assert code == 0 and doc["outcome"] == "promoted" and doc["reason"]
    assert doc["policy"]["maxErrorRate"] == 0.02 and doc["policy"]["steps"] == [50, 100]
    assert err == ""  # not a terminal, JSON asked: no progress on stderr

    route.apply(_route(BETA_RULE, PREMIUM_RULE, _weighted(100, 0, **{"task-api-v3": 0})))
    code, out, err = _cli(route, "rollout", "--canary", "task-api-v2", "--steps", "50,100",
                          "--interval", "1s", "--source", "direct")
    assert code == 1 and out.startswith("rolled_back: ")
    assert "start: rollout of task-api-v2" in err and "analysis: 50%" in err  # one line per event
    code, _, err = _cli(route, "rollout", "--canary", "task-api-v2", "--max-p99", "soon")
    assert code == 1 and "--max-p99: must be a latency" in err
    code, _, err = _cli(route, "rollout", "--abort")
    assert code == 1 and "no rollout of HTTPRoute default/task-api is running" in err
    code, out, _ = _cli(route, "rollout", "--status")
    assert code == 0 and json.loads(out)["phase"] == "rolled_back"


def test_live_view_shows_steps_weights_and_controls(lab: Lab) -> None:
    from rich.console import Console

    from trafficlab.monitoring.rollout import _View

    rollout = Rollout(lab, RolloutPolicy(canary="task-api-v2", steps=(10, 50, 100)))
    rollout.phase, rollout.step, rollout.weight, rollout.failed = "progressing", 2, 50, 1
    rollout.deadline = time.monotonic() + 12
    rollout.last_message = "10%: the canary passed"
    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None).print(_View(rollout))
    text = buffer.getvalue()
    assert "HTTPRoute default/task-api: task-api-v1 → task-api-v2   [progressing]" in text
    assert "10% 50% 100%" in text and "task-api-v1 50%  ·  task-api-v2 50%" in text
    assert "1/2 checks" in text and "s left of 30s" in text
    assert "trafficlab rollout --pause|--resume|--promote|--abort --route task-api" in text
