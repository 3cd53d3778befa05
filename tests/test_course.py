"""The course's release and grading logic, without a lab: fast.

The notebooks themselves run against real labs in tests/test_notebooks.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from trafficlab.course import ex_monitoring, ex_rollout, route_yaml, split_figure, stages_figure
from trafficlab.course.__main__ import main as course_main
from trafficlab.course.answers import apply_file
from trafficlab.course.autograde import (
    CellGrade,
    NotebookGrade,
    find_submissions,
    grades_csv,
    restore_cells,
    score_cells,
)
from trafficlab.course.execute import CELL_TIMEOUT, cell_timeout
from trafficlab.course.exercises import EXERCISES, AnswerContext
from trafficlab.course.labs import find_home
from trafficlab.course.release import (
    CODE_STUB,
    check_release,
    grade_cells,
    release,
    repo_root,
    source_notebooks,
)
from trafficlab.course.scoring import hidden_summary
from trafficlab.grading.catalog import catalog
from trafficlab.grading.checks import CheckFailure
from trafficlab.grading.report import CheckResult, ExerciseResult
from trafficlab.lab import Lab
from trafficlab.traffic import TrafficResult

matplotlib.use("Agg")

ROOT = repo_root()
SOURCES = source_notebooks()
# The catalog's exercises that a notebook teaches (each graded by one test cell); the notebook
# exercises answered in Python (trafficlab.course.exercises) have one each too.
NOTEBOOK_EXERCISES = ("canary", "progressive", "rollback", "blue-green", "ab-testing", "premium",
                      "premium-canary")


def _nbgrader(cell: nbformat.NotebookNode) -> dict[str, object]:
    return dict(cell.metadata.get("nbgrader", {}))


def _without_hidden(text: str) -> str:
    return re.sub(r"### BEGIN HIDDEN TESTS\n.*?### END HIDDEN TESTS\n?", "", text, flags=re.S)


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


# -- release ---------------------------------------------------------------------------------
def test_there_is_an_instructor_notebook_per_topic() -> None:
    names = [p.stem for p in SOURCES]
    assert names == ["01-canary", "02-rollback", "03-blue-green", "04-ab-testing-premium",
                     "05-premium-canary", "06-monitoring", "07-automated-rollout"]


def test_student_notebooks_are_what_release_writes() -> None:
    assert check_release() == []


def test_release_is_deterministic(tmp_path: Path) -> None:
    first = release(out_dir=tmp_path / "a")
    second = release(out_dir=tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in SOURCES]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
        assert a.read_bytes() == (ROOT / "notebooks" / a.name).read_bytes()


def test_release_removes_stale_notebooks(tmp_path: Path) -> None:
    (tmp_path / "00-old.ipynb").write_text("{}")
    release(out_dir=tmp_path)
    assert not (tmp_path / "00-old.ipynb").exists()
    assert check_release(out_dir=tmp_path) == []
    (tmp_path / SOURCES[0].name).write_text("{}")
    assert check_release(out_dir=tmp_path) == [f"notebooks/{SOURCES[0].name} differs from its release"]


def test_nbgrader_generate_assignment_writes_the_same_notebooks(tmp_path: Path) -> None:
    """nbgrader_config.py maps the folders so that nbgrader's own command agrees with release."""
    shutil.copytree(ROOT / "solutions" / "notebooks", tmp_path / "solutions" / "notebooks")
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "notebooks",
                           "--no-db", "--force"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for path in SOURCES:
        assert (tmp_path / "notebooks" / path.name).read_bytes() == \
            (ROOT / "notebooks" / path.name).read_bytes(), path.name


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_student_version_has_no_solution_and_no_hidden_test(source: Path) -> None:
    instructor = _read(source)
    student = _read(ROOT / "notebooks" / source.name)
    assert len(student.cells) == len(instructor.cells)
    text = json.dumps(student)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "hidden = True"):
        assert marker not in text
    for before, after in zip(instructor.cells, student.cells, strict=True):
        meta = _nbgrader(before)
        if meta.get("solution"):
            region = re.search(r"### BEGIN SOLUTION\n(.*?)\n\s*### END SOLUTION", before.source, re.S)
            assert region, before.source
            answer = [line for line in region.group(1).splitlines() if len(line.strip()) > 12]
            assert CODE_STUB in after.source
            assert answer and not any(line in after.source.splitlines() for line in answer)
        else:
            assert after.source == _without_hidden(before.source)
        if after.cell_type == "code":
            assert after.outputs == [] and after.execution_count is None


