"""The student bundle (``release/student/``): what a student installs and works in.

It holds the lab (``trafficlab/``, ``taskapi/``, ``cluster/``, ``pyproject.toml``, a Makefile
with only the student targets), the lessons, the student notebooks, the public checks and a
README for students. It holds no reference answer and no hidden check, as nbgrader keeps
``source/`` with the instructor and releases only the student version:

- ``solutions/``, ``tests/``, ``benchmarks/``, ``.ci/``, ``.git``, nbgrader's config and
  gradebook are never copied: the bundle is made from a list of what goes in, not of what
  stays out;
- every ``@check(..., hidden=True)`` is cut out of the copies of the Python files
  (:mod:`trafficlab.course.public_checks`), the instructor's files stay as they are;
- ``graders/review/flawed/README.md`` names each planted flaw and its finding: that is the
  exercise's answer key, so the bundle gets a README with each file's intent only;
- the notebooks are written from ``solutions/notebooks/`` by the same nbgrader steps as
  ``notebooks/`` (:mod:`trafficlab.course.release`); answer files a run left in
  ``notebooks/`` are not copied;
- a symlink or special file in what is copied is refused, never followed (a link to
  ``solutions/`` would otherwise put an answer in the bundle).

The bundle is rebuilt from scratch each time. The old one is deleted only inside the
repository's ``release/`` folder; any other output folder must be new or empty.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from trafficlab._errors import ReleaseError
from trafficlab.course.public_checks import strip_hidden_checks
from trafficlab.course.release import (
    SOURCE_DIR,
    notebook_text,
    read_notebook,
    repo_root,
    source_notebooks,
    student_version,
)

__all__ = ["BUNDLE_DIR", "STUDENT_TARGETS", "Bundle", "ReleaseError", "build_bundle"]

BUNDLE_DIR = Path("release") / "student"
#: Folders copied whole (less caches and dotfiles); Python files lose their hidden checks.
_TREES = ("trafficlab", "taskapi", "cluster", "docs", "lessons", "graders")
#: Make targets a student has a use for; the others need tests/, solutions/ or benchmarks/.
STUDENT_TARGETS = ("help", "venv", "$(STAMP)", "lab-up", "lab-down", "lab-status", "clean")
#: Names that must never reach a bundle, whatever a copied folder holds.
_NEVER = frozenset({"solutions", "tests", "benchmarks", ".ci", ".git", "source", "gradebook.db",
                    "nbgrader_config.py", "autograded", "submitted", "grades.csv"})
_JUNK_DIRS = frozenset({"__pycache__"})
_JUNK_SUFFIXES = (".pyc", ".pyo", ".egg-info")
_REVIEW_README = Path("graders") / "review" / "flawed" / "README.md"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TEXT_SUFFIXES = (".py", ".ipynb", ".md", ".yaml", ".yml", ".toml", ".txt", ".sh", ".json")


@dataclass
class Bundle:
    """A built bundle: where it is, its files, and the hidden checks cut out of the copies."""

    path: Path
    files: list[Path] = field(default_factory=list)
    hidden_checks: dict[str, list[str]] = field(default_factory=dict)


def _prepare(out: Path, root: Path) -> Path:
    """Delete the old bundle (only inside ``root/release/``) and create the folder anew."""
    release_dir = root / "release"
    if out.is_symlink() or release_dir.is_symlink():
        link = out if out.is_symlink() else release_dir
        raise ReleaseError(f"{link} is a symlink: the release deletes only inside the repository's "
                           "own release/ folder; replace the link with a real folder")
    target = out.resolve()
    if target == root or root.is_relative_to(target):
        raise ReleaseError(f"{out} holds the repository itself; choose a folder such as {root / BUNDLE_DIR}")
    if target.exists():
        if not target.is_dir():
            raise ReleaseError(f"{out} exists and is not a folder; remove it or choose another")
        inside_release = target != release_dir and target.is_relative_to(release_dir)
        if not inside_release and any(target.iterdir()):
            raise ReleaseError(f"{out} is not empty and is outside {release_dir}: the release deletes "
                               "only its own folders there; remove it yourself or choose a new folder")
        shutil.rmtree(target)
    target.mkdir(parents=True)
    return target


def _is_junk(path: Path) -> bool:
    name = path.name
    return name.startswith(".") or name in _JUNK_DIRS or name.endswith(_JUNK_SUFFIXES)


def _walk(root: Path, rel: Path) -> Iterator[Path]:
    """The regular files under ``root/rel`` (relative to ``root``), in order; links refused."""
    top = root / rel
    if not top.exists() and not top.is_symlink():
        raise ReleaseError(f"{root} has no {rel}; build the bundle from the instructor's repository")
    entries = [top] if top.is_file() or top.is_symlink() else sorted(top.iterdir())
    for entry in entries:
        rel_entry = entry.relative_to(root)
        if _is_junk(entry) and entry != top:
            continue
        mode = entry.lstat().st_mode
        if stat.S_ISLNK(mode):
            raise ReleaseError(f"{rel_entry} is a symlink; the release copies only regular files "
                               "(a link could bring in an answer): replace it with the file itself")
        if stat.S_ISDIR(mode):
            if entry.name in _NEVER:
                raise ReleaseError(f"{rel_entry} would put instructor material in the bundle; "
                                   "move it out of the released folders")
            yield from _walk(root, rel_entry)
        elif stat.S_ISREG(mode):
            if entry.name in _NEVER:
                raise ReleaseError(f"{rel_entry} would put instructor material in the bundle; "
                                   "move it out of the released folders")
            yield rel_entry
        else:
            raise ReleaseError(f"{rel_entry} is not a regular file; remove it from the released folders")


def _identifier_index(root: Path, files: list[Path]) -> dict[str, set[Path]]:
    index: dict[str, set[Path]] = {}
    for rel in files:
        if rel.suffix in _TEXT_SUFFIXES:
            for word in set(_IDENT.findall((root / rel).read_text(encoding="utf-8", errors="replace"))):
                index.setdefault(word, set()).add(rel)
    return index


_MAKE_RULE = re.compile(r"^([^\s:=#]+(?:\s+[^\s:=#]+)*)\s*:(?!=)")
_MAKE_VAR = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*[?:+]?=")
_MAKE_HEAD = "# TrafficLab, the student lab: `make lab-up` starts it, `make help` lists the targets."


def _elsewhere(index: dict[str, set[Path]], rel: Path) -> Callable[[str], bool]:
    """Whether a name is written in a released file other than ``rel``."""

    def used(name: str) -> bool:
        return bool(index.get(name, set()) - {rel})

    return used


def student_makefile(text: str, targets: tuple[str, ...] = STUDENT_TARGETS) -> str:
    """The instructor's Makefile with only ``targets``: their rules, help lines and .PHONY.

    Blocks are separated by blank lines; a rule's block keeps the comments above it. The
    variables no kept rule uses are dropped, and the heading comment is the student's.
    """
    blocks = [b.splitlines() for b in text.strip("\n").split("\n\n")]
    rules: list[str] = []
    found: set[str] = set()
    for block in blocks:
        head = next((ln for ln in block if not ln.startswith("#")), "")
        match = _MAKE_RULE.match(head)
        if match is None or head.startswith(".PHONY") or match.group(1) not in targets:
            continue
        found.add(match.group(1))
        if match.group(1) == "help":
            block = [ln for ln in block if "@echo" not in ln
                     or any(re.search(rf'"make {re.escape(t)}(\s|")', ln) for t in targets)]
        rules.append("\n".join(block))
    missing = [t for t in targets if t not in found]
    if missing:
        raise ReleaseError(f"the Makefile has no rule for {', '.join(missing)}, which the student "
                           "bundle needs; add it or update STUDENT_TARGETS in trafficlab/course/bundle.py")
    used = "\n".join(rules)
    assignments = [(m.group(1), ln) for block in blocks for ln in block if (m := _MAKE_VAR.match(ln))]
    keep = {"SHELL"}
    while True:  # a variable may be used only by another kept one (BIN := $(VENV)/bin)
        seen = used + "\n" + "\n".join(ln for name, ln in assignments if name in keep)
        more = {name for name, _ in assignments if f"$({name})" in seen} - keep
        if not more:
            break
        keep |= more
    variables = "\n".join(ln for name, ln in assignments if name in keep)
    phony = ".PHONY: " + " ".join(t for t in targets if not t.startswith("$("))
    return "\n\n".join([_MAKE_HEAD + "\n" + variables, phony, *rules]) + "\n"


def student_pyproject(text: str) -> str:
    """pyproject.toml with pytest pointed at the public checks (the bundle has no tests/)."""
    lines = [('testpaths = ["graders"]' if ln.startswith("testpaths") else ln)
             for ln in text.splitlines()]
    return "\n".join(lines) + "\n"


def student_markdown(text: str) -> str:
    """A Markdown page less its paragraphs meant for the instructor (those naming solutions/)."""
    paragraphs = text.rstrip("\n").split("\n\n")
    return "\n\n".join(p for p in paragraphs if "solutions/" not in p) + "\n"


def review_readme(text: str) -> str:
    """The flawed routes' README without its answer key: each file and its intent only."""
    rows = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = cells
            continue
        row = dict(zip(header, cells, strict=False))
        if "file" in row and "intent (what the fixed route must do)" in row:
            rows.append(f"| {row['file']} | {row['intent (what the fixed route must do)']} |")
    body = ("# Flawed routes for the `review` exercise\n\n"
            "Each file is an HTTPRoute written the way an AI assistant plausibly answers a request\n"
            "such as \"give me a 10% canary for the Task API\". Each has one flaw. Find it (`trafficlab\n"
            "review FILE` helps), fix it, and check the fixed route with traffic.\n")
    if rows:
        body += ("\n| file | what the fixed route must do |\n| --- | --- |\n" + "\n".join(rows) + "\n")
    return body


