"""Gateway API objects -> (IR, statuses): the pure translation step of the control plane.

Modelled on Envoy Gateway's ``internal/gatewayapi`` layer: one function takes a consistent
snapshot of the store and returns the IR for Envoy, the complete ``status`` block of every
GatewayClass, Gateway and HTTPRoute this controller is responsible for, and human warnings.
No I/O, no clock, no Envoy: the same snapshot always gives the same result, in sorted order,
so golden files stay stable.

Semantics are Gateway API v1.6.1, standard channel. The rules this module applies, with the
spec text they come from, are in comments next to the code. In short:

- GatewayClasses whose ``controllerName`` is one of ours are accepted; others are ignored.
- Gateways of an accepted class get one IR listener per port. Only ``HTTP`` listeners are
  served; others get ``Accepted=False UnsupportedProtocol``.
- HTTPRoutes attach through ``parentRefs`` (sectionName, port, allowedRoutes, hostnames).
  Each rule becomes one IR route per match and per intersecting hostname, ordered by
  :mod:`trafficlab.gateway.precedence` inside each virtual host.
- Unresolvable backendRefs keep their weight and answer 500 (``cluster=None``); weight 0
  means no traffic at all; a rule without any usable weight answers 500.
- Problems inside rules are :class:`~trafficlab.controlplane.status.RouteError` values,
  folded into ``Accepted`` / ``ResolvedRefs`` / ``PartiallyInvalid`` conditions per parent.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trafficlab.controlplane.snapshot import CONTROLLER_NAMES, ObjectKey, Snapshot
from trafficlab.controlplane.status import CONTROLLER_NAME, RouteError, condition
from trafficlab.gateway.filters import FilterContext, apply_filters
from trafficlab.gateway.hostnames import covers, intersect, specificity
from trafficlab.gateway.ir import (
    Cluster,
    DirectResponse,
    Forward,
    HeaderMods,
    HTTPListener,
    Mirror,
    Route,
    RouteAction,
    RouteExtension,
    URLRewrite,
    VirtualHost,
    WeightedDestination,
    Xds,
)
from trafficlab.gateway.matches import RuleMatch, translate_match
from trafficlab.gateway.precedence import MatchRef, match_sort_key, matches_of
from trafficlab.resources import GATEWAY_GROUP, SELECTOR_OPERATORS, parse_duration, selector_matches

__all__ = ["TranslateCache", "TranslateResult", "parse_duration_ms", "translate"]

Obj = dict[str, Any]

# One home for each: the API group's name and the GEP-2257 duration grammar (which the
# validation of timeouts uses too).
parse_duration_ms = parse_duration
_HTTPROUTE_KIND = {"group": GATEWAY_GROUP, "kind": "HTTPRoute"}
# Kubernetes labels every Namespace with its own name; selectors may rely on it.
_NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class TranslateResult:
    """What one translation produced.

    - ``ir``: everything Envoy needs; ``ir.version`` is the snapshot revision.
    - ``statuses``: the complete ``status`` block per object this controller owns
      (GatewayClasses, Gateways and HTTPRoutes), without transition times.
    - ``warnings``: sentences for a human, naming the object and what happens to traffic.
    """

    ir: Xds
    statuses: dict[ObjectKey, dict[str, Any]]
    warnings: tuple[str, ...]


def translate(snapshot: Snapshot, cache: TranslateCache | None = None) -> TranslateResult:
    """Translate a store snapshot into IR and statuses.

    With a ``cache`` (kept by the caller from one pass to the next) only the routes that
    changed since the previous pass are translated again; the result is the same as without.

    >>> result = translate(Snapshot(revision=7))
    >>> result.ir.version, result.statuses, result.warnings
    ('7', {}, ())
    """
    return _Translator(snapshot, cache).run()


_EntryKey = tuple[str, str, str, int, int]  # listener, domain, route, rule, match


@dataclass(frozen=True)
class _RouteOutcome:
    """Everything translating one HTTPRoute contributed to a pass."""

    key: tuple[str, int]  # uid, generation
    # Whether our status entries were there, when that mattered (a route attached nowhere
    # clears them), else None.
    had_ours: bool | None
    object_key: ObjectKey
    route_key: str  # "namespace/name", as listeners count attached routes
    status: dict[str, Any] | None
    warnings: tuple[str, ...]
    attached: tuple[tuple[str, str, int], ...]  # (gateway namespace, name, listener index)
    clusters: tuple[Cluster, ...]
    # (entry key, IR route, precedence key); the entry key starts with listener and domain
    entries: tuple[tuple[_EntryKey, Route, tuple[Any, ...]], ...]


class TranslateCache:
    """What :func:`translate` knows from its previous pass, so the next costs what changed.

    A route's translation depends on the route itself (its uid and generation: the store
    bumps the generation on every change of its spec), on whether it already carries status
    entries of ours, and on everything else the translator reads: GatewayClasses, Gateways,
    Services, ReferenceGrants, Namespaces (their labels), the endpoints and the bound ports.
    That "everything else" is small; when any of it changes, every route is translated again
    (a Service deleted or a listener changed can change any route). Otherwise only routes
    whose key changed (and new or deleted ones) are translated, and what they contributed
    (status, warnings, attached counts, clusters, IR routes) is taken out of, and put into,
    aggregates kept here: the virtual hosts of untouched hostnames are the very same objects
    as in the previous result, so later stages can tell by identity that nothing changed.

    ``hits`` and ``misses`` count the routes reused and translated by the last pass.
    """

    def __init__(self) -> None:
        self._environment: object = None
        self.hits = 0
        self.misses = 0
        self._reset()

    def _reset(self) -> None:
        self._routes: dict[tuple[str, str], _RouteOutcome] = {}
        # Route statuses in ObjectKey order, and route warnings (deduplicated, route order).
        self._statuses: dict[ObjectKey, dict[str, Any]] = {}
        self._warnings: tuple[str, ...] = ()
        self._clusters: dict[str, tuple[Cluster, int]] = {}  # name -> (cluster, routes using it)
        self._attached: dict[tuple[str, str, int], set[str]] = {}
        self._groups: dict[tuple[str, str], dict[_EntryKey, tuple[tuple[Any, ...], Route]]] = {}
        self._vhosts: dict[tuple[str, str], VirtualHost] = {}
        self._domains: dict[str, list[str]] = {}  # listener -> its domains, sorted
        self._listener_vhosts: dict[str, tuple[VirtualHost, ...]] = {}

    def _begin(self, environment: object) -> None:
        if environment != self._environment:
            self._environment = environment
            self._reset()
        self.hits = self.misses = 0

    def _update(self, changes: list[tuple[_RouteOutcome | None, _RouteOutcome | None]]) -> None:
        """Swap the contributions of changed routes: (old, new) per route, None for none."""
        reorder = rewarn = False
        dirty: set[tuple[str, str]] = set()
        for old, new in changes:
            if old is not None:
                if old.status is not None and (new is None or new.status is None):
                    del self._statuses[old.object_key]
                for ref in old.attached:
                    self._attached[ref].discard(old.route_key)
                for cluster in old.clusters:
                    kept, users = self._clusters[cluster.name]
                    if users == 1:
                        del self._clusters[cluster.name]
                    else:
                        self._clusters[cluster.name] = (kept, users - 1)
                for entry_key, _, _ in old.entries:
                    group = (entry_key[0], entry_key[1])
                    del self._groups[group][entry_key]
                    dirty.add(group)
            if new is not None:
                if new.status is not None:
                    reorder = reorder or new.object_key not in self._statuses
                    self._statuses[new.object_key] = new.status
                for ref in new.attached:
                    self._attached.setdefault(ref, set()).add(new.route_key)
                for cluster in new.clusters:
                    kept, users = self._clusters.get(cluster.name, (cluster, 0))
                    self._clusters[cluster.name] = (kept, users + 1)
                for entry_key, ir_route, sort_key in new.entries:
                    group = (entry_key[0], entry_key[1])
                    self._groups.setdefault(group, {})[entry_key] = (sort_key, ir_route)
                    dirty.add(group)
            if (old.warnings if old else ()) != (new.warnings if new else ()):
                rewarn = True
            if new is None and old is not None:
                del self._routes[(old.object_key.namespace, old.object_key.name)]
            elif new is not None:
                self._routes[(new.object_key.namespace, new.object_key.name)] = new
        if reorder:
            self._statuses = {k: self._statuses[k] for k in
                              sorted(self._statuses, key=lambda k: (k.kind, k.namespace, k.name))}
        if rewarn:
            seen: dict[str, None] = {}
            for ident in sorted(self._routes):
                for text in self._routes[ident].warnings:
                    seen.setdefault(text, None)
            self._warnings = tuple(seen)
        listeners: set[str] = set()
        for group in dirty:
            listener, domain = group
            members = self._groups.get(group)
            domains = self._domains.setdefault(listener, [])
            listeners.add(listener)
            if not members:
                self._groups.pop(group, None)
                if self._vhosts.pop(group, None) is not None:
                    domains.remove(domain)
                continue
            # match_sort_key ends with route, rule and match: no two entries tie.
            routes = tuple(r for _, r in sorted(members.values(), key=lambda m: m[0]))
            previous = self._vhosts.get(group)
            if previous is None:
                bisect.insort(domains, domain)
            elif len(previous.routes) == len(routes) and all(
                    a is b for a, b in zip(previous.routes, routes, strict=True)):
                continue  # the same object: the renderer reuses its output
            self._vhosts[group] = VirtualHost(name=f"{listener}/{domain}", domains=(domain,),
                                              routes=routes)
        for listener in listeners:
            self._listener_vhosts[listener] = tuple(
                self._vhosts[(listener, d)] for d in self._domains[listener])


# --------------------------------------------------------------------------------------
# Internal state
# --------------------------------------------------------------------------------------


@dataclass
class _Listener:
    """One ``spec.listeners[i]`` of a Gateway of ours, with what translation decided about it."""

    gateway: Obj
    index: int
    name: str
    port: int
    protocol: str
    hostname: str | None
    allowed_routes: Obj
    supported_kinds: list[Obj] = field(default_factory=list)
    kind_errors: list[str] = field(default_factory=list)
    unsupported: str | None = None  # why Accepted=False, if so
    conflict: str | None = None  # why Conflicted=True, if so
    invalid: str | None = None  # why Programmed=False though accepted (a bad route selector)
    bind: tuple[str, int] | None = None
    attached: set[str] = field(default_factory=set)

    @property
    def namespace(self) -> str:
        return str(self.gateway["metadata"]["namespace"])

    @property
    def gateway_name(self) -> str:
        return str(self.gateway["metadata"]["name"])

    @property
    def ir_name(self) -> str:
        return f"{self.namespace}/{self.gateway_name}/{self.port}"

    @property
    def valid(self) -> bool:
        return self.unsupported is None and self.conflict is None and self.invalid is None

    @property
    def programmed(self) -> bool:
        return self.valid and self.bind is not None

    @property
    def takes_httproutes(self) -> bool:
        return any(k == _HTTPROUTE_KIND for k in self.supported_kinds)


@dataclass
class _Gateway:
    obj: Obj
    listeners: list[_Listener]

    @property
    def label(self) -> str:
        meta = self.obj["metadata"]
        return f"{meta['namespace']}/{meta['name']}"


@dataclass
class _Rule:
    """One ``spec.rules[i]`` translated; ``invalid`` rules answer 500 for their matches."""

    index: int
    matches: list[RuleMatch]
    action: RouteAction
    invalid: list[RouteError] = field(default_factory=list)
    request_headers: HeaderMods = field(default_factory=HeaderMods)
    response_headers: HeaderMods = field(default_factory=HeaderMods)
    mirrors: tuple[Mirror, ...] = ()
    rewrite: URLRewrite | None = None
    timeout_ms: int | None = None
    backend_timeout_ms: int | None = None
    extensions: tuple[RouteExtension, ...] = ()


@dataclass(frozen=True)
class _Entry:
    """One IR route to place in a virtual host."""

    listener: str
    domain: str
    route_key: str
    rule: _Rule
    match: RuleMatch


# --------------------------------------------------------------------------------------
# The translator
# --------------------------------------------------------------------------------------


class _Recorder:
    """What translating one route added to the pass (see :class:`TranslateCache`)."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.attached: list[tuple[str, str, int]] = []
        self.clusters: list[str] = []
        self.read_own_status = False


