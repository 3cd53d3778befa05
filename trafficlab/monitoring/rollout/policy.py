"""A rollout's settings: :class:`RolloutPolicy`, and :func:`load_policy` to read them from a file.

Every setting is parsed and range-checked by one parser (``_SETTINGS``), shared by the
policy file, the CLI flags and :meth:`RolloutPolicy.validate`; a bad one raises
:class:`~trafficlab._errors.PolicyError` naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trafficlab._errors import PolicyError, UnsafeFileError
from trafficlab.monitoring.metrics import format_duration, parse_duration
from trafficlab.safe_files import load_yaml, read_text

__all__ = ["NO_DATA_POLICIES", "PolicyError", "RolloutPolicy", "load_policy"]

NO_DATA_POLICIES = ("fail", "hold")
_SOURCES = ("auto", "prometheus", "direct")


@dataclass(frozen=True)
class RolloutPolicy:
    """Every setting of a rollout. The policy file spells them in camelCase (see :func:`load_policy`)."""

    route: str = "task-api"
    namespace: str = "default"
    stable: str = "task-api-v1"
    canary: str | None = None
    steps: tuple[int, ...] = (5, 25, 50, 100)
    interval_s: float = 30.0
    max_error_rate: float = 0.01
    max_p99_ms: float = 500.0
    min_requests: int = 20
    threshold: int = 2
    no_data: str = "fail"
    no_data_limit: int = 3
    load_rps: float | None = None
    load_path: str = "/"
    pause_before_steps: bool = False
    source: str = "auto"

    def validate(self) -> RolloutPolicy:
        """Raise :class:`PolicyError` naming the first bad setting; return self when all are good."""
        for name, value in _file_items(self):
            _SETTINGS[name][1](value, name)  # each parser re-checks its own range
        if not self.canary:
            raise PolicyError("canary", "which Service is the canary? Give --canary (or "
                              "'canary:' in the policy file), e.g. task-api-v2")
        if self.canary == self.stable:
            raise PolicyError("canary", f"the canary and the stable Service are both "
                              f"{self.stable!r}; they must differ")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The settings as a policy file spells them (durations as text)."""
        out: dict[str, Any] = {}
        for name, value in _file_items(self):
            if name == "interval":
                value = format_duration(value)
            elif name == "maxP99":
                value = f"{value:g}ms"
            elif name == "steps":
                value = list(value)
            out[name] = value
        return out


def _file_items(policy: RolloutPolicy) -> list[tuple[str, Any]]:
    return [(name, getattr(policy, attr)) for name, (attr, _) in _SETTINGS.items()]


