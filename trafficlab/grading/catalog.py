"""The exercise catalog (``graders/catalog.yaml``) and the grader module of each exercise.

One file lists every exercise of the course, with unique ids. ``kind: files`` (the default)
is answered with YAML files and graded by ``trafficlab grade`` with the checks in
``graders/test_<id>.py``; ``kind: notebook`` is answered with Python objects in a notebook
(a function, a policy file's name) and graded by ``trafficlab.course`` with the checks in
its ``module``.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from trafficlab._errors import NotFoundError

__all__ = ["DEFAULT_APPLIES", "KINDS", "Exercise", "catalog", "exercise", "graders_dir",
           "load_module"]


def graders_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "graders"


# What a submission may change unless its exercise says otherwise: the route the gateway
# already uses. Anything else in a student's file (a Deployment with env, a Gateway, another
# route) is reported and never applied.
DEFAULT_APPLIES: tuple[tuple[str, str], ...] = (("HTTPRoute", "task-api"),)
KINDS = ("files", "notebook")


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    points: float
    files: tuple[str, ...]
    task: str
    #: (kind, name) of each object, in namespace default, the grader applies from the files.
    applies: tuple[tuple[str, str], ...] = DEFAULT_APPLIES
    #: "files" (graders/test_<id>.py grades files) or "notebook" (``module`` grades answers).
    kind: str = "files"
    #: The checks of a notebook exercise: an importable module.
    module: str = ""
    #: The notebook function a notebook exercise calls, if its answer is one.
    function: str = ""

    def grades(self, obj: dict[str, Any]) -> bool:
        """Whether ``obj`` from a student's file is one this exercise applies."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        return namespace == "default" and (str(obj.get("kind")), str(meta.get("name"))) in (
            self.applies)

    def describe_applies(self) -> str:
        return ", ".join(f"{kind} {name}" for kind, name in self.applies)

    @property
    def module_name(self) -> str:
        return "test_" + self.id.replace("-", "_")


@lru_cache(maxsize=1)
def _all() -> tuple[Exercise, ...]:
    data: dict[str, Any] = yaml.safe_load((graders_dir() / "catalog.yaml").read_text())
    items = tuple(Exercise(id=str(e["id"]), title=str(e["title"]), points=float(e["points"]),
                           files=tuple(e.get("files", ())), task=str(e.get("task", "")).strip(),
                           applies=tuple((str(a["kind"]), str(a["name"]))
                                         for a in e["applies"]) if "applies" in e
                           else DEFAULT_APPLIES,
                           kind=str(e.get("kind", "files")), module=str(e.get("module", "")),
                           function=str(e.get("function", "")))
                  for e in data["exercises"])
    ids = [e.id for e in items]
    if len(set(ids)) != len(ids) or any(e.kind not in KINDS for e in items):
        raise ValueError(f"graders/catalog.yaml: ids must be unique and kinds one of {KINDS}")
    return items


def catalog(kind: str = "files") -> tuple[Exercise, ...]:
    """The exercises of one ``kind``: ``files`` (``trafficlab grade``) or ``notebook``."""
    return tuple(e for e in _all() if e.kind == kind)


def exercise(exercise_id: str, kind: str = "files") -> Exercise:
    for item in catalog(kind):
        if item.id == exercise_id:
            return item
    known = ", ".join(e.id for e in catalog(kind))
    raise NotFoundError(f'no exercise "{exercise_id}"; the exercises are: {known}')


def load_module(item: Exercise) -> ModuleType:
    """Import the grader module of an exercise from ``graders/``."""
    name = f"trafficlab_graders.{item.module_name}"
    if name in sys.modules:
        return sys.modules[name]
    path = graders_dir() / f"{item.module_name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise NotFoundError(f"the grader of {item.id} is missing: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
