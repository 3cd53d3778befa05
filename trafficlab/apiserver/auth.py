"""Bearer-token authentication: the kubeconfig's token or nothing."""

from __future__ import annotations

import hmac

__all__ = ["BearerAuth"]


class BearerAuth:
    """Checks an ``Authorization`` header against the one token, in constant time."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def allows(self, header: str | None) -> bool:
        """Whether ``header`` carries the token (a missing header never does)."""
        return hmac.compare_digest((header or "").strip().encode(), self._expected)
