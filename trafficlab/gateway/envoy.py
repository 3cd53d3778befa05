"""Render the IR (``gateway/ir.py``) as Envoy v3 configuration: pure data in, plain dicts out.

No I/O, no clock, no process: ``proxy.py`` writes what this module returns. The layout is
filesystem xDS, one folder holding every file Envoy watches:

- ``lds.json``: all listeners; each listener's routes come from RDS.
- ``rds-<listener>.json``: one RouteConfiguration per listener, named like the listener, so a
  weight change rewrites one small file and leaves listeners (and their connections) alone.
- ``cds.json``: all clusters; each is an EDS cluster.
- ``eds-<cluster>.json``: the ClusterLoadAssignment of one cluster, so a pod coming or going
  rewrites one file and no cluster is rebuilt.

The bootstrap adds one static listener on 127.0.0.1 whose only route answers 500, and a static
cluster pointing at it: a weighted destination without a resolved backend is sent there, which
is how exactly its share of requests gets 500 (Gateway API v1 ``HTTPBackendRef``: "requests
that would have been sent to that backend MUST receive a 500").

Example::

    >>> from trafficlab.gateway import ir
    >>> cfg = render(ir.Xds(version="7", clusters=(ir.Cluster("service/default/v1/80"),)))
    >>> sorted(cfg.clusters), cfg.version
    (['service/default/v1/80'], '7')
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath, PurePosixPath
from typing import Any

from trafficlab.gateway.ir import (
    Cluster,
    DirectResponse,
    Forward,
    HeaderMods,
    HTTPListener,
    IRError,
    PathMatch,
    Redirect,
    Route,
    RouteExtension,
    URLRewrite,
    VirtualHost,
    Xds,
)

__all__ = [
    "ADMIN_CLUSTER",
    "CDS_FILE",
    "DEFAULT_XDS_DIR",
    "INTERNAL_500_CLUSTER",
    "INTERNAL_500_LISTENER",
    "LDS_FILE",
    "STATS_LISTENER",
    "TYPE_CLUSTER",
    "TYPE_ENDPOINTS",
    "TYPE_LISTENER",
    "TYPE_ROUTES",
    "EnvoyConfig",
    "RenderCache",
    "RouteRenderer",
    "bootstrap",
    "canonical_json",
    "discovery_response",
    "eds_file",
    "rds_file",
    "register_route_renderer",
    "render",
    "stat_prefix",
    "unregister_route_renderer",
    "validation_bootstrap",
]

Json = dict[str, Any]

TYPE_LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
TYPE_ROUTES = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
TYPE_CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
TYPE_ENDPOINTS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
_TYPE_HCM = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    "HttpConnectionManager"
)
_TYPE_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_TYPE_HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_TYPE_DOWNSTREAM_CONNECTIONS = (
    "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3."
    "DownstreamConnectionsConfig"
)

LDS_FILE = "lds.json"
CDS_FILE = "cds.json"
#: Placeholder folder used when no real one is given (golden files, dumps).
DEFAULT_XDS_DIR = PurePosixPath("/trafficlab/xds")

#: Static cluster/listener answering 500 for unresolved backends (see module docstring).
INTERNAL_500_CLUSTER = "trafficlab/unresolved-backend"
INTERNAL_500_LISTENER = "trafficlab/unresolved-backend"
# The read-only stats door to the admin API (see _stats_listener).
STATS_LISTENER = "trafficlab/stats"
ADMIN_CLUSTER = "trafficlab/envoy-admin"

# Keep-alive towards clients: generous, so load generators reuse connections (Envoy's
# default is 1 h; stated here so it does not silently change).
_DOWNSTREAM_IDLE_TIMEOUT = "3600s"
# Towards upstreams Envoy must close an idle connection *before* the server does: uvicorn
# (the Task API) drops idle keep-alive connections after 5 s, and reusing a connection the
# server is closing fails the request with a 503 (upstream reset). 4 s stays below that.
_UPSTREAM_IDLE_TIMEOUT = "4s"
_CONNECT_TIMEOUT = "1s"
# Load tests open many connections; Envoy's defaults (1024) would trip circuit breakers.
_CIRCUIT_LIMIT = 100_000
_MAX_DOWNSTREAM_CONNECTIONS = 50_000

_WELL_KNOWN_PORTS = {"http": 80, "https": 443}
_REDIRECT_CODES = {
    301: "MOVED_PERMANENTLY",
    302: "FOUND",
    303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT",
    308: "PERMANENT_REDIRECT",
}


@dataclass(frozen=True)
class EnvoyConfig:
    """Envoy resources for one IR version, keyed by IR name, in IR order.

    ``route_configs`` is keyed by listener name, ``endpoints`` by cluster name. Every dict is
    a complete v3 resource with its ``@type``, ready to go into a DiscoveryResponse.
    """

    version: str
    listeners: dict[str, Json] = field(default_factory=dict)
    route_configs: dict[str, Json] = field(default_factory=dict)
    clusters: dict[str, Json] = field(default_factory=dict)
    endpoints: dict[str, Json] = field(default_factory=dict)


def _file_stem(kind: str, name: str) -> str:
    # IR names contain "/" (and maybe "."), so they cannot be file names as they are. Keep a
    # readable form and add a short hash so two names that sanitize alike never collide.
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.")[:80]
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{kind}-{readable}-{digest}"


def stat_prefix(name: str) -> str:
    """The statistics prefix for an IR name.

    Envoy splits statistic names on "." to extract tags (``http.<prefix>.downstream_rq_2xx``),
    and Gateway names may contain dots, so they become "_". "/" is kept: it is readable.
    """
    return name.replace(".", "_")


def rds_file(listener: str) -> str:
    """File name (within the xDS folder) of the route configuration of ``listener``."""
    return _file_stem("rds", listener) + ".json"


def eds_file(cluster: str) -> str:
    """File name (within the xDS folder) of the endpoints of ``cluster``."""
    return _file_stem("eds", cluster) + ".json"


def discovery_response(version: str, resources: list[Json]) -> Json:
    """The document a filesystem subscription reads: a v3 DiscoveryResponse."""
    return {"version_info": version, "resources": resources}


def _file_source(path: PurePath) -> Json:
    # Without ``watched_directory`` Envoy watches the file's folder for a move onto this
    # path: only renames trigger a reload, so a half-written file is never read
    # (envoy.config.core.v3.PathConfigSource).
    return {"path_config_source": {"path": str(path)}, "resource_api_version": "V3"}


def _socket(address: str, port: int) -> Json:
    return {"socket_address": {"address": address, "port_value": port}}


def _duration_ms(ms: int) -> str:
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms / 1000:.3f}s"


class RenderCache:
    """Rendered virtual hosts (and their JSON) kept from one :func:`render` to the next.

    Keyed by the identity of the IR ``VirtualHost``: the translator hands back the very same
    object for a virtual host whose routes did not change, so with thousands of hosts a
    one-route change renders and serialises one host. The rendered dicts are shared between
    configurations and must not be mutated.
    """

    def __init__(self) -> None:
        # id(VirtualHost) -> (the VirtualHost, kept alive so its id is not reused; its dict)
        self._vhosts: dict[int, tuple[VirtualHost, Json]] = {}
        # id(rendered dict) -> (the dict, its canonical JSON)
        self._json: dict[int, tuple[Json, str]] = {}
        # The clusters the cached hosts were validated against.
        self._clusters: tuple[str, ...] | None = None

    def _rendered(self, vhost: VirtualHost) -> bool:
        known = self._vhosts.get(id(vhost))
        return known is not None and known[0] is vhost

    def _virtual_host(self, vhost: VirtualHost, fresh: dict[int, tuple[VirtualHost, Json]]) -> Json:
        known = self._vhosts.get(id(vhost))
        if known is None or known[0] is not vhost:
            known = (vhost, _virtual_host(vhost))
        fresh[id(vhost)] = known  # the same tuple: no new objects for the collector
        return known[1]

    def _replace(self, fresh: dict[int, tuple[VirtualHost, Json]]) -> None:
        self._vhosts = fresh
        live = {id(rendered) for _, rendered in fresh.values()}
        self._json = {k: v for k, v in self._json.items() if k in live}

    def _dumps(self, rendered: Json) -> str:
        known = self._json.get(id(rendered))
        if known is not None and known[0] is rendered:
            return known[1]
        text = _compact(rendered)
        self._json[id(rendered)] = (rendered, text)
        return text


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def canonical_json(value: Any, cache: RenderCache | None = None) -> str:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"))``, reusing cached hosts.

    ``value`` is a resource or a list of resources as :func:`render` made them; the virtual
    hosts of route configurations rendered through ``cache`` are serialised once and their
    text reused, so a RouteConfiguration of thousands of hosts costs a join, not a dump.
    """
    if cache is None:
        return _compact(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(item, cache) for item in value) + "]"
    if isinstance(value, dict) and isinstance(value.get("virtual_hosts"), list):
        parts = []
        for key in sorted(value):
            if key == "virtual_hosts":
                text = "[" + ",".join(cache._dumps(v) for v in value[key]) + "]"
            else:
                text = _compact(value[key])
            parts.append(json.dumps(key) + ":" + text)
        return "{" + ",".join(parts) + "}"
    return _compact(value)


