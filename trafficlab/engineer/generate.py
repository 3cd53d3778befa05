"""``trafficlab generate``: traffic-splitting HTTPRoutes that are right by construction.

Every kind has defaults from the lab's fixed names (DESIGN.md, "Names the lab fixes"), so the bare
command is a working answer: ``trafficlab generate canary | trafficlab apply -f -`` sends 10% of
requests to task-api-v2. Each route is validated (:func:`trafficlab.resources.validate`) before it
is returned, and comes with the commands that operate it: apply (after a ``--dry-run=client``
check), the weight changes of the next stages and the rollback, as ``kubectl`` and ``trafficlab``.

Kinds:

- ``canary``: one rule, stable and canary weighted (``--percent 10`` gives weights 90 and 10,
  ``--weights 9:1`` is kept as given); ``--stages 10,25,50,100`` makes it progressive.
- ``progressive``: a canary with stages (default 10, 25, 50, 100); each stage differs from the
  last only in the two weights, and moving on is a JSON patch of those weights.
- ``blue-green``: both colours listed, the active one weight 100 and the other 0, so the
  switch (and the switch back) is a weight change, applied at once.
- ``ab``: requests with ``x-user-type: beta`` to the canary, everyone else to stable.
- ``premium``: requests with ``x-user-tier: premium`` to task-api-premium, the rest to stable.
- ``premium-canary``: premium users pinned to stable, everyone else split 90/10.
- ``mirror``: stable serves everything; a copy of each request goes to the canary.
- ``rollback``: the canary route with all traffic back on stable, and the patch that does it.

>>> result = generate("canary")
>>> [(b["name"], b["weight"]) for b in result.route["spec"]["rules"][0]["backendRefs"]]
[('task-api-v1', 90), ('task-api-v2', 10)]
>>> generate("canary", GenerateOptions(weights=(9, 1))).expectations[0].shares
{'task-api-v1': 0.9, 'task-api-v2': 0.1}
"""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from trafficlab._errors import GenerateError
from trafficlab.engineer.facts import (
    BETA_HEADER,
    DEFAULT_GATEWAY,
    DEFAULT_LISTENER,
    DEFAULT_NAMESPACE,
    DEFAULT_ROUTE,
    PREMIUM_HEADER,
    SERVICE_PORT,
)
from trafficlab.engineer.model import percent as percent_text
from trafficlab.resources import validate

__all__ = [
    "GENERATE_KINDS",
    "OUTPUTS",
    "Expectation",
    "GenerateError",
    "GenerateOptions",
    "Generated",
    "Stage",
    "Step",
    "dump_yaml",
    "generate",
    "parse_headers",
    "parse_percent",
    "parse_stages",
    "parse_weights",
    "weight_ops",
    "weights_for_percent",
]

Obj = dict[str, Any]
GENERATE_KINDS = ("canary", "progressive", "blue-green", "ab", "premium", "premium-canary",
                  "mirror", "rollback")
OUTPUTS = ("yaml", "commands", "all")
DEFAULT_STAGES = (Decimal(10), Decimal(25), Decimal(50), Decimal(100))
_MAX_WEIGHT = 1_000_000  # BackendRef.weight maximum (CRD)


# -- options -------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerateOptions:
    """What to generate. ``None`` means "the kind's default from the lab's fixed names"."""

    name: str = DEFAULT_ROUTE
    namespace: str = DEFAULT_NAMESPACE
    gateway: str = DEFAULT_GATEWAY
    gateway_namespace: str | None = None
    section: str | None = DEFAULT_LISTENER
    hostnames: tuple[str, ...] = ()
    stable: str | None = None
    canary: str | None = None
    blue: str = "task-api-blue"
    green: str = "task-api-green"
    active: str = "blue"
    premium: str | None = None
    port: int = SERVICE_PORT
    percent: Decimal | None = None
    weights: tuple[int, int] | None = None
    stages: tuple[Decimal, ...] | None = None
    stage: int = 1
    headers: tuple[tuple[str, str], ...] = ()
    path: str | None = None
    path_type: str = "PathPrefix"
    rule: int | None = None
    file: str | None = None


