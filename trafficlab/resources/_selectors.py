"""Kubernetes label selectors (metav1.LabelSelector): the one place that decides a match.

Used by Deployment validation (the selector must match the template's labels) and by the
translator (a listener's ``allowedRoutes.namespaces.selector``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SELECTOR_OPERATORS", "selector_matches"]

SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool:
    """Whether ``labels`` satisfy ``selector``: a missing selector selects nothing, an empty
    one everything, and an operator Kubernetes does not know matches nothing.

    >>> selector_matches({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": "1"})
    True
    """
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op not in SELECTOR_OPERATORS:
            return False
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True
