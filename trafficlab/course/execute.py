"""Executing a notebook top to bottom against its own fresh, isolated lab.

The kernel gets ``TRAFFICLAB_HOME`` set to a folder of its own (so ``start_lab()`` starts a new
lab there, on free ports) and ``TRAFFICLAB_BACKEND=local``; whatever happens in the notebook,
that lab is stopped afterwards by its home. Cells run with a timeout each (longer for cells
that send traffic and grade, from the cell's ``trafficlab.timeout`` metadata); a cell that
times out is interrupted and the rest still runs, so the final ``lab.down()`` cell runs too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from nbformat import NotebookNode

from trafficlab.course.labs import BACKEND_ENV
from trafficlab.lab import Lab

__all__ = ["CELL_TIMEOUT", "STARTUP_TIMEOUT", "Execution", "cell_timeout", "execute_notebook"]

#: Seconds a cell may run unless its metadata says otherwise (``{"trafficlab": {"timeout": 300}}``).
CELL_TIMEOUT = 120
STARTUP_TIMEOUT = 60


@dataclass
class Execution:
    """What running a notebook did: the executed notebook, its wall time, an error that stopped it."""

    notebook: NotebookNode
    seconds: float
    error: str | None = None
    stderr_cells: list[int] = field(default_factory=list)
    error_cells: list[int] = field(default_factory=list)


def cell_timeout(cell: NotebookNode, default: int = CELL_TIMEOUT) -> int:
    """The cell's own timeout (metadata ``trafficlab.timeout``), else ``default``."""
    value = cell.get("metadata", {}).get("trafficlab", {}).get("timeout")
    return int(value) if value else default


def execute_notebook(nb: NotebookNode, workdir: Path, *, home: Path | None = None,
                     timeout: int = CELL_TIMEOUT, startup_timeout: int = STARTUP_TIMEOUT,
                     env: dict[str, str] | None = None) -> Execution:
    """Run every cell of ``nb`` in ``workdir`` with a fresh lab in ``home`` (default ``workdir/.lab``).

    Errors in cells are recorded in their outputs and execution goes on (nbgrader grades a
    test cell with an error as 0). The lab is stopped by its home at the end, always.
    """
    from nbclient import NotebookClient
    from traitlets.config import Config

    workdir.mkdir(parents=True, exist_ok=True)
    home = home or workdir / ".lab"
    kernel_env = {**os.environ, **(env or {}), "TRAFFICLAB_HOME": str(home), BACKEND_ENV: "local"}
    # Front ends' variables that would make the kernel talk to something else.
    for key in ("JPY_PARENT_PID", "JUPYTER_RUNTIME_DIR_OVERRIDE"):
        kernel_env.pop(key, None)
    config = Config()
    # Unix sockets rather than TCP ports: nothing to collide with when several notebooks run at
    # once, and no "running over TCP" warning from the kernel. An absolute path, since the
    # kernel runs in workdir, and a short one (a socket path has at most 107 bytes).
    sockets = Path(tempfile.mkdtemp(prefix="tlk-"))
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(sockets / "k")
    client = NotebookClient(
        nb, config=config, timeout=timeout, startup_timeout=startup_timeout, kernel_name="python3",
        allow_errors=True, interrupt_on_timeout=True, record_timing=False,
        timeout_func=lambda cell: cell_timeout(cell, timeout),
        resources={"metadata": {"path": str(workdir)}},
    )
    started = time.monotonic()
    error = None
    try:
        client.execute(env=kernel_env, cwd=str(workdir))
    except Exception as exc:  # the kernel died or could not start: report it, grade what ran
        error = f"{type(exc).__name__}: {_first_line(exc)}"
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
        try:
            Lab(home, backend="local").down()
        except Exception as exc:  # a failed stop is reported, not raised
            error = (error + "; " if error else "") + f"stopping the lab failed: {exc}"
    seconds = time.monotonic() - started
    stderr_cells, error_cells = [], []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                stderr_cells.append(index)
            if output.get("output_type") == "error":
                error_cells.append(index)
    return Execution(nb, seconds, error, sorted(set(stderr_cells)), sorted(set(error_cells)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