def parse_percent(text: str | float | Decimal) -> Decimal:
    """A percentage between 0 and 100 with at most 4 decimals (``"10"``, ``"12.5"``, ``"10%"``)."""
    try:
        value = Decimal(str(text).strip().rstrip("%"))
    except InvalidOperation:
        raise GenerateError(f"{text!r} is not a percentage; write a number such as 10 or 12.5") from None
    if not value.is_finite() or not 0 <= value <= 100:
        raise GenerateError(f"the percentage must be between 0 and 100, not {text}")
    if value != value.quantize(Decimal("0.0001")):
        raise GenerateError(f"{text}: at most 4 decimals, please")
    return value


def parse_weights(text: str) -> tuple[int, int]:
    """Two weights, kept as given: ``"9:1"``, ``"90/10"``, ``"900,100"``."""
    for sep in (":", "/", ","):
        if sep in text:
            parts = text.split(sep)
            break
    else:
        parts = [text]
    if len(parts) != 2:
        raise GenerateError(f"--weights takes two weights, stable:canary (9:1 or 90:10), not {text!r}")
    try:
        weights = (int(parts[0]), int(parts[1]))
    except ValueError:
        raise GenerateError(f"--weights takes whole numbers (9:1 or 90:10), not {text!r}") from None
    if any(not 0 <= w <= _MAX_WEIGHT for w in weights):
        raise GenerateError(f"weights must be between 0 and {_MAX_WEIGHT}")
    if sum(weights) == 0:
        raise GenerateError("weights 0:0 send every request to HTTP 500; give one of them a weight")
    return weights


def parse_stages(text: str) -> tuple[Decimal, ...]:
    """Canary percentages of the stages, in order: ``"10,25,50,100"``."""
    stages = tuple(parse_percent(p) for p in text.replace(" ", "").split(",") if p)
    if not stages:
        raise GenerateError("--stages needs at least one percentage, such as 10,25,50,100")
    return stages