def render(ir: Xds, *, xds_dir: str | PurePath = DEFAULT_XDS_DIR,
           cache: RenderCache | None = None) -> EnvoyConfig:
    """Render ``ir`` as Envoy resources whose RDS/EDS references point into ``xds_dir``.

    With a ``cache`` kept between calls, virtual hosts rendered before (the same IR objects)
    are reused; the result is equal to a render without it.

    Raises ``IRError`` when the IR is inconsistent or cannot be expressed (for instance an
    endpoint that is not an IP address, or a redirect status Envoy does not know).
    """
    if cache is not None and cache._clusters == tuple(c.name for c in ir.clusters):
        # Hosts rendered last time passed against these very clusters: check the new ones.
        ir.validate(checked=cache._rendered)
    else:
        ir.validate()
    folder = PurePath(xds_dir)
    cfg = EnvoyConfig(version=ir.version)
    fresh: dict[int, tuple[VirtualHost, Json]] = {}
    for listener in ir.listeners:
        cfg.listeners[listener.name] = _listener(listener, folder)
        cfg.route_configs[listener.name] = _route_config(listener, cache, fresh)
    if cache is not None:
        cache._replace(fresh)
        cache._clusters = tuple(c.name for c in ir.clusters)
    for cluster in ir.clusters:
        cfg.clusters[cluster.name] = _cluster(cluster.name, folder)
        cfg.endpoints[cluster.name] = _load_assignment(cluster)
    return cfg


