"""A lab home only its owner can read or steer: the folder 0700, its secrets 0600.

On a shared machine (a JupyterHub server, a lab room) every other local user is a
stranger. The lab's credential and state live in its home; this module is the one place
that creates the home and writes those files, so no path leaves a window in which a
stranger can read a token or swap a file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from trafficlab._errors import BackendError

__all__ = ["new_token", "secure_home", "write_private"]


def secure_home(home: Path) -> None:
    """Create ``home`` (mode 0700) or make an existing one private; refuse a stranger's."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = os.lstat(home)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise BackendError(f"the lab home {home} is not a folder; choose another with --home")
    if info.st_uid != os.getuid():
        raise BackendError(f"the lab home {home} belongs to another user (uid {info.st_uid}); "
                           "a lab must live in a folder you own: choose another with --home")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(home, 0o700)


def write_private(path: Path, text: str) -> None:
    """Write ``path`` atomically, readable by its owner only from the first byte on."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def new_token() -> str:
    """A bearer credential for the lab's API (its kubeconfig token): 256 random bits."""
    return secrets.token_urlsafe(32)
