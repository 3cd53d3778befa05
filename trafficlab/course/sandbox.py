"""Running a command under bubblewrap: its own namespaces, a non-root uid, read-only binds, limits.

One job: :func:`run` starts ``argv`` under ``bwrap`` with

- every namespace of its own (``--unshare-all``: network with only its own loopback, so a lab
  inside can neither clash with nor reach another lab's ports; PID, so killing ``bwrap`` ends
  everything inside; IPC, UTS, cgroup) and a user namespace mapping the caller to uid/gid
  65534 ("nobody"), so nothing inside runs as root;
- ``--die-with-parent`` and ``--new-session`` (no terminal to push keystrokes into);
- ``/proc``, ``/dev`` and an empty ``/tmp`` of its own, the system folders (``/usr``, the
  ``/lib*`` links, a few ``/etc`` files) and the interpreter and venv read-only, and only the
  folders the caller names besides (read-only or writable); nothing else of the host exists;
- an environment made from scratch (``HOME``, ``PATH``, ``LANG``, ``TMPDIR`` and what the
  caller adds), never the caller's;
- a wall-clock limit (on expiry ``bwrap``'s process group is killed, and with it the PID
  namespace), an address-space limit per process (``RLIMIT_AS``) and a process-count limit
  (a ``pids`` cgroup when the host lets us make one, else ``RLIMIT_NPROC``, which the kernel
  does not enforce for a caller that is root outside).

:func:`probe` says whether bubblewrap works here. Tests point :data:`BWRAP_ENV` at a missing
file to simulate a host without it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = ["BWRAP_ENV", "DEFAULT_BWRAP", "SANDBOX_GID", "SANDBOX_UID", "Limits", "Running",
           "SandboxResult", "base_env", "bwrap_path", "command", "probe", "run",
           "runtime_binds", "start"]

DEFAULT_BWRAP = "/usr/bin/bwrap"
#: Only the tests set it (to a missing file) to simulate a host without bubblewrap.
BWRAP_ENV = "TRAFFICLAB_BWRAP"
SANDBOX_UID = 65534
SANDBOX_GID = 65534
_PIDS_ROOT = Path("/sys/fs/cgroup/pids")
# /etc files a Python program, Envoy and Prometheus read; never shadow, never the host's secrets.
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "hosts",
        "passwd", "group", "ssl", "ca-certificates", "mime.types", "alternatives", "protocols",
        "services", "fonts")


@dataclass(frozen=True)
class Limits:
    """Wall-clock seconds for the whole sandbox, bytes of address space per process, processes."""

    wall_seconds: float = 1800.0
    memory_bytes: int = 4 * 1024**3
    max_processes: int = 256


@dataclass
class SandboxResult:
    """How a sandboxed command ended: its exit code (None when killed at its limit) and output."""

    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    notes: list[str] = field(default_factory=list)


def bwrap_path() -> Path:
    """The bubblewrap binary: ``/usr/bin/bwrap`` unless :data:`BWRAP_ENV` says otherwise."""
    return Path(os.environ.get(BWRAP_ENV) or DEFAULT_BWRAP)


def runtime_binds() -> list[Path]:
    """What the interpreter, its venv and the lab's binaries need, read-only.

    The venv's ``python`` is a link into the base installation (pyenv here): both the venv
    (``sys.prefix``, holding Envoy in its site-packages) and the real prefix are bound.
    """
    found = [Path(sys.prefix), Path(sys.base_prefix).resolve(),
             Path(os.path.realpath(sys.executable)).parent.parent]
    out: list[Path] = []
    for path in found:
        if path.exists() and not any(path == p or p in path.parents for p in out):
            out = [p for p in out if path not in p.parents] + [path]
    return out


def _system_args() -> list[str]:
    args: list[str] = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/") / name
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    for name in _ETC:
        path = Path("/etc") / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    return args


def command(argv: Sequence[str], *, ro: Sequence[tuple[Path, Path]] = (),
            rw: Sequence[tuple[Path, Path]] = (), ro_after: Sequence[tuple[Path, Path]] = (),
            tmpfs: Sequence[Path] = (), cwd: Path | None = None,
            bwrap: Path | None = None) -> list[str]:
    """The ``bwrap`` command line. Binds are ``(host path, path inside)``, each over the ones
    before: the system, ``ro`` (the course, mounted where the repository is), the interpreter
    and venv (over the course, whose editable install points there), ``rw``, ``ro_after``
    (read-only inside a writable one), then empty ``tmpfs`` folders."""
    args = [str(bwrap or bwrap_path()), "--unshare-all", "--unshare-user",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID),
            "--die-with-parent", "--new-session", "--hostname", "sandbox",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", *_system_args()]
    for source, dest in ro:
        args += ["--ro-bind", str(source), str(dest)]
    for path in runtime_binds():
        args += ["--ro-bind", str(path), str(path)]
    for source, dest in rw:
        args += ["--bind", str(source), str(dest)]
    for source, dest in ro_after:
        args += ["--ro-bind", str(source), str(dest)]
    for dest in tmpfs:
        args += ["--tmpfs", str(dest)]
    if cwd is not None:
        args += ["--chdir", str(cwd)]
    return [*args, "--", *argv]


def base_env(home: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment made from scratch: nothing of the caller's leaks in."""
    venv_bin = str(Path(sys.executable).parent)
    env = {"HOME": home, "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8", "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1",
           "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{home}/.config/matplotlib"}
    env.update(extra or {})
    return env