def _exercise_table(catalog_text: str) -> str:
    data = yaml.safe_load(catalog_text) or {}
    rows = [f"| `{e['id']}` | {e['title']} | {', '.join(f'`{f}`' for f in e.get('files', []))} |"
            for e in data.get("exercises", [])]
    return "| exercise | title | your files |\n| --- | --- | --- |\n" + "\n".join(rows) + "\n"


STUDENT_README = """\
# TrafficLab: the student lab

A hands-on lab for progressive delivery with the Kubernetes Gateway API: canary releases,
rollback, blue-green switches, A/B testing by header, per-version monitoring and automated
rollouts, on a real Envoy gateway with a real Task API behind it.

## Start the lab

```
make lab-up       # creates .venv, installs the lab (Python 3.10 or newer), starts it
make lab-status   # the gateway's URL
make lab-down     # stops everything the lab started
```

With Docker and kind installed, `make lab-up LAB_BACKEND=kind` builds the same lab on a kind
cluster with Envoy Gateway (see [docs/kind.md](docs/kind.md)).

## Work the notebooks

Read a lesson in [lessons/](lessons/README.md), then open its notebook:

```
.venv/bin/jupyter lab notebooks/
```

Each notebook finds the running lab (or starts one), has you write a route in a cell that
starts with `%%writefile NAME.yaml` (the file lands next to the notebook), applies it and
shows the split. Edit only the cells marked `# YOUR ANSWER HERE`.

## Check your work

In the folder that holds your files (`notebooks/` when the notebook wrote them):

```
cd notebooks
../.venv/bin/trafficlab check canary          # or: trafficlab check canary --dir DIR
```

`trafficlab check ID` applies your files to your running lab, sends real traffic and says
what it saw, what it expected and a hint. These are the public checks (`graders/`); the
instructor's grading runs more, so a full self-check score is a good sign, not the grade.
`.venv/bin/pytest graders/test_canary.py --submission notebooks` runs the same checks under
pytest in a fresh lab of their own. The monitoring and automated-rollout notebooks check
their Python answers in the notebook itself (`course.check(lab, ...)`).

The exercises (`graders/catalog.yaml` has each one's task):

{exercises}
## Stop

`make lab-down` stops the lab; `make clean` also removes `.venv` and `.lab`.
"""


