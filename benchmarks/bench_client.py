"""`trafficlab apply -f` (canary route) and `trafficlab get httproute` latency on the local lab.

    python benchmarks/bench_client.py [--runs 20] [--json]

Starts its own lab in a temporary home, then times, as a student types them, the CLI's
`apply -f solutions/exercises/canary.yaml` (alternating with the baseline route, so every apply
changes the weights and returns only once Envoy serves them) and `get httproute task-api`;
beside them the same verbs in-process (``Lab.apply``, ``Lab.get``: no interpreter start-up).
Medians over ``--runs`` calls each; the lab is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from trafficlab import Lab

ROOT = Path(__file__).resolve().parent.parent
CANARY = ROOT / "solutions" / "exercises" / "canary.yaml"
BASELINE = ROOT / "cluster" / "manifests" / "baseline" / "30-httproute-task-api.yaml"


def _median_ms(run: Callable[[int], object], runs: int) -> float:
    times = []
    for i in range(runs):
        started = time.perf_counter()
        run(i)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trafficlab-bench-client-") as tmp:
        home = Path(tmp) / "lab"
        lab = Lab(home, backend="local")
        lab.up(timeout=60)
        cli = [str(Path(sys.executable).parent / "trafficlab"), "--home", str(home)]

        def cli_apply(i: int) -> None:
            path = CANARY if i % 2 == 0 else BASELINE
            subprocess.run([*cli, "apply", "-f", str(path)], check=True, capture_output=True,
                           timeout=60)

        def cli_get(_: int) -> None:
            subprocess.run([*cli, "get", "httproute", "task-api"], check=True,
                           capture_output=True, timeout=60)

        try:
            result = {
                "cli_apply_canary_ms": _median_ms(cli_apply, args.runs),
                "cli_get_httproute_ms": _median_ms(cli_get, args.runs),
                "lab_apply_canary_ms": _median_ms(
                    lambda i: lab.apply(str(CANARY if i % 2 == 0 else BASELINE)), args.runs),
                "lab_get_httproute_ms": _median_ms(lambda _: lab.get("httproute", "task-api"),
                                                   args.runs),
                "cli_version_start_ms": _median_ms(
                    lambda _: subprocess.run([*cli, "--help"], check=True, capture_output=True,
                                             timeout=60), args.runs),
            }
        finally:
            lab.down()
    if args.json:
        print(json.dumps(result))
        return
    for name, value in result.items():
        print(f"{name:24s} {value:8.1f}")


if __name__ == "__main__":
    main()
