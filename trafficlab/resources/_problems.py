"""One problem found in an object, worded the way the Kubernetes apiserver words it.

The apiserver reports a list of ``field.Error`` values, each printed as
``<path>: <type>: <value>: <detail>`` (``spec.rules[0].backendRefs[1].weight: Invalid value:
1000001: must be less than or equal to 1000000``). The helpers below build the same shapes
(Invalid value, Required value, Unsupported value, Duplicate value, Too many, Too long,
Forbidden) plus strict decoding's ``unknown field "spec.foo"``.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Problem",
    "duplicate",
    "forbidden",
    "invalid",
    "render",
    "required",
    "too_long",
    "too_many",
    "unknown_field",
    "unsupported",
    "wrong_type",
]

# Objects longer than this are shown by type name, as the apiserver does for all of them.
_MAX_RENDERED = 80


@dataclass(frozen=True)
class Problem:
    """One problem at one field.

    ``field`` is the kubectl-style path (``spec.rules[0].matches[1].path``; empty for the
    object itself), ``message`` the full text after the path, ``detail`` the requirement
    alone (used when problems are combined, for instance inside ``oneOf``).

    >>> str(invalid("spec.port", 0, "must be greater than or equal to 1"))
    'spec.port: Invalid value: 0: must be greater than or equal to 1'
    """

    field: str
    message: str
    detail: str = ""
    unknown: bool = False

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def render(value: Any) -> str:
    """Show a value the way a person reads it: JSON for scalars and short objects.

    >>> render("x"), render(3), render(True), render({"a": 1})
    ('"x"', '3', 'true', '{"a":1}')
    """
    if isinstance(value, (dict, list)):
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
        except (TypeError, ValueError):  # pragma: no cover - circular data never comes from YAML
            text = ""
        if text and len(text) <= _MAX_RENDERED:
            return text
        return '"object"' if isinstance(value, dict) else '"array"'
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return json.dumps(str(value), ensure_ascii=False)


def type_name(value: Any) -> str:
    """The JSON type name of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def invalid(field: str, value: Any, detail: str) -> Problem:
    """``Invalid value: <value>: <detail>``."""
    return Problem(field, f"Invalid value: {render(value)}: {detail}", detail)


def wrong_type(field: str, value: Any, expected: str) -> Problem:
    """A value of the wrong JSON type; hints at YAML quoting when a string was wanted."""
    detail = f"must be of type {expected}"
    if expected == "string" and isinstance(value, (bool, int, float)):
        # YAML reads `true`, `2` or `1.0` unquoted as booleans and numbers.
        detail += f" (quote it in YAML: '{render(value)}')"
    return Problem(field, f"Invalid value: {render(value)}: {detail}", detail)


def required(field: str, detail: str = "") -> Problem:
    """``Required value`` (with an optional explanation)."""
    text = f"Required value: {detail}" if detail else "Required value"
    return Problem(field, text, detail or "is required")


def unsupported(field: str, value: Any, allowed: Iterable[Any]) -> Problem:
    """``Unsupported value: "Prefix": supported values: "Exact", "PathPrefix"``."""
    choices = ", ".join(render(a) for a in allowed)
    detail = f"supported values: {choices}"
    return Problem(field, f"Unsupported value: {render(value)}: {detail}",
                   f"must be one of {choices}")


def duplicate(field: str, value: Any) -> Problem:
    """``Duplicate value: <value>``."""
    return Problem(field, f"Duplicate value: {render(value)}", f"duplicate value {render(value)}")


def too_many(field: str, count: int, limit: int, unit: str = "items") -> Problem:
    """``Too many: 17: must have at most 16 items``."""
    detail = f"must have at most {limit} {unit}"
    return Problem(field, f"Too many: {count}: {detail}", detail)


def too_long(field: str, limit: int) -> Problem:
    """``Too long: may not be more than 253 characters``."""
    detail = f"may not be more than {limit} characters"
    return Problem(field, f"Too long: {detail}", detail)


def forbidden(field: str, detail: str) -> Problem:
    """``Forbidden: <detail>``."""
    return Problem(field, f"Forbidden: {detail}", detail)


def unknown_field(field: str, known: Iterable[str] = ()) -> Problem:
    """Strict decoding's ``unknown field "spec.foo"``, with a spelling hint when one fits."""
    name = field.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f' (did you mean "{close[0]}"?)' if close else ""
    return Problem(field, f'unknown field "{field}"{hint}', f"is not a known field{hint}",
                   unknown=True)
