"""What a Deployment may ask of the local lab, whose pods are processes on the grader's machine.

On Kubernetes a container's env reaches only its own container; here a pod is a process of the
user running the lab, so the lab bounds what a Deployment can put in that process' environment
and how many processes it can start. ``check_pod_limits`` runs at admission, after ``validate``
(so shapes and env names are already Kubernetes-valid), and refuses with the first problem,
naming the field and saying what to do.

>>> check_pod_limits({"kind": "Deployment", "metadata": {"namespace": "default", "name": "a"},
...                   "spec": {"replicas": 9, "template": {"spec": {"containers": []}}}}, {})
Traceback (most recent call last):
...
trafficlab._errors.ValidationError: Deployment default/a is invalid: spec.replicas: 9 is more \
than the local lab runs for one Deployment (8): lower spec.replicas to 8 or fewer
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trafficlab._errors import ValidationError

__all__ = [
    "MAX_ENV_BYTES",
    "MAX_ENV_ENTRIES",
    "MAX_ENV_VALUE_BYTES",
    "MAX_LAB_REPLICAS",
    "MAX_REPLICAS",
    "check_pod_limits",
    "refused_env_name",
]

Obj = dict[str, Any]

MAX_REPLICAS = 8
"""Pods one Deployment may run in a local lab."""
MAX_LAB_REPLICAS = 32
"""Pods all the lab's Deployments together may run."""
MAX_ENV_ENTRIES = 64
"""``env`` entries per container."""
MAX_ENV_VALUE_BYTES = 32 * 1024
"""Bytes (UTF-8) of one env value."""
MAX_ENV_BYTES = 64 * 1024
"""Bytes of a container's whole declared env, ``NAME=value`` each; well under Linux's 128 KiB
per exec string and 2 MiB or so for all of them, so a pod always starts."""

# glibc's "unsecure" variables (sysdeps/generic/unsecvars.h), the ones it drops for setuid
# programs because they change what the loader loads or what libc reads; plus every LD_ and
# MALLOC_ name, which the loader and malloc read as a family. TMPDIR is in glibc's list and is
# set by the lab anyway (a private one per pod).
_LIBC_NAMES = frozenset({
    "GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH",
    "NIS_PATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR",
})
_LIBC_PREFIXES = ("LD_", "MALLOC_")
# Set by the lab for the pod's own interpreter; a Deployment cannot point them elsewhere.
_LAB_NAMES = frozenset({"PATH", "HOME"})


def refused_env_name(name: str) -> str:
    """Why a local pod may not have the env variable ``name``, or "" when it may."""
    if name in _LIBC_NAMES or name.startswith(_LIBC_PREFIXES):
        return ("names the dynamic loader or libc honour could change what the pod runs; "
                "remove it from env")
    if name in _LAB_NAMES:
        return ("the local lab sets it so the pod runs its own interpreter with a private "
                "home; remove it from env")
    return ""


def check_pod_limits(obj: Obj, existing: Mapping[Any, Mapping[str, Any]]) -> None:
    """Refuse a Deployment over the local lab's env or replica bounds.

    ``existing`` is every object the store holds once this write is done (``obj`` included),
    by key; its Deployments make the per-lab replica count.
    """
    if obj.get("kind") != "Deployment":
        return
    meta = obj["metadata"]
    ns, name = meta.get("namespace"), meta.get("name")

    def refuse(field: str, problem: str) -> None:
        raise ValidationError("Deployment", ns, name, field, problem)

    spec = obj.get("spec", {})
    replicas = _replicas(spec)
    if replicas > MAX_REPLICAS:
        refuse("spec.replicas", f"{replicas} is more than the local lab runs for one Deployment "
                                f"({MAX_REPLICAS}): lower spec.replicas to {MAX_REPLICAS} or fewer")
    total = sum(_replicas(o.get("spec", {})) for o in existing.values()
                if o.get("kind") == "Deployment")
    if total > MAX_LAB_REPLICAS:
        refuse("spec.replicas", f"{replicas} would make {total} pods in the lab, more than its "
                                f"{MAX_LAB_REPLICAS}: lower spec.replicas, or scale down or delete "
                                "another Deployment (kubectl get deployments -A)")
    pod_spec = spec.get("template", {}).get("spec", {})
    for section in ("initContainers", "containers"):
        for i, container in enumerate(pod_spec.get(section) or []):
            problem = _env_problem(container.get("env") or [])
            if problem:
                where, text = problem
                refuse(f"spec.template.spec.{section}[{i}].env{where}", text)


def _replicas(spec: Mapping[str, Any]) -> int:
    value = spec.get("replicas", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _env_problem(env: list[Any]) -> tuple[str, str] | None:
    """``(field suffix, problem)`` for the first thing wrong with a container's env."""
    if len(env) > MAX_ENV_ENTRIES:
        return "", (f"has {len(env)} entries, more than the local lab allows ({MAX_ENV_ENTRIES}): "
                    "keep only the variables the Task API reads")
    total = 0
    for j, item in enumerate(env):
        name = str(item.get("name", ""))
        why = refused_env_name(name)
        if why:
            return f"[{j}].name", f'"{name}" is not allowed: {why}'
        value = item.get("value")
        text = "" if value is None else str(value)
        if "\0" in text:
            return f"[{j}].value", "must not contain a NUL character (no process env can hold it)"
        size = len(text.encode())
        if size > MAX_ENV_VALUE_BYTES:
            return f"[{j}].value", (f"is {size} bytes, more than the local lab allows for one "
                                    f"value ({MAX_ENV_VALUE_BYTES}): shorten it")
        total += len(name.encode()) + 1 + size
        if total > MAX_ENV_BYTES:
            return "", (f"holds more than {MAX_ENV_BYTES} bytes (NAME=value summed) by entry "
                        f"[{j}]: shorten or drop values")
    return None
