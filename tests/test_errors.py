"""The error tree: every error TrafficLab raises on purpose is a TrafficLabError from one module,
and a command's bad option ends in a message, never a traceback."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import trafficlab
from trafficlab import _errors


def _modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(trafficlab.__path__, "trafficlab.")
            if not m.name.endswith("__main__")]


def test_every_error_class_lives_in_the_tree() -> None:
    stray = []
    for name in _modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            # Internal signals (a RouteError folded into status, a CheckFailure pytest
            # reports) are not errors a caller sees; every TrafficLabError is.
            if (issubclass(cls, _errors.TrafficLabError) and cls.__module__ == name
                    and name != _errors.__name__):
                stray.append(f"{name}.{cls.__name__}")
    assert stray == [], "define errors in trafficlab/_errors.py (the tree in its docstring)"
    tree = _errors.__doc__ or ""
    for cls_name in _errors.__all__:
        assert issubclass(getattr(_errors, cls_name), _errors.TrafficLabError)
        assert cls_name in tree, f"{cls_name} is missing from the tree in _errors' docstring"


def test_a_bad_send_option_is_a_message(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "trafficlab.cli", "--home", str(tmp_path),
                          "send", "-c", "0", "-n", "5", "--url", "http://127.0.0.1:9"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "concurrency must be >= 1" in out.stderr
