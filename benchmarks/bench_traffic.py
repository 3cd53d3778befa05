"""Benchmark: TrafficLab's traffic generator against wrk on the same URL.

Budget (docs: "Budgets on this 2-core machine"): the generator reaches at least 0.6x
wrk's requests/s through the same Envoy route. The two run one after the other with
the same connection count and duration, after a short warm-up.

    python benchmarks/bench_traffic.py --url http://127.0.0.1:8080 --path /
    python benchmarks/bench_traffic.py --self-contained

``--self-contained`` starts a Task API process (``python -m taskapi``) and, when
``trafficlab.gateway.proxy`` is importable, a real Envoy routing one listener to it
(as the lab does); otherwise it measures the Task API directly. Everything it starts
is stopped by PID before it exits. wrk comes from PATH (Debian package ``wrk``).

Prints a small table, then one line of JSON: both rates and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("trafficlab") is None:  # run from a checkout, not installed
    sys.path.insert(0, str(ROOT))

from trafficlab.traffic import AiohttpTransport, TrafficResult, _run, asend, send  # noqa: E402

BUDGET_RATIO = 0.6


def free_port() -> int:
    """A port free right now on 127.0.0.1 (bind to 0, read, close)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_http(url: str, timeout: float = 15.0) -> None:
    """Wait until ``url`` answers any HTTP status."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a child we started, by its PID: SIGTERM, then SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def taskapi(version: str = "v1") -> Iterator[str]:
    """A Task API process on a free port; yields its base URL."""
    port = free_port()
    env = dict(os.environ, VERSION=version, POD_NAME=f"task-api-{version}-bench",
               PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskapi", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz")
        yield url
    finally:
        stop(proc)


@contextlib.contextmanager
def envoy_in_front(backend_url: str) -> Iterator[str | None]:
    """A real Envoy with one listener routing everything to ``backend_url``.

    Yields the listener's URL, or None when the proxy module is not available.
    """
    try:
        from trafficlab.gateway import ir
        from trafficlab.gateway.proxy import EnvoyProxy
    except ImportError as exc:
        print(f"note: no Envoy ({exc}); measuring the Task API directly", file=sys.stderr)
        yield None
        return
    host, port = backend_url.rsplit("//", 1)[1].split(":")
    cluster = "service/default/task-api-v1/80"
    listen = free_port()
    xds = ir.Xds(
        version="bench-1",
        listeners=(ir.HTTPListener(
            name="default/task-api-gateway/80", address="127.0.0.1", port=80, bind_port=listen,
            virtual_hosts=(ir.VirtualHost(
                name="default/task-api-gateway/80/*", domains=("*",),
                routes=(ir.Route(
                    name="httproute/default/task-api/rule/0/match/0/*",
                    action=ir.Forward((ir.WeightedDestination(cluster, 1, "task-api-v1"),)),
                ),),
            ),),
        ),),
        clusters=(ir.Cluster(cluster, (ir.Endpoint(host, int(port)),)),),
    )
    with tempfile.TemporaryDirectory(prefix="bench-envoy-") as workdir:
        proxy = EnvoyProxy(Path(workdir))
        proxy.start()
        try:
            proxy.push(xds)
            url = f"http://127.0.0.1:{proxy.listener_ports().get(xds.listeners[0].name, listen)}"
            wait_http(url + "/healthz")
            yield url
        finally:
            proxy.stop()


def run_wrk(url: str, duration: float, concurrency: int, threads: int) -> dict[str, Any]:
    """Run wrk and parse its requests/s, request count and failures."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not on PATH (Debian: apt-get install wrk)")
    threads = max(1, min(threads, concurrency))
    out = subprocess.run(
        [wrk, f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(duration))}s", url],
        check=True, capture_output=True, text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors:(.*)", out)
    return {"rps": rps, "requests": total, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": socket_errors.group(1).strip() if socket_errors else ""}


def run_ours(url: str, path: str, duration: float, concurrency: int,
             transport: str) -> dict[str, Any]:
    """Run TrafficLab's generator for ``duration`` seconds."""
    cpu = time.process_time()
    if transport == "aiohttp":
        async def go() -> TrafficResult:
            async with AiohttpTransport(concurrency=concurrency) as chosen:
                return await asend(url, path=path, duration=duration, concurrency=concurrency,
                                   progress=False, transport=chosen)

        result = _run(go())
    else:
        result = send(url, path=path, duration=duration, concurrency=concurrency,
                      progress=False)
    cpu = time.process_time() - cpu
    lat = result.latency()
    return {"rps": result.rps, "requests": result.total,
            "cpu_us_per_request": round(cpu / max(1, result.total) * 1e6, 1),
            "non_2xx": sum(c for s, c in result.by_status.items() if s >= 400),
            "errors": dict(result.errors), "p50_ms": lat["p50"], "p99_ms": lat["p99"]}


def measure(url: str, path: str, duration: float, concurrency: int, threads: int,
            rounds: int, via: str, transport: str) -> dict[str, Any]:
    target = url.rstrip("/") + "/" + path.lstrip("/")
    # Warm both sides (connection pools, the Task API's first requests).
    send(url, path=path, duration=min(1.0, duration), concurrency=concurrency, progress=False)
    wrk_runs, our_runs = [], []
    for _ in range(rounds):
        wrk_runs.append(run_wrk(target, duration, concurrency, threads))
        our_runs.append(run_ours(url, path, duration, concurrency, transport))
    wrk_best = max(wrk_runs, key=lambda r: r["rps"])
    ours_best = max(our_runs, key=lambda r: r["rps"])
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    if os.environ.get("TRAFFICLAB_NO_UVLOOP"):
        loop = "asyncio"
    return {
        "url": target, "via": via, "duration_s": duration, "concurrency": concurrency,
        "wrk_threads": threads, "rounds": rounds, "loop": loop, "transport": transport,
        "wrk": wrk_best, "trafficlab": ours_best,
        "ratio": ours_best["rps"] / wrk_best["rps"] if wrk_best["rps"] else 0.0,
        "budget": BUDGET_RATIO,
    }


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report['url']} ({report['via']}) · {report['concurrency']} conns · "
                        f"{report['duration_s']} s · {report['transport']} on {report['loop']}")
    for col in ("generator", "req/s", "requests", "non-2xx"):
        table.add_column(col, justify="right" if col != "generator" else "left")
    for name in ("wrk", "trafficlab"):
        row = report[name]
        table.add_row(name, f"{row['rps']:.0f}", str(row["requests"]), str(row["non_2xx"]))
    verdict = "ok" if report["ratio"] >= report["budget"] else "BELOW BUDGET"
    table.add_section()
    table.add_row("ratio", f"{report['ratio']:.2f}", f"budget {report['budget']}", verdict)
    Console(stderr=True).print(table)
    print(json.dumps(report))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="base URL of the route to load (the gateway)")
    parser.add_argument("--path", default="/", help="path appended to the URL (default /)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (both)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each; best is kept")
    parser.add_argument("--transport", choices=("default", "aiohttp"), default="default",
                        help="our generator's transport (default: httptools when installed)")
    parser.add_argument("--self-contained", action="store_true",
                        help="start a Task API (behind Envoy when available) to measure")
    args = parser.parse_args(argv)
    if bool(args.url) == bool(args.self_contained):
        parser.error("give either --url or --self-contained")

    def go(url: str, via: str) -> None:
        print_report(measure(url, args.path, args.duration, args.concurrency,
                             args.wrk_threads, args.rounds, via, args.transport))

    if args.url:
        go(args.url, "given URL")
        return 0
    with taskapi() as backend, envoy_in_front(backend) as gateway:
        go(gateway or backend, "Envoy -> Task API" if gateway else "Task API directly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
