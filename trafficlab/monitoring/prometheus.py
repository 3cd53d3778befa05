"""PLACEHOLDER: to be written by the monitoring helper (interface fixed by the controller)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PrometheusServer", "ScrapeTarget", "find_prometheus"]


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    address: str
    labels: dict[str, str] = field(default_factory=dict)


def find_prometheus() -> Path | None:
    return None


class PrometheusServer:
    def __init__(self, workdir: Path, binary: Path) -> None:
        self.workdir = workdir
        self.binary = binary
        self.pid: int | None = None
        self.url: str | None = None

    def start(self, timeout: float = 15.0) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        return None

    def set_targets(self, targets: list[ScrapeTarget]) -> None:
        return None
