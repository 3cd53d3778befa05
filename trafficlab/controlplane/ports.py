"""Where each Gateway port is bound on this machine.

Port 80 needs root, and several labs run side by side, so a Gateway port P is bound on
127.0.0.1 at a preferred local port (P itself from 1024 up, else 8000 + P: 80 -> 8080) when
that is free, else at any free port. A binding, once made, is kept for the lab's life.
"""

from __future__ import annotations

import socket

__all__ = ["PortAllocator", "port_is_free"]

BIND_ADDRESS = "127.0.0.1"


def port_is_free(port: int, address: str = BIND_ADDRESS) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
        return True


def _any_free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


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
                del self._bound[key]
        taken = set(self._bound.values())
        for key in sorted(wanted - set(self._bound)):
            port = key[2]
            preferred = self._preferred.get(port, port if port >= 1024 else 8000 + port)
            if preferred not in taken and port_is_free(preferred, self.address):
                local = preferred
            else:
                local = _any_free_port(self.address)
                while local in taken:
                    local = _any_free_port(self.address)
            self._bound[key] = local
            taken.add(local)
        return {key: (self.address, local) for key, local in self._bound.items()}
