"""The CEL rules of the Gateway API CRDs, written as Python checks.

Each ``x-kubernetes-validations`` entry of the vendored HTTPRoute, Gateway and
GatewayClass schemas (standard channel, v1.6.1) has a function here, registered under
``(plural, schema location, message)``; the error shown is the CRD's own message.
Every function mirrors its CEL expression, quoted in its docstring, including CEL's
``exists_one`` and ``has()`` semantics. Values reach the checks after defaulting, as
CEL sees them in the apiserver, so defaulted fields (``group``, ``kind``, ``matches``...)
are present.

A test walks the vendored schemas and fails when a rule has no function here and is not
listed in :data:`SKIPPED` - so a new rule in a newer CRD cannot slip through unnoticed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ._regex import go_regex
from ._schema import BoundRule, RuleBinder

__all__ = ["CEL_RULES", "SKIPPED", "TRANSITION_RULES", "binder", "parse_duration"]

Rule = Callable[[Any], bool]
Transition = Callable[[Any, Any], bool]

CEL_RULES: dict[tuple[str, str, str], Rule] = {}
"""``(plural, location, message) -> check(self)``; True when the rule holds."""

TRANSITION_RULES: dict[tuple[str, str, str], Transition] = {}
"""``(plural, location, message) -> check(self, oldSelf)`` for rules using ``oldSelf``."""

SKIPPED: dict[tuple[str, str], str] = {
    (plural, ".status"): "status is dropped on create and apply, as the apiserver ignores it"
    for plural in ("gateways", "httproutes", "gatewayclasses")
}
"""``(plural, location prefix) -> why`` for rules that never see data here."""


def _register(plural: str, locations: tuple[str, ...], message: str) -> Callable[[Rule], Rule]:
    def deco(fn: Rule) -> Rule:
        for location in locations:
            CEL_RULES[(plural, location, message)] = fn
        return fn
    return deco


def binder(plural: str) -> RuleBinder:
    """The :data:`~trafficlab.resources._schema.RuleBinder` for one CRD."""

    def bind(location: str, rule: Mapping[str, Any]) -> BoundRule:
        text = str(rule.get("rule", ""))
        message = str(rule.get("message") or f"failed rule: {text}")
        key = (plural, location, str(rule.get("message", "")))
        return BoundRule(message=message, rule=text, check=CEL_RULES.get(key),
                         transition=TRANSITION_RULES.get(key))

    return bind


# --- helpers with CEL semantics ------------------------------------------------------


def _has(obj: Any, key: str) -> bool:
    """CEL ``has(obj.key)``: the field is set (nulls were pruned before)."""
    return isinstance(obj, dict) and key in obj


def _empty_or_absent(obj: dict[str, Any], key: str) -> bool:
    """CEL ``!has(obj.key) || obj.key == ''``."""
    return bool(obj.get(key, "") == "")


def _exists_one(items: list[Any], pred: Callable[[Any], bool]) -> bool:
    """CEL ``exists_one``: exactly one element satisfies ``pred``."""
    return sum(1 for x in items if pred(x)) == 1


def _list(obj: Any, key: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


_DURATION_PART = re.compile(r"([0-9]+)(ms|h|m|s)")
_UNIT_MS = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}


def parse_duration(text: str) -> int:
    """A Gateway API duration (GEP-2257, e.g. ``1h30m``, ``500ms``) in milliseconds.

    >>> parse_duration("1m30s"), parse_duration("0s")
    (90000, 0)
    """
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a Gateway API duration such as 10s, 500ms or 1h2m")
    return sum(int(n) * _UNIT_MS[u] for n, u in parts)


# --- HTTPRoute -----------------------------------------------------------------------

HR = "httproutes"
RULE_FILTERS = ".spec.rules[].filters"
BACKEND_FILTERS = ".spec.rules[].backendRefs[].filters"
FILTER_LISTS = (RULE_FILTERS, BACKEND_FILTERS)
FILTER_ITEMS = (RULE_FILTERS + "[]", BACKEND_FILTERS + "[]")


def _same_parent(p1: dict[str, Any], p2: dict[str, Any]) -> bool:
    """Group, kind, name equal and namespaces both unset/empty or both set and equal."""
    if (p1.get("group"), p1.get("kind"), p1.get("name")) != (
            p2.get("group"), p2.get("kind"), p2.get("name")):
        return False
    if _empty_or_absent(p1, "namespace") and _empty_or_absent(p2, "namespace"):
        return True
    return _has(p1, "namespace") and _has(p2, "namespace") and p1["namespace"] == p2["namespace"]


@_register(HR, (".spec.parentRefs",),
           "sectionName must be specified when parentRefs includes 2 or more references to the "
           "same parent")
def _parent_section_all_or_none(refs: list[dict[str, Any]]) -> bool:
    """``self.all(p1, self.all(p2, <same parent> ? (<p1 no sectionName>) == (<p2 no
    sectionName>) : true))``"""
    return all(
        _empty_or_absent(p1, "sectionName") == _empty_or_absent(p2, "sectionName")
        for p1 in refs for p2 in refs if _same_parent(p1, p2)
    )


@_register(HR, (".spec.parentRefs",),
           "sectionName must be unique when parentRefs includes 2 or more references to the "
           "same parent")
def _parent_section_unique(refs: list[dict[str, Any]]) -> bool:
    """``self.all(p1, self.exists_one(p2, <same parent> && (both sectionNames unset/empty
    || both set and equal)))``"""

    def same_section(p1: dict[str, Any], p2: dict[str, Any]) -> bool:
        if _empty_or_absent(p1, "sectionName") and _empty_or_absent(p2, "sectionName"):
            return True
        return (_has(p1, "sectionName") and _has(p2, "sectionName")
                and p1["sectionName"] == p2["sectionName"])

    return all(
        sum(1 for p2 in refs if _same_parent(p1, p2) and same_section(p1, p2)) == 1
        for p1 in refs
    )


@_register(HR, (".spec.rules",),
           "While 16 rules and 64 matches per rule are allowed, the total number of matches "
           "across all rules in a route must be less than 128")
def _total_matches(rules: list[dict[str, Any]]) -> bool:
    """``(self.size() > 0 ? self[0].matches.size() : 0) + ... + self[15]... <= 128``"""
    return sum(len(rule["matches"]) for rule in rules[:16]
               if isinstance(rule.get("matches"), list)) <= 128


@_register(HR, (".spec.rules[]",),
           "RequestRedirect filter must not be used together with backendRefs")
def _redirect_without_backends(rule: dict[str, Any]) -> bool:
    """``(has(self.backendRefs) && size(self.backendRefs) > 0) ? (!has(self.filters) ||
    self.filters.all(f, !has(f.requestRedirect))) : true``"""
    if not _list(rule, "backendRefs"):
        return True
    return all(not _has(f, "requestRedirect") for f in _list(rule, "filters"))


def _replace_prefix(f: Any, field: str) -> bool:
    """``has(f.<field>) && has(f.<field>.path) && f.<field>.path.type == 'ReplacePrefixMatch'
    && has(f.<field>.path.replacePrefixMatch)``"""
    if not _has(f, field) or not _has(f[field], "path"):
        return False
    path = f[field]["path"]
    return path.get("type") == "ReplacePrefixMatch" and _has(path, "replacePrefixMatch")


def _one_path_prefix_match(rule: dict[str, Any]) -> bool:
    """``size(self.matches) != 1 || !has(self.matches[0].path) ||
    self.matches[0].path.type != 'PathPrefix' ? false : true``"""
    matches = rule["matches"]
    return (len(matches) == 1 and _has(matches[0], "path")
            and matches[0]["path"].get("type") == "PathPrefix")


def _prefix_rule(field: str, in_backends: bool) -> Rule:
    def check(rule: dict[str, Any]) -> bool:
        if in_backends:
            triggered = _has(rule, "backendRefs") and _exists_one(
                rule["backendRefs"],
                lambda b: _has(b, "filters") and _exists_one(
                    b["filters"], lambda f: _replace_prefix(f, field)))
        else:
            triggered = _has(rule, "filters") and _exists_one(
                rule["filters"], lambda f: _replace_prefix(f, field))
        return _one_path_prefix_match(rule) if triggered else True

    check.__doc__ = (f"When {'a backendRef has' if in_backends else 'the rule has'} exactly one "
                     f"filter with {field}.path.replacePrefixMatch, the rule must have exactly "
                     "one match, a PathPrefix one (exists_one semantics as in the CRD).")
    return check


for _field, _filter_type in (("requestRedirect", "RequestRedirect"), ("urlRewrite", "URLRewrite")):
    _register(HR, (".spec.rules[]",),
              f"When using {_filter_type} filter with path.replacePrefixMatch, exactly one "
              "PathPrefix match must be specified")(_prefix_rule(_field, False))
_register(HR, (".spec.rules[]",),
          "Within backendRefs, when using RequestRedirect filter with path.replacePrefixMatch, "
          "exactly one PathPrefix match must be specified")(_prefix_rule("requestRedirect", True))
_register(HR, (".spec.rules[]",),
          "Within backendRefs, When using URLRewrite filter with path.replacePrefixMatch, "
          "exactly one PathPrefix match must be specified")(_prefix_rule("urlRewrite", True))


@_register(HR, (".spec.rules[].backendRefs[]",
                RULE_FILTERS + "[].requestMirror.backendRef",
                BACKEND_FILTERS + "[].requestMirror.backendRef"),
           "Must have port for Service reference")
def _service_port(ref: dict[str, Any]) -> bool:
    """``(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true``"""
    if len(ref["group"]) == 0 and ref["kind"] == "Service":
        return _has(ref, "port")
    return True


@_register(HR, FILTER_LISTS,
           "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, "
           "but not both")
def _redirect_xor_rewrite(filters: list[dict[str, Any]]) -> bool:
    """``!(self.exists(f, f.type == 'RequestRedirect') &&
    self.exists(f, f.type == 'URLRewrite'))``"""
    types = {f.get("type") for f in filters if isinstance(f, dict)}
    return not ("RequestRedirect" in types and "URLRewrite" in types)


def _not_repeated(filter_type: str) -> Rule:
    def check(filters: list[dict[str, Any]]) -> bool:
        return sum(1 for f in filters if isinstance(f, dict) and f.get("type") == filter_type) <= 1

    check.__doc__ = f"``self.filter(f, f.type == '{filter_type}').size() <= 1``"
    return check


for _filter_type in ("CORS", "RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect",
                     "URLRewrite"):
    _register(HR, FILTER_LISTS, f"{_filter_type} filter cannot be repeated")(
        _not_repeated(_filter_type))

# The field each filter type carries; a filter must set exactly its own one.
FILTER_FIELDS = {
    "cors": "CORS",
    "requestHeaderModifier": "RequestHeaderModifier",
    "responseHeaderModifier": "ResponseHeaderModifier",
    "requestMirror": "RequestMirror",
    "requestRedirect": "RequestRedirect",
    "urlRewrite": "URLRewrite",
    "extensionRef": "ExtensionRef",
}


def _field_nil_unless(field: str, filter_type: str) -> Rule:
    def check(f: dict[str, Any]) -> bool:
        return not (_has(f, field) and f.get("type") != filter_type)

    check.__doc__ = f"``!(has(self.{field}) && self.type != '{filter_type}')``"
    return check


def _field_required_for(field: str, filter_type: str) -> Rule:
    def check(f: dict[str, Any]) -> bool:
        return not (not _has(f, field) and f.get("type") == filter_type)

    check.__doc__ = f"``!(!has(self.{field}) && self.type == '{filter_type}')``"
    return check


for _field, _filter_type in FILTER_FIELDS.items():
    _register(HR, FILTER_ITEMS,
              f"filter.{_field} must be nil if the filter.type is not {_filter_type}")(
        _field_nil_unless(_field, _filter_type))
    _register(HR, FILTER_ITEMS,
              f"filter.{_field} must be specified for {_filter_type} filter.type")(
        _field_required_for(_field, _filter_type))


def _star_alone(values: list[Any]) -> bool:
    """``!('*' in self && self.size() > 1)``"""
    return not ("*" in values and len(values) > 1)


for _item in FILTER_ITEMS:
    _register(HR, (_item + ".cors.allowHeaders",),
              "AllowHeaders cannot contain '*' alongside other methods")(_star_alone)
    _register(HR, (_item + ".cors.allowMethods",),
              "AllowMethods cannot contain '*' alongside other methods")(_star_alone)
    _register(HR, (_item + ".cors.allowOrigins",),
              "AllowOrigins cannot contain '*' alongside other origins")(_star_alone)


@_register(HR, tuple(i + ".requestMirror" for i in FILTER_ITEMS),
           "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter")
def _percent_xor_fraction(mirror: dict[str, Any]) -> bool:
    """``!(has(self.percent) && has(self.fraction))``"""
    return not (_has(mirror, "percent") and _has(mirror, "fraction"))


@_register(HR, tuple(i + ".requestMirror.fraction" for i in FILTER_ITEMS),
           "numerator must be less than or equal to denominator")
def _fraction(fraction: dict[str, Any]) -> bool:
    """``self.numerator <= self.denominator``"""
    return bool(fraction["numerator"] <= fraction["denominator"])


def _path_modifier_rules(location: str) -> None:
    for path_type, field in (("ReplaceFullPath", "replaceFullPath"),
                             ("ReplacePrefixMatch", "replacePrefixMatch")):
        def needs_field(p: dict[str, Any], t: str = path_type, f: str = field) -> bool:
            return _has(p, f) if p.get("type") == t else True

        def needs_type(p: dict[str, Any], t: str = path_type, f: str = field) -> bool:
            return p.get("type") == t if _has(p, f) else True

        needs_field.__doc__ = f"``self.type == '{path_type}' ? has(self.{field}) : true``"
        needs_type.__doc__ = f"``has(self.{field}) ? self.type == '{path_type}' : true``"
        _register(HR, (location,),
                  f"{field} must be specified when type is set to '{path_type}'")(needs_field)
        _register(HR, (location,), f"type must be '{path_type}' when {field} is set")(needs_type)


for _item in FILTER_ITEMS:
    _path_modifier_rules(_item + ".requestRedirect.path")
    _path_modifier_rules(_item + ".urlRewrite.path")

MATCH_PATH = ".spec.rules[].matches[].path"
_PREFIX_TYPES = ("Exact", "PathPrefix")
_PATH_CHARS = r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$"


def _path_rule(test: Callable[[str], bool]) -> Rule:
    def check(path: dict[str, Any]) -> bool:
        return test(path["value"]) if path.get("type") in _PREFIX_TYPES else True

    return check


_register(HR, (MATCH_PATH,),
          "value must be an absolute path and start with '/' when type one of ['Exact', "
          "'PathPrefix']")(_path_rule(lambda v: v.startswith("/")))


def _lacks(bad: str) -> Callable[[str], bool]:
    return lambda value: bad not in value


def _not_ending(bad: str) -> Callable[[str], bool]:
    return lambda value: not value.endswith(bad)


for _bad in ("//", "/./", "/../", "%2f", "%2F", "#"):
    _register(HR, (MATCH_PATH,),
              f"must not contain '{_bad}' when type one of ['Exact', 'PathPrefix']")(
        _path_rule(_lacks(_bad)))
for _bad in ("/..", "/."):
    _register(HR, (MATCH_PATH,),
              f"must not end with '{_bad}' when type one of ['Exact', 'PathPrefix']")(
        _path_rule(_not_ending(_bad)))
_register(HR, (MATCH_PATH,),
          f"must only contain valid characters (matching {_PATH_CHARS}) for types ['Exact', "
          "'PathPrefix']")(_path_rule(lambda v: go_regex(_PATH_CHARS).search(v) is not None))


@_register(HR, (MATCH_PATH,), "type must be one of ['Exact', 'PathPrefix', 'RegularExpression']")
def _path_type(path: dict[str, Any]) -> bool:
    """``self.type in ['Exact','PathPrefix'] || self.type == 'RegularExpression'``"""
    return path.get("type") in ("Exact", "PathPrefix", "RegularExpression")


@_register(HR, (".spec.rules[].timeouts",),
           "backendRequest timeout cannot be longer than request timeout")
def _timeouts(timeouts: dict[str, Any]) -> bool:
    """``!(has(self.request) && has(self.backendRequest) && duration(self.request) !=
    duration('0s') && duration(self.backendRequest) > duration(self.request))``"""
    if not (_has(timeouts, "request") and _has(timeouts, "backendRequest")):
        return True
    request = parse_duration(timeouts["request"])
    return not (request != 0 and parse_duration(timeouts["backendRequest"]) > request)


# --- Gateway -------------------------------------------------------------------------

GW = "gateways"


def _unique_address(address_type: str) -> Rule:
    def check(addresses: list[dict[str, Any]]) -> bool:
        for a1 in addresses:
            if a1.get("type") != address_type or not _has(a1, "value"):
                continue
            same = sum(1 for a2 in addresses if a2.get("type") == a1["type"]
                       and _has(a2, "value") and a2["value"] == a1["value"])
            if same != 1:
                return False
        return True

    check.__doc__ = (f"``self.all(a1, a1.type == '{address_type}' && has(a1.value) ? "
                     "self.exists_one(a2, a2.type == a1.type && has(a2.value) && "
                     "a2.value == a1.value) : true)``")
    return check


_register(GW, (".spec.addresses",), "IPAddress values must be unique")(_unique_address("IPAddress"))
_register(GW, (".spec.addresses",), "Hostname values must be unique")(_unique_address("Hostname"))

_HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


@_register(GW, (".spec.addresses[]",),
           f"Hostname value must be empty or contain only valid characters (matching {_HOSTNAME})")
def _address_hostname(address: dict[str, Any]) -> bool:
    """``self.type == 'Hostname' ? (!has(self.value) || self.value.matches(<hostname>)) : true``"""
    if address.get("type") != "Hostname" or not _has(address, "value"):
        return True
    return go_regex(_HOSTNAME).search(address["value"]) is not None


_QUALIFIED_KEY = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$")


def _keys_qualified(mapping: dict[str, Any]) -> bool:
    """``self.all(key, key.matches(<optional DNS prefix / name of up to 63 characters>))``"""
    return all(go_regex(_QUALIFIED_KEY).search(key) is not None for key in mapping)


def _key_prefix_short(mapping: dict[str, Any]) -> bool:
    """``self.all(key, key.split("/")[0].size() < 253)``"""
    return all(len(key.split("/")[0]) < 253 for key in mapping)


for _what, _noun in (("annotations", "annotation"), ("labels", "label")):
    _register(GW, (f".spec.infrastructure.{_what}",),
              f"{_noun.capitalize()} keys must be in the form of an optional DNS subdomain prefix "
              "followed by a required name segment of up to 63 characters.")(_keys_qualified)
    _register(GW, (f".spec.infrastructure.{_what}",),
              f"If specified, the {_noun} key's prefix must be a DNS subdomain not longer than "
              "253 characters in total.")(_key_prefix_short)

LISTENERS = ".spec.listeners"


@_register(GW, (LISTENERS,), "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']")
def _no_tls_for_plain(listeners: list[dict[str, Any]]) -> bool:
    """``self.all(l, l.protocol in ['HTTP', 'TCP', 'UDP'] ? !has(l.tls) : true)``"""
    return all(not _has(li, "tls") for li in listeners
               if li.get("protocol") in ("HTTP", "TCP", "UDP"))


@_register(GW, (LISTENERS,), "tls mode must be Terminate for protocol HTTPS")
def _https_terminates(listeners: list[dict[str, Any]]) -> bool:
    """``self.all(l, (l.protocol == 'HTTPS' && has(l.tls)) ? (l.tls.mode == '' ||
    l.tls.mode == 'Terminate') : true)``"""
    return all(li["tls"]["mode"] in ("", "Terminate") for li in listeners
               if li.get("protocol") == "HTTPS" and _has(li, "tls"))


@_register(GW, (LISTENERS,), "tls mode must be set for protocol TLS")
def _tls_has_mode(listeners: list[dict[str, Any]]) -> bool:
    """``self.all(l, (l.protocol == 'TLS' ? has(l.tls) && has(l.tls.mode) && l.tls.mode != ''
    : true))``"""
    return all(_has(li, "tls") and _has(li["tls"], "mode") and li["tls"]["mode"] != ""
               for li in listeners if li.get("protocol") == "TLS")


@_register(GW, (LISTENERS,), "hostname must not be specified for protocols ['TCP', 'UDP']")
def _no_hostname_for_l4(listeners: list[dict[str, Any]]) -> bool:
    """``self.all(l, l.protocol in ['TCP', 'UDP'] ? (!has(l.hostname) || l.hostname == '')
    : true)``"""
    return all(_empty_or_absent(li, "hostname") for li in listeners
               if li.get("protocol") in ("TCP", "UDP"))


@_register(GW, (LISTENERS,), "Listener name must be unique within the Gateway")
def _listener_names(listeners: list[dict[str, Any]]) -> bool:
    """``self.all(l1, self.exists_one(l2, l1.name == l2.name))``"""
    names = [li.get("name") for li in listeners]
    return all(names.count(n) == 1 for n in names)


@_register(GW, (LISTENERS,),
           "Combination of port, protocol and hostname must be unique for each listener")
def _listener_combination(listeners: list[dict[str, Any]]) -> bool:
    """``self.all(l1, self.exists_one(l2, l1.port == l2.port && l1.protocol == l2.protocol &&
    (has(l1.hostname) && has(l2.hostname) ? l1.hostname == l2.hostname : !has(l1.hostname)
    && !has(l2.hostname))))``"""

    def same(l1: dict[str, Any], l2: dict[str, Any]) -> bool:
        if l1.get("port") != l2.get("port") or l1.get("protocol") != l2.get("protocol"):
            return False
        if _has(l1, "hostname") and _has(l2, "hostname"):
            return bool(l1["hostname"] == l2["hostname"])
        return not _has(l1, "hostname") and not _has(l2, "hostname")

    return all(sum(1 for l2 in listeners if same(l1, l2)) == 1 for l1 in listeners)


@_register(GW, (LISTENERS + "[].tls",),
           "certificateRefs or options must be specified when mode is Terminate")
def _terminate_needs_certs(tls: dict[str, Any]) -> bool:
    """``self.mode == 'Terminate' ? size(self.certificateRefs) > 0 || size(self.options) > 0
    : true`` (an unset list counts as empty: CEL's error || true is true, error || false
    is an error, so the outcome matches)."""
    if tls.get("mode") != "Terminate":
        return True
    return len(tls.get("certificateRefs") or ()) > 0 or len(tls.get("options") or {}) > 0


@_register(GW, (".spec.tls.frontend.perPort",),
           "Port for TLS configuration must be unique within the Gateway")
def _per_port_unique(entries: list[dict[str, Any]]) -> bool:
    """``self.all(t1, self.exists_one(t2, t1.port == t2.port))``"""
    ports = [e.get("port") for e in entries]
    return all(ports.count(p) == 1 for p in ports)


# --- GatewayClass --------------------------------------------------------------------


def _immutable(value: Any, old: Any) -> bool:
    """``self == oldSelf`` (a transition rule: only checked on update, given the old object)."""
    return bool(value == old)


TRANSITION_RULES[("gatewayclasses", ".spec.controllerName", "Value is immutable")] = _immutable