def parse_headers(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``NAME=VALUE`` or ``NAME: VALUE`` items (all must match: they share one match)."""
    out = []
    for item in items:
        for sep in ("=", ":"):
            if sep in item:
                name, value = item.split(sep, 1)
                out.append((name.strip().lower(), value.strip()))
                break
        else:
            raise GenerateError(f"--header takes NAME=VALUE (x-user-type=beta), not {item!r}")
    return tuple(out)


def weights_for_percent(share: Decimal) -> tuple[int, int]:
    """Stable and canary weights for a canary percentage: 10 -> (90, 10), 12.5 -> (875, 125).

    >>> weights_for_percent(Decimal(10)), weights_for_percent(Decimal("12.5"))
    ((90, 10), (875, 125))
    """
    scale = 1
    while (share * scale) % 1:
        scale *= 10
    canary = int(share * scale)
    return 100 * scale - canary, canary


# -- results -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expectation:
    """What a request (path, headers) gets from a generated route: shares per Service, mirrors."""

    path: str
    headers: Mapping[str, str]
    shares: Mapping[str, float]
    mirrored: Mapping[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """``x-user-type: beta on /tasks -> 100% to task-api-v2``."""
        who = " and ".join(f"{k}: {v}" for k, v in self.headers.items()) or "no special header"
        target = ", ".join(f"{percent_text(s)} to {n}" for n, s in self.shares.items() if s > 0)
        mirrored = "".join(f"; {percent_text(s)} mirrored to {n}" for n, s in self.mirrored.items())
        return f"{who} on {self.path} -> {target}{mirrored}"


@dataclass(frozen=True)
class Stage:
    """One stage of a progressive canary: its canary percentage, weights and route."""

    number: int
    label: str
    weights: tuple[int, int]
    route: Obj


@dataclass(frozen=True)
class Step:
    """One operation on the live route, with the commands that do it."""

    title: str
    kubectl: tuple[str, ...]
    trafficlab: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class Generated:
    """A generated route, what it does, and the commands that operate it."""

    kind: str
    route: Obj
    description: tuple[str, ...]
    expectations: tuple[Expectation, ...]
    steps: tuple[Step, ...]
    stages: tuple[Stage, ...] = ()
    file: str = "route.yaml"

    def yaml(self) -> str:
        """The route as YAML, after comment lines saying what it does."""
        return _comment(self.description) + dump_yaml(self.route)

    def commands(self, *, commented: bool = False) -> str:
        """The operating commands as a shell script (or as YAML comments, to follow the YAML)."""
        lines: list[str] = []
        for step in self.steps:
            lines.append(f"# {step.title}")
            lines.extend(f"# {line}" for line in _wrap(step.note) if step.note)
            lines.extend(step.kubectl)
            lines.append("# with TrafficLab:")
            lines.extend(step.trafficlab)
            lines.append("")
        if commented:
            lines = [line if line.startswith("#") else f"#   {line}" if line else "#"
                     for line in lines]
        return "\n".join(lines).rstrip("#\n") + "\n"

    def text(self, output: str = "all") -> str:
        """``yaml``, ``commands`` or ``all`` (YAML, then the commands as comments: still applies)."""
        if output == "yaml":
            return self.yaml()
        if output == "commands":
            return self.commands()
        if output == "all":
            return self.yaml() + "\n# --- commands " + "-" * 60 + "\n" + self.commands(commented=True)
        raise GenerateError(f"unknown output {output!r}; use yaml, commands or all")

    def stage_files(self) -> dict[str, str]:
        """File name -> YAML for every stage (``canary-stage-2.yaml``...), or the route alone."""
        if not self.stages:
            return {self.file: self.yaml()}
        stem = Path(self.file).stem
        return {f"{stem}-stage-{s.number}.yaml": _comment(
            (f"Stage {s.number} of {len(self.stages)}: {s.label}.",
             "It differs from the other stages only in the weights.")) + dump_yaml(s.route)
            for s in self.stages}


# -- YAML ----------------------------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    """Indents list items under their key, as kubectl and the Gateway API docs do."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dump_yaml(obj: Obj) -> str:
    """Block-style YAML with keys in the order given."""
    return str(yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                         allow_unicode=True))


def _wrap(text: str, width: int = 96) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def _comment(lines: Sequence[str]) -> str:
    out: list[str] = []
    for line in lines:
        out.extend(f"# {part}".rstrip() for part in _wrap(line))
    return "\n".join(out) + "\n" if out else ""


# -- building blocks -----------------------------------------------------------------------
def _ref(name: str, port: int, weight: int | None = None) -> Obj:
    ref: Obj = {"name": name, "port": port}
    if weight is not None:
        ref["weight"] = weight
    return ref


def _match(o: GenerateOptions, headers: Sequence[tuple[str, str]] = ()) -> Obj | None:
    match: Obj = {}
    if o.path is not None:
        match["path"] = {"type": o.path_type, "value": o.path}
    if headers:
        match["headers"] = [{"name": n, "value": v} for n, v in headers]
    return match or None


def _rule(backends: list[Obj], match: Obj | None = None, **extra: Any) -> Obj:
    rule: Obj = {}
    if match is not None:
        rule["matches"] = [match]
    rule.update(extra)
    rule["backendRefs"] = backends
    return rule


def _route(o: GenerateOptions, rules: list[Obj]) -> Obj:
    parent: Obj = {"name": o.gateway}
    if o.gateway_namespace and o.gateway_namespace != o.namespace:
        parent["namespace"] = o.gateway_namespace
    if o.section:
        parent["sectionName"] = o.section
    spec: Obj = {"parentRefs": [parent]}
    if o.hostnames:
        spec["hostnames"] = list(o.hostnames)
    spec["rules"] = rules
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": o.name, "namespace": o.namespace}, "spec": spec}
    validate(copy.deepcopy(route))  # raises ValidationError naming the field: never print a bad route
    return route


