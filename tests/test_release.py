"""The student bundle (``make release``): no answer and no hidden check in it, and it works.

The bundle is built into a temporary folder, then searched for every solution line and every
hidden check's name and messages, taken from the instructor's files by this test's own reading
(not by the builder's). Its own code (a bare venv that imports TrafficLab from the bundle only,
nothing pip-installed) collects its graders with pytest and, against a real lab whose daemon
and pods run that code too, passes ``trafficlab check canary`` with the reference answer. The
builder's trust rules (where it deletes, symlinks) are tried on a copy of the repository.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from trafficlab.course.__main__ import main as course_main
from trafficlab.course.bundle import Bundle, ReleaseError, build_bundle, student_makefile
from trafficlab.course.public_checks import StripError, strip_hidden_checks
from trafficlab.course.release import repo_root

ROOT = repo_root()
# What the bundle must hold, and what must never reach it.
EXPECTED = ("README.md", "Makefile", "pyproject.toml", "trafficlab", "taskapi", "cluster", "lessons",
            "notebooks", "graders")
NEVER = ("solutions", "tests", "benchmarks", ".ci", ".git", "nbgrader_config.py", "source",
         "gradebook.db")
# Solution lines that are in the bundle for a reason other than the answer (checked one by one).
NOT_ANSWERS = {
    # The rollout tool's documented default steps (trafficlab/monitoring/rollout/policy.py), which the
    # reference policy keeps; the exercise grades thresholds, not steps.
    "steps: [5, 25, 50, 100]",
    # nbgrader's marker, named in the docstrings of the release and scoring modules.
    "### BEGIN HIDDEN TESTS",
}
# Exercise inputs a student must have: a line an answer shares with them is part of the question.
INPUTS = ("cluster/manifests", "graders/review/flawed")


def _python(bundle: Path) -> Path:
    """An interpreter that imports TrafficLab from the bundle and nothing from this checkout.

    A bare venv (no pip, nothing installed) whose one ``.pth`` file puts the bundle first and
    this environment's site-packages after it, for the third-party packages only: the editable
    install of this checkout is a finder its own ``.pth`` starts, which this venv never reads.
    Unlike PYTHONPATH it holds under ``python -I``, as the lab daemon and the pods run, so the
    whole lab runs the bundle's code.
    """
    venv = bundle.parent / "venv"
    if not venv.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                       timeout=120)
        paths = sysconfig.get_paths()
        site = subprocess.run([str(venv / "bin" / "python"), "-c",
                               "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True, timeout=60).stdout.strip()
        lines = dict.fromkeys([str(bundle), paths["purelib"], paths["platlib"]])
        Path(site, "trafficlab-bundle.pth").write_text("\n".join(lines) + "\n")
    return venv / "bin" / "python"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _py(bundle: Path, *args: str, cwd: Path | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the bundle's code, from the bundle (``python -m`` from its root); nothing installed."""
    return subprocess.run([str(_python(bundle)), *args], cwd=cwd or bundle, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return build_bundle(tmp_path_factory.mktemp("release") / "student")


def _notebook_text(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        parts.append("".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"])
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            parts.append("".join(text) if isinstance(text, list) else text)
    return "\n".join(parts)


def _text(path: Path) -> str:
    """A file as a reader sees it: a notebook's cells decoded from their JSON, too."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    return raw + "\n" + _notebook_text(path) if path.suffix == ".ipynb" else raw


def _files(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.rglob("*")) if p.is_file())


def _corpus(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): _text(p) for p in _files(folder)}


# -- what is in it ---------------------------------------------------------------------------
def test_bundle_holds_the_lab_and_no_instructor_material(bundle: Bundle) -> None:
    names = {p.name for p in bundle.path.iterdir()}
    assert set(EXPECTED) <= names
    for path in bundle.path.rglob("*"):
        assert not set(path.relative_to(bundle.path).parts) & set(NEVER), path
        assert "__pycache__" not in path.parts and not path.is_symlink(), path
    assert sorted(p.name for p in (bundle.path / "notebooks").glob("*.ipynb")) == \
        sorted(p.name for p in (ROOT / "solutions" / "notebooks").glob("*.ipynb"))
    # The notebooks are the ones release writes to notebooks/, byte for byte.
    for nb in (bundle.path / "notebooks").glob("*.ipynb"):
        assert nb.read_bytes() == (ROOT / "notebooks" / nb.name).read_bytes()
    assert "solutions/" not in (bundle.path / "notebooks" / "README.md").read_text()
    assert os.access(bundle.path / "cluster" / "kind" / "diagnose.sh", os.X_OK)  # modes kept
    readme = (bundle.path / "README.md").read_text()
    for needed in ("make lab-up", "jupyter lab notebooks/", "trafficlab check canary", "`review`"):
        assert needed in readme


def test_the_makefile_keeps_only_student_targets(bundle: Bundle) -> None:
    text = (bundle.path / "Makefile").read_text()
    for gone in ("test:", "test-fast:", "release:", "autograde:", "bench:", "golden-check:", "lint:",
                 "solutions", "tests/", "benchmarks"):
        assert gone not in text
    proc = subprocess.run(["make", "-s", "-C", str(bundle.path), "help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "make lab-up" in proc.stdout and "release" not in proc.stdout
    # What `make lab-up` would run, without running it.
    dry = subprocess.run(["make", "-n", "-C", str(bundle.path), "lab-up"], capture_output=True,
                         text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "trafficlab up --backend auto" in dry.stdout


def test_a_makefile_without_a_student_target_is_refused() -> None:
    with pytest.raises(ReleaseError, match="no rule for lab-down"):
        student_makefile("help:\n\t@echo hi\n\nlab-up:\n\ttrue\n", ("help", "lab-up", "lab-down"))


def test_the_review_answer_key_is_left_out(bundle: Bundle) -> None:
    """The flawed routes are the exercise; their README names each flaw: that stays home."""
    source = (ROOT / "graders" / "review" / "flawed" / "README.md").read_text()
    shipped = (bundle.path / "graders" / "review" / "flawed" / "README.md").read_text()
    assert "planted flaw" in source and "planted flaw" not in shipped
    for row in (ln for ln in source.splitlines() if ln.startswith("| 0") or ln.startswith("| 1")):
        flaw, finding = (c.strip() for c in row.strip("|").split("|")[1:3])
        assert flaw not in shipped and finding not in shipped
    flawed = sorted(p.name for p in (ROOT / "graders" / "review" / "flawed").glob("*.yaml"))
    assert sorted(p.name for p in (bundle.path / "graders" / "review" / "flawed").glob("*.yaml")) == flawed
    for name in flawed:  # the inputs themselves ship unchanged
        assert name in shipped


# -- no answer -------------------------------------------------------------------------------
def _solution_lines() -> dict[str, str]:
    public: set[str] = set()
    for path in [*(ROOT / "notebooks").glob("*.ipynb"), *(ROOT / "lessons").rglob("*.md")]:
        public.update(line.strip() for line in _text(path).splitlines())
    for folder in INPUTS:
        for path in _files(ROOT / folder):
            if path.name != "README.md":
                public.update(line.strip() for line in _text(path).splitlines())
    lines: dict[str, str] = {}
    for path in _files(ROOT / "solutions"):
        for line in (_notebook_text(path) if path.suffix == ".ipynb" else path.read_text()).splitlines():
            line = line.strip()
            if len(line) > 20 and line not in public:
                lines.setdefault(line, str(path.relative_to(ROOT)))
    return lines


def test_no_solution_line_is_in_the_bundle(bundle: Bundle) -> None:
    lines = _solution_lines()
    assert len(lines) >= 20  # every reference answer has lines of its own: the check is not empty
    corpus = _corpus(bundle.path)
    found = {line: (source, [name for name, text in corpus.items() if line in text])
             for line, source in lines.items() if line not in NOT_ANSWERS}
    assert {line: hit for line, hit in found.items() if hit[1]} == {}
    for line in NOT_ANSWERS:  # each exception is still needed, or it should go
        assert line in lines, line


def test_no_solution_file_is_in_the_bundle(bundle: Bundle) -> None:
    """Whatever its comments and layout, no file of the bundle holds a reference answer's objects."""
    answers = {}
    for path in (ROOT / "solutions" / "exercises").glob("*.yaml"):
        answers[path.name] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert len(answers) >= 10
    for path in _files(bundle.path):
        if path.suffix in (".yaml", ".yml"):
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
            assert docs not in answers.values(), path
    for name in answers:
        assert not any(p.name == name for p in _files(bundle.path)), name


# -- no hidden check -------------------------------------------------------------------------
def _is_hidden(node: ast.AST) -> bool:
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    return any(isinstance(d, ast.Call) and any(k.arg == "hidden" and isinstance(k.value, ast.Constant)
                                               and k.value.value is True for k in d.keywords)
               for d in node.decorator_list)


def _strings(node: ast.AST) -> set[str]:
    return {s.value for s in ast.walk(node) if isinstance(s, ast.Constant) and isinstance(s.value, str)}


def _hidden_secrets() -> dict[str, set[str]]:
    """Per instructor file: each hidden check's name, label and messages, and the constants only
    hidden checks use (a hint kept in a module constant)."""
    secrets: dict[str, set[str]] = {}
    modules = {path: ast.parse(path.read_text())
               for path in [*(ROOT / "graders").rglob("*.py"), *(ROOT / "trafficlab").rglob("*.py")]}
    # A public check elsewhere may share a hidden one's name (two modules, one test_x each).
    public_checks = {n.name for tree in modules.values() for n in tree.body
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not _is_hidden(n)}
    for path, tree in modules.items():
        hidden = [n for n in tree.body if _is_hidden(n)]
        if not hidden:
            continue
        public = [n for n in tree.body if n not in hidden]
        public_names = {n.id for p in public for n in ast.walk(p)
                        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        public_strings = set().union(*(_strings(p) for p in public if not isinstance(p, ast.Assign)))
        found: set[str] = set()
        for check in hidden:
            assert isinstance(check, (ast.FunctionDef, ast.AsyncFunctionDef))
            if check.name not in public_checks:
                found |= {check.name, check.name.removeprefix("test_").replace("_", " ")}
            found |= {s for s in _strings(check) if len(s) >= 12 and s not in public_strings}
            for name in {n.id for n in ast.walk(check) if isinstance(n, ast.Name)} - public_names:
                for stmt in tree.body:
                    if isinstance(stmt, ast.Assign) and any(
                            isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
                        found |= {s for s in _strings(stmt) if len(s) >= 12}
        secrets[str(path.relative_to(ROOT))] = found
    return secrets


def test_no_hidden_check_is_in_the_bundle(bundle: Bundle) -> None:
    secrets = _hidden_secrets()
    assert sum(len(s) for s in secrets.values()) >= 10  # there are hidden checks to hide
    assert set(bundle.hidden_checks) == set(secrets)
    corpus = _corpus(bundle.path)
    leaks = {secret: [name for name, text in corpus.items() if secret in text]
             for found in secrets.values() for secret in found}
    assert {s: where for s, where in leaks.items() if where} == {}
    # The instructor's own files keep them: only the copies lose them.
    for rel, names in bundle.hidden_checks.items():
        text = (ROOT / rel).read_text()
        assert all(f"def {name}(" in text for name in names)


# Each exercise's public checks and their points, as the runner assigns them; with
# ``skip_hidden`` the instructor's hidden checks are counted in the split but left out.
WORTHS = (
    "def worths(skip_hidden):\n"
    "    import importlib\n"
    "    from trafficlab.grading.catalog import catalog, load_module\n"
    "    from trafficlab.grading.checks import assign_points, checks_of\n"
    "    from trafficlab.course.exercises import EXERCISES\n"
    "    items = [(e.id, load_module(e), e.points) for e in catalog()]\n"
    "    items += [(e.id, importlib.import_module(e.module), e.points) for e in EXERCISES.values()]\n"
    "    out = {}\n"
    "    for ident, module, total in items:\n"
    "        specs = checks_of(module)\n"
    "        pairs = zip(specs, assign_points(specs, total), strict=True)\n"
    "        out[ident] = {s.name: p for s, p in pairs if not (skip_hidden and s.hidden)}\n"
    "    return out\n")


def test_the_bundles_checks_import_and_collect(bundle: Bundle) -> None:
    """Its own code, from its own folder: every grader imports, none declares a hidden check."""
    script = (
        "import importlib, json, trafficlab\n"
        "from trafficlab.grading.catalog import catalog, graders_dir, load_module\n"
        "from trafficlab.grading.checks import checks_of\n"
        "from trafficlab.course.exercises import EXERCISES\n"
        "mods = [load_module(e) for e in catalog()]\n"
        "mods += [importlib.import_module(e.module) for e in EXERCISES.values()]\n"
        "specs = [s for m in mods for s in checks_of(m)]\n"
        f"{WORTHS}"
        "print(json.dumps({'package': trafficlab.__file__, 'graders': str(graders_dir()),\n"
        "                  'checks': len(specs), 'hidden': [s.name for s in specs if s.hidden],\n"
        "                  'worths': worths(False)}))\n")
    proc = _py(bundle.path, "-I", "-c", script)  # -I: as the lab daemon and the pods run
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["package"].startswith(str(bundle.path)) and seen["graders"].startswith(str(bundle.path))
    assert seen["hidden"] == [] and seen["checks"] >= 40
    # Each public check is worth in the student's self-check what it is worth in the grade.
    namespace: dict[str, Any] = {}
    exec(WORTHS, namespace)
    assert seen["worths"] == namespace["worths"](True)
    collect = _py(bundle.path, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "graders")
    assert collect.returncode == 0, collect.stdout + collect.stderr
    collected = [ln for ln in collect.stdout.splitlines() if "::" in ln]
    assert len(collected) >= 40
    assert not any(name in collect.stdout for names in bundle.hidden_checks.values() for name in names)


@pytest.mark.integration
def test_trafficlab_check_passes_from_the_bundle(bundle: Bundle, tmp_path: Path) -> None:
    """A student's lab and self-check, run by the bundle's code, pass the reference answer."""
    work = bundle.path / "notebooks"
    shutil.copyfile(ROOT / "solutions" / "exercises" / "canary.yaml", work / "canary.yaml")
    home = tmp_path / "lab"
    up = _py(bundle.path, "-m", "trafficlab.cli", "--home", str(home), "up", "--backend", "local",
             cwd=work)
    try:
        assert up.returncode == 0, up.stderr
        # The daemon and the pods run the bundle's interpreter, so the bundle's code (above).
        pids = json.loads((home / "pids.json").read_text())
        lab_pids = [json.loads((home / "lab.json").read_text())["pid"], *pids.get("pods", {}).values()]
        assert len(lab_pids) >= 3
        for pid in lab_pids:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            assert argv0 == str(_python(bundle.path)), (pid, argv0)
        check = _py(bundle.path, "-m", "trafficlab.cli", "--home", str(home), "check", "canary",
                    "-o", "json", cwd=work)
        assert check.returncode == 0, check.stdout + check.stderr
        result = json.loads(check.stdout)
        assert result["passed"] and result["score"] == result["max_score"] == 9
        assert all(not c["hidden"] for c in result["checks"])
    finally:
        down = _py(bundle.path, "-m", "trafficlab.cli", "--home", str(home), "down", cwd=work)
        (work / "canary.yaml").unlink()
    assert down.returncode == 0, down.stderr


# -- the builder's trust rules ---------------------------------------------------------------
@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The parts of the repository a bundle is built from, copied (no .venv, no .git)."""
    copy = tmp_path / "repo"
    skip = shutil.ignore_patterns("__pycache__", ".*", "*.egg-info")
    for name in ("trafficlab", "taskapi", "cluster", "docs", "lessons", "graders", "notebooks",
                 "solutions"):
        shutil.copytree(ROOT / name, copy / name, ignore=skip)
    for name in ("Makefile", "pyproject.toml"):
        shutil.copyfile(ROOT / name, copy / name)
    return copy


def test_a_rebuild_starts_from_scratch_inside_release(repo_copy: Path) -> None:
    stale = repo_copy / "release" / "student" / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an older release")
    built = build_bundle(root=repo_copy)
    assert built.path == (repo_copy / "release" / "student").resolve()
    assert not stale.exists() and (built.path / "README.md").is_file()


def test_nothing_outside_release_is_deleted(repo_copy: Path, tmp_path: Path) -> None:
    mine = tmp_path / "my-work"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    for out in (mine, repo_copy, repo_copy / "release", tmp_path):
        if out == repo_copy / "release":
            (out / "keep.txt").parent.mkdir(exist_ok=True)
            (out / "keep.txt").write_text("not the bundle's")
        with pytest.raises(ReleaseError):
            build_bundle(out, root=repo_copy)
    assert (mine / "thesis.txt").read_text() == "precious"
    assert (repo_copy / "release" / "keep.txt").is_file() and (repo_copy / "Makefile").is_file()


def test_a_release_folder_that_links_elsewhere_is_refused(repo_copy: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "student").mkdir(parents=True)
    (elsewhere / "student" / "data.txt").write_text("someone's")
    (repo_copy / "release").mkdir()
    (repo_copy / "release" / "student").symlink_to(elsewhere / "student")
    with pytest.raises(ReleaseError, match="symlink"):
        build_bundle(root=repo_copy)
    (repo_copy / "release" / "student").unlink()
    (repo_copy / "release").rmdir()
    (repo_copy / "release").symlink_to(elsewhere)  # release/ itself a link: its inside is not ours
    with pytest.raises(ReleaseError, match="symlink"):
        build_bundle(root=repo_copy)
    assert (elsewhere / "student" / "data.txt").read_text() == "someone's"


@pytest.mark.parametrize("where", ["lessons/answer.md", "graders/review/flawed/99-hint.yaml",
                                   "trafficlab/course/answers_link.py"])
def test_a_symlink_into_solutions_is_refused(repo_copy: Path, tmp_path: Path, where: str) -> None:
    """A link would copy the answer it points to; the release refuses it before deleting anything."""
    (repo_copy / where).symlink_to(repo_copy / "solutions" / "exercises" / "canary.yaml")
    previous = repo_copy / "release" / "student" / "README.md"
    previous.parent.mkdir(parents=True)
    previous.write_text("the last good bundle")
    with pytest.raises(ReleaseError, match="symlink"):
        build_bundle(root=repo_copy)
    assert previous.read_text() == "the last good bundle"


def test_a_check_that_cannot_be_cut_keeps_the_last_bundle(repo_copy: Path) -> None:
    grader = repo_copy / "graders" / "test_canary.py"
    grader.write_text(grader.read_text().replace("hidden=True", "hidden=bool(1)"))
    previous = repo_copy / "release" / "student" / "README.md"
    previous.parent.mkdir(parents=True)
    previous.write_text("the last good bundle")
    with pytest.raises(StripError, match=r"graders/test_canary\.py"):
        build_bundle(root=repo_copy)
    assert previous.read_text() == "the last good bundle"


def test_answer_files_a_run_left_in_notebooks_stay_out(repo_copy: Path, tmp_path: Path) -> None:
    shutil.copyfile(repo_copy / "solutions" / "exercises" / "canary.yaml",
                    repo_copy / "notebooks" / "canary.yaml")
    (repo_copy / "notebooks" / ".lab").mkdir()
    built = build_bundle(tmp_path / "student", root=repo_copy)
    assert not (built.path / "notebooks" / "canary.yaml").exists()
    assert not (built.path / "notebooks" / ".lab").exists()


def test_the_cli_builds_the_bundle_and_reports_refusals(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "student"
    assert course_main(["release", "--out", str(out)]) == 0
    assert (out / "README.md").is_file()
    assert "hidden checks left out" in capsys.readouterr().out
    assert course_main(["release", "--out", str(out)]) == 1  # not ours to delete: outside release/
    assert "outside" in capsys.readouterr().err
    assert (out / "README.md").is_file()


# -- cutting hidden checks out of a module ---------------------------------------------------
GRADER = '''"""A grader."""
from trafficlab.grading import check

SHARED = "a hint both checks give"
SECRET_HINT = "the hint only the hidden check gives"


def _secret_helper(ctx):
    return SECRET_HINT


@check(points=1, success="public check passed")
def test_public(ctx):
    ctx.fail(SHARED)


# Why the hidden check exists.
@check(points=1, hidden=True, success="hidden check passed")
def test_secret(ctx):
    ctx.fail(SHARED, _secret_helper(ctx), "inline hidden message")


@check(points=2)
def test_last(ctx):
    pass
'''


def test_a_hidden_check_goes_with_what_only_it_uses() -> None:
    public = strip_hidden_checks(GRADER, "graders/test_x.py")
    assert public.checks == ["test_secret"] and sorted(public.helpers) == ["SECRET_HINT", "_secret_helper"]
    for gone in ("test_secret", "hidden check passed", "inline hidden message", "SECRET_HINT",
                 "the hint only", "Why the hidden", "_secret_helper"):
        assert gone not in public.text
    for kept in ('SHARED = "a hint both checks give"', "def test_public(ctx):", "def test_last(ctx):"):
        assert kept in public.text
    assert "\n\n\n\n" not in public.text
    compile(public.text, "x", "exec")
    # A helper another released file names is kept, lest that file break.
    kept = strip_hidden_checks(GRADER, "x.py", used_elsewhere=lambda name: name == "_secret_helper")
    assert "def _secret_helper" in kept.text and kept.helpers == []


def test_a_module_without_hidden_checks_is_copied_as_is() -> None:
    text = GRADER.replace("hidden=True", "hidden=False")
    assert strip_hidden_checks(text).text == text


@pytest.mark.parametrize("source, problem", [
    (GRADER.replace("hidden=True", "hidden=SECRET"), "an expression"),
    (GRADER + "\n\nclass Box:\n    @check(hidden=True)\n    def test_inner(self, ctx):\n        pass\n",
     "not a top-level function"),
    (GRADER + "\n\nLATE = make_check(hidden=True)\n", "cannot cut out"),
    (GRADER + "\n\n__all__ = ['test_public']  # test_secret is hidden\n", "still named"),
    (GRADER.replace("@check(points=2)", "@check()"), "no points="),
    (GRADER.replace("@check(points=2)", "@check(points=None)"), "no points="),
])
def test_an_unsafe_cut_is_refused(source: str, problem: str) -> None:
    with pytest.raises(StripError, match=problem):
        strip_hidden_checks(source, "graders/test_x.py")
