"""No other user of the machine can read or steer a lab: every call needs the owner's token.

A shared JupyterHub server holds many students' labs. The attacker here is a real second
user (uid 65534, "nobody") who knows the lab's port (``ss -lnt`` shows every loopback port):
the lab's one API is its Kubernetes API (HTTPS), and without the kubeconfig's token it can
neither read the lab, change a route, nor stop it (``/trafficlab/v1/shutdown``), and it
cannot read the kubeconfig (or anything else) out of the lab's home.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from trafficlab import Lab

pytestmark = pytest.mark.integration

STRANGER = 65534
# Run by the stranger with the system Python and nothing of ours on its path.
STRANGER_SCRIPT = r"""
import json, socket, ssl, sys, urllib.error, urllib.request
api, home, stats, admin_socket = sys.argv[1:5]
out = {}
for name in ("lab.json", "pids.json", "logs", "kubeconfig", "pki/ca.key"):
    try:
        open(f"{home}/{name}").read()
        out[name] = "read"
    except OSError as exc:
        out[name] = type(exc).__name__
# The attacker does not care who the server is: no certificate check at all.
insecure = ssl.create_default_context()
insecure.check_hostname = False
insecure.verify_mode = ssl.CERT_NONE
def call(method, path, body=None, token=None, api=api, ctype="application/json"):
    headers = {"content-type": ctype}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10,
                                    context=insecure if api.startswith("https") else None) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
route = "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/task-api"
out["status"] = call("GET", "/trafficlab/v1/status")
out["healthz"] = call("GET", "/healthz")
out["get route"] = call("GET", route)
out["patch"] = call("PATCH", route, {"spec": {"rules": [{"backendRefs": [
    {"name": "task-api-v2", "port": 80}]}]}}, ctype="application/merge-patch+json")
out["guessed token"] = call("POST", "/trafficlab/v1/shutdown", {}, token="x" * 43)
out["shutdown"] = call("POST", "/trafficlab/v1/shutdown", {})
envoy = "http://" + stats
out["envoy stats"] = call("GET", "/stats/prometheus", api=envoy)
out["envoy quit"] = call("POST", "/quitquitquit", {}, api=envoy)
out["envoy config"] = call("GET", "/config_dump", api=envoy)
try:
    socket.socket(socket.AF_UNIX).connect(admin_socket)
    out["envoy admin socket"] = "connected"
except OSError as exc:
    out["envoy admin socket"] = type(exc).__name__
