"""The run loop: one rollout from its first step to promotion, rollback or abort.

Each step sets the weights (edit.py) and waits until Envoy serves them, waits one interval
taking commands (control.py), measures the canary (measure.py), judges and decides
(analysis.py); the live view (view.py) watches. :func:`run_rollout` is the entry point.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from trafficlab._errors import TrafficLabError
from trafficlab.monitoring.metrics import MetricsReport, PodSample, format_duration
from trafficlab.monitoring.rollout.analysis import Judgement, decide, judge
from trafficlab.monitoring.rollout.control import (
    is_running,
    read_command,
    read_state,
    rollout_dir,
    write_json,
)
from trafficlab.monitoring.rollout.edit import find_weighted_rule, rule_weights, weight_patch
from trafficlab.monitoring.rollout.measure import baseline, figures, pick_source, resolve_versions
from trafficlab.monitoring.rollout.policy import RolloutPolicy
from trafficlab.monitoring.rollout.view import _View
from trafficlab.traffic.background import BackgroundLoad, start_load

if TYPE_CHECKING:
    from trafficlab.lab import Lab

__all__ = ["OUTCOMES", "Rollout", "RolloutResult", "run_rollout"]

Obj = dict[str, Any]
OUTCOMES = ("promoted", "rolled_back", "aborted")


@dataclass
class RolloutResult:
    """How a rollout ended: ``outcome`` (promoted, rolled_back, aborted), ``reason`` and the record."""

    outcome: str
    reason: str
    rollout: str
    route: str
    namespace: str
    stable: str
    canary: str
    weights: dict[str, int]
    analyses: list[dict[str, Any]] = field(default_factory=list)
    failed_checks: int = 0
    started: float = 0.0
    duration_s: float = 0.0
    events: str = ""
    load: dict[str, Any] | None = None
    error: str | None = None
    policy: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The final JSON of ``trafficlab rollout -o json``."""
        return {
            "outcome": self.outcome, "reason": self.reason, "rollout": self.rollout,
            "route": f"{self.namespace}/{self.route}", "stable": self.stable, "canary": self.canary,
            "weights": self.weights, "failed_checks": self.failed_checks,
            "duration_s": round(self.duration_s, 3), "analyses": self.analyses,
            "events": self.events, "load": self.load, "error": self.error, "policy": self.policy,
        }

    def __str__(self) -> str:
        return f"rollout of HTTPRoute {self.namespace}/{self.route}: {self.outcome}: {self.reason}"


class _Stop(Exception):
    """Ends the run: a command (promote, abort), a rollback, or a route changed by someone else."""

    def __init__(self, outcome: str, reason: str, *, weight: int | None) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.weight = weight  # the canary weight to set on the way out; None leaves the route


def _start_load(url: str, rps: float, path: str) -> BackgroundLoad:
    """The rollout's own steady load through the gateway, until the rollout stops it."""
    # Enough workers to keep the rate when the canary answers slowly (a few hundred ms).
    concurrency = max(4, min(64, math.ceil(rps / 4)))
    return start_load(url, rate=rps, concurrency=concurrency, path=path, timeout=5.0,
                      name="rollout-load")


def _stop_load(load: BackgroundLoad, rps: float, path: str) -> dict[str, Any]:
    """Stop the load; what it sent, for the result and the event log."""
    failed: Counter[str] = Counter()
    try:
        result = load.stop()
    except Exception as exc:  # the lab went away: the rollout itself will say so
        result = load.sent
        failed[type(exc).__name__] += 1
    return {"rps": rps, "path": path, "total": result.total,
            "by_version": dict(result.by_version),
            "by_status": {str(k): v for k, v in result.by_status.items()},
            "errors": dict(result.errors + failed)}


