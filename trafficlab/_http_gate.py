"""What the lab's API checks before it reads a request: the bearer token, then the size.

The lab's Kubernetes API (apiserver/server.py) listens on a loopback port any local user
can reach, so the token is checked first, on every path; and, as kube-apiserver does, a body
over 3 MiB is refused from its Content-Length, before a byte of it is read.
"""

from __future__ import annotations

import hmac
from email.message import Message
from typing import NamedTuple

__all__ = ["MAX_BODY_BYTES", "BearerAuth", "Refusal", "admit_request"]

MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's limit on a request body


class BearerAuth:
    """Checks an ``Authorization`` header against the one token, in constant time."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def allows(self, header: str | None) -> bool:
        """Whether ``header`` carries the token (a missing header never does)."""
        return hmac.compare_digest((header or "").strip().encode(), self._expected)


class Refusal(NamedTuple):
    code: int
    reason: str
    message: str


def admit_request(headers: Message, auth: BearerAuth, *,
                  unauthorized: str) -> Refusal | int:
    """The body length to read, or why the request is refused unread (header names are
    case-insensitive in ``headers``, as in http.server's)."""
    if not auth.allows(headers.get("Authorization")):
        return Refusal(401, "Unauthorized", unauthorized)
    if headers.get("Transfer-Encoding"):
        return Refusal(411, "BadRequest",
                       "the lab's API needs a Content-Length (no chunked request bodies)")
    try:
        length = int(headers.get("Content-Length") or 0)
    except ValueError:
        length = -1
    if length < 0:
        return Refusal(400, "BadRequest", "Content-Length is not a byte count")
    if length > MAX_BODY_BYTES:
        return Refusal(413, "RequestEntityTooLarge",
                       f"the request body is {length} bytes; the lab's API takes at most "
                       f"{MAX_BODY_BYTES} (3 MiB), as kube-apiserver does: split the manifests "
                       "into several applies")
    return length
