"""A structural OpenAPI v3 schema engine: prune, default and validate in one walk.

It follows what the apiserver does for a custom resource on create
(k8s.io/apiextensions-apiserver, "structural schemas"):

1. fields the schema does not know are reported, as strict field validation does
   (``unknown field "spec.rules[0].backendRef"``), and left out of the result;
2. ``null`` values of non-nullable fields are dropped, then ``default`` values fill
   missing properties, top-down, so defaults inside a defaulted value apply too;
3. the value validations run (``type``, ``enum``, ``format``, ``minLength``/``maxLength``,
   ``pattern``, ``minimum``/``maximum``, ``minItems``/``maxItems``, ``maxProperties``,
   ``required``, ``oneOf``/``anyOf``/``allOf``/``not``, ``x-kubernetes-list-type``);
4. the ``x-kubernetes-validations`` (CEL) rules run through Python implementations bound
   to the schema location when the schema is compiled, plus any extra checks.

Schemas are compiled once into :class:`Node` trees (patterns precompiled) and reused.
"""

from __future__ import annotations

import copy
import datetime
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._problems import (
    Problem,
    duplicate,
    invalid,
    required,
    too_long,
    too_many,
    unknown_field,
    unsupported,
    wrong_type,
)
from ._regex import go_regex

__all__ = ["MISSING", "BoundRule", "Check", "Node", "RuleBinder", "compile_schema", "walk"]

MISSING: Any = object()
"""Marks "no old value" (create, or an item that cannot be correlated)."""

RuleFn = Callable[[Any], bool]
TransitionFn = Callable[[Any, Any], bool]
Check = Callable[[Any, str], Iterable[Problem]]
"""A hand-written check: ``(value, path) -> problems`` (used by the core kinds)."""


@dataclass(frozen=True)
class BoundRule:
    """A CEL rule of the schema and the Python function that stands in for it.

    ``check(self)`` or, for transition rules (those using ``oldSelf``),
    ``transition(self, oldSelf)`` returns True when the rule holds.
    """

    message: str
    rule: str
    check: RuleFn | None = None
    transition: TransitionFn | None = None


RuleBinder = Callable[[str, Mapping[str, Any]], BoundRule]
"""Maps ``(schema location, x-kubernetes-validations entry)`` to its implementation."""

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)

# Plain-words names for the patterns Gateway API and Kubernetes use again and again.
_PATTERN_WORDS = {
    r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$": "must be a valid HTTP header name (RFC 7230 token)",
    r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$":
        "must be a lowercase hostname, optionally starting with '*.' (e.g. 'app.example.com')",
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$":
        "must be a lowercase RFC 1123 subdomain (e.g. 'example.com')",
    r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$":
        "must be empty (the core group) or an API group such as 'gateway.networking.k8s.io'",
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$": "must be a lowercase RFC 1123 label (e.g. 'my-name')",
    r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$": "must be a kind name such as 'Service'",
    r"^([0-9]{1,5}(h|m|s|ms)){1,4}$": "must be a duration such as '500ms', '10s' or '1h30m'",
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$":
        "must be a domain-prefixed path such as 'example.com/gateway-controller'",
}