def _student_readme(root: Path) -> str:
    table = _exercise_table((root / "graders" / "catalog.yaml").read_text(encoding="utf-8"))
    return STUDENT_README.replace("{exercises}", table)


STUDENT_GITIGNORE = ".venv/\n.lab/\n__pycache__/\n*.pyc\n*.egg-info/\n.pytest_cache/\nnotebooks/.lab/\n"


def _contents(src: Path, files: list[Path], bundle: Bundle) -> dict[Path, str | None]:
    """What each file of the bundle holds (``None``: a copy of the instructor's file).

    All of it is worked out before anything is deleted or written, so a refusal (a hidden
    check that cannot be cut, a Makefile without a student target) leaves the last bundle be.
    """
    index = _identifier_index(src, files)
    contents: dict[Path, str | None] = {}
    for rel in files:
        if rel == _REVIEW_README:
            contents[rel] = review_readme((src / rel).read_text(encoding="utf-8"))
        elif rel.suffix == ".py":
            public = strip_hidden_checks((src / rel).read_text(encoding="utf-8"), str(rel),
                                         used_elsewhere=_elsewhere(index, rel))
            if public.checks:
                bundle.hidden_checks[str(rel)] = public.checks
            contents[rel] = public.text
        elif rel.suffix == ".md" and rel.parts[0] in ("lessons", "docs"):
            contents[rel] = student_markdown((src / rel).read_text(encoding="utf-8"))
        else:
            contents[rel] = None
    # The student notebooks, by the same steps as notebooks/; never what a run left there.
    for path in source_notebooks(src / SOURCE_DIR):
        contents[Path("notebooks") / path.name] = notebook_text(student_version(read_notebook(path)))
    for extra in sorted((src / "notebooks").glob("*.md")):
        if extra.is_symlink() or not extra.is_file():
            raise ReleaseError(f"notebooks/{extra.name} is not a regular file; the release copies "
                               "only regular files: replace it with the file itself")
        contents[Path("notebooks") / extra.name] = student_markdown(extra.read_text(encoding="utf-8"))
    contents[Path("README.md")] = _student_readme(src)
    contents[Path("Makefile")] = student_makefile((src / "Makefile").read_text(encoding="utf-8"))
    contents[Path("pyproject.toml")] = student_pyproject((src / "pyproject.toml").read_text(encoding="utf-8"))
    contents[Path(".gitignore")] = STUDENT_GITIGNORE
    return contents