# -- the instructor notebooks ----------------------------------------------------------------
def test_every_exercise_has_one_test_cell_worth_its_points() -> None:
    cells = {}
    for path in SOURCES:
        for cell in grade_cells(_read(path)):
            match = re.search(r'course\.score\(lab, "([a-z-]+)"', cell.source)
            assert match, cell.source
            assert match.group(1) not in cells
            cells[match.group(1)] = cell
    points = {e.id: e.points for e in catalog() if e.id in NOTEBOOK_EXERCISES}
    points.update({e.id: e.points for e in EXERCISES.values()})
    assert set(cells) == set(points)
    for exercise_id, worth in points.items():
        meta = _nbgrader(cells[exercise_id])
        assert meta["points"] == worth
        assert meta["locked"] is True and meta["grade"] is True and meta["solution"] is False
        assert cell_timeout(cells[exercise_id]) > CELL_TIMEOUT


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_instructor_notebook_shape(source: Path) -> None:
    """Starts the lab, self-checks in one line, keeps checks out of cells, stops the lab."""
    nb = _read(source)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "course.start_lab()" in code[0].source and _nbgrader(code[0])["locked"]
    assert code[-1].source.startswith("lab.down()") and _nbgrader(code[-1])["locked"]
    ids = [_nbgrader(c)["grade_id"] for c in nb.cells if _nbgrader(c)]
    assert len(ids) == len(set(ids))
    for cell in code:
        # The checks' code lives in graders/: no cell imports or repeats it.
        assert "trafficlab.grading" not in cell.source and "CheckFailure" not in cell.source
    for cell in grade_cells(nb):
        assert "### BEGIN HIDDEN TESTS\nhidden = True" in cell.source
        assert "hidden=hidden" in cell.source.splitlines()[-1]
    for cell in code:
        if "lab.check(" in cell.source:
            assert re.fullmatch(r'lab\.check\("[a-z-]+"\)', cell.source.strip())


# -- autograde: restoring and scoring --------------------------------------------------------
def _graded_notebook() -> nbformat.NotebookNode:
    def meta(gid: str, **kw: object) -> dict[str, object]:
        return {"nbgrader": {"grade_id": gid, "grade": False, "solution": False, "locked": False,
                             "schema_version": 3, **kw}}

    return new_notebook(cells=[
        new_code_cell("lab = start()", metadata=meta("start", locked=True)),
        new_code_cell("%%writefile a.yaml\n# YOUR ANSWER HERE", metadata=meta("answer", solution=True)),
        new_markdown_cell("text"),
        new_code_cell("score_a()", metadata=meta("a-grade", grade=True, locked=True, points=4)),
        new_code_cell("score_b()", metadata=meta("b-grade", grade=True, locked=True, points=6)),
    ])


def test_restore_cells_puts_back_tampered_test_cells() -> None:
    source = _graded_notebook()
    submitted = _graded_notebook()
    submitted.cells[0].source = "lab = cheat()"
    submitted.cells[1].source = "%%writefile a.yaml\nkind: HTTPRoute"
    submitted.cells[3].source = "4"
    submitted.cells.append(nbformat.from_dict(json.loads(json.dumps(submitted.cells[4]))))
    restored, deleted = restore_cells(submitted, source)
    assert deleted == []
    assert restored.cells[0].source == "lab = start()"
    assert restored.cells[1].source == "%%writefile a.yaml\nkind: HTTPRoute"  # the answer stays
    assert restored.cells[3].source == "score_a()"
    assert not _nbgrader(restored.cells[5]).get("grade")  # a copied test cell does not count twice


def test_restore_cells_reports_deleted_test_cells() -> None:
    submitted = _graded_notebook()
    del submitted.cells[4]
    _, deleted = restore_cells(submitted, _graded_notebook())
    assert deleted == ["b-grade"]


def _executed(outputs_a: list[dict[str, object]], outputs_b: list[dict[str, object]] | None,
              *, ran: bool = True) -> nbformat.NotebookNode:
    nb = _graded_notebook()
    nb.cells[3].outputs = [new_output(**o) for o in outputs_a]  # type: ignore[arg-type]
    nb.cells[3].execution_count = 1 if ran else None
    if outputs_b is None:
        del nb.cells[4]
    else:
        nb.cells[4].outputs = [new_output(**o) for o in outputs_b]  # type: ignore[arg-type]
        nb.cells[4].execution_count = 2
    return nb