def _name(value: Any, key: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", value):
        raise PolicyError(key, f"must be a Kubernetes object name (lowercase letters, digits, "
                          f"'-' and '.'), got {value!r}")
    return value


def _optional_name(value: Any, key: str) -> str | None:
    return None if value is None else _name(value, key)


def _int(value: Any, key: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        else:
            raise PolicyError(key, f"must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise PolicyError(key, f"must be {bound}, got {value}")
    return int(value)


def _steps(value: Any, key: str) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value.strip()) if v]
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise PolicyError(key, "must be a list of canary weights in percent, e.g. [5, 25, 50, 100]")
    steps = tuple(_int(v, f"{key}[{i}]", 1, 100) for i, v in enumerate(value))
    for i in range(1, len(steps)):
        if steps[i] <= steps[i - 1]:
            raise PolicyError(f"{key}[{i}]", f"steps must rise: {steps[i]} does not come after "
                              f"{steps[i - 1]}")
    return steps


def _seconds(value: Any, key: str) -> float:
    try:
        seconds = parse_duration(value, what=key)
    except ValueError as exc:
        raise PolicyError(key, str(exc).removeprefix(f"{key} ")) from None
    if seconds < 1:
        raise PolicyError(key, f"must be at least 1s (Prometheus scrapes every second), got {value!r}")
    return seconds


def _latency_ms(value: Any, key: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        ms = float(value)  # a bare number is milliseconds
    else:
        try:
            ms = parse_duration(str(value), what=key) * 1000
        except ValueError:
            raise PolicyError(key, f"must be a latency like 500ms or 0.5s (a bare number is "
                              f"milliseconds), got {value!r}") from None
    if not math.isfinite(ms) or ms <= 0:
        raise PolicyError(key, f"must be more than 0 ms, got {value!r}")
    return ms


def _fraction(value: Any, key: str) -> float:
    text = str(value).strip()
    try:
        rate = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise PolicyError(key, f"must be a fraction like 0.01 or a percentage like 1%, "
                          f"got {value!r}") from None
    if isinstance(value, bool) or not 0 <= rate <= 1:
        raise PolicyError(key, f"must be a fraction between 0 and 1 (0.01 is 1%), got {value!r}")
    return rate


def _choice(options: tuple[str, ...]) -> Callable[[Any, str], str]:
    def parse(value: Any, key: str) -> str:
        if value not in options:
            raise PolicyError(key, f"must be one of {', '.join(options)}, got {value!r}")
        return str(value)

    return parse


def _rps(value: Any, key: str) -> float | None:
    if value is None or value == 0 or value is False:
        return None
    try:
        rps = float(value)
    except (TypeError, ValueError):
        raise PolicyError(key, f"must be requests per second (a number), or 0 for no load, "
                          f"got {value!r}") from None
    if isinstance(value, bool) or not 0 < rps <= 5000:
        raise PolicyError(key, f"must be between 0 and 5000 requests per second, got {value!r}")
    return rps


def _path(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise PolicyError(key, f"must be a path starting with '/', got {value!r}")
    return value


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(key, f"must be true or false, got {value!r}")
    return value


# File key -> (attribute, parser). The parser takes the raw value and the key for messages.
_SETTINGS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "route": ("route", _name),
    "namespace": ("namespace", _name),
    "stable": ("stable", _name),
    "canary": ("canary", _optional_name),
    "steps": ("steps", _steps),
    "interval": ("interval_s", _seconds),
    "maxErrorRate": ("max_error_rate", _fraction),
    "maxP99": ("max_p99_ms", _latency_ms),
    "minRequests": ("min_requests", lambda v, k: _int(v, k, 0)),
    "threshold": ("threshold", lambda v, k: _int(v, k, 1)),
    "noData": ("no_data", _choice(NO_DATA_POLICIES)),
    "noDataLimit": ("no_data_limit", lambda v, k: _int(v, k, 1)),
    "load": ("load_rps", _rps),
    "loadPath": ("load_path", _path),
    "pauseBeforeSteps": ("pause_before_steps", _bool),
    "source": ("source", _choice(_SOURCES)),
}


def _canonical(key: str) -> str | None:
    """``maxErrorRate``, ``max_error_rate`` and ``max-error-rate`` are the same setting."""
    flat = key.replace("_", "").replace("-", "").lower()
    for name in _SETTINGS:
        if name.lower() == flat:
            return name
    return None


def load_policy(source: str | os.PathLike[str] | Mapping[str, Any], *,
                base: RolloutPolicy | None = None) -> RolloutPolicy:
    """Read a rollout policy (a YAML file, YAML text or a mapping) over ``base`` (the defaults).

    Keys: route, namespace, stable, canary, steps, interval, maxErrorRate, maxP99,
    minRequests, threshold, noData, noDataLimit, load, loadPath, pauseBeforeSteps, source
    (snake_case and kebab-case spellings are accepted too). Raises :class:`PolicyError`
    naming the file and the field.

    >>> load_policy({"steps": [10, 100], "interval": "5s", "maxP99": "300ms"}).max_p99_ms
    300.0
    """
    label = ""
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        text = str(source)
        path = Path(text)
        if ("\n" not in text and path.suffix.lower() in (".yaml", ".yml", ".json")) or path.is_file():
            label = path.name
            try:
                text = read_text(path)
            except UnsafeFileError as exc:
                raise PolicyError("policy", f"cannot read it: {exc.message}") from exc
            except OSError as exc:
                raise PolicyError("policy", f"cannot read {path}: {exc.strerror or exc}") from exc
        try:
            data = load_yaml(text)  # duplicate keys and alias bombs are refused with the line
        except yaml.YAMLError as exc:
            raise PolicyError("policy", f"not valid YAML: {exc}", source=label) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError("policy", "must be a mapping of settings, like 'steps: [5, 25, 50, 100]'",
                          source=label)
    changes: dict[str, Any] = {}
    for key, value in data.items():
        name = _canonical(str(key))
        if name is None:
            close = difflib.get_close_matches(str(key), list(_SETTINGS), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise PolicyError(str(key), f"unknown setting; {hint}settings are: "
                              f"{', '.join(_SETTINGS)}", source=label)
        attr, parse = _SETTINGS[name]
        try:
            changes[attr] = parse(value, str(key))
        except PolicyError as exc:
            raise PolicyError(exc.field, exc.message.split(": ", 1)[1], source=label) from None
    return dataclasses.replace(base or RolloutPolicy(), **changes)