class Node:
    """One compiled schema node. Build with :func:`compile_schema`."""

    __slots__ = (
        "additional", "additional_allowed", "all_of", "any_of", "checks", "default", "enum",
        "format", "has_default", "int_or_string", "items", "list_type", "location", "map_keys",
        "max_items", "max_length", "max_properties", "maximum", "min_items", "min_length",
        "min_properties", "minimum", "not_", "nullable", "one_of", "pattern", "pattern_source",
        "pattern_words", "preserve_unknown", "properties", "property_defaults", "required",
        "rules", "structural", "type",
    )

    def __init__(self) -> None:
        self.location = ""
        self.type: str | None = None
        self.int_or_string = False
        self.nullable = False
        self.structural = True
        self.properties: dict[str, Node] | None = None
        self.property_defaults: tuple[tuple[str, Node], ...] = ()
        self.required: tuple[str, ...] = ()
        self.additional: Node | None = None
        self.additional_allowed = False
        self.preserve_unknown = False
        self.items: Node | None = None
        self.enum: tuple[Any, ...] | None = None
        self.format: str | None = None
        self.min_length: int | None = None
        self.max_length: int | None = None
        self.pattern: Any = None
        self.pattern_source = ""
        self.pattern_words = ""
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.min_items: int | None = None
        self.max_items: int | None = None
        self.min_properties: int | None = None
        self.max_properties: int | None = None
        self.list_type: str | None = None
        self.map_keys: tuple[str, ...] = ()
        self.default: Any = MISSING
        self.has_default = False
        self.one_of: tuple[Node, ...] = ()
        self.any_of: tuple[Node, ...] = ()
        self.all_of: tuple[Node, ...] = ()
        self.not_: Node | None = None
        self.rules: tuple[BoundRule, ...] = ()
        self.checks: tuple[Check, ...] = ()

    def __repr__(self) -> str:
        return f"<Node {self.location or '.'} {self.type}>"

    def find(self, location: str) -> Node:
        """The node at a location such as ``.spec.rules[].matches[]`` (for tests)."""
        node = self
        for part in location.replace("[]", ".[]").split(".")[1:]:
            nxt = node.items if part == "[]" else (node.properties or {}).get(part)
            if nxt is None:
                raise KeyError(location)
            node = nxt
        return node


def compile_schema(
    raw: Mapping[str, Any],
    *,
    bind: RuleBinder | None = None,
    checks: Mapping[str, Sequence[Check]] | None = None,
    location: str = "",
    structural: bool = True,
) -> Node:
    """Compile an OpenAPI v3 schema (a ``openAPIV3Schema`` or a part of it).

    ``bind`` supplies the implementation of each ``x-kubernetes-validations`` rule;
    ``checks`` adds hand-written checks keyed by location (``.spec.ports[]``).
    ``structural=False`` compiles a value-only schema (the branches of ``oneOf`` and
    friends): no pruning of unknown fields, no defaults.
    """
    node = Node()
    node.location = location
    node.structural = structural
    node.type = raw.get("type")
    node.int_or_string = bool(raw.get("x-kubernetes-int-or-string"))
    node.nullable = bool(raw.get("nullable"))
    node.preserve_unknown = bool(raw.get("x-kubernetes-preserve-unknown-fields"))
    if "properties" in raw:
        node.properties = {
            name: compile_schema(sub, bind=bind, checks=checks, location=f"{location}.{name}",
                                 structural=structural)
            for name, sub in raw["properties"].items()
        }
        if structural:
            node.property_defaults = tuple(
                (name, sub) for name, sub in node.properties.items() if sub.has_default
            )
    additional = raw.get("additionalProperties")
    if isinstance(additional, Mapping):
        node.additional = compile_schema(additional, bind=bind, checks=checks,
                                         location=f"{location}{{}}", structural=structural)
    elif additional is True:
        node.additional_allowed = True
    if "items" in raw:
        node.items = compile_schema(raw["items"], bind=bind, checks=checks,
                                    location=f"{location}[]", structural=structural)
    node.required = tuple(raw.get("required", ()))
    if "enum" in raw:
        node.enum = tuple(raw["enum"])
    node.format = raw.get("format")
    node.min_length = raw.get("minLength")
    node.max_length = raw.get("maxLength")
    if "pattern" in raw:
        node.pattern_source = raw["pattern"]
        node.pattern = go_regex(raw["pattern"])
        node.pattern_words = _PATTERN_WORDS.get(raw["pattern"], "")
    node.minimum = raw.get("minimum")
    node.maximum = raw.get("maximum")
    node.min_items = raw.get("minItems")
    node.max_items = raw.get("maxItems")
    node.min_properties = raw.get("minProperties")
    node.max_properties = raw.get("maxProperties")
    node.list_type = raw.get("x-kubernetes-list-type")
    node.map_keys = tuple(raw.get("x-kubernetes-list-map-keys", ()))
    if "default" in raw and structural:
        node.default = raw["default"]
        node.has_default = True
    for key, attr in (("oneOf", "one_of"), ("anyOf", "any_of"), ("allOf", "all_of")):
        if key in raw:
            setattr(node, attr, tuple(
                compile_schema(sub, bind=bind, location=location, structural=False)
                for sub in raw[key]
            ))
    if "not" in raw:
        node.not_ = compile_schema(raw["not"], bind=bind, location=location, structural=False)
    if bind is not None and raw.get("x-kubernetes-validations"):
        node.rules = tuple(bind(location, rule) for rule in raw["x-kubernetes-validations"])
    if checks and location in checks:
        node.checks = tuple(checks[location])
    return node


