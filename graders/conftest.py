"""Run the graders with pytest: ``pytest graders --submission DIR [--lab-home HOME]``.

Without ``--lab-home`` a fresh, isolated lab is started for the session and stopped after;
with it, the checks run against that (running) lab, as ``trafficlab check`` does.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from trafficlab.grading.catalog import exercise
from trafficlab.grading.context import GradingContext
from trafficlab.lab import Lab


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trafficlab graders")
    group.addoption("--submission", default=".", help="the folder with the student's files")
    group.addoption("--lab-home", default=None, help="grade against this running lab")


@pytest.fixture(scope="session")
def grading_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    home = request.config.getoption("--lab-home")
    if home:
        yield Lab(home)
        return
    with tempfile.TemporaryDirectory(prefix="trafficlab-pytest-grade-") as tmp:
        lab = Lab(Path(tmp) / "lab", backend="local")
        try:
            lab.up()
            yield lab
        finally:
            lab.down()


@pytest.fixture(scope="module")
def ctx(request: pytest.FixtureRequest, grading_lab: Lab) -> GradingContext:
    module = request.module
    item = exercise(module.EXERCISE)
    context = GradingContext(grading_lab, Path(request.config.getoption("--submission")).resolve(),
                             item.id)
    setup = getattr(module, "setup", None)
    if setup is not None:
        setup(context)
    return context