def test_score_cells_follows_nbgraders_rule() -> None:
    result = {"output_type": "execute_result", "data": {"text/plain": "2.5"}, "execution_count": 1}
    grades = score_cells(_executed([result], []), _graded_notebook())
    assert [(g.grade_id, g.points, g.max_points) for g in grades] == [("a-grade", 2.5, 4.0),
                                                                      ("b-grade", 6.0, 6.0)]
    error = {"output_type": "error", "ename": "AssertionError", "evalue": "", "traceback": []}
    stderr = {"output_type": "stream", "name": "stderr", "text": "warning\n"}
    grades = score_cells(_executed([error], [stderr]), _graded_notebook())
    assert [g.points for g in grades] == [0.0, 0.0]
    assert grades[0].note == "the test cell raised an error"
    assert grades[1].note == "the test cell wrote to stderr"


def test_score_cells_gives_nothing_for_cells_not_run_deleted_or_overclaiming() -> None:
    grades = score_cells(_executed([], None, ran=False), _graded_notebook())
    assert [(g.points, g.note) for g in grades] == [(0.0, "the test cell did not run"),
                                                    (0.0, "the test cell was deleted")]
    too_much = {"output_type": "execute_result", "data": {"text/plain": "40"}, "execution_count": 1}
    grades = score_cells(_executed([too_much], []), _graded_notebook())
    assert grades[0].points == 0.0 and grades[0].note.startswith("invalid partial credit")


def test_find_submissions_reads_student_folders(tmp_path: Path) -> None:
    for rel in ("ana/01-canary.ipynb", "bo/ps1/01-canary.ipynb", "bo/02-rollback.ipynb",
                "bo/.ipynb_checkpoints/01-canary.ipynb", "cy/notes.ipynb", "01-canary.ipynb"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("{}")
    sources = {p.name: p for p in SOURCES}
    found = [(s, p.relative_to(tmp_path).as_posix()) for s, p in find_submissions(tmp_path, sources)]
    assert found == [(tmp_path.name, "01-canary.ipynb"), ("ana", "ana/01-canary.ipynb"),
                     ("bo", "bo/02-rollback.ipynb"), ("bo", "bo/ps1/01-canary.ipynb")]


def test_grades_csv_has_a_row_per_student_and_notebook() -> None:
    grades = [NotebookGrade("ana", "02-rollback", [CellGrade("rollback-grade", 6, 6)], 8.04),
              NotebookGrade("bo", "01-canary", [CellGrade("canary-grade", 3, 10, "the test cell "
                                                          "raised an error"),
                                                CellGrade("progressive-grade", 12, 12)], 17.3)]
    lines = grades_csv(grades).splitlines()
    header = lines[0].split(",")
    assert header[:4] == ["student", "notebook", "score", "max_score"]
    assert header[-2:] == ["seconds", "reason"]
    assert "canary-grade" in header and "rollback-grade" in header
    row = dict(zip(header, lines[2].split(","), strict=True))
    assert (row["student"], row["score"], row["max_score"], row["canary-grade"],
            row["progressive-grade"], row["rollback-grade"]) == ("bo", "15", "22", "3", "12", "")
    assert row["reason"] == "canary-grade: the test cell raised an error"


def test_grade_roundtrip_through_json() -> None:
    grade = NotebookGrade("ana", "01-canary", [CellGrade("canary-grade", 10, 10)], 1.5, None)
    again = NotebookGrade.from_dict(json.loads(json.dumps(grade.to_dict())))
    assert again == NotebookGrade("ana", "01-canary", [CellGrade("canary-grade", 10, 10)], 1.5, None)
    assert (again.score, again.max_score) == (10, 10)


def test_hidden_summary_never_shows_what_a_hidden_check_saw() -> None:
    result = ExerciseResult("canary", "Canary", [
        CheckResult("exact share", True, 3, 3, "ok"),
        CheckResult("secret path", False, 0, 1, "saw /tasks go 100% to v1", "match every path", True),
    ], max_score=4)
    text = hidden_summary(result)
    assert text == "Hidden checks: 0 of 1 passed (0/1 points). Total: 3/4 points."
    assert "secret" not in text and "tasks" not in text


def test_cli_release_check_passes_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert course_main(["release", "--check"]) == 0
    assert capsys.readouterr().err == ""


# -- notebook helpers ------------------------------------------------------------------------
def _result(counts: dict[str, int], statuses: dict[int, int] | None = None) -> TrafficResult:
    total = sum(counts.values())
    return TrafficResult(total=total, by_version=Counter(counts),
                         by_status=Counter(statuses or {200: total}))


def test_split_figure_draws_each_version_share_and_the_expected_line() -> None:
    fig = split_figure(_result({"v1": 900, "v2": 100}), expected={"v1": 0.9, "v2": 0.1})
    ax = fig.axes[0]
    assert [round(p.get_height(), 6) for p in ax.patches] == [90.0, 10.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["v1", "v2"]
    lines = [seg for coll in ax.collections for seg in coll.get_segments()]
    assert sorted(round(float(seg[0][1]), 6) for seg in lines) == [10.0, 90.0]
    assert "0 failed" in ax.get_title()


def test_split_figure_shows_gateway_errors_and_expected_versions_that_got_nothing() -> None:
    fig = split_figure(_result({"v1": 90, "none": 10}, {200: 90, 500: 10}), expected={"v2": 0.1})
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["v1", "gateway error (no version)", "v2"]
    assert [round(p.get_height(), 6) for p in ax.patches] == [90.0, 10.0, 0.0]
    assert "10 failed" in ax.get_title()


def test_stages_figure_stacks_the_versions_of_each_run() -> None:
    fig = stages_figure({"stage 1": _result({"v1": 95, "v2": 5}),
                         "stage 4": _result({"v2": 100})})
    ax = fig.axes[0]
    heights = [round(p.get_height(), 6) for p in ax.patches]
    assert heights == [95.0, 0.0, 5.0, 100.0]  # v1's bars, then v2's stacked on them
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["v1", "v2"]


def test_route_yaml_leaves_out_server_fields_and_defaults() -> None:
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "task-api", "namespace": "default", "generation": 4, "uid": "x",
                          "resourceVersion": "9", "creationTimestamp": "2026-01-01T00:00:00Z"},
             "spec": {"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                      "name": "task-api-gateway"}],
                      "rules": [{"backendRefs": [{"group": "", "kind": "Service",
                                                  "name": "task-api-v1", "port": 80}]}]},
             "status": {"parents": []}}
    text = route_yaml(route)
    for absent in ("generation", "uid", "resourceVersion", "creationTimestamp", "group", "kind: Service",
                   "status"):
        assert absent not in text
    assert "name: task-api-gateway" in text and "name: task-api-v1" in text
    assert "status:" in route_yaml(route, status=True)


