"""Run the Task API: ``python -m taskapi --host 127.0.0.1 --port 8000``.

Settings come from the environment (see `taskapi.settings`); a bad value stops
the process before it binds, with exit status 1 and a message naming the
variable. uvicorn serves without an access log (it would cost throughput and fill
the lab's log files), with httptools as HTTP parser when installed (h11 otherwise)
and the standard asyncio loop.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from taskapi.settings import Settings, SettingsError

__all__ = ["main", "parse_args"]

# How long a SIGTERM waits for requests in flight before connections are cut;
# short, because the lab stops and restarts pods often.
_GRACEFUL_SHUTDOWN_S = 5


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``--host``, ``--port``, ``--log-level``)."""
    parser = argparse.ArgumentParser(
        prog="python -m taskapi",
        description="Serve the TrafficLab Task API. Settings come from env: VERSION, "
        "POD_NAME, ERROR_RATE, LATENCY_MS, LATENCY_JITTER_MS, FAULT_SEED.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default %(default)s)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (default %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Validate settings, then serve until SIGINT/SIGTERM; returns the exit status."""
    args = parse_args(argv)
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        print(f"taskapi: error: {exc}", file=sys.stderr)
        return 1

    # FastAPI checks each route's types against pydantic.v1 only to refuse v1 models (the Task
    # API has none), and its first check imports all of pydantic.v1: 1.6 MiB RSS per pod
    # (48.5 -> 46.9 MiB). With None here that import fails, which FastAPI reads as "no v1
    # model". Only this process's entry point does it: an app built in a test is unchanged.
    sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]

    # Imported only after the settings are known good, so a bad env fails fast.
    import uvicorn

    from taskapi.app import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        # Measured on the lab machine (GET /, wrk -c32): httptools 12.2k req/s vs h11
        # 7.1k; uvloop added ~2% for ~2.5 MB more RSS per pod, so the plain loop.
        http="auto",
        loop="asyncio",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
