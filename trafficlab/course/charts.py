"""Charts of a traffic split: what each version got, next to what the route asked for."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from trafficlab.traffic import TrafficResult

__all__ = ["chart", "split_figure", "stages_figure"]

NO_VERSION = "none"  # what traffic.py counts answers without x-version under (made by the gateway)
_COLORS = {"v1": "#4C72B0", "v2": "#DD8452", "blue": "#1f77b4", "green": "#2ca02c",
           "premium": "#9467bd", NO_VERSION: "#c44e52"}
_OTHERS = ("#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD")


def _pyplot() -> Any:
    # The first import on a new machine builds matplotlib's font cache and says so on stderr
    # through logging; a notebook must print nothing on stderr, so that message is held back.
    logger = logging.getLogger("matplotlib.font_manager")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import matplotlib.pyplot as plt
    finally:
        logger.setLevel(level)
    return plt


def _color(version: str, index: int) -> str:
    return _COLORS.get(version, _OTHERS[index % len(_OTHERS)])


def _versions(results: Mapping[str, TrafficResult]) -> list[str]:
    seen = {v for r in results.values() for v in r.by_version}
    return sorted(seen, key=lambda v: (v == NO_VERSION, v))


def _label(version: str) -> str:
    return "gateway error (no version)" if version == NO_VERSION else version


def split_figure(result: TrafficResult, expected: Mapping[str, float] | None = None) -> Figure:
    """One bar per version: its share of the answers (with the count), and the expected share.

    ``expected`` maps versions to shares (``{"v1": 0.9, "v2": 0.1}``); it is drawn as a
    black tick on each bar. Answers made by the gateway (no ``x-version``) show in red.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    versions = _versions({"": result})
    for name in expected or {}:
        if name not in versions:
            versions.append(name)
    shares = [result.share(v) * 100 for v in versions]
    bars = ax.bar([_label(v) for v in versions], shares,
                  color=[_color(v, i) for i, v in enumerate(versions)])
    for bar, version in zip(bars, versions, strict=True):
        ax.annotate(f"{result.share(version) * 100:.1f}% ({result.by_version.get(version, 0)})",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=9)
    if expected:
        for bar, version in zip(bars, versions, strict=True):
            if version in expected:
                x = bar.get_x()
                ax.hlines(expected[version] * 100, x, x + bar.get_width(), colors="black",
                          linewidth=2, label="expected" if version == next(iter(expected)) else None)
        ax.legend(loc="upper right", fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_ylabel("share of answers (%)")
    failed = sum(c for s, c in result.by_status.items() if s >= 500) + sum(result.errors.values())
    ax.set_title(f"{result.total} requests, {failed} failed (5xx or no answer)", fontsize=10)
    fig.tight_layout()
    return cast("Figure", fig)


def stages_figure(results: Mapping[str, TrafficResult]) -> Figure:
    """One stacked bar per labelled run (stages of a rollout, or groups of users)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.5, 1.6 * len(results) + 2), 3.4))
    labels = list(results)
    bottoms = [0.0] * len(labels)
    for i, version in enumerate(_versions(results)):
        shares = [results[label].share(version) * 100 for label in labels]
        ax.bar(labels, shares, bottom=bottoms, label=_label(version), color=_color(version, i))
        for j, share in enumerate(shares):
            if share >= 4:
                ax.text(j, bottoms[j] + share / 2, f"{share:.0f}%", ha="center", va="center",
                        fontsize=9, color="white")
        bottoms = [b + s for b, s in zip(bottoms, shares, strict=True)]
    ax.set_ylim(0, 100)
    ax.set_ylabel("share of answers (%)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return cast("Figure", fig)


def chart(results: TrafficResult | Mapping[str, TrafficResult],
          expected: Mapping[str, float] | None = None) -> None:
    """Show the split of one run (with ``expected`` shares), or of several labelled runs.

    >>> chart(lab.send(requests=1000), expected={"v1": 0.9, "v2": 0.1})   # doctest: +SKIP
    >>> chart({"beta users": beta, "everyone else": others})              # doctest: +SKIP
    """
    _show(stages_figure(results) if isinstance(results, Mapping) else split_figure(results, expected))


def _show(fig: Figure) -> None:
    """Display in a notebook (once: the figure is closed so the inline backend does not repeat it)."""
    plt = _pyplot()
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python: nothing to show on
        plt.close(fig)
        return
    if get_ipython() is not None:
        display(fig)  # type: ignore[no-untyped-call]
    plt.close(fig)
