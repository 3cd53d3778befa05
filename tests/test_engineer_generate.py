"""The generator (``trafficlab generate``): valid, minimal routes with the commands that operate them.

Every generated route must pass the project's validation and the reviewer without a single
finding; the weights must be the ones asked for; the stages of a progressive canary must differ
only in weights; and every generated patch command must do, on a copy of the route, what its
title says (checked with the command reviewer).
"""

from __future__ import annotations

import copy
import shlex
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from trafficlab.cli import main
from trafficlab.engineer.facts import LabFacts, baseline_facts
from trafficlab.engineer.generate import (
    GENERATE_KINDS,
    GenerateError,
    GenerateOptions,
    generate,
    parse_headers,
    parse_percent,
    parse_weights,
    weights_for_percent,
)
from trafficlab.engineer.review import review_objects
from trafficlab.engineer.review_command import review_command
from trafficlab.resources import validate

VARIANTS: list[tuple[str, GenerateOptions]] = [
    *((kind, GenerateOptions()) for kind in GENERATE_KINDS),
    ("canary", GenerateOptions(percent=Decimal(25))),
    ("canary", GenerateOptions(weights=(9, 1))),
    ("canary", GenerateOptions(percent=Decimal("12.5"), path="/tasks")),
    ("progressive", GenerateOptions(stages=(Decimal(5), Decimal(50), Decimal(100)), stage=2)),
    ("blue-green", GenerateOptions(active="green")),
    ("ab", GenerateOptions(headers=(("x-user-type", "beta"), ("x-user-tier", "premium")))),
    ("ab", GenerateOptions(path="/tasks", canary="task-api-green")),
    ("premium-canary", GenerateOptions(percent=Decimal(20), path="/tasks")),
    ("mirror", GenerateOptions(percent=Decimal(50))),
    ("canary", GenerateOptions(name="web", section=None, stable="task-api-blue",
                               canary="task-api-green")),
]


def ids(item: tuple[str, GenerateOptions]) -> str:
    kind, o = item
    changed = {k: v for k, v in o.__dict__.items() if v != GenerateOptions().__dict__[k]}
    return kind + ("" if not changed else " " + ",".join(f"{k}={v}" for k, v in changed.items()))


@pytest.mark.parametrize("variant", VARIANTS, ids=ids)
def test_every_generated_route_validates_and_reviews_clean(variant: tuple[str, GenerateOptions]) -> None:
    kind, options = variant
    result = generate(kind, options)
    routes = [result.route, *(s.route for s in result.stages)]
    lab = baseline_facts()
    if options.name != "task-api":
        # A second route ties with the lab's task-api and loses (older route first): the
        # generator says to delete task-api first; review it as done.
        assert any("delete httproute task-api" in " ".join(s.kubectl) for s in result.steps)
        lab = LabFacts(tuple(o for o in lab.objects if o["kind"] != "HTTPRoute"), "no route",
                       False, lab.workload_files)
    for route in routes:
        validate(copy.deepcopy(route))
        findings = review_objects([("generated", route)], lab).findings
        assert findings == [], [f"{f.code} {f.field}: {f.problem}" for f in findings]
    # The printed YAML (comments and all) is the route, whatever the output form.
    assert yaml.safe_load(result.text("yaml")) == result.route
    assert yaml.safe_load(result.text("all")) == result.route
    assert result.text("yaml").startswith("# ")
    assert result.expectations and all(
        abs(sum(e.shares.values()) - 1.0) < 1e-9 for e in result.expectations)


def test_the_bare_canary_is_ten_percent_to_v2() -> None:
    result = generate("canary")
    assert result.route["metadata"] == {"name": "task-api", "namespace": "default"}
    assert result.route["spec"]["parentRefs"] == [{"name": "task-api-gateway", "sectionName": "http"}]
    rules = result.route["spec"]["rules"]
    assert rules == [{"backendRefs": [{"name": "task-api-v1", "port": 80, "weight": 90},
                                      {"name": "task-api-v2", "port": 80, "weight": 10}]}]
    assert result.expectations[0].shares == {"task-api-v1": 0.9, "task-api-v2": 0.1}


