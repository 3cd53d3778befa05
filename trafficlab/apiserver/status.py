"""``metav1.Status``: how the Kubernetes API answers errors (and successful deletes)."""

from __future__ import annotations

from typing import Any

from trafficlab._errors import TrafficLabError, ValidationError
from trafficlab.resources import KindInfo

__all__ = ["ApiError", "from_lab_error", "status", "success"]

_CODES = {"BadRequest": 400, "Unauthorized": 401, "Forbidden": 403, "NotFound": 404,
          "MethodNotAllowed": 405, "NotAcceptable": 406, "AlreadyExists": 409, "Conflict": 409,
          "RequestEntityTooLarge": 413, "UnsupportedMediaType": 415, "Invalid": 422,
          "InternalError": 500, "ServiceUnavailable": 503, "Timeout": 504}


def status(reason: str, message: str, *, code: int | None = None,
           details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A failure Status with kube-apiserver's fields."""
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": message, "reason": reason,
                           "code": code if code is not None else _CODES.get(reason, 500)}
    if details:
        out["details"] = details
    return out


def success(details: dict[str, Any]) -> dict[str, Any]:
    """The Success Status a delete answers."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": details}


class ApiError(Exception):
    """An error already shaped as a Status, raised by handlers and answered as is."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body.get("message", ""))
        self.body = body

    @property
    def code(self) -> int:
        return int(self.body["code"])


def from_lab_error(exc: TrafficLabError, info: KindInfo | None, name: str | None, *,
                   version: str = "v1") -> ApiError:
    """The Status for an error the store or controller raised while serving ``info``/``name``."""
    details: dict[str, Any] = {}
    if info is not None:
        details = {"kind": info.plural if exc.reason == "NotFound" else info.kind,
                   **({"group": info.group} if info.group else {})}
        if name:
            details["name"] = name
    if isinstance(exc, ValidationError) and exc.problem.startswith("unknown field"):
        # Strict field validation fails decoding, before validation: 400, as kube-apiserver.
        kind = info.kind if info is not None else exc.kind
        return ApiError(status("BadRequest", f'{kind} in version "{version}" cannot be handled '
                               f"as a {kind}: strict decoding error: {exc.problem}"))
    if isinstance(exc, ValidationError) and not exc.field:
        # No field to blame (a JSON patch that cannot be applied): a bare 422, as the API does.
        return ApiError(status("Invalid", exc.problem))
    if isinstance(exc, ValidationError):
        # kubectl prints "The HTTPRoute "x" is invalid:" then a bullet per cause.
        kind = info.kind if info is not None else exc.kind
        qualified = f"{kind}.{info.group}" if info is not None and info.group else kind
        who = exc.name or name or ""
        cause = {"reason": "FieldValueInvalid", "message": exc.problem,
                 **({"field": exc.field} if exc.field else {})}
        where = f"{exc.field}: " if exc.field else ""
        details.update(kind=kind, name=who, causes=[cause])
        return ApiError(status("Invalid", f'{qualified} "{who}" is invalid: {where}{exc.problem}',
                               details=details))
    return ApiError(status(exc.reason, exc.message, details=details or None))
