"""The public copy of a grader module: its hidden checks cut out of the source, by the AST.

A hidden check is a function decorated ``@check(..., hidden=True)``. It is cut out with its
decorators and the comment lines right above it, and so is every top-level helper (function,
class or constant) that only hidden checks used: a hint kept in a module constant is a
hidden check's message too. The rest of the file is kept byte for byte, so its comments and
layout stay as the instructor wrote them.

The cut is refused rather than guessed whenever it could leak or break something: a
``hidden=`` that is not a literal, a hidden check that is not a top-level function, the name
of a removed check still written somewhere in the file, or a check without declared points
beside hidden ones (its share of the exercise would change once they are gone).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from trafficlab._errors import StripError

__all__ = ["PublicSource", "StripError", "strip_hidden_checks"]

_BLANK_RUN = re.compile(r"\n{4,}")


@dataclass
class PublicSource:
    """A module's source without its hidden checks, and what was cut."""

    text: str
    checks: list[str] = field(default_factory=list)
    helpers: list[str] = field(default_factory=list)


def _check_hidden(call: ast.Call) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "hidden":
            return keyword.value
    return None


def _is_check_call(node: ast.expr) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "check") or (
        isinstance(func, ast.Attribute) and func.attr == "check")


def _hidden_decorator(node: ast.FunctionDef | ast.AsyncFunctionDef, filename: str) -> bool:
    for decorator in node.decorator_list:
        if not _is_check_call(decorator):
            continue
        assert isinstance(decorator, ast.Call)
        value = _check_hidden(decorator)
        if value is None:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, bool):
            return value.value
        raise StripError(f"{filename}:{decorator.lineno}: check {node.name} has hidden= set to an "
                         "expression; write hidden=True or hidden=False so the release can tell "
                         "whether to remove it")
    return False


def _names_defined(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
        return [t.id for t in stmt.targets if isinstance(t, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return [stmt.target.id]
    return []


def _names_used(nodes: Iterable[ast.AST]) -> set[str]:
    used: set[str] = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                used.add(sub.id)
            elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                used.add(sub.value)  # __all__ entries, getattr(module, "name")
    return used


def _hidden_checks(tree: ast.Module, filename: str) -> list[ast.stmt]:
    top = set(map(id, tree.body))
    hidden: list[ast.stmt] = []
    decorators: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _hidden_decorator(node, filename):
            if id(node) not in top:
                raise StripError(f"{filename}:{node.lineno}: the hidden check {node.name} is not a "
                                 "top-level function; move it to the module's top level")
            hidden.append(node)
            decorators.update(id(d) for d in node.decorator_list)
    if hidden:
        _require_points(tree, filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and id(node) not in decorators:
            value = _check_hidden(node)
            if isinstance(value, ast.Constant) and value.value is True:
                raise StripError(f"{filename}:{node.lineno}: a hidden check is declared by a call "
                                 "the release cannot cut out; declare it with @check(hidden=True) "
                                 "on a top-level function")
    return hidden


def _require_points(tree: ast.Module, filename: str) -> None:
    """Every check of a module with hidden checks declares its points.

    A check without points shares what the declared ones leave of the exercise's total
    (:func:`trafficlab.grading.checks.assign_points`); with the hidden checks gone its share
    would grow, and the self-check would weigh it otherwise than the grade does.
    """
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for decorator in node.decorator_list:
            if not _is_check_call(decorator):
                continue
            assert isinstance(decorator, ast.Call)
            points = next((k.value for k in decorator.keywords if k.arg == "points"),
                          decorator.args[0] if decorator.args else None)
            if points is None or (isinstance(points, ast.Constant) and points.value is None):
                raise StripError(f"{filename}:{decorator.lineno}: check {node.name} has no points= in a "
                                 "module with hidden checks; declare points on every check there, so "
                                 "the public checks are worth the same in the student bundle")


def _span(lines: list[str], stmt: ast.stmt) -> tuple[int, int]:
    """0-based [start, end) of a statement's lines, its decorators and the comments above it."""
    decorators = getattr(stmt, "decorator_list", [])
    start = min([stmt.lineno, *(d.lineno for d in decorators)]) - 1
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    end = stmt.end_lineno or stmt.lineno
    return start, end


def strip_hidden_checks(source: str, filename: str = "<module>", *,
                        used_elsewhere: Callable[[str], bool] = lambda name: False) -> PublicSource:
    """``source`` without its hidden checks and the helpers only they used.

    ``used_elsewhere(name)`` says whether another file of the release names a helper; such a
    helper is kept, since removing it could break that file.
    """
    tree = ast.parse(source, filename)
    hidden = _hidden_checks(tree, filename)
    if not hidden:
        return PublicSource(source)
    removed: list[ast.stmt] = list(hidden)
    helpers: list[str] = []
    while True:
        removed_ids = set(map(id, removed))
        used_by_removed = _names_used(removed)
        more = []
        for stmt in tree.body:
            names = _names_defined(stmt)
            if id(stmt) in removed_ids or not names or not set(names) & used_by_removed:
                continue
            others = [s for s in tree.body if id(s) not in removed_ids and s is not stmt]
            if set(names) & _names_used(others) or any(used_elsewhere(n) for n in names):
                continue
            more.append(stmt)
            helpers.extend(names)
        if not more:
            break
        removed.extend(more)
    lines = source.splitlines(keepends=True)
    cut = [False] * len(lines)
    for stmt in removed:
        start, end = _span(lines, stmt)
        for i in range(start, end):
            cut[i] = True
    text = "".join(line for line, gone in zip(lines, cut, strict=True) if not gone)
    text = _BLANK_RUN.sub("\n\n\n", text).rstrip("\n") + "\n"
    checks = [s.name for s in hidden if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for name in checks:
        if re.search(rf"\b{re.escape(name)}\b", text):
            raise StripError(f"{filename}: the hidden check {name} is still named in the file after "
                             "it was removed; drop that mention (a comment, __all__ or a call)")
    try:
        compile(text, filename, "exec")
    except SyntaxError as exc:
        raise StripError(f"{filename}: removing the hidden checks left invalid Python ({exc.msg}, "
                         f"line {exc.lineno}); keep hidden checks apart from other code") from None
    return PublicSource(text, checks, helpers)
