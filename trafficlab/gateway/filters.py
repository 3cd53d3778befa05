"""HTTPRoute filters: one registry entry per filter type, each filling one value of the IR.

A rule's ``filters`` (and a backendRef's) are read here, in order, by the handler registered
for their ``type``. A handler reads its own field (``requestHeaderModifier``, ...), raises a
:class:`~trafficlab.controlplane.status.RouteError` naming the field for a value the lab
cannot serve, and fills one value of :class:`RuleFilters`. Types the lab knows have a field
of their own there; a new type appends an :class:`~trafficlab.gateway.ir.RouteExtension`,
which the Envoy renderer's matching registry (``gateway/envoy.py``,
:func:`~trafficlab.gateway.envoy.register_route_renderer`) turns into Envoy route keys. So a
new filter is its handler and, if it is an extension, its renderer: nothing else changes.

>>> filters, problems = apply_filters(
...     [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-a",
...       "value": "1"}]}}], "spec.rules[0]", FilterContext())
>>> filters.request_headers.set, problems
((('x-a', '1'),), [])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from trafficlab.controlplane.status import RouteError
from trafficlab.gateway.ir import HeaderMods, Mirror, Redirect, RouteExtension, URLRewrite

__all__ = ["FilterContext", "FilterHandler", "RuleFilters", "apply_filters", "register_filter",
           "registered_filters", "unregister_filter"]

Obj = dict[str, Any]
_REDIRECT_CODES = (301, 302, 303, 307, 308)  # HTTPRequestRedirectFilter.statusCode enum
_SCHEME_PORTS = {"http": 80, "https": 443}
_FORBIDDEN_IN_HEADER_VALUE = frozenset("\r\n\0")


@dataclass
class RuleFilters:
    """What a list of filters asks of the rule (or backendRef) it is on."""

    request_headers: HeaderMods = field(default_factory=HeaderMods)
    response_headers: HeaderMods = field(default_factory=HeaderMods)
    mirrors: list[Mirror] = field(default_factory=list)
    redirect: Redirect | None = None
    rewrite: URLRewrite | None = None
    extensions: list[RouteExtension] = field(default_factory=list)


def _no_mirror(spec: Obj, at: str) -> Mirror:
    raise RouteError("UnsupportedValue", "Accepted", f"{at}: request mirrors are not supported here")


@dataclass(frozen=True)
class FilterContext:
    """What a handler may ask of the translator: resolving a mirror's backendRef."""

    mirror: Callable[[Obj, str], Mirror] = _no_mirror


#: (the filter object, its field path, what to fill, the translator's services)
FilterHandler = Callable[[Obj, str, RuleFilters, FilterContext], None]


@dataclass(frozen=True)
class _Entry:
    handler: FilterHandler
    on_backend: bool


_REGISTRY: dict[str, _Entry] = {}


def register_filter(type_name: str, *, on_backend: bool = False
                    ) -> Callable[[FilterHandler], FilterHandler]:
    """Register the handler of filter ``type_name`` (``on_backend``: allowed on a backendRef)."""

    def register(handler: FilterHandler) -> FilterHandler:
        _REGISTRY[type_name] = _Entry(handler, on_backend)
        return handler

    return register


def unregister_filter(type_name: str) -> None:
    """Remove a handler (tests that add a filter of their own clean up with this)."""
    _REGISTRY.pop(type_name, None)


def registered_filters() -> tuple[str, ...]:
    """The filter types the lab serves, in registration order."""
    return tuple(_REGISTRY)


def apply_filters(filters: Iterable[Obj], where: str, ctx: FilterContext, *,
                  backend: bool = False) -> tuple[RuleFilters, list[RouteError]]:
    """Run each filter's handler; the problems found, each naming its field."""
    out = RuleFilters()
    problems: list[RouteError] = []
    for k, flt in enumerate(filters):
        at = f"{where}.filters[{k}]"
        kind = str(flt.get("type"))
        entry = _REGISTRY.get(kind)
        if entry is None or (backend and not entry.on_backend):
            # HTTPRouteFilter.type: "Unknown values here must result in the implementation
            # setting the Accepted Condition for the Route to status: False, with a Reason of
            # UnsupportedValue".
            text = (f"{kind} filters on a backendRef are not supported by TrafficLab (use it in "
                    "the rule's filters)") if backend else \
                f"{kind} filters are not supported by TrafficLab"
            problems.append(RouteError("UnsupportedValue", "Accepted", f"{at}.type: {text}"))
            continue
        try:
            entry.handler(flt, at, out, ctx)
        except RouteError as err:
            problems.append(err)
    return out, problems


