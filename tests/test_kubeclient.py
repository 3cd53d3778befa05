"""The shared client's kubeconfig reading: what kind writes (client certificates) and what not."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from trafficlab._errors import BackendError
from trafficlab.apiserver.identity import make_identity
from trafficlab.backends.kubeclient import KubeClient


def _kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kind-x",
        "clusters": [{"name": "kind-x", "cluster": {"server": "https://127.0.0.1:6443",
                                                    **cluster}}],
        "users": [{"name": "kind-x", "user": user}],
        "contexts": [{"name": "kind-x", "context": {"cluster": "kind-x", "user": "kind-x"}}]}))
    return path


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_a_client_certificate_as_kind_writes_it(tmp_path: Path) -> None:
    certs = make_identity(tmp_path)
    ca = {"certificate-authority-data": base64.b64encode(certs.ca_pem).decode()}
    inline = KubeClient(_kubeconfig(tmp_path / "inline", ca, {
        "client-certificate-data": _b64(certs.cert_path),
        "client-key-data": _b64(certs.key_path)}))
    assert inline.host == "https://127.0.0.1:6443" and "Authorization" not in inline._headers
    # Files are read relative to the kubeconfig, as kubectl reads them.
    files = KubeClient(_kubeconfig(tmp_path / "files", {"certificate-authority": "ca.crt"}, {
        "client-certificate": certs.cert_path.name, "client-key": certs.key_path.name}))
    assert files._ssl is not None
    assert not list(Path("/tmp").glob("trafficlab-tls-*/client.pem"))  # the key copy is gone


def test_what_the_client_cannot_do_is_said(tmp_path: Path) -> None:
    certs = make_identity(tmp_path)
    with pytest.raises(BackendError, match="authenticates with exec"):
        KubeClient(_kubeconfig(tmp_path / "exec", {}, {"exec": {"command": "aws"}}))
    with pytest.raises(BackendError, match="cannot read the kubeconfig"):
        KubeClient(_kubeconfig(tmp_path / "mismatch", {}, {
            "client-certificate-data": _b64(certs.cert_path),
            "client-key-data": base64.b64encode(b"not a key").decode()}))
    with pytest.raises(BackendError, match='no context named "other"'):
        KubeClient(_kubeconfig(tmp_path / "ctx", {}, {"token": "t"}), "other")