def probe(bwrap: Path | None = None) -> str | None:
    """None when bubblewrap can run a sandbox here, else why not (in words an instructor can act on)."""
    binary = bwrap or bwrap_path()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        return (f"{binary} is missing: install Debian's bubblewrap package "
                "(apt-get install bubblewrap)")
    try:
        proc = subprocess.run(command(["true"], bwrap=binary), capture_output=True, text=True,
                              timeout=30, env=base_env("/tmp"), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{binary} could not start a sandbox: {exc}"
    if proc.returncode != 0:
        return (f"{binary} could not create its namespaces (exit {proc.returncode}: "
                f"{proc.stderr.strip()[-300:]}); user namespaces may be disabled on this host")
    return None


def _pids_cgroup(limit: int) -> Path | None:
    """A fresh ``pids`` cgroup capped at ``limit`` processes, or None when the host has none for us."""
    group = _PIDS_ROOT / f"trafficlab-sandbox-{uuid.uuid4().hex[:12]}"
    try:
        group.mkdir()
    except OSError:
        return None
    try:
        (group / "pids.max").write_text(str(limit))
    except OSError:
        with contextlib.suppress(OSError):
            group.rmdir()
        return None
    return group


def _end_cgroup(group: Path) -> None:
    """Kill whatever is still in the cgroup, then remove it."""
    for _ in range(50):
        try:
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    for _ in range(50):
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


def _tail(handle: IO[bytes], limit: int = 4 * 1024 * 1024) -> str:
    """What a sandboxed command wrote, at most ``limit`` bytes from the end."""
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - limit))
    return handle.read().decode("utf-8", errors="replace")


class Running:
    """A sandboxed command that was started: :meth:`finish` waits for it, then ends all of it."""

    def __init__(self, proc: subprocess.Popen[bytes], group: Path | None, out: IO[bytes],
                 err: IO[bytes], notes: list[str]) -> None:
        self.proc, self.group, self.out, self.err, self.notes = proc, group, out, err, notes
        self.started = time.monotonic()

    def finish(self, timeout: float) -> SandboxResult:
        """Wait up to ``timeout`` seconds (0: not at all), then kill what is left; the result."""
        timed_out = False
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        finally:
            # With the PID namespace, bwrap's death ends everything inside; the cgroup makes
            # sure (and catches, without a sandbox, whatever left the session with setsid).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            if self.group is not None:
                _end_cgroup(self.group)
        out, err = _tail(self.out), _tail(self.err)
        self.out.close()
        self.err.close()
        return SandboxResult(None if timed_out else self.proc.returncode, out, err,
                             time.monotonic() - self.started, timed_out, self.notes)


def start(argv: Sequence[str], *, ro: Sequence[tuple[Path, Path]] = (),
          rw: Sequence[tuple[Path, Path]] = (), ro_after: Sequence[tuple[Path, Path]] = (),
          tmpfs: Sequence[Path] = (), home: str = "/tmp", env: Mapping[str, str] | None = None,
          cwd: Path | None = None, limits: Limits = Limits(), bwrap: Path | None = None,
          sandbox: bool = True) -> Running:
    """Start ``argv`` in a sandbox (see the module's docstring); :func:`run` waits for it.

    With ``sandbox=False`` the command runs directly on the host (the instructor's explicit
    ``--no-sandbox``), still in its own session, with the clean environment and the limits.
    """
    full = (command(argv, ro=ro, rw=rw, ro_after=ro_after, tmpfs=tmpfs, cwd=cwd, bwrap=bwrap)
            if sandbox else list(argv))
    group = _pids_cgroup(limits.max_processes)
    procs_file = os.fsencode(group / "cgroup.procs") if group else None
    memory, nproc = limits.memory_bytes, limits.max_processes

    def before_exec() -> None:  # in the child, before exec: only system calls, no locks
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if procs_file is not None:
            fd = os.open(procs_file, os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)

    notes = [] if group else ["no pids cgroup: the process limit is RLIMIT_NPROC only"]
    # Output goes to files, not pipes: a process that left the session (setsid) must not keep
    # the caller waiting on a pipe it holds open.
    out = tempfile.TemporaryFile()  # noqa: SIM115 - closed by Running.finish
    err = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        proc = subprocess.Popen(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=base_env(home, env),
                                cwd=None if sandbox else (str(cwd) if cwd else None),
                                start_new_session=True, preexec_fn=before_exec, close_fds=True)
    except BaseException:
        out.close()
        err.close()
        if group is not None:
            _end_cgroup(group)
        raise
    return Running(proc, group, out, err, notes)


def run(argv: Sequence[str], *, ro: Sequence[tuple[Path, Path]] = (),
        rw: Sequence[tuple[Path, Path]] = (), ro_after: Sequence[tuple[Path, Path]] = (),
        tmpfs: Sequence[Path] = (), home: str = "/tmp", env: Mapping[str, str] | None = None,
        cwd: Path | None = None, limits: Limits = Limits(), bwrap: Path | None = None,
        sandbox: bool = True) -> SandboxResult:
    """Run ``argv`` as :func:`start` does and wait for it, at most ``limits.wall_seconds``."""
    return start(argv, ro=ro, rw=rw, ro_after=ro_after, tmpfs=tmpfs, home=home, env=env,
                 cwd=cwd, limits=limits, bwrap=bwrap, sandbox=sandbox).finish(limits.wall_seconds)
