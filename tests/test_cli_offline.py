"""CLI behaviour that needs no running lab."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trafficlab.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=60)


def test_up_kind_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    out = _cli(tmp_path / "lab", "up", "--backend", "kind", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "kind create cluster --name trafficlab-" in out.stdout
    assert "v1.6.1" in out.stdout and "v1.9.0" in out.stdout
    assert "kind: HTTPRoute" in out.stdout  # the baseline, inline and unchanged
    assert not (tmp_path / "lab" / "kubeconfig").exists()


def test_dry_run_is_refused_for_the_local_backend(tmp_path: Path) -> None:
    out = _cli(tmp_path / "lab", "up", "--backend", "local", "--dry-run")
    assert out.returncode == 1
    assert "--backend kind" in out.stderr


def test_commands_without_a_lab_say_how_to_start_one(tmp_path: Path) -> None:
    out = _cli(tmp_path / "nolab", "get", "httproute")
    assert out.returncode == 1
    assert "trafficlab up" in out.stderr


def test_unknown_kind_speaks_kubectl(tmp_path: Path) -> None:
    out = _cli(tmp_path / "nolab", "get", "foo")
    assert out.returncode == 1
    assert 'the server doesn\'t have a resource type "foo"' in out.stderr
