"""Benchmark: how long an automated rollout takes to roll back a bad canary and to promote a good one.

Starts a local lab in a temporary home (Envoy, Task API processes, Prometheus when
installed), then runs two rollouts with TrafficLab's own load through the gateway:

* **rollback**: canary ``task-api-v3`` (``cluster/manifests/workloads/task-api-v3-faulty.yaml``,
  30 % of answers are 500s) against ``task-api-v1``; the clock runs from the call until all
  traffic is back on v1 and Envoy serves it (the rollout confirms that before it returns).
* **promotion**: the healthy ``task-api-v2`` against ``task-api-v1``; until v2 has 100 %.

Settings are the rollout defaults (steps 5, 25, 50, 100; interval 30 s; max error rate 1 %;
max p99 500 ms; min 20 requests per interval; threshold 2) unless flags say otherwise;
``--interval 5s`` gives a quick figure. With the defaults, a bad canary that fails at the
first step is rolled back after ``threshold`` intervals, a good one is promoted after
``len(steps)`` intervals: the figures are those multiples plus the lab's overhead, which
this script reports separately (time not spent waiting for intervals), as well as the time
from the rollback decision to the stable version serving everything.

Prometheus discovers new pods within ~5 s; the script waits for that before it starts the
clock, so the figures do not include it. Everything the lab started is stopped at the end.

    python benchmarks/bench_rollout.py                  # defaults (about 3 minutes)
    python benchmarks/bench_rollout.py --interval 5s    # quick

Prints one line per rollout, then one line of JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("trafficlab") is None:  # run from a checkout, not installed
    sys.path.insert(0, str(ROOT))

from trafficlab import Lab  # noqa: E402
from trafficlab.monitoring.metrics import parse_duration, wait_scraped  # noqa: E402
from trafficlab.monitoring.rollout import RolloutPolicy, read_events, run_rollout  # noqa: E402

WORKLOADS = ROOT / "cluster" / "manifests" / "workloads"


def route(canary: str) -> dict[str, Any]:
    """The route students edit, with the canary beside v1 at weight 0."""
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "task-api", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "task-api-gateway"}], "rules": [{"backendRefs": [
                {"name": "task-api-v1", "port": 80, "weight": 100},
                {"name": canary, "port": 80, "weight": 0}]}]}}


def one(lab: Lab, policy: RolloutPolicy) -> dict[str, Any]:
    """Run one rollout; its wall time, outcome and where the time went."""
    lab.apply(route(str(policy.canary)))
    lab.wait_programmed()
    wait_scraped(lab, timeout=30)
    started = time.monotonic()
    result = run_rollout(lab, policy)
    seconds = time.monotonic() - started
    events = read_events(lab.home, rollout=result.rollout)
    intervals = sum(1 for e in events if e["event"] == "analysis")
    last = [e for e in events if e["event"] == "analysis"][-1]
    final = [e for e in events if e["event"] == "weights"][-1]  # the final weights, served
    return {"canary": policy.canary, "outcome": result.outcome, "seconds": round(seconds, 2),
            "intervals": intervals,
            "overhead_s": round(seconds - intervals * policy.interval_s, 2),
            # Promoted at a last step of 100 %: the final weights were already served.
            "decision_to_served_s": round(max(0.0, final["t"] - last["t"]), 3),
            "reason": result.reason}


def main(argv: list[str] | None = None) -> int:
    defaults = RolloutPolicy()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", default=f"{defaults.interval_s:g}s")
    parser.add_argument("--load", type=float, default=None,
                        help="requests/s the rollout drives (default: enough for the first step's "
                             "canary share to get 3x the minimum requests per interval; 40/s at "
                             "the defaults)")
    parser.add_argument("--source", default="auto", choices=["auto", "prometheus", "direct"])
    args = parser.parse_args(argv)
    interval = parse_duration(args.interval, what="--interval")
    load = args.load or max(20.0, math.ceil(3 * defaults.min_requests
                                            / (defaults.steps[0] / 100 * interval)))
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as home:
        lab = Lab(home, backend="local")
        try:
            status = lab.up(timeout=60)
            lab.apply(WORKLOADS / "task-api-v3-faulty.yaml")
            source = args.source if args.source != "auto" else (
                "prometheus" if status.get("prometheus") else "direct")
            runs = []
            for canary in ("task-api-v3", "task-api-v2"):
                policy = RolloutPolicy(canary=canary, interval_s=interval, load_rps=load,
                                       source=source)
                run = one(lab, policy)
                runs.append(run)
                print(f"{run['canary']}: {run['outcome']} in {run['seconds']:.1f} s "
                      f"({run['intervals']} intervals of {interval:g} s, overhead "
                      f"{run['overhead_s']:.2f} s; decision -> served "
                      f"{run['decision_to_served_s'] * 1000:.0f} ms)")
        finally:
            lab.down()
    print(json.dumps({"interval_s": interval, "steps": list(defaults.steps), "load_rps": load,
                      "source": source, "runs": runs}))
    ok = [r["outcome"] for r in runs] == ["rolled_back", "promoted"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
