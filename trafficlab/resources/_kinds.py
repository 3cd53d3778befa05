"""The kinds the lab accepts and the names the CLI knows them by (kubectl's RESTMapper).

``trafficlab get svc``, ``get deployments.apps``, ``get httproutes.gateway.networking.k8s.io``
and ``get HTTPRoute`` all resolve through :func:`resolve_kind`, the way kubectl matches a
resource argument against kind, singular, plural and short names, optionally followed by
``.group`` or ``.version.group``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._errors import NotFoundError

__all__ = ["KINDS", "KindInfo", "resolve_kind"]

GATEWAY_GROUP = "gateway.networking.k8s.io"


@dataclass(frozen=True)
class KindInfo:
    """What the lab knows about one kind.

    ``versions`` lists the accepted versions, preferred first; ``short_names`` holds every
    lowercase spelling the CLI accepts besides the kind itself: singular, plural and the
    kubectl short names (``svc``, ``deploy``, ``ns``, ``gtw``, ``gc``, ``refgrant``).

    >>> KINDS["Service"].resource, KINDS["HTTPRoute"].qualified_singular
    ('services', 'httproute.gateway.networking.k8s.io')
    """

    kind: str
    group: str
    versions: tuple[str, ...]
    plural: str
    namespaced: bool
    short_names: tuple[str, ...]

    @property
    def singular(self) -> str:
        """The lowercase singular (``httproute``)."""
        return self.kind.lower()

    @property
    def api_versions(self) -> tuple[str, ...]:
        """Accepted ``apiVersion`` values (``apps/v1``; ``v1`` for the core group)."""
        return tuple(f"{self.group}/{v}" if self.group else v for v in self.versions)

    @property
    def resource(self) -> str:
        """Plural with group, as in kubectl's NotFound message (``httproutes.gateway...``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_singular(self) -> str:
        """Singular with group, as kubectl prints ``deployment.apps/web configured``."""
        return f"{self.singular}.{self.group}" if self.group else self.singular


def _kind(kind: str, group: str, versions: tuple[str, ...], plural: str, namespaced: bool,
          short: tuple[str, ...] = ()) -> KindInfo:
    return KindInfo(kind, group, versions, plural, namespaced, (kind.lower(), plural, *short))


KINDS: dict[str, KindInfo] = {
    info.kind: info
    for info in (
        _kind("Namespace", "", ("v1",), "namespaces", False, ("ns",)),
        _kind("Service", "", ("v1",), "services", True, ("svc",)),
        _kind("Deployment", "apps", ("v1",), "deployments", True, ("deploy",)),
        _kind("GatewayClass", GATEWAY_GROUP, ("v1", "v1beta1"), "gatewayclasses", False, ("gc",)),
        _kind("Gateway", GATEWAY_GROUP, ("v1", "v1beta1"), "gateways", True, ("gtw",)),
        _kind("HTTPRoute", GATEWAY_GROUP, ("v1", "v1beta1"), "httproutes", True),
        _kind("ReferenceGrant", GATEWAY_GROUP, ("v1", "v1beta1"), "referencegrants", True,
              ("refgrant",)),
    )
}
"""Accepted kinds by kind name."""

_BY_NAME: dict[str, KindInfo] = {
    name: info for info in KINDS.values() for name in info.short_names
}


def resolve_kind(text: str) -> KindInfo:
    """Find the kind a CLI argument names.

    Accepts the kind in any case (``HTTPRoute``), singular, plural or short name, each
    optionally qualified by ``.group`` or ``.version.group`` (``deployments.apps``,
    ``deployments.v1.apps``, ``httproutes.gateway.networking.k8s.io``).

    >>> resolve_kind("svc").kind, resolve_kind("deployments.apps").kind
    ('Service', 'Deployment')

    Raises :class:`~trafficlab._errors.NotFoundError` with kubectl's wording otherwise.
    """
    name, _, qualifier = text.strip().lower().partition(".")
    info = _BY_NAME.get(name)
    if info is not None:
        if not qualifier or qualifier == info.group:
            return info
        version, _, group = qualifier.partition(".")
        if version in info.versions and group == info.group:
            return info
    raise NotFoundError(f'the server doesn\'t have a resource type "{text}"')