class _Translator:
    def __init__(self, snapshot: Snapshot, cache: TranslateCache | None = None) -> None:
        self.snapshot = snapshot
        self.cache = cache
        self.index: dict[tuple[str, str, str], Obj] = {}
        self.by_kind: dict[str, list[Obj]] = {}
        if cache is None:
            for obj in snapshot.objects:
                meta = obj.get("metadata", {})
                key = (str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))
                self.index[key] = obj
            for key in sorted(self.index):  # namespace/name order makes the output deterministic
                self.by_kind.setdefault(key[0], []).append(self.index[key])
        else:
            # Thousands of routes: one grouping pass, and sorts that are cheap on the store's
            # already ordered objects.
            for obj in snapshot.objects:
                self.by_kind.setdefault(str(obj.get("kind")), []).append(obj)
            for kind, objects in self.by_kind.items():
                objects.sort(key=_namespace_name)
                for obj in objects:
                    ns, name = _namespace_name(obj)
                    self.index[(kind, ns, name)] = obj
        self.warnings: list[str] = []
        self._warned: set[str] = set()
        self._recording: _Recorder | None = None
        self.statuses: dict[ObjectKey, dict[str, Any]] = {}
        self.clusters: dict[str, Cluster] = {}
        self.entries: dict[tuple[str, str, str, int, int], _Entry] = {}
        self.gateways: dict[tuple[str, str], _Gateway] = {}

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.index.get((kind, namespace, name))

    def of_kind(self, kind: str) -> list[Obj]:
        """Objects of ``kind`` sorted by namespace/name."""
        return self.by_kind.get(kind, [])

    def warn(self, text: str) -> None:
        if self._recording is not None:
            # Route warnings of a cached pass are assembled by the cache, in route order.
            self._recording.warnings.append(text)
            return
        if text not in self._warned:
            self._warned.add(text)
            self.warnings.append(text)

    # -- top level -------------------------------------------------------------------------
    def run(self) -> TranslateResult:
        classes = self._gateway_classes()
        for gw in self.of_kind("Gateway"):
            if gw.get("spec", {}).get("gatewayClassName") in classes:
                meta = gw["metadata"]
                self.gateways[(str(meta["namespace"]), str(meta["name"]))] = self._gateway(gw)
        if self.cache is not None:
            return self._run_cached(self.cache)
        for route in self.of_kind("HTTPRoute"):
            self._route(route)
        for state in self.gateways.values():
            self.statuses[ObjectKey.of(state.obj)] = self._gateway_status(state)
        ir = Xds(
            version=str(self.snapshot.revision),
            listeners=self._listeners(),
            clusters=tuple(self.clusters[name] for name in sorted(self.clusters)),
        )
        statuses = {key: self.statuses[key] for key in sorted(self.statuses)}
        return TranslateResult(ir=ir, statuses=statuses, warnings=tuple(self.warnings))

    # -- the cached pass -------------------------------------------------------------------
    def _run_cached(self, cache: TranslateCache) -> TranslateResult:
        cache._begin(self._environment())
        changes: list[tuple[_RouteOutcome | None, _RouteOutcome | None]] = []
        present: set[tuple[str, str]] = set()
        for route in self.of_kind("HTTPRoute"):
            meta = route["metadata"]
            ident = (str(meta["namespace"]), str(meta["name"]))
            present.add(ident)
            old = cache._routes.get(ident)
            key = (str(meta.get("uid")), int(meta.get("generation") or 0))
            if old is not None and old.key == key and (
                    old.had_ours is None or old.had_ours == _had_ours(route)):
                cache.hits += 1
                continue
            cache.misses += 1
            changes.append((old, self._translate_recorded(route, key)))
        for ident in [i for i in cache._routes if i not in present]:
            changes.append((cache._routes[ident], None))
        cache._update(changes)
        for state in self.gateways.values():
            for listener in state.listeners:
                listener.attached = cache._attached.get(
                    (listener.namespace, listener.gateway_name, listener.index), set())
        others = {ObjectKey.of(state.obj): self._gateway_status(state)
                  for state in self.gateways.values()}
        others.update((k, v) for k, v in self.statuses.items() if k.kind != "HTTPRoute")
        # ObjectKey order: Gateway < GatewayClass < HTTPRoute, so route statuses come last.
        statuses = {k: others[k] for k in sorted(others)}
        statuses.update(cache._statuses)
        warned = set(self.warnings)
        warnings = (*self.warnings, *(w for w in cache._warnings if w not in warned))
        ir = Xds(
            version=str(self.snapshot.revision),
            listeners=self._listeners(cache._listener_vhosts),
            clusters=tuple(cache._clusters[name][0] for name in sorted(cache._clusters)),
        )
        return TranslateResult(ir=ir, statuses=statuses, warnings=warnings)

    def _environment(self) -> object:
        """Every input a route's translation may read besides the route itself.

        Objects are compared by identity and generation (the store bumps it on any change
        outside metadata) plus labels (Namespace selectors read them); objects without that
        metadata (hand-made snapshots) by their whole content.
        """
        objects: list[object] = []
        for kind in sorted(self.by_kind):
            if kind == "HTTPRoute":
                continue
            for obj in self.by_kind[kind]:
                meta = obj.get("metadata") or {}
                if meta.get("uid") and meta.get("generation") is not None:
                    labels = tuple(sorted((meta.get("labels") or {}).items()))
                    objects.append((kind, meta.get("namespace"), meta.get("name"), meta["uid"],
                                    meta["generation"], labels))
                else:
                    objects.append(repr(sorted((k, v) for k, v in obj.items() if k != "status")))
        endpoints = tuple(sorted((key, tuple(sorted(ports.items())))
                                 for key, ports in self.snapshot.endpoints.items()))
        return (tuple(objects), endpoints, tuple(sorted(self.snapshot.bind.items())))

    def _translate_recorded(self, route: Obj, key: tuple[str, int]) -> _RouteOutcome:
        """Translate ``route`` and return what it contributes to the pass."""
        recorder = self._recording = _Recorder()
        self.entries = {}
        try:
            self._route(route)
        finally:
            self._recording = None
        object_key = ObjectKey.of(route)
        meta = route["metadata"]
        if not (meta.get("uid") and meta.get("generation") is not None):
            key = ("", -1)  # no identity to recognise it by: translated on every pass
        return _RouteOutcome(
            key=key, had_ours=_had_ours(route) if recorder.read_own_status else None,
            object_key=object_key, route_key=f"{meta['namespace']}/{meta['name']}",
            status=self.statuses.pop(object_key, None), warnings=tuple(recorder.warnings),
            attached=tuple(recorder.attached),
            clusters=tuple(self.clusters[name] for name in dict.fromkeys(recorder.clusters)),
            entries=tuple((k, _ir_route(e), match_sort_key(e.match.ref))
                          for k, e in self.entries.items()))

    # -- GatewayClass ----------------------------------------------------------------------
    def _gateway_classes(self) -> set[str]:
        """Names of the classes we accept. Classes of other controllers get no status from us."""
        accepted: set[str] = set()
        for gc in self.of_kind("GatewayClass"):
            controller = gc.get("spec", {}).get("controllerName")
            if controller not in CONTROLLER_NAMES:
                continue
            name = str(gc["metadata"]["name"])
            accepted.add(name)
            self.statuses[ObjectKey.of(gc)] = {"conditions": [condition(
                "Accepted", True, "Accepted",
                f"TrafficLab's gateway controller accepts this class ({controller}).",
                _generation(gc),
            )]}
        return accepted

    # -- Gateway ---------------------------------------------------------------------------
    def _gateway(self, gw: Obj) -> _Gateway:
        ns, name = str(gw["metadata"]["namespace"]), str(gw["metadata"]["name"])
        listeners: list[_Listener] = []
        for i, spec in enumerate(gw.get("spec", {}).get("listeners") or []):
            listener = _Listener(
                gateway=gw, index=i, name=str(spec["name"]), port=int(spec["port"]),
                protocol=str(spec.get("protocol", "")), hostname=spec.get("hostname") or None,
                allowed_routes=spec.get("allowedRoutes") or {},
            )
            where = f"spec.listeners[{i}]"
            if listener.protocol != "HTTP":
                listener.unsupported = (
                    f"{where}.protocol: {listener.protocol} is not supported; "
                    "TrafficLab serves HTTP listeners only"
                )
                self.warn(f"Gateway {ns}/{name}: listener {listener.name} uses protocol "
                          f"{listener.protocol}, which TrafficLab does not serve; it is ignored.")
            else:
                self._route_kinds(listener, where)
                listener.invalid = _namespaces_problem(listener.allowed_routes, where)
                if listener.invalid:
                    self.warn(f"Gateway {ns}/{name}: listener {listener.name} serves nothing: "
                              f"{listener.invalid}")
            listener.bind = self.snapshot.bind.get((ns, name, listener.port))
            listeners.append(listener)
        # Listeners sharing a port must differ in hostname ("Distinct Listeners" in the Gateway
        # spec). Indistinct ones are all rejected: "The implementation MUST NOT pick one
        # conflicting Listener as the winner."
        groups: dict[tuple[int, str], list[_Listener]] = {}
        for listener in listeners:
            if listener.unsupported is None:
                groups.setdefault((listener.port, listener.hostname or ""), []).append(listener)
        for (port, host), same in groups.items():
            if len(same) > 1:
                names = ", ".join(x.name for x in same)
                for listener in same:
                    listener.conflict = (f"listeners {names} all use port {port} with "
                                         f"{'hostname ' + host if host else 'no hostname'}")
        for listener in listeners:
            if listener.valid and listener.bind is None:
                self.warn(f"Gateway {ns}/{name}: no local port is bound for port "
                          f"{listener.port} yet; listener {listener.name} serves nothing "
                          "until it is.")
        return _Gateway(gw, listeners)

    @staticmethod
    def _route_kinds(listener: _Listener, where: str) -> None:
        """Resolve ``allowedRoutes.kinds``: HTTPRoute is the only kind an HTTP listener takes."""
        kinds = listener.allowed_routes.get("kinds") or []
        if not kinds:
            # "When unspecified or empty, the kinds of Routes selected are determined using the
            # Listener protocol" -- HTTPRoute for HTTP.
            listener.supported_kinds = [dict(_HTTPROUTE_KIND)]
            return
        for k, kind in enumerate(kinds):
            group = kind.get("group", GATEWAY_GROUP)
            if group == GATEWAY_GROUP and kind.get("kind") == "HTTPRoute":
                if not listener.takes_httproutes:
                    listener.supported_kinds.append(dict(_HTTPROUTE_KIND))
            else:
                listener.kind_errors.append(
                    f"{where}.allowedRoutes.kinds[{k}]: {group or 'core'}/{kind.get('kind')} is "
                    "not a route kind TrafficLab supports on an HTTP listener; only HTTPRoute is"
                )

    def _gateway_status(self, state: _Gateway) -> dict[str, Any]:
        gen = _generation(state.obj)
        listener_statuses = [self._listener_status(x, gen) for x in state.listeners]
        invalid = [x for x in state.listeners if not x.valid]
        programmed = [x for x in state.listeners if x.programmed]
        if not invalid:
            accepted = condition("Accepted", True, "Accepted", "The Gateway is accepted.", gen)
        elif len(invalid) < len(state.listeners):
            accepted = condition("Accepted", True, "ListenersNotValid",
                                 f"Listener(s) {_names(invalid)} are not valid and not served "
                                 "(see status.listeners); the other listeners are.", gen)
        else:
            accepted = condition("Accepted", False, "ListenersNotValid",
                                 f"No listener is valid ({_names(invalid)}); "
                                 "see status.listeners.", gen)
        bound = sorted({x.bind[0] for x in programmed if x.bind})
        unsupported, unusable = _address_problems(state.obj, bound)
        if unsupported and accepted["status"] == "True":
            # GatewaySpec.addresses: an address the implementation cannot honour "MUST" be
            # reported in the Gateway's conditions; UnsupportedAddress is the type's reason.
            accepted = condition("Accepted", False, "UnsupportedAddress",
                                 f"{'; '.join(unsupported)}. TrafficLab's local gateway binds "
                                 "IPAddress 127.0.0.1 only: remove spec.addresses or ask "
                                 "for that address.", gen)
        if programmed and unusable:
            prog = condition("Programmed", False, "AddressNotUsable",
                             f"{'; '.join(unusable)}; the listeners stay on "
                             f"{', '.join(bound)} only. Remove spec.addresses or ask for "
                             "127.0.0.1.", gen)
        elif programmed:
            where = ", ".join(sorted({f"{x.bind[0]}:{x.bind[1]} (port {x.port})"
                                      for x in programmed if x.bind}))
            prog = condition("Programmed", True, "Programmed", f"Envoy listens on {where}.", gen)
        elif any(x.valid for x in state.listeners):
            prog = condition("Programmed", False, "AddressNotAssigned",
                             "No local port has been bound for this Gateway's listeners yet.", gen)
        else:
            prog = condition("Programmed", False, "Invalid",
                             "The Gateway has no valid listener to program.", gen)
        return {
            "addresses": [{"type": _address_type(a), "value": a} for a in bound],
            "conditions": [accepted, prog],
            "listeners": listener_statuses,
        }

    @staticmethod
    def _listener_status(listener: _Listener, gen: int | None) -> dict[str, Any]:
        if listener.unsupported:
            accepted = condition("Accepted", False, "UnsupportedProtocol",
                                 listener.unsupported, gen)
        elif listener.conflict:
            # GEP-1713's examples report a hostname conflict as Accepted=False PortUnavailable.
            accepted = condition("Accepted", False, "PortUnavailable",
                                 f"Conflicted: {listener.conflict}; none of them is served.", gen)
        else:
            accepted = condition("Accepted", True, "Accepted", "The listener is accepted.", gen)
        if listener.invalid:
            programmed = condition("Programmed", False, "Invalid", listener.invalid, gen)
        elif not listener.valid:
            programmed = condition("Programmed", False, "Invalid",
                                   "The listener is not accepted; see its Accepted condition.", gen)
        elif listener.bind is None:
            programmed = condition("Programmed", False, "AddressNotAssigned",
                                   f"No local port is bound for port {listener.port} yet.", gen)
        else:
            address, port = listener.bind
            programmed = condition("Programmed", True, "Programmed",
                                   f"Envoy listens on {address}:{port} for port {listener.port}.",
                                   gen)
        if listener.kind_errors:
            resolved = condition("ResolvedRefs", False, "InvalidRouteKinds",
                                 "; ".join(listener.kind_errors), gen)
        else:
            resolved = condition("ResolvedRefs", True, "ResolvedRefs",
                                 "All references are resolved.", gen)
        if listener.conflict:
            conflicted = condition("Conflicted", True, "HostnameConflict", listener.conflict, gen)
        else:
            conflicted = condition("Conflicted", False, "NoConflicts", "No conflicts.", gen)
        return {
            "name": listener.name,
            "supportedKinds": [dict(k) for k in listener.supported_kinds],
            "attachedRoutes": len(listener.attached),
            "conditions": [accepted, programmed, resolved, conflicted],
        }

    # -- HTTPRoute -------------------------------------------------------------------------
    def _route(self, route: Obj) -> None:
        meta = route["metadata"]
        ns, name = str(meta["namespace"]), str(meta["name"])
        label = f"HTTPRoute {ns}/{name}"
        spec = route.get("spec") or {}
        targets: list[tuple[int, Obj, _Gateway]] = []
        seen: list[Obj] = []
        for i, pref in enumerate(spec.get("parentRefs") or []):
            echo = _echo_parent_ref(pref)
            if echo["group"] != GATEWAY_GROUP or echo["kind"] != "Gateway" or echo in seen:
                continue  # other parent kinds (a mesh Service) are not ours to report on
            seen.append(echo)
            gw_ns = str(pref.get("namespace") or ns)
            state = self.gateways.get((gw_ns, str(pref["name"])))
            if state is None:
                if self.get("Gateway", gw_ns, str(pref["name"])) is None:
                    self.warn(f"{label}: spec.parentRefs[{i}] names Gateway "
                              f"{gw_ns}/{pref['name']}, which does not exist; "
                              "the route is not attached there.")
                continue  # a Gateway of another class: its controller reports
            targets.append((i, echo, state))
        if not targets:
            if self._recording is not None:
                self._recording.read_own_status = True
            if _had_ours(route):  # we reported before: clear our entries
                self.statuses[ObjectKey.of(route)] = {"parents": []}
            return

        rules, errors = self._rules(route)
        gen = _generation(route)
        resolved = [e for e in errors if e.condition_type == "ResolvedRefs"]
        invalid_rules = [r for r in rules if r.invalid]
        parents: list[Obj] = []
        route_key = f"{ns}/{name}"
        for i, echo, state in targets:
            attached, reason, message = self._attach(route, i, echo, state)
            conditions: list[Obj] = []
            if not attached:
                conditions.append(condition("Accepted", False, reason, message, gen))
                self.warn(f"{label}: {message}")
            elif len(invalid_rules) == len(rules):
                # Each invalid rule was already warned about by _rule.
                text = "All rules are invalid: " + "; ".join(
                    e.message for r in rules for e in r.invalid)
                conditions.append(condition("Accepted", False, "UnsupportedValue", text, gen))
            else:
                conditions.append(condition("Accepted", True, "Accepted", message, gen))
                for listener, _ in attached:
                    listener.attached.add(route_key)
                    if self._recording is not None:
                        self._recording.attached.append(
                            (listener.namespace, listener.gateway_name, listener.index))
            if resolved:
                conditions.append(condition("ResolvedRefs", False, resolved[0].reason,
                                            "; ".join(e.message for e in resolved), gen))
            else:
                conditions.append(condition("ResolvedRefs", True, "ResolvedRefs",
                                            "All references are resolved.", gen))
            if attached and invalid_rules and len(invalid_rules) < len(rules):
                # The spec's "Drop Rule(s)" approach needs this prefix; we answer 500 for the
                # dropped rule's matches rather than letting them fall through to other routes.
                dropped = ", ".join(str(r.index) for r in invalid_rules)
                why = "; ".join(e.message for r in invalid_rules for e in r.invalid)
                conditions.append(condition(
                    "PartiallyInvalid", True, "UnsupportedValue",
                    f"Dropped Rule(s) {dropped} (their matches answer HTTP 500): {why}", gen,
                ))
            parents.append({"parentRef": echo, "controllerName": CONTROLLER_NAME,
                            "conditions": conditions})
            for listener, domains in attached:
                if not listener.programmed:
                    continue
                for domain in domains:
                    if _isolated_from(listener, domain, state.listeners):
                        continue
                    for rule in rules:
                        for match in rule.matches:
                            key = (listener.ir_name, domain, route_key, rule.index, match.index)
                            self.entries.setdefault(key, _Entry(listener.ir_name, domain, route_key,
                                                                rule, match))
        self.statuses[ObjectKey.of(route)] = {"parents": parents}

    def _attach(self, route: Obj, i: int, echo: Obj,
                state: _Gateway) -> tuple[list[tuple[_Listener, list[str]]], str, str]:
        """Which listeners of ``state`` take the route, with the domains each serves it on."""
        ns = str(route["metadata"]["namespace"])
        where = f"spec.parentRefs[{i}]"
        candidates = state.listeners
        section, port = echo.get("sectionName"), echo.get("port")
        if section is not None:
            candidates = [x for x in candidates if x.name == section]
        if port is not None:
            candidates = [x for x in candidates if x.port == port]
        if not candidates:
            wanted = " and ".join(filter(None, [
                f"named {section!r}" if section is not None else "",
                f"on port {port}" if port is not None else "",
            ]))
            have = ", ".join(f"{x.name} (port {x.port})" for x in state.listeners) or "none"
            return [], "NoMatchingParent", (
                f"{where}: Gateway {state.label} has no listener {wanted}; "
                f"its listeners are {have}."
            )
        allowed = []
        refusals = []
        for listener in candidates:
            why = self._refusal(listener, ns)
            if why:
                refusals.append(why)
            else:
                allowed.append(listener)
        if not allowed:
            return [], "NotAllowedByListeners", (
                f"{where}: Gateway {state.label} refuses the route: " + "; ".join(refusals) + ".")
        hostnames = _unique(str(h) for h in (route.get("spec") or {}).get("hostnames") or [])
        attached = []
        for listener in allowed:
            domains = intersect(listener.hostname, hostnames)
            if domains:
                attached.append((listener, domains))
        if not attached:
            listed = ", ".join(f"{x.name} ({x.hostname})" for x in allowed)
            return [], "NoMatchingListenerHostname", (
                f"spec.hostnames: none of {', '.join(hostnames)} matches the hostname of "
                f"listener(s) {listed} of Gateway {state.label}."
            )
        names = ", ".join(x.name for x, _ in attached)
        return attached, "Accepted", f"Accepted by Gateway {state.label} (listener {names})."

    def _refusal(self, listener: _Listener, route_ns: str) -> str | None:
        """Why ``listener`` refuses an HTTPRoute from ``route_ns``, or None if it takes it."""
        if not listener.takes_httproutes:
            if listener.unsupported:
                return f"listener {listener.name} ({listener.protocol}) takes no HTTPRoutes here"
            return f"listener {listener.name} does not allow HTTPRoutes (allowedRoutes.kinds)"
        namespaces = listener.allowed_routes.get("namespaces") or {}
        origin = namespaces.get("from", "Same")
        gw_ns = listener.namespace
        if origin == "All":
            return None
        if origin == "Same":
            if route_ns == gw_ns:
                return None
            return (f"listener {listener.name} allows routes from namespace {gw_ns} only "
                    f"(allowedRoutes.namespaces.from: Same), not from {route_ns}")
        if origin == "Selector":
            if selector_matches(namespaces.get("selector"), self._namespace_labels(route_ns)):
                return None
            return (f"listener {listener.name} allows routes from namespaces matching its "
                    f"allowedRoutes.namespaces.selector, and namespace {route_ns} does not match")
        return f"listener {listener.name} has unsupported allowedRoutes.namespaces.from {origin!r}"

    def _namespace_labels(self, namespace: str) -> dict[str, str]:
        obj = self.get("Namespace", "", namespace)
        labels = dict((obj or {}).get("metadata", {}).get("labels") or {})
        labels[_NAMESPACE_NAME_LABEL] = namespace
        return labels

    # -- rules -----------------------------------------------------------------------------
    def _rules(self, route: Obj) -> tuple[list[_Rule], list[RouteError]]:
        refs = {(r.rule, r.match): r for r in matches_of(route)}
        # CRD default: a route without rules has one rule matching PathPrefix "/".
        rules_spec = (route.get("spec") or {}).get("rules") or [{}]
        rules: list[_Rule] = []
        errors: list[RouteError] = []
        for i, spec in enumerate(rules_spec):
            rule, rule_errors = self._rule(route, i, spec, refs)
            rules.append(rule)
            errors.extend(rule_errors)
        return rules, errors

    def _rule(self, route: Obj, i: int, spec: Obj,
              refs: Mapping[tuple[int, int], MatchRef]) -> tuple[_Rule, list[RouteError]]:
        meta = route["metadata"]
        ns, name = str(meta["namespace"]), str(meta["name"])
        where = f"spec.rules[{i}]"
        errors: list[RouteError] = []
        invalid: list[RouteError] = []

        matches: list[RuleMatch] = []
        for j, match in enumerate(spec.get("matches") or [{}]):
            try:
                matches.append(translate_match(match, f"{where}.matches[{j}]", j, refs[(i, j)]))
            except RouteError as err:
                # A match Envoy cannot express is left out: answering 500 on a guess (say "/")
                # would swallow requests meant for other routes.
                invalid.append(err)

        context = FilterContext(mirror=lambda spec, at: self._mirror(route, spec, at))
        filtered, filter_problems = apply_filters(spec.get("filters") or [], where, context)
        for problem in filter_problems:
            (errors if problem.condition_type == "ResolvedRefs" else invalid).append(problem)
        request_headers, response_headers = filtered.request_headers, filtered.response_headers
        mirrors, redirect, rewrite = filtered.mirrors, filtered.redirect, filtered.rewrite
        uses_prefix_rewrite = (redirect is not None and redirect.path_kind == "prefix") or (
            rewrite is not None and rewrite.path_kind == "prefix")
        if uses_prefix_rewrite and any(m.path.kind != "prefix" for m in matches):
            # "ReplacePrefixMatch is only compatible with a PathPrefix HTTPRouteMatch."
            invalid.append(RouteError("UnsupportedValue", "Accepted",
                                      f"{where}.filters: ReplacePrefixMatch needs every match of "
                                      "the rule to be a PathPrefix match"))

        timeout_ms = backend_timeout_ms = None
        timeouts = spec.get("timeouts") or {}
        try:
            if "request" in timeouts:
                timeout_ms = parse_duration_ms(str(timeouts["request"]))
            if "backendRequest" in timeouts:
                backend_timeout_ms = parse_duration_ms(str(timeouts["backendRequest"]))
        except ValueError as exc:
            invalid.append(RouteError("UnsupportedValue", "Accepted", f"{where}.timeouts: {exc}"))

        destinations, backend_errors, backend_invalid = self._backends(route, i, spec)
        errors.extend(backend_errors)
        invalid.extend(backend_invalid)

        action: RouteAction
        if invalid:
            action = DirectResponse(500)
            problems = "; ".join(e.message for e in invalid)
            self.warn(f"HTTPRoute {ns}/{name}: rule {i} is invalid ({problems}); "
                      "requests it matches get HTTP 500.")
        elif redirect is not None:
            action = redirect
        elif destinations and any(d.cluster is not None for d in destinations):
            action = Forward(tuple(destinations))
        else:
            # HTTPRouteRule.backendRefs: "If *all* entries in BackendRefs are invalid, and there are
            # also no filters specified in this route rule, *all* traffic which matches this rule
            # MUST receive a 500 status code." We answer 500 as well when every weight is 0:
            # BackendRef.weight says "If weight is set to 0, no traffic should be forwarded for
            # this entry", so there is nowhere to forward, and 500 (as for a rule without
            # backendRefs, conformance HTTPRouteNoBackendRefs) tells the student the rule is dead.
            action = DirectResponse(500)
            backend_refs = spec.get("backendRefs") or []
            if not backend_refs:
                self.warn(f"HTTPRoute {ns}/{name}: rule {i} has no backendRefs; "
                          "requests it matches get HTTP 500.")
            elif not destinations:
                self.warn(f"HTTPRoute {ns}/{name}: every backendRef of rule {i} has weight 0; "
                          "requests it matches get HTTP 500.")
        valid = not invalid
        rule = _Rule(
            index=i, matches=matches, action=action, invalid=invalid,
            request_headers=request_headers if valid else HeaderMods(),
            response_headers=response_headers if valid else HeaderMods(),
            mirrors=tuple(mirrors) if valid and isinstance(action, Forward) else (),
            rewrite=rewrite if valid and isinstance(action, Forward) else None,
            timeout_ms=timeout_ms if valid else None,
            backend_timeout_ms=backend_timeout_ms if valid else None,
            extensions=tuple(filtered.extensions) if valid else (),
        )
        return rule, errors

    def _backends(self, route: Obj, i: int, spec: Obj,
                  ) -> tuple[list[WeightedDestination], list[RouteError], list[RouteError]]:
        """Weighted destinations of rule ``i``; weight-0 entries are left out entirely."""
        meta = route["metadata"]
        ns, name = str(meta["namespace"]), str(meta["name"])
        backend_refs = spec.get("backendRefs") or []
        total = sum(int(ref.get("weight", 1)) for ref in backend_refs)
        destinations: list[WeightedDestination] = []
        errors: list[RouteError] = []
        invalid: list[RouteError] = []
        for k, ref in enumerate(backend_refs):
            at = f"spec.rules[{i}].backendRefs[{k}]"
            weight = int(ref.get("weight", 1))
            share = _share(weight, total)
            cluster: str | None
            try:
                cluster = self._service_cluster(route, ref, at)
            except RouteError as err:
                errors.append(err)
                cluster = None
                effect = (f"its {share} share gets HTTP 500" if weight
                          else "it has weight 0, so no request is affected")
                self.warn(f"HTTPRoute {ns}/{name}: backendRef {ref.get('name')} (rule {i}) "
                          f"{err.summary}; {effect}.")
            else:
                if weight and not self.clusters[cluster].endpoints:
                    self.warn(f"HTTPRoute {ns}/{name}: backendRef {ref.get('name')} (rule {i}) "
                              f"has no ready endpoints; its {share} share gets HTTP 503.")
            on_backend, backend_problems = apply_filters(ref.get("filters") or [], at,
                                                         FilterContext(), backend=True)
            invalid.extend(backend_problems)
            request_headers, response_headers = on_backend.request_headers, on_backend.response_headers
            if weight == 0:
                # BackendRef.weight: "If weight is set to 0, no traffic should be forwarded for
                # this entry." Its cluster (if resolved) still exists, so raising the weight later
                # does not have to wait for a new cluster to warm up.
                continue
            destinations.append(WeightedDestination(
                cluster=cluster, weight=weight, name=f"httproute/{ns}/{name}/rule/{i}/backend/{k}",
                request_headers=request_headers, response_headers=response_headers,
            ))
        return destinations, errors, invalid

    def _mirror(self, route: Obj, spec: Obj, at: str) -> Mirror:
        """A RequestMirror; an unresolvable backend drops the mirror (raised as ResolvedRefs)."""
        meta = route["metadata"]
        try:
            cluster = self._service_cluster(route, spec.get("backendRef") or {}, f"{at}.backendRef")
        except RouteError as err:
            self.warn(f"HTTPRoute {meta['namespace']}/{meta['name']}: request mirror to "
                      f"{(spec.get('backendRef') or {}).get('name')} ({at}) {err.summary}; "
                      "nothing is mirrored there.")
            raise
        if "percent" in spec:
            percent = float(spec["percent"])
        elif "fraction" in spec:
            fraction = spec["fraction"]
            percent = 100.0 * float(fraction["numerator"]) / float(fraction.get("denominator", 100))
        else:
            percent = 100.0
        return Mirror(cluster=cluster, percent=percent)

    def _service_cluster(self, route: Obj, ref: Obj, at: str) -> str:
        """Resolve a backend reference to a cluster name, registering the cluster."""
        route_ns = str(route["metadata"]["namespace"])
        group = str(ref.get("group", ""))
        kind = str(ref.get("kind", "Service"))
        name = str(ref.get("name"))
        ns = str(ref.get("namespace") or route_ns)
        if group != "" or kind != "Service":
            what = f"{group + '/' if group else ''}{kind}"
            raise RouteError("InvalidKind", "ResolvedRefs",
                             f"{at}: {what} is not a supported backend kind; "
                             'use a Service (group "", kind Service)',
                             summary=f"is of kind {what}, not a Service")
        if ns != route_ns and not self._granted(route_ns, ns, name):
            # ReferenceGrant is required for any cross-namespace backendRef (BackendRef.namespace).
            raise RouteError("RefNotPermitted", "ResolvedRefs",
                             f"{at}: Service {ns}/{name} is in another namespace and no "
                             f"ReferenceGrant in namespace {ns} allows HTTPRoutes from namespace "
                             f"{route_ns} to use it",
                             summary=f"is in namespace {ns}, and no ReferenceGrant there allows it")
        service = self.get("Service", ns, name)
        if service is None:
            raise RouteError("BackendNotFound", "ResolvedRefs",
                             f"{at}: Service {ns}/{name} not found", summary="not found")
        port = ref.get("port")
        if port is None:
            raise RouteError("BackendNotFound", "ResolvedRefs",
                             f"{at}.port: a port is required for Service {ns}/{name}",
                             summary="has no port")
        ports = (service.get("spec") or {}).get("ports") or []
        found = next((p for p in ports if p.get("port") == port), None)
        if found is None:
            have = ", ".join(str(p.get("port")) for p in ports) or "none"
            raise RouteError("BackendNotFound", "ResolvedRefs",
                             f"{at}.port: Service {ns}/{name} has no port {port} (it has {have})",
                             summary=f"names port {port}, which Service {ns}/{name} does not have")
        protocol = found.get("protocol", "TCP")
        if protocol != "TCP":
            raise RouteError("UnsupportedProtocol", "ResolvedRefs",
                             f"{at}.port: port {port} of Service {ns}/{name} is {protocol}; "
                             "HTTP needs TCP", summary=f"names a {protocol} port")
        cluster = f"service/{ns}/{name}/{port}"
        if self._recording is not None:
            self._recording.clusters.append(cluster)
        if cluster not in self.clusters:
            endpoints = self.snapshot.endpoints.get((ns, name), {}).get(int(port), ())
            self.clusters[cluster] = Cluster(
                name=cluster, endpoints=tuple(sorted(endpoints, key=lambda e: (e.host, e.port))))
        return cluster

    def _granted(self, from_ns: str, to_ns: str, service: str) -> bool:
        """Whether a ReferenceGrant in ``to_ns`` lets HTTPRoutes in ``from_ns`` use ``service``."""
        for grant in self.of_kind("ReferenceGrant"):
            if grant["metadata"].get("namespace") != to_ns:
                continue
            spec = grant.get("spec") or {}
            from_ok = any(f.get("group") == GATEWAY_GROUP and f.get("kind") == "HTTPRoute"
                          and f.get("namespace") == from_ns for f in spec.get("from") or [])
            to_ok = any(t.get("group", "") == "" and t.get("kind") == "Service"
                        and t.get("name") in (None, "", service) for t in spec.get("to") or [])
            if from_ok and to_ok:
                return True
        return False

    # -- IR assembly -----------------------------------------------------------------------
    def _listeners(self, cached: Mapping[str, tuple[VirtualHost, ...]] | None = None,
                   ) -> tuple[HTTPListener, ...]:
        out: list[HTTPListener] = []
        for (ns, name), state in sorted(self.gateways.items()):
            ports = sorted({x.port for x in state.listeners if x.programmed})
            for port in ports:
                address, bind_port = self.snapshot.bind[(ns, name, port)]
                ir_name = f"{ns}/{name}/{port}"
                vhosts = cached.get(ir_name, ()) if cached is not None else self._vhosts(ir_name)
                out.append(HTTPListener(name=ir_name, address=address, port=port,
                                        bind_port=bind_port, virtual_hosts=vhosts))
        return tuple(sorted(out, key=lambda x: x.name))

    def _vhosts(self, listener: str) -> tuple[VirtualHost, ...]:
        by_domain: dict[str, list[_Entry]] = {}
        for entry in self.entries.values():
            if entry.listener == listener:
                by_domain.setdefault(entry.domain, []).append(entry)
        vhosts = []
        for domain in sorted(by_domain):
            entries = sorted(by_domain[domain], key=lambda e: match_sort_key(e.match.ref))
            vhosts.append(VirtualHost(name=f"{listener}/{domain}", domains=(domain,),
                                      routes=tuple(_ir_route(e) for e in entries)))
        return tuple(vhosts)


