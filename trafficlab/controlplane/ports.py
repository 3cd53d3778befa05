"""Where each Gateway port is bound on this machine.

Port 80 needs root, and several labs run side by side, so a Gateway port P is bound on
127.0.0.1 at a preferred local port (P itself from 1024 up, else 8000 + P: 80 -> 8080) when
that is free, else at any free port. A binding, once made, is kept for the lab's life.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from pathlib import Path

from trafficlab._process import free_port, pid_alive

__all__ = ["PortAllocator", "claim_port", "port_is_free", "release_port"]

BIND_ADDRESS = "127.0.0.1"
# Labs starting at the same moment would both find 8080 free before either Envoy binds it, so
# a lab claims a port with a file here (created exclusively, holding its PID) before using it.
CLAIMS_DIR = Path(tempfile.gettempdir()) / "trafficlab-port-claims"


def claim_port(port: int, owner: int | None = None) -> bool:
    """Claim ``port`` for this process across labs; False when a live process holds it."""
    owner = owner or os.getpid()
    CLAIMS_DIR.mkdir(parents=True, exist_ok=True)
    path = CLAIMS_DIR / str(port)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = int(path.read_text() or 0)
            except (OSError, ValueError):
                holder = 0
            if holder == owner:
                return True
            if holder and pid_alive(holder):
                return False
            with contextlib.suppress(OSError):
                path.unlink()  # a stale claim of a lab that is gone
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(str(owner))
        return True
    return False


def release_port(port: int, owner: int | None = None) -> None:
    path = CLAIMS_DIR / str(port)
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text() or 0) == (owner or os.getpid()):
            path.unlink()


def port_is_free(port: int, address: str = BIND_ADDRESS) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
        return True


class PortAllocator:
    """Stable Gateway-port -> local-port bindings for one lab."""

    def __init__(self, address: str = BIND_ADDRESS, preferred: dict[int, int] | None = None) -> None:
        self.address = address
        self._bound: dict[tuple[str, str, int], int] = {}
        self._preferred = preferred or {}

    def assign(self, gateways: list[dict[str, object]]) -> dict[tuple[str, str, int], tuple[str, int]]:
        """Bindings for every listener port of ``gateways``; ports of deleted Gateways are released."""
        wanted: set[tuple[str, str, int]] = set()
        for gw in gateways:
            meta = gw["metadata"]
            spec = gw.get("spec", {})
            assert isinstance(meta, dict) and isinstance(spec, dict)
            for listener in spec.get("listeners", []):
                wanted.add((str(meta["namespace"]), str(meta["name"]), int(listener["port"])))
        for key in list(self._bound):
            if key not in wanted:
                release_port(self._bound.pop(key))
        taken = set(self._bound.values())
        for key in sorted(wanted - set(self._bound)):
            port = key[2]
            preferred = self._preferred.get(port, port if port >= 1024 else 8000 + port)
            if preferred not in taken and port_is_free(preferred, self.address) \
                    and claim_port(preferred):
                local = preferred
            else:
                local = free_port(self.address)
                while local in taken or not claim_port(local):
                    local = free_port(self.address)
            self._bound[key] = local
            taken.add(local)
        return self.bindings()

    def adopt(self, bound: dict[tuple[str, str, int], int]) -> None:
        """Keep the bindings an adopted Envoy already listens on (their clients keep their URLs)."""
        for key, local in bound.items():
            if claim_port(local):
                self._bound[key] = local

    def bindings(self) -> dict[tuple[str, str, int], tuple[str, int]]:
        """The bindings the last ``assign`` made (read-only: for status)."""
        return {key: (self.address, local) for key, local in self._bound.items()}

    def release_all(self) -> None:
        for local in self._bound.values():
            release_port(local)
        self._bound.clear()