def split_weights(kind: str, options: GenerateOptions, rule: int = 0) -> list[int]:
    return [b["weight"] for b in generate(kind, options).route["spec"]["rules"][rule]["backendRefs"]]


def test_percent_becomes_weights_and_weights_are_kept_as_given() -> None:
    assert split_weights("canary", GenerateOptions(percent=parse_percent("10"))) == [90, 10]
    assert split_weights("canary", GenerateOptions(percent=parse_percent("10%"))) == [90, 10]
    assert split_weights("canary", GenerateOptions(percent=parse_percent("12.5"))) == [875, 125]
    assert split_weights("canary", GenerateOptions(percent=parse_percent("0"))) == [100, 0]
    assert split_weights("canary", GenerateOptions(weights=parse_weights("9:1"))) == [9, 1]
    assert split_weights("canary", GenerateOptions(weights=parse_weights("900/100"))) == [900, 100]
    assert split_weights("premium-canary", GenerateOptions(percent=Decimal(30)), rule=1) == [70, 30]
    assert weights_for_percent(Decimal("33.33")) == (6667, 3333)
    assert split_weights("rollback", GenerateOptions()) == [100, 0]


@pytest.mark.parametrize("bad", [
    lambda: parse_percent("101"), lambda: parse_percent("ten"), lambda: parse_percent("1.00001"),
    lambda: parse_weights("0:0"), lambda: parse_weights("9:1:1"), lambda: parse_weights("a:b"),
    lambda: parse_headers(["x-user-type"]),
    lambda: generate("canary", GenerateOptions(percent=Decimal(10), weights=(9, 1))),
    lambda: generate("canary", GenerateOptions(headers=(("x-user-type", "beta"),))),
    lambda: generate("canary", GenerateOptions(stage=2)),
    lambda: generate("ab", GenerateOptions(percent=Decimal(10))),
    lambda: generate("rollback", GenerateOptions(percent=Decimal(10))),
    lambda: generate("mirror", GenerateOptions(percent=Decimal("2.5"))),
    lambda: generate("shadow"),
])
def test_options_that_describe_no_route_are_refused(bad: Any) -> None:
    with pytest.raises(GenerateError):
        bad()


