#!/usr/bin/env python3
"""Vendor the Gateway API CRD schemas the lab validates against.

Reads the standard-channel CRDs (``gateway.networking.k8s.io_<plural>.yaml``) from a
Gateway API release folder and writes ``trafficlab/resources/crds/<plural>.json``:
the served versions' ``openAPIV3Schema`` (``x-kubernetes-validations`` kept, the
``description`` texts dropped to keep the package small), plus the CRD's names and scope.
A version whose schema equals an earlier one's (descriptions aside) is stored as
``{"name": "v1beta1", "sameSchemaAs": "v1"}`` instead of a second copy.

The folder must hold a ``SOURCE.txt`` naming the tag and commit; the git blob ids listed
there are checked against the files so a modified copy is refused.

Usage::

    .venv/bin/python scripts/vendor_crds.py [--source DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = Path("/work/shared/reference/gateway-api-v1.6.1")
DEFAULT_OUT = ROOT / "trafficlab" / "resources" / "crds"
PLURALS = ("httproutes", "gateways", "gatewayclasses")
SCHEMA_KEYS_HOLDING_SCHEMAS = ("items", "additionalProperties", "not")
SCHEMA_KEYS_HOLDING_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def strip_descriptions(schema: Any) -> Any:
    """Return a copy of an OpenAPI schema without ``description`` keys.

    Only schema nodes lose their description: a *property* called ``description``
    (GatewayClass has one) is kept, and ``default``/``enum``/``x-kubernetes-validations``
    values are copied verbatim.
    """
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "description":
            continue
        if key == "properties":
            out[key] = {name: strip_descriptions(sub) for name, sub in value.items()}
        elif key in SCHEMA_KEYS_HOLDING_SCHEMAS:
            out[key] = strip_descriptions(value)
        elif key in SCHEMA_KEYS_HOLDING_SCHEMA_LISTS:
            out[key] = [strip_descriptions(sub) for sub in value]
        else:
            out[key] = value
    return out


def git_blob_id(data: bytes) -> str:
    """The id git gives a file's content (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def read_source(source: Path) -> tuple[str, str, dict[str, str]]:
    """Tag, commit and expected blob ids from SOURCE.txt."""
    text = (source / "SOURCE.txt").read_text()
    tag = re.search(r"tag (v[0-9][^\s,]*)", text)
    commit = re.search(r"commit ([0-9a-f]{40})", text)
    if not tag or not commit:
        raise SystemExit(f"{source / 'SOURCE.txt'}: no tag or commit found")
    blobs = dict(re.findall(r"(\w+) ([0-9a-f]{40})", text.split("blob ids:", 1)[-1]))
    return tag.group(1), commit.group(1), blobs


def vendor_one(path: Path, expected_blob: str | None) -> dict[str, Any]:
    """Build the JSON document for one CRD file."""
    raw = path.read_bytes()
    if expected_blob and git_blob_id(raw) != expected_blob:
        raise SystemExit(f"{path}: content differs from the blob id in SOURCE.txt")
    crd = yaml.safe_load(raw)
    spec = crd["spec"]
    names = spec["names"]
    annotations = crd["metadata"].get("annotations", {})
    versions: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for version in spec["versions"]:
        if not version.get("served", False):
            continue
        schema = strip_descriptions(version["schema"]["openAPIV3Schema"])
        key = json.dumps(schema, sort_keys=True)
        entry: dict[str, Any] = {"name": version["name"], "storage": bool(version.get("storage"))}
        if key in seen:
            entry["sameSchemaAs"] = seen[key]
        else:
            seen[key] = version["name"]
            entry["schema"] = schema
        versions.append(entry)
    return {
        "group": spec["group"],
        "kind": names["kind"],
        "plural": names["plural"],
        "singular": names["singular"],
        "shortNames": names.get("shortNames", []),
        "scope": spec["scope"],
        "bundleVersion": annotations.get("gateway.networking.k8s.io/bundle-version"),
        "channel": annotations.get("gateway.networking.k8s.io/channel"),
        "versions": versions,
    }


NOTICE = """\
The JSON files in this folder are derived from the Gateway API CustomResourceDefinitions
(standard channel) of the Kubernetes Gateway API project:

  repository: https://github.com/kubernetes-sigs/gateway-api
  tag:        {tag}
  commit:     {commit}
  path:       config/crd/standard/gateway.networking.k8s.io_<plural>.yaml
  license:    Apache License 2.0 (https://www.apache.org/licenses/LICENSE-2.0)

Copyright The Kubernetes Authors.

Changes: each file keeps the served versions' openAPIV3Schema (validation rules in
x-kubernetes-validations included) with the "description" texts removed, and the
CRD's names and scope; a version identical to an earlier one is stored as a reference.
Regenerate with scripts/vendor_crds.py.
"""


def main(argv: list[str] | None = None) -> int:
    """Write the vendored schemas and the NOTICE; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    tag, commit, blobs = read_source(args.source)
    args.out.mkdir(parents=True, exist_ok=True)
    for plural in PLURALS:
        source = args.source / f"gateway.networking.k8s.io_{plural}.yaml"
        doc = vendor_one(source, blobs.get(plural))
        doc["source"] = {"repository": "https://github.com/kubernetes-sigs/gateway-api",
                         "tag": tag, "commit": commit, "license": "Apache-2.0"}
        target = args.out / f"{plural}.json"
        target.write_text(json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n")
        print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    (args.out / "NOTICE").write_text(NOTICE.format(tag=tag, commit=commit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
