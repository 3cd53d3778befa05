"""Cost at scale (issue 12): N HTTPRoutes applied at once, one-field patches of them, the
idle daemon's CPU with all of them stored, and the lab's RSS.

    python benchmarks/bench_scale.py [--routes 10,100,1000,5000] [--patches 20] [--idle 10] [--json]

For each size, starts its own lab in a temporary home and stops it; prints a table and one
JSON line per size. A patch is timed from the request until Envoy serves it (``apply``
returns once Envoy confirmed the configuration). The budget (DESIGN.md): with 5,000 routes a
one-field patch in 200 ms and the idle daemon under 2% of a CPU. Before the incremental
reconcile: apply 5.9 s, patch median 2.0 s; the issue's first measurement: apply 8.9 s, each
patch 5.7-7.2 s, idle daemon 54% of a CPU. benchmarks/profile_scale.py shows where the
daemon's time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_lab import lab_rss_mib

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


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(routes_n: int, patches: int, idle: float) -> dict[str, Any]:
    """Apply ``routes_n`` routes, patch ``patches`` of them one field each, then sit idle."""
    with tempfile.TemporaryDirectory(prefix="trafficlab-bench-scale-") as tmp:
        lab = Lab(Path(tmp) / "lab", backend="local")
        lab.up(timeout=120)
        try:
            daemon = int(json.loads((lab.home / "lab.json").read_text())["pid"])
            routes = [_route(i) for i in range(routes_n)]
            started = time.perf_counter()
            for chunk in range(0, len(routes), 1000):  # each apply stays under 3 MiB
                lab.apply(routes[chunk:chunk + 1000])
            apply_s = time.perf_counter() - started
            patch_s = []
            for n in range(patches):
                started = time.perf_counter()
                # A different route each time, spread over the whole set.
                lab.apply(_route(n * max(1, routes_n // patches) % routes_n, v2=10 + n % 80))
                patch_s.append(time.perf_counter() - started)
            time.sleep(1.0)  # let the last status writes settle
            cpu0, wall0 = _cpu_seconds(daemon), time.monotonic()
            time.sleep(idle)
            idle_cpu = (_cpu_seconds(daemon) - cpu0) / (time.monotonic() - wall0)
            rss = lab_rss_mib(lab.home)
        finally:
            lab.down()
    return {"routes": routes_n, "apply_s": round(apply_s, 2),
            "patch_median_ms": round(1000 * statistics.median(patch_s), 1),
            "patch_p99_ms": round(1000 * _percentile(patch_s, 0.99), 1),
            "patch_max_ms": round(1000 * max(patch_s), 1),
            "idle_daemon_cpu_percent": round(100 * idle_cpu, 2),
            "rss_mib": {k: round(v, 1) for k, v in rss.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", default="5000", help="comma-separated sizes, e.g. 10,100,1000,5000")
    parser.add_argument("--patches", type=int, default=20)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measured")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(f"{'routes':>7} {'apply':>8} {'patch median':>13} {'p99':>9} {'max':>9} "
          f"{'idle CPU':>9} {'RSS (daemon / all)':>20}")
    for size in (int(x) for x in args.routes.split(",")):
        r = measure(size, args.patches, args.idle)
        print(f"{size:>7} {r['apply_s']:>7.2f}s {r['patch_median_ms']:>10.1f} ms "
              f"{r['patch_p99_ms']:>6.1f} ms {r['patch_max_ms']:>6.1f} ms "
              f"{r['idle_daemon_cpu_percent']:>8.2f}% "
              f"{r['rss_mib']['daemon']:>8.1f} / {r['rss_mib']['total']:.1f} MiB", flush=True)
        if args.json:
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
