"""Prometheus metrics of one Task API app, in a registry of its own.

A registry per app (not the global default) lets tests build several apps in one
process without "Duplicated timeseries" errors, and keeps a scrape to this app's
series only.

Example:
    >>> metrics = TaskApiMetrics(version="v2", pod="p0")
    >>> metrics.observe("GET", "/tasks", 200, 0.004)
    >>> b'taskapi_requests_total{method="GET"' in metrics.render()
    True
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

__all__ = ["DURATION_BUCKETS", "METRICS_CONTENT_TYPE", "UNMATCHED_ROUTE", "TaskApiMetrics"]

# Fine enough between 1 ms and 5 s that histogram_quantile() gives usable p50/p99
# for both a healthy version (~1-5 ms) and one with LATENCY_MS of a few hundred ms.
DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
    0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
)  # fmt: skip

# The route label of requests no route matched: one value for every unknown path,
# so a scan of random URLs cannot blow up the series count.
UNMATCHED_ROUTE = "unmatched"

# generate_latest() writes the classic text format; announce it as version 0.0.4,
# which every Prometheus release understands (the library's CONTENT_TYPE_LATEST
# now says 1.0.0, which Prometheus 2.x does not know).
METRICS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Any token is a valid HTTP method (RFC 9110 section 9.1); count unknown ones as one
# label value so the method label stays bounded like the route label.
_KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


_WARM_ROUTES = (("GET", "/"), ("GET", "/tasks"))


class TaskApiMetrics:
    """The counters, histogram and info gauge of one app.

    Series: ``taskapi_requests_total{version,method,route,status}``,
    ``taskapi_request_duration_seconds{version}`` and ``taskapi_info{version,pod}`` (= 1).
    """

    def __init__(self, *, version: str, pod: str) -> None:
        """Create the registry and its metrics for one ``version`` and ``pod``."""
        self.registry = CollectorRegistry(auto_describe=True)
        self._version = version
        self._requests = Counter(
            "taskapi_requests",
            "Requests answered, by route template and status (health and metrics excluded).",
            ("version", "method", "route", "status"),
            registry=self.registry,
        )
        self._duration = Histogram(
            "taskapi_request_duration_seconds",
            "Time from receiving a request to sending the last byte of its answer.",
            ("version",),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        ).labels(version)
        info = Gauge(
            "taskapi_info",
            "Always 1; labels say which version and pod this process is.",
            ("version", "pod"),
            registry=self.registry,
        )
        info.labels(version, pod).set(1)
        # labels() validates and takes a lock on every call; the label sets are few
        # (bounded by routes x methods x statuses), so keep the children.
        self._children: dict[tuple[str, str, int], Counter] = {}
        # Series that exist from the start read 0 before the first request, so rate() over
        # a short window sees the first burst too (Prometheus' advice for counters).
        for method, route in _WARM_ROUTES:
            for status in (200, 500):
                self._children[(method, route, status)] = self._requests.labels(
                    version, method, route, str(status))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and record how long it took."""
        if method not in _KNOWN_METHODS:
            method = "OTHER"
        key = (method, route, status)
        child = self._children.get(key)
        if child is None:
            child = self._requests.labels(self._version, method, route, str(status))
            self._children[key] = child
        child.inc()
        self._duration.observe(seconds)

    def render(self) -> bytes:
        """The registry in Prometheus text format (see `METRICS_CONTENT_TYPE`)."""
        return generate_latest(self.registry)
