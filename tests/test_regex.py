"""Gateway API regexes are evaluated as Envoy evaluates them: with RE2, over the whole value.

The attacks come from issue 10: a catastrophic pattern that would burn a minute of CPU in
Python's ``re`` and constructs (backreferences, lookaround) that Python accepts and Envoy
refuses. Wherever TrafficLab predicts a request's fate, it must agree with the gateway.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from trafficlab.gateway.evaluate import Request, predict
from trafficlab.gateway.regex import RegexError, compile_regex, full_match, regex_problem
from trafficlab.manifests import baseline_dir, load_manifests

CATASTROPHIC = "beta|((((((.*)*)*)*)*)*)*!"


def _with_header_rule(pattern: str) -> list[dict[str, Any]]:
    """The baseline, with a first rule sending header ``x-group`` matching ``pattern`` to v2."""
    objects = copy.deepcopy(load_manifests(baseline_dir()))
    route = next(o for o in objects if o["kind"] == "HTTPRoute")
    default_rule = route["spec"]["rules"][0]
    experiment = copy.deepcopy(default_rule)
    experiment["matches"] = [{"headers": [{"type": "RegularExpression", "name": "x-group",
                                           "value": pattern}]}]
    experiment["backendRefs"] = [{"name": "task-api-v2", "port": 80}]
    route["spec"]["rules"] = [experiment, default_rule]
    return objects


def test_a_catastrophic_pattern_is_linear_and_whole_value() -> None:
    # No '!' at the end: a backtracking engine tries exponentially many splits before it
    # gives up; RE2 answers in one pass over the value.
    hostile = "x" * 5000 + "?"
    assert full_match(CATASTROPHIC, hostile) is False
    assert full_match(CATASTROPHIC, "beta") is True
    assert full_match(CATASTROPHIC, "x" * 5000 + "!") is True
    objects = _with_header_rule(CATASTROPHIC)
    outcome = predict(objects, Request("/tasks", headers={"x-group": hostile}))
    assert outcome.share("task-api-v2") == 0.0
    outcome = predict(objects, Request("/tasks", headers={"x-group": "beta"}))
    assert outcome.share("task-api-v2") == 1.0


@pytest.mark.parametrize(("pattern", "value"), [
    (r"(a)\1", "aa"),              # backreference: Python matches, RE2 refuses the pattern
    (r"(?=beta)beta", "beta"),     # lookahead
    (r"(?<=x)tasks", "xtasks"),    # lookbehind
])
def test_patterns_envoy_refuses_match_nothing(pattern: str, value: str) -> None:
    assert regex_problem(pattern) is not None
    with pytest.raises(RegexError, match="invalid regular expression"):
        compile_regex(pattern)
    assert full_match(pattern, value) is False


def test_a_match_covers_the_whole_header_value_as_in_envoy() -> None:
    objects = _with_header_rule("beta")
    assert predict(objects, Request("/tasks", headers={"x-group": "beta"})).share("task-api-v2") == 1
    # Python's re.search would find 'beta' inside; Envoy's safe_regex needs the whole value.
    outcome = predict(objects, Request("/tasks", headers={"x-group": "not-beta-user"}))
    assert outcome.share("task-api-v2") == 0.0
