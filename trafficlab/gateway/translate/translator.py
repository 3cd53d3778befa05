"""The entry point: :func:`translate` runs the stages over one snapshot; :class:`TranslateCache`
makes the next pass cost only what changed.

As Envoy Gateway's ``internal/gatewayapi/translator.go``: GatewayClasses and Gateways first
(:mod:`.listeners`), then every route of each registered kind (:mod:`.attachment`, which asks
the kind for its rules: HTTPRoute's are :mod:`.rules`, using :mod:`.backends`), then the IR:
one listener per programmed Gateway port, one virtual host per domain, routes in precedence
order (:mod:`trafficlab.gateway.precedence`).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trafficlab.controlplane.snapshot import ObjectKey, Snapshot
from trafficlab.gateway.ir import Cluster, HTTPListener, Route, VirtualHost, Xds
from trafficlab.gateway.translate.attachment import translate_route
from trafficlab.gateway.translate.context import EntryKey, Obj, Pass, Placed, Recorder, had_ours
from trafficlab.gateway.translate.kinds import RouteKind, route_kind_names, route_kinds
from trafficlab.gateway.translate.listeners import (
    GatewayState,
    accepted_classes,
    gateway_state,
    gateway_status,
)

__all__ = ["TranslateCache", "TranslateResult", "translate"]


@dataclass(frozen=True)
class TranslateResult:
    """What one translation produced.

    - ``ir``: everything Envoy needs; ``ir.version`` is the snapshot revision.
    - ``statuses``: the complete ``status`` block per object this controller owns
      (GatewayClasses, Gateways and routes of every registered kind), without transition
      times.
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


@dataclass(frozen=True)
class _RouteOutcome:
    """Everything translating one route contributed to a pass."""

    key: tuple[str, int]  # uid, generation
    # Whether our status entries were there, when that mattered (a route attached nowhere
    # clears them), else None.
    had_ours: bool | None
    object_key: ObjectKey
    route_key: str  # "<kind prefix>/namespace/name", as listeners count attached routes
    status: dict[str, Any] | None
    warnings: tuple[str, ...]
    attached: tuple[tuple[str, str, int], ...]  # (gateway namespace, name, listener index)
    clusters: tuple[Cluster, ...]
    # (entry key, IR route, precedence key); the entry key starts with listener and domain
    entries: tuple[tuple[EntryKey, Route, tuple[Any, ...]], ...]


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
        self._routes: dict[tuple[str, str, str], _RouteOutcome] = {}  # by kind, namespace, name
        # Route statuses in ObjectKey order, and route warnings (deduplicated, route order).
        self._statuses: dict[ObjectKey, dict[str, Any]] = {}
        self._warnings: tuple[str, ...] = ()
        self._clusters: dict[str, tuple[Cluster, int]] = {}  # name -> (cluster, routes using it)
        self._attached: dict[tuple[str, str, int], set[str]] = {}
        self._groups: dict[tuple[str, str], dict[EntryKey, tuple[tuple[Any, ...], Route]]] = {}
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
                del self._routes[_ident(old.object_key)]
            elif new is not None:
                self._routes[_ident(new.object_key)] = new
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


