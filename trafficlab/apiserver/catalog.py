"""Which resources the API serves, under which group and versions: its REST mapping.

Every kind in :data:`trafficlab.resources.KINDS` is served from the store; pods are served
read-only from the pod manager (the lab runs them as local processes, they are not stored),
and Events read-only from the controller's event recorder.
"""

from __future__ import annotations

from dataclasses import dataclass

from trafficlab.resources import KINDS, KindInfo

__all__ = ["RESOURCES", "ApiResource", "find", "group_versions"]

_WRITE_VERBS = ("create", "delete", "get", "list", "patch", "update")
_READ_VERBS = ("get", "list")


@dataclass(frozen=True)
class ApiResource:
    """One served resource: a kind under a group, its plural and how it may be used."""

    kind: str
    group: str
    versions: tuple[str, ...]  # preferred first
    plural: str
    namespaced: bool
    short_names: tuple[str, ...]
    verbs: tuple[str, ...]
    info: KindInfo | None  # None: not in the store (pods, events)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def resource(self) -> str:
        """Plural with group, as Status messages name it (``httproutes.gateway...``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version


def _from_kind(info: KindInfo) -> ApiResource:
    # KindInfo.short_names also holds the singular and plural; discovery wants only the rest.
    short = tuple(s for s in info.short_names if s not in (info.singular, info.plural))
    return ApiResource(info.kind, info.group, info.versions, info.plural, info.namespaced,
                       short, _WRITE_VERBS, info)


RESOURCES: tuple[ApiResource, ...] = (
    *(_from_kind(info) for info in KINDS.values()),
    ApiResource("Pod", "", ("v1",), "pods", True, ("po",), _READ_VERBS, None),
    # Read-only, from the controller's recorder (kubectl describe lists them).
    ApiResource("Event", "", ("v1",), "events", True, ("ev",), _READ_VERBS, None),
)


def find(group: str, version: str, plural: str) -> ApiResource | None:
    """The resource served at ``/apis/<group>/<version>/<plural>`` (``/api/v1`` for core)."""
    for res in RESOURCES:
        if res.group == group and res.plural == plural and version in res.versions:
            return res
    return None


def group_versions() -> dict[str, tuple[str, ...]]:
    """Every named group (not core) and its versions, preferred first, in a stable order."""
    out: dict[str, tuple[str, ...]] = {}
    for res in RESOURCES:
        if res.group and res.group not in out:
            out[res.group] = res.versions
    return out
