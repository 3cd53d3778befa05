"""What the lab's own translator says about a route under review.

The reviewer explains problems; whether a parentRef attaches and whether a backendRef
resolves is the translator's call (:func:`trafficlab.gateway.translate.translate`, the code
that writes the route's status in a running lab). So the review runs the translator on the
lab's facts plus the route, and reads the verdicts from the status it would write: the
reviewer can never call a route attached that the lab would refuse, or the other way round.

>>> from trafficlab.engineer.facts import baseline_facts
>>> route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
...          "metadata": {"name": "web", "namespace": "default"},
...          "spec": {"parentRefs": [{"name": "task-api-gateway"}],
...                   "rules": [{"backendRefs": [{"name": "task-api-v9", "port": 80}]}]}}
>>> verdict = translator_verdict(route, baseline_facts())
>>> verdict.attached(0), verdict.reference_problem("spec.rules[0].backendRefs[0]")
(True, 'spec.rules[0].backendRefs[0]: Service default/task-api-v9 not found')
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from trafficlab._errors import TrafficLabError
from trafficlab.controlplane.snapshot import ObjectKey, Snapshot
from trafficlab.engineer.facts import LabFacts
from trafficlab.gateway.translate import translate
from trafficlab.resources import validate

__all__ = ["TranslatorVerdict", "translator_verdict"]

Obj = dict[str, Any]
# ResolvedRefs joins one message per reference, each starting with its field.
_NEXT_REFERENCE = re.compile(r"; (?=spec\.)")


@dataclass(frozen=True)
class TranslatorVerdict:
    """Per parentRef index: (accepted, reason, message); per reference field: the message."""

    parents: dict[int, tuple[bool, str, str]] = field(default_factory=dict)
    references: tuple[str, ...] = ()

    def attached(self, index: int) -> bool:
        """Whether parentRef ``index`` attaches to a listener (False for an unknown Gateway)."""
        return self.parents.get(index, (False, "", ""))[0]

    def refusal(self, index: int) -> tuple[str, str] | None:
        """(reason, message) why parentRef ``index`` does not attach, when the Gateway said so."""
        accepted, reason, message = self.parents.get(index, (True, "", ""))
        return None if accepted else (reason, message)

    def reference_problem(self, field_path: str) -> str | None:
        """The translator's message about the reference at ``field_path``, if it has one."""
        return next((m for m in self.references
                     if m == field_path or m.startswith((field_path + ":", field_path + "."))),
                    None)


def _prepared(obj: Obj, index: int) -> Obj | None:
    """An object as the store would hold it (defaults, generation, uid); None when invalid."""
    try:
        out = validate(copy.deepcopy(obj))
    except TrafficLabError:
        return None
    meta = out["metadata"]
    meta.setdefault("uid", f"review-{index}")
    meta.setdefault("generation", 1)
    meta.setdefault("creationTimestamp", "1970-01-01T00:00:00Z")
    return out


def _same_parent(echo: Obj, ref: Obj, route_namespace: str) -> bool:
    def key(r: Obj) -> tuple[Any, ...]:
        return (r.get("name"), r.get("namespace") or route_namespace, r.get("sectionName"),
                r.get("port"))

    return key(echo) == key(ref)


def translator_verdict(route: Obj, facts: LabFacts) -> TranslatorVerdict | None:
    """The translator's verdicts on ``route`` among ``facts``; None if it cannot be translated."""
    key = ObjectKey.of(route)
    objects = [o for o in facts.objects if ObjectKey.of(o) != key] + [route]
    prepared = [p for i, o in enumerate(objects) if (p := _prepared(o, i)) is not None]
    if not prepared or ObjectKey.of(prepared[-1]) != key:
        return None  # the route itself is invalid: the schema findings say why
    status = translate(Snapshot(revision=1, objects=tuple(prepared))).statuses.get(key) or {}
    namespace = key.namespace
    refs = [r for r in (prepared[-1].get("spec") or {}).get("parentRefs") or []]
    parents: dict[int, tuple[bool, str, str]] = {}
    references: list[str] = []
    claimed: set[int] = set()
    for parent in status.get("parents", []):
        conditions = {c["type"]: c for c in parent.get("conditions", [])}
        index = next((i for i, ref in enumerate(refs) if i not in claimed
                      and _same_parent(parent.get("parentRef") or {}, ref, namespace)), None)
        if index is not None:
            claimed.add(index)
            accepted = conditions.get("Accepted", {})
            parents[index] = (accepted.get("status") == "True", str(accepted.get("reason", "")),
                              str(accepted.get("message", "")))
        resolved = conditions.get("ResolvedRefs", {})
        if resolved.get("status") == "False":
            references.extend(m for m in _NEXT_REFERENCE.split(str(resolved.get("message", "")))
                              if m not in references)
    return TranslatorVerdict(parents, tuple(references))