def _split(o: GenerateOptions, stable: str, canary: str, weights: tuple[int, int]) -> list[Obj]:
    return [_ref(stable, o.port, weights[0]), _ref(canary, o.port, weights[1])]


def _shares(names_weights: Sequence[tuple[str, int]]) -> dict[str, float]:
    total = sum(w for _, w in names_weights)
    out: dict[str, float] = {}
    for name, w in names_weights:
        out[name] = out.get(name, 0.0) + (w / total if total else 0.0)
    return out


def _ratio_text(weights: tuple[int, int]) -> str:
    total = sum(weights)
    return f"{percent_text(weights[1] / total)}"


# -- commands ------------------------------------------------------------------------------
def _cmd(*argv: str) -> str:
    return shlex.join(argv)


def _patch_step(title: str, o: GenerateOptions, ops: list[Obj], note: str = "") -> Step:
    body = json.dumps(ops, separators=(",", ":"))
    target = ("httproute", o.name, "-n", o.namespace, "--type=json", "-p", body)
    return Step(
        title=title,
        kubectl=(_cmd("kubectl", "patch", *target, "--dry-run=client"), _cmd("kubectl", "patch", *target)),
        trafficlab=(_cmd("trafficlab", "patch", *target, "--dry-run=client"),
                    _cmd("trafficlab", "patch", *target)),
        note=note,
    )


def _apply_step(o: GenerateOptions, file: str, title: str | None = None) -> Step:
    return Step(
        title=title or f"Apply {file} (first check it: --dry-run=client changes nothing)",
        kubectl=(_cmd("kubectl", "apply", "--dry-run=client", "-f", file),
                 _cmd("kubectl", "apply", "-f", file)),
        trafficlab=(_cmd("trafficlab", "apply", "--dry-run=client", "-f", file),
                    _cmd("trafficlab", "apply", "-f", file)),
        note="kubectl's client dry run only parses the file; --dry-run=server also runs the API "
             "server's validation. trafficlab's dry run validates as the API server does.",
    )


def weight_ops(rule: int, names: tuple[str, str], weights: tuple[int, int]) -> list[Obj]:
    """JSON patch that sets the two weights of ``rule``, guarded by ``test`` ops on the names.

    The ``test`` ops make the patch fail (changing nothing) if the live route lists other
    backends at those positions, instead of silently moving the wrong weight.
    """
    ops: list[Obj] = []
    for k, (name, weight) in enumerate(zip(names, weights, strict=True)):
        at = f"/spec/rules/{rule}/backendRefs/{k}"
        ops.append({"op": "test", "path": f"{at}/name", "value": name})
        ops.append({"op": "replace", "path": f"{at}/weight", "value": weight})
    return ops


def _separate_route(o: GenerateOptions, result: Generated) -> Generated:
    """A route not named task-api competes with the lab's task-api, which is older and so wins
    every tie (HTTPRouteRule precedence, then the oldest route): say so, and remove it first."""
    if o.name == DEFAULT_ROUTE:
        return result
    description = (*result.description,
                   f"This route is not the lab's {DEFAULT_ROUTE}: where their matches tie, the "
                   f"older route wins (spec precedence), so delete HTTPRoute {DEFAULT_ROUTE} first.")
    target = ("httproute", DEFAULT_ROUTE, "-n", o.namespace)
    delete = Step(
        f"Delete the lab's HTTPRoute {DEFAULT_ROUTE}, which would win every tie with this route",
        (_cmd("kubectl", "delete", *target, "--dry-run=client"), _cmd("kubectl", "delete", *target)),
        (_cmd("trafficlab", "delete", *target, "--dry-run=client"),
         _cmd("trafficlab", "delete", *target)))
    return replace(result, description=description, steps=(delete, *result.steps))


def _weight_step(title: str, o: GenerateOptions, rule: int, names: tuple[str, str],
                 weights: tuple[int, int]) -> Step:
    return _patch_step(title, o, weight_ops(rule, names, weights),
                       note="A JSON patch changes only the two weights (a merge patch would have to "
                            "restate the whole rules list); the test ops make it fail, changing "
                            "nothing, if the live route lists other backends there.")


