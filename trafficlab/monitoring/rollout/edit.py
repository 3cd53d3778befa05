"""Route editing: the one weighted rule a rollout owns, its weights, and the JSON patch that sets them.

Other rules (header matches for beta users, premium protection) are never touched.
"""

from __future__ import annotations

from typing import Any

from trafficlab._errors import TrafficLabError

__all__ = ["find_weighted_rule", "rule_weights", "weight_patch"]

Obj = dict[str, Any]


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


def rule_weights(route: Obj, stable: str, canary: str) -> tuple[int, int, dict[str, int]]:
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
