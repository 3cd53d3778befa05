"""Running an automated rollout from a notebook: its events as they come, then a chart of them."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from trafficlab._errors import TrafficLabError
from trafficlab.course.charts import _pyplot, _show
from trafficlab.lab import Lab

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from trafficlab.monitoring.rollout import RolloutResult

__all__ = ["rollout", "rollout_figure"]

_VERDICT_STYLE = {"pass": ("o", "#2ca02c"), "fail": ("X", "#c44e52"), "no_data": ("s", "#8c8c8c")}


def rollout(lab: Lab, policy: str | os.PathLike[str] | Mapping[str, Any], *,
            chart: bool = True) -> RolloutResult | None:
    """Run the rollout a policy (file, YAML text or mapping) describes; print each event, chart it.

    Returns the :class:`~trafficlab.monitoring.rollout.RolloutResult` (``.outcome`` is
    ``promoted``, ``rolled_back`` or ``aborted``), or ``None`` when the policy is invalid
    (the problem is printed).

    >>> result = rollout(lab, "rollout-policy.yaml")         # doctest: +SKIP
    [   0.0s] start: rollout of task-api-v2 (v2) against task-api-v1 (v1) ...
    """
    from trafficlab.monitoring.rollout import load_policy, run_rollout

    try:
        chosen = load_policy(policy).validate()
    except TrafficLabError as exc:
        print(f"The policy was not used: {exc.message}")
        return None
    events: list[dict[str, Any]] = []

    def show(record: dict[str, Any]) -> None:
        events.append(record)
        print(f"[{record['t']:6.1f}s] {record['event']}: {record['message']}", flush=True)

    result = run_rollout(lab, chosen, progress=False, on_event=show)
    if chart and events:
        _show(rollout_figure(events, chosen.canary or ""))
    return result


def rollout_figure(events: Sequence[Mapping[str, Any]], canary: str) -> Figure:
    """The canary's weight over time (a step line), with each analysis' verdict as a marker."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    times = [float(e["t"]) for e in events]
    weights = [int(e.get("weights", {}).get(canary, 0)) for e in events]
    ax.step(times, weights, where="post", color="#DD8452", label=f"{canary} weight (%)")
    for verdict, (marker, color) in _VERDICT_STYLE.items():
        points = [(float(e["t"]), int(e.get("weights", {}).get(canary, 0))) for e in events
                  if e.get("event") == "analysis" and e.get("verdict") == verdict]
        if points:
            ax.scatter([t for t, _ in points], [w for _, w in points], marker=marker, color=color,
                       zorder=3, label=f"analysis: {verdict.replace('_', ' ')}")
    final = events[-1].get("event", "") if events else ""
    ax.set_ylim(-5, 105)
    ax.set_xlabel("seconds since the start")
    ax.set_ylabel("canary weight (%)")
    ax.set_title(f"rollout of {canary}: {final.replace('_', ' ')}", fontsize=10)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return cast("Figure", fig)