# -- kinds ---------------------------------------------------------------------------------
def generate(kind: str, options: GenerateOptions | None = None) -> Generated:
    """Generate ``kind`` (one of :data:`GENERATE_KINDS`) with ``options``."""
    o = options or GenerateOptions()
    builders = {
        "canary": _canary, "progressive": _canary, "rollback": _canary,
        "blue-green": _blue_green, "ab": _ab, "premium": _premium,
        "premium-canary": _canary, "mirror": _mirror,
    }
    if kind not in builders:
        raise GenerateError(f"unknown kind {kind!r}; use one of {', '.join(GENERATE_KINDS)}")
    if o.percent is not None and o.weights is not None:
        raise GenerateError("give --percent or --weights, not both")
    return _separate_route(o, builders[kind](kind, o))


def _canary_stages(kind: str, o: GenerateOptions) -> list[tuple[tuple[int, int], str]]:
    if kind == "rollback":
        if o.stages or o.weights or o.percent is not None:
            raise GenerateError("rollback sends everything back to stable; it takes no weights")
        return [((100, 0), "0%")]
    if o.stages is not None and (o.weights is not None or o.percent is not None):
        raise GenerateError("give --stages or a single --percent/--weights, not both")
    stages = o.stages if o.stages is not None else (DEFAULT_STAGES if kind == "progressive" else None)
    if stages is not None:
        return [(weights_for_percent(p), percent_text(float(p) / 100)) for p in stages]
    if o.weights is not None:
        return [(o.weights, _ratio_text(o.weights))]
    share = o.percent if o.percent is not None else Decimal(10)
    return [(weights_for_percent(share), percent_text(float(share) / 100))]


