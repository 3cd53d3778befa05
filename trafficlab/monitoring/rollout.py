"""Automated canary rollouts: a canary analysis in the manner of Flagger and Argo Rollouts.

A rollout moves the canary's weight through ``steps`` (default 5, 25, 50, 100 %) in the
one weighted rule of the HTTPRoute: the rule whose ``backendRefs`` list both the stable and
the canary Service. Other rules (header matches for beta users, premium protection) are
never touched. At each step it:

1. patches the two weights (a JSON patch whose ``test`` operations make sure the rule still
   names the Services it expects), and waits until Envoy serves that generation;
2. waits one ``interval``, optionally driving its own load through the gateway;
3. confirms the data plane still serves the weights it set (someone else may have edited
   the route: the rollout then stops and leaves the route alone);
4. judges the canary's figures over that interval (see :func:`judge`): at least
   ``min_requests`` requests, error rate (5xx share) at most ``max_error_rate``, p99 at most
   ``max_p99_ms``;
5. decides (see :func:`decide`): a passing interval advances to the next step; a failing one
   counts a failed check and analyses the same step again; when failed checks reach
   ``threshold`` the rollout rolls back: all traffic to the stable Service at once.

After the last step passes the canary gets 100 % (promotion). Outcomes: ``promoted``,
``rolled_back`` (the analysis failed) or ``aborted`` (a person stopped it, the route changed
under it, or the lab failed; traffic returns to stable except when the route changed).

No-data policy (``no_data``), for an interval whose canary got fewer than ``min_requests``
requests, or whose error rate or p99 cannot be computed:

``fail`` (default)
    the interval counts as a failed check, as Flagger does with a query that returns no
    value: a canary nobody can observe is not promoted. With no traffic, a rollout rolls
    back after ``threshold`` intervals.
``hold``
    the step is analysed again without counting a failure; after ``no_data_limit``
    consecutive intervals without data the rollout rolls back (the canary could not be
    judged in the time given).

Control from another terminal goes through files in ``<home>/rollouts/<namespace>/<route>/``:
``state.json`` (written by the running rollout), ``command.json`` (written by
:func:`send_command`: pause, resume, promote, abort) and ``events.jsonl`` (one JSON object per
decision, with the figures behind it).

>>> policy = RolloutPolicy(canary="task-api-v2", interval_s=10, load_rps=50)  # doctest: +SKIP
>>> run_rollout(Lab(), policy).outcome                                       # doctest: +SKIP
'promoted'
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from trafficlab._errors import PolicyError, TrafficLabError, UnsafeFileError
from trafficlab._process import pid_alive
from trafficlab.monitoring.metrics import (
    MetricsReport,
    PodSample,
    VersionMetrics,
    direct_report,
    format_duration,
    parse_duration,
    prometheus_report,
    sample_lab_pods,
    wait_scraped,
)
from trafficlab.safe_files import load_yaml, read_text
from trafficlab.traffic.background import BackgroundLoad, start_load

if TYPE_CHECKING:
    from trafficlab.lab import Lab

__all__ = [
    "COMMANDS",
    "NO_DATA_POLICIES",
    "OUTCOMES",
    "CheckResult",
    "Decision",
    "Judgement",
    "PolicyError",
    "Rollout",
    "RolloutPolicy",
    "RolloutResult",
    "decide",
    "find_weighted_rule",
    "judge",
    "load_policy",
    "read_events",
    "read_state",
    "rollout_dir",
    "run_rollout",
    "send_command",
    "weight_patch",
]

Obj = dict[str, Any]
OUTCOMES = ("promoted", "rolled_back", "aborted")
COMMANDS = ("pause", "resume", "promote", "abort")
NO_DATA_POLICIES = ("fail", "hold")
_ACTIVE = ("starting", "progressing", "paused")
_SOURCES = ("auto", "prometheus", "direct")
# A state file whose heartbeat is older than this belongs to a rollout that is gone.
_STALE_S = 10.0


# -- the policy ------------------------------------------------------------------------------
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


# -- the rule the rollout owns ---------------------------------------------------------------
def _is_service_ref(ref: Obj, name: str, namespace: str) -> bool:
    return (ref.get("name") == name and ref.get("kind", "Service") == "Service"
            and ref.get("group", "") in ("", "core") and ref.get("namespace", namespace) == namespace)


def find_weighted_rule(route: Obj, stable: str, canary: str) -> tuple[int, int, int]:
    """``(rule, stable ref, canary ref)`` indexes of the one rule whose backendRefs list both.

    Raises :class:`TrafficLabError` when no rule or more than one rule lists both Services.
    """
    meta = route.get("metadata", {})
    namespace = meta.get("namespace", "default")
    name = f"HTTPRoute {namespace}/{meta.get('name')}"
    found: list[tuple[int, int, int]] = []
    for i, rule in enumerate(route.get("spec", {}).get("rules", [])):
        refs = rule.get("backendRefs", [])
        js = [j for j, r in enumerate(refs) if _is_service_ref(r, stable, namespace)]
        jc = [j for j, r in enumerate(refs) if _is_service_ref(r, canary, namespace)]
        if js and jc:
            found.append((i, js[0], jc[0]))
    if not found:
        raise TrafficLabError(
            f"no rule of {name} lists both {stable} and {canary} in its backendRefs; the rollout "
            f"changes the weights of that one rule. Add {canary} with weight 0 to the rule that "
            f"serves {stable}, then start the rollout again.")
    if len(found) > 1:
        rules = ", ".join(f"rules[{i}]" for i, _, _ in found)
        raise TrafficLabError(f"{rules} of {name} all list both {stable} and {canary}; the rollout "
                              "drives exactly one weighted rule: keep both Services in one rule only.")
    return found[0]


def _weights(route: Obj, stable: str, canary: str) -> tuple[int, int, dict[str, int]]:
    """The stable and canary weights of the weighted rule, and those of its other backends."""
    i, js, jc = find_weighted_rule(route, stable, canary)
    refs = route["spec"]["rules"][i]["backendRefs"]
    # An omitted weight is 1 (Gateway API HTTPBackendRef.weight default).
    others = {str(r.get("name")): int(r.get("weight", 1)) for j, r in enumerate(refs)
              if j not in (js, jc)}
    return int(refs[js].get("weight", 1)), int(refs[jc].get("weight", 1)), others


def weight_patch(route: Obj, stable: str, canary: str, canary_weight: int) -> list[Obj]:
    """The JSON patch giving ``canary`` ``canary_weight`` and ``stable`` the rest of 100.

    ``test`` operations pin the two backendRefs by name, so the patch fails (instead of
    changing some other backend) when the rule was edited since ``route`` was read.
    """
    i, js, jc = find_weighted_rule(route, stable, canary)
    base = f"/spec/rules/{i}/backendRefs"
    return [
        {"op": "test", "path": f"{base}/{js}/name", "value": stable},
        {"op": "test", "path": f"{base}/{jc}/name", "value": canary},
        {"op": "add", "path": f"{base}/{js}/weight", "value": 100 - canary_weight},
        {"op": "add", "path": f"{base}/{jc}/weight", "value": canary_weight},
    ]


# -- judgement and decision (pure) -----------------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    """One check of one interval: ``status`` is ``pass``, ``fail`` or ``no_data``."""

    name: str
    value: float | None
    limit: float
    status: str

    @property
    def text(self) -> str:
        if self.name == "requests":
            seen = "no requests" if self.value is None else f"{self.value:.0f} requests"
            op = "≥" if self.status == "pass" else "<"
            return f"{seen} {op} min {self.limit:.0f}"
        what = "error rate" if self.name == "error_rate" else "p99"
        if self.value is None:
            return f"{what}: no data"
        if self.status == "no_data":
            shown = f"{self.value * 100:.2f}%" if self.name == "error_rate" else f"{self.value:.1f} ms"
            return f"{what} {shown} (not judged: too few requests)"
        if self.name == "error_rate":
            op = "≤" if self.status == "pass" else ">"
            return f"error rate {self.value * 100:.2f}% {op} max {self.limit * 100:.2f}%"
        op = "≤" if self.status == "pass" else ">"
        return f"p99 {self.value:.1f} ms {op} max {self.limit:.0f} ms"

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "value": self.value, "limit": self.limit,
                "result": self.status, "text": self.text}


@dataclass(frozen=True)
class Judgement:
    """An interval's verdict on the canary: ``pass``, ``fail`` or ``no_data``, with its checks."""

    verdict: str
    checks: tuple[CheckResult, ...]

    @property
    def text(self) -> str:
        return "; ".join(c.text for c in self.checks)


