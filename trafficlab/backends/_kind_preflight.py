"""Checks before ``up --backend kind`` touches anything: tools, their versions, ports, memory.

Each problem says what is wrong and what to do about it; ``up`` reports all of them at once
instead of failing on the first command that trips over one.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "MIN_MEMORY_BYTES",
    "MIN_VERSIONS",
    "Preflight",
    "Problem",
    "free_port",
    "parse_version",
    "preflight",
]

# Minimum versions and why:
# - docker 20.10: the oldest engine kind's docs still support.
# - kind v0.29.0: its default node image runs Kubernetes 1.33, the oldest minor Envoy Gateway
#   v1.9 supports (its compatibility matrix lists Kubernetes 1.33 to 1.36).
# - kubectl 1.32: within one minor of a 1.33 API server (Kubernetes' version skew policy).
# - helm 3.8: the first release where OCI charts (oci://docker.io/envoyproxy/...) are GA.
MIN_VERSIONS: dict[str, tuple[int, int, int]] = {
    "docker": (20, 10, 0),
    "kind": (0, 29, 0),
    "kubectl": (1, 32, 0),
    "helm": (3, 8, 0),
}
# The node, Envoy Gateway, one Envoy, Prometheus and two Task API pods ask for about 2.5 GiB.
MIN_MEMORY_BYTES = 3 * 1024**3

_INSTALL = {
    "docker": "install Docker (https://docs.docker.com/get-docker/) and start it",
    "kind": "install kind v0.29.0 or newer (https://kind.sigs.k8s.io/docs/user/quick-start/"
            "#installation)",
    "kubectl": "install kubectl 1.32 or newer (https://kubernetes.io/docs/tasks/tools/)",
    "helm": "install Helm 3.8 or newer (https://helm.sh/docs/intro/install/)",
}

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Problem:
    """One thing that stops (or, with ``fatal=False``, slows) the kind lab, and the fix."""

    what: str
    message: str
    fix: str
    fatal: bool = True

    def __str__(self) -> str:
        return f"{self.what}: {self.message}. What to do: {self.fix}."


@dataclass
class Preflight:
    """What the checks found: problems, the tool versions and the host ports to use."""

    problems: list[Problem] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    gateway_port: int = 0
    prometheus_port: int = 0

    @property
    def ok(self) -> bool:
        return not any(p.fatal for p in self.problems)

    def report(self) -> str:
        """Every problem on its own line, fatal ones first."""
        ordered = sorted(self.problems, key=lambda p: not p.fatal)
        return "\n".join(f"  - {'' if p.fatal else '(warning) '}{p}" for p in ordered)


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The first ``[v]MAJOR.MINOR[.PATCH]`` in ``text`` (``kind v0.29.0 go1.24`` -> (0, 29, 0))."""
    match = re.search(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)


def free_port(preferred: int, *, tries: int = 20) -> int | None:
    """``preferred`` if nothing listens on it on 127.0.0.1, else the next free one, else None."""
    for port in range(preferred, preferred + tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return None


def preflight(*, gateway_port: int, prometheus_port: int, check_ports: bool = True,
              run: Runner = _run, which: Callable[[str], str | None] = shutil.which) -> Preflight:
    """Check docker (and its engine), kind, kubectl, helm, memory and the host ports.

    ``check_ports=False`` when the cluster exists already: its ports are taken by itself.
    """
    result = Preflight(gateway_port=gateway_port, prometheus_port=prometheus_port)
    for tool in ("docker", "kind", "kubectl", "helm"):
        if which(tool) is None:
            result.problems.append(Problem(tool, f"{tool} is not on PATH", _INSTALL[tool]))
            continue
        _check_version(tool, run, result)
    if "docker" in result.versions:
        _check_engine(run, result)
    if check_ports:
        _check_ports(result)
    return result


def _version_text(tool: str, run: Runner) -> str:
    if tool == "docker":
        proc = run(["docker", "version", "--format", "{{.Client.Version}}"])
    elif tool == "kind":
        proc = run(["kind", "version"])
    elif tool == "kubectl":
        proc = run(["kubectl", "version", "--client", "-o", "json"])
        try:
            return str(json.loads(proc.stdout)["clientVersion"]["gitVersion"])
        except (ValueError, KeyError, TypeError):
            return proc.stdout
    else:
        proc = run(["helm", "version", "--short"])
    return proc.stdout.strip()


def _check_version(tool: str, run: Runner, result: Preflight) -> None:
    try:
        text = _version_text(tool, run)
    except (OSError, subprocess.TimeoutExpired) as exc:
        result.problems.append(Problem(tool, f"'{tool}' could not be run ({exc})", _INSTALL[tool]))
        return
    version = parse_version(text)
    minimum = MIN_VERSIONS[tool]
    if version is None:
        result.problems.append(Problem(tool, f"could not read its version from {text!r}",
                                       _INSTALL[tool]))
        return
    result.versions[tool] = ".".join(map(str, version))
    if version < minimum:
        need = ".".join(map(str, minimum))
        result.problems.append(Problem(tool, f"version {result.versions[tool]} is older than the "
                                             f"{need} the lab needs", _INSTALL[tool]))


def _check_engine(run: Runner, result: Preflight) -> None:
    try:
        proc = run(["docker", "info", "--format", "{{json .MemTotal}}"])
    except (OSError, subprocess.TimeoutExpired) as exc:
        proc = subprocess.CompletedProcess([], 1, "", str(exc))
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        result.problems.append(Problem(
            "docker", "no Docker engine answers"
                      + (f" ('docker info' said: {detail[-1]})" if detail else ""),
            "start Docker (Docker Desktop, or 'sudo systemctl start docker' on Linux) and check "
            "that 'docker info' works without sudo; or use the local backend: "
            "'trafficlab up --backend local'"))
        return
    try:
        memory = int(proc.stdout.strip())
    except ValueError:
        return
    if memory < MIN_MEMORY_BYTES:
        result.problems.append(Problem(
            "memory", f"the Docker engine has {memory / 1024**3:.1f} GiB of memory; the kind lab "
                      f"needs about {MIN_MEMORY_BYTES // 1024**3} GiB",
            "give Docker more memory (Docker Desktop: Settings > Resources) or use the local "
            "backend, which needs about 250 MB"))


def _check_ports(result: Preflight) -> None:
    for name, attr in (("gateway", "gateway_port"), ("prometheus", "prometheus_port")):
        preferred = int(getattr(result, attr))
        port = free_port(preferred)
        if port is None:
            result.problems.append(Problem(
                f"{name} port", f"ports {preferred}-{preferred + 19} on 127.0.0.1 are all in use",
                "stop what listens there (see 'ss -ltnp') or run 'trafficlab down' in other labs"))
            continue
        if port != preferred:
            result.problems.append(Problem(
                f"{name} port", f"port {preferred} is in use, so the {name} will answer on {port}",
                "nothing; 'trafficlab status' shows the address", fatal=False))
        setattr(result, attr, port)
        if result.gateway_port == result.prometheus_port:  # both scans found the same port
            result.prometheus_port = free_port(result.gateway_port + 1) or result.prometheus_port
