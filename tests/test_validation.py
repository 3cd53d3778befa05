"""Validation of the objects the lab accepts (trafficlab.resources).

The Gateway API cases follow the v1.6.1 standard-channel CRDs vendored in
trafficlab/resources/crds/; every CEL rule there has a failing case below, and a test
proves it. The conformance manifests come from tests/testdata/conformance_cases.yaml
(Gateway API conformance tests, Apache-2.0; see its header).
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from trafficlab._errors import NotFoundError, ValidationError, error_from_dict
from trafficlab.resources import (
    KINDS,
    KindInfo,
    Problem,
    find_problems,
    parse_duration,
    resolve_kind,
    validate,
)
from trafficlab.resources._crds import CRD_PLURALS, load_crd, openapi_schema
from trafficlab.resources._gateway_rules import CEL_RULES, SKIPPED, TRANSITION_RULES
from trafficlab.resources._regex import go_regex

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = Path(__file__).resolve().parent / "testdata"
SHARED = Path("/work/shared/reference/gateway-api-v1.6.1")
GW_API = "gateway.networking.k8s.io/v1"
DELETE = object()

# --- helpers -------------------------------------------------------------------------------

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _tokens(path: str) -> list[str | int]:
    return [int(i) if i else name for name, i in _TOKEN.findall(path)]


def make(base: dict[str, Any], edits: dict[str, Any] | None = None) -> dict[str, Any]:
    """A deep copy of ``base`` with ``{"spec.rules[0].x": value}`` edits (DELETE removes)."""
    obj = copy.deepcopy(base)
    for path, value in (edits or {}).items():
        *parents, last = _tokens(path)
        node: Any = obj
        for token in parents:
            node = node[token]
        if value is DELETE:
            del node[last]
        else:
            node[last] = copy.deepcopy(value)
    return obj


def messages(obj: Any, **kwargs: Any) -> list[str]:
    return [str(p) for p in find_problems(obj, **kwargs)]


def location(field: str) -> str:
    """``spec.rules[0].filters[1]`` -> ``.spec.rules[].filters[]`` (a schema location)."""
    return "." + re.sub(r"\[\d+\]", "[]", field)


def route(spec: dict[str, Any], name: str = "task-api") -> dict[str, Any]:
    return {"apiVersion": GW_API, "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


ROUTE = route({
    "parentRefs": [{"name": "task-api-gateway"}],
    "rules": [{"backendRefs": [{"name": "task-api-v1", "port": 80}]}],
})

GATEWAY: dict[str, Any] = {
    "apiVersion": GW_API, "kind": "Gateway",
    "metadata": {"name": "task-api-gateway", "namespace": "default"},
    "spec": {"gatewayClassName": "lab",
             "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
}

GATEWAY_CLASS: dict[str, Any] = {
    "apiVersion": GW_API, "kind": "GatewayClass", "metadata": {"name": "lab"},
    "spec": {"controllerName": "trafficlab.dev/gateway-controller"},
}

SERVICE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "task-api-v1", "namespace": "default", "labels": {"app": "task-api"}},
    "spec": {"selector": {"app": "task-api", "version": "v1"},
             "ports": [{"name": "http", "port": 80, "targetPort": 8000}]},
}

DEPLOYMENT: dict[str, Any] = yaml.safe_load("""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: task-api-v1
  namespace: default
  labels: {app: task-api, version: v1}
  annotations: {example.com/owner: platform-team}
spec:
  replicas: 2
  selector:
    matchLabels: {app: task-api, version: v1}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 25%}
  template:
    metadata:
      labels: {app: task-api, version: v1}
      annotations: {prometheus.io/scrape: "true"}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: task-api
        image: task-api:v1
        imagePullPolicy: IfNotPresent
        command: [uvicorn]
        args: [taskapi.main:app, --host, 0.0.0.0, --port, "8000"]
        ports:
        - {name: http, containerPort: 8000}
        env:
        - {name: VERSION, value: v1}
        - {name: ERROR_RATE, value: "0"}
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        readinessProbe:
          httpGet: {path: /health, port: http}
          initialDelaySeconds: 1
          periodSeconds: 2
        livenessProbe:
          httpGet: {path: /health, port: 8000}
          failureThreshold: 3
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: "1", memory: 256Mi}
        securityContext: {runAsNonRoot: true, allowPrivilegeEscalation: false}
""")

NAMESPACE: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": "team-a", "labels": {"env": "lab"}}}

REFERENCE_GRANT: dict[str, Any] = {
    "apiVersion": GW_API, "kind": "ReferenceGrant",
    "metadata": {"name": "allow-routes", "namespace": "backends"},
    "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                       "namespace": "default"}],
             "to": [{"group": "", "kind": "Service", "name": "task-api-v2"}]},
}

# --- good objects: all must validate with no problem -------------------------------------

GOOD_ROUTE = route(yaml.safe_load(r"""
parentRefs:
- {name: task-api-gateway, sectionName: http}
- {name: task-api-gateway, sectionName: https}
- {name: other, namespace: infra, port: 8080}
hostnames: [app.example.com, "*.example.com"]
rules:
- name: canary
  matches:
  - path: {type: PathPrefix, value: /api}
    headers:
    - {name: x-user-type, value: beta}
    - {name: X-Env, type: RegularExpression, value: "^(dev|qa)$"}
    queryParams: [{name: q, value: "1"}]
    method: GET
  filters:
  - type: RequestHeaderModifier
    requestHeaderModifier:
      set: [{name: x-a, value: "1"}]
      add: [{name: x-b, value: "2"}]
      remove: [x-c]
  - type: ResponseHeaderModifier
    responseHeaderModifier: {add: [{name: x-d, value: "3"}]}
  - type: RequestMirror
    requestMirror: {backendRef: {name: mirror, port: 80}, fraction: {numerator: 5, denominator: 5}}
  - type: URLRewrite
    urlRewrite:
      hostname: internal.example.com
      path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}
  - type: CORS
    cors:
      allowOrigins: ["*"]
      allowMethods: [GET, POST]
      allowHeaders: ["*"]
      exposeHeaders: [x-version]
      allowCredentials: true
      maxAge: 60
  - type: ExtensionRef
    extensionRef: {group: example.com, kind: Thing, name: t}
  backendRefs:
  - name: task-api-v1
    port: 80
    weight: 0
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-backend, value: v1}]}
    - type: RequestMirror
      requestMirror: {backendRef: {name: m, namespace: other, port: 80}, percent: 100}
    - type: URLRewrite
      urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /x}}
    - type: CORS
      cors: {allowOrigins: ["https://app.example.com", "http://*.example.com:8080"]}
  - {name: task-api-v2, port: 80, weight: 1000000}
  - {name: bucket, group: example.com, kind: Bucket}
  timeouts: {request: 10s, backendRequest: 10s}
- matches: [{path: {type: Exact, value: /old}}]
  filters:
  - type: RequestRedirect
    requestRedirect:
      scheme: https
      hostname: example.com
      port: 443
      statusCode: 301
      path: {type: ReplaceFullPath, replaceFullPath: /new}
- matches: [{path: {type: PathPrefix, value: /legacy}}]
  backendRefs: []
  filters:
  - type: RequestRedirect
    requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}
- matches: [{path: {type: RegularExpression, value: "/items/[0-9]+"}}]
  timeouts: {request: 0s, backendRequest: 1h}
  backendRefs: [{name: task-api-v1, port: 80}]
- matches:
  - path: {type: Exact, value: "/a%20b/~user/@x:y;z=1,2+3*'()!$&"}
  - {method: POST}
  backendRefs: [{name: task-api-v1, port: 80}]
  timeouts: {request: 1m30s}
"""))

GOOD_GATEWAY: dict[str, Any] = make(GATEWAY, {"spec": yaml.safe_load(r"""
gatewayClassName: lab
addresses:
- {value: 10.0.0.1}
- {type: IPAddress, value: "2001:db8::1"}
- {type: Hostname, value: lb.example.com}
- {type: example.com/custom, value: anything}
infrastructure:
  labels: {team: web}
  annotations: {example.com/owner: me}
  parametersRef: {group: example.com, kind: Params, name: p}
allowedListeners:
  namespaces: {from: Same}
listeners:
- {name: http, port: 80, protocol: HTTP}
- name: https
  port: 443
  protocol: HTTPS
  hostname: "*.example.com"
  tls: {certificateRefs: [{name: cert}]}
- name: https-opts
  port: 443
  protocol: HTTPS
  hostname: other.example.com
  tls: {mode: Terminate, options: {example.com/cipher: x}}
- {name: tls, port: 8443, protocol: TLS, tls: {mode: Passthrough}}
- {name: tcp, port: 9000, protocol: TCP}
- name: http-b
  port: 80
  protocol: HTTP
  hostname: b.example.com
  allowedRoutes:
    namespaces: {from: Selector, selector: {matchLabels: {team: a}}}
    kinds: [{kind: HTTPRoute}]
tls:
  frontend:
    default:
      validation: {caCertificateRefs: [{group: "", kind: ConfigMap, name: ca}]}
    perPort:
    - port: 443
      tls: {validation: {caCertificateRefs: [{group: "", kind: ConfigMap, name: ca2}]}}
  backend:
    clientCertificateRef: {name: client}