# -- listeners ------------------------------------------------------------------------------


def _http_connection_manager(stat_prefix: str, routes: Json) -> Json:
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": _TYPE_HCM,
            "stat_prefix": stat_prefix,
            "codec_type": "AUTO",
            **routes,
            "common_http_protocol_options": {"idle_timeout": _DOWNSTREAM_IDLE_TIMEOUT},
            "http_filters": [
                {"name": "envoy.filters.http.router", "typed_config": {"@type": _TYPE_ROUTER}}
            ],
        },
    }


def _listener(listener: HTTPListener, folder: PurePath) -> Json:
    rds = {
        "rds": {
            "route_config_name": listener.name,
            "config_source": _file_source(folder / rds_file(listener.name)),
        }
    }
    return {
        "@type": TYPE_LISTENER,
        "name": listener.name,
        "stat_prefix": stat_prefix(listener.name),
        "address": _socket(listener.address, listener.bind_port),
        # With SO_REUSEPORT a second lab binding the same port would silently share its
        # traffic; without it the bind fails and the LDS update is rejected, loudly.
        "enable_reuse_port": False,
        "filter_chains": [
            {"filters": [_http_connection_manager(stat_prefix(listener.name), rds)]}
        ],
    }


# -- routes ---------------------------------------------------------------------------------


def _route_config(listener: HTTPListener, cache: RenderCache | None = None,
                  fresh: dict[int, tuple[VirtualHost, Json]] | None = None) -> Json:
    if cache is not None and fresh is not None:
        vhosts = [cache._virtual_host(vh, fresh) for vh in listener.virtual_hosts]
    else:
        vhosts = [_virtual_host(vh) for vh in listener.virtual_hosts]
    return {
        "@type": TYPE_ROUTES,
        "name": listener.name,
        # Gateway API hostnames never carry a port, but clients send "Host: name:port".
        # Matching without the port keeps the Host header (and redirects) intact, unlike
        # strip_any_host_port.
        "ignore_port_in_host_matching": True,
        "virtual_hosts": vhosts,
    }