class _Translator:
    """One pass: the stages in order over a :class:`~.context.Pass`."""

    def __init__(self, snapshot: Snapshot, cache: TranslateCache | None = None) -> None:
        self.snapshot = snapshot
        self.cache = cache
        self.ctx = Pass(snapshot, presorted=cache is not None)
        self.gateways: dict[tuple[str, str], GatewayState] = {}

    def run(self) -> TranslateResult:
        ctx = self.ctx
        classes = accepted_classes(ctx)
        for gw in ctx.of_kind("Gateway"):
            if gw.get("spec", {}).get("gatewayClassName") in classes:
                meta = gw["metadata"]
                self.gateways[(str(meta["namespace"]), str(meta["name"]))] = gateway_state(ctx, gw)
        if self.cache is not None:
            return self._run_cached(self.cache)
        for kind in route_kinds():
            for route in ctx.of_kind(kind.kind):
                translate_route(ctx, self.gateways, kind, route)
        for state in self.gateways.values():
            ctx.statuses[ObjectKey.of(state.obj)] = gateway_status(state)
        ir = Xds(
            version=str(self.snapshot.revision),
            listeners=self._listeners(),
            clusters=tuple(ctx.clusters[name] for name in sorted(ctx.clusters)),
        )
        statuses = {key: ctx.statuses[key] for key in sorted(ctx.statuses)}
        return TranslateResult(ir=ir, statuses=statuses, warnings=tuple(ctx.warnings))

    # -- the cached pass -------------------------------------------------------------------
    def _run_cached(self, cache: TranslateCache) -> TranslateResult:
        ctx = self.ctx
        cache._begin(self._environment())
        changes: list[tuple[_RouteOutcome | None, _RouteOutcome | None]] = []
        present: set[tuple[str, str, str]] = set()
        for kind in route_kinds():
            for route in ctx.of_kind(kind.kind):
                meta = route["metadata"]
                ident = (kind.kind, str(meta["namespace"]), str(meta["name"]))
                present.add(ident)
                old = cache._routes.get(ident)
                key = (str(meta.get("uid")), int(meta.get("generation") or 0))
                if old is not None and old.key == key and (
                        old.had_ours is None or old.had_ours == had_ours(route)):
                    cache.hits += 1
                    continue
                cache.misses += 1
                changes.append((old, self._translate_recorded(kind, route, key)))
        for ident in [i for i in cache._routes if i not in present]:
            changes.append((cache._routes[ident], None))
        cache._update(changes)
        for state in self.gateways.values():
            for listener in state.listeners:
                listener.attached = cache._attached.get(
                    (listener.namespace, listener.gateway_name, listener.index), set())
        others = {ObjectKey.of(state.obj): gateway_status(state)
                  for state in self.gateways.values()}
        route_kind_set = set(route_kind_names())
        others.update((k, v) for k, v in ctx.statuses.items() if k.kind not in route_kind_set)
        statuses = {k: others[k] for k in sorted(others)}
        if statuses and cache._statuses and max(statuses) > next(iter(cache._statuses)):
            # A route kind that sorts before Gateway (GRPCRoute): one sort of everything.
            statuses = dict(sorted({**statuses, **cache._statuses}.items()))
        else:
            # ObjectKey order: Gateway < GatewayClass < HTTPRoute, so route statuses come last.
            statuses.update(cache._statuses)
        warned = set(ctx.warnings)
        warnings = (*ctx.warnings, *(w for w in cache._warnings if w not in warned))
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
        routes = route_kind_names()
        objects: list[object] = [routes]  # a kind registered or removed changes everything
        for kind in sorted(self.ctx.by_kind):
            if kind in routes:
                continue
            for obj in self.ctx.by_kind[kind]:
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

    def _translate_recorded(self, kind: RouteKind, route: Obj, key: tuple[str, int],
                            ) -> _RouteOutcome:
        """Translate ``route`` (of ``kind``) and return what it contributes to the pass."""
        ctx = self.ctx
        recorder = ctx.recording = Recorder()
        ctx.entries = {}
        try:
            translate_route(ctx, self.gateways, kind, route)
        finally:
            ctx.recording = None
        object_key = ObjectKey.of(route)
        meta = route["metadata"]
        if not (meta.get("uid") and meta.get("generation") is not None):
            key = ("", -1)  # no identity to recognise it by: translated on every pass
        return _RouteOutcome(
            key=key, had_ours=had_ours(route) if recorder.read_own_status else None,
            object_key=object_key, route_key=kind.key(str(meta["namespace"]), str(meta["name"])),
            status=ctx.statuses.pop(object_key, None), warnings=tuple(recorder.warnings),
            attached=tuple(recorder.attached),
            clusters=tuple(ctx.clusters[name] for name in dict.fromkeys(recorder.clusters)),
            entries=tuple((k, placed.route, placed.sort_key) for k, placed in ctx.entries.items()))

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
        by_domain: dict[str, list[Placed]] = {}
        for (on, domain, *_), placed in self.ctx.entries.items():
            if on == listener:
                by_domain.setdefault(domain, []).append(placed)
        vhosts = []
        for domain in sorted(by_domain):
            placed_routes = sorted(by_domain[domain], key=lambda p: p.sort_key)
            vhosts.append(VirtualHost(name=f"{listener}/{domain}", domains=(domain,),
                                      routes=tuple(p.route for p in placed_routes)))
        return tuple(vhosts)


def _ident(key: ObjectKey) -> tuple[str, str, str]:
    return (key.kind, key.namespace, key.name)
