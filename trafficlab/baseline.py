"""Back to the baseline: the one lab reset that notebooks, graders and tests share.

Every HTTPRoute, Deployment and Service in ``default`` that the baseline does not have is
deleted, then the baseline (``cluster/manifests/baseline``) is applied again over whatever an
earlier exercise or notebook changed (a faulty v2, a blue-green pair, a student's route).
``apply`` returns once Envoy serves the baseline route.
"""

from __future__ import annotations

from trafficlab.labapi import LabAPI
from trafficlab.manifests import baseline_dir, load_manifests

__all__ = ["RESET_KINDS", "reset_to_baseline"]

RESET_KINDS = ("HTTPRoute", "Deployment", "Service")


def reset_to_baseline(lab: LabAPI, *, namespace: str = "default",
                      kinds: tuple[str, ...] = RESET_KINDS) -> None:
    """Delete the objects of ``kinds`` the baseline lacks, then apply the baseline."""
    baseline = load_manifests(baseline_dir())
    keep = {(o["kind"], o["metadata"]["name"]) for o in baseline}
    for kind in kinds:
        for obj in lab.get(kind, namespace=namespace):
            name = obj["metadata"]["name"]
            if (kind, name) not in keep:
                lab.delete(kind, name, namespace=namespace, ignore_not_found=True)
    lab.apply(baseline)