def _virtual_host(vhost: VirtualHost) -> Json:
    return {
        "name": vhost.name,
        "domains": list(vhost.domains),
        "routes": [_route(route) for route in vhost.routes],
    }


def _route(route: Route) -> Json:
    out: Json = {"name": route.name, "match": _match(route)}
    action = route.action
    if isinstance(action, Forward):
        out["route"] = _forward(route, action)
    elif isinstance(action, DirectResponse):
        direct: Json = {"status": action.status}
        if action.body:
            direct["body"] = {"inline_string": action.body}
        out["direct_response"] = direct
    elif isinstance(action, Redirect):
        out["redirect"] = _redirect(route, action)
    else:  # pragma: no cover - RouteAction is a closed union
        raise IRError(f"route {route.name}: unknown action {action!r}")
    out.update(_header_mods(route.request_headers, "request"))
    out.update(_header_mods(route.response_headers, "response"))
    for extension in route.extensions:
        renderer = _ROUTE_RENDERERS.get(extension.type)
        if renderer is None:
            raise IRError(f"route {route.name}: no Envoy renderer for the {extension.type} "
                          "filter (gateway/envoy.py: register_route_renderer)")
        renderer(extension, out)
    return out


#: Renders one :class:`RouteExtension` into its Envoy route (the JSON being built).
RouteRenderer = Callable[[RouteExtension, Json], None]
_ROUTE_RENDERERS: dict[str, RouteRenderer] = {}


def register_route_renderer(type_name: str) -> Callable[[RouteRenderer], RouteRenderer]:
    """Register how filter ``type_name``'s IR extension becomes Envoy route keys.

    The other half of :func:`trafficlab.gateway.filters.register_filter`.
    """

    def register(renderer: RouteRenderer) -> RouteRenderer:
        _ROUTE_RENDERERS[type_name] = renderer
        return renderer

    return register


def unregister_route_renderer(type_name: str) -> None:
    """Remove a renderer (tests that add a filter of their own clean up with this)."""
    _ROUTE_RENDERERS.pop(type_name, None)


def _string_match(kind: str, value: str) -> Json:
    return {"safe_regex": {"regex": value}} if kind == "regex" else {"exact": value}


def _path_match(path: PathMatch) -> Json:
    if path.kind == "exact":
        return {"path": path.value}
    if path.kind == "regex":
        return {"safe_regex": {"regex": path.value}}
    # PathPrefix matches whole segments ("/foo" matches "/foo" and "/foo/bar", never
    # "/foobar"), and a trailing "/" in the value is ignored (HTTPPathMatch, GEP-1364-era
    # spec text). path_separated_prefix means exactly that but rejects a trailing "/";
    # "/" itself matches everything, which is a plain prefix.
    trimmed = path.value.rstrip("/")
    return {"path_separated_prefix": trimmed} if trimmed else {"prefix": "/"}


def _match(route: Route) -> Json:
    match = _path_match(route.path)
    headers = [
        {"name": h.name.lower(), "string_match": _string_match(h.kind, h.value)}
        for h in route.headers
    ]
    if route.method is not None:
        headers.append({"name": ":method", "string_match": {"exact": route.method}})
    if headers:
        match["headers"] = headers
    if route.query:
        match["query_parameters"] = [
            {"name": q.name, "string_match": _string_match(q.kind, q.value)} for q in route.query
        ]
    return match


def _literal(value: str) -> str:
    # Header values Envoy adds are substitution formats: "%" starts a command. Gateway
    # API values are literal, so escape it.
    return value.replace("%", "%%")


def _header_mods(mods: HeaderMods, direction: str) -> Json:
    out: Json = {}
    # Set replaces, Add appends (HTTPHeaderFilter); Envoy's append_action says the same.
    adds = [
        {
            "header": {"key": name.lower(), "value": _literal(value)},
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
        }
        for name, value in mods.set
    ] + [
        {
            "header": {"key": name.lower(), "value": _literal(value)},
            "append_action": "APPEND_IF_EXISTS_OR_ADD",
        }
        for name, value in mods.add
    ]
    if adds:
        out[f"{direction}_headers_to_add"] = adds
    if mods.remove:
        out[f"{direction}_headers_to_remove"] = [name.lower() for name in mods.remove]
    return out