# --------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------


def _ir_route(entry: _Entry) -> Route:
    rule, match = entry.rule, entry.match
    return Route(
        name=f"httproute/{entry.route_key}/rule/{rule.index}/match/{match.index}/{entry.domain}",
        action=rule.action,
        path=match.path,
        headers=match.headers,
        query=match.query,
        method=match.method,
        request_headers=rule.request_headers,
        response_headers=rule.response_headers,
        mirrors=rule.mirrors,
        rewrite=rule.rewrite,
        timeout_ms=rule.timeout_ms,
        backend_timeout_ms=rule.backend_timeout_ms,
        extensions=rule.extensions,
    )


def _isolated_from(listener: _Listener, domain: str, listeners: Iterable[_Listener]) -> bool:
    """Whether requests for ``domain`` belong to a more specific listener on the same port.

    Listener isolation (Gateway ``spec.listeners`` doc, "General Listener behavior"): with
    listeners for "foo.example.com" and "*.example.com", a request to foo.example.com "SHOULD
    only be routed using routes attached to the foo.example.com Listener". So a domain that a
    route reaches through a less specific listener is left out of that listener's share.
    """
    rival = max((specificity(x.hostname) for x in listeners
                 if x.port == listener.port and x.programmed
                 and (x.hostname is None or covers(x.hostname, domain))), default=(0, 0))
    return specificity(listener.hostname) < rival


