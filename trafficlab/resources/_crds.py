"""The vendored Gateway API CRD schemas (``crds/<plural>.json``, see ``crds/NOTICE``).

Written by ``scripts/vendor_crds.py`` from the v1.6.1 standard-channel CRDs; read once
and cached.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

__all__ = ["CRD_PLURALS", "load_crd", "openapi_schema"]

CRD_PLURALS = ("httproutes", "gateways", "gatewayclasses")
"""The CRDs shipped in ``crds/``."""


@functools.cache
def load_crd(plural: str) -> dict[str, Any]:
    """The vendored document for one CRD (names, scope, versions with schemas)."""
    folder = resources.files(__package__).joinpath("crds")
    text = folder.joinpath(f"{plural}.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def openapi_schema(plural: str, version: str) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of one served version (following ``sameSchemaAs``)."""
    versions = {v["name"]: v for v in load_crd(plural)["versions"]}
    entry = versions[version]
    while "schema" not in entry:
        entry = versions[entry["sameSchemaAs"]]
    schema: dict[str, Any] = entry["schema"]
    return schema