def _canary(kind: str, o: GenerateOptions) -> Generated:
    stable, canary = o.stable or "task-api-v1", o.canary or "task-api-v2"
    premium_pinned = kind == "premium-canary"
    headers = o.headers or ((PREMIUM_HEADER,) if premium_pinned else ())
    if headers and not premium_pinned:
        raise GenerateError(f"{kind} splits every request; --header is for ab, premium and "
                            "premium-canary")
    plan = _canary_stages(kind, o)
    if not 1 <= o.stage <= len(plan):
        raise GenerateError(f"--stage must be between 1 and {len(plan)}")
    split_rule = 1 if premium_pinned else 0
    names = (stable, canary)

    def rules(weights: tuple[int, int]) -> list[Obj]:
        out = []
        if premium_pinned:
            out.append(_rule([_ref(stable, o.port)], _match(o, headers)))
        out.append(_rule(_split(o, stable, canary, weights), _match(o)))
        if o.path is not None:
            out.append(_rule([_ref(stable, o.port)]))  # other paths stay on stable, not 404
        return out

    stages = tuple(Stage(i + 1, f"{label} to {canary}", w, _route(o, rules(w)))
                   for i, (w, label) in enumerate(plan))
    current = stages[o.stage - 1]
    w = current.weights
    where = f"requests under {o.path_type} {o.path}" if o.path else "every request"
    if premium_pinned:
        where = ("requests without " + " and ".join(f"{n}: {v}" for n, v in headers)
                 + (f" under {o.path_type} {o.path}" if o.path else ""))
    expectations = [Expectation(o.path or "/tasks", {}, _shares([(stable, w[0]), (canary, w[1])]))]
    if premium_pinned:
        expectations.insert(0, Expectation(o.path or "/tasks", dict(headers), {stable: 1.0}))
    if o.path is not None:
        expectations.append(Expectation("/", {}, {stable: 1.0}))

    total = sum(w)
    description = [
        {"canary": "Canary", "progressive": "Progressive canary", "rollback": "Rollback",
         "premium-canary": "Canary with premium users pinned"}[kind]
        + f": {where} go{'es' if where == 'every request' else ''} "
          f"{percent_text(w[1] / total)} to {canary} and "
          f"{percent_text(w[0] / total)} to {stable} (weights {w[0]}:{w[1]}).",
        "Weights are relative: the share is weight / sum of weights, so 9:1, 90:10 and 900:100 "
        "split alike; a weight of 0 means no traffic at all.",
    ]
    if kind == "rollback":
        description.append(f"{canary} stays listed with weight 0, so the next attempt is a weight "
                           "change again.")
    if premium_pinned:
        hdr = ", ".join(f"{n}: {v}" for n, v in headers)
        description += [
            f"Requests with {hdr} always go to {stable} (rule 0); everyone else is split (rule 1).",
            "Precedence comes from the matches, not from the order of the rules: a match with a "
            "header beats a match without headers on the same path (Gateway API HTTPRouteRule "
            "precedence: Exact path, longest prefix, method, most headers, most query params; "
            "rule order only breaks ties). Swapping the two rules changes nothing.",
        ]
    if o.path is not None:
        description.append(f"Requests outside {o.path} stay on {stable} (the last rule), "
                           "so nothing answers 404.")
    if len(stages) > 1:
        description.append(f"This is stage {current.number} of {len(stages)} ("
                           + ", ".join(s.label.split(" ")[0] for s in stages)
                           + "); the commands below move between stages by changing the weights.")

    file = o.file or f"{kind}.yaml"
    steps = [_apply_step(o, file)]
    if kind == "rollback":
        steps.insert(0, _weight_step(f"Roll back now: every request to {stable}", o, split_rule,
                                     names, (100, 0)))
        steps[1] = _apply_step(o, file, f"Or apply {file} (first check it: --dry-run=client "
                                        "changes nothing)")
    else:
        for s in stages[current.number:]:
            steps.append(_weight_step(f"Stage {s.number}: {s.label}", o, split_rule, names,
                                      s.weights))
        if len(stages) > 1:
            stem = Path(file).stem
            steps.append(Step(
                "Or move between stages by applying the stage files (written by --out-dir)",
                tuple(_cmd("kubectl", "apply", "-f", f"{stem}-stage-{s.number}.yaml")
                      for s in stages),
                tuple(_cmd("trafficlab", "apply", "-f", f"{stem}-stage-{s.number}.yaml")
                      for s in stages)))
        if stages[-1].weights[0] != 0 and kind != "progressive":
            steps.append(_weight_step(f"Promote: every request to {canary}", o, split_rule, names,
                                      (0, 100)))
        steps.append(_weight_step(f"Roll back: every request to {stable}", o, split_rule, names,
                                  (100, 0)))
    return Generated(kind, current.route, tuple(description), tuple(expectations), tuple(steps),
                     stages if len(stages) > 1 else (), file)


def _no_weights(kind: str, o: GenerateOptions) -> None:
    if o.weights is not None or o.stages is not None or (o.percent is not None and kind != "mirror"):
        raise GenerateError(f"{kind} routes send each group of users to one backend; "
                            "--percent, --weights and --stages are for canary kinds")


def _blue_green(kind: str, o: GenerateOptions) -> Generated:
    _no_weights(kind, o)
    if o.active not in ("blue", "green"):
        raise GenerateError(f"--active is blue or green, not {o.active!r}")
    active, idle = (o.blue, o.green) if o.active == "blue" else (o.green, o.blue)
    names = (o.blue, o.green)
    weights = (100, 0) if o.active == "blue" else (0, 100)
    route = _route(o, [_rule(_split(o, o.blue, o.green, weights), _match(o))])
    file = o.file or "blue-green.yaml"
    description = (
        f"Blue-green: every request goes to {active}; {idle} is listed with weight 0 (no traffic "
        "at all), ready to take over.",
        "The switch is one weight change, applied at once: no request is split between colours.",
        f"The baseline does not deploy {o.blue} and {o.green}: apply "
        f"cluster/manifests/workloads/{o.blue}.yaml and {o.green}.yaml first.",
    )
    flip = (0, 100) if o.active == "blue" else (100, 0)
    steps = (
        _apply_step(o, file),
        _weight_step(f"Switch: every request to {idle}", o, 0, names, flip),
        _weight_step(f"Switch back (rollback): every request to {active}", o, 0, names, weights),
    )
    expectations = (Expectation(o.path or "/tasks", {}, {active: 1.0, idle: 0.0}),)
    return Generated(kind, route, description, expectations, steps, (), file)