def without_weights(route: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(route)
    for rule in out["spec"]["rules"]:
        for ref in rule.get("backendRefs", []):
            ref.pop("weight", None)
    return out


@pytest.mark.parametrize("kind,options", [
    ("progressive", GenerateOptions()),
    ("canary", GenerateOptions(stages=(Decimal(1), Decimal("12.5"), Decimal(100)), path="/tasks")),
    ("premium-canary", GenerateOptions(stages=(Decimal(10), Decimal(50)))),
])
def test_stages_differ_only_in_weights(kind: str, options: GenerateOptions) -> None:
    result = generate(kind, options)
    assert len(result.stages) == len(options.stages or (1, 2, 3, 4))
    first = without_weights(result.stages[0].route)
    for stage in result.stages[1:]:
        assert without_weights(stage.route) == first
    weights = [s.weights for s in result.stages]
    assert len(set(weights)) == len(weights)
    assert [s.weights for s in generate("progressive").stages] == [(90, 10), (75, 25), (50, 50),
                                                                   (0, 100)]
    files = result.stage_files()
    assert list(files) == [f"{kind}-stage-{s.number}.yaml" for s in result.stages]
    assert all(yaml.safe_load(text) == s.route for text, s in zip(files.values(), result.stages,
                                                                  strict=True))


def test_premium_canary_explains_that_precedence_comes_from_the_match() -> None:
    result = generate("premium-canary")
    text = " ".join(result.description)
    assert "not from the order of the rules" in text and "header" in text
    rules = result.route["spec"]["rules"]
    assert rules[0]["matches"] == [{"headers": [{"name": "x-user-tier", "value": "premium"}]}]
    assert rules[0]["backendRefs"] == [{"name": "task-api-v1", "port": 80}]
    assert [e.shares for e in result.expectations] == [
        {"task-api-v1": 1.0}, {"task-api-v1": 0.9, "task-api-v2": 0.1}]


def facts_with(route: dict[str, Any]) -> LabFacts:
    base = baseline_facts()
    kept = tuple(o for o in base.objects if o["kind"] != "HTTPRoute")
    return LabFacts((*kept, copy.deepcopy(route)), "a lab serving the generated route",
                    False, base.workload_files)


def shares_after(review: Any) -> list[dict[str, float]]:
    return [{b["name"]: b["percent"] for b in rule["backends"]}
            for rule in review.changes[0].rules("after")]


@pytest.mark.parametrize("kind", GENERATE_KINDS)
def test_every_generated_command_does_what_its_title_says(kind: str) -> None:
    result = generate(kind)
    lab = facts_with(result.route)
    assert result.steps, "every kind comes with commands"
    for step in result.steps:
        commands = [*step.kubectl, *step.trafficlab]
        if any(" --dry-run=client" in c for c in commands):
            assert any("--dry-run=client" in c for c in step.kubectl)  # check first, then do
        for command in commands:
            if " patch " not in command:
                continue
            review = review_command(command, lab)
            assert review.accepted, (step.title, review.render())
            assert not review.has_errors, review.render()
            after = review.changes[0].after
            validate(copy.deepcopy(after))
            if "every request to " in step.title:
                target = step.title.rsplit("every request to ", 1)[1]
                split = shares_after(review)[1 if kind == "premium-canary" else 0]
                assert split[target] == 100.0, (step.title, split)
            if step.title.startswith("Stage "):
                percent = float(step.title.split(": ")[1].split("%")[0])
                assert shares_after(review)[0]["task-api-v2"] == percent


def test_rollback_comes_with_patch_and_dry_run_commands_for_kubectl_and_trafficlab() -> None:
    result = generate("rollback")
    text = result.commands()
    assert "kubectl patch httproute task-api -n default --type=json -p '[" in text
    assert "kubectl apply --dry-run=client -f rollback.yaml" in text
    assert "trafficlab patch httproute task-api" in text and "trafficlab apply -f rollback.yaml" in text
    first = result.steps[0]
    assert first.title.startswith("Roll back now")
    assert first.kubectl[0].endswith("--dry-run=client") and not first.kubectl[1].endswith("client")
    argv = shlex.split(first.kubectl[1])
    assert argv[:7] == ["kubectl", "patch", "httproute", "task-api", "-n", "default", "--type=json"]
    # The commands follow the YAML as comments: the "all" output still applies as is.
    commands = result.text("all").split("\n# --- commands")[1].splitlines()[1:]
    assert commands and all(line.startswith("#") for line in commands)


def run_cli(argv: list[str]) -> int:
    return main(argv)


def test_generate_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run_cli(["generate", "canary"]) == 0
    out, _ = capsys.readouterr()
    assert yaml.safe_load(out) == generate("canary").route and "kubectl patch" in out

    assert run_cli(["generate", "canary", "--weights", "9:1", "-o", "yaml"]) == 0
    out, _ = capsys.readouterr()
    assert "kubectl" not in out
    assert [b["weight"] for b in yaml.safe_load(out)["spec"]["rules"][0]["backendRefs"]] == [9, 1]

    assert run_cli(["generate", "ab", "--header", "x-user-type=beta", "--path", "/tasks",
                    "-o", "commands"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("# Apply ab.yaml") and "\nkubectl apply -f ab.yaml\n" in out

    assert run_cli(["generate", "progressive", "--stages", "10,50,100", "--stage", "2",
                    "--out-dir", str(tmp_path), "--file", "canary.yaml", "-o", "yaml"]) == 0
    out, err = capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "canary-stage-1.yaml", "canary-stage-2.yaml", "canary-stage-3.yaml"]
    assert [b["weight"] for b in yaml.safe_load(out)["spec"]["rules"][0]["backendRefs"]] == [50, 50]
    assert "wrote" in err

    assert run_cli(["generate", "canary", "--percent", "150"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and "between 0 and 100" in err
