"""No import cycle inside trafficlab: data flows one way (issue 13).

Every import counts, at module level or inside a function: an import deferred into a method
still ties the two modules together. A module importing its own parent package (``from .
import _names``) is not a cycle: the package is already being initialised.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "trafficlab"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # "from pkg import mod" imports the module pkg.mod; "from pkg import name" only pkg
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            targets = subs or [base]
        else:
            continue
        for target in targets:
            if target in modules and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_no_import_cycle_inside_trafficlab() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_detector_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# The translator's stages in pipeline order (trafficlab/gateway/translate/__init__.py lists
# them): each may import only the ones before it, so no stage reaches into a later one.
TRANSLATE_STAGES = ["context", "kinds", "listeners", "attachment", "backends", "rules",
                    "httproute", "translator"]


def test_translator_stages_import_only_earlier_ones() -> None:
    modules = _modules()
    package = "trafficlab.gateway.translate"
    stages = [f"{package}.{stage}" for stage in TRANSLATE_STAGES]
    assert sorted(stages) == sorted(m for m in modules if m.startswith(package + ".")), \
        "a module was added to or removed from the translator: place it in TRANSLATE_STAGES"
    for position, stage in enumerate(stages):
        later = set(stages[position + 1:])
        assert not _imports(stage, modules[stage], modules) & later, stage