def _namespaces_problem(allowed_routes: Obj, where: str) -> str | None:
    """Why a listener's ``allowedRoutes.namespaces`` cannot select anything, or None."""
    namespaces = allowed_routes.get("namespaces") or {}
    if namespaces.get("from") != "Selector":
        return None
    at = f"{where}.allowedRoutes.namespaces.selector"
    selector = namespaces.get("selector")
    if selector is None:
        return f"{at} is required when allowedRoutes.namespaces.from is Selector"
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        op, values = expr.get("operator"), expr.get("values") or []
        if op not in SELECTOR_OPERATORS:
            return (f"{at}.matchExpressions[{i}].operator: {op!r} is not one of "
                    f"{', '.join(SELECTOR_OPERATORS)}")
        if op in ("In", "NotIn") and not values:
            return f"{at}.matchExpressions[{i}].values: {op} needs at least one value"
        if op in ("Exists", "DoesNotExist") and values:
            return f"{at}.matchExpressions[{i}].values: {op} takes no values"
    return None


def _echo_parent_ref(pref: Obj) -> Obj:
    """The parentRef as the route gave it, with the CRD defaults for group and kind filled in."""
    out: Obj = {"group": pref.get("group", GATEWAY_GROUP), "kind": pref.get("kind", "Gateway")}
    for key in ("namespace", "name", "sectionName", "port"):
        if pref.get(key) is not None:
            out[key] = pref[key]
    return out