def test_apply_file_explains_a_missing_or_empty_answer(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    lab = Lab(tmp_path / "lab")  # never started: neither case reaches the lab
    apply_file(lab, tmp_path / "canary.yaml")
    assert "does not exist yet" in capsys.readouterr().out
    (tmp_path / "canary.yaml").write_text("# YOUR ANSWER HERE\n")
    apply_file(lab, tmp_path / "canary.yaml")
    out = capsys.readouterr()
    assert "holds no object yet" in out.out and "%%writefile canary.yaml" in out.out
    assert out.err == ""


def test_find_home_prefers_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAFFICLAB_HOME", str(tmp_path / "mine"))
    assert find_home(tmp_path) == (tmp_path / "mine").resolve()
    monkeypatch.delenv("TRAFFICLAB_HOME")
    # No running lab here or above: a new one in ./.lab.
    (tmp_path / ".lab").mkdir()
    (tmp_path / "notebooks").mkdir()
    assert find_home(tmp_path / "notebooks") == (tmp_path / "notebooks" / ".lab").resolve()


def test_cell_timeout_comes_from_the_cells_metadata() -> None:
    cell = new_code_cell("lab.check('canary')", metadata={"trafficlab": {"timeout": 300}})
    assert cell_timeout(cell) == 300
    assert cell_timeout(new_code_cell("1")) == CELL_TIMEOUT


# -- the exercises answered in Python: their checks that need no lab -------------------------
def _reference_decide(report: Any) -> str:
    v2 = report.get("v2")
    if not v2.requests or v2.requests < 100 or v2.error_rate is None or v2.p99_ms is None:
        return "wait"
    return "rollback" if v2.error_rate > 0.01 or v2.p99_ms > 200 else "promote"


def _ctx(tmp_path: Path, **answers: Any) -> AnswerContext:
    return AnswerContext(Lab(tmp_path / "lab"), answers, tmp_path)  # never started


def test_monitoring_checks_accept_the_reference_decide(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, decide=_reference_decide)
    for name in ("promotes_healthy", "rolls_back_errors", "rolls_back_latency",
                 "waits_on_few_requests", "waits_without_data", "boundaries"):
        getattr(ex_monitoring, f"test_{name}")(ctx)


def test_monitoring_checks_explain_a_wrong_decide(tmp_path: Path) -> None:
    def only_errors(report: Any) -> str:
        v2 = report.get("v2")
        return "rollback" if (v2.error_rate or 0) > 0.01 else "promote"

    ctx = _ctx(tmp_path, decide=only_errors)
    ex_monitoring.test_rolls_back_errors(ctx)
    with pytest.raises(CheckFailure) as failure:
        ex_monitoring.test_waits_on_few_requests(ctx)
    assert failure.value.message.startswith("decide(report) returned 'rollback' for v2 with "
                                            "requests=30")
    assert failure.value.expected == "'wait'"
    with pytest.raises(CheckFailure) as failure:
        ex_monitoring.test_rolls_back_latency(ctx)
    assert "p99_ms" in failure.value.hint


def test_monitoring_checks_without_an_answer_skip_the_lab(tmp_path: Path) -> None:
    for answers in ({}, {"decide": lambda report: None}, {"decide": lambda report: 1 / 0}):
        ctx = _ctx(tmp_path, **answers)
        with pytest.raises(CheckFailure) as failure:
            ex_monitoring.test_live_healthy(ctx)  # fails before it touches the (stopped) lab
        assert "not checked on the lab yet" in failure.value.message or \
            "no answer" in failure.value.message


@pytest.mark.parametrize(("policy", "problem"), [
    ("", "holds no setting yet"),
    ("steps: [10, 50, 100\n", "was rejected"),
    ("canary: task-api-v2\nstep: [10, 100]\n", "did you mean steps?"),
])
def test_rollout_policy_that_cannot_be_read(tmp_path: Path, policy: str, problem: str) -> None:
    (tmp_path / "rollout-policy.yaml").write_text(policy)
    ctx = _ctx(tmp_path)
    with pytest.raises(CheckFailure) as failure:
        ex_rollout.test_policy_reads(ctx)
    assert problem in failure.value.message
    with pytest.raises(CheckFailure, match="not checked"):
        ex_rollout.test_policy_settings(ctx)


GOOD_POLICY = ("canary: task-api-v2\nsteps: [10, 50, 100]\ninterval: 2s\nmaxErrorRate: 1%\n"
               "maxP99: 300ms\nminRequests: 20\nthreshold: 2\nload: 200\n")


def test_rollout_policy_settings(tmp_path: Path) -> None:
    (tmp_path / "rollout-policy.yaml").write_text(GOOD_POLICY)
    ctx = _ctx(tmp_path)
    ex_rollout.test_policy_reads(ctx)
    ex_rollout.test_policy_settings(ctx)
    assert ctx.notes["settings_ok"] is True


@pytest.mark.parametrize(("change", "problem"), [
    (("load: 200", "load: 50"), "at 10% v2 gets about 10 requests per interval"),
    (("interval: 2s", "interval: 30s"), "interval 30s (want 2s)"),
    (("maxErrorRate: 1%", "maxErrorRate: 5%"), "maxErrorRate 0.05"),
    (("steps: [10, 50, 100]", "steps: [5, 25, 50, 100]"), "steps [5, 25, 50, 100]"),
    (("load: 200\n", ""), "no load"),
])
def test_rollout_policy_settings_say_what_is_off(tmp_path: Path, change: tuple[str, str],
                                                problem: str) -> None:
    (tmp_path / "rollout-policy.yaml").write_text(GOOD_POLICY.replace(*change))
    ctx = _ctx(tmp_path)
    ex_rollout.test_policy_reads(ctx)
    with pytest.raises(CheckFailure) as failure:
        ex_rollout.test_policy_settings(ctx)
    assert problem in failure.value.message
    with pytest.raises(CheckFailure, match="not run on the lab yet"):
        ex_rollout.test_promotes_healthy(ctx)  # a slow policy is never run on the lab


def test_scores_go_into_an_nbgrader_gradebook_through_its_api(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from nbgrader.api import Gradebook

    from trafficlab.course.autograde import write_gradebook

    # nbgrader runs alembic (from the venv) when it creates a gradebook.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url) as book:
        book.add_assignment("ps1")
        book.add_notebook("02-rollback", "ps1")
        book.add_grade_cell("rollback-grade", "02-rollback", "ps1", max_score=6, cell_type="code")
        book.add_student("ana")
        book.add_submission("ps1", "ana")
    skipped = write_gradebook(tmp_path / "gradebook.db", [
        NotebookGrade("ana", "02-rollback", [CellGrade("rollback-grade", 4, 6)]),
        NotebookGrade("bo", "02-rollback", [CellGrade("rollback-grade", 6, 6)])])
    assert skipped == ["bo/02-rollback"]  # not in the gradebook: said, not invented
    with Gradebook(url) as book:
        grade = book.find_grade("rollback-grade", "02-rollback", "ps1", "ana")
        assert (grade.auto_score, grade.score) == (4, 4)