class Rollout:
    """One run of a rollout on a lab. Use :func:`run_rollout`, or ``Rollout(...).run()``.

    ``on_event`` receives every event dict as it is logged (the live view uses it);
    ``progress``: True draws a live view on stderr (lines when stderr is not a terminal),
    False draws nothing, None picks True on a terminal.
    """

    def __init__(self, lab: Lab, policy: RolloutPolicy, *, progress: bool | None = False,
                 on_event: Callable[[dict[str, Any]], None] | None = None,
                 poll_s: float = 0.1) -> None:
        self.lab = lab
        self.policy = policy.validate()
        self.canary: str = policy.canary or ""
        self.id = uuid.uuid4().hex[:8]
        self.folder = rollout_dir(lab.home, policy.route, policy.namespace)
        self.events_path = self.folder / "events.jsonl"
        self._on_event = on_event
        self._progress = progress
        self._poll_s = poll_s
        self.started = time.time()
        self.phase = "starting"
        self.step = 0  # 1-based index of the current step; 0 before the first
        self.weight = 0  # the canary weight the rollout last set and saw served
        self.failed = 0
        self.no_data_streak = 0
        self.analyses: list[dict[str, Any]] = []
        self.last_message = ""
        self.deadline: float | None = None  # monotonic end of the interval being analysed
        self._acked: str | None = None
        self._owns_route = False  # True once the rollout set a weight (so it may restore one)
        self._source = "direct"
        self._versions: dict[str, str] = {}
        self._pods: dict[str, list[str]] = {}
        self._heartbeat = 0.0
        self._lock = threading.Lock()

    # -- events and state ------------------------------------------------------------------
    def _weights_doc(self) -> dict[str, int]:
        return {self.policy.stable: 100 - self.weight, self.canary: self.weight}

    def _emit(self, event: str, message: str, **extra: Any) -> dict[str, Any]:
        now = time.time()
        record = {"time": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds")
                  .replace("+00:00", "Z"), "t": round(now - self.started, 3), "rollout": self.id,
                  "event": event, "route": f"{self.policy.namespace}/{self.policy.route}",
                  "phase": self.phase, "step": self.step, "weights": self._weights_doc(),
                  "failed_checks": self.failed, "message": message, **extra}
        self.last_message = message
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with self.events_path.open("a") as log:
                log.write(json.dumps(record) + "\n")
        self._write_state()
        if self._on_event is not None:
            self._on_event(record)
        return record

    def state(self) -> dict[str, Any]:
        """What ``state.json`` holds: phase, step, weights, failed checks, last decision..."""
        return {"rollout": self.id, "pid": os.getpid(), "phase": self.phase,
                "route": self.policy.route, "namespace": self.policy.namespace,
                "stable": self.policy.stable, "canary": self.canary,
                "steps": list(self.policy.steps), "step": self.step, "weights": self._weights_doc(),
                "failed_checks": self.failed, "threshold": self.policy.threshold,
                "no_data_streak": self.no_data_streak, "started": self.started,
                "heartbeat": time.time(), "acked": self._acked, "message": self.last_message,
                "interval_ends_in": (None if self.deadline is None
                                     else max(0.0, round(self.deadline - time.monotonic(), 1))),
                "events": str(self.events_path)}

    def _write_state(self) -> None:
        self._heartbeat = time.monotonic()
        write_json(self.folder / "state.json", self.state())

    # -- commands and waiting --------------------------------------------------------------
    def _command(self) -> str | None:
        taken = read_command(self.folder, self._acked, self.started)
        if taken is None:
            return None
        self._acked, command = taken
        return command

    def _handle(self, command: str) -> bool:
        """Act on a command; True when the rollout was paused (the interval must start over)."""
        if command == "promote":
            raise _Stop("promoted", f"promoted by hand ('trafficlab rollout --promote') at step "
                        f"{self.step} ({self.weight}%)", weight=100)
        if command == "abort":
            raise _Stop("aborted", f"aborted by hand ('trafficlab rollout --abort') at step "
                        f"{self.step} ({self.weight}%); all traffic back to {self.policy.stable}",
                        weight=0)
        if command == "pause" and self.phase != "paused":
            self._pause("paused by hand ('trafficlab rollout --pause')")
            return True
        self._write_state()  # resume while running, pause while paused: acknowledged, nothing to do
        return False

    def _pause(self, why: str) -> None:
        self.phase = "paused"
        self.deadline = None
        self._emit("paused", f"{why} at {self.weight}% to {self.canary}; resume with 'trafficlab "
                   f"rollout --resume --route {self.policy.route}' (or --promote, --abort)")
        while True:
            command = self._command()
            if command == "resume":
                self.phase = "progressing"
                self._emit("resumed", "resumed by hand; the interval starts over")
                return
            if command in ("promote", "abort"):
                self._handle(command)
            elif command == "pause" or time.monotonic() - self._heartbeat > 1.0:
                self._write_state()
            time.sleep(self._poll_s)

    def _wait(self, seconds: float) -> bool:
        """Sleep, taking commands; True when a pause happened meanwhile."""
        end = time.monotonic() + seconds
        self.deadline = end
        while True:
            command = self._command()
            if command is not None and self._handle(command):
                self.deadline = None
                return True
            left = end - time.monotonic()
            if left <= 0:
                self.deadline = None
                return False
            if time.monotonic() - self._heartbeat > 1.0:
                self._write_state()
            time.sleep(min(self._poll_s, left))

    # -- the route -------------------------------------------------------------------------
    def _route(self) -> Obj:
        route: Obj = self.lab.get("httproute", self.policy.route, namespace=self.policy.namespace)
        return route

    def _check_untouched(self, route: Obj, when: str) -> None:
        stable, canary, others = rule_weights(route, self.policy.stable, self.canary)
        expected = (100 - self.weight, self.weight)
        busy = {k: v for k, v in others.items() if v}
        if self._owns_route and ((stable, canary) != expected or busy):
            now = f"{self.policy.stable}={stable}, {self.canary}={canary}" + "".join(
                f", {k}={v}" for k, v in busy.items())
            raise _Stop("aborted", f"HTTPRoute {self.policy.namespace}/{self.policy.route} was "
                        f"changed by someone else {when}: its weighted rule gives {now}, the "
                        f"rollout had set {expected[0]}/{expected[1]}; the rollout stops and "
                        "leaves the route as it is", weight=None)

    def _set_weight(self, canary_weight: int) -> dict[str, Any]:
        """Patch the weighted rule, then wait until Envoy serves it; returns what was confirmed."""
        route = self._route()
        self._check_untouched(route, "during the rollout")
        started = time.monotonic()
        patch = weight_patch(route, self.policy.stable, self.canary, canary_weight)
        try:
            self.lab.patch("httproute", self.policy.route, patch, type="json",
                           namespace=self.policy.namespace)
        except TrafficLabError as exc:
            if exc.reason == "Conflict":  # a test operation failed: the rule moved under us
                raise _Stop("aborted", f"HTTPRoute {self.policy.namespace}/{self.policy.route} "
                            f"was changed by someone else during the rollout ({exc.message}); "
                            "the rollout stops and leaves the route as it is", weight=None) from exc
            raise
        self._owns_route = True
        previous, self.weight = self.weight, canary_weight
        served = self.lab.wait_programmed(self.policy.route, namespace=self.policy.namespace)
        self._check_untouched(served, "while the new weights were being served")
        return {"previous": previous, "generation": served["metadata"]["generation"],
                "confirm_s": round(time.monotonic() - started, 3)}

    def _confirm_served(self) -> int:
        """The data plane serves the weights the rollout set; returns the route's generation."""
        served = self.lab.wait_programmed(self.policy.route, namespace=self.policy.namespace)
        self._check_untouched(served, "during the analysis")
        return int(served["metadata"]["generation"])

    # -- metrics ---------------------------------------------------------------------------
    # -- metrics (see measure.py) ----------------------------------------------------------
    def _resolve_versions(self) -> None:
        """The Task API version (metric label) behind each Service, from the pods it selects."""
        self._versions, self._pods = resolve_versions(
            self.lab, self.policy.namespace, (self.policy.stable, self.canary))
        if self._versions[self.policy.stable] == self._versions[self.canary]:
            raise TrafficLabError(f"{self.policy.stable} and {self.canary} both run version "
                                  f"{self._versions[self.canary]}; their metrics cannot be told apart")

    def _pod_names(self) -> list[str]:
        return [n for names in self._pods.values() for n in names]

    def _baseline(self) -> list[PodSample]:
        return baseline(self.lab, self._source, self.policy.namespace, self._pod_names())

    def _figures(self, since: float, start: list[PodSample]) -> MetricsReport:
        return figures(self.lab, self._source, self.policy.namespace, self._pod_names(), since,
                       start)

    # -- the loop --------------------------------------------------------------------------
    def _analyse(self) -> tuple[Judgement, MetricsReport, float, int]:
        """Wait one interval and judge it; an interval interrupted by a pause starts over."""
        while True:
            baseline = self._baseline()
            since = time.time()
            if self._wait(self.policy.interval_s):
                continue
            generation = self._confirm_served()
            report = self._figures(since, baseline)
            canary = report.get(self._versions[self.canary])
            return judge(canary, self.policy), report, time.time() - since, generation

    def _step(self, index: int, weight: int) -> None:
        policy = self.policy
        self.step = index
        if policy.pause_before_steps and self.phase != "paused":
            self._pause(f"pausing before step {index} ({weight}%) as the policy asks "
                        "(pauseBeforeSteps)")
        confirmed = self._set_weight(weight)
        self._emit("weights", f"step {index}/{len(policy.steps)}: {self.canary} {weight}%, "
                   f"{policy.stable} {100 - weight}%; Envoy serves generation "
                   f"{confirmed['generation']} ({confirmed['confirm_s'] * 1000:.0f} ms)", **confirmed)
        while True:
            judgement, report, window, generation = self._analyse()
            decision = decide(judgement, self.failed, self.no_data_streak, policy)
            self.failed, self.no_data_streak = decision.failed_checks, decision.no_data_streak
            figures = {"canary": report.get(self._versions[self.canary]).to_dict(),
                       "stable": report.get(self._versions[policy.stable]).to_dict()}
            record = {"step": index, "weight": weight, "window_s": round(window, 3),
                      "source": report.source, "verdict": judgement.verdict,
                      "decision": decision.action, "figures": figures,
                      "checks": [c.to_dict() for c in judgement.checks]}
            self.analyses.append(record)
            nxt = (f"next step {policy.steps[index]}%" if index < len(policy.steps)
                   else "promoting")
            tail = {"advance": f"; {nxt}", "retry": "", "rollback": "; rolling back"}[decision.action]
            self._emit("analysis", f"{weight}%: {decision.reason}{tail}", generation=generation,
                       **{k: v for k, v in record.items() if k not in ("step", "weight")})
            if decision.action == "advance":
                return
            if decision.action == "rollback":
                raise _Stop("rolled_back", f"at step {index} ({weight}%): {decision.reason}",
                            weight=0)

    def run(self) -> RolloutResult:
        """Run to the end; returns the result (also written to the event log and state file)."""
        policy = self.policy
        existing = read_state(self.lab.home, policy.route, policy.namespace)
        if is_running(existing):
            assert existing is not None
            raise TrafficLabError(f"a rollout of HTTPRoute {policy.namespace}/{policy.route} is "
                                  f"already running (pid {existing.get('pid')}, id "
                                  f"{existing.get('rollout')}); pause, promote or abort it first")
        route = self._route()
        *initial, others = rule_weights(route, policy.stable, self.canary)  # fails when no rule fits
        busy = {k: v for k, v in others.items() if v}
        if busy:
            rule = find_weighted_rule(route, policy.stable, self.canary)[0]
            raise TrafficLabError(
                f"rules[{rule}] of HTTPRoute {policy.namespace}/{policy.route} also sends traffic "
                f"to {', '.join(f'{k} (weight {v})' for k, v in busy.items())}; a rollout splits "
                f"that rule between {policy.stable} and {self.canary} only. Set the other "
                "backends' weight to 0 first.")
        self._resolve_versions()
        self._source = pick_source(self.lab, self.policy.source, self.policy.namespace)
        # Commands written before this point belong to an earlier rollout.
        self.started = time.time()
        self._acked = None
        view = _View(self) if self._progress is not False else None
        load: BackgroundLoad | None = None
        outcome, reason, error = "aborted", "", None
        try:
            if view is not None:
                view.start(self._progress)
            self.phase = "progressing"
            self._emit("start", f"rollout of {self.canary} ({self._versions[self.canary]}) against "
                       f"{policy.stable} ({self._versions[policy.stable]}) in HTTPRoute "
                       f"{policy.namespace}/{policy.route}: steps {list(policy.steps)}, interval "
                       f"{format_duration(policy.interval_s)}, source {self._source}",
                       policy=policy.to_dict(), initial_weights=list(initial),
                       versions=self._versions)
            if policy.load_rps:
                load = _start_load(self.lab.url(), policy.load_rps, policy.load_path)
            try:
                for index, weight in enumerate(policy.steps, start=1):
                    self._step(index, weight)
                raise _Stop("promoted", f"the canary passed every step ({', '.join(map(str, policy.steps))}"
                            f"%) with {self.failed} failed checks (threshold {policy.threshold})",
                            weight=100)
            except KeyboardInterrupt:
                raise _Stop("aborted", f"interrupted at step {self.step} ({self.weight}%); all "
                            f"traffic back to {policy.stable}", weight=0) from None
        except _Stop as stop:
            outcome, reason = stop.outcome, stop.reason
            if stop.weight is not None:
                reason = self._finish_weight(stop.weight, reason)
        except (TrafficLabError, OSError) as exc:
            error = getattr(exc, "message", None) or str(exc)
            outcome = "aborted"
            reason = self._finish_weight(0, f"the rollout failed: {error}") if self._owns_route \
                else f"the rollout failed before changing the route: {error}"
        finally:
            load_doc = (_stop_load(load, policy.load_rps or 0.0, policy.load_path)
                        if load is not None else None)
        self.phase = outcome
        self.deadline = None
        self._emit(outcome, reason, outcome=outcome, load=load_doc)
        if view is not None:
            view.stop()
        return RolloutResult(
            outcome=outcome, reason=reason, rollout=self.id, route=policy.route,
            namespace=policy.namespace, stable=policy.stable, canary=self.canary,
            weights=self._weights_doc(), analyses=self.analyses, failed_checks=self.failed,
            started=self.started, duration_s=time.time() - self.started,
            events=str(self.events_path), load=load_doc, error=error, policy=policy.to_dict())

    def _finish_weight(self, weight: int, reason: str) -> str:
        """Set the final weight (0: all to stable at once; 100: promoted); say if it could not."""
        if weight == self.weight and self._owns_route:
            return reason
        try:
            confirmed = self._set_weight(weight)
        except _Stop as stop:
            return f"{reason}; but {stop.reason}"
        except (TrafficLabError, OSError) as exc:
            return f"{reason}; the final weights could not be set: {getattr(exc, 'message', exc)}"
        self._emit("weights", f"final: {self.canary} {weight}%, {self.policy.stable} {100 - weight}%"
                   f"; Envoy serves generation {confirmed['generation']} "
                   f"({confirmed['confirm_s'] * 1000:.0f} ms)", **confirmed)
        return reason



def run_rollout(lab: Lab, policy: RolloutPolicy, *, progress: bool | None = False,
                on_event: Callable[[dict[str, Any]], None] | None = None) -> RolloutResult:
    """Run a rollout of ``policy`` on ``lab`` to its end (see the module docstring)."""
    return Rollout(lab, policy, progress=progress, on_event=on_event).run()
