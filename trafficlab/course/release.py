"""Release: the student notebooks (``notebooks/``) made from the instructor's (``solutions/notebooks/``).

The steps are nbgrader's own preprocessors, in the order ``nbgrader generate_assignment``
runs them (less the header/footer and the gradebook database): lock the test cells, replace
each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region with ``# YOUR ANSWER HERE``,
clear outputs, checksum the cells, then drop each ``### BEGIN HIDDEN TESTS`` ...
``### END HIDDEN TESTS`` region and checksum again. The output is deterministic (the same
source always gives the same bytes), so a test can check that ``notebooks/`` is up to date.

``nbgrader_config.py`` at the repository's root maps the same folders and settings for
instructors who prefer nbgrader's own commands.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

__all__ = [
    "CODE_STUB",
    "RELEASE_DIR",
    "SOURCE_DIR",
    "TEXT_STUB",
    "check_release",
    "grade_cells",
    "notebook_text",
    "read_notebook",
    "release",
    "repo_root",
    "student_version",
    "write_notebook",
]

#: What a solution region becomes. ``#`` starts a comment in Python and in YAML alike, so the
#: same stub serves the ``%%writefile canary.yaml`` cells where students write routes.
CODE_STUB = "# YOUR ANSWER HERE"
TEXT_STUB = "YOUR ANSWER HERE"
SOURCE_DIR = Path("solutions") / "notebooks"
RELEASE_DIR = Path("notebooks")
# Keys some Jupyter front ends add to cells on every run; never part of a released notebook.
_VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")


def repo_root() -> Path:
    """The checkout this package runs from (it is installed in place)."""
    return Path(__file__).resolve().parents[2]


def _preprocessors() -> list[Any]:
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearHiddenTests,
        ClearMarkScheme,
        ClearOutput,
        ClearSolutions,
        ComputeChecksums,
        LockCells,
    )

    # The order of nbgrader's GenerateAssignment: ClearHiddenTests after the first checksums,
    # and checksums again after it (nbgrader/converters/generate_assignment.py).
    return [
        LockCells(),
        ClearSolutions(code_stub={"python": CODE_STUB}, text_stub=TEXT_STUB),
        ClearOutput(),
        CheckCellMetadata(),
        ComputeChecksums(),
        ClearHiddenTests(),
        ClearMarkScheme(),
        ComputeChecksums(),
        CheckCellMetadata(),
    ]


def student_version(source: NotebookNode) -> NotebookNode:
    """The student's copy of an instructor notebook: no solutions, no hidden tests, no outputs."""
    nb = copy.deepcopy(source)
    resources: dict[str, Any] = {}
    for step in _preprocessors():
        nb, resources = step.preprocess(nb, resources)
    for cell in nb.cells:
        for key in _VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
    return nb


def read_notebook(path: Path) -> NotebookNode:
    """A notebook file, as nbformat version 4."""
    nb: NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    return nb


def notebook_text(nb: NotebookNode) -> str:
    """The file text of a notebook: nbformat's JSON (sorted keys, one-space indent), one final newline."""
    text: str = nbformat.writes(nb, version=4)  # type: ignore[no-untyped-call]
    return text.rstrip("\n") + "\n"


def write_notebook(nb: NotebookNode, path: Path) -> None:
    """Write a notebook the same way every time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(notebook_text(nb), encoding="utf-8")


def source_notebooks(source_dir: Path | None = None) -> list[Path]:
    """The instructor notebooks, in order."""
    folder = source_dir or repo_root() / SOURCE_DIR
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def release(source_dir: Path | None = None, out_dir: Path | None = None) -> list[Path]:
    """Write the student version of every instructor notebook; remove stale ones. Returns the paths."""
    out = out_dir or repo_root() / RELEASE_DIR
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in source_notebooks(source_dir):
        target = out / path.name
        write_notebook(student_version(read_notebook(path)), target)
        written.append(target)
    names = {p.name for p in written}
    for stale in out.glob("*.ipynb"):
        if stale.name not in names:
            stale.unlink()
    return written


def check_release(source_dir: Path | None = None, out_dir: Path | None = None) -> list[str]:
    """What differs between the student notebooks and what :func:`release` would write ("" = none)."""
    out = out_dir or repo_root() / RELEASE_DIR
    problems = []
    expected = {}
    for path in source_notebooks(source_dir):
        expected[path.name] = notebook_text(student_version(read_notebook(path)))
    for name, text in expected.items():
        target = out / name
        if not target.is_file():
            problems.append(f"{RELEASE_DIR / name} is missing")
        elif target.read_text(encoding="utf-8") != text:
            problems.append(f"{RELEASE_DIR / name} differs from its release")
    for extra in sorted(out.glob("*.ipynb")):
        if extra.name not in expected:
            problems.append(f"{RELEASE_DIR / extra.name} has no source in {SOURCE_DIR}")
    return problems


def grade_cells(nb: NotebookNode) -> Iterable[NotebookNode]:
    """The autograder test cells (nbgrader ``grade: true``), in order."""
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            yield cell
