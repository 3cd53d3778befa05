"""Status vocabulary and bookkeeping: conditions, the errors translators raise, merging with time.

Translators never build conditions for what went wrong deep inside a rule: they raise or
collect :class:`RouteError` (a reason, the condition type it affects, a human message naming
the field), and the rule's caller folds them into conditions. Condition types and reasons are
the ones the Gateway API defines (``apis/v1/shared_types.go`` and ``gateway_types.go``,
v1.6.1), so tools that know the spec read our status without a glossary.

Translation is pure, so the conditions it returns carry no ``lastTransitionTime``;
:func:`merge_status` fills the times when the store writes status, keeping a condition's
time while its status stays the same, as Kubernetes controllers do.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from trafficlab.controlplane.snapshot import CONTROLLER_NAMES

__all__ = [
    "CONTROLLER_NAME",
    "NOT_ACCEPTED",
    "OWNED_CONDITION_TYPES",
    "PENDING",
    "RouteError",
    "condition",
    "mark_pending",
    "merge_status",
    "set_condition",
]

# What TrafficLab writes into RouteParentStatus.controllerName (must equal the first claimed name).
CONTROLLER_NAME = CONTROLLER_NAMES[0]

# Condition types this controller writes. Types outside this set (and not domain-prefixed by
# us) belong to someone else and are kept untouched, as the spec asks: "Implementations MUST
# NOT remove or reorder Conditions that they are not directly responsible for".
OWNED_CONDITION_TYPES = frozenset(
    {"Accepted", "Programmed", "ResolvedRefs", "Conflicted", "PartiallyInvalid"}
)

Condition = dict[str, Any]

# The reason a Programmed condition carries between a write and the reconcile that serves it.
PENDING = "Pending"
# The reason of a route's Programmed=False where its parent does not accept it: final, not pending.
NOT_ACCEPTED = "NotAccepted"


class RouteError(Exception):
    """One problem found while translating a route: the condition it affects and why.

    ``condition_type`` is ``"Accepted"`` for problems that make a rule invalid (an unsupported
    filter, say) and ``"ResolvedRefs"`` for references that do not resolve (the rule still
    works, the reference's share of traffic gets HTTP 500).

    >>> err = RouteError("BackendNotFound", "ResolvedRefs",
    ...                  "spec.rules[0].backendRefs[1]: Service default/task-api-v3 not found")
    >>> err.reason, err.condition_type
    ('BackendNotFound', 'ResolvedRefs')

    ``summary`` is an optional short clause ("not found") for warnings that already name the
    object, such as "backendRef task-api-v3 (rule 0) not found; its 10% share gets HTTP 500."
    """

    def __init__(self, reason: str, condition_type: str, message: str, *,
                 summary: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.condition_type = condition_type
        self.message = message
        self.summary = summary or message

    def __repr__(self) -> str:
        return f"RouteError({self.reason!r}, {self.condition_type!r}, {self.message!r})"


def condition(type_: str, status: bool | str, reason: str, message: str,
              generation: int | None) -> Condition:
    """A condition as the API spells it, without a transition time (see :func:`merge_status`).

    >>> condition("Accepted", True, "Accepted", "Route is accepted.", 3)["status"]
    'True'
    """
    if isinstance(status, bool):
        status = "True" if status else "False"
    out: Condition = {"type": type_, "status": status, "reason": reason, "message": message}
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def set_condition(conditions: list[Condition], new: Mapping[str, Any], now: str) -> list[Condition]:
    """Upsert ``new`` by type into a copy of ``conditions``.

    The transition time moves to ``now`` only when the status changes (or the type is new);
    reason, message and observedGeneration always take the new values.

    >>> old = [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
    ...         "lastTransitionTime": "2024-01-01T00:00:00Z", "observedGeneration": 1}]
    >>> new = {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "ok",
    ...        "observedGeneration": 2}
    >>> set_condition(old, new, "2024-02-02T00:00:00Z")[0]["lastTransitionTime"]
    '2024-01-01T00:00:00Z'
    """
    out = [dict(c) for c in conditions]
    entry = dict(new)
    for i, current in enumerate(out):
        if current.get("type") == entry.get("type"):
            kept = current.get("lastTransitionTime")
            same = current.get("status") == entry.get("status") and kept
            entry["lastTransitionTime"] = kept if same else now
            out[i] = _ordered(entry)
            return out
    entry["lastTransitionTime"] = now
    out.append(_ordered(entry))
    return out


def merge_status(old: Mapping[str, Any] | None, new: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The status to store: ``new`` (from the translator) with transition times filled from ``old``.

    - ``conditions`` anywhere in the tree are merged with :func:`set_condition`; old conditions
      of types this controller does not own are kept, stale ones it owns are dropped.
    - ``listeners`` entries are paired by ``name``; route ``parents`` entries by ``parentRef``
      and ``controllerName``. Parent entries written by other controllers are kept after ours
      (they are theirs to clean up).
    - Every other field is taken from ``new``.

    >>> merged = merge_status(None, {"conditions": [{"type": "Accepted", "status": "True"}]},
    ...                       "2024-01-01T00:00:00Z")
    >>> merged["conditions"][0]["lastTransitionTime"]
    '2024-01-01T00:00:00Z'
    """
    return _merge_block(old or {}, new, now)