def walk(node: Node, value: Any, path: str, out: list[Problem], old: Any = MISSING) -> Any:
    """Validate ``value`` against ``node``; return the pruned, defaulted copy.

    Problems are appended to ``out`` in document order. ``old`` is the stored value at
    the same place (updates only), used by transition rules.
    """
    start = len(out)
    if value is None and not node.nullable:
        out.append(wrong_type(path, None, _type_words(node)))
        return None
    kind = node.type
    result: Any = value
    if kind == "object" or (kind is None and isinstance(value, dict)
                            and (node.properties is not None or node.additional is not None)):
        if not isinstance(value, dict):
            out.append(wrong_type(path, value, "object"))
            return value
        result = _walk_object(node, value, path, out, old)
    elif kind == "array" or (kind is None and isinstance(value, list) and node.items is not None):
        if not isinstance(value, list):
            out.append(wrong_type(path, value, "array"))
            return value
        result = _walk_array(node, value, path, out, old)
    elif value is not None and not _scalar(node, value, path, out):
        return value
    if node.one_of or node.any_of or node.all_of or node.not_ is not None:
        _compose(node, result, path, out)
    if node.rules:
        _run_rules(node, result, path, out, old, start)
    for check in node.checks:
        try:
            out.extend(check(result, path))
        except (TypeError, KeyError, AttributeError, ValueError):
            if len(out) == start:
                raise
    return result


def _type_words(node: Node) -> str:
    if node.int_or_string:
        return "integer or string"
    return node.type or "a value"


def _walk_object(node: Node, value: dict[Any, Any], path: str, out: list[Problem],
                 old: Any) -> dict[str, Any]:
    props = node.properties
    prefix = f"{path}." if path else ""
    old_map = old if isinstance(old, dict) else None
    result: dict[str, Any] = {}
    for key, child in value.items():
        sub = props.get(key) if props is not None else None
        if sub is not None:
            child_path = prefix + key
        elif node.additional is not None:
            sub = node.additional
            child_path = f"{path}[{key}]"
            if not isinstance(key, str):
                out.append(invalid(child_path, key, "keys must be strings (quote it in YAML)"))
                continue
        elif node.preserve_unknown or node.additional_allowed or not node.structural:
            result[key] = copy.deepcopy(child)
            continue
        else:
            out.append(unknown_field(prefix + str(key), props or ()))
            continue
        if child is None and not sub.nullable and node.structural:
            continue  # the apiserver prunes nulls before defaulting
        child_old = old_map.get(key, MISSING) if old_map is not None else MISSING
        result[key] = walk(sub, child, child_path, out, child_old)
    for key, sub in node.property_defaults:
        if key not in result:
            result[key] = walk(sub, copy.deepcopy(sub.default), prefix + key, out)
    for key in node.required:
        if key not in result:
            out.append(required(prefix + key))
    count = len(result)
    if node.max_properties is not None and count > node.max_properties:
        out.append(too_many(path, count, node.max_properties, "properties"))
    if node.min_properties is not None and count < node.min_properties:
        out.append(invalid(path, result, f"must have at least {node.min_properties} properties"))
    return result


