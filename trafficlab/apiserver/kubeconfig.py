"""``<home>/kubeconfig``: how kubectl and the ``kubernetes`` client find and trust the lab."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from trafficlab._private import write_private

__all__ = ["CONTEXT", "kubeconfig_text", "write_kubeconfig"]

CONTEXT = "trafficlab"


def kubeconfig_text(server: str, ca_pem: bytes, token: str) -> str:
    """A kubeconfig with one cluster, user and context, all named ``trafficlab``."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {
            "cluster": CONTEXT, "user": CONTEXT, "namespace": "default"}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_kubeconfig(path: Path, server: str, ca_pem: bytes, token: str) -> None:
    """Write the kubeconfig owner-only (it holds the API's credential)."""
    write_private(path, kubeconfig_text(server, ca_pem, token))
