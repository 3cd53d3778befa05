"""Hostile files in a submission: links, pipes, huge files, alias bombs, duplicate keys, names.

Each is refused with a message naming the file and saying what to do, by grading (through
GradingContext) and by ``trafficlab apply -f`` (through load_manifests); nothing is followed.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from trafficlab._errors import ValidationError
from trafficlab.cli import main
from trafficlab.grading.checks import CheckFailure, NotSubmitted
from trafficlab.grading.context import GradingContext
from trafficlab.grading.report import ExerciseResult, GradeReport, csv_cell, gradebook_csv
from trafficlab.manifests import load_manifests
from trafficlab.safe_files import MAX_BYTES, UnsafeFileError, load_yaml_all, read_text

REPO = Path(__file__).resolve().parents[2]
SOLUTION = REPO / "solutions" / "exercises" / "canary.yaml"

# 9 levels of 9: 9**9 (387 million) strings from a few hundred bytes.
BOMB = "".join(
    [f'l0: &l0 [{", ".join(["lol"] * 9)}]\n']
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)]
    + ["kind: HTTPRoute\n"])

DUPLICATE = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: task-api, namespace: default}
spec:
  parentRefs: [{name: task-api-gateway}]
  rules:
  - backendRefs:
    - {name: task-api-v1, port: 80, weight: 90}
    - name: task-api-v2
      port: 80
      weight: 10
      weight: 100
"""


def _ctx(folder: Path) -> GradingContext:
    # Reading a submission needs no lab: nothing here is applied.
    return GradingContext(None, folder, "canary")  # type: ignore[arg-type]


def _refusal(folder: Path, name: str = "canary.yaml") -> CheckFailure:
    with pytest.raises(CheckFailure) as info:
        _ctx(folder).read(name)
    assert not isinstance(info.value, NotSubmitted)
    return info.value


def test_a_link_to_the_solution_is_refused(tmp_path: Path) -> None:
    (tmp_path / "canary.yaml").symlink_to(SOLUTION)
    failure = _refusal(tmp_path)
    assert "canary.yaml" in failure.message and "symbolic link" in failure.message
    assert "real file" in failure.hint


def test_a_link_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "canary.yaml").symlink_to("/etc/passwd")
    failure = _refusal(tmp_path)
    assert "symbolic link" in failure.message and "root:" not in str(failure)


def test_a_link_inside_the_tree_is_refused_too(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(SOLUTION.read_text())
    (tmp_path / "canary.yaml").symlink_to(tmp_path / "mine.yaml")
    assert "symbolic link" in _refusal(tmp_path).message


def test_a_submission_folder_that_is_a_link_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "canary.yaml").write_text(SOLUTION.read_text())
    (tmp_path / "student").symlink_to(real)
    failure = _refusal(tmp_path / "student")
    assert "symbolic link" in failure.message and "folder" in failure.message


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "canary.yaml")
    failure = _refusal(tmp_path)
    assert "named pipe" in failure.message and "plain text file" in failure.hint


def test_a_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFileError, match="a device"):
        read_text("/dev/zero")


