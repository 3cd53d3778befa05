"""The annotation kubectl's client-side apply keeps: what was applied last, as JSON.

``kubectl apply`` computes a three-way merge from it (the file, the live object, the last
applied configuration), so a field dropped from the file is dropped from the object. An
object the lab's own ``apply`` writes carries it too, as if ``kubectl apply`` had written it:
a student's later ``kubectl apply -f`` on it then merges exactly as on a cluster, without
kubectl's warning that the annotation is missing.

>>> obj = with_last_applied({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})
>>> obj["metadata"]["annotations"][LAST_APPLIED]
'{"apiVersion":"v1","kind":"Namespace","metadata":{"annotations":{},"name":"a"}}\\n'
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = ["LAST_APPLIED", "with_last_applied"]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def with_last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` whose annotation holds ``obj`` as applied (kubectl's encoding)."""
    out = copy.deepcopy(obj)
    meta = out.get("metadata")
    if not isinstance(meta, dict):
        return out  # validation names what is wrong with it
    annotations = meta.get("annotations")
    if annotations is None:
        annotations = meta["annotations"] = {}
    if not isinstance(annotations, dict):
        return out
    annotations.pop(LAST_APPLIED, None)
    # kubectl: the object without this annotation (an empty annotations map stays), compact
    # JSON with sorted keys, and a newline.
    annotations[LAST_APPLIED] = json.dumps(out, sort_keys=True, separators=(",", ":")) + "\n"
    return out