def _forward(route: Route, action: Forward) -> Json:
    dests = action.destinations
    out: Json = {}
    only = dests[0]
    if len(dests) == 1 and only.request_headers.empty() and only.response_headers.empty():
        out["cluster"] = only.cluster if only.cluster is not None else INTERNAL_500_CLUSTER
    else:
        # total_weight is deprecated: Envoy sums the weights itself.
        out["weighted_clusters"] = {
            "clusters": [
                {
                    "name": d.cluster if d.cluster is not None else INTERNAL_500_CLUSTER,
                    "weight": d.weight,
                    **_header_mods(d.request_headers, "request"),
                    **_header_mods(d.response_headers, "response"),
                }
                for d in dests
            ]
        }
    out.update(_timeouts(route))
    if route.rewrite is not None:
        out.update(_rewrite(route, route.rewrite))
    if route.mirrors:
        out["request_mirror_policies"] = [_mirror(m.cluster, m.percent) for m in route.mirrors]
    return out


def _timeouts(route: Route) -> Json:
    # HTTPRouteTimeouts: ``request`` bounds the whole exchange, ``backendRequest`` one
    # request to a backend. Unset is implementation-specific; Envoy's own default (15 s)
    # would cut slow canaries short and hide them, so unset means no timeout ("0s").
    if route.timeout_ms is not None:
        out: Json = {"timeout": _duration_ms(route.timeout_ms)}
        if route.backend_timeout_ms:
            # No retry_on: the policy only bounds the single try, it never retries.
            out["retry_policy"] = {
                "num_retries": 0,
                "per_try_timeout": _duration_ms(route.backend_timeout_ms),
            }
        return out
    if route.backend_timeout_ms is not None:
        return {"timeout": _duration_ms(route.backend_timeout_ms)}
    return {"timeout": "0s"}


def _mirror(cluster: str, percent: float) -> Json:
    numerator = max(0, min(1_000_000, round(percent * 10_000)))
    policy: Json = {"cluster": cluster}
    if numerator < 1_000_000:
        # Per-million keeps fractional percents such as 0.5 % exact.
        policy["runtime_fraction"] = {
            "default_value": {"numerator": numerator, "denominator": "MILLION"}
        }
    return policy


def _re2_substitution(value: str) -> str:
    # In RE2 substitutions "\" introduces a capture group reference.
    return value.replace("\\", "\\\\")


def _prefix_replacement(route: Route, replacement: str) -> Json:
    """Envoy fields for ReplacePrefixMatch (shared by URLRewrite and RequestRedirect).

    The spec's table (HTTPPathModifier.ReplacePrefixMatch) treats prefix and replacement
    as whole segments: "/foo" -> "/xyz" turns "/foo/bar" into "/xyz/bar", and an empty or
    "/" replacement turns "/foo/bar" into "/bar". Envoy's prefix_rewrite replaces
    characters, so "/" would give "//bar" (envoyproxy/envoy#26055): a regex is used there.
    """
    path = route.path
    if path.kind != "prefix":
        # CEL forbids ReplacePrefixMatch without a PathPrefix match; Envoy then swaps the
        # whole matched path, the closest meaning.
        return {"prefix_rewrite": replacement}
    prefix = path.value.rstrip("/")  # the match ignores a trailing "/", see _path_match
    new = replacement.rstrip("/")
    if not new:
        pattern = "^" + re.escape(prefix) + "/*"
        return {"regex_rewrite": {"pattern": {"regex": pattern}, "substitution": "/"}}
    if not prefix:
        # Match "/" (everything): keep a "/" between the new prefix and the old path.
        return {
            "regex_rewrite": {
                "pattern": {"regex": "^/"},
                "substitution": _re2_substitution(new) + "/",
            }
        }
    return {"prefix_rewrite": new}


def _rewrite(route: Route, rewrite: URLRewrite) -> Json:
    out: Json = {}
    if rewrite.hostname is not None:
        out["host_rewrite_literal"] = rewrite.hostname
    if rewrite.path_kind == "full" and rewrite.path_value is not None:
        # regex_rewrite sees the path without its query string, which is kept.
        out["regex_rewrite"] = {
            "pattern": {"regex": "^/.*$"},
            "substitution": _re2_substitution(rewrite.path_value),
        }
    elif rewrite.path_kind == "prefix" and rewrite.path_value is not None:
        out.update(_prefix_replacement(route, rewrite.path_value))
    return out