def test_a_2_mib_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "canary.yaml").write_text("# padding\n" * (2 * MAX_BYTES // 10))
    failure = _refusal(tmp_path)
    assert "over the limit" in failure.message and "1 MiB" in failure.hint


def test_a_name_with_control_characters_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFileError, match="control characters"):
        read_text("can\x1b[2Jary.yaml", tmp_path)


def test_names_may_not_leave_the_folder(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFileError, match="leaves the submission folder"):
        read_text("../canary.yaml", tmp_path)


def test_a_missing_file_is_still_not_submitted(tmp_path: Path) -> None:
    with pytest.raises(NotSubmitted):
        _ctx(tmp_path).read("canary.yaml")


def test_an_alias_bomb_fails_fast(tmp_path: Path) -> None:
    assert len(BOMB) < 800
    (tmp_path / "canary.yaml").write_text(BOMB)
    failure = _refusal(tmp_path)
    assert "aliases expand" in failure.message, failure.message


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(Exception, match="loop"):
        load_yaml_all("a: &x [1, *x]\n")


def test_duplicate_keys_are_refused_with_the_line(tmp_path: Path) -> None:
    (tmp_path / "canary.yaml").write_text(DUPLICATE)
    assert "line 12: duplicate key 'weight' in a mapping" in _refusal(tmp_path).message


def test_aliases_and_merge_keys_of_real_manifests_still_read() -> None:
    docs = load_yaml_all("base: &b {port: 80}\nref:\n  <<: *b\n  port: 81\nsame: *b\n---\nk: v\n")
    assert docs == [{"base": {"port": 80}, "ref": {"port": 81}, "same": {"port": 80}}, {"k": "v"}]


def test_the_reference_solution_reads(tmp_path: Path) -> None:
    (tmp_path / "canary.yaml").write_text(SOLUTION.read_text())
    assert [o["kind"] for o in _ctx(tmp_path).read("canary.yaml")] == ["HTTPRoute"]


# -- trafficlab apply -f / load_manifests ---------------------------------------------------
@pytest.mark.parametrize("attack", ["link", "fifo", "bomb", "duplicate", "huge"])
def test_load_manifests_refuses_the_same_files(tmp_path: Path, attack: str) -> None:
    path = tmp_path / "route.yaml"
    if attack == "link":
        path.symlink_to("/etc/passwd")
    elif attack == "fifo":
        os.mkfifo(path)
    elif attack == "huge":
        path.write_bytes(b"#" * (MAX_BYTES + 1))
    else:
        path.write_text(BOMB if attack == "bomb" else DUPLICATE)
    error = ValidationError if attack in ("bomb", "duplicate") else UnsafeFileError
    with pytest.raises(error):
        load_manifests(path)


def test_a_folder_walk_refuses_links_instead_of_following_them(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(SOLUTION.read_text())
    (tmp_path / "b.yaml").symlink_to("/etc/passwd")
    (tmp_path / "sub").symlink_to(REPO / "solutions" / "exercises", target_is_directory=True)
    with pytest.raises(UnsafeFileError, match=r"b\.yaml"):
        load_manifests(tmp_path)
    (tmp_path / "b.yaml").unlink()
    # The linked folder is not entered: only a.yaml is read.
    assert len(load_manifests(tmp_path)) == 1


def test_apply_reports_duplicate_keys_without_a_lab(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "route.yaml").write_text(DUPLICATE)
    code = main(["--home", str(tmp_path / "home"), "apply", "-f", str(tmp_path / "route.yaml")])
    assert code != 0
    assert "line 12: duplicate key 'weight' in a mapping" in capsys.readouterr().err


# -- gradebooks -----------------------------------------------------------------------------
def test_csv_cells_cannot_be_formulas() -> None:
    for text in ('=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(text) == "'" + text
    assert [csv_cell(x) for x in ("10", "-1.5", "2.5e3", 4, "alice")] == [
        "10", "-1.5", "2.5e3", "4", "alice"]


def test_the_gradebook_neutralises_a_formula_student_name() -> None:
    name = '=HYPERLINK("http://x","y")'
    report = GradeReport(student=name, exercises=[
        ExerciseResult("canary", "Canary", max_score=10, error="=cmd|' /C calc'!A0")])
    rows = list(csv.reader(io.StringIO(gradebook_csv([report], ["canary"]))))
    assert rows[0][:3] == ["student", "score", "max_score"]
    assert rows[1][0] == "'" + name
    assert rows[1][1:4] == ["0", "10", "0"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in rows[1])


def test_the_notebook_gradebook_neutralises_names_too() -> None:
    from trafficlab.course.autograde import NotebookGrade, grades_csv

    grade = NotebookGrade('=HYPERLINK("http://x","y")', "01-canary")
    grade.error = "@evil"
    rows = list(csv.reader(io.StringIO(grades_csv([grade]))))
    assert rows[0][:4] == ["student", "notebook", "score", "max_score"]
    assert rows[1][0].startswith("'=") and rows[1][-1].startswith("'@")
    assert rows[1][2] == "0"
