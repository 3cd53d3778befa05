"""What a run of :func:`~trafficlab.traffic.send` saw, and how it is shown (table, JSON, HTML, plot)."""

from __future__ import annotations

import html
import io
import json
import math
from array import array
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["NO_VERSION", "TrafficResult", "collect", "format_result", "merge"]

#: The label for responses without ``x-version``/``x-pod`` (gateway-made 404/500/503).
NO_VERSION = "none"


@dataclass
class TrafficResult:
    """What a run of :func:`send` saw.

    ``total`` counts every request sent: responses (``by_status``) and transport
    failures (``errors``). Version and pod counts come from the ``x-version`` and
    ``x-pod`` response headers (``"none"`` when absent). Latencies are those of
    responses, in milliseconds.
    """

    total: int = 0
    by_version: Counter[str] = field(default_factory=Counter)
    by_pod: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    by_version_status: dict[str, Counter[int]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: array[float] = field(default_factory=lambda: array("d"), repr=False)
    elapsed: float = 0.0
    _sorted: list[float] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def responses(self) -> int:
        """Requests that got an HTTP response (any status)."""
        return sum(self.by_status.values())

    @property
    def rps(self) -> float:
        """Requests per second over the run."""
        return self.total / self.elapsed if self.elapsed > 0 else 0.0

    def share(self, version: str) -> float:
        """The share of responses that came from ``version`` (0 when none came back).

        >>> TrafficResult(total=4, by_version=Counter(v1=3, v2=1),
        ...               by_status=Counter({200: 4})).share("v2")
        0.25
        """
        responses = self.responses
        return self.by_version.get(version, 0) / responses if responses else 0.0

    def percentile(self, q: float) -> float:
        """The latency (ms) at percentile ``q`` in [0, 100], nearest rank; NaN if none."""
        if self._sorted is None:
            self._sorted = sorted(self.latencies_ms)
        values = self._sorted
        if not values:
            return math.nan
        rank = max(1, math.ceil(q / 100 * len(values)))
        return values[min(rank, len(values)) - 1]

    def latency(self) -> dict[str, float | None]:
        """Latency summary in ms: mean, p50, p90, p99, max (None when no response)."""
        if not self.latencies_ms:
            return dict.fromkeys(("mean", "p50", "p90", "p99", "max"))
        return {
            "mean": sum(self.latencies_ms) / len(self.latencies_ms),
            "p50": self.percentile(50),
            "p90": self.percentile(90),
            "p99": self.percentile(99),
            "max": self.percentile(100),
        }

    def _versions(self) -> list[str]:
        # Named versions first, alphabetically; gateway-made answers last.
        return sorted(self.by_version, key=lambda v: (v == NO_VERSION, v))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (status codes become string keys)."""
        return {
            "total": self.total,
            "responses": self.responses,
            "elapsed_s": round(self.elapsed, 6),
            "rps": round(self.rps, 3),
            "by_version": dict(self.by_version),
            "shares": {v: self.share(v) for v in self._versions()},
            "by_pod": dict(self.by_pod),
            "by_status": {str(s): c for s, c in sorted(self.by_status.items())},
            "by_version_status": {
                v: {str(s): c for s, c in sorted(st.items())}
                for v, st in self.by_version_status.items()
            },
            "errors": dict(self.errors),
            "latency_ms": self.latency(),
        }

    def _status_text(self, version: str) -> str:
        statuses = self.by_version_status.get(version, Counter())
        return " ".join(f"{s}×{c}" for s, c in sorted(statuses.items()))

    def _latency_text(self) -> str:
        lat = self.latency()
        if lat["p50"] is None:
            return "no responses"
        return " · ".join(f"{k} {lat[k]:.1f} ms" for k in ("p50", "p90", "p99", "max"))

    def _title(self) -> str:
        return f"{self.total} requests in {self.elapsed:.2f} s ({self.rps:.0f} req/s)"

    def table(self) -> Table:
        """A rich table: per version its count, share and statuses; then latency, errors."""
        from rich.table import Table

        table = Table(title=self._title())
        table.add_column("version")
        table.add_column("requests", justify="right")
        table.add_column("share", justify="right")
        table.add_column("statuses")
        for version in self._versions():
            table.add_row(
                version, str(self.by_version[version]), f"{self.share(version) * 100:.1f}%",
                self._status_text(version),
            )
        table.add_section()
        table.add_row("latency", "", "", self._latency_text())
        if self.errors:
            errors = ", ".join(f"{k}×{c}" for k, c in sorted(self.errors.items()))
            table.add_row("errors", str(sum(self.errors.values())), "", errors)
        return table

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><td>{esc(v)}</td><td style='text-align:right'>{self.by_version[v]}</td>"
            f"<td style='text-align:right'>{self.share(v) * 100:.1f}%</td>"
            f"<td>{esc(self._status_text(v))}</td></tr>"
            for v in self._versions()
        )
        rows += f"<tr><td>latency</td><td></td><td></td><td>{esc(self._latency_text())}</td></tr>"
        if self.errors:
            errors = ", ".join(f"{k}×{c}" for k, c in sorted(self.errors.items()))
            rows += (f"<tr><td>errors</td><td style='text-align:right'>"
                     f"{sum(self.errors.values())}</td><td></td><td>{esc(errors)}</td></tr>")
        return (
            f"<table><caption>{esc(self._title())}</caption>"
            "<thead><tr><th>version</th><th>requests</th><th>share</th><th>statuses</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )

    def __str__(self) -> str:
        return format_result(self, "table")

    def plot(self, ax: Any = None) -> Any:
        """A bar chart of the share of responses per version; returns the matplotlib axes.

        Needs matplotlib, which TrafficLab does not install by itself.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError(
                "TrafficResult.plot() needs matplotlib, which is not installed; "
                "install it with `pip install matplotlib` (or use .table())."
            ) from exc
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3))
        versions = self._versions()
        shares = [self.share(v) * 100 for v in versions]
        bars = ax.bar(versions, shares)
        for bar, version in zip(bars, versions, strict=True):
            ax.annotate(str(self.by_version[version]), (bar.get_x() + bar.get_width() / 2,
                        bar.get_height()), ha="center", va="bottom")
        ax.set_ylim(0, 105)
        ax.set_ylabel("share of responses (%)")
        ax.set_title(self._title())
        return ax