""")})

GOOD_OBJECTS = {
    "route-minimal": ROUTE,
    "route-rich": GOOD_ROUTE,
    "route-empty-spec": route({}),
    "route-v1beta1": make(ROUTE, {"apiVersion": "gateway.networking.k8s.io/v1beta1"}),
    "route-two-parents-no-section": route({"parentRefs": [
        {"name": "a"}, {"name": "a", "namespace": "other"}, {"name": "a", "kind": "Other"}]}),
    "route-128-matches": route({"rules": [
        {"matches": [{"path": {"value": f"/r{r}/m{m}"}} for m in range(64)]} for r in range(2)
    ]}),
    "gateway-minimal": GATEWAY,
    "gateway-rich": GOOD_GATEWAY,
    "gatewayclass": GATEWAY_CLASS,
    "gatewayclass-v1beta1": make(GATEWAY_CLASS, {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "spec.description": "The lab's class", "spec.parametersRef": {
            "group": "", "kind": "ConfigMap", "name": "cfg", "namespace": "default"}}),
    "service": SERVICE,
    "service-named-target": make(SERVICE, {"spec.ports[0].targetPort": "http"}),
    "service-headless": make(SERVICE, {"spec.clusterIP": "None", "spec.ports": DELETE}),
    "service-two-ports": make(SERVICE, {"spec.ports": [
        {"name": "http", "port": 80}, {"name": "metrics", "port": 9090, "protocol": "TCP"}],
        "spec.type": "NodePort"}),
    "deployment": DEPLOYMENT,
    "deployment-match-expressions": make(DEPLOYMENT, {"spec.selector": {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["task-api"]},
        {"key": "tier", "operator": "DoesNotExist"}]}}),
    "deployment-other-image": make(DEPLOYMENT, {
        "spec.template.spec.containers[0].image": "nginx:1.27"}),
    "namespace": NAMESPACE,
    "reference-grant-v1": REFERENCE_GRANT,
    "reference-grant-v1beta1": make(REFERENCE_GRANT, {
        "apiVersion": "gateway.networking.k8s.io/v1beta1"}),
}


@pytest.mark.parametrize("name", sorted(GOOD_OBJECTS))
def test_good_objects_validate(name: str) -> None:
    assert messages(GOOD_OBJECTS[name]) == []
    validate(GOOD_OBJECTS[name])  # does not raise


def test_kubectl_generated_deployment_is_accepted() -> None:
    # `kubectl create deployment ... --dry-run=client -o yaml` output.
    obj = yaml.safe_load("""
apiVersion: apps/v1
kind: Deployment
metadata:
  creationTimestamp: null
  labels: {app: web}
  name: web
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  strategy: {}
  template:
    metadata:
      creationTimestamp: null
      labels: {app: web}
    spec:
      containers:
      - image: task-api:v1
        name: task-api
        resources: {}
