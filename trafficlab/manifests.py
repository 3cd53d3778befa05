"""Reading manifests: a file, a folder (sorted, .yaml/.yml/.json) or ``-`` for standard input.

Multi-document YAML and ``kind: List`` are flattened. Malformed YAML is reported with the
file and line, before anything reaches the lab. Files are read through
:mod:`trafficlab.safe_files`: no symbolic link followed, no device or FIFO, at most 1 MiB, alias
expansion bounded and duplicate keys refused.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from trafficlab._errors import NotFoundError, ValidationError
from trafficlab.safe_files import (
    MAX_BYTES,
    UnsafeFileError,
    YamlLimitError,
    list_files,
    load_yaml_all,
    read_text,
)

__all__ = ["baseline_dir", "load_manifests", "manifests_dir", "parse_manifests"]

Obj = dict[str, Any]
_SUFFIXES = (".yaml", ".yml", ".json")


def manifests_dir() -> Path:
    """``cluster/manifests`` of this checkout (the package is installed in place)."""
    return Path(__file__).resolve().parents[1] / "cluster" / "manifests"


def baseline_dir() -> Path:
    return manifests_dir() / "baseline"


def parse_manifests(text: str, source: str = "<stdin>") -> list[Obj]:
    """All objects in a YAML or JSON text, each tagged with where it came from."""
    try:
        docs = load_yaml_all(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        advice = ("Write each key once per mapping and avoid aliases (*name) that repeat "
                  "large parts." if isinstance(exc, YamlLimitError) else
                  "Check the indentation and that every 'key: value' has a space after the colon.")
        raise ValidationError("(manifest)", None, None, "", f"malformed YAML at {where}: "
                              f"{problem}. {advice}", source=source) from exc
    objects: list[Obj] = []
    for index, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ValidationError("(manifest)", None, None, "",
                                  f"document {index + 1} is a {type(doc).__name__}, not an object "
                                  "with apiVersion, kind and metadata", source=source)
        if doc.get("kind") == "List" or (str(doc.get("kind", "")).endswith("List")
                                         and isinstance(doc.get("items"), list)):
            objects.extend(item for item in doc["items"] if item is not None)
        else:
            objects.append(doc)
    return objects


def load_manifests(path: str | Path) -> list[Obj]:
    """Objects from a file, a folder (recursively, in name order) or ``-`` (stdin)."""
    if str(path) == "-":
        text = sys.stdin.read(MAX_BYTES + 1)
        if len(text) > MAX_BYTES:
            raise UnsafeFileError("<stdin>", f"the input is over the limit of {MAX_BYTES} "
                                  "characters", "apply a smaller manifest")
        return parse_manifests(text)
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        files = list(list_files(p, _SUFFIXES))
        if not files:
            raise NotFoundError(f'no manifests (*.yaml, *.yml, *.json) in folder "{p}"')
        objects: list[Obj] = []
        for f in files:
            objects.extend(parse_manifests(read_text(f), str(f)))
        return objects
    if not p.exists() and not p.is_symlink():
        raise NotFoundError(f'the path "{p}" does not exist')
    return parse_manifests(read_text(p), str(p))
