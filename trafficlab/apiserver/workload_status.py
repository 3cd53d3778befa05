"""A Deployment's ``status``, read from the pods the lab runs for it.

The local controller keeps Deployments' progress in its pod manager, not in the store; the
API reports it the way a Deployment controller would, so ``kubectl rollout status`` and
``kubectl wait`` can follow a rollout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trafficlab.workloads.pods import Pod, _template_hash

__all__ = ["deployment_status"]

Obj = dict[str, Any]


def deployment_status(deploy: Obj, pods: Sequence[Pod]) -> Obj:
    """The status block of ``deploy`` given every pod the lab runs."""
    meta = deploy["metadata"]
    mine = [p for p in pods if p.namespace == meta.get("namespace")
            and p.deployment == meta.get("name")]
    # The pod manager names the pods of the current template with this hash.
    current = _template_hash(deploy["spec"]["template"])
    updated = [p for p in mine if p.template_hash == current]
    ready = [p for p in mine if p.ready]
    available = [p for p in updated if p.ready]
    wanted = int(deploy["spec"].get("replicas", 1))
    done = len(updated) >= wanted and len(mine) == len(updated) and len(available) >= wanted
    status: Obj = {
        "observedGeneration": int(meta.get("generation", 1)),
        "replicas": len(mine), "updatedReplicas": len(updated),
        "readyReplicas": len(ready), "availableReplicas": len(available),
        "unavailableReplicas": max(0, wanted - len(available)),
        "conditions": [
            {"type": "Available", "status": "True" if len(available) >= wanted else "False",
             "reason": "MinimumReplicasAvailable" if len(available) >= wanted
             else "MinimumReplicasUnavailable",
             "message": f"{len(available)} of {wanted} replicas are ready"},
            {"type": "Progressing", "status": "True",
             "reason": "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
             "message": "the rollout is complete" if done else "the rollout is in progress"},
        ],
    }
    for key in ("readyReplicas", "availableReplicas", "updatedReplicas", "replicas"):
        if not status[key]:
            del status[key]  # as a real Deployment, zero counts are omitted
    return status
