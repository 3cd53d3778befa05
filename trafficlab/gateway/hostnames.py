"""Hostnames: which domains a route serves on a listener, and which listener is more specific.

Pure functions over the hostname rules of the Gateway API (HTTPRoute ``spec.hostnames``,
Gateway listener isolation).

>>> intersect("*.example.com", ["foo.example.com", "other.org"])
['foo.example.com']
"""

from __future__ import annotations

__all__ = ["covers", "intersect", "specificity"]


def intersect(listener_host: str | None, route_hosts: list[str]) -> list[str]:
    """Domains a route serves on a listener (HTTPRoute ``spec.hostnames`` doc), sorted.

    Without hostnames on either side everything matches ("*"). With both, a route hostname
    counts if it equals the listener's or one covers the other; the more specific one is used
    ("*.example.com" on the listener and "foo.example.com" on the route give "foo.example.com").
    Route hostnames that match nothing are ignored, as the spec requires.
    """
    if not route_hosts:
        return [listener_host or "*"]
    if not listener_host:
        return sorted(set(route_hosts))
    out = set()
    for host in route_hosts:
        if covers(listener_host, host):
            out.add(host)
        elif covers(host, listener_host):
            out.add(listener_host)
    return sorted(out)


def specificity(hostname: str | None) -> tuple[int, int]:
    """Exact hostnames first, then wildcards with more labels, then no hostname at all."""
    if hostname is None:
        return (0, 0)
    if hostname.startswith("*."):
        return (1, hostname.count("."))
    return (2, 0)


def covers(general: str, specific: str) -> bool:
    """Whether hostname ``general`` matches every name ``specific`` does.

    "*.example.com" matches "foo.example.com" and "a.b.example.com" (one or more labels),
    never "example.com" itself.
    """
    return general == specific or (general.startswith("*.") and specific.endswith(general[1:]))