# -- the filters the lab serves ------------------------------------------------------------------
def header_mods(spec: Obj, at: str) -> HeaderMods:
    """RequestHeaderModifier / ResponseHeaderModifier; later duplicates of a name are ignored."""

    def pairs(items: Iterable[Obj], name: str) -> tuple[tuple[str, str], ...]:
        found: list[tuple[str, str]] = []
        seen: set[str] = set()
        for n, item in enumerate(items):
            if _FORBIDDEN_IN_HEADER_VALUE.intersection(str(item["value"])):
                # RFC 9110 5.5: a field value never holds CR, LF or NUL; Envoy refuses the
                # configuration that would send one.
                raise RouteError("UnsupportedValue", "Accepted",
                                 f"{at}.{name}[{n}].value: a header value must not contain "
                                 "a line break or NUL character")
            if str(item["name"]).lower() not in seen:
                seen.add(str(item["name"]).lower())
                found.append((str(item["name"]), str(item["value"])))
        return tuple(found)

    remove = tuple(dict.fromkeys(str(n) for n in spec.get("remove") or []))
    return HeaderMods(set=pairs(spec.get("set") or [], "set"),
                      add=pairs(spec.get("add") or [], "add"), remove=remove)


@register_filter("RequestHeaderModifier", on_backend=True)
def _request_headers(flt: Obj, at: str, out: RuleFilters, ctx: FilterContext) -> None:
    out.request_headers = header_mods(flt.get("requestHeaderModifier") or {},
                                      f"{at}.requestHeaderModifier")


@register_filter("ResponseHeaderModifier", on_backend=True)
def _response_headers(flt: Obj, at: str, out: RuleFilters, ctx: FilterContext) -> None:
    out.response_headers = header_mods(flt.get("responseHeaderModifier") or {},
                                       f"{at}.responseHeaderModifier")


@register_filter("RequestMirror")
def _mirror(flt: Obj, at: str, out: RuleFilters, ctx: FilterContext) -> None:
    out.mirrors.append(ctx.mirror(flt.get("requestMirror") or {}, f"{at}.requestMirror"))


@register_filter("RequestRedirect")
def _redirect(flt: Obj, at: str, out: RuleFilters, ctx: FilterContext) -> None:
    spec, at = flt.get("requestRedirect") or {}, f"{at}.requestRedirect"
    scheme = spec.get("scheme")
    if scheme is not None and scheme not in _SCHEME_PORTS:
        raise RouteError("UnsupportedValue", "Accepted", f"{at}.scheme: {scheme!r} is not supported")
    status = int(spec.get("statusCode", 302))
    if status not in _REDIRECT_CODES:
        raise RouteError("UnsupportedValue", "Accepted",
                         f"{at}.statusCode: {status} is not one of "
                         f"{', '.join(map(str, _REDIRECT_CODES))}")
    port = spec.get("port")
    if port is None and scheme is not None:
        # HTTPRequestRedirectFilter.port: "If redirect scheme is not-empty, the redirect port MUST
        # be the well-known port associated with the redirect scheme". With no scheme either, the
        # port stays None: the client keeps the port it used (the listener port it sees).
        port = _SCHEME_PORTS[scheme]
    path_kind, path_value = _path_modifier(spec.get("path"), f"{at}.path")
    out.redirect = Redirect(scheme=scheme, hostname=spec.get("hostname"),
                            port=int(port) if port is not None else None,
                            path_kind=path_kind, path_value=path_value, status=status)


@register_filter("URLRewrite")
def _rewrite(flt: Obj, at: str, out: RuleFilters, ctx: FilterContext) -> None:
    spec = flt.get("urlRewrite") or {}
    path_kind, path_value = _path_modifier(spec.get("path"), f"{at}.urlRewrite.path")
    out.rewrite = URLRewrite(hostname=spec.get("hostname"), path_kind=path_kind,
                             path_value=path_value)


def _path_modifier(spec: Obj | None,
                   at: str) -> tuple[Literal["full", "prefix"] | None, str | None]:
    if not spec:
        return None, None
    if spec.get("type") == "ReplaceFullPath":
        return "full", str(spec.get("replaceFullPath", "/"))
    if spec.get("type") == "ReplacePrefixMatch":
        return "prefix", str(spec.get("replacePrefixMatch", "/"))
    raise RouteError("UnsupportedValue", "Accepted",
                     f"{at}.type: {spec.get('type')!r} is not supported")