def build_bundle(out: Path | None = None, root: Path | None = None) -> Bundle:
    """Build the student bundle from the repository ``root`` into ``out`` (default ``release/student``).

    Returns what was written. Raises :class:`ReleaseError` or
    :class:`~trafficlab.course.public_checks.StripError`, before anything is deleted, when
    the output folder is not the release's own or when what would be copied holds a symlink,
    instructor material, or a hidden check that cannot be cut out safely.
    """
    src = (root or repo_root()).resolve()
    files = [f for tree in _TREES for f in _walk(src, Path(tree))]
    bundle = Bundle(Path())
    contents = _contents(src, files, bundle)
    bundle.path = dest = _prepare(out if out is not None else src / BUNDLE_DIR, src)
    for rel, text in contents.items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            shutil.copyfile(src / rel, target)
        else:
            target.write_text(text, encoding="utf-8")
        if (src / rel).is_file() and rel in files:
            shutil.copymode(src / rel, target)
    bundle.files = sorted(contents)
    _verify(dest)
    return bundle


def _verify(dest: Path) -> None:
    """A last look: nothing on the never-copied list made it in, whatever the code above did."""
    for dirpath, dirnames, filenames in os.walk(dest):
        for name in (*dirnames, *filenames):
            if name in _NEVER:
                path = Path(dirpath, name).relative_to(dest)
                raise ReleaseError(f"the bundle holds {path}, which must stay with the instructor")
