"""Hand-written schemas for Namespace, Service, Deployment and ReferenceGrant.

Kubernetes validates its built-in kinds with Go code, not schemas; here the fields a lab
uses are written as OpenAPI schemas (so the same engine prunes, defaults and reports
unknown fields) plus Python checks for the rules Go code enforces (selector must match
the template labels, named ports, probes with one handler...). The subset covers what a
normal manifest for a web service carries: labels, selectors, ports, env, probes,
resources, imagePullPolicy, strategy, security contexts.

ReferenceGrant is a Gateway API CRD that the reference folder does not ship; its schema
below restates the standard-channel CRD (v1 and v1beta1 are the same; no CEL rules).

Defaults are the apiserver's where the lab depends on them: Service ``type: ClusterIP``,
port ``protocol: TCP``, ``targetPort`` = ``port``; Deployment ``replicas: 1``; container
port ``protocol: TCP``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeGuard

from . import _names
from ._metadata import check_annotations, check_labels
from ._problems import Problem, duplicate, forbidden, invalid, required
from ._schema import Check
from ._selectors import selector_matches

__all__ = ["CORE_CHECKS", "CORE_SCHEMAS", "parse_quantity"]

Schema = dict[str, Any]


def _s(**kw: Any) -> Schema:
    return {"type": "string", **kw}


def _int(minimum: int | None = None, maximum: int | None = None, fmt: str = "int32",
         **kw: Any) -> Schema:
    out: Schema = {"type": "integer", "format": fmt, **kw}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def _obj(properties: Mapping[str, Schema], required: Sequence[str] = (), **kw: Any) -> Schema:
    out: Schema = {"type": "object", "properties": dict(properties), **kw}
    if required:
        out["required"] = list(required)
    return out


def _arr(items: Schema, **kw: Any) -> Schema:
    return {"type": "array", "items": items, **kw}


_BOOL: Schema = {"type": "boolean"}
_STRINGS = _arr(_s())
_INT_OR_STRING: Schema = {"x-kubernetes-int-or-string": True}
# Label-like maps: keys and values are checked by check_labels, not by the schema.
_LABELS: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_STRING_MAP: Schema = {"type": "object", "additionalProperties": _s()}
_PORT = _int(1, 65535)
_PROTOCOL = _s(enum=["TCP", "UDP", "SCTP"], default="TCP")
_ROOT_PROPS = ("apiVersion", "kind", "metadata")


def _root(spec: Schema, spec_required: bool = True) -> Schema:
    props: dict[str, Schema] = {k: {"type": "object"} for k in _ROOT_PROPS}
    props["spec"] = spec
    return _obj(props, ["spec"] if spec_required else [])


# --- Namespace -------------------------------------------------------------------------

NAMESPACE = _root(_obj({"finalizers": _STRINGS}), spec_required=False)

# --- Service ---------------------------------------------------------------------------

_SERVICE_PORT = _obj({
    "name": _s(),
    "port": _PORT,
    "targetPort": _INT_OR_STRING,
    "protocol": _PROTOCOL,
    "appProtocol": _s(),
    "nodePort": _int(1, 65535),
}, ["port"])

SERVICE = _root(_obj({
    "type": _s(enum=["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"], default="ClusterIP"),
    "selector": _LABELS,
    "ports": _arr(_SERVICE_PORT, **{"x-kubernetes-list-type": "map",
                                    "x-kubernetes-list-map-keys": ["port", "protocol"]}),
    "clusterIP": _s(),
    "clusterIPs": _STRINGS,
    "externalIPs": _STRINGS,
    "externalName": _s(),
    "sessionAffinity": _s(enum=["ClientIP", "None"]),
    "externalTrafficPolicy": _s(enum=["Cluster", "Local"]),
    "internalTrafficPolicy": _s(enum=["Cluster", "Local"]),
    "ipFamilyPolicy": _s(enum=["SingleStack", "PreferDualStack", "RequireDualStack"]),
    "ipFamilies": _arr(_s(enum=["IPv4", "IPv6"])),
    "loadBalancerClass": _s(),
    "publishNotReadyAddresses": _BOOL,
}))

# --- Deployment ------------------------------------------------------------------------

_SELECTOR = _obj({
    "matchLabels": _LABELS,
    "matchExpressions": _arr(_obj({
        "key": _s(minLength=1),
        "operator": _s(enum=["In", "NotIn", "Exists", "DoesNotExist"]),
        "values": _STRINGS,
    }, ["key", "operator"])),
})

_HTTP_GET = _obj({
    "path": _s(),
    "port": _INT_OR_STRING,
    "host": _s(),
    "scheme": _s(enum=["HTTP", "HTTPS"]),
    "httpHeaders": _arr(_obj({"name": _s(minLength=1), "value": _s()}, ["name", "value"])),
}, ["port"])

_PROBE = _obj({
    "httpGet": _HTTP_GET,
    "tcpSocket": _obj({"port": _INT_OR_STRING, "host": _s()}, ["port"]),
    "exec": _obj({"command": _STRINGS}),
    "grpc": _obj({"port": _PORT, "service": _s()}, ["port"]),
    "initialDelaySeconds": _int(0),
    "periodSeconds": _int(1),
    "timeoutSeconds": _int(1),
    "successThreshold": _int(1),
    "failureThreshold": _int(1),
    "terminationGracePeriodSeconds": _int(1, fmt="int64"),
})

_KEY_REF = _obj({"name": _s(), "key": _s(minLength=1), "optional": _BOOL}, ["key"])

_ENV = _obj({
    "name": _s(minLength=1),
    "value": _s(),
    "valueFrom": _obj({
        "fieldRef": _obj({"fieldPath": _s(minLength=1), "apiVersion": _s()}, ["fieldPath"]),
        "resourceFieldRef": _obj({"resource": _s(minLength=1), "containerName": _s(),
                                  "divisor": _INT_OR_STRING}, ["resource"]),
        "configMapKeyRef": _KEY_REF,
        "secretKeyRef": _KEY_REF,
    }),
}, ["name"])

_RESOURCE_LIST: Schema = {"type": "object", "additionalProperties": _INT_OR_STRING}

_CONTAINER = _obj({
    "name": _s(),
    "image": _s(minLength=1),
    "imagePullPolicy": _s(enum=["Always", "IfNotPresent", "Never"]),
    "command": _STRINGS,
    "args": _STRINGS,
    "workingDir": _s(),
    "env": _arr(_ENV),
    "envFrom": _arr(_obj({
        "prefix": _s(),
        "configMapRef": _obj({"name": _s(), "optional": _BOOL}),
        "secretRef": _obj({"name": _s(), "optional": _BOOL}),
    })),
    "ports": _arr(_obj({
        "containerPort": _PORT,
        "name": _s(),
        "protocol": _PROTOCOL,
        "hostPort": _int(1, 65535),
        "hostIP": _s(),
    }, ["containerPort"]), **{"x-kubernetes-list-type": "map",
                              "x-kubernetes-list-map-keys": ["containerPort", "protocol"]}),
    "readinessProbe": _PROBE,
    "livenessProbe": _PROBE,
    "startupProbe": _PROBE,
    "resources": _obj({"requests": _RESOURCE_LIST, "limits": _RESOURCE_LIST}),
    "securityContext": _obj({
        "runAsNonRoot": _BOOL,
        "runAsUser": _int(0, fmt="int64"),
        "runAsGroup": _int(0, fmt="int64"),
        "readOnlyRootFilesystem": _BOOL,
        "allowPrivilegeEscalation": _BOOL,
        "privileged": _BOOL,
        "capabilities": _obj({"add": _STRINGS, "drop": _STRINGS}),
    }),
    "terminationMessagePath": _s(),
    "terminationMessagePolicy": _s(enum=["File", "FallbackToLogsOnError"]),
    "stdin": _BOOL,
    "tty": _BOOL,
}, ["name", "image"])

_POD_SPEC = _obj({
    "containers": _arr(_CONTAINER, minItems=1),
    "initContainers": _arr(_CONTAINER),
    # A Deployment's pods always restart (ValidatePodTemplateSpecForReplicaSet).
    "restartPolicy": _s(enum=["Always"]),
    "terminationGracePeriodSeconds": _int(0, fmt="int64"),
    "serviceAccountName": _s(),
    "automountServiceAccountToken": _BOOL,
    "nodeSelector": _STRING_MAP,
    "imagePullSecrets": _arr(_obj({"name": _s()})),
    "dnsPolicy": _s(enum=["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]),
    "priorityClassName": _s(),
    "securityContext": _obj({
        "runAsNonRoot": _BOOL,
        "runAsUser": _int(0, fmt="int64"),
        "runAsGroup": _int(0, fmt="int64"),
        "fsGroup": _int(0, fmt="int64"),
    }),
}, ["containers"])

DEPLOYMENT = _root(_obj({
    "replicas": _int(0, default=1),
    "selector": _SELECTOR,
    "template": _obj({
        "metadata": _obj({
            "labels": _LABELS,
            "annotations": _STRING_MAP,
            "name": _s(),
            "namespace": _s(),
            # `creationTimestamp: null` (kubectl --dry-run output) is pruned like any null.
            "creationTimestamp": _s(),
        }),
        "spec": _POD_SPEC,
    }, ["spec"]),
    "strategy": _obj({
        "type": _s(enum=["RollingUpdate", "Recreate"]),
        "rollingUpdate": _obj({"maxSurge": _INT_OR_STRING, "maxUnavailable": _INT_OR_STRING}),
    }),
    "minReadySeconds": _int(0),
    "revisionHistoryLimit": _int(0),
    "progressDeadlineSeconds": _int(1),
    "paused": _BOOL,
}, ["selector", "template"]))

# --- ReferenceGrant (Gateway API, standard channel) ---------------------------------------

_GROUP = _s(maxLength=253,
            pattern=r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KIND = _s(minLength=1, maxLength=63, pattern=r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")

REFERENCE_GRANT = _root(_obj({
    "from": _arr(_obj({
        "group": _GROUP,
        "kind": _KIND,
        "namespace": _s(minLength=1, maxLength=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
    }, ["group", "kind", "namespace"]), minItems=1, maxItems=16,
        **{"x-kubernetes-list-type": "atomic"}),
    "to": _arr(_obj({
        "group": _GROUP,
        "kind": _KIND,
        "name": _s(minLength=1, maxLength=253),
    }, ["group", "kind"]), minItems=1, maxItems=16, **{"x-kubernetes-list-type": "atomic"}),
}, ["from", "to"]))

CORE_SCHEMAS: dict[str, Schema] = {
    "Namespace": NAMESPACE,
    "Service": SERVICE,
    "Deployment": DEPLOYMENT,
    "ReferenceGrant": REFERENCE_GRANT,
}
"""Root schemas (``openAPIV3Schema`` shape) by kind."""


# --- checks ------------------------------------------------------------------------------


def _labels(value: Any, path: str) -> list[Problem]:
    out: list[Problem] = []
    check_labels(value, path, out)
    return out


def _annotations(value: Any, path: str) -> list[Problem]:
    out: list[Problem] = []
    check_annotations(value, path, out)
    return out


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _port_ref(value: Any, path: str) -> list[Problem]:
    """An int-or-string port: 1-65535 or an IANA service name (a named container port)."""
    if _is_int(value):
        if not 1 <= value <= 65535:
            return [invalid(path, value, "must be between 1 and 65535, inclusive")]
        return []
    if isinstance(value, str):
        problem = _names.iana_svc_name(value)
        return [invalid(path, value, problem)] if problem else []
    return []


def _service_port(port: dict[str, Any], path: str) -> list[Problem]:
    # SetDefaults_Service: an unset targetPort is the port itself.
    if "targetPort" not in port and _is_int(port.get("port")):
        port["targetPort"] = port["port"]
    out = _port_ref(port.get("targetPort"), f"{path}.targetPort")
    name = port.get("name")
    if isinstance(name, str) and name:
        problem = _names.dns1123_label(name)
        if problem:
            out.append(invalid(f"{path}.name", name, problem))
    return out


def _service_spec(spec: dict[str, Any], path: str) -> list[Problem]:
    out: list[Problem] = []
    kind = spec.get("type")
    ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    if kind != "ExternalName" and not headless and not ports:
        out.append(required(f"{path}.ports", "a Service needs at least one port"))
    if kind == "ExternalName":
        name = spec.get("externalName")
        if not isinstance(name, str) or not name:
            out.append(required(f"{path}.externalName", "type ExternalName needs externalName"))
        elif _names.dns1123_subdomain(name):
            out.append(invalid(f"{path}.externalName", name, _names.dns1123_subdomain(name)))
    ip = spec.get("clusterIP")
    if isinstance(ip, str) and ip not in ("", "None"):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            out.append(invalid(f"{path}.clusterIP", ip, "must be an IP address, 'None' or empty"))
    names: set[str] = set()
    for i, port in enumerate(p for p in ports if isinstance(p, dict)):
        where = f"{path}.ports[{i}]"
        name = port.get("name")
        if len(ports) > 1 and not name:
            out.append(required(f"{where}.name", "every port needs a name when there are several"))
        elif isinstance(name, str) and name:
            if name in names:
                out.append(duplicate(f"{where}.name", name))
            names.add(name)
        if "nodePort" in port and kind == "ClusterIP":
            out.append(forbidden(f"{where}.nodePort", "may not be used when type is 'ClusterIP'"))
    return out


_QUANTITY = re.compile(r"([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)", re.ASCII)
_SUFFIXES = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}
_EXPONENT = re.compile(r"[eE][-+]?[0-9]+", re.ASCII)


def parse_quantity(value: int | str) -> Decimal:
    """A Kubernetes resource quantity (``500m``, ``128Mi``, ``1.5``, ``1e3``) as a number.

    >>> parse_quantity("250m"), parse_quantity("1Ki")
    (Decimal('0.250'), Decimal('1024'))
    """
    if isinstance(value, int):
        return Decimal(value)
    match = _QUANTITY.fullmatch(value)
    if not match:
        raise ValueError(value)
    try:
        number = Decimal(match.group(1))
    except InvalidOperation as exc:
        raise ValueError(value) from exc
    suffix = match.group(2)
    if suffix in _SUFFIXES:
        return number * _SUFFIXES[suffix]
    if _EXPONENT.fullmatch(suffix):
        return number.scaleb(int(suffix[1:]))
    raise ValueError(value)


_STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def _resources(resources: dict[str, Any], path: str) -> list[Problem]:
    out: list[Problem] = []
    parsed: dict[str, dict[str, Decimal]] = {}
    for section in ("requests", "limits"):
        values = resources.get(section)
        if not isinstance(values, dict):
            continue
        parsed[section] = {}
        for key, value in values.items():
            where = f"{path}.{section}[{key}]"
            if "/" not in str(key) and key not in _STANDARD_RESOURCES and not str(
                    key).startswith("hugepages-"):
                out.append(invalid(where, key, "must be a standard resource (cpu, memory, "
                                               "ephemeral-storage) or a domain-prefixed name"))
                continue
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                continue
            try:
                amount = parse_quantity(value)
            except ValueError:
                out.append(invalid(where, value, "must be a quantity such as '500m', '1', "
                                                 "'128Mi' or '1Gi'"))
                continue
            if amount < 0:
                out.append(invalid(where, value, "must be greater than or equal to 0"))
            parsed[section][key] = amount
    for key, request in parsed.get("requests", {}).items():
        limit = parsed.get("limits", {}).get(key)
        if limit is not None and request > limit:
            out.append(invalid(f"{path}.requests[{key}]", resources["requests"][key],
                               f"must be less than or equal to {key} limit of "
                               f"{resources['limits'][key]}"))
    return out


def _env(env: dict[str, Any], path: str) -> list[Problem]:
    out: list[Problem] = []
    name = env.get("name")
    if isinstance(name, str) and name and _names.env_var_name(name):
        out.append(invalid(f"{path}.name", name, _names.env_var_name(name)))
    source = env.get("valueFrom")
    if env.get("value") and source is not None:
        out.append(invalid(f"{path}.valueFrom", source,
                           "may not be specified when `value` is not empty"))
    if isinstance(source, dict):
        count = len(source)
        if count != 1:
            out.append(invalid(f"{path}.valueFrom", source,
                               "must specify exactly one of: `fieldRef`, `resourceFieldRef`, "
                               "`configMapKeyRef` or `secretKeyRef`"))
    return out


def _probe(name: str) -> Check:
    def check(probe: dict[str, Any], path: str) -> list[Problem]:
        handlers = [h for h in ("httpGet", "tcpSocket", "exec", "grpc") if h in probe]
        out: list[Problem] = []
        if not handlers:
            out.append(required(path, "must specify a handler type (httpGet, tcpSocket, exec or "
                                      "grpc)"))
        elif len(handlers) > 1:
            out.append(forbidden(f"{path}.{handlers[1]}",
                                 "may not specify more than 1 handler type"))
        for handler in ("httpGet", "tcpSocket"):
            section = probe.get(handler)
            if isinstance(section, dict):
                out.extend(_port_ref(section.get("port"), f"{path}.{handler}.port"))
        http = probe.get("httpGet")
        if isinstance(http, dict) and isinstance(http.get("path"), str) and http["path"] and (
                not http["path"].startswith("/")):
            out.append(invalid(f"{path}.httpGet.path", http["path"], "must start with '/'"))
        if name != "readinessProbe" and probe.get("successThreshold", 1) != 1:
            # ValidateProbe: liveness and startup probes succeed on the first success.
            out.append(invalid(f"{path}.successThreshold", probe["successThreshold"], "must be 1"))
        return out

    return check


def _container(container: dict[str, Any], path: str) -> list[Problem]:
    out: list[Problem] = []
    name = container.get("name")
    if isinstance(name, str) and _names.dns1123_label(name):
        out.append(invalid(f"{path}.name", name, _names.dns1123_label(name)))
    names: set[str] = set()
    for i, port in enumerate(container.get("ports") or []):
        if not isinstance(port, dict) or not isinstance(port.get("name"), str):
            continue
        where = f"{path}.ports[{i}].name"
        problem = _names.iana_svc_name(port["name"])
        if problem:
            out.append(invalid(where, port["name"], problem))
        elif port["name"] in names:
            out.append(duplicate(where, port["name"]))
        names.add(port["name"])
    return out


def _pod_spec(spec: dict[str, Any], path: str) -> list[Problem]:
    out: list[Problem] = []
    seen: set[str] = set()
    for field in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(field) or []):
            name = container.get("name") if isinstance(container, dict) else None
            if isinstance(name, str):
                if name in seen:
                    out.append(duplicate(f"{path}.{field}[{i}].name", name))
                seen.add(name)
    return out


def _selector(selector: dict[str, Any], path: str) -> list[Problem]:
    out: list[Problem] = []
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        if not isinstance(expr, dict):
            continue
        where = f"{path}.matchExpressions[{i}].values"
        values = expr.get("values") or []
        if expr.get("operator") in ("In", "NotIn") and not values:
            out.append(required(where, "must be specified when `operator` is 'In' or 'NotIn'"))
        if expr.get("operator") in ("Exists", "DoesNotExist") and values:
            out.append(forbidden(where, "may not be specified when `operator` is 'Exists' or "
                                        "'DoesNotExist'"))
    return out


_PERCENT = re.compile(r"[0-9]+%", re.ASCII)


def _deployment_spec(spec: dict[str, Any], path: str) -> list[Problem]:
    out: list[Problem] = []
    selector = spec.get("selector")
    template = spec.get("template")
    if isinstance(selector, dict) and isinstance(template, dict):
        meta = template.get("metadata")
        labels = meta.get("labels") if isinstance(meta, dict) else None
        labels = labels if isinstance(labels, dict) else {}
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            out.append(invalid(f"{path}.selector", selector,
                               "empty selector is invalid for deployment"))
        elif not selector_matches(selector, labels):
            out.append(invalid(f"{path}.template.metadata.labels", labels,
                               "selector does not match template labels (every "
                               "spec.selector.matchLabels entry must also be in "
                               "spec.template.metadata.labels)"))
    strategy = spec.get("strategy")
    if isinstance(strategy, dict):
        rolling = strategy.get("rollingUpdate")
        if strategy.get("type") == "Recreate" and rolling is not None:
            out.append(forbidden(f"{path}.strategy.rollingUpdate",
                                 "may not be specified when strategy `type` is 'Recreate'"))
        if isinstance(rolling, dict):
            zero = 0
            for key in ("maxSurge", "maxUnavailable"):
                value = rolling.get(key)
                where = f"{path}.strategy.rollingUpdate.{key}"
                if isinstance(value, str) and not _PERCENT.fullmatch(value):
                    out.append(invalid(where, value, "must be an integer or a percentage such "
                                                     "as '25%'"))
                elif _is_int(value) and value < 0:
                    out.append(invalid(where, value, "must be greater than or equal to 0"))
                if value in (0, "0%"):
                    zero += 1
            if zero == 2:
                out.append(invalid(f"{path}.strategy.rollingUpdate.maxUnavailable",
                                   rolling["maxUnavailable"],
                                   "may not be 0 when `maxSurge` is 0"))
    deadline, ready = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds")
    if _is_int(deadline) and _is_int(ready) and deadline <= ready:
        out.append(invalid(f"{path}.progressDeadlineSeconds", deadline,
                           "must be greater than minReadySeconds"))
    return out


def _containers_at(prefix: str) -> dict[str, list[Check]]:
    checks: dict[str, list[Check]] = {}
    for field in ("containers", "initContainers"):
        base = f"{prefix}.{field}[]"
        checks[base] = [_container]
        checks[f"{base}.env[]"] = [_env]
        checks[f"{base}.resources"] = [_resources]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            checks[f"{base}.{probe}"] = [_probe(probe)]
    return checks


CORE_CHECKS: dict[str, dict[str, list[Check]]] = {
    "Namespace": {},
    "Service": {
        ".spec": [_service_spec],
        ".spec.ports[]": [_service_port],
        ".spec.selector": [_labels],
    },
    "Deployment": {
        ".spec": [_deployment_spec],
        ".spec.selector": [_selector],
        ".spec.selector.matchLabels": [_labels],
        ".spec.template.metadata.labels": [_labels],
        # The pod template's annotations are the pod's: the apiserver bounds them the same way.
        ".spec.template.metadata.annotations": [_annotations],
        ".spec.template.spec": [_pod_spec],
        **_containers_at(".spec.template.spec"),
    },
    "ReferenceGrant": {},
}
"""Hand-written checks by kind, then by schema location."""


def iter_check_locations() -> Iterable[tuple[str, str]]:
    """``(kind, location)`` of every hand-written check (a test checks they exist)."""
    for kind, checks in CORE_CHECKS.items():
        for location in checks:
            yield kind, location