print(json.dumps(out))
"""


# `lab` (tests/conftest.py): a lab whose parent anyone may traverse, as /home or a shared
# course folder is: the lab's own mode bits must do the protecting.


def _kubeconfig(lab: Lab) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((lab.home / "kubeconfig").read_text())
    return data


def _server(lab: Lab) -> str:
    return str(_kubeconfig(lab)["clusters"][0]["cluster"]["server"])


def _token(lab: Lab) -> str:
    return str(_kubeconfig(lab)["users"][0]["user"]["token"])


def test_the_home_and_the_token_are_the_owners_alone(lab: Lab) -> None:
    assert stat.S_IMODE(os.stat(lab.home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(lab.home / "kubeconfig").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(lab.home / "lab.json").st_mode) == 0o600
    assert len(_token(lab)) >= 40
    # The credential lives in the kubeconfig only; lab.json says which process the daemon is.
    info = json.loads((lab.home / "lab.json").read_text())
    assert set(info) == {"backend", "pid", "pidStart", "started", "python"}
    assert _server(lab).startswith("https://127.0.0.1:")
    # Envoy's admin API (it can stop Envoy) is a Unix socket, not a port anyone may reach.
    assert stat.S_IMODE(os.stat(lab.home / "envoy" / "admin.sock").st_mode) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root")
def test_another_user_can_neither_read_nor_steer_the_lab(lab: Lab) -> None:
    before = lab.get("httproute", "task-api")
    stats = lab.status()["envoy"]["stats"]
    envoy_pid = lab.status()["envoy"]["pid"]
    admin_socket = lab.home / "envoy" / "admin.sock"
    assert admin_socket.is_socket()
    result = subprocess.run(
        ["/usr/bin/python3", "-I", "-c", STRANGER_SCRIPT, _server(lab), str(lab.home),
         stats, str(admin_socket)],
        user=STRANGER, group=STRANGER, extra_groups=[], env={}, cwd="/",
        capture_output=True, text=True, timeout=60, check=True,
    )
    seen = json.loads(result.stdout)

    assert seen == {"lab.json": "PermissionError", "pids.json": "PermissionError",
                    "logs": "PermissionError", "kubeconfig": "PermissionError",
                    "pki/ca.key": "PermissionError", "status": 401, "healthz": 401,
                    "get route": 401, "patch": 401, "guessed token": 401, "shutdown": 401,
                    "envoy stats": 200, "envoy quit": 404, "envoy config": 404,
                    "envoy admin socket": "PermissionError"}
    assert lab.running and lab.status()["envoy"]["pid"] == envoy_pid
    after = lab.get("httproute", "task-api")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def _connection(lab: Lab) -> http.client.HTTPSConnection:
    host, port = _server(lab).removeprefix("https://").rsplit(":", 1)
    ca = base64.b64decode(_kubeconfig(lab)["clusters"][0]["cluster"]["certificate-authority-data"])
    return http.client.HTTPSConnection(host, int(port), timeout=30,
                                       context=ssl.create_default_context(cadata=ca.decode()))


def test_a_body_over_3_mib_is_refused_before_it_is_read(lab: Lab) -> None:
    conn = _connection(lab)
    try:
        # Announce 300 MB and send none of it: the answer must come from the headers alone.
        conn.putrequest("POST", "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes")
        conn.putheader("content-type", "application/json")
        conn.putheader("authorization", f"Bearer {_token(lab)}")
        conn.putheader("content-length", str(300 * 1024 * 1024))
        conn.endheaders()
        response = conn.getresponse()
        error = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 413
    assert error["reason"] == "RequestEntityTooLarge" and "3 MiB" in error["message"]
    assert lab.running


def test_the_labs_own_paths_need_the_token_and_the_right_method(lab: Lab) -> None:
    for method, path, token, expected in [
            ("GET", "/trafficlab/v1/status", None, 401),
            ("GET", "/trafficlab/v1/status", "x" * 43, 401),
            ("POST", "/trafficlab/v1/shutdown", "", 401),
            ("GET", "/trafficlab/v1/shutdown", _token(lab), 405),  # a GET never stops the lab
            ("GET", "/trafficlab/v1/status", _token(lab), 200),
            ("GET", "/trafficlab/v1/reconciled", None, 401),
            ("POST", "/trafficlab/v1/reconciled", _token(lab), 405),
            # A bounded wait: no request holds one of the server's threads for long.
            ("GET", "/trafficlab/v1/reconciled?timeoutSeconds=3600", _token(lab), 400),
            ("GET", "/trafficlab/v1/reconciled?timeoutSeconds=nan", _token(lab), 400),
            ("GET", "/trafficlab/v1/reconciled?timeoutSeconds=5", _token(lab), 200),
            ("GET", "/healthz", _token(lab), 200)]:
        conn = _connection(lab)
        try:
            conn.request(method, path, headers={"authorization": f"Bearer {token}"} if token
                         is not None else {})
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        assert response.status == expected, (method, path, body)
        if expected == 200 and path.endswith("status"):
            assert json.loads(body)["backend"] == "local"
    assert lab.running


def test_a_home_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("handing a folder to another user needs root")
    home = tmp_path / "planted"
    home.mkdir()
    os.chown(home, STRANGER, STRANGER)
    with pytest.raises(Exception, match="belongs to another user"):
        Lab(home, backend="local").up(timeout=10)
    assert not (home / "lab.json").exists()


def test_prometheus_can_be_read_but_not_stopped_or_wiped(lab: Lab) -> None:
    url = lab.status()["prometheus"]
    if not url:
        pytest.skip("no Prometheus on this machine")
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    refused = {}
    for method, path in [("POST", "/-/quit"), ("POST", "/-/reload"),
                         ("POST", "/api/v1/admin/tsdb/delete_series?match[]=up")]:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            refused[path] = (response.status, response.read().decode(errors="replace"))
        finally:
            conn.close()
    # Prometheus started without --web.enable-lifecycle / --web.enable-admin-api.
    assert refused["/-/quit"][0] == refused["/-/reload"][0] == 403, refused
    admin = refused["/api/v1/admin/tsdb/delete_series?match[]=up"]
    assert admin[0] >= 400 and "admin APIs disabled" in admin[1], admin
    assert lab.status()["prometheus"] == url
