"""Errors raised by TrafficLab.

The hierarchy, so callers know what to catch::

    TrafficLabError
    ├── ValidationError      an object (kind, name, field) breaks the schema or a rule; nothing applied
    ├── NotFoundError        the named object, lab or file does not exist
    ├── AlreadyExistsError   create of an object that exists
    ├── ConflictError        a patch or apply that cannot be reconciled with what is stored
    │   └── ApplyConflict    a server-side apply changes fields other managers own
    ├── LabNotRunningError   a command that needs a running lab found none in its home
    ├── ProxyError           Envoy did not start, or did not load a configuration in time
    ├── BackendError         the backend (local processes, kind cluster) could not do what was asked
    ├── MonitoringError      Prometheus could not be started or queried, or a source is empty
    ├── UnsafeFileError      a file refused unread: a link, not a regular file, too large
    ├── SandboxUnavailable   student code would run unsandboxed (no bubblewrap, no --no-sandbox)
    ├── UsageError           an option out of range (also a ValueError, for library callers)
    │   ├── GenerateError    the options of `trafficlab generate` do not describe a route
    │   ├── StrategicPatchError  a strategic merge patch with a malformed directive
    │   └── PolicyError      a rollout policy setting is missing or invalid (names the field)
    └── ReleaseError         the student bundle cannot be built as asked
        └── StripError       a grader's hidden checks cannot be cut out safely

Every message is a sentence that names the object and says what to do next.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "ApplyConflict",
    "BackendError",
    "ConflictError",
    "GenerateError",
    "LabNotRunningError",
    "MonitoringError",
    "NotFoundError",
    "PolicyError",
    "ProxyError",
    "ReleaseError",
    "SandboxUnavailable",
    "StrategicPatchError",
    "StripError",
    "TrafficLabError",
    "UnsafeFileError",
    "UsageError",
    "ValidationError",
]


class TrafficLabError(Exception):
    """Base of every error TrafficLab raises on purpose.

    ``reason`` mirrors the Kubernetes Status reason (``Invalid``, ``NotFound``...),
    so the CLI can print ``Error from server (Reason): message`` as kubectl does.
    """

    reason = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, object]:
        return {"reason": self.reason, "message": self.message, "type": type(self).__name__}


class ValidationError(TrafficLabError):
    """An object breaks the schema or a validation rule.

    >>> err = ValidationError("HTTPRoute", "default", "task-api", "spec.rules[0].weight", "too big")
    >>> str(err)
    'HTTPRoute default/task-api is invalid: spec.rules[0].weight: too big'
    """

    reason = "Invalid"

    def __init__(
        self,
        kind: str,
        namespace: str | None,
        name: str | None,
        field: str,
        problem: str,
        *,
        source: str | None = None,
    ) -> None:
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.field = field
        self.problem = problem
        self.source = source
        who = f"{namespace}/{name}" if namespace and name else (name or "(unnamed)")
        where = f" (in {source})" if source else ""
        text = f"{kind} {who} is invalid{where}: {field}: {problem}" if field else (
            f"{kind} {who} is invalid{where}: {problem}"
        )
        super().__init__(text)

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out.update(kind=self.kind, namespace=self.namespace, name=self.name, field=self.field,
                   problem=self.problem, source=self.source)
        return out


class NotFoundError(TrafficLabError):
    """The named object, file or lab does not exist."""

    reason = "NotFound"


class AlreadyExistsError(TrafficLabError):
    """The object to create exists already."""

    reason = "AlreadyExists"


class ConflictError(TrafficLabError):
    """The request conflicts with what is stored (for instance a JSON patch test op failed)."""

    reason = "Conflict"


class ApplyConflict(ConflictError):
    """A server-side apply would change fields other managers own.

    ``conflicts`` are (manager as the API names it, field path) pairs; ``causes`` lists them
    as a Status does. Re-apply with ``--force-conflicts`` to take the fields, or leave them
    out of the configuration.
    """

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        self.causes = [{"type": "FieldManagerConflict", "message": f"conflict with {who}",
                        "field": path} for who, path in conflicts]
        if len(conflicts) == 1:
            who, path = conflicts[0]
            message = f"Apply failed with 1 conflict: conflict with {who}: {path}"
        else:
            by_manager: dict[str, list[str]] = {}
            for who, path in conflicts:
                by_manager.setdefault(who, []).append(path)
            lines = []
            for who in sorted(by_manager):
                lines.append(f"conflicts with {who}:")
                lines.extend(f"- {path}" for path in by_manager[who])
            message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
        super().__init__(message)


class LabNotRunningError(TrafficLabError):
    """No lab runs in this home; start one with ``trafficlab up``."""

    reason = "ServiceUnavailable"


class ProxyError(TrafficLabError):
    """Envoy failed to start or to load a configuration in time."""

    reason = "InternalError"


class BackendError(TrafficLabError):
    """The backend could not carry out the request."""

    reason = "InternalError"


_BY_NAME: dict[str, type[TrafficLabError]] = {
    cls.__name__: cls
    for cls in (TrafficLabError, NotFoundError, AlreadyExistsError, ConflictError,
                LabNotRunningError, ProxyError, BackendError)
}


def error_from_dict(data: dict[str, object]) -> TrafficLabError:
    """Rebuild an error sent over the wire by the lab daemon."""
    if data.get("type") == "ValidationError":
        return ValidationError(
            str(data.get("kind", "")), _opt(data.get("namespace")), _opt(data.get("name")),
            str(data.get("field", "")), str(data.get("problem", "")), source=_opt(data.get("source")),
        )
    cls = _BY_NAME.get(str(data.get("type", "")), TrafficLabError)
    return cls(str(data.get("message", "unknown error")))


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


class MonitoringError(TrafficLabError):
    """Prometheus could not be started or queried, or a metrics source has nothing to read."""

    reason = "ServiceUnavailable"


class UnsafeFileError(TrafficLabError):
    """A file was refused: a symbolic link, not a regular file, too large, or a strange name."""

    reason = "Forbidden"

    def __init__(self, name: str, problem: str, todo: str) -> None:
        self.name = name
        self.problem = problem
        self.todo = todo
        super().__init__(f"{name}: {problem}; {todo}")


class UsageError(TrafficLabError, ValueError):
    """An option or setting out of range: the command line or the caller must change it."""

    reason = "BadRequest"


class GenerateError(UsageError):
    """The options do not describe a route (a weight out of range, an option the kind ignores)."""


class PolicyError(UsageError):
    """A rollout setting is missing or invalid; ``field`` names it as the policy file spells it."""

    def __init__(self, field: str, message: str, *, source: str = "") -> None:
        self.field = field
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}: {message}")


class ReleaseError(TrafficLabError):
    """The bundle cannot be built as asked (where it goes, or what would be copied)."""

    reason = "Invalid"


class StripError(ReleaseError):
    """A grader module whose hidden checks cannot be cut out safely."""


class SandboxUnavailable(TrafficLabError):
    """Student code would run unsandboxed: refused unless the instructor says ``--no-sandbox``."""

    reason = "Unavailable"


class StrategicPatchError(UsageError):
    """The strategic merge patch cannot be applied (a malformed directive)."""
