"""Test-only extensions (a filter, a route kind), registered for one test and removed after it."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType


@contextlib.contextmanager
def registered(module_name: str) -> Iterator[ModuleType]:
    """Import (or re-import) the toy module ``module_name``, which registers itself; then remove it."""
    here = str(Path(__file__).parent)
    sys.path.insert(0, here)
    try:
        module = importlib.import_module(module_name)
        module = importlib.reload(module)  # registers again after an earlier test removed it
        yield module
        module.remove()
    finally:
        sys.path.remove(here)