def _header_split(kind: str, o: GenerateOptions, special: str, headers: tuple[tuple[str, str], ...],
                  who: str) -> Generated:
    _no_weights(kind, o)
    stable = o.stable or "task-api-v1"
    rules = [_rule([_ref(special, o.port)], _match(o, headers)), _rule([_ref(stable, o.port)])]
    route = _route(o, rules)
    hdr = " and ".join(f"{n}: {v}" for n, v in headers)
    file = o.file or f"{kind}.yaml"
    description = (
        f"{who}: requests with {hdr}"
        + (f" under {o.path_type} {o.path}" if o.path else "")
        + f" go to {special} (rule 0); every other request goes to {stable} (rule 1).",
        "Rule 1 has no matches, so it matches every request (PathPrefix /); rule 0 wins for "
        f"requests with {hdr} because a match with a header beats a match without one, whatever "
        "the order of the rules.",
        "Header names match case-insensitively, header values case-sensitively.",
    )
    remove = [{"op": "test", "path": f"/spec/rules/0/matches/0/headers/{k}/value", "value": v}
              for k, (_, v) in enumerate(headers)] + [{"op": "remove", "path": "/spec/rules/0"}]
    steps = (
        _apply_step(o, file),
        _patch_step(f"Roll back: remove rule 0, so requests with {hdr} go to {stable} too", o,
                    remove),
    )
    expectations = (Expectation(o.path or "/tasks", dict(headers), {special: 1.0}),
                    Expectation(o.path or "/tasks", {}, {stable: 1.0}))
    return Generated(kind, route, description, expectations, steps, (), file)


def _ab(kind: str, o: GenerateOptions) -> Generated:
    return _header_split(kind, o, o.canary or "task-api-v2", o.headers or (BETA_HEADER,),
                         "A/B test")


def _premium(kind: str, o: GenerateOptions) -> Generated:
    return _header_split(kind, o, o.premium or o.canary or "task-api-premium",
                         o.headers or (PREMIUM_HEADER,), "Premium users")


def _mirror(kind: str, o: GenerateOptions) -> Generated:
    _no_weights(kind, o)
    stable, shadow = o.stable or "task-api-v1", o.canary or "task-api-v2"
    mirror: Obj = {"backendRef": _ref(shadow, o.port)}
    share = 100.0
    if o.percent is not None:
        if o.percent != o.percent.to_integral_value():
            raise GenerateError("the mirror percentage is a whole number (percent is an integer)")
        mirror["percent"] = int(o.percent)
        share = float(o.percent)
    flt = {"type": "RequestMirror", "requestMirror": mirror}
    route = _route(o, [_rule([_ref(stable, o.port)], _match(o), filters=[flt])])
    file = o.file or "mirror.yaml"
    description = (
        f"Mirror: {stable} serves every request; a copy of "
        f"{'each' if share == 100 else f'{percent_text(share / 100)} of the'} request"
        f"{'' if share == 100 else 's'} also goes to {shadow}, whose answers are thrown away.",
        f"Clients never see {shadow}: watch its logs or metrics to compare it with {stable}.",
    )
    stop = [{"op": "test", "path": "/spec/rules/0/filters/0/type", "value": "RequestMirror"},
            {"op": "remove", "path": "/spec/rules/0/filters"}]
    steps = (_apply_step(o, file),
             _patch_step(f"Stop mirroring to {shadow}", o, stop))
    expectations = (Expectation(o.path or "/tasks", {}, {stable: 1.0}, {shadow: share / 100}),)
    return Generated(kind, route, description, expectations, steps, (), file)

