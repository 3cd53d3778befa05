"""Property: every HTTPRoute the CRD schema accepts renders to a configuration Envoy accepts.

Issue 12: one route Envoy refused (a regex RE2 rejects, a header value with a newline) took
the whole gateway down. Hypothesis writes routes from the parts the lab supports, with
values chosen to be awkward (regex syntax, control characters, long repetitions, odd
durations); the schema and CEL rules filter what a real apiserver would refuse, and what is
left must pass ``envoy --mode validate``. The translator may refuse a rule (that is the fix);
Envoy may never refuse the result. Derandomized, so CI runs the same examples each time.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trafficlab._errors import ProxyError, ValidationError
from trafficlab.gateway.evaluate import snapshot_of
from trafficlab.gateway.proxy import find_envoy
from trafficlab.gateway.quarantine import envoy_validator
from trafficlab.gateway.translate import translate
from trafficlab.manifests import baseline_dir, load_manifests
from trafficlab.resources import validate

pytestmark = pytest.mark.envoy

# Mostly values the schema accepts (so most examples reach Envoy), each awkward for Envoy.
REGEX = st.sampled_from([
    "/tasks/[0-9]+", "(", "a{100}", "a{90}", r"(a)\1", "(?<=x)y", "beta|((.*)*)*!",
    "[[:alpha:]]+", r"\p{Greek}", "(?i)beta", ".*", "^/tasks$", "[", "\\", "a**",
])
PATH = st.sampled_from(["/tasks", "/", "/a/b", "/tasks/", "/ü", "/%00", "/a//b", "/*"])
AWKWARD = st.sampled_from(["beta", "a\nb", "x\r\ny: z", "a\0b", "ü", " spaced ", "%00", "*",
                           "\t", "v" * 4000, "\x7f", '"quoted"'])
TEXT = st.one_of(AWKWARD, REGEX, st.text(min_size=1, max_size=12))
HEADER_NAME = st.sampled_from(["x-user-type", "X-Tier", "x_b", "x.y", "cookie", "x-a"])
DURATION = st.sampled_from(["1s", "500ms", "0s", "1h", "99999h", "10", "1.5s"])


@st.composite
def matches(draw: st.DrawFn) -> dict[str, Any]:
    match: dict[str, Any] = {}
    if draw(st.booleans()):
        kind = draw(st.sampled_from(["Exact", "PathPrefix", "RegularExpression"]))
        match["path"] = {"type": kind,
                         "value": draw(REGEX if kind == "RegularExpression" else PATH)}
    if draw(st.booleans()):
        match["headers"] = [{"name": draw(HEADER_NAME), "value": draw(TEXT),
                             "type": draw(st.sampled_from(["Exact", "RegularExpression"]))}]
    if draw(st.booleans()):
        match["queryParams"] = [{"name": draw(st.sampled_from(["canary", "q"])),
                                 "value": draw(TEXT),
                                 "type": draw(st.sampled_from(["Exact", "RegularExpression"]))}]
    if draw(st.booleans()):
        match["method"] = draw(st.sampled_from(["GET", "POST", "DELETE"]))
    return match


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    rule: dict[str, Any] = {"matches": draw(st.lists(matches(), max_size=2))}
    filters = []
    if draw(st.booleans()):
        filters.append({"type": "RequestHeaderModifier", "requestHeaderModifier": {
            "set": [{"name": draw(HEADER_NAME), "value": draw(TEXT)}],
            "remove": [draw(HEADER_NAME)]}})
    if draw(st.booleans()):
        filters.append({"type": "ResponseHeaderModifier", "responseHeaderModifier": {
            "add": [{"name": draw(HEADER_NAME), "value": draw(TEXT)}]}})
    if draw(st.booleans()):
        filters.append({"type": "URLRewrite", "urlRewrite": {
            "path": {"type": "ReplaceFullPath", "replaceFullPath": draw(PATH)}}})
    if filters:
        rule["filters"] = filters
    if draw(st.booleans()):
        rule["timeouts"] = {"request": draw(DURATION)}
    weights = draw(st.lists(st.integers(0, 1_000_000), min_size=1, max_size=2))
    rule["backendRefs"] = [{"name": name, "port": 80, "weight": w}
                           for name, w in zip(("task-api-v1", "task-api-v2"), weights,
                                              strict=False)]
    return rule


@pytest.fixture(scope="module")
def envoy() -> Any:
    try:
        return envoy_validator(find_envoy())
    except ProxyError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))


BASELINE = load_manifests(baseline_dir())


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(rules(), min_size=1, max_size=3))
def test_whatever_the_schema_accepts_envoy_accepts(envoy: Any,
                                                   drawn: list[dict[str, Any]]) -> None:
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "task-api", "namespace": "default"},
             "spec": {"parentRefs": [{"name": "task-api-gateway"}], "rules": drawn}}
    try:
        stored = validate(copy.deepcopy(route))
    except ValidationError:
        return  # the apiserver would refuse it: it never reaches the translator
    objects = [o for o in BASELINE if o["kind"] != "HTTPRoute"]
    stored["metadata"].update(generation=1, creationTimestamp="2024-05-01T10:00:00Z", uid="u")
    result = translate(snapshot_of([*objects, stored]))
    assert envoy(result.ir) is None, (route, envoy(result.ir))