def format_result(result: TrafficResult, output: Literal["table", "json"] = "table") -> str:
    """Render a result for the CLI: ``"table"`` (plain text) or ``"json"``."""
    if output == "json":
        return json.dumps(result.to_dict(), indent=2, sort_keys=False)
    if output != "table":
        raise ValueError(f"unknown output format {output!r}; use 'table' or 'json'")
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=100, color_system=None, force_terminal=False).print(result.table())
    return buffer.getvalue()


def collect(
    counts: Mapping[tuple[str, str, int], int], errors: Mapping[str, int],
    latencies: array[int], elapsed: float,
) -> TrafficResult:
    """The result of a run from its raw tallies: counts per (version, pod, status), errors, ns."""
    by_version: Counter[str] = Counter()
    by_pod: Counter[str] = Counter()
    by_status: Counter[int] = Counter()
    by_version_status: dict[str, Counter[int]] = {}
    for (version, pod, status), n in counts.items():
        by_version[version] += n
        by_pod[pod] += n
        by_status[status] += n
        by_version_status.setdefault(version, Counter())[status] += n
    error_counter = Counter(errors)
    return TrafficResult(
        total=sum(by_status.values()) + sum(error_counter.values()),
        by_version=by_version,
        by_pod=by_pod,
        by_status=by_status,
        by_version_status=by_version_status,
        errors=error_counter,
        latencies_ms=array("d", (ns / 1e6 for ns in latencies)),
        elapsed=elapsed,
    )


def merge(first: TrafficResult, second: TrafficResult) -> TrafficResult:
    """One result for two runs sent one after the other (counts and latencies added up).

    >>> merge(TrafficResult(total=1, by_status=Counter({200: 1})),
    ...       TrafficResult(total=2, by_status=Counter({200: 1, 503: 1}))).by_status
    Counter({200: 2, 503: 1})
    """
    by_version_status = {v: Counter(s) for v, s in first.by_version_status.items()}
    for version, statuses in second.by_version_status.items():
        by_version_status.setdefault(version, Counter()).update(statuses)
    return TrafficResult(
        total=first.total + second.total,
        by_version=first.by_version + second.by_version,
        by_pod=first.by_pod + second.by_pod,
        by_status=first.by_status + second.by_status,
        by_version_status=by_version_status,
        errors=first.errors + second.errors,
        latencies_ms=first.latencies_ms + second.latencies_ms,
        elapsed=first.elapsed + second.elapsed,
    )
