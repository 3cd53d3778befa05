"""kubectl against the local lab (DESIGN budget: `get httproute` median <= 2x kubectl's own start).

    python benchmarks/bench_kubectl.py [--runs 30] [--json]

Starts its own lab in a temporary home, times the real kubectl side by side with
`kubectl version --client` (no server), then `kubectl apply -f` of a route that flips all
traffic between v1 and v2: how long kubectl takes, and how long from the start of the apply
until the gateway's first answer comes from the new version (median and p99). Stops the lab.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from trafficlab import Lab


def _kubectl() -> str:
    here = Path(sys.executable).parent / "kubectl"
    return str(here) if here.exists() else (shutil.which("kubectl") or "kubectl")


def _median_ms(argv: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=True, timeout=60)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


ROUTE = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: task-api
  namespace: default
spec:
  parentRefs:
    - name: task-api-gateway
  rules:
    - backendRefs:
        - name: task-api-v1
          port: 80
          weight: {v1}
        - name: task-api-v2
          port: 80
          weight: {v2}
"""


def _version(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.headers.get("x-version", ""))


def _apply_to_served(kubectl: str, env: dict[str, str], url: str, folder: Path,
                     runs: int) -> tuple[list[float], list[float]]:
    """Per flip: kubectl apply's own time, and apply start -> first answer from the new version."""
    applied, served = [], []
    for run in range(runs):
        target = "v2" if run % 2 == 0 else "v1"
        path = folder / f"route-{target}.yaml"
        path.write_text(ROUTE.format(v1=0 if target == "v2" else 100, v2=100 if target == "v2" else 0))
        started = time.perf_counter()
        subprocess.run([kubectl, "apply", "-f", str(path)], env=env, capture_output=True,
                       check=True, timeout=60)
        applied.append((time.perf_counter() - started) * 1000)
        deadline = time.monotonic() + 30
        while _version(url) != target:
            if time.monotonic() > deadline:
                raise SystemExit(f"the gateway never served {target} after kubectl apply")
        served.append((time.perf_counter() - started) * 1000)
    return applied, served


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    kubectl = _kubectl()
    with tempfile.TemporaryDirectory(prefix="trafficlab-bench-kubectl-") as tmp:
        lab = Lab(Path(tmp) / "lab", backend="local")
        status = lab.up(timeout=60)
        try:
            env = {**os.environ, "KUBECONFIG": str(status["kubeconfig"])}
            result = {
                "kubectl_version_client_ms": _median_ms([kubectl, "version", "--client"], env,
                                                        args.runs),
                "get_httproute_ms": _median_ms([kubectl, "get", "httproute", "task-api"], env,
                                               args.runs),
                "get_pods_ms": _median_ms([kubectl, "get", "pods"], env, args.runs),
            }
            applied, served = _apply_to_served(kubectl, env, lab.url(), Path(tmp), args.runs)
            result.update({"apply_ms": statistics.median(applied), "apply_p99_ms": _p99(applied),
                           "apply_to_served_ms": statistics.median(served),
                           "apply_to_served_p99_ms": _p99(served)})
        finally:
            lab.down()
    ratio = result["get_httproute_ms"] / result["kubectl_version_client_ms"]
    for name, value in result.items():
        print(f"{name:<28}{value:8.1f} ms")
    print(f"{'get httproute / own start':<28}{ratio:8.2f} x   (budget <= 2x)")
    if args.json:
        print(json.dumps({**{k: round(v, 1) for k, v in result.items()}, "ratio": round(ratio, 2)}))


if __name__ == "__main__":
    main()
