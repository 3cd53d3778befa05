"""What a check can do: apply the student's files, predict, gate, and measure with traffic."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trafficlab._errors import NotFoundError, TrafficLabError, ValidationError
from trafficlab.gateway.evaluate import Outcome, Request, predict
from trafficlab.grading.catalog import Exercise, exercise
from trafficlab.grading.checks import CheckFailure, NotSubmitted
from trafficlab.labapi import LabAPI
from trafficlab.manifests import load_manifests, manifests_dir, parse_manifests
from trafficlab.safe_files import UnsafeFileError, read_text
from trafficlab.stats import SplitVerdict, check_split, requests_needed
from trafficlab.traffic import TrafficResult, send
from trafficlab.traffic.background import BackgroundLoad, start_load

__all__ = ["GradingContext", "LoadRun"]

Obj = dict[str, Any]
ROUTE = "task-api"
_PREDICT_KINDS = ("Namespace", "GatewayClass", "Gateway", "HTTPRoute", "ReferenceGrant", "Service")
# Samples taken by the consistency gate before it trusts the data plane.
_AGREEING_PROBES = 3
_PROBE_REQUESTS = 20


#: Steady load running in the background while the lab changes (blue-green switches);
#: ``result()`` waits for its end. The name graders knew before the one traffic helper.
LoadRun = BackgroundLoad


class GradingContext:
    """The lab and the submission of one exercise, with the tools checks need."""

    def __init__(self, lab: LabAPI, submission: Path, exercise: str, *,
                 include_hidden: bool = True) -> None:
        self.lab = lab
        self.submission = submission
        self.exercise = exercise
        self.include_hidden = include_hidden
        self.applied: dict[str, list[Obj]] = {}
        self.notes: dict[str, Any] = {}
        #: Objects of the student's files this exercise does not apply, said once each.
        self.notices: list[str] = []

    # -- the submission ----------------------------------------------------------------
    def path(self, filename: str) -> Path:
        """Where a submitted file is, once it is known to be safe to read (see read_text)."""
        self.read_text(filename)
        return self.submission / filename

    def read_text(self, filename: str) -> str:
        """A submitted file's text, read with no link followed, no device, at most 1 MiB.

        A missing file is NotSubmitted; a refused one fails the check with what to do.
        """
        path = self.submission / filename
        if not path.exists() and not path.is_symlink() and not self.submission.is_symlink():
            raise NotSubmitted(filename)
        try:
            return read_text(filename, self.submission)
        except UnsafeFileError as exc:
            what = "" if exc.name == filename else f" ({exc.name})"
            raise CheckFailure(f"{filename} was refused{what}: {exc.problem}", subject="",
                               hint=exc.todo) from exc

    def note(self, key: str, made_by: str) -> Any:
        """What an earlier check left in ``notes``; a check that depends on it says so."""
        if key not in self.notes:
            raise CheckFailure(f"not checked, because the check '{made_by}' did not complete",
                               subject="", hint=f"make '{made_by}' pass first")
        return self.notes[key]

    def read(self, filename: str) -> list[Obj]:
        """The objects in a submitted file, checked to be the route the exercise is about."""
        text = self.read_text(filename)
        try:
            objects = parse_manifests(text, filename)
        except ValidationError as exc:
            raise CheckFailure(f"{filename} could not be read: {exc.problem}", subject="",
                               hint="run 'trafficlab review " + filename + "' to see the problem "
                               "with its line") from exc
        objects = self._in_scope(filename, objects)
        routes = [o for o in objects if o.get("kind") == "HTTPRoute"]
        if not any(o.get("metadata", {}).get("name") == ROUTE for o in routes):
            names = ", ".join(f"{o.get('kind')}/{o.get('metadata', {}).get('name')}"
                              for o in objects) or "nothing"
            raise CheckFailure(f"{filename} contains {names}", "the HTTPRoute named task-api",
                               "the exercise edits the route the gateway already uses: keep "
                               "metadata.name: task-api", subject="")
        return objects

    def _in_scope(self, filename: str, objects: list[Obj]) -> list[Obj]:
        """The objects this exercise grades; every other one becomes a notice, unapplied.

        A submission changes only what its exercise asks for: a Deployment, a Gateway or a
        second route in the file would otherwise run in (or reshape) the grader's lab.
        """
        try:
            item = exercise(self.exercise)
        except NotFoundError:  # a notebook's own exercise: the default scope
            item = Exercise(self.exercise, self.exercise, 0.0, (), "")
        kept = []
        for obj in objects:
            if item.grades(obj):
                kept.append(obj)
                continue
            meta = obj.get("metadata") or {}
            what = f"{obj.get('kind')} {meta.get('namespace') or 'default'}/{meta.get('name')}"
            notice = (f"{filename}: {what} was not applied: this exercise grades only "
                      f"{item.describe_applies()} (namespace default)")
            if notice not in self.notices:
                self.notices.append(notice)
        return kept

    def apply_file(self, filename: str) -> list[Obj]:
        """Apply a submitted file to the lab, all or nothing, and wait until Envoy serves it."""
        objects = self.read(filename)
        try:
            self.lab.apply(objects)
        except ValidationError as exc:
            raise CheckFailure(f"{filename} was rejected: {exc.message}", subject="",
                               hint=f"fix the field {exc.field or '(see the message)'} and run "
                               f"'trafficlab apply -f {filename} --dry-run' until it is accepted"
                               ) from exc
        except NotFoundError as exc:
            raise CheckFailure(f"{filename} was rejected: {exc.message}", subject="",
                               hint="check the kind and apiVersion of every object") from exc
        self.applied[filename] = objects
        self.wait_served()
        return objects

    def require(self, filename: str) -> None:
        if filename not in self.applied:
            raise CheckFailure(f"not checked, because {filename} was not applied", subject="",
                               hint="make the first check pass first")

    def apply_manifest(self, relative: str) -> None:
        """Apply one of the lab's own manifests (``cluster/manifests/<relative>``)."""
        self.lab.apply(load_manifests(manifests_dir() / relative))

    def apply_objects(self, objects: list[Obj]) -> None:
        self.lab.apply(objects)
        self.wait_served()

    # -- what the route says -----------------------------------------------------------
    def route(self, name: str = ROUTE) -> Obj:
        return dict(self.lab.get("HTTPRoute", name))

    def objects(self) -> list[Obj]:
        out: list[Obj] = []
        for kind in _PREDICT_KINDS:
            out.extend(self.lab.get(kind, all_namespaces=True))
        return out

    def predict(self, request: Request) -> Outcome:
        """Where the gateway sends ``request`` according to the route's spec (no traffic)."""
        return predict(self.objects(), request)

    def version_of(self, service: str, namespace: str = "default") -> str:
        """The ``x-version`` a Service's pods answer with (the VERSION of its Deployment)."""
        svc = self.lab.get("Service", service, namespace=namespace)
        selector = svc["spec"].get("selector") or {}
        for deploy in self.lab.get("Deployment", namespace=namespace):
            labels = deploy["spec"]["template"].get("metadata", {}).get("labels", {})
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                for env in deploy["spec"]["template"]["spec"]["containers"][0].get("env", []):
                    if env.get("name") == "VERSION":
                        return str(env.get("value"))
        return service

    def services_to_versions(self, shares: Mapping[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, share in shares.items():
            name = key.split("/", 1)[-1]
            version = "none" if name.startswith("(") else self.version_of(name)
            out[version] = out.get(version, 0.0) + share
        return out

    # -- the data plane ----------------------------------------------------------------
    def wait_served(self, route: str = ROUTE, timeout: float = 20.0) -> None:
        try:
            self.lab.wait_programmed(route, timeout=timeout)
        except TrafficLabError as exc:
            raise CheckFailure(f"the gateway did not take the route: {exc.message}",
                               hint="look at the route's status with "
                               "'trafficlab get httproute task-api -o yaml'") from exc

    def gate(self, request: Request, *, timeout: float = 20.0) -> None:
        """Consistency gate: route served at its generation, then agreeing probes.

        Probes agree when every answer comes from a version the route's spec predicts for
        ``request``; three such samples in a row and the data plane is trusted.
        """
        self.wait_served(timeout=timeout)
        expected = {v for v, s in self.services_to_versions(self.predict(request).shares).items()
                    if s > 0}
        agreeing = 0
        import time

        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while agreeing < _AGREEING_PROBES:
            result = self.send(request, _PROBE_REQUESTS)
            seen = set(result.by_version)
            agreeing = agreeing + 1 if seen <= expected and not result.errors else 0
            if time.monotonic() > deadline:
                raise CheckFailure(
                    f"the gateway did not settle within {timeout:.0f}s: answers came from "
                    f"{', '.join(sorted(seen))} while the route says {', '.join(sorted(expected))}",
                    hint="is the lab healthy? 'trafficlab status' and 'trafficlab get pods'")

    def send(self, request: Request, requests: int, **kwargs: Any) -> TrafficResult:
        return send(self.lab.url(), requests=requests, path=request.path, method=request.method,
                    headers=dict(request.headers), concurrency=kwargs.pop("concurrency", 16),
                    progress=False, **kwargs)

    def observe(self, request: Request, expected: Mapping[str, float], *,
                at_least: int = 0) -> tuple[SplitVerdict, TrafficResult]:
        """Gate, send as many requests as the grading policy needs, judge the split by version."""
        self.gate(request)
        needed = max(requests_needed(expected), at_least)
        result = self.send(request, needed)
        counts = dict(result.by_version)
        return check_split(counts, expected), result

    @contextmanager
    def steady_load(self, request: Request, *, seconds: float, rate: float = 200.0
                    ) -> Iterator[LoadRun]:
        """Run paced load in the background for ``seconds`` while the body changes the lab."""
        yield start_load(self.lab.url(), duration=seconds, rate=rate, concurrency=8,
                         path=request.path, headers=dict(request.headers), name="steady-load")