def _merge_block(old: Mapping[str, Any], new: Mapping[str, Any], now: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in new.items():
        if key == "conditions":
            out[key] = _merge_conditions(old.get("conditions") or [], value, now)
        elif key == "listeners":
            out[key] = _merge_keyed(old.get("listeners") or [], value, now,
                                    lambda e: e.get("name"))
        elif key == "parents":
            out[key] = _merge_parents(old.get("parents") or [], value, now)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_conditions(old: list[Condition], new: list[Condition], now: str) -> list[Condition]:
    foreign = [c for c in old if c.get("type") not in OWNED_CONDITION_TYPES]
    merged: list[Condition] = []
    by_type = {c.get("type"): c for c in old}
    for cond in new:
        previous = by_type.get(cond.get("type"))
        merged = [*merged, *set_condition([previous] if previous else [], cond, now)]
    return merged + [dict(c) for c in foreign if c.get("type") not in {m["type"] for m in merged}]


def _merge_keyed(old: list[dict[str, Any]], new: list[dict[str, Any]], now: str,
                 key: Callable[[Mapping[str, Any]], object]) -> list[dict[str, Any]]:
    old_by_key = {key(e): e for e in old}
    return [_merge_block(old_by_key.get(key(e), {}), e, now) for e in new]


def _merge_parents(old: list[dict[str, Any]], new: list[dict[str, Any]],
                   now: str) -> list[dict[str, Any]]:
    def ident(entry: Mapping[str, Any]) -> tuple[str, str]:
        ref = repr(sorted((entry.get("parentRef") or {}).items()))
        return ref, str(entry.get("controllerName"))

    merged = _merge_keyed(old, new, now, ident)
    foreign = [copy.deepcopy(e) for e in old if e.get("controllerName") not in CONTROLLER_NAMES]
    return merged + foreign


_CONDITION_KEYS = (
    "type", "status", "reason", "message", "observedGeneration", "lastTransitionTime",
)


def _ordered(cond: Mapping[str, Any]) -> Condition:
    """Fields in a stable order so stored status diffs stay readable."""
    out = {k: cond[k] for k in _CONDITION_KEYS if k in cond}
    out.update({k: v for k, v in cond.items() if k not in out})
    return out


def mark_pending(obj: Mapping[str, Any], now: str) -> dict[str, Any] | None:
    """The status of a Gateway or HTTPRoute whose spec just changed, until it is reconciled.

    Writes return once stored and the controller follows a moment later, so until then the
    old ``Programmed=True`` would tell ``kubectl wait`` (and anyone polling) that the new
    generation is served. Its Programmed conditions become False with reason ``Pending`` at
    the new generation; the other conditions keep their older ``observedGeneration``, which
    says truthfully that this generation is not yet observed. None when there is no status.
    """
    status = obj.get("status")
    if not isinstance(status, dict):
        return None
    generation = obj["metadata"]["generation"]
    pending = copy.deepcopy(status)
    message = (f"generation {generation} is stored; TrafficLab is programming Envoy with it "
               "(this takes a moment)")
    blocks: list[dict[str, Any]] = []
    if obj.get("kind") == "Gateway":
        blocks = [pending, *(pending.get("listeners") or [])]
    elif "parents" in pending:  # a route, of any kind: its status is per parent
        blocks = list(pending["parents"] or [])
    for block in blocks:
        if isinstance(block, dict) and block.get("controllerName", CONTROLLER_NAME) == \
                CONTROLLER_NAME:
            block["conditions"] = set_condition(block.get("conditions") or [], condition(
                "Programmed", False, PENDING, message, generation), now)
    return pending