def _namespace_name(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return str(meta.get("namespace", "")), str(meta.get("name"))


def _had_ours(route: Obj) -> bool:
    """Whether the route's status holds entries this controller wrote."""
    parents = (route.get("status") or {}).get("parents") or []
    return any(p.get("controllerName") in CONTROLLER_NAMES for p in parents)


def _generation(obj: Obj) -> int | None:
    gen = obj.get("metadata", {}).get("generation")
    return int(gen) if gen is not None else None


def _share(weight: int, total: int) -> str:
    if total <= 0:
        return "0%"
    pct = 100.0 * weight / total
    return f"{pct:.0f}%" if pct == int(pct) else f"{pct:.1f}%"


def _unique(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        if item.lower() not in seen:
            seen.add(item.lower())
            out.append(item)
    return out


def _names(listeners: Iterable[_Listener]) -> str:
    return ", ".join(x.name for x in listeners)


def _address_problems(gateway: Obj, bound: list[str]) -> tuple[list[str], list[str]]:
    """The requested ``spec.addresses`` this gateway cannot honour: (unsupported, unusable).

    A type other than IPAddress is unsupported; an IPAddress with a value the lab has not
    bound is unusable; an IPAddress without a value asks for any address, and gets ours.
    """
    unsupported: list[str] = []
    unusable: list[str] = []
    for i, address in enumerate((gateway.get("spec") or {}).get("addresses") or []):
        kind = str(address.get("type") or "IPAddress")
        value = address.get("value")
        where = f"spec.addresses[{i}]"
        if kind != "IPAddress":
            unsupported.append(f"{where}.type: {kind} addresses are not supported")
        elif value and str(value) not in bound:
            unusable.append(f"{where}.value: {value} is not an address this lab can bind")
    return unsupported, unusable


def _address_type(address: str) -> str:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return "Hostname"
    return "IPAddress"

