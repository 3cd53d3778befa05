"""One failure never costs another verdict: a crashing check fails alone, dependents say so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from trafficlab.cli import main
from trafficlab.grading.checks import CheckFailure, check, checks_of, run_checks

REPO = Path(__file__).resolve().parents[2]
SOLUTIONS = REPO / "solutions" / "exercises"


class _Ctx:
    notes: dict[str, Any]

    def __init__(self) -> None:
        self.notes = {}


def test_an_exception_in_a_check_fails_only_that_check() -> None:
    @check(points=1)
    def test_crashes(ctx: Any) -> None:
        raise KeyError("switch")

    @check(points=2)
    def test_fine(ctx: Any) -> None:
        pass

    @check(points=1)
    def test_fails(ctx: Any) -> None:
        raise CheckFailure("saw 3", "4", "try 4")

    module = type("Module", (), {"a": test_crashes, "b": test_fine, "c": test_fails})
    specs = checks_of(module)
    results = run_checks(specs, {"crashes": 1, "fine": 2, "fails": 1}, _Ctx())
    assert [r.passed for r in results] == [False, True, False]
    assert results[0].message == "the grader could not run this check: KeyError: 'switch'"
    assert results[1].points == 2 and "saw 3" in results[2].message


def _blue_green_with_a_wrong_parent_ref(folder: Path) -> Path:
    folder.mkdir()
    text = (SOLUTIONS / "blue-green.yaml").read_text()
    (folder / "blue-green.yaml").write_text(text.replace("name: task-api-gateway",
                                                         "name: no-such-gateway"))
    shutil.copy(SOLUTIONS / "canary.yaml", folder / "canary.yaml")
    return folder


@pytest.mark.integration
def test_a_wrong_parent_ref_gives_clear_failures_and_no_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _blue_green_with_a_wrong_parent_ref(tmp_path / "student")
    code = main(["grade", str(folder), "--exercise", "blue-green", "-o", "json"])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err + out
    (result,) = json.loads(out)["exercises"]
    assert result["error"] is None and result["score"] == 0
    by_name = {c["name"]: c for c in result["checks"]}
    assert "no parent has accepted the route" in by_name["switch applies"]["message"]
    assert "parentRefs" in by_name["attached"]["message"]
    for dependent in ("no failed request", "switch back"):
        assert by_name[dependent]["message"] == (
            "not checked, because the check 'switch applies' did not complete")
    assert not any("could not run" in c["message"] for c in result["checks"])