def _redirect(route: Route, redirect: Redirect) -> Json:
    code = _REDIRECT_CODES.get(redirect.status)
    if code is None:
        raise IRError(f"route {route.name}: redirect status {redirect.status} is not supported")
    out: Json = {"response_code": code}
    if redirect.scheme is not None:
        out["scheme_redirect"] = redirect.scheme
    if redirect.hostname is not None:
        out["host_redirect"] = redirect.hostname
    if redirect.port is not None and not (
        redirect.hostname is not None
        and redirect.port == _WELL_KNOWN_PORTS.get(redirect.scheme or "http")
    ):
        # The spec says a Location SHOULD NOT carry the scheme's well-known port, but Envoy
        # writes any port_redirect out. With host_redirect set Envoy drops the request's port,
        # so leaving port_redirect out gives "https://host/". Without a hostname the request's
        # port would survive, so the port stays explicit (":443", the same URL).
        out["port_redirect"] = redirect.port
    if redirect.path_kind == "full" and redirect.path_value is not None:
        out["path_redirect"] = redirect.path_value
    elif redirect.path_kind == "prefix" and redirect.path_value is not None:
        out.update(_prefix_replacement(route, redirect.path_value))
    return out


# -- clusters -------------------------------------------------------------------------------


def _upstream_cluster_options() -> Json:
    return {
        "connect_timeout": _CONNECT_TIMEOUT,
        "circuit_breakers": {
            "thresholds": [
                {
                    "max_connections": _CIRCUIT_LIMIT,
                    "max_pending_requests": _CIRCUIT_LIMIT,
                    "max_requests": _CIRCUIT_LIMIT,
                }
            ]
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": _TYPE_HTTP_OPTIONS,
                "common_http_protocol_options": {"idle_timeout": _UPSTREAM_IDLE_TIMEOUT},
                "explicit_http_config": {"http_protocol_options": {}},
            }
        },
    }


def _cluster(name: str, folder: PurePath) -> Json:
    # No health checking: endpoints are the ready pods, as kube-proxy would see them.
    return {
        "@type": TYPE_CLUSTER,
        "name": name,
        "type": "EDS",
        "eds_cluster_config": {"eds_config": _file_source(folder / eds_file(name))},
        **_upstream_cluster_options(),
    }


def _endpoint_address(cluster: str, host: str) -> str:
    # EDS endpoints are never resolved by DNS: they must be IP literals.
    if host == "localhost":
        return "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise IRError(f"cluster {cluster}: endpoint host {host!r} is not an IP address") from None
    return host


def _lb_endpoints(cluster: str, endpoints: list[tuple[str, int]]) -> list[Json]:
    return [
        {"endpoint": {"address": _socket(_endpoint_address(cluster, host), port)}}
        for host, port in endpoints
    ]


def _load_assignment(cluster: Cluster) -> Json:
    # An empty assignment is valid: the cluster exists, has no hosts, and Envoy answers 503.
    eps = [(ep.host, ep.port) for ep in cluster.endpoints]
    return {
        "@type": TYPE_ENDPOINTS,
        "cluster_name": cluster.name,
        "endpoints": [{"lb_endpoints": _lb_endpoints(cluster.name, eps)}] if eps else [],
    }


# -- bootstrap ------------------------------------------------------------------------------


def _static_listener(name: str, port: int, routes: list[Json]) -> Json:
    """A bootstrap listener on 127.0.0.1:``port`` with one catch-all virtual host."""
    route_config = {"route_config": {"name": name, "virtual_hosts": [
        {"name": name, "domains": ["*"], "routes": routes}]}}
    return {
        "name": name,
        "stat_prefix": name,
        "address": _socket("127.0.0.1", port),
        "enable_reuse_port": False,
        "filter_chains": [{"filters": [_http_connection_manager(name, route_config)]}],
    }


def _internal_500(internal_port: int) -> tuple[Json, Json]:
    listener = _static_listener(INTERNAL_500_LISTENER, internal_port, [
        {"match": {"prefix": "/"}, "direct_response": {"status": 500}}])
    hosts = _lb_endpoints(INTERNAL_500_CLUSTER, [("127.0.0.1", internal_port)])
    cluster = {
        "name": INTERNAL_500_CLUSTER,
        "type": "STATIC",
        "load_assignment": {
            "cluster_name": INTERNAL_500_CLUSTER,
            "endpoints": [{"lb_endpoints": hosts}],
        },
        **_upstream_cluster_options(),
    }
    return listener, cluster


