"""backendRefs: Service and port resolution, ReferenceGrant, weights, request mirrors.

As Envoy Gateway's ``processDestination`` (``internal/gatewayapi/route.go``) with its
ReferenceGrant check: each backendRef of a rule becomes a weighted destination whose cluster
is ``service/<ns>/<name>/<port>``, or ``None`` (HTTP 500 for its share) when the reference
cannot be resolved; the reason is a :class:`~trafficlab.controlplane.status.RouteError` for
``ResolvedRefs``. Weight 0 means no traffic at all (the entry is left out).
"""

from __future__ import annotations

from trafficlab.controlplane.status import RouteError
from trafficlab.gateway.filters import FilterContext, apply_filters
from trafficlab.gateway.ir import Cluster, Mirror, WeightedDestination
from trafficlab.gateway.translate.context import Obj, Pass
from trafficlab.gateway.translate.kinds import RouteKind

__all__ = ["backend_destinations", "mirror", "service_cluster"]


def backend_destinations(ctx: Pass, kind: RouteKind, route: Obj, i: int, spec: Obj,
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
            cluster = service_cluster(ctx, kind, route, ref, at)
        except RouteError as err:
            errors.append(err)
            cluster = None
            effect = (f"its {share} share gets HTTP 500" if weight
                      else "it has weight 0, so no request is affected")
            ctx.warn(f"{kind.kind} {ns}/{name}: backendRef {ref.get('name')} (rule {i}) "
                     f"{err.summary}; {effect}.")
        else:
            if weight and not ctx.clusters[cluster].endpoints:
                ctx.warn(f"{kind.kind} {ns}/{name}: backendRef {ref.get('name')} (rule {i}) "
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
            cluster=cluster, weight=weight, name=f"{kind.key(ns, name)}/rule/{i}/backend/{k}",
            request_headers=request_headers, response_headers=response_headers,
        ))
    return destinations, errors, invalid


def mirror(ctx: Pass, kind: RouteKind, route: Obj, spec: Obj, at: str) -> Mirror:
    """A RequestMirror; an unresolvable backend drops the mirror (raised as ResolvedRefs)."""
    meta = route["metadata"]
    try:
        cluster = service_cluster(ctx, kind, route, spec.get("backendRef") or {},
                                  f"{at}.backendRef")
    except RouteError as err:
        ctx.warn(f"{kind.kind} {meta['namespace']}/{meta['name']}: request mirror to "
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


def service_cluster(ctx: Pass, kind: RouteKind, route: Obj, ref: Obj, at: str) -> str:
    """Resolve a backend reference to a cluster name, registering the cluster."""
    route_ns = str(route["metadata"]["namespace"])
    group = str(ref.get("group", ""))
    backend_kind = str(ref.get("kind", "Service"))
    name = str(ref.get("name"))
    ns = str(ref.get("namespace") or route_ns)
    if group != "" or backend_kind != "Service":
        what = f"{group + '/' if group else ''}{backend_kind}"
        raise RouteError("InvalidKind", "ResolvedRefs",
                         f"{at}: {what} is not a supported backend kind; "
                         'use a Service (group "", kind Service)',
                         summary=f"is of kind {what}, not a Service")
    if ns != route_ns and not _granted(ctx, kind, route_ns, ns, name):
        # ReferenceGrant is required for any cross-namespace backendRef (BackendRef.namespace).
        raise RouteError("RefNotPermitted", "ResolvedRefs",
                         f"{at}: Service {ns}/{name} is in another namespace and no "
                         f"ReferenceGrant in namespace {ns} allows {kind.kind}s from namespace "
                         f"{route_ns} to use it",
                         summary=f"is in namespace {ns}, and no ReferenceGrant there allows it")
    service = ctx.get("Service", ns, name)
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
    if ctx.recording is not None:
        ctx.recording.clusters.append(cluster)
    if cluster not in ctx.clusters:
        endpoints = ctx.snapshot.endpoints.get((ns, name), {}).get(int(port), ())
        ctx.clusters[cluster] = Cluster(
           name=cluster, endpoints=tuple(sorted(endpoints, key=lambda e: (e.host, e.port))))
    return cluster


def _granted(ctx: Pass, kind: RouteKind, from_ns: str, to_ns: str, service: str) -> bool:
    """Whether a ReferenceGrant in ``to_ns`` lets routes of ``kind`` in ``from_ns`` use ``service``."""
    for grant in ctx.of_kind("ReferenceGrant"):
        if grant["metadata"].get("namespace") != to_ns:
            continue
        spec = grant.get("spec") or {}
        from_ok = any(f.get("group") == kind.group and f.get("kind") == kind.kind
                      and f.get("namespace") == from_ns for f in spec.get("from") or [])
        to_ok = any(t.get("group", "") == "" and t.get("kind") == "Service"
                    and t.get("name") in (None, "", service) for t in spec.get("to") or [])
        if from_ok and to_ok:
            return True
    return False


def _share(weight: int, total: int) -> str:
    if total <= 0:
        return "0%"
    pct = 100.0 * weight / total
    return f"{pct:.0f}%" if pct == int(pct) else f"{pct:.1f}%"