def judge(canary: VersionMetrics, policy: RolloutPolicy) -> Judgement:
    """Check the canary's figures of one interval against the policy.

    Fewer than ``min_requests`` requests (and never 0 of 0) is no data: error rate and p99
    are then not judged, since a handful of requests says little about either.

    >>> judge(VersionMetrics(rps=10, requests=300, error_rate=0.2, p50_ms=2, p99_ms=9),
    ...       RolloutPolicy(canary="v2")).verdict
    'fail'
    """
    requests = canary.requests
    enough = requests is not None and requests >= max(1, policy.min_requests)
    checks = [CheckResult("requests", requests, policy.min_requests,
                          "pass" if enough else "no_data")]
    for name, value, limit in (("error_rate", canary.error_rate, policy.max_error_rate),
                               ("p99", canary.p99_ms, policy.max_p99_ms)):
        if not enough or value is None:
            # The figure is kept for the record, but too few requests are not judged.
            checks.append(CheckResult(name, value, limit, "no_data"))
        else:
            checks.append(CheckResult(name, value, limit, "pass" if value <= limit else "fail"))
    statuses = {c.status for c in checks}
    verdict = "fail" if "fail" in statuses else "no_data" if "no_data" in statuses else "pass"
    return Judgement(verdict, tuple(checks))


