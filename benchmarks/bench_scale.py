"""Cost at scale (issue 12): N HTTPRoutes applied at once, a one-field patch of one of them,
and the idle daemon's CPU with all of them stored.

    python benchmarks/bench_scale.py [--routes 5000] [--patches 5] [--idle 10] [--json]

Starts its own lab in a temporary home and stops it; prints a table and one JSON line.
The reference is the issue's measurement before the fix: apply 8.9 s, each patch 5.7-7.2 s,
idle daemon 54% of a CPU with 5,000 routes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from trafficlab import Lab


def _route(i: int, v2: int = 0) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": f"scale-{i:05d}", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "task-api-gateway"}],
                     "hostnames": [f"app-{i:05d}.example.com"],
                     "rules": [{"backendRefs": [
                         {"name": "task-api-v1", "port": 80, "weight": 100 - v2},
                         {"name": "task-api-v2", "port": 80, "weight": v2}]}]}}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=5000)
    parser.add_argument("--patches", type=int, default=5)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measured")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trafficlab-bench-scale-") as tmp:
        lab = Lab(Path(tmp) / "lab", backend="local")
        lab.up(timeout=120)
        try:
            daemon = int(json.loads((lab.home / "lab.json").read_text())["pid"])
            routes = [_route(i) for i in range(args.routes)]
            started = time.perf_counter()
            for chunk in range(0, len(routes), 1000):  # each apply stays under 3 MiB
                lab.apply(routes[chunk:chunk + 1000])
            apply_s = time.perf_counter() - started
            patch_s = []
            for n in range(args.patches):
                started = time.perf_counter()
                lab.apply(_route(n, v2=10 + n))
                patch_s.append(time.perf_counter() - started)
            time.sleep(1.0)  # let the last status writes settle
            cpu0, wall0 = _cpu_seconds(daemon), time.monotonic()
            time.sleep(args.idle)
            idle_cpu = (_cpu_seconds(daemon) - cpu0) / (time.monotonic() - wall0)
        finally:
            lab.down()
    result = {"routes": args.routes, "apply_s": round(apply_s, 2),
              "patch_median_s": round(statistics.median(patch_s), 3),
              "patch_max_s": round(max(patch_s), 3),
              "idle_daemon_cpu_percent": round(100 * idle_cpu, 2)}
    print(f"{'routes':<28}{args.routes}")
    print(f"{'apply all (chunks of 1000)':<28}{result['apply_s']} s")
    print(f"{'one-field patch (median)':<28}{result['patch_median_s']} s  "
          f"(max {result['patch_max_s']} s)")
    print(f"{'idle daemon CPU':<28}{result['idle_daemon_cpu_percent']} %")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