status: {}
""")
    out = validate(obj)
    assert "status" not in out
    assert "creationTimestamp" not in out["spec"]["template"]["metadata"]


# --- conformance manifests ------------------------------------------------------------------


def _conformance() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((TESTDATA / "conformance_cases.yaml").read_text())
    return data


def _conformance_manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for test in _conformance()["tests"]:
        for i, manifest in enumerate(test["manifests"]):
            found.append((f"{test['name']}[{i}]-{manifest['kind']}", manifest))
    return found


def test_conformance_copy_keeps_its_license_header() -> None:
    head = (TESTDATA / "conformance_cases.yaml").read_text().splitlines()[:3]
    assert any("Apache-2.0" in line for line in head)
    assert any("kubernetes-sigs/gateway-api v1.6.1" in line for line in head)


@pytest.mark.parametrize(("case", "manifest"), _conformance_manifests(),
                         ids=[c for c, _ in _conformance_manifests()])
def test_conformance_manifests_validate(case: str, manifest: dict[str, Any]) -> None:
    assert manifest["kind"] in ("HTTPRoute", "Gateway", "ReferenceGrant")
    assert messages(manifest) == []


def test_conformance_gateway_validates() -> None:
    conv = _conformance()["conventions"]["gateway"]
    gateway = make(GATEWAY, {
        "metadata": {"name": conv["name"], "namespace": conv["namespace"]},
        "spec.listeners": [{k: v for k, v in listener.items()} for listener in conv["listeners"]],
    })
    out = validate(gateway)
    assert out["spec"]["listeners"][0]["allowedRoutes"] == {"namespaces": {"from": "Same"}}


# --- defaults -----------------------------------------------------------------------------


def test_httproute_defaults_are_applied_like_the_apiserver() -> None:
    out = validate(route({"parentRefs": [{"name": "gw"}], "rules": [
        {"matches": [{"headers": [{"name": "x-user-type", "value": "beta"}]}],
         "backendRefs": [{"name": "v2", "port": 80}],
         "filters": [{"type": "RequestMirror", "requestMirror": {
             "backendRef": {"name": "m", "port": 80}, "fraction": {"numerator": 1}}}]},
        {"backendRefs": [{"name": "v1", "port": 80}]},
        {"matches": [{"path": {"type": "Exact"}}],
         "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}},
                     {"type": "CORS", "cors": {"allowOrigins": ["*"]}}]},
    ]}))
    spec = out["spec"]
    assert spec["parentRefs"][0] == {"name": "gw", "group": "gateway.networking.k8s.io",
                                     "kind": "Gateway"}
    rule0, rule1, rule2 = spec["rules"]
    # A match with headers only still gets the default path (defaults apply per field).
    assert rule0["matches"][0]["path"] == {"type": "PathPrefix", "value": "/"}
    assert rule0["matches"][0]["headers"][0]["type"] == "Exact"
    assert rule0["backendRefs"][0] == {"name": "v2", "port": 80, "group": "", "kind": "Service",
                                       "weight": 1}
    mirror = rule0["filters"][0]["requestMirror"]
    assert mirror["backendRef"]["group"] == "" and mirror["backendRef"]["kind"] == "Service"
    assert mirror["fraction"] == {"numerator": 1, "denominator": 100}
    assert rule1["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert rule2["matches"][0]["path"] == {"type": "Exact", "value": "/"}
    assert rule2["filters"][0]["requestRedirect"]["statusCode"] == 302
    assert rule2["filters"][1]["cors"]["maxAge"] == 5


def test_httproute_without_rules_gets_the_default_rule() -> None:
    out = validate(route({"parentRefs": [{"name": "gw"}]}))
    assert out["spec"]["rules"] == [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]


def test_nulls_are_pruned_then_defaulted() -> None:
    out = validate(route({"rules": [{"matches": None, "backendRefs": [
        {"name": "v1", "port": 80, "weight": None}]}]}))
    rule = out["spec"]["rules"][0]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert rule["backendRefs"][0]["weight"] == 1


def test_gateway_defaults() -> None:
    out = validate(make(GATEWAY, {"spec.addresses": [{"value": "10.0.0.1"}], "spec.listeners": [
        {"name": "http", "port": 80, "protocol": "HTTP"},
        {"name": "https", "port": 443, "protocol": "HTTPS",
         "tls": {"certificateRefs": [{"name": "cert"}]}},
        {"name": "other", "port": 81, "protocol": "HTTP",
         "allowedRoutes": {"kinds": [{"kind": "HTTPRoute"}]}},
    ]}))
    spec = out["spec"]
    assert spec["addresses"] == [{"value": "10.0.0.1", "type": "IPAddress"}]
    assert spec["listeners"][0]["allowedRoutes"] == {"namespaces": {"from": "Same"}}
    tls = spec["listeners"][1]["tls"]
    assert tls["mode"] == "Terminate"
    assert tls["certificateRefs"] == [{"name": "cert", "group": "", "kind": "Secret"}]
    assert spec["listeners"][2]["allowedRoutes"] == {
        "kinds": [{"kind": "HTTPRoute", "group": "gateway.networking.k8s.io"}],
        "namespaces": {"from": "Same"}}


def test_service_and_deployment_defaults() -> None:
    svc = validate(make(SERVICE, {"spec.ports": [{"port": 80}]}))
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    dep = validate(make(DEPLOYMENT, {"spec.replicas": DELETE}))
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] == "TCP"


def test_validate_returns_a_new_object_and_leaves_the_input_alone() -> None:
    original = make(ROUTE, {"status": {"parents": []}})
    before = copy.deepcopy(original)
    out = validate(original)
    assert original == before
    assert "status" not in out
    assert out["spec"]["rules"][0]["backendRefs"][0]["weight"] == 1
    out["spec"]["rules"][0]["backendRefs"][0]["name"] = "changed"
    assert original["spec"]["rules"][0]["backendRefs"][0]["name"] == "task-api-v1"


def test_v1beta1_is_accepted_and_not_normalized() -> None:
    obj = make(ROUTE, {"apiVersion": "gateway.networking.k8s.io/v1beta1"})
    assert validate(obj)["apiVersion"] == "gateway.networking.k8s.io/v1beta1"


def test_namespace_is_dropped_for_cluster_scoped_kinds() -> None:
    out = validate(make(GATEWAY_CLASS, {"metadata.namespace": "default"}))
    assert out["metadata"] == {"name": "lab"}


# --- the error itself ---------------------------------------------------------------------


def test_error_message_names_kind_object_field_and_value() -> None:
    bad = make(ROUTE, {"spec.rules[0].backendRefs": [
        {"name": "task-api-v1", "port": 80}, {"name": "task-api-v2", "port": 80,
                                              "weight": 1000001}]})
    with pytest.raises(ValidationError) as info:
        validate(bad, source="route.yaml")
    err = info.value
    assert err.kind == "HTTPRoute" and err.namespace == "default" and err.name == "task-api"
    assert err.field == "spec.rules[0].backendRefs[1].weight"
    assert err.source == "route.yaml"
    assert str(err) == (
        "HTTPRoute default/task-api is invalid (in route.yaml): "
        "spec.rules[0].backendRefs[1].weight: Invalid value: 1000001: "
        "must be less than or equal to 1000000")
    assert isinstance(error_from_dict(err.to_dict()), ValidationError)


def test_all_problems_are_reported_in_one_error() -> None:
    bad = make(ROUTE, {
        "spec.rules[0].backendRefs[0].weight": -1,
        "spec.rules[0].matches": [{"path": {"type": "PathPrefix", "value": "api"}}],
        "spec.hostnames": ["Bad_Host"],
    })
    with pytest.raises(ValidationError) as info:
        validate(bad)
    err = info.value
    # The first problem in document order names the field; the others follow in the text.
    assert err.field == "spec.rules[0].backendRefs[0].weight"
    assert err.problem.startswith("Invalid value: -1: must be greater than or equal to 0; "
                                  "and 2 more: spec.rules[0].matches[0].path: Invalid value:")
    assert 'spec.hostnames[0]: Invalid value: "Bad_Host"' in err.problem


def test_unknown_fields_come_first_and_name_the_field() -> None:
    bad = make(ROUTE, {"spec.rules[0].backendRefs[0].weight": -1,
                       "spec.rules[0].backendRef": [{"name": "x"}]})
    with pytest.raises(ValidationError) as info:
        validate(bad)
    assert info.value.field == "spec.rules[0].backendRef"
    assert info.value.problem.startswith(
        'unknown field "spec.rules[0].backendRef" (did you mean "backendRefs"?)')


def test_many_problems_are_counted_not_all_listed() -> None:
    bad = route({"rules": [{"backendRefs": [{"name": "v", "port": 80, "weight": -1}
                                            for _ in range(16)]}]})
    with pytest.raises(ValidationError) as info:
        validate(bad)
    assert "; and 15 more: " in info.value.problem
    assert "(and 5 others)" in info.value.problem


# --- schema keywords ------------------------------------------------------------------------

SCHEMA_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, object, field, text the problem's message must contain)
    ("unknown-field-typo", make(ROUTE, {"spec.rules[0].backendRef": []}),
     "spec.rules[0].backendRef", 'unknown field "spec.rules[0].backendRef" (did you mean '
     '"backendRefs"?)'),
    ("unknown-spec-field", make(ROUTE, {"spec.foo": 1}), "spec.foo", 'unknown field "spec.foo"'),
    ("unknown-top-level", make(ROUTE, {"specs": {}}), "specs",
     'unknown field "specs" (did you mean "spec"?)'),
    ("weight-negative", make(ROUTE, {"spec.rules[0].backendRefs[0].weight": -1}),
     "spec.rules[0].backendRefs[0].weight",
     "Invalid value: -1: must be greater than or equal to 0"),
    ("weight-too-big", make(ROUTE, {"spec.rules[0].backendRefs[0].weight": 1000001}),
     "spec.rules[0].backendRefs[0].weight",
     "Invalid value: 1000001: must be less than or equal to 1000000"),
    ("weight-string", make(ROUTE, {"spec.rules[0].backendRefs[0].weight": "50"}),
     "spec.rules[0].backendRefs[0].weight", 'Invalid value: "50": must be of type integer'),
    ("weight-float", make(ROUTE, {"spec.rules[0].backendRefs[0].weight": 1.5}),
     "spec.rules[0].backendRefs[0].weight", "must be of type integer"),
    ("weight-bool", make(ROUTE, {"spec.rules[0].backendRefs[0].weight": True}),
     "spec.rules[0].backendRefs[0].weight", "Invalid value: true: must be of type integer"),
    ("17-backendrefs", make(ROUTE, {"spec.rules[0].backendRefs": [
        {"name": f"b{i}", "port": 80} for i in range(17)]}),
     "spec.rules[0].backendRefs", "Too many: 17: must have at most 16 items"),
    ("17-rules", route({"rules": [{"backendRefs": [{"name": "v", "port": 80}]}] * 17}),
     "spec.rules", "Too many: 17: must have at most 16 items"),
    ("65-matches", route({"rules": [{"matches": [{"path": {"value": f"/{i}"}}
                                                 for i in range(65)]}]}),
     "spec.rules[0].matches", "Too many: 65: must have at most 64 items"),
    ("no-rules", route({"rules": []}), "spec.rules",
     "Invalid value: []: must have at least 1 item"),
    ("bad-enum", make(ROUTE, {"spec.rules[0].matches": [{"path": {"type": "Prefix",
                                                                  "value": "/"}}]}),
     "spec.rules[0].matches[0].path.type",
     'Unsupported value: "Prefix": supported values: "Exact", "PathPrefix", "RegularExpression"'),
    ("bad-method", make(ROUTE, {"spec.rules[0].matches": [{"method": "get"}]}),
     "spec.rules[0].matches[0].method", 'Unsupported value: "get": supported values: "GET"'),
    ("bad-header-name", make(ROUTE, {"spec.rules[0].matches": [{"headers": [
        {"name": "x user", "value": "beta"}]}]}),
     "spec.rules[0].matches[0].headers[0].name",
     'Invalid value: "x user": must be a valid HTTP header name'),
    ("header-name-trailing-newline", make(ROUTE, {"spec.rules[0].matches": [{"headers": [
        {"name": "x-user\n", "value": "beta"}]}]}),
     "spec.rules[0].matches[0].headers[0].name", "must be a valid HTTP header name"),
    ("duplicate-header-match", make(ROUTE, {"spec.rules[0].matches": [{"headers": [
        {"name": "x-user-type", "value": "beta"}, {"name": "x-user-type", "value": "alpha"}]}]}),
     "spec.rules[0].matches[0].headers[1]", 'Duplicate value: {"name":"x-user-type"}'),
    ("duplicate-query-match", make(ROUTE, {"spec.rules[0].matches": [{"queryParams": [
        {"name": "q", "value": "1"}, {"name": "q", "value": "2"}]}]}),
     "spec.rules[0].matches[0].queryParams[1]", 'Duplicate value: {"name":"q"}'),
    ("duplicate-set-header", make(ROUTE, {"spec.rules[0].filters": [
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [
            {"name": "a", "value": "1"}, {"name": "a", "value": "2"}]}}]}),
     "spec.rules[0].filters[0].requestHeaderModifier.set[1]", "Duplicate value"),
    ("duplicate-set-item", make(ROUTE, {"spec.rules[0].filters": [
        {"type": "CORS", "cors": {"allowMethods": ["GET", "GET"]}}]}),
     "spec.rules[0].filters[0].cors.allowMethods[1]", 'Duplicate value: "GET"'),
    ("header-value-bool", make(ROUTE, {"spec.rules[0].matches": [{"headers": [
        {"name": "x-beta", "value": True}]}]}),
     "spec.rules[0].matches[0].headers[0].value",
     "Invalid value: true: must be of type string (quote it in YAML: 'true')"),
    ("header-value-empty", make(ROUTE, {"spec.rules[0].matches": [{"headers": [
        {"name": "x-beta", "value": ""}]}]}),
     "spec.rules[0].matches[0].headers[0].value",
     'Invalid value: "": must be at least 1 character long'),
    ("missing-required", make(ROUTE, {"spec.rules[0].backendRefs": [{"port": 80}]}),
     "spec.rules[0].backendRefs[0].name", "Required value"),
    ("name-too-long", make(ROUTE, {"spec.rules[0].backendRefs[0].name": "a" * 254}),
     "spec.rules[0].backendRefs[0].name", "Too long: may not be more than 253 characters"),
    ("port-too-big", make(ROUTE, {"spec.rules[0].backendRefs[0].port": 70000}),
     "spec.rules[0].backendRefs[0].port", "must be less than or equal to 65535"),
    ("bad-hostname", make(ROUTE, {"spec.hostnames": ["App.Example.com"]}), "spec.hostnames[0]",
     "must be a lowercase hostname"),
    ("bare-wildcard-hostname", make(ROUTE, {"spec.hostnames": ["*"]}), "spec.hostnames[0]",
     "must be a lowercase hostname"),
    ("bad-timeout-format", make(ROUTE, {"spec.rules[0].timeouts": {"request": "10 seconds"}}),
     "spec.rules[0].timeouts.request",
     "must be a duration such as '500ms', '10s' or '1h30m'"),
    ("mirror-percent-over-100", make(ROUTE, {"spec.rules[0].filters": [
        {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "port": 80},
                                                    "percent": 101}}]}),
     "spec.rules[0].filters[0].requestMirror.percent",
     "Invalid value: 101: must be less than or equal to 100"),
    ("mirror-denominator-zero", make(ROUTE, {"spec.rules[0].filters": [
        {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "port": 80},
                                                    "fraction": {"numerator": 0,
                                                                 "denominator": 0}}}]}),
     "spec.rules[0].filters[0].requestMirror.fraction.denominator",
     "must be greater than or equal to 1"),
    ("bad-filter-type", make(ROUTE, {"spec.rules[0].filters": [{"type": "Rewrite"}]}),
     "spec.rules[0].filters[0].type", 'Unsupported value: "Rewrite": supported values: '),
    ("redirect-status-code", make(ROUTE, {"spec.rules[0].backendRefs": [],
                                          "spec.rules[0].filters": [
        {"type": "RequestRedirect", "requestRedirect": {"statusCode": 305}}]}),
     "spec.rules[0].filters[0].requestRedirect.statusCode", "Unsupported value: 305"),
    ("parent-kind-pattern", make(ROUTE, {"spec.parentRefs[0].kind": "Gate way"}),
     "spec.parentRefs[0].kind", "must be a kind name such as 'Service'"),
    ("rules-not-a-list", route({"rules": {"backendRefs": []}}), "spec.rules",
     "must be of type array"),
    ("rule-null-item", route({"rules": [None]}), "spec.rules[0]",
     "Invalid value: null: must be of type object"),
    ("spec-not-object", route("rules"),  # type: ignore[arg-type]
     "spec", 'Invalid value: "rules": must be of type object'),
    ("listener-missing", make(GATEWAY, {"spec.listeners": DELETE}), "spec.listeners",
     "Required value"),
    ("listener-protocol-pattern", make(GATEWAY, {"spec.listeners[0].protocol": "HTTP 2"}),
     "spec.listeners[0].protocol", "should match"),
    ("duplicate-listener-name", make(GATEWAY, {"spec.listeners": [
        {"name": "http", "port": 80, "protocol": "HTTP"},
        {"name": "http", "port": 81, "protocol": "HTTP"}]}),
     "spec.listeners[1]", 'Duplicate value: {"name":"http"}'),
    ("bad-ip-address", make(GATEWAY, {"spec.addresses": [{"value": "10.0.0.300"}]}),
     "spec.addresses[0]", "(value must be a valid IPv4 address or must be a valid IPv6 "
     'address); or (type must not be "IPAddress")'),
    ("ip-type-forbidden-in-other-branch", make(GATEWAY, {"spec.addresses": [
        {"type": "IPAddress", "value": "lb.example.com"}]}),
     "spec.addresses[0]", 'type must not be "IPAddress"'),
    ("too-many-infra-labels", make(GATEWAY, {"spec.infrastructure": {
        "labels": {f"k{i}": "v" for i in range(9)}}}),
     "spec.infrastructure.labels", "Too many: 9: must have at most 8 properties"),
    ("infra-label-value", make(GATEWAY, {"spec.infrastructure": {"labels": {"a": "b c"}}}),
     "spec.infrastructure.labels[a]", 'Invalid value: "b c"'),
    ("allowed-routes-from", make(GATEWAY, {"spec.listeners[0].allowedRoutes": {
        "namespaces": {"from": "None"}}}),
     "spec.listeners[0].allowedRoutes.namespaces.from",
     'Unsupported value: "None": supported values: "All", "Selector", "Same"'),
    ("gatewayclass-controller", make(GATEWAY_CLASS, {"spec.controllerName": "lab"}),
     "spec.controllerName", "must be a domain-prefixed path"),
    ("gatewayclass-description", make(GATEWAY_CLASS, {"spec.description": "x" * 65}),
     "spec.description", "Too long: may not be more than 64 characters"),
    ("refgrant-empty-from", make(REFERENCE_GRANT, {"spec.from": []}), "spec.from",
     "must have at least 1 item"),
    ("refgrant-kind", make(REFERENCE_GRANT, {"spec.to[0].kind": "Service!"}), "spec.to[0].kind",
     "must be a kind name"),
    ("refgrant-missing-to", make(REFERENCE_GRANT, {"spec.to": DELETE}), "spec.to",
     "Required value"),
    ("refgrant-no-spec", make(REFERENCE_GRANT, {"spec": DELETE}), "spec", "Required value"),
]


@pytest.mark.parametrize(("obj", "field", "text"), [c[1:] for c in SCHEMA_CASES],
                         ids=[c[0] for c in SCHEMA_CASES])
def test_schema_violations(obj: dict[str, Any], field: str, text: str) -> None:
    found = find_problems(obj)
    assert any(p.field == field and text in p.message for p in found), [str(p) for p in found]
    with pytest.raises(ValidationError):
        validate(obj)


# --- CEL rules ------------------------------------------------------------------------------

FILTER_SITES = {
    "rule": "spec.rules[0].filters",
    "backend": "spec.rules[0].backendRefs[0].filters",
}
VALID_FILTER_FIELD: dict[str, Any] = {
    "cors": {"allowOrigins": ["https://example.com"]},
    "requestHeaderModifier": {"set": [{"name": "x-a", "value": "1"}]},
    "responseHeaderModifier": {"add": [{"name": "x-b", "value": "2"}]},
    "requestMirror": {"backendRef": {"name": "mirror", "port": 80}},
    "requestRedirect": {"scheme": "https"},
    "urlRewrite": {"hostname": "example.com"},
    "extensionRef": {"group": "example.com", "kind": "Thing", "name": "t"},
}
FILTER_TYPE = {
    "cors": "CORS", "requestHeaderModifier": "RequestHeaderModifier",
    "responseHeaderModifier": "ResponseHeaderModifier", "requestMirror": "RequestMirror",
    "requestRedirect": "RequestRedirect", "urlRewrite": "URLRewrite",
    "extensionRef": "ExtensionRef",
}
PATH_ONLY_MSG = "when type one of ['Exact', 'PathPrefix']"
PATH_CHARS = r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$"
HOST_RE = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def _filter(field: str, **extra: Any) -> dict[str, Any]:
    return {"type": FILTER_TYPE[field], field: VALID_FILTER_FIELD[field], **extra}


def _with_filters(site: str, filters: list[Any], matches: Any = None) -> dict[str, Any]:
    edits: dict[str, Any] = {FILTER_SITES[site]: filters}
    if matches is not None:
        edits["spec.rules[0].matches"] = matches
    return make(ROUTE, edits)


def _mirror(site: str, mirror: dict[str, Any]) -> dict[str, Any]:
    return _with_filters(site, [{"type": "RequestMirror", "requestMirror": mirror}])


def _path(value: str, path_type: str = "PathPrefix") -> dict[str, Any]:
    return make(ROUTE, {"spec.rules[0].matches": [{"path": {"type": path_type, "value": value}}]})


def _cel_cases() -> list[tuple[str, dict[str, Any], str, str, dict[str, Any] | None]]:
    """(id, object, field, exact CRD message, old object) - one per rule and location."""
    cases: list[tuple[str, dict[str, Any], str, str, dict[str, Any] | None]] = []

    def add(case_id: str, obj: dict[str, Any], field: str, message: str,
            old: dict[str, Any] | None = None) -> None:
        cases.append((case_id, obj, field, message, old))

    add("section-name-all-or-none", make(ROUTE, {"spec.parentRefs": [
        {"name": "gw", "sectionName": "http"}, {"name": "gw"}]}), "spec.parentRefs",
        "sectionName must be specified when parentRefs includes 2 or more references to the "
        "same parent")
    add("section-name-unique", make(ROUTE, {"spec.parentRefs": [
        {"name": "gw", "sectionName": "http"}, {"name": "gw", "sectionName": "http"}]}),
        "spec.parentRefs",
        "sectionName must be unique when parentRefs includes 2 or more references to the same "
        "parent")
    add("total-matches", route({"rules": [
        {"matches": [{"path": {"value": f"/r{r}/m{m}"}} for m in range(64 if r < 2 else 1)]}
        for r in range(3)]}), "spec.rules",
        "While 16 rules and 64 matches per rule are allowed, the total number of matches across "
        "all rules in a route must be less than 128")
    add("redirect-with-backends", _with_filters("rule", [_filter("requestRedirect")]),
        "spec.rules[0]", "RequestRedirect filter must not be used together with backendRefs")
    two_matches = [{"path": {"value": "/a"}}, {"path": {"value": "/b"}}]
    exact_match = [{"path": {"type": "Exact", "value": "/a"}}]
    for field, name in (("requestRedirect", "RequestRedirect"), ("urlRewrite", "URLRewrite")):
        prefix_filter = {"type": name, field: {"path": {"type": "ReplacePrefixMatch",
                                                        "replacePrefixMatch": "/x"}}}
        add(f"rule-{field}-prefix-needs-one-prefix-match",
            _with_filters("rule", [prefix_filter], two_matches), "spec.rules[0]",
            f"When using {name} filter with path.replacePrefixMatch, exactly one PathPrefix "
            "match must be specified")
        within = "When" if field == "urlRewrite" else "when"  # sic, as in the CRD
        add(f"backend-{field}-prefix-needs-one-prefix-match",
            _with_filters("backend", [prefix_filter], exact_match), "spec.rules[0]",
            f"Within backendRefs, {within} using {name} filter with path.replacePrefixMatch, "
            "exactly one PathPrefix match must be specified")
    add("backend-needs-port", make(ROUTE, {"spec.rules[0].backendRefs[0].port": DELETE}),
        "spec.rules[0].backendRefs[0]", "Must have port for Service reference")
    for site, base in FILTER_SITES.items():
        add(f"{site}-mirror-needs-port", _mirror(site, {"backendRef": {"name": "m"}}),
            f"{base}[0].requestMirror.backendRef", "Must have port for Service reference")
        add(f"{site}-redirect-and-rewrite",
            _with_filters(site, [_filter("requestRedirect"), _filter("urlRewrite")]), base,
            "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, "
            "but not both")
        for field in ("cors", "requestHeaderModifier", "responseHeaderModifier",
                      "requestRedirect", "urlRewrite"):
            add(f"{site}-{field}-repeated", _with_filters(site, [_filter(field), _filter(field)]),
                base, f"{FILTER_TYPE[field]} filter cannot be repeated")
        for field, filter_type in FILTER_TYPE.items():
            other = "cors" if field != "cors" else "requestHeaderModifier"
            add(f"{site}-{field}-must-be-nil",
                _with_filters(site, [_filter(other, **{field: VALID_FILTER_FIELD[field]})]),
                f"{base}[0]", f"filter.{field} must be nil if the filter.type is not {filter_type}")
            add(f"{site}-{field}-must-be-set", _with_filters(site, [{"type": filter_type}]),
                f"{base}[0]", f"filter.{field} must be specified for {filter_type} filter.type")
        for key, noun, items in (("allowHeaders", "methods", ["*", "x-a"]),
                                 ("allowMethods", "methods", ["*", "GET"]),
                                 ("allowOrigins", "origins", ["*", "https://a.example.com"])):
            add(f"{site}-cors-{key}-star", _with_filters(site, [{"type": "CORS", "cors": {
                key: items}}]), f"{base}[0].cors.{key}",
                f"{key[0].upper()}{key[1:]} cannot contain '*' alongside other {noun}")
        add(f"{site}-mirror-percent-and-fraction", _mirror(site, {
            "backendRef": {"name": "m", "port": 80}, "percent": 10,
            "fraction": {"numerator": 1}}), f"{base}[0].requestMirror",
            "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter")
        add(f"{site}-mirror-numerator", _mirror(site, {
            "backendRef": {"name": "m", "port": 80},
            "fraction": {"numerator": 101}}), f"{base}[0].requestMirror.fraction",
            "numerator must be less than or equal to denominator")
        for field, name in (("requestRedirect", "RequestRedirect"), ("urlRewrite", "URLRewrite")):
            where = f"{base}[0].{field}.path"
            for path_type, key, other_key in (
                    ("ReplaceFullPath", "replaceFullPath", "replacePrefixMatch"),
                    ("ReplacePrefixMatch", "replacePrefixMatch", "replaceFullPath")):
                add(f"{site}-{field}-{key}-missing", _with_filters(site, [
                    {"type": name, field: {"path": {"type": path_type}}}]), where,
                    f"{key} must be specified when type is set to '{path_type}'")
                other_type = ("ReplacePrefixMatch" if path_type == "ReplaceFullPath"
                              else "ReplaceFullPath")
                add(f"{site}-{field}-{key}-wrong-type", _with_filters(site, [
                    {"type": name, field: {"path": {"type": other_type, other_key: "/o",
                                                    key: "/x"}}}]),
                    where, f"type must be '{path_type}' when {key} is set")
    match_path = "spec.rules[0].matches[0].path"
    add("path-absolute", _path("api"), match_path,
        f"value must be an absolute path and start with '/' {PATH_ONLY_MSG}")
    for bad, value in (("//", "/a//b"), ("/./", "/a/./b"), ("/../", "/a/../b"), ("%2f", "/a%2fb"),
                       ("%2F", "/a%2Fb"), ("#", "/a#b")):
        add(f"path-contains-{bad}", _path(value, "Exact"), match_path,
            f"must not contain '{bad}' {PATH_ONLY_MSG}")
    for bad in ("/..", "/."):
        add(f"path-ends-{bad}", _path("/a" + bad), match_path,
            f"must not end with '{bad}' {PATH_ONLY_MSG}")
    add("path-type", _path("/", "Prefix"), match_path,
        "type must be one of ['Exact', 'PathPrefix', 'RegularExpression']")
    add("path-chars", _path("/a b"), match_path,
        f"must only contain valid characters (matching {PATH_CHARS}) for types ['Exact', "
        "'PathPrefix']")
    add("timeouts", make(ROUTE, {"spec.rules[0].timeouts": {"request": "1s",
                                                            "backendRequest": "1001ms"}}),
        "spec.rules[0].timeouts", "backendRequest timeout cannot be longer than request timeout")

    gw = "spec.listeners"
    for address_type, value in (("IPAddress", "10.0.0.1"), ("Hostname", "lb.example.com")):
        add(f"unique-{address_type}", make(GATEWAY, {"spec.addresses": [
            {"type": address_type, "value": value}] * 2}), "spec.addresses",
            f"{address_type} values must be unique")
    add("address-hostname", make(GATEWAY, {"spec.addresses": [
        {"type": "Hostname", "value": "LB.example.com"}]}), "spec.addresses[0]",
        f"Hostname value must be empty or contain only valid characters (matching {HOST_RE})")
    for what, noun in (("annotations", "annotation"), ("labels", "label")):
        add(f"infra-{what}-key", make(GATEWAY, {"spec.infrastructure": {what: {"bad key": "v"}}}),
            f"spec.infrastructure.{what}",
            f"{noun.capitalize()} keys must be in the form of an optional DNS subdomain prefix "
            "followed by a required name segment of up to 63 characters.")
        long_prefix = ".".join(["a" * 60] * 5)[:253]
        add(f"infra-{what}-prefix", make(GATEWAY, {"spec.infrastructure": {
            what: {f"{long_prefix}/k": "v"}}}), f"spec.infrastructure.{what}",
            f"If specified, the {noun} key's prefix must be a DNS subdomain not longer than 253 "
            "characters in total.")
    listener = {"name": "x", "port": 443, "protocol": "HTTPS"}
    add("tls-on-http", make(GATEWAY, {"spec.listeners[0].tls": {"certificateRefs": [
        {"name": "c"}]}}), gw, "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']")
    add("https-passthrough", make(GATEWAY, {"spec.listeners": [
        {**listener, "tls": {"mode": "Passthrough"}}]}), gw,
        "tls mode must be Terminate for protocol HTTPS")
    add("tls-without-mode", make(GATEWAY, {"spec.listeners": [
        {"name": "t", "port": 443, "protocol": "TLS"}]}), gw,
        "tls mode must be set for protocol TLS")
    add("tcp-hostname", make(GATEWAY, {"spec.listeners": [
        {"name": "t", "port": 9000, "protocol": "TCP", "hostname": "a.example.com"}]}), gw,
        "hostname must not be specified for protocols ['TCP', 'UDP']")
    add("listener-name-unique", make(GATEWAY, {"spec.listeners": [
        {"name": "http", "port": 80, "protocol": "HTTP"},
        {"name": "http", "port": 81, "protocol": "HTTP"}]}), gw,
        "Listener name must be unique within the Gateway")
    add("listener-combination-unique", make(GATEWAY, {"spec.listeners": [
        {"name": "a", "port": 80, "protocol": "HTTP"},
        {"name": "b", "port": 80, "protocol": "HTTP"}]}), gw,
        "Combination of port, protocol and hostname must be unique for each listener")
    add("terminate-needs-certs", make(GATEWAY, {"spec.listeners": [{**listener, "tls": {}}]}),
        "spec.listeners[0].tls",
        "certificateRefs or options must be specified when mode is Terminate")
    refs = {"validation": {"caCertificateRefs": [{"group": "", "kind": "ConfigMap",
                                                  "name": "ca"}]}}
    add("per-port-unique", make(GATEWAY, {"spec.tls": {"frontend": {
        "default": refs, "perPort": [{"port": 443, "tls": refs}, {"port": 443, "tls": refs}]}}}),
        "spec.tls.frontend.perPort", "Port for TLS configuration must be unique within the Gateway")
    add("controller-immutable", make(GATEWAY_CLASS, {"spec.controllerName": "example.com/other"}),
        "spec.controllerName", "Value is immutable", old=GATEWAY_CLASS)
    return cases


CEL_CASES = _cel_cases()


@pytest.mark.parametrize(("obj", "field", "message", "old"), [c[1:] for c in CEL_CASES],
                         ids=[c[0] for c in CEL_CASES])
def test_cel_rule_violations(obj: dict[str, Any], field: str, message: str,
                             old: dict[str, Any] | None) -> None:
    found = find_problems(obj, old=old)
    assert any(p.field == field and p.detail == message for p in found), [str(p) for p in found]
    hit = next(p for p in found if p.field == field and p.detail == message)
    assert hit.message.startswith("Invalid value: ") and hit.message.endswith(f": {message}")


def _vendored_rules() -> list[tuple[str, str, str, str]]:
    """(plural, version, location, message) of every x-kubernetes-validations entry."""
    found: list[tuple[str, str, str, str]] = []

    def walk(schema: dict[str, Any], loc: str, plural: str, version: str) -> None:
        for rule in schema.get("x-kubernetes-validations", []):
            found.append((plural, version, loc, rule["message"]))
        for name, sub in (schema.get("properties") or {}).items():
            walk(sub, f"{loc}.{name}", plural, version)
        if "items" in schema:
            walk(schema["items"], f"{loc}[]", plural, version)
        if isinstance(schema.get("additionalProperties"), dict):
            walk(schema["additionalProperties"], f"{loc}{{}}", plural, version)

    for plural in CRD_PLURALS:
        for version in load_crd(plural)["versions"]:
            walk(openapi_schema(plural, version["name"]), "", plural, version["name"])
    return found


def _skipped(plural: str, loc: str) -> bool:
    return any(plural == p and loc.startswith(prefix) for p, prefix in SKIPPED)


def test_every_cel_rule_has_a_python_check() -> None:
    rules = _vendored_rules()
    assert len(rules) > 200  # both versions of three CRDs
    implemented = set(CEL_RULES) | set(TRANSITION_RULES)
    missing = [r for r in rules if (r[0], r[2], r[3]) not in implemented and not _skipped(
        r[0], r[2])]
    assert missing == []
    vendored = {(p, loc, m) for p, _, loc, m in rules}
    assert implemented - vendored == set(), "checks registered for rules the CRDs do not have"


def test_every_cel_rule_has_a_failing_case() -> None:
    covered = {(KINDS[obj["kind"]].plural, location(field), message)
               for _, obj, field, message, _ in CEL_CASES}
    wanted = {(p, loc, m) for p, _, loc, m in _vendored_rules() if not _skipped(p, loc)}
    assert wanted - covered == set()


def test_cel_rules_hold_at_their_boundaries() -> None:
    fine = [
        make(ROUTE, {"spec.rules[0].timeouts": {"request": "1s", "backendRequest": "1000ms"}}),
        make(ROUTE, {"spec.rules[0].timeouts": {"request": "0s", "backendRequest": "1h"}}),
        make(ROUTE, {"spec.rules[0].timeouts": {"backendRequest": "1h"}}),
        _mirror("rule", {"backendRef": {"name": "m", "port": 80},
                         "fraction": {"numerator": 100}}),
        _mirror("backend", {"backendRef": {"name": "m", "port": 80}, "percent": 0}),
        _with_filters("rule", [{"type": "CORS", "cors": {"allowOrigins": ["*"],
                                                         "allowMethods": ["*"]}}]),
        make(ROUTE, {"spec.rules[0].backendRefs[0]": {"name": "b", "group": "example.com",
                                                      "kind": "Bucket"}}),
        make(ROUTE, {"spec.parentRefs": [{"name": "gw", "sectionName": "a"},
                                         {"name": "gw", "sectionName": "b"},
                                         {"name": "gw", "namespace": "x"}]}),
        _path("/a/b..c/.d", "Exact"),
        _path("[a-z]+//", "RegularExpression"),
        _with_filters("backend", [{"type": "URLRewrite", "urlRewrite": {"path": {
            "type": "ReplacePrefixMatch", "replacePrefixMatch": "/x"}}}]),
        make(GATEWAY, {"spec.listeners": [
            {"name": "a", "port": 80, "protocol": "HTTP", "hostname": "a.example.com"},
            {"name": "b", "port": 80, "protocol": "HTTP", "hostname": "b.example.com"},
            {"name": "c", "port": 80, "protocol": "HTTP"}]}),
        make(GATEWAY, {"spec.addresses": [{"type": "Hostname", "value": "a.example.com"},
                                          {"type": "Hostname", "value": "b.example.com"},
                                          {"type": "IPAddress", "value": "10.0.0.1"},
                                          {"type": "IPAddress", "value": "10.0.0.2"}]}),
    ]
    for obj in fine:
        assert messages(obj) == [], json.dumps(obj["spec"])
    same = make(GATEWAY_CLASS, {"metadata.labels": {"a": "b"}})
    assert messages(same, old=GATEWAY_CLASS) == []
    # Without the old object (create), a transition rule does not run.
    assert messages(make(GATEWAY_CLASS, {"spec.controllerName": "example.com/x"})) == []


def test_exists_one_quirk_is_kept() -> None:
    # The CRD counts replacePrefixMatch filters with exists_one: two of them escape the rule.
    two = [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch",
                                                         "replacePrefixMatch": "/x"}}}] * 2
    found = find_problems(_with_filters("rule", two, [{"path": {"type": "Exact",
                                                                "value": "/a"}}]))
    assert [p.detail for p in found] == ["URLRewrite filter cannot be repeated"]


def test_parse_duration() -> None:
    assert parse_duration("1h30m") == 5_400_000
    assert parse_duration("500ms") == 500
    assert parse_duration("1m1s1ms") == 61_001
    with pytest.raises(ValueError):
        parse_duration("10 s")


# --- metadata -------------------------------------------------------------------------------

METADATA_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("name-missing", make(ROUTE, {"metadata.name": DELETE}), "metadata.name", "Required value"),
    ("name-empty", make(ROUTE, {"metadata.name": ""}), "metadata.name", "Required value"),
    ("generate-name", make(ROUTE, {"metadata.name": DELETE, "metadata.generateName": "web-"}),
     "metadata.generateName", "Forbidden: generateName is not supported"),
    ("name-uppercase", make(ROUTE, {"metadata.name": "Task_API"}), "metadata.name",
     'Invalid value: "Task_API": must be a lowercase RFC 1123 subdomain'),
    ("name-too-long", make(DEPLOYMENT, {"metadata.name": "a" * 254}), "metadata.name",
     "must be no more than 253 characters"),
    ("service-name-digit", make(SERVICE, {"metadata.name": "1-api"}), "metadata.name",
     "must be a DNS-1035 label"),
    ("service-name-dot", make(SERVICE, {"metadata.name": "task.api"}), "metadata.name",
     "must be a DNS-1035 label"),
    ("namespace-name-long", make(NAMESPACE, {"metadata.name": "a" * 64}), "metadata.name",
     "must be no more than 63 characters"),
    ("namespace-missing", make(ROUTE, {"metadata.namespace": DELETE}), "metadata.namespace",
     "Required value"),
    ("namespace-bad", make(ROUTE, {"metadata.namespace": "Default"}), "metadata.namespace",
     "must be a lowercase RFC 1123 label"),
    ("label-value-int", make(ROUTE, {"metadata.labels": {"version": 2}}),
     "metadata.labels[version]", "Invalid value: 2: must be of type string (quote it in YAML"),
    ("label-value-bad", make(ROUTE, {"metadata.labels": {"version": "v 1"}}),
     "metadata.labels[version]", "a label value must be empty or consist of"),
    ("label-key-bad", make(ROUTE, {"metadata.labels": {"bad key": "x"}}), "metadata.labels",
     'Invalid value: "bad key": label key name part must consist of'),
    ("label-key-prefix", make(ROUTE, {"metadata.labels": {"Example.com/x": "x"}}),
     "metadata.labels", "label key prefix part must be a lowercase RFC 1123 subdomain"),
    ("annotation-value", make(ROUTE, {"metadata.annotations": {"a": True}}),
     "metadata.annotations[a]", "must be of type string"),
    ("annotations-too-big", make(ROUTE, {"metadata.annotations": {"a": "x" * 262145}}),
     "metadata.annotations", "Too long"),
    ("unknown-metadata", make(ROUTE, {"metadata.lables": {}}), "metadata.lables",
     'unknown field "metadata.lables" (did you mean "labels"?)'),
    ("metadata-not-object", make(ROUTE, {"metadata": "web"}), "metadata",
     "must be of type object"),
    ("finalizer-bad", make(ROUTE, {"metadata.finalizers": ["a b"]}), "metadata.finalizers[0]",
     "name part must consist of"),
    ("generation-string", make(ROUTE, {"metadata.generation": "1"}), "metadata.generation",
     "must be of type integer"),
]


@pytest.mark.parametrize(("obj", "field", "text"), [c[1:] for c in METADATA_CASES],
                         ids=[c[0] for c in METADATA_CASES])
def test_metadata_violations(obj: dict[str, Any], field: str, text: str) -> None:
    found = find_problems(obj)
    assert any(p.field == field and text in p.message for p in found), [str(p) for p in found]


def test_standard_metadata_fields_are_kept() -> None:
    meta = {"name": "web", "namespace": "default", "uid": "1234", "resourceVersion": "7",
            "generation": 3, "creationTimestamp": "2024-01-01T00:00:00Z",
            "managedFields": [{"manager": "kubectl"}], "finalizers": ["example.com/keep"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "Namespace", "name": "default",
                                 "uid": "9"}],
            "labels": {"app": "web", "example.com/tier": ""}, "annotations": {"note": "hi"}}
    assert validate(make(ROUTE, {"metadata": meta}))["metadata"] == meta


def test_deployment_names_may_start_with_a_digit_but_services_may_not() -> None:
    assert messages(make(DEPLOYMENT, {"metadata.name": "1-api"})) == []
    assert messages(make(SERVICE, {"metadata.name": "1-api"})) != []


# --- apiVersion and kind --------------------------------------------------------------------


def test_unknown_kind_lists_the_accepted_ones() -> None:
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "web", "namespace": "default"}}
    with pytest.raises(ValidationError) as info:
        validate(obj)
    assert info.value.field == "kind"
    assert info.value.problem == (
        'Unsupported value: "Ingress": supported values: "Deployment", "Gateway", '
        '"GatewayClass", "HTTPRoute", "Namespace", "ReferenceGrant", "Service"')


def test_kind_in_the_wrong_case_gets_a_hint() -> None:
    [problem] = find_problems(make(ROUTE, {"kind": "httproute"}))
    assert problem.field == "kind" and problem.message.endswith('(did you mean "HTTPRoute"?)')


def test_wrong_api_version_names_the_accepted_ones() -> None:
    [problem] = find_problems(make(ROUTE, {"apiVersion": "v1"}))
    assert problem.field == "apiVersion"
    assert problem.message == (
        'Unsupported value: "v1": supported values: "gateway.networking.k8s.io/v1", '
        '"gateway.networking.k8s.io/v1beta1"')
    [problem] = find_problems(make(DEPLOYMENT, {"apiVersion": "extensions/v1beta1"}))
    assert problem.message.endswith('supported values: "apps/v1"')


def test_missing_kind_and_api_version() -> None:
    assert [p.field for p in find_problems(make(ROUTE, {"kind": DELETE}))] == ["kind"]
    assert [p.field for p in find_problems(make(ROUTE, {"apiVersion": DELETE}))] == ["apiVersion"]
    with pytest.raises(ValidationError) as info:
        validate(["not", "an", "object"])  # type: ignore[arg-type]
    assert info.value.kind == "object"


# --- Service, Deployment, Namespace --------------------------------------------------------

CORE_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("svc-no-ports", make(SERVICE, {"spec.ports": DELETE}), "spec.ports", "Required value"),
    ("svc-port-zero", make(SERVICE, {"spec.ports[0].port": 0}), "spec.ports[0].port",
     "must be greater than or equal to 1"),
    ("svc-target-port-range", make(SERVICE, {"spec.ports[0].targetPort": 70000}),
     "spec.ports[0].targetPort", "must be between 1 and 65535, inclusive"),
    ("svc-target-port-name", make(SERVICE, {"spec.ports[0].targetPort": "HTTP_port"}),
     "spec.ports[0].targetPort", "must contain only lowercase letters, digits and '-'"),
    ("svc-target-port-long", make(SERVICE, {"spec.ports[0].targetPort": "http-port-number-1"}),
     "spec.ports[0].targetPort", "must be no more than 15 characters"),
    ("svc-target-port-bool", make(SERVICE, {"spec.ports[0].targetPort": True}),
     "spec.ports[0].targetPort", "must be of type integer or string"),
    ("svc-protocol", make(SERVICE, {"spec.ports[0].protocol": "HTTP"}), "spec.ports[0].protocol",
     'Unsupported value: "HTTP": supported values: "TCP", "UDP", "SCTP"'),
    ("svc-type", make(SERVICE, {"spec.type": "Internal"}), "spec.type", "Unsupported value"),
    ("svc-port-names-required", make(SERVICE, {"spec.ports": [
        {"name": "http", "port": 80}, {"port": 81}]}), "spec.ports[1].name", "Required value"),
    ("svc-port-names-unique", make(SERVICE, {"spec.ports": [
        {"name": "http", "port": 80}, {"name": "http", "port": 81}]}),
     "spec.ports[1].name", 'Duplicate value: "http"'),
    ("svc-port-duplicate", make(SERVICE, {"spec.ports": [
        {"name": "a", "port": 80}, {"name": "b", "port": 80}]}),
     "spec.ports[1]", 'Duplicate value: {"port":80,"protocol":"TCP"}'),
    ("svc-port-name-bad", make(SERVICE, {"spec.ports[0].name": "Web"}), "spec.ports[0].name",
     "must be a lowercase RFC 1123 label"),
    ("svc-node-port-cluster-ip", make(SERVICE, {"spec.ports[0].nodePort": 30080}),
     "spec.ports[0].nodePort", "Forbidden: may not be used when type is 'ClusterIP'"),
    ("svc-unknown-field", make(SERVICE, {"spec.port": 80}), "spec.port",
     'unknown field "spec.port" (did you mean "ports"?)'),
    ("svc-selector-value", make(SERVICE, {"spec.selector": {"app": "task api"}}),
     "spec.selector[app]", "a label value must be empty or consist of"),
    ("svc-cluster-ip", make(SERVICE, {"spec.clusterIP": "10.0.0"}), "spec.clusterIP",
     "must be an IP address, 'None' or empty"),
    ("svc-external-name", make(SERVICE, {"spec.type": "ExternalName"}), "spec.externalName",
     "Required value"),
    ("dep-replicas-negative", make(DEPLOYMENT, {"spec.replicas": -1}), "spec.replicas",
     "Invalid value: -1: must be greater than or equal to 0"),
    ("dep-replicas-string", make(DEPLOYMENT, {"spec.replicas": "2"}), "spec.replicas",
     "must be of type integer"),
    ("dep-selector-mismatch", make(DEPLOYMENT, {"spec.selector.matchLabels.version": "v2"}),
     "spec.template.metadata.labels", "selector does not match template labels"),
    ("dep-selector-missing-labels", make(DEPLOYMENT, {"spec.template.metadata.labels": DELETE}),
     "spec.template.metadata.labels", "selector does not match template labels"),
    ("dep-selector-expression-mismatch", make(DEPLOYMENT, {"spec.selector": {
        "matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["task-api"]}]}}),
     "spec.template.metadata.labels", "selector does not match template labels"),
    ("dep-selector-empty", make(DEPLOYMENT, {"spec.selector": {}}), "spec.selector",
     "empty selector is invalid for deployment"),
    ("dep-selector-missing", make(DEPLOYMENT, {"spec.selector": DELETE}), "spec.selector",
     "Required value"),
    ("dep-selector-in-without-values", make(DEPLOYMENT, {"spec.selector.matchExpressions": [
        {"key": "app", "operator": "In"}]}),
     "spec.selector.matchExpressions[0].values", "Required value"),
    ("dep-selector-operator", make(DEPLOYMENT, {"spec.selector.matchExpressions": [
        {"key": "app", "operator": "Equals", "values": ["a"]}]}),
     "spec.selector.matchExpressions[0].operator", "Unsupported value"),
    ("dep-no-containers", make(DEPLOYMENT, {"spec.template.spec.containers": []}),
     "spec.template.spec.containers", "must have at least 1 item"),
    ("dep-image-missing", make(DEPLOYMENT, {"spec.template.spec.containers[0].image": DELETE}),
     "spec.template.spec.containers[0].image", "Required value"),
    ("dep-container-name", make(DEPLOYMENT, {"spec.template.spec.containers[0].name": "API"}),
     "spec.template.spec.containers[0].name", "must be a lowercase RFC 1123 label"),
    ("dep-container-duplicate", make(DEPLOYMENT, {"spec.template.spec.initContainers": [
        {"name": "task-api", "image": "task-api:v1"}]}),
     "spec.template.spec.containers[0].name", 'Duplicate value: "task-api"'),
    ("dep-unknown-container-field", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].imagePullpolicy": "Always"}),
     "spec.template.spec.containers[0].imagePullpolicy",
     'unknown field "spec.template.spec.containers[0].imagePullpolicy" (did you mean '
     '"imagePullPolicy"?)'),
    ("dep-pull-policy", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].imagePullPolicy": "Sometimes"}),
     "spec.template.spec.containers[0].imagePullPolicy",
     'supported values: "Always", "IfNotPresent", "Never"'),
    ("dep-restart-policy", make(DEPLOYMENT, {"spec.template.spec.restartPolicy": "Never"}),
     "spec.template.spec.restartPolicy", 'Unsupported value: "Never": supported values: "Always"'),
    ("dep-container-port", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].ports[0].containerPort": 0}),
     "spec.template.spec.containers[0].ports[0].containerPort",
     "must be greater than or equal to 1"),
    ("dep-port-name", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].ports[0].name": "http-port-number-1"}),
     "spec.template.spec.containers[0].ports[0].name", "must be no more than 15 characters"),
    ("dep-env-name", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].env[0].name": "1VERSION"}),
     "spec.template.spec.containers[0].env[0].name",
     "a valid environment variable name must consist of"),
    ("dep-env-value-int", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].env[1].value": 0}),
     "spec.template.spec.containers[0].env[1].value",
     "Invalid value: 0: must be of type string (quote it in YAML: '0')"),
    ("dep-env-value-and-from", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].env[2].value": "x"}),
     "spec.template.spec.containers[0].env[2].valueFrom",
     "may not be specified when `value` is not empty"),
    ("dep-env-field-path", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].env[2].valueFrom.fieldRef": {}}),
     "spec.template.spec.containers[0].env[2].valueFrom.fieldRef.fieldPath", "Required value"),
    ("dep-probe-no-handler", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].readinessProbe": {"periodSeconds": 2}}),
     "spec.template.spec.containers[0].readinessProbe", "must specify a handler type"),
    ("dep-probe-two-handlers", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].livenessProbe.tcpSocket": {"port": 8000}}),
     "spec.template.spec.containers[0].livenessProbe.tcpSocket",
     "may not specify more than 1 handler type"),
    ("dep-probe-port", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].readinessProbe.httpGet.port": 0}),
     "spec.template.spec.containers[0].readinessProbe.httpGet.port",
     "must be between 1 and 65535, inclusive"),
    ("dep-probe-path", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].readinessProbe.httpGet.path": "health"}),
     "spec.template.spec.containers[0].readinessProbe.httpGet.path", "must start with '/'"),
    ("dep-liveness-success", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].livenessProbe.successThreshold": 2}),
     "spec.template.spec.containers[0].livenessProbe.successThreshold", "must be 1"),
    ("dep-quantity", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].resources.requests.memory": "64 MB"}),
     "spec.template.spec.containers[0].resources.requests[memory]",
     "must be a quantity such as"),
    ("dep-request-over-limit", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].resources.requests.cpu": "1500m"}),
     "spec.template.spec.containers[0].resources.requests[cpu]",
     'Invalid value: "1500m": must be less than or equal to cpu limit of 1'),
    ("dep-resource-name", make(DEPLOYMENT, {
        "spec.template.spec.containers[0].resources.limits.gpu": "1"}),
     "spec.template.spec.containers[0].resources.limits[gpu]", "must be a standard resource"),
    ("dep-recreate-rolling", make(DEPLOYMENT, {"spec.strategy.type": "Recreate"}),
     "spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy"),
    ("dep-rolling-zero", make(DEPLOYMENT, {"spec.strategy.rollingUpdate": {
        "maxSurge": 0, "maxUnavailable": "0%"}}),
     "spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0"),
    ("dep-rolling-percent", make(DEPLOYMENT, {"spec.strategy.rollingUpdate.maxSurge": "half"}),
     "spec.strategy.rollingUpdate.maxSurge", "must be an integer or a percentage"),
    ("dep-template-label", make(DEPLOYMENT, {"spec.template.metadata.labels.app": "task api"}),
     "spec.template.metadata.labels[app]", "a label value must be empty"),
    ("dep-no-template", make(DEPLOYMENT, {"spec.template": DELETE}), "spec.template",
     "Required value"),
    ("dep-no-spec", make(DEPLOYMENT, {"spec": DELETE}), "spec", "Required value"),
    ("ns-unknown-spec", make(NAMESPACE, {"spec": {"finalizer": []}}), "spec.finalizer",
     'unknown field "spec.finalizer" (did you mean "finalizers"?)'),
    ("ns-name", make(NAMESPACE, {"metadata.name": "team.a"}), "metadata.name",
     "must be a lowercase RFC 1123 label"),
]


@pytest.mark.parametrize(("obj", "field", "text"), [c[1:] for c in CORE_CASES],
                         ids=[c[0] for c in CORE_CASES])
def test_core_kind_violations(obj: dict[str, Any], field: str, text: str) -> None:
    found = find_problems(obj)
    assert any(p.field == field and text in p.message for p in found), [str(p) for p in found]


# --- kinds and CLI spellings ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind"), [
    ("httproute", "HTTPRoute"), ("HTTPRoute", "HTTPRoute"), ("httproutes", "HTTPRoute"),
    ("httproutes.gateway.networking.k8s.io", "HTTPRoute"),
    ("httproute.v1.gateway.networking.k8s.io", "HTTPRoute"),
    ("HTTPRoute.gateway.networking.k8s.io", "HTTPRoute"),
    ("svc", "Service"), ("services", "Service"), ("service", "Service"), ("services.v1", "Service"),
    ("deploy", "Deployment"), ("deployments.apps", "Deployment"),
    ("deployment.v1.apps", "Deployment"), ("ns", "Namespace"), ("namespaces", "Namespace"),
    ("gateway", "Gateway"), ("gtw", "Gateway"), ("gateways", "Gateway"),
    ("gc", "GatewayClass"), ("gatewayclasses", "GatewayClass"),
    ("refgrant", "ReferenceGrant"), ("referencegrants.gateway.networking.k8s.io",
                                     "ReferenceGrant"),
    (" Svc ", "Service"),
])
def test_resolve_kind(text: str, kind: str) -> None:
    assert resolve_kind(text).kind == kind


@pytest.mark.parametrize("text", ["foo", "route", "deployments.extensions",
                                  "httproutes.v2.gateway.networking.k8s.io", "svc.apps", ""])
def test_resolve_kind_unknown(text: str) -> None:
    with pytest.raises(NotFoundError) as info:
        resolve_kind(text)
    assert str(info.value) == f'the server doesn\'t have a resource type "{text}"'


def test_kind_info() -> None:
    info = KINDS["HTTPRoute"]
    assert isinstance(info, KindInfo)
    assert info == KindInfo("HTTPRoute", "gateway.networking.k8s.io", ("v1", "v1beta1"),
                            "httproutes", True, ("httproute", "httproutes"))
    assert info.resource == "httproutes.gateway.networking.k8s.io"
    assert info.qualified_singular == "httproute.gateway.networking.k8s.io"
    assert KINDS["Deployment"].qualified_singular == "deployment.apps"
    assert KINDS["Service"].api_versions == ("v1",)
    assert KINDS["Service"].resource == "services"
    assert KINDS["Namespace"].namespaced is False
    assert "svc" in KINDS["Service"].short_names and "deploy" in KINDS["Deployment"].short_names
    with pytest.raises(AttributeError):
        info.kind = "Other"  # type: ignore[misc]


@pytest.mark.parametrize("plural", CRD_PLURALS)
def test_kinds_agree_with_the_vendored_crds(plural: str) -> None:
    crd = load_crd(plural)
    info = KINDS[crd["kind"]]
    assert info.plural == plural and info.group == crd["group"]
    assert info.versions == tuple(v["name"] for v in crd["versions"])
    assert info.namespaced == (crd["scope"] == "Namespaced")
    assert set(crd["shortNames"]) <= set(info.short_names)
    assert crd["bundleVersion"] == "v1.6.1" and crd["channel"] == "standard"


# --- vendored data and regex translation -----------------------------------------------------


def test_vendored_crds_are_compact_and_keep_the_rules() -> None:
    folder = ROOT / "trafficlab" / "resources" / "crds"
    notice = (folder / "NOTICE").read_text()
    assert "v1.6.1" in notice and "8bb74df00e56ec8f944d48c25e6c1c9c2f6848e3" in notice
    assert "Apache" in notice
    for plural in CRD_PLURALS:
        text = (folder / f"{plural}.json").read_text()
        assert "\n" not in text.rstrip("\n")
        assert "x-kubernetes-validations" in text
        assert '"description":"' not in text  # only the GatewayClass property is kept
    schema = openapi_schema("gatewayclasses", "v1")
    assert "description" in schema["properties"]["spec"]["properties"]


@pytest.mark.skipif(not SHARED.exists(), reason="needs the shared reference folder")
def test_vendor_script_reproduces_the_committed_files(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("vendor_crds", ROOT / "scripts" /
                                                  "vendor_crds.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--source", str(SHARED), "--out", str(tmp_path)]) == 0
    folder = ROOT / "trafficlab" / "resources" / "crds"
    for name in [*(f"{p}.json" for p in CRD_PLURALS), "NOTICE"]:
        assert (tmp_path / name).read_text() == (folder / name).read_text(), name


def test_go_patterns_use_end_of_text_and_search_semantics() -> None:
    assert go_regex("^a$").search("a")
    assert not go_regex("^a$").search("a\n")
    assert go_regex("b").search("abc")  # unanchored, like Go's MatchString
    assert go_regex(r"^[\d]+\z").search("12")
    assert not go_regex(r"^\d+$").search("١٢")  # ASCII digits only, as in RE2
    assert go_regex("[$]").search("$")


def test_every_hand_written_check_is_attached_to_a_schema_node() -> None:
    # A typo in a location would silently switch a check off.
    from trafficlab.resources._core import iter_check_locations
    from trafficlab.resources._validate import schema_node

    pairs = list(iter_check_locations())
    assert len(pairs) > 10
    for kind, loc in pairs:
        assert schema_node(kind, KINDS[kind].versions[0]).find(loc).checks, (kind, loc)


def test_every_vendored_pattern_compiles_cleanly() -> None:
    from trafficlab.resources._regex import _translate

    patterns: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                patterns.add(node["pattern"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    for plural in CRD_PLURALS:
        collect(load_crd(plural))
    assert len(patterns) > 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for pattern in patterns:
            re.compile(_translate(pattern), re.ASCII)


def _paths(node: Any, prefix: tuple[str | int, ...]) -> list[tuple[str | int, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


@pytest.mark.parametrize("name", ["route-rich", "gateway-rich", "deployment", "service",
                                  "reference-grant-v1"])
def test_malformed_values_anywhere_give_problems_not_crashes(name: str) -> None:
    good = GOOD_OBJECTS[name]
    for path in _paths(good["spec"], ("spec",)):
        junk: Any
        for junk in (None, "x", 7, True, [], {}, [None]):
            obj = copy.deepcopy(good)
            node: Any = obj
            for token in path[:-1]:
                node = node[token]
            node[path[-1]] = junk
            found = find_problems(obj)  # must not raise
            assert all(isinstance(p, Problem) for p in found)


def test_problem_str() -> None:
    problem = Problem("spec.x", "Required value", "is required")
    assert str(problem) == "spec.x: Required value"
    assert str(Problem("", "Invalid value: 1: bad")) == "Invalid value: 1: bad"