@dataclass(frozen=True)
class Decision:
    """What to do after an interval: ``advance``, ``retry`` (same step again) or ``rollback``."""

    action: str
    failed_checks: int
    no_data_streak: int
    reason: str


def decide(judgement: Judgement, failed_checks: int, no_data_streak: int,
           policy: RolloutPolicy) -> Decision:
    """Apply the threshold and the no-data policy to one interval's judgement.

    Failed checks add up over the whole rollout (as Flagger counts them); consecutive
    no-data intervals count only under ``no_data: hold``.

    >>> p = RolloutPolicy(canary="v2", threshold=2)
    >>> decide(Judgement("fail", ()), 1, 0, p).action
    'rollback'
    """
    verdict = judgement.verdict
    if verdict == "pass":
        return Decision("advance", failed_checks, 0, f"the canary passed: {judgement.text}")
    if verdict == "no_data" and policy.no_data == "hold":
        streak = no_data_streak + 1
        if streak >= policy.no_data_limit:
            return Decision("rollback", failed_checks, streak,
                            f"no data for {streak} intervals in a row (noData: hold, noDataLimit: "
                            f"{policy.no_data_limit}): {judgement.text}")
        return Decision("retry", failed_checks, streak,
                        f"no data ({judgement.text}); holding this step "
                        f"({streak}/{policy.no_data_limit} intervals without data)")
    failed = failed_checks + 1
    why = (f"no data counts as a failed check (noData: fail): {judgement.text}"
           if verdict == "no_data" else f"the canary failed: {judgement.text}")
    if failed >= policy.threshold:
        return Decision("rollback", failed, 0,
                        f"{why}; {failed} failed checks reached the threshold of {policy.threshold}")
    return Decision("retry", failed, 0,
                    f"{why}; {failed}/{policy.threshold} failed checks, analysing this step again")


# -- files in the lab home -------------------------------------------------------------------
def rollout_dir(home: Path, route: str, namespace: str = "default") -> Path:
    """``<home>/rollouts/<namespace>/<route>``: state.json, command.json, events.jsonl."""
    return home / "rollouts" / namespace / route


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_state(home: Path, route: str = "task-api", namespace: str = "default") -> dict[str, Any] | None:
    """The state of the route's latest rollout (running or finished), or None."""
    state = _read_json(rollout_dir(home, route, namespace) / "state.json")
    return state if isinstance(state, dict) else None


def read_events(home: Path, route: str = "task-api", namespace: str = "default", *,
                rollout: str | None = None) -> list[dict[str, Any]]:
    """The event log of the route (one rollout's events when ``rollout`` is its id)."""
    path = rollout_dir(home, route, namespace) / "events.jsonl"
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    events = [json.loads(line) for line in lines if line.strip()]
    return [e for e in events if rollout is None or e.get("rollout") == rollout]


def _running(state: Mapping[str, Any] | None) -> bool:
    return bool(state and state.get("phase") in _ACTIVE and pid_alive(int(state.get("pid", 0)))
                and time.time() - float(state.get("heartbeat", 0)) < _STALE_S)