def _walk_array(node: Node, value: list[Any], path: str, out: list[Problem],
                old: Any) -> list[Any]:
    items = node.items
    if items is None:
        return copy.deepcopy(value)
    olds: dict[tuple[Any, ...], Any] = {}
    if isinstance(old, list) and node.list_type == "map" and node.map_keys:
        # Only map lists correlate items with the old object (by key), as in Kubernetes.
        for item in old:
            if isinstance(item, dict):
                olds[tuple(item.get(k) for k in node.map_keys)] = item
    result: list[Any] = []
    for i, item in enumerate(value):
        item_old = MISSING
        if olds and isinstance(item, dict):
            item_old = olds.get(tuple(item.get(k) for k in node.map_keys), MISSING)
        result.append(walk(items, item, f"{path}[{i}]", out, item_old))
    count = len(result)
    if node.max_items is not None and count > node.max_items:
        out.append(too_many(path, count, node.max_items))
    if node.min_items is not None and count < node.min_items:
        unit = "item" if node.min_items == 1 else "items"
        out.append(invalid(path, result, f"must have at least {node.min_items} {unit}"))
    if node.list_type == "set":
        seen: list[Any] = []
        for i, item in enumerate(result):
            if item in seen:
                out.append(duplicate(f"{path}[{i}]", item))
            else:
                seen.append(item)
    elif node.list_type == "map" and node.map_keys:
        keys_seen: set[str] = set()
        for i, item in enumerate(result):
            if not isinstance(item, dict):
                continue
            key = {k: item.get(k) for k in node.map_keys}
            if any(v is None for v in key.values()):
                continue  # a missing key is reported as required already
            marker = repr(sorted(key.items(), key=lambda kv: kv[0]))
            if marker in keys_seen:
                out.append(duplicate(f"{path}[{i}]", key))
            keys_seen.add(marker)
    return result


def _scalar(node: Node, value: Any, path: str, out: list[Problem]) -> bool:
    """Type and value checks of a scalar; False when the type is wrong."""
    kind = node.type
    is_bool = isinstance(value, bool)
    if node.int_or_string:
        if is_bool or not isinstance(value, (int, str)):
            out.append(wrong_type(path, value, "integer or string"))
            return False
    elif kind == "string":
        if not isinstance(value, str):
            out.append(wrong_type(path, value, "string"))
            return False
    elif kind == "integer":
        if is_bool or not isinstance(value, int):
            out.append(wrong_type(path, value, "integer"))
            return False
    elif kind == "number":
        if is_bool or not isinstance(value, (int, float)):
            out.append(wrong_type(path, value, "number"))
            return False
    elif kind == "boolean":
        if not is_bool:
            out.append(wrong_type(path, value, "boolean"))
            return False
    elif kind in ("object", "array"):  # pragma: no cover - handled by walk()
        return False
    if node.enum is not None and value not in node.enum:
        out.append(unsupported(path, value, node.enum))
        return True
    if isinstance(value, str):
        _string(node, value, path, out)
    elif not is_bool and isinstance(value, (int, float)):
        _number(node, value, path, out)
    return True


def _string(node: Node, value: str, path: str, out: list[Problem]) -> None:
    if node.max_length is not None and len(value) > node.max_length:
        out.append(too_long(path, node.max_length))
    if node.min_length is not None and len(value) < node.min_length:
        unit = "character" if node.min_length == 1 else "characters"
        out.append(invalid(path, value, f"must be at least {node.min_length} {unit} long"))
    if node.pattern is not None and node.pattern.search(value) is None:
        regex = f"regex used for validation is '{node.pattern_source}'"
        words = (f"{node.pattern_words} ({regex})" if node.pattern_words
                 else f"should match: {regex}")
        out.append(invalid(path, value, words))
    if node.format is not None:
        problem = _string_format(node.format, value)
        if problem:
            out.append(invalid(path, value, problem))


