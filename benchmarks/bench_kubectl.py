"""kubectl against the local lab (DESIGN budget: `get httproute` median <= 2x kubectl's own start).

    python benchmarks/bench_kubectl.py [--runs 30] [--json]

Starts its own lab in a temporary home, times the real kubectl side by side with
`kubectl version --client` (no server), and stops the lab.
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
