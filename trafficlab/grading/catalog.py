"""The exercise catalog (``graders/catalog.yaml``) and the grader module of each exercise."""

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

__all__ = ["DEFAULT_APPLIES", "Exercise", "catalog", "exercise", "graders_dir", "load_module"]


def graders_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "graders"


# What a submission may change unless its exercise says otherwise: the route the gateway
# already uses. Anything else in a student's file (a Deployment with env, a Gateway, another
# route) is reported and never applied.
DEFAULT_APPLIES: tuple[tuple[str, str], ...] = (("HTTPRoute", "task-api"),)


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    points: float
    files: tuple[str, ...]
    task: str
    #: (kind, name) of each object, in namespace default, the grader applies from the files.
    applies: tuple[tuple[str, str], ...] = DEFAULT_APPLIES

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
def catalog() -> tuple[Exercise, ...]:
    data: dict[str, Any] = yaml.safe_load((graders_dir() / "catalog.yaml").read_text())
    return tuple(Exercise(id=str(e["id"]), title=str(e["title"]), points=float(e["points"]),
                          files=tuple(e["files"]), task=str(e["task"]).strip(),
                          applies=tuple((str(a["kind"]), str(a["name"]))
                                        for a in e["applies"]) if "applies" in e
                          else DEFAULT_APPLIES)
                 for e in data["exercises"])


def exercise(exercise_id: str) -> Exercise:
    for item in catalog():
        if item.id == exercise_id:
            return item
    known = ", ".join(e.id for e in catalog())
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
