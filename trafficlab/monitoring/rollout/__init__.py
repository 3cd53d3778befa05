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

One job per module, and data flows one way (no module imports a later one):
:mod:`~.policy` (the settings) -> :mod:`~.analysis` (judge and decide, pure) ->
:mod:`~.edit` (the weighted rule and its patch) -> :mod:`~.control` (state, commands and
events in the lab home) -> :mod:`~.measure` (versions and figures) -> :mod:`~.view` (the live
view) -> :mod:`~.run` (the loop that uses them all).
"""

from __future__ import annotations

from trafficlab.monitoring.rollout.analysis import (
    CheckResult,
    Decision,
    Judgement,
    decide,
    judge,
)
from trafficlab.monitoring.rollout.control import (
    COMMANDS,
    read_events,
    read_state,
    rollout_dir,
    send_command,
)
from trafficlab.monitoring.rollout.edit import find_weighted_rule, weight_patch
from trafficlab.monitoring.rollout.policy import (
    NO_DATA_POLICIES,
    PolicyError,
    RolloutPolicy,
    load_policy,
)
from trafficlab.monitoring.rollout.run import OUTCOMES, Rollout, RolloutResult, run_rollout
from trafficlab.monitoring.rollout.view import _View as _View  # tests draw it directly

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

