"""Shared pytest options and fixtures for TrafficLab's own tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from trafficlab import Lab


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", default=False,
        help="rewrite golden files (tests/testdata/**/*.out.yaml ...) from the current code; "
             "review the git diff afterwards",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run should rewrite golden files instead of comparing with them."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """A running local lab of the test module's own: started once, stopped after the module.

    Its parent is one anyone may traverse (as /home is), so the lab's own modes must do the
    protecting.
    """
    parent = Path(tempfile.mkdtemp(prefix="trafficlab-test-"))
    os.chmod(parent, 0o755)
    the_lab = Lab(parent / "lab", backend="local")
    try:
        the_lab.up(timeout=60)
        yield the_lab
    finally:
        the_lab.down()
        shutil.rmtree(parent, ignore_errors=True)