def send_command(home: Path, route: str, command: str, *, namespace: str = "default",
                 timeout: float = 10.0) -> dict[str, Any]:
    """Ask the route's running rollout to ``pause``, ``resume``, ``promote`` or ``abort``.

    Returns the rollout's state once it took the command. Raises :class:`TrafficLabError`
    when no rollout of the route runs, or it did not answer within ``timeout`` seconds.
    """
    if command not in COMMANDS:
        raise TrafficLabError(f"unknown rollout command {command!r}; use one of {', '.join(COMMANDS)}")
    folder = rollout_dir(home, route, namespace)
    state = read_state(home, route, namespace)
    if not _running(state):
        last = f" (the last one ended: {state.get('phase')})" if state else ""
        raise TrafficLabError(f"no rollout of HTTPRoute {namespace}/{route} is running in the lab "
                              f"at {home}{last}; start one with 'trafficlab rollout --route {route} "
                              "--canary NAME'")
    ident = uuid.uuid4().hex[:12]
    _write_json(folder / "command.json", {"id": ident, "command": command, "time": time.time()})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(home, route, namespace)
        if state and state.get("acked") == ident:
            return state
        if state and state.get("phase") not in _ACTIVE:
            raise TrafficLabError(f"the rollout of HTTPRoute {namespace}/{route} ended "
                                  f"({state.get('phase')}) before it took the {command} command")
        time.sleep(0.05)
    raise TrafficLabError(f"the rollout of HTTPRoute {namespace}/{route} did not take the "
                          f"{command} command within {timeout:.0f}s")


