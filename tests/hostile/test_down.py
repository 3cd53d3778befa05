"""`trafficlab down` ends only processes it can prove the lab started: pid plus start time.

Issue 12: after the daemon was killed -9, ``lab.json`` and ``pids.json`` stay behind; once
their pids are reused, ``down`` sent TERM then KILL to whoever holds them now.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from trafficlab import Lab
from trafficlab._process import pid_alive, process_start


@pytest.fixture()
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    # Named like a lab part, so only the start time tells it apart from one.
    proc = subprocess.Popen(["bash", "-c", "exec -a envoy sleep 60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_down_leaves_a_stranger_holding_a_recorded_pid_alone(
        tmp_path: Path, stranger: subprocess.Popen[bytes]) -> None:
    home = tmp_path / "lab"
    home.mkdir(mode=0o700)
    start = process_start(stranger.pid)
    assert start is not None
    # What a daemon killed long ago left: its pid (now the stranger's) with an older start.
    (home / "lab.json").write_text(json.dumps({
        "backend": "local", "pid": stranger.pid, "pidStart": start - 1}))
    (home / "pids.json").write_text(json.dumps({
        "envoy": stranger.pid, "prometheus": None, "pods": {"default/task-api-v1-0": stranger.pid},
        "starts": {str(stranger.pid): start - 1}}))
    lab = Lab(home, backend="local")
    assert not lab.running

    lab.down()

    assert pid_alive(stranger.pid) and stranger.poll() is None
    assert not (home / "lab.json").exists() and not (home / "pids.json").exists()


def test_records_without_start_times_prove_nothing(
        tmp_path: Path, stranger: subprocess.Popen[bytes]) -> None:
    home = tmp_path / "lab"
    home.mkdir(mode=0o700)
    (home / "lab.json").write_text(json.dumps({"backend": "local", "pid": stranger.pid}))
    (home / "pids.json").write_text(json.dumps({"envoy": stranger.pid, "pods": {}}))

    Lab(home, backend="local").down()

    assert stranger.poll() is None
