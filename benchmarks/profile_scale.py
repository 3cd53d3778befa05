"""Where a one-field patch among N HTTPRoutes spends its time, on the daemon's side.

    python benchmarks/profile_scale.py [--routes 5000] [--patches 3] [--top 30]

Runs the lab's Controller in this process (the daemon's work without its HTTP hop), applies
the baseline and N routes as bench_scale.py does, then profiles ``--patches`` one-field
patches with cProfile and prints, per patch, the seconds spent in each reconcile stage and
the functions with the most cumulative time.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import _route

from trafficlab.controlplane import controller as controller_module
from trafficlab.controlplane.controller import Controller
from trafficlab.manifests import baseline_dir, load_manifests

_STAGES: dict[str, float] = {}


@contextlib.contextmanager
def _timed(name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        _STAGES[name] = _STAGES.get(name, 0.0) + time.perf_counter() - started


def _wrap(owner: Any, attr: str, name: str) -> None:
    original: Callable[..., Any] = getattr(owner, attr)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _timed(name):
            return original(*args, **kwargs)

    setattr(owner, attr, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=5000)
    parser.add_argument("--patches", type=int, default=3)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--no-cprofile", action="store_true",
                        help="stage timers only: the figures without cProfile's overhead")
    parser.add_argument("--sort", default="cumulative", help="pstats order: cumulative, tottime")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trafficlab-profile-scale-") as tmp:
        home = Path(tmp) / "lab"
        home.mkdir(mode=0o700)
        ctl = Controller(home)
        ctl.prometheus = None  # not what is measured here
        ctl.start()
        try:
            ctl.apply(load_manifests(baseline_dir()))
            routes = [_route(i) for i in range(args.routes)]
            started = time.perf_counter()
            for chunk in range(0, len(routes), 1000):
                ctl.apply(routes[chunk:chunk + 1000])
            ctl.wait_reconciled(600)  # writes return once stored; the reconcile follows
            print(f"apply {args.routes} routes: {time.perf_counter() - started:.2f} s")
            # Stage timers: every function the reconcile path calls, by the name it is used under.
            store = ctl.store
            _wrap(store, "snapshot", "store.snapshot (deep copy)")
            _wrap(store, "write_statuses", "store.write_statuses (+ save)")
            _wrap(store, "apply", "store.apply (validate + save)")
            _wrap(ctl.proxy, "push", "proxy.push (render + deliver + confirm)")
            _wrap(controller_module, "translate", "translate")
            _wrap(controller_module, "merge_status", "merge_status")
            from trafficlab.gateway import proxy as proxy_module
            _wrap(proxy_module, "render", "envoy.render")
            _wrap(ctl.proxy, "_stage_file", "proxy._stage_file (serialise)")
            _wrap(ctl.proxy, "_apply", "proxy._apply (write + confirm)")
            profiler = cProfile.Profile()
            for n in range(args.patches):
                _STAGES.clear()
                started = time.perf_counter()
                route = _route(n, v2=10 + n)

                def profiled(route: dict[str, Any] = route) -> None:
                    # On the reconcile thread, where the work happens, not the waiting caller.
                    if not args.no_cprofile:
                        profiler.enable()
                    try:
                        # The write, then its reconcile, both here (a write alone only queues one).
                        ctl.store.apply([route])
                        ctl._reconcile()
                    finally:
                        profiler.disable()

                ctl._serial(profiled)
                total = time.perf_counter() - started
                print(f"\npatch {n}: {total * 1000:.0f} ms")
                for name, seconds in sorted(_STAGES.items(), key=lambda kv: -kv[1]):
                    print(f"  {name:<42}{seconds * 1000:8.0f} ms")
            if not args.no_cprofile:
                print()
                pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
        finally:
            ctl.stop()


if __name__ == "__main__":
    main()