# -- the run ---------------------------------------------------------------------------------
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
        _write_json(self.folder / "state.json", self.state())

    # -- commands and waiting --------------------------------------------------------------
    def _command(self) -> str | None:
        data = _read_json(self.folder / "command.json")
        if not isinstance(data, dict) or data.get("id") == self._acked:
            return None
        if float(data.get("time", 0)) < self.started or data.get("command") not in COMMANDS:
            return None  # a command for an earlier rollout, or garbage
        self._acked = str(data["id"])
        return str(data["command"])

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
        stable, canary, others = _weights(route, self.policy.stable, self.canary)
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
    def _resolve_versions(self) -> None:
        """The Task API version (metric label) behind each Service, from the pods it selects."""
        pods = self.lab.get("pod", namespace=self.policy.namespace)
        for service in (self.policy.stable, self.canary):
            svc = self.lab.get("service", service, namespace=self.policy.namespace)
            selector = svc.get("spec", {}).get("selector") or {}
            chosen = [p for p in pods if selector and all(
                p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
            running = [p for p in chosen if p.get("status", {}).get("phase") == "Running"]
            versions = {_pod_version(p) for p in running}
            if not running:
                raise TrafficLabError(f"Service {self.policy.namespace}/{service} selects no running "
                                      "pod; apply its Deployment first (e.g. trafficlab apply -f "
                                      f"cluster/manifests/workloads/{service}.yaml)")
            if len(versions) != 1:
                raise TrafficLabError(f"the pods of Service {self.policy.namespace}/{service} run "
                                      f"several versions ({', '.join(sorted(versions))}); a rollout "
                                      "needs one version per Service")
            self._versions[service] = versions.pop()
            self._pods[service] = [p["metadata"]["name"] for p in running]
        if self._versions[self.policy.stable] == self._versions[self.canary]:
            raise TrafficLabError(f"{self.policy.stable} and {self.canary} both run version "
                                  f"{self._versions[self.canary]}; their metrics cannot be told apart")

    def _pick_source(self) -> None:
        url = self.lab.status().get("prometheus")
        if self.policy.source == "prometheus" and not url:
            raise TrafficLabError("the policy asks for Prometheus (source: prometheus), but this lab "
                                  "runs none; install it or use source: direct")
        self._source = "prometheus" if url and self.policy.source != "direct" else "direct"
        if self._source == "prometheus":
            # Figures of a pod Prometheus does not scrape yet would be missing, not zero.
            wait_scraped(self.lab, timeout=20, namespace=self.policy.namespace)

    def _baseline(self) -> list[PodSample]:
        if self._source != "direct":
            return []
        names = [n for names in self._pods.values() for n in names]
        return sample_lab_pods(self.lab, namespace=self.policy.namespace, names=names)[0]

    def _figures(self, since: float, baseline: list[PodSample]) -> MetricsReport:
        window = max(1.0, time.time() - since)
        if self._source == "prometheus":
            url = self.lab.status().get("prometheus")
            if not url:
                raise TrafficLabError("the lab's Prometheus stopped during the rollout")
            return prometheus_report(str(url), format_duration(round(window)))
        names = [n for names in self._pods.values() for n in names]
        after = sample_lab_pods(self.lab, namespace=self.policy.namespace, names=names)[0]
        return direct_report(after, baseline, window=format_duration(round(window)))

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
        if _running(existing):
            assert existing is not None
            raise TrafficLabError(f"a rollout of HTTPRoute {policy.namespace}/{policy.route} is "
                                  f"already running (pid {existing.get('pid')}, id "
                                  f"{existing.get('rollout')}); pause, promote or abort it first")
        route = self._route()
        *initial, others = _weights(route, policy.stable, self.canary)  # fails when no rule fits
        busy = {k: v for k, v in others.items() if v}
        if busy:
            rule = find_weighted_rule(route, policy.stable, self.canary)[0]
            raise TrafficLabError(
                f"rules[{rule}] of HTTPRoute {policy.namespace}/{policy.route} also sends traffic "
                f"to {', '.join(f'{k} (weight {v})' for k, v in busy.items())}; a rollout splits "
                f"that rule between {policy.stable} and {self.canary} only. Set the other "
                "backends' weight to 0 first.")
        self._resolve_versions()
        self._pick_source()
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


def _pod_version(pod: Obj) -> str:
    # The Task API labels its metrics with its VERSION env; the pod label is the fallback.
    for container in pod.get("spec", {}).get("containers", []):
        for item in container.get("env", []):
            if item.get("name") == "VERSION" and item.get("value"):
                return str(item["value"])
    return str(pod["metadata"].get("labels", {}).get("version", ""))


def run_rollout(lab: Lab, policy: RolloutPolicy, *, progress: bool | None = False,
                on_event: Callable[[dict[str, Any]], None] | None = None) -> RolloutResult:
    """Run a rollout of ``policy`` on ``lab`` to its end (see the module docstring)."""
    return Rollout(lab, policy, progress=progress, on_event=on_event).run()


# -- live view -------------------------------------------------------------------------------
class _View:
    """The live progress on stderr: a rich Live panel on a terminal, else one line per event."""

    def __init__(self, rollout: Rollout) -> None:
        self.rollout = rollout
        self._live: Any = None
        self._console: Any = None
        self._chain: Callable[[dict[str, Any]], None] | None = rollout._on_event

    def start(self, progress: bool | None) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console(stderr=True)
        if self._console.is_terminal:
            self._live = Live(self, console=self._console, refresh_per_second=4, transient=False)
            self._live.start()
        elif progress is None:
            self._console = None  # not a terminal and not asked for: stay quiet
        self.rollout._on_event = self._event

    def _event(self, record: dict[str, Any]) -> None:
        if self._live is None and self._console is not None:
            self._console.print(f"[{record['t']:7.1f}s] {record['event']}: {record['message']}",
                                markup=False, highlight=False, soft_wrap=True)
        if self._chain is not None:
            self._chain(record)

    def stop(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
        self.rollout._on_event = self._chain

    def __rich__(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        r = self.rollout
        policy = r.policy
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold")
        grid.add_column()
        # Text, not markup: a phase like "[paused]" or a message with brackets is shown as is.
        grid.add_row("rollout", Text(f"HTTPRoute {policy.namespace}/{policy.route}: "
                                     f"{policy.stable} → {r.canary}   [{r.phase}]"))
        steps = Text()
        for i, weight in enumerate(policy.steps, start=1):
            style = "green" if i < r.step or r.phase == "promoted" else \
                "yellow" if i == r.step else "dim"
            steps.append(f"{weight}% ", style=style)
        grid.add_row("steps", steps)
        grid.add_row("weights", Text(f"{policy.stable} {100 - r.weight}%  ·  {r.canary} {r.weight}%"))
        if r.deadline is not None:
            left = max(0.0, r.deadline - time.monotonic())
            grid.add_row("analysis", Text(f"{left:.0f}s left of {format_duration(policy.interval_s)}"))
        grid.add_row("failed", Text(f"{r.failed}/{policy.threshold} checks" + (
            f", {r.no_data_streak} intervals without data" if r.no_data_streak else "")))
        grid.add_row("last", Text(r.last_message))
        grid.add_row("control", Text(f"trafficlab rollout --pause|--resume|--promote|--abort "
                                     f"--route {policy.route}"))
        return grid
