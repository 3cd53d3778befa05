"""The graders: every reference solution scores full marks, and wrong answers fail with the
intended feedback. Real labs, real traffic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from trafficlab import Lab
from trafficlab.baseline import reset_to_baseline
from trafficlab.grading.catalog import catalog, exercise, load_module
from trafficlab.grading.checks import assign_points, checks_of
from trafficlab.grading.report import ExerciseResult
from trafficlab.grading.runner import run_exercise

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions" / "exercises"


def route(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "task-api"},
            "spec": {"parentRefs": [{"name": "task-api-gateway"}], "rules": list(rules)}}


def refs(**weights: int) -> dict[str, Any]:
    return {"backendRefs": [{"name": f"task-api-{name}", "port": 80, "weight": w}
                            for name, w in weights.items()]}


def header(name: str, value: str, **weights: int) -> dict[str, Any]:
    return {"matches": [{"path": {"type": "PathPrefix", "value": "/"},
                         "headers": [{"name": name, "value": value}]}], **refs(**weights)}


def prefix(path: str, rule: dict[str, Any]) -> dict[str, Any]:
    return {"matches": [{"path": {"type": "PathPrefix", "value": path}}], **rule}


def stages(*splits: tuple[int, int], last: dict[str, Any] | None = None) -> dict[str, Any]:
    files = {f"progressive-{i + 1}.yaml": route(refs(v1=a, v2=b)) for i, (a, b) in enumerate(splits)}
    if last is not None:
        files[f"progressive-{len(splits)}.yaml"] = last
    return files


FLAWED = ROOT / "graders" / "review" / "flawed"
SOLVED_REVIEW = {f"review-{i}.yaml": yaml.safe_load((SOLUTIONS / f"review-{i}.yaml").read_text())
                 for i in (1, 2, 3)}


SOLVED_MONITORING_ROUTE = yaml.safe_load((SOLUTIONS / "monitoring-route.yaml").read_text())


def flawed(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((FLAWED / name).read_text()))


# exercise -> case -> (files, the check that must fail, a phrase its message or hint must hold)
WRONG: dict[str, dict[str, tuple[dict[str, Any], str, str]]] = {
    "canary": {
        "weights 100:10 are 9.1%": ({"canary.yaml": route(refs(v1=100, v2=10))},
                                    "exact share", "100:10 is 9.1%"),
        "20% instead of 10%": ({"canary.yaml": route(refs(v1=80, v2=20))},
                               "observed split", "saw"),
        "typo in the Service": ({"canary.yaml": route(refs(v1=90, v3=10))},
                                "attached", "BackendNotFound"),
        "unknown field": ({"canary.yaml": {**route(refs(v1=90, v2=10)), "spec": {
            "parentRefs": [{"name": "task-api-gateway"}], "rule": []}}}, "applies", "rule"),
        "not submitted": ({}, "applies", "not submitted"),
    },
    "progressive": {
        "stage 2 at 30%": (stages((95, 5), (70, 30), (50, 50), (0, 100)), "stage 2", "25%"),
        "stage 4 changes the path": (
            stages((95, 5), (75, 25), (50, 50), (0, 100),
                   last=route(prefix("/tasks", refs(v1=0, v2=100)))),
            "stages differ only in weights", "weights only"),
    },
    "rollback": {
        "v2 keeps weight 1": ({"rollback.yaml": route(refs(v1=100, v2=1))}, "no share for v2",
                              "weight 0"),
        "rollback only for /": ({"rollback.yaml": route(
            {"matches": [{"path": {"type": "Exact", "value": "/"}}], **refs(v1=1)},
            prefix("/tasks", refs(v1=9, v2=1)))}, "no share for v2", "/tasks"),
    },
    "blue-green": {
        "half and half": ({"blue-green.yaml": route(refs(blue=1, green=1))}, "all green",
                          "switches everything at once"),
        "typo in green": ({"blue-green.yaml": route(refs(gren=1))}, "no failed request",
                          "missing Service answers 500"),
    },
    "ab-testing": {
        "value Beta": ({"ab-testing.yaml": route(header("x-user-type", "Beta", v2=1), refs(v1=1))},
                       "beta observed", "values do not"),
        "header name typo": ({"ab-testing.yaml": route(header("x-user-typ", "beta", v2=1),
                                                       refs(v1=1))}, "spec", "x-user-type"),
        "no rule for the others": ({"ab-testing.yaml": route(header("x-user-type", "beta", v2=1))},
                                   "others observed", "status codes {404"),
    },
    "premium": {
        "premium to v1": ({"premium.yaml": route(header("x-user-tier", "premium", v1=1), refs(v1=1))},
                          "spec", "task-api-premium"),
        "only premium": ({"premium.yaml": route(header("x-user-tier", "premium", premium=1))},
                         "others observed", "everyone else"),
    },
    "review": {
        "container port left as is": ({**SOLVED_REVIEW, "review-1.yaml": flawed("03-container-port.yaml")},
                                      "review 1 fixed", "spec.rules[0].backendRefs"),
        "only / fixed to /tasks": ({**SOLVED_REVIEW, "review-3.yaml": route(
            {"matches": [{"path": {"type": "Exact", "value": "/tasks"}}], **refs(v1=9, v2=1)})},
            "review 3 fixed", "review-3.yaml"),
    },
    "monitoring": {
        "error rate as a percentage": ({"monitoring.yaml": {
            "seed": "bob", "decision": "rollback",
            "versions": {"v1": {"error_rate": 0, "p99_ms": 5}, "v2": {"error_rate": 20, "p99_ms": 5}}},
            "monitoring-route.yaml": SOLVED_MONITORING_ROUTE}, "report complete", "a fraction"),
        "promoting a failing canary": ({"monitoring.yaml": {
            "seed": "bob", "decision": "promote",
            "versions": {"v1": {"error_rate": 0, "p99_ms": 5}, "v2": {"error_rate": 0.2, "p99_ms": 5}}},
            "monitoring-route.yaml": SOLVED_MONITORING_ROUTE}, "decision", "this canary is failing"),
    },
    "auto-rollout": {
        "error limit written as 5 for 5%": ({"auto-rollout.yaml": {"canary": "task-api-v2",
                                                                   "maxErrorRate": 5}},
                                            "policy valid", "maxErrorRate"),
        "limits too loose": ({"auto-rollout.yaml": {"canary": "task-api-v2", "maxErrorRate": 0.5,
                                                    "threshold": 10, "steps": [50, 100]}},
                            "failing rolled back", "was promoted"),
    },
    "premium-canary": {
        "rule order instead of precedence": (
            {"premium-canary.yaml": route(header("x-user-tier", "premium", v1=1),
                                          prefix("/tasks", refs(v1=9, v2=1)), refs(v1=9, v2=1))},
            "premium spec", "not pick the first rule"),
        "no premium rule": ({"premium-canary.yaml": route(refs(v1=9, v2=1))}, "premium spec",
                            "never on v2"),
    },
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Any:
    the_lab = Lab(tmp_path_factory.mktemp("grading-lab"), backend="local")
    try:
        the_lab.up()
        yield the_lab
    finally:
        the_lab.down()


def _write(folder: Path, files: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(yaml.safe_dump(content, sort_keys=False))
    return folder


def _run(lab: Lab, folder: Path, exercise_id: str) -> ExerciseResult:
    try:
        return run_exercise(lab, folder, exercise(exercise_id))
    finally:
        reset_to_baseline(lab)


def test_catalog_points_add_up() -> None:
    for item in catalog():
        specs = checks_of(load_module(item))
        assert specs, item.id
        assert sum(assign_points(specs, item.points)) == pytest.approx(item.points), item.id
        assert any(s.hidden for s in specs) or item.id not in ("canary", "ab-testing")


@pytest.mark.parametrize("exercise_id", [e.id for e in catalog()])
def test_reference_solution_scores_full_marks(lab: Lab, exercise_id: str) -> None:
    result = _run(lab, SOLUTIONS, exercise_id)
    assert result.passed, result.summary()
    assert result.score == result.max_score == exercise(exercise_id).points


CASES = [(ex, case) for ex, cases in WRONG.items() for case in cases]


@pytest.mark.parametrize(("exercise_id", "case"), CASES, ids=[f"{e}:{c}" for e, c in CASES])
def test_wrong_answer_fails_with_the_intended_feedback(lab: Lab, tmp_path: Path, exercise_id: str,
                                                      case: str) -> None:
    files, failing_check, phrase = WRONG[exercise_id][case]
    result = _run(lab, _write(tmp_path / "submission", files), exercise_id)
    assert not result.passed and result.score < result.max_score
    by_name = {c.name: c for c in result.checks}
    failed = by_name[failing_check]
    assert not failed.passed, result.summary()
    feedback = failed.message + " " + failed.hint
    assert phrase in feedback, feedback
    assert failed.points == 0 and failed.max_points > 0


def test_every_exercise_has_at_least_two_wrong_answers() -> None:
    for item in catalog():
        assert len(WRONG.get(item.id, {})) >= 2, item.id


def test_self_check_hides_hidden_checks(lab: Lab, tmp_path: Path) -> None:
    folder = _write(tmp_path / "me", {"canary.yaml": route(refs(v1=9, v2=1))})
    try:
        result = lab.check("canary", folder)
    finally:
        reset_to_baseline(lab)
    assert result.passed
    assert all(not c.hidden for c in result.checks)
    assert "other paths in canary" not in result.summary()
    assert "All checks passed!" in result.summary()
    assert "<table>" in result._repr_html_()


def test_grade_command_reports_json_and_batch_writes_a_gradebook(tmp_path: Path) -> None:
    classroom = tmp_path / "class"
    _write(classroom / "alice", {"canary.yaml": route(refs(v1=9, v2=1))})
    _write(classroom / "bob", {"canary.yaml": route(refs(v1=100, v2=10))})
    (classroom / "carol").mkdir()
    out = tmp_path / "grades.csv"
    proc = subprocess.run([sys.executable, "-m", "trafficlab.cli", "grade", "--batch", str(classroom),
                           "--jobs", "2", "--out", str(out), "--exercise", "canary"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split(",")[0]: line.split(",") for line in out.read_text().splitlines()[1:]}
    assert rows["alice"][1] == "10" and rows["carol"][1] == "0"
    assert 0 < float(rows["bob"][1]) < 10
    report = json.loads((tmp_path / "reports" / "bob.json").read_text())
    assert set(report) >= {"score", "max_score", "exercises"}
    check = report["exercises"][0]["checks"][0]
    assert set(check) >= {"name", "passed", "points", "message", "hint"}
    carol = json.loads((tmp_path / "reports" / "carol.json").read_text())
    assert "not submitted" in carol["exercises"][0]["checks"][0]["message"]


def test_graders_run_under_pytest_too(tmp_path: Path) -> None:
    wrong = _write(tmp_path / "wrong", {"canary.yaml": route(refs(v1=100, v2=10))})
    ok = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                         str(ROOT / "graders" / "test_canary.py"), "--submission", str(SOLUTIONS)],
                        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert ok.returncode == 0, ok.stdout[-2000:]
    bad = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(ROOT / "graders" / "test_canary.py"), "--submission", str(wrong)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert bad.returncode == 1
    assert "100:10 is 9.1%" in bad.stdout


def test_monitoring_truth_leaves_out_the_replaced_pods_traffic(lab: Lab) -> None:
    """Healthy v2 pods busy until the scenario replaces them: their last answers are no part of
    the grader's measurement of the failing canary (they once diluted its 20% errors to 12%)."""
    import threading

    from trafficlab.grading.scenarios import canary_route
    from trafficlab.traffic import send

    lab.apply(canary_route(50, 50))
    lab.wait_programmed()
    busy = threading.Thread(target=send, args=(lab.url(),),
                            kwargs={"duration": 4.0, "concurrency": 16, "progress": False})
    busy.start()
    try:
        busy.join(3.0)  # grading starts while the healthy pods still answer
        result = run_exercise(lab, SOLUTIONS, exercise("monitoring"))
    finally:
        busy.join()
        reset_to_baseline(lab)
    assert result.passed, result.summary()
