"""TrafficLab's sample service: a small task API whose versions differ visibly.

Every answer names the version and pod that made it (``x-version``, ``x-pod``),
faults can be switched on per process (``ERROR_RATE``, ``LATENCY_MS``), and
``/metrics`` counts requests per route for Prometheus. See README.md beside this
file for the routes and settings.

Example:
    >>> from taskapi import Settings, create_app
    >>> app = create_app(Settings(version="v2", pod="demo-0"))
"""

from __future__ import annotations

from taskapi.app import create_app
from taskapi.settings import Settings, SettingsError

__all__ = ["Settings", "SettingsError", "create_app"]
