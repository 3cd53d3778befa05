"""Task API settings, read from the environment and validated once at start.

The lab (and a Kubernetes Deployment) configures each Task API "pod" through
environment variables only, so a bad value must stop the process at start with a
message naming the variable, not surface later as odd traffic.

Example:
    >>> Settings.from_env({"VERSION": "v2", "POD_NAME": "task-api-v2-0"}).has_priority
    True
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Settings", "SettingsError"]

# A version ends up in a response header, a Prometheus label and a JSON body; keep it
# to a token that is safe in all three (letters, digits, ".", "_", "-").
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
# Pod names are DNS-1123 subdomains in Kubernetes; hostnames outside it may hold
# upper case letters too. Any visible ASCII without spaces is a valid header value.
_POD_RE = re.compile(r"^[\x21-\x7e]{1,253}$")
# An added delay longer than this is almost surely a unit mistake (seconds vs ms).
_MAX_LATENCY_MS = 60_000.0
_SHARE = "a share of requests, e.g. 0.05 for 5%"
_MS = "milliseconds"


class SettingsError(ValueError):
    """An environment variable holds a value the Task API cannot use.

    The message names the variable, the value seen and what is expected.
    """


@dataclass(frozen=True)
class Settings:
    """How one Task API process identifies itself and which faults it injects.

    Attributes:
        version: Env ``VERSION``; sent as ``x-version`` and as a metrics label.
        pod: Env ``POD_NAME`` (the Kubernetes downward API), else the hostname.
        error_rate: Env ``ERROR_RATE``; share (0..1) of faultable requests answered 500.
        latency_ms: Env ``LATENCY_MS``; delay added to every faultable request.
        latency_jitter_ms: Env ``LATENCY_JITTER_MS``; uniform extra delay in 0..jitter.
        fault_seed: Env ``FAULT_SEED``; seeds the fault RNG so runs repeat exactly.
    """

    version: str = "v1"
    pod: str = "localhost"
    error_rate: float = 0.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    fault_seed: int | None = None

    def __post_init__(self) -> None:
        """Validate values given in code the same way as values from the environment."""
        _check_version(self.version)
        _check_pod(self.pod)
        _check_range("ERROR_RATE", self.error_rate, 1.0, _SHARE)
        _check_range("LATENCY_MS", self.latency_ms, _MAX_LATENCY_MS, _MS)
        _check_range("LATENCY_JITTER_MS", self.latency_jitter_ms, _MAX_LATENCY_MS, _MS)

    @property
    def has_priority(self) -> bool:
        """Whether tasks carry the ``priority`` field: every version except ``v1``."""
        return self.version != "v1"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default ``os.environ``).

        Empty variables count as unset. Raises `SettingsError` naming the variable.
        """
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        seed_text = get("FAULT_SEED")
        return cls(
            version=get("VERSION") or "v1",
            pod=get("POD_NAME") or socket.gethostname() or "localhost",
            error_rate=_float_var("ERROR_RATE", get("ERROR_RATE"), 1.0, _SHARE),
            latency_ms=_float_var("LATENCY_MS", get("LATENCY_MS"), _MAX_LATENCY_MS, _MS),
            latency_jitter_ms=_float_var(
                "LATENCY_JITTER_MS", get("LATENCY_JITTER_MS"), _MAX_LATENCY_MS, _MS
            ),
            fault_seed=None if seed_text is None else _parse_int("FAULT_SEED", seed_text),
        )


def _float_var(name: str, text: str | None, high: float, unit: str) -> float:
    """Parse a non-negative number and check it against ``high``, quoting the raw text."""
    if text is None:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.0 <= value <= high):
        raise SettingsError(
            f"{name} must be a number between 0 and {high:g} ({unit}), got {text!r}"
        )
    return value


def _parse_int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {text!r}") from None


def _check_range(name: str, value: float, high: float, unit: str) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= high):
        raise SettingsError(
            f"{name} must be a number between 0 and {high:g} ({unit}), got {value!r}"
        )


def _check_version(version: str) -> None:
    if not _VERSION_RE.match(version):
        raise SettingsError(
            f"VERSION must be 1-63 letters, digits, '.', '_' or '-' (e.g. v2), got {version!r}"
        )


def _check_pod(pod: str) -> None:
    if not _POD_RE.match(pod):
        raise SettingsError(
            f"POD_NAME must be 1-253 visible ASCII characters without spaces, got {pod!r}"
        )
