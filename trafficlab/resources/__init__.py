"""The kinds the lab accepts and their validation.

``validate(obj)`` does what the Kubernetes apiserver does to an object on create:
checks apiVersion/kind and metadata, rejects unknown fields, drops ``status``, applies
schema defaults and validates the spec - the Gateway API kinds against the vendored
v1.6.1 standard-channel CRD schemas (with their CEL rules as Python checks), the core
kinds against hand-written schemas of the fields a lab uses.

>>> from trafficlab.resources import resolve_kind
>>> resolve_kind("svc").kind
'Service'
"""

from __future__ import annotations

from ._gateway_rules import parse_duration
from ._kinds import GATEWAY_GROUP, KINDS, KindInfo, resolve_kind
from ._pod_limits import check_pod_limits
from ._problems import Problem
from ._selectors import SELECTOR_OPERATORS, selector_matches
from ._validate import find_problems, validate

__all__ = [
    "GATEWAY_GROUP",
    "KINDS",
    "SELECTOR_OPERATORS",
    "KindInfo",
    "Problem",
    "check_pod_limits",
    "find_problems",
    "parse_duration",
    "resolve_kind",
    "selector_matches",
    "validate",
]