def _string_format(fmt: str, value: str) -> str:
    """Empty when ``value`` has the format; else what it must be."""
    if fmt == "ipv4":
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return "must be a valid IPv4 address"
    elif fmt == "ipv6":
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            return "must be a valid IPv6 address"
    elif fmt == "date-time":
        try:
            datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return "must be an RFC 3339 date-time such as '2024-01-02T03:04:05Z'"
    return ""


def _number(node: Node, value: float, path: str, out: list[Problem]) -> None:
    if node.minimum is not None and value < node.minimum:
        out.append(invalid(path, value, f"must be greater than or equal to {_num(node.minimum)}"))
    if node.maximum is not None and value > node.maximum:
        out.append(invalid(path, value, f"must be less than or equal to {_num(node.maximum)}"))
    bounds = _INT32 if node.format == "int32" else _INT64 if node.format == "int64" else None
    if bounds and isinstance(value, int) and not bounds[0] <= value <= bounds[1]:
        out.append(invalid(path, value, f"must fit in a {node.format} integer"))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _branch_problems(branch: Node, value: Any, path: str) -> list[Problem]:
    found: list[Problem] = []
    walk(branch, value, path, found)
    return found


def _describe(problems: list[Problem], path: str) -> str:
    parts = []
    for p in problems:
        rel = p.field[len(path):].lstrip(".") if p.field.startswith(path) else p.field
        parts.append(f"{rel} {p.detail}" if rel else p.detail)
    return " and ".join(parts)


def _compose(node: Node, value: Any, path: str, out: list[Problem]) -> None:
    """``oneOf``/``anyOf``/``allOf``/``not`` (value validations only in structural schemas)."""
    if node.all_of:
        for branch in node.all_of:
            out.extend(_branch_problems(branch, value, path))
    if node.any_of:
        results = [_branch_problems(b, value, path) for b in node.any_of]
        if all(results):
            detail = " or ".join(_describe(r, path) for r in results)
            out.append(invalid(path, value, detail))
    if node.one_of:
        results = [_branch_problems(b, value, path) for b in node.one_of]
        passing = sum(1 for r in results if not r)
        if passing != 1:
            if passing == 0:
                detail = "must match exactly one allowed shape: " + "; or ".join(
                    f"({_describe(r, path)})" for r in results)
            else:
                detail = "matches more than one allowed shape (oneOf)"
            out.append(invalid(path, value, detail))
    if node.not_ is not None and not _branch_problems(node.not_, value, path):
        out.append(invalid(path, value, _negate(node.not_)))


def _negate(branch: Node) -> str:
    """Words for a failed ``not``: only ``not: {enum: [...]}`` occurs in practice."""
    if branch.enum is not None:
        return "must not be " + " or ".join(f'"{v}"' for v in branch.enum)
    if branch.properties:
        parts = [f"{name} {_negate(sub)}" for name, sub in branch.properties.items()]
        return " and ".join(parts)
    return "must not match the forbidden shape"


def _run_rules(node: Node, value: Any, path: str, out: list[Problem], old: Any,
               start: int) -> None:
    for rule in node.rules:
        try:
            if rule.transition is not None:
                if old is MISSING:
                    continue  # transition rules only run on update
                ok = rule.transition(value, old)
            elif rule.check is not None:
                ok = rule.check(value)
            else:
                continue
        except (TypeError, KeyError, AttributeError, ValueError, IndexError):
            # CEL fails to evaluate a rule over malformed data; the schema error that
            # made it malformed is already reported, which is what the user needs.
            if len(out) > start:
                continue
            raise
        if not ok:
            out.append(invalid(path, value, rule.message))
