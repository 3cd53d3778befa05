"""``trafficlab.Lab``: the lab contract as a Python object, for notebooks, graders and the CLI."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trafficlab._errors import NotFoundError, TrafficLabError
from trafficlab.backends.base import Backend, Obj
from trafficlab.backends.last_applied import with_last_applied
from trafficlab.backends.local import LocalBackend
from trafficlab.labapi import ApplyResult, as_result, provide_lab_factory
from trafficlab.manifests import load_manifests, parse_manifests
from trafficlab.resources import resolve_kind

__all__ = ["ApplyResult", "Lab", "default_home"]

DEFAULT_GATEWAY = "task-api-gateway"
DEFAULT_ROUTE = "task-api"
_POD_NAMES = ("pod", "pods", "po")


def default_home() -> Path:
    """``$TRAFFICLAB_HOME``, else ``./.lab``."""
    return Path(os.environ.get("TRAFFICLAB_HOME") or ".lab").resolve()


class Lab:
    """A lab in a home folder.

    >>> lab = Lab()                      # ./.lab, or $TRAFFICLAB_HOME
    >>> lab.up()                         # doctest: +SKIP
    >>> lab.apply("canary.yaml")         # doctest: +SKIP
    >>> lab.get("httproute", "task-api")["spec"]["rules"][0]["backendRefs"]  # doctest: +SKIP
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, *, backend: str | None = None) -> None:
        self.home = Path(home).resolve() if home is not None else default_home()
        self._requested = backend or os.environ.get("TRAFFICLAB_BACKEND") or "auto"
        self._backend: Backend | None = None
        self.auto_reason = ""

    # -- backend choice ----------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = self._choose_backend(self._requested)
        return self._backend

    def _choose_backend(self, requested: str) -> Backend:
        if requested not in ("auto", "local", "kind"):
            raise TrafficLabError(f'unknown backend "{requested}"; use local, kind or auto')
        running = _running_backend(self.home)
        if running is not None:
            requested = running
        if requested == "auto":
            requested, self.auto_reason = auto_backend()
        if requested == "kind":
            from trafficlab.backends.kind import KindBackend  # imported only when asked for

            backend: Backend = KindBackend(self.home)
            return backend
        return LocalBackend(self.home)

    # -- life cycle --------------------------------------------------------------------
    def up(self, *, timeout: float = 60.0, dry_run: bool = False) -> dict[str, Any]:
        """Start the lab (or find it running) with the baseline applied; returns ``status()``.

        ``dry_run`` (kind backend) runs nothing and returns the plan: every command and manifest.
        """
        if dry_run:
            if self.backend.name != "kind":
                raise TrafficLabError("--dry-run shows the kind backend's plan; add --backend kind")
            return dict(self.backend.up(timeout=timeout, dry_run=True))  # type: ignore[call-arg]
        return self.backend.up(timeout=timeout)

    def down(self) -> None:
        """Stop everything this lab started."""
        self.backend.down()

    def status(self) -> dict[str, Any]:
        return self.backend.status()

    @property
    def running(self) -> bool:
        return self.backend.running()

    # -- objects -----------------------------------------------------------------------
    def apply(self, source: str | os.PathLike[str] | Obj | Sequence[Obj], *,
              namespace: str = "default", dry_run: bool = False) -> ApplyResult:
        """Apply a file, a folder, ``-``, YAML text, an object or a list of objects: all or none."""
        # As kubectl apply does, so a later `kubectl apply -f` merges three ways, as on a cluster.
        objects = [with_last_applied(obj) for obj in _objects(source)]
        return as_result(self.backend.apply(objects, namespace=namespace, dry_run=dry_run))

    def get(self, kind: str, name: str | None = None, *, namespace: str = "default",
            all_namespaces: bool = False) -> Any:
        """One object (with ``name``) or a list of objects, status included."""
        if kind.lower() in _POD_NAMES:  # pods are the runtime's, not stored objects
            pods = self.backend.get("Pod", None, namespace=namespace, all_namespaces=all_namespaces)
            if name is None:
                return pods
            for pod in pods:
                if pod["metadata"]["name"] == name:
                    return pod
            raise NotFoundError(f'pods "{name}" not found')
        info = resolve_kind(kind)
        ns = namespace if info.namespaced else None
        items = self.backend.get(info.kind, name, namespace=ns, all_namespaces=all_namespaces)
        if name is not None:
            if not items:
                raise NotFoundError(f'{info.plural} "{name}" not found')
            return items[0]
        return items

    def patch(self, kind: str, name: str, patch: Any, *, type: str = "merge",
              namespace: str = "default", dry_run: bool = False) -> ApplyResult:
        """kubectl patch: ``type`` is ``merge`` (RFC 7386) or ``json`` (RFC 6902)."""
        info = resolve_kind(kind)
        return as_result(self.backend.patch(info.kind, name, patch, patch_type=type,
                                          namespace=namespace if info.namespaced else "",
                                          dry_run=dry_run))

    def delete(self, kind: str | None = None, name: str | None = None, *,
               namespace: str = "default", filename: str | os.PathLike[str] | None = None,
               ignore_not_found: bool = False, dry_run: bool = False) -> ApplyResult:
        """Delete by kind and name, or every object in ``filename``."""
        refs: list[tuple[str, str, str]] = []
        if filename is not None:
            for obj in _objects(filename):
                info = resolve_kind(str(obj.get("kind", "")))
                meta = obj.get("metadata", {})
                ns = str(meta.get("namespace") or namespace) if info.namespaced else ""
                refs.append((info.kind, ns, str(meta.get("name"))))
        elif kind and name:
            info = resolve_kind(kind)
            refs.append((info.kind, namespace if info.namespaced else "", name))
        else:
            raise TrafficLabError("delete needs KIND NAME or -f FILE")
        return as_result(self.backend.delete(refs, dry_run=dry_run, ignore_not_found=ignore_not_found))

    # -- the gateway -------------------------------------------------------------------
    def url(self, gateway: str = DEFAULT_GATEWAY, *, listener: str | None = None,
            namespace: str = "default") -> str:
        """The base URL where a Gateway listener answers on this machine."""
        for gw in self.status().get("gateways", []):
            if gw["name"] != gateway or gw["namespace"] != namespace:
                continue
            for item in gw["listeners"]:
                if (listener is None or item["name"] == listener) and item.get("url"):
                    return str(item["url"])
        raise NotFoundError(f"Gateway {namespace}/{gateway} has no listener"
                            f"{' ' + listener if listener else ''} serving; "
                            "is the lab up ('trafficlab status')?")

    def send(self, *, gateway: str = DEFAULT_GATEWAY, listener: str | None = None,
             **options: Any) -> Any:
        """Send traffic through a Gateway; options as :func:`trafficlab.traffic.send`.

        >>> lab.send(requests=500, headers={"x-user-type": "beta"}).by_version  # doctest: +SKIP
        Counter({'v2': 500})
        """
        from trafficlab.traffic import send

        return send(self.url(gateway, listener=listener), **options)

    def metrics(self, window: str = "1m", *, source: str = "auto") -> Any:
        """Requests/s, error rate and p50/p99 per version (Prometheus, else the pods' /metrics)."""
        from trafficlab.monitoring.metrics import collect

        return collect(self, window, source=source)

    def check(self, exercise: str, directory: str | os.PathLike[str] = ".") -> Any:
        """Self-check an exercise: apply your files from ``directory`` and run its public checks.

        >>> lab.check("canary")  # doctest: +SKIP
        canary results: 9/9 points. All checks passed!
        """
        from trafficlab.grading.runner import self_check

        return self_check(self, exercise, Path(directory).resolve())

    def wait_programmed(self, route: str = DEFAULT_ROUTE, *, namespace: str = "default",
                        timeout: float = 30.0) -> Obj:
        """Wait until the data plane serves the route's current generation; returns the route.

        The local backend waits for Envoy's confirmation (the route's Programmed condition);
        the kind backend for Accepted and ResolvedRefs at the current generation.
        """
        return self.backend.wait_route(route, namespace=namespace, timeout=timeout)

provide_lab_factory(Lab)


def _objects(source: str | os.PathLike[str] | Obj | Sequence[Obj]) -> list[Obj]:
    if isinstance(source, Mapping):
        return [dict(source)]
    if isinstance(source, (list, tuple)):
        return [dict(o) for o in source]
    text = str(source)
    if "\n" in text or (text.lstrip().startswith("{") and not Path(text).exists()):
        return parse_manifests(text, "<text>")
    return load_manifests(text)


def _running_backend(home: Path) -> str | None:
    import json

    try:
        return str(json.loads((home / "lab.json").read_text())["backend"])
    except (OSError, ValueError, KeyError):
        return None


def auto_backend() -> tuple[str, str]:
    """kind when Docker and kind are usable, else local; with the reason, for the user."""
    if shutil.which("kind") is None:
        return "local", "kind is not installed"
    if shutil.which("docker") is None:
        return "local", "docker is not installed"
    import subprocess

    try:
        ok = subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        return "local", "no Docker engine answers ('docker info' failed)"
    return "kind", "Docker and kind are available"

