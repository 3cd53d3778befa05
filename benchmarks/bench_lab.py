"""Lab budgets (DESIGN.md): time to serving for `trafficlab up`, apply -> confirmed latency,
the lab's total RSS, and 0 failed requests while weights flip 50 times under steady load.

    python benchmarks/bench_lab.py [--applies 100] [--json]

Starts its own lab in a temporary home and stops it; prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from trafficlab import Lab
from trafficlab.traffic import send


def _route(v1: int, v2: int) -> dict[str, object]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "task-api", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "task-api-gateway"}], "rules": [{"backendRefs": [
                {"name": "task-api-v1", "port": 80, "weight": v1},
                {"name": "task-api-v2", "port": 80, "weight": v2}]}]}}


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _memory_kib(pid: int) -> dict[str, int]:
    """RSS, PSS and USS of one process from /proc/PID/smaps_rollup, in KiB.

    RSS counts every resident page the process maps, so pages two processes share (libpython
    and the pydantic-core library in both pods, libc everywhere) are counted once per process;
    PSS splits each shared page between its users (the sum over the lab counts it once); USS
    is what the process alone holds (what ending it would free).
    """
    fields: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, _, value = line.partition(":")
            fields[key] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        return {"rss": 0, "pss": 0, "uss": 0}
    return {"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0),
            "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)}


def _session_pids(sid: int) -> list[int]:
    """Every process in session ``sid`` (the daemon starts one; its children stay in it)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...: comm may hold spaces, so split after ")".
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid:
            out.append(int(entry.name))
    return out


def _lab_pids(home: Path) -> dict[str, list[int]]:
    """The lab's processes by part; "other" is the rest of the daemon's session (the shell
    that keeps Envoy running past the daemon), so the total is every process of the lab."""
    info = json.loads((home / "lab.json").read_text())
    pids = json.loads((home / "pids.json").read_text())
    parts = {"daemon": [int(info["pid"])], "envoy": [int(pids["envoy"])],
             "pods": [int(p) for p in pids["pods"].values()]}
    if pids.get("prometheus"):
        parts["prometheus"] = [int(pids["prometheus"])]
    named = {p for group in parts.values() for p in group}
    parts["other"] = [p for p in _session_pids(int(info["pid"])) if p not in named]
    return parts


def lab_rss_mib(home: Path) -> dict[str, float]:
    """VmRSS per part of the lab (daemon, Envoy, all pods, Prometheus) and the total, in MiB."""
    parts = {part: sum(_rss_kib(p) for p in pids) for part, pids in _lab_pids(home).items()}
    out = {k: v / 1024 for k, v in parts.items()}
    out["total"] = sum(out.values())
    out["total_without_prometheus"] = out["total"] - out.get("prometheus", 0.0)
    return out


def lab_memory_mib(home: Path) -> dict[str, dict[str, float]]:
    """RSS, PSS and USS per part of the lab and in total, in MiB (see `_memory_kib`)."""
    out: dict[str, dict[str, float]] = {}
    for part, pids in _lab_pids(home).items():
        figures = [_memory_kib(p) for p in pids]
        out[part] = {k: sum(f[k] for f in figures) / 1024 for k in ("rss", "pss", "uss")}
    out["total"] = {k: sum(v[k] for v in out.values()) for k in ("rss", "pss", "uss")}
    return out


def time_to_serving(home: Path) -> float:
    """Wall time of the `trafficlab up` command until the gateway answers with v1."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "trafficlab.cli", "--home", str(home), "up",
                    "--backend", "local"], check=True, capture_output=True)
    url = Lab(home).url()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.headers.get("x-version") == "v1":
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.005)


def apply_latencies(lab: Lab, count: int) -> list[float]:
    """Seconds from apply to Envoy confirmed, as `Lab.apply` returns only after confirmation."""
    out = []
    for i in range(count):
        started = time.perf_counter()
        lab.apply(_route(100 - i % 50, i % 50 + 1))
        out.append(time.perf_counter() - started)
    return out


def flips_under_load(lab: Lab, flips: int = 50) -> dict[str, object]:
    done = threading.Event()

    def flip() -> None:
        time.sleep(0.3)
        for i in range(flips):
            lab.apply(_route(100, 0) if i % 2 else _route(0, 100))
        done.set()

    thread = threading.Thread(target=flip)
    thread.start()
    result = send(lab.url(), duration=8.0, concurrency=8, rate=500, progress=False)
    thread.join()
    failed = sum(c for s, c in result.by_status.items() if s != 200) + sum(result.errors.values())
    return {"requests": result.total, "failed": failed, "flips_done": done.is_set(),
            "versions": dict(result.by_version)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--applies", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trafficlab-bench-") as tmp:
        home = Path(tmp) / "lab"
        lab = Lab(home, backend="local")
        try:
            up = time_to_serving(home)
            time.sleep(1.0)  # let Prometheus (when installed) settle before measuring memory
            rss = lab_rss_mib(home)
            memory = {"after_up": lab_memory_mib(home)}
            lat = sorted(apply_latencies(lab, args.applies))
            flips = flips_under_load(lab)
            # After 8 s of load and the applies: the pods have served, Prometheus has
            # scraped and stored for a while; this is nearer what a student's lab holds.
            memory["after_load"] = lab_memory_mib(home)
        finally:
            lab.down()
    p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
    figures = {
        "up_to_serving_s": round(up, 3),
        "apply_confirmed_median_ms": round(statistics.median(lat) * 1000, 1),
        "apply_confirmed_p99_ms": round(p99 * 1000, 1),
        "rss_mib": {k: round(v, 1) for k, v in rss.items()},
        "memory_mib": {when: {part: {k: round(v, 1) for k, v in figs.items()}
                              for part, figs in parts.items()}
                       for when, parts in memory.items()},
        "flips_under_load": flips,
    }
    if not args.json:
        print(f"{'figure':40} {'measured':>12}   budget")
        print(f"{'trafficlab up -> serving':40} {up:>10.2f} s   <= 3 s")
        print(f"{'apply -> confirmed, median':40} {figures['apply_confirmed_median_ms']:>9} ms   <= 100 ms")
        print(f"{'apply -> confirmed, p99':40} {figures['apply_confirmed_p99_ms']:>9} ms")
        print(f"{'lab RSS (all processes)':40} {rss['total']:>8.1f} MiB   <= 250 MB (238.4 MiB)")
        print(f"{'lab memory, MiB: RSS / PSS / USS':40} {'after up':>20}   {'after load':>20}")
        for part in ("daemon", "envoy", "pods", "prometheus", "other", "total"):
            if part in memory["after_up"]:
                cells = ["{rss:6.1f} {pss:6.1f} {uss:6.1f}".format(**memory[when][part])
                         for when in ("after_up", "after_load")]
                print(f"{'  ' + part:40} {cells[0]:>20}   {cells[1]:>20}")
        print(f"{'failed requests, 50 flips under load':40} {flips['failed']:>12}   0 "
              f"(of {flips['requests']})")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