def _stats_listener(stats_port: int, admin_socket: str) -> tuple[Json, Json]:
    """A listener that serves Envoy's Prometheus stats and nothing else of the admin API.

    The admin API can stop Envoy (``/quitquitquit``) or rewrite its state, so it lives on
    an owner-only Unix socket; Prometheus, like any HTTP scraper, gets this read-only door
    (the split Envoy Gateway makes with its proxy stats listener).
    """
    listener = _static_listener(STATS_LISTENER, stats_port, [
        {"match": {"path": "/stats/prometheus",
                   "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
         "route": {"cluster": ADMIN_CLUSTER}},
        {"match": {"prefix": "/"}, "direct_response": {"status": 404}},
    ])
    cluster = {
        "name": ADMIN_CLUSTER,
        "type": "STATIC",
        "load_assignment": {
            "cluster_name": ADMIN_CLUSTER,
            "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"pipe": {"path": admin_socket}}}}]}],
        },
    }
    return listener, cluster


def bootstrap(
    admin_socket: str | PurePath,
    xds_dir: str | PurePath,
    *,
    internal_port: int,
    stats_port: int | None = None,
    node_id: str = "trafficlab",
) -> Json:
    """The bootstrap: admin on the Unix socket ``admin_socket`` (mode 0600), LDS and CDS from
    files in ``xds_dir``, the static 500 listener on 127.0.0.1:``internal_port`` and, given
    ``stats_port``, the read-only stats listener on 127.0.0.1:``stats_port``."""
    folder = PurePath(xds_dir)
    listener, cluster = _internal_500(internal_port)
    listeners, clusters = [listener], [cluster]
    if stats_port is not None:
        stats_listener, admin_cluster = _stats_listener(stats_port, str(admin_socket))
        listeners.append(stats_listener)
        clusters.append(admin_cluster)
    return {
        "node": {"id": node_id, "cluster": "trafficlab"},
        "admin": {"address": {"pipe": {"path": str(admin_socket), "mode": 0o600}}},
        "dynamic_resources": {
            "lds_config": _file_source(folder / LDS_FILE),
            "cds_config": _file_source(folder / CDS_FILE),
        },
        "static_resources": {"listeners": listeners, "clusters": clusters},
        # A connection limit is what Envoy asks for at startup; without one it logs a
        # warning that would bury the messages we show users.
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": _TYPE_DOWNSTREAM_CONNECTIONS,
                        "max_active_downstream_connections": _MAX_DOWNSTREAM_CONNECTIONS,
                    },
                }
            ]
        },
    }


def _untyped(resource: Json) -> Json:
    # Inlined messages are not Any: the "@type" key would be an unknown field there.
    return {k: v for k, v in copy.deepcopy(resource).items() if k != "@type"}


def validation_bootstrap(cfg: EnvoyConfig, *, internal_port: int = 10_500) -> Json:
    """A self-contained bootstrap with ``cfg`` inlined as static resources.

    Route configurations replace RDS and load assignments replace EDS, so
    ``envoy --mode validate -c`` checks every rendered resource without reading the xDS
    folder or opening a socket.
    """
    boot = bootstrap(PurePath(DEFAULT_XDS_DIR) / "admin.sock", DEFAULT_XDS_DIR,
                     internal_port=internal_port)
    del boot["dynamic_resources"]
    static = boot["static_resources"]
    for name, resource in cfg.listeners.items():
        listener = _untyped(resource)
        for chain in listener["filter_chains"]:
            for flt in chain["filters"]:
                hcm = flt["typed_config"]
                if "rds" in hcm:
                    del hcm["rds"]
                    hcm["route_config"] = _untyped(cfg.route_configs[name])
        static["listeners"].append(listener)
    for name, resource in cfg.clusters.items():
        cluster = _untyped(resource)
        del cluster["eds_cluster_config"]
        cluster["type"] = "STATIC"
        cluster["load_assignment"] = _untyped(cfg.endpoints[name])
        static["clusters"].append(cluster)
    return boot
