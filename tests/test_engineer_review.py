"""The reviewer (``trafficlab review``) and the command reviewer (``trafficlab review-command``).

The reviewer must find each planted flaw in graders/review/flawed/ at the right field, and report
nothing at all on correct routes written in different valid styles. The command reviewer must
show the resulting weights of a good command and name exactly why kubectl refuses a bad one.
Everything here runs against the manifests (no lab): ``baseline_facts()``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from trafficlab.cli import main
from trafficlab.engineer.facts import LabFacts, baseline_facts
from trafficlab.engineer.review import CODES, review_objects, review_paths
from trafficlab.engineer.review_command import review_command
from trafficlab.engineer.translated import translator_verdict

ROOT = Path(__file__).resolve().parents[1]
FLAWED = ROOT / "graders" / "review" / "flawed"

# file -> every finding expected (severity, code, field); nothing else may be reported.
FLAWS: dict[str, set[tuple[str, str, str]]] = {
    "01-canary-weights-percent.yaml": {("warning", "weights-percent", "spec.rules[0].backendRefs")},
    "02-canary-unknown-service.yaml": {("error", "backend-missing", "spec.rules[0].backendRefs[0].name"),
                                       ("error", "backend-missing", "spec.rules[0].backendRefs[1].name")},
    "03-container-port.yaml": {("error", "backend-port", "spec.rules[0].backendRefs[0].port"),
                               ("error", "backend-port", "spec.rules[0].backendRefs[1].port")},
    "04-gateway-name.yaml": {("error", "parent-not-attached", "spec.parentRefs[0].name")},
    "05-gateway-namespace.yaml": {("error", "parent-not-attached", "spec.parentRefs[0].namespace")},
    "06-section-name.yaml": {("error", "parent-not-attached", "spec.parentRefs[0].sectionName")},
    "07-hostname.yaml": {("error", "hostname-unreachable", "spec.hostnames")},
    "08-exact-root.yaml": {("error", "path-misses", "spec.rules[0].matches[0].path")},
    "09-api-prefix.yaml": {("error", "path-misses", "spec.rules[0].matches[0].path")},
    "10-header-value-case.yaml": {("warning", "header-value-case",
                                   "spec.rules[0].matches[0].headers[0].value")},
    "11-header-name-typo.yaml": {("warning", "header-name", "spec.rules[0].matches[0].headers[0].name")},
    "12-tier-type-confusion.yaml": {("warning", "header-confused",
                                     "spec.rules[0].matches[0].headers[0].name")},
    "13-rule-without-backend.yaml": {("error", "rule-no-backend", "spec.rules[0].backendRefs")},
    "14-all-weights-zero.yaml": {("error", "weights-all-zero", "spec.rules[0].backendRefs")},
    "15-duplicate-match.yaml": {("warning", "duplicate-match", "spec.rules[0].matches[1]")},
    "16-separate-route.yaml": {("error", "match-shadowed", "spec.rules[0].matches[0]")},
    "17-pathprefix-singular.yaml": {("error", "path-misses", "spec.rules[0].matches[0].path")},
    "18-prefix-type.yaml": {("error", "schema", "spec.rules[0].matches[0].path.type"),
                            ("error", "schema", "spec.rules[0].matches[0].path")},
    "19-weight-string.yaml": {("error", "schema", "spec.rules[0].backendRefs[0].weight"),
                              ("error", "schema", "spec.rules[0].backendRefs[1].weight")},
    "20-no-default-rule.yaml": {("error", "no-default", "spec.rules")},
    "21-exact-tasks.yaml": {("error", "path-misses", "spec.rules[0].matches[0].path")},
    "22-mirror-unknown-service.yaml": {
        ("error", "backend-missing", "spec.rules[0].filters[0].requestMirror.backendRef.name")},
    "23-rule-order-tie.yaml": {("info", "order-tiebreak", "spec.rules[1].matches[0]")},
}

# Correct routes in different valid styles: the reviewer must say nothing about any of them.
GOOD: dict[str, str] = {
    "minimal 9:1, no matches": """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: task-api}
spec:
  parentRefs: [{name: task-api-gateway}]
  rules:
    - backendRefs:
        - {name: task-api-v1, port: 80, weight: 9}
        - {name: task-api-v2, port: 80, weight: 1}
""",
    "90:10 with every default written out": """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: task-api
  namespace: default
spec:
  parentRefs:
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: task-api-gateway
      namespace: default
      sectionName: http
      port: 80
  rules:
    - matches:
        - path: {type: PathPrefix, value: /}
      backendRefs:
        - {group: "", kind: Service, name: task-api-v1, namespace: default, port: 80, weight: 90}
        - {group: "", kind: Service, name: task-api-v2, port: 80, weight: 10}
""",
    "900:100 as JSON": json.dumps({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "task-api", "namespace": "default"},
        "spec": {"parentRefs": [{"name": "task-api-gateway", "sectionName": "http"}],
                 "rules": [{"backendRefs": [{"name": "task-api-v1", "port": 80, "weight": 900},
                                            {"name": "task-api-v2", "port": 80, "weight": 100}]}]}}),
    "A/B with the catch-all first and a capitalised header name": """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: task-api, namespace: default}
spec:
  parentRefs: [{name: task-api-gateway, sectionName: http}]
  rules:
    - backendRefs: [{name: task-api-v1, port: 80}]
    - matches:
        - path: {type: PathPrefix, value: /}
          headers: [{type: Exact, name: X-User-Type, value: beta}]
      backendRefs: [{name: task-api-v2, port: 80}]
""",
    "premium pinned, split on /tasks, matches in any order": """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: task-api}
spec:
  parentRefs: [{name: task-api-gateway}]
  rules:
    - matches:
        - path: {type: PathPrefix, value: /tasks/}
        - path: {type: Exact, value: /}
      backendRefs:
        - {name: task-api-v2, port: 80, weight: 1}
        - {name: task-api-v1, port: 80, weight: 3}
    - matches:
        - headers: [{name: x-user-tier, value: premium}]
          path: {type: PathPrefix, value: /}
      backendRefs: [{name: task-api-premium, port: 80}]
    - backendRefs: [{name: task-api-v1, port: 80}]
""",
    "blue-green with weights 0 and 1, and default equal weights on a header rule": """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: task-api}
spec:
  parentRefs: [{name: task-api-gateway}]
  rules:
    - backendRefs:
        - {name: task-api-blue, port: 80, weight: 0}
        - {name: task-api-green, port: 80, weight: 1}
    - matches: [{headers: [{name: x-user-type, value: beta}]}]
      backendRefs:
        - {name: task-api-v1, port: 80}
        - {name: task-api-v2, port: 80}
""",
    "mirror at 50% and an Exact health check rule": """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: task-api}
spec:
  parentRefs: [{name: task-api-gateway, sectionName: http}]
  rules:
    - filters:
        - type: RequestMirror
          requestMirror:
            backendRef: {name: task-api-v2, port: 80}
            percent: 50
      backendRefs: [{name: task-api-v1, port: 80}]
    - matches: [{path: {type: Exact, value: /healthz}, method: GET}]
      backendRefs: [{name: task-api-v1, port: 80}]
""",
    "a new version's Service in the same file, and a second route for beta users": """
apiVersion: v1
kind: Service
metadata: {name: task-api-v3}
spec:
  selector: {app: task-api, version: v3}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: task-api-beta}
spec:
  parentRefs: [{name: task-api-gateway}]
  rules:
    - matches: [{headers: [{name: x-user-type, value: beta}]}]
      backendRefs: [{name: task-api-v3, port: 80}]
""",
}


def facts() -> LabFacts:
    return baseline_facts()


def found(report: Any) -> set[tuple[str, str, str]]:
    return {(f.severity, f.code, f.field) for f in report.findings}


def route(*rules: dict[str, Any], name: str = "task-api", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"parentRefs": [{"name": "task-api-gateway"}], "rules": list(rules), **spec}}


def ref(name: str, weight: int | None = None, port: int = 80) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "port": port}
    if weight is not None:
        out["weight"] = weight
    return out


# -- the planted flaws ---------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FLAWS))
def test_each_planted_flaw_is_found_at_its_field_and_nothing_else(name: str) -> None:
    report = review_paths([FLAWED / name], facts())
    assert found(report) == FLAWS[name], report.render()
    for f in report.findings:
        assert f.problem and f.effect and f.fix and f.source.endswith(name)


def test_the_flawed_set_has_every_file_listed_and_at_least_twelve_distinct_flaws() -> None:
    files = sorted(p.name for p in FLAWED.glob("*.yaml"))
    assert files == sorted(FLAWS)
    readme = (FLAWED / "README.md").read_text()
    assert all(f in readme for f in files)
    codes = {code for expected in FLAWS.values() for _, code, _ in expected}
    assert len(codes) >= 12 and codes <= set(CODES)


def test_a_folder_is_reviewed_file_by_file() -> None:
    report = review_paths([FLAWED], facts())
    by_file: dict[str, set[tuple[str, str, str]]] = {}
    for f in report.findings:
        by_file.setdefault(Path(f.source).name, set()).add((f.severity, f.code, f.field))
    assert by_file == FLAWS
    assert report.has_errors and len(report.files) == len(FLAWS)


def test_effects_say_what_happens_to_traffic() -> None:
    def effect(name: str) -> str:
        return " ".join(f.effect for f in review_paths([FLAWED / name], facts()).findings)

    assert "task-api-v2 9.1%" in effect("01-canary-weights-percent.yaml")
    assert "not 100% and 10%" in effect("01-canary-weights-percent.yaml")
    assert "10% share" in effect("02-canary-unknown-service.yaml") and "500" in effect(
        "02-canary-unknown-service.yaml")
    assert "404" in effect("04-gateway-name.yaml")
    assert "GET /tasks and GET /tasks/{id} match no rule and get 404" in effect("08-exact-root.yaml")
    assert "/tasks/{id}" in effect("21-exact-tasks.yaml")
    assert "HTTP 500" in effect("14-all-weights-zero.yaml")
    assert "task-api-v2 100% (rule 0" in effect("23-rule-order-tie.yaml")
    fix = review_paths([FLAWED / "01-canary-weights-percent.yaml"], facts()).findings[0].fix
    assert "task-api-v1 90 and task-api-v2 10" in fix


# -- correct routes ------------------------------------------------------------------------
@pytest.mark.parametrize("style", sorted(GOOD))
def test_correct_routes_in_any_valid_style_get_no_finding(style: str, tmp_path: Path) -> None:
    path = tmp_path / "route.yaml"
    path.write_text(GOOD[style])
    report = review_paths([path], facts())
    assert report.findings == [], report.render()
    assert not report.has_errors


def test_weights_that_look_like_percentages_only_when_they_do() -> None:
    def codes(*weights: int) -> set[str]:
        refs = [ref(f"task-api-{v}", w) for v, w in zip(("v1", "v2", "blue"), weights, strict=False)]
        return {f.code for f in review_objects([("", route({"backendRefs": refs}))], facts()).findings}

    for fine in ((9, 1), (90, 10), (900, 100), (1, 1), (3, 1), (100, 0), (50, 50), (2, 1, 1),
                 (100, 100), (33, 33, 34)):
        assert "weights-percent" not in codes(*fine), fine
    for wrong in ((100, 10), (90, 20), (80, 10), (100, 25), (60, 30, 30)):
        assert "weights-percent" in codes(*wrong), wrong


# -- checks that need other lab facts ------------------------------------------------------
def _with(objects: list[dict[str, Any]], *, running: bool = False,
          drop: tuple[str, ...] = ()) -> LabFacts:
    base = baseline_facts()
    kept = tuple(o for o in base.objects if o["metadata"]["name"] not in drop)
    return LabFacts(kept + tuple(objects), "test facts", running, base.workload_files)


def test_a_lab_service_that_is_not_deployed_says_which_file_deploys_it() -> None:
    lab = _with([], running=True, drop=("task-api-blue",))
    obj = route({"backendRefs": [ref("task-api-blue", 100), ref("task-api-green", 0)]})
    findings = review_objects([("", obj)], lab).findings
    assert [(f.severity, f.code, f.field) for f in findings] == [
        ("error", "backend-not-deployed", "spec.rules[0].backendRefs[0].name")]
    assert "cluster/manifests/workloads/task-api-blue.yaml" in findings[0].fix
    # With weight 0 the missing backend affects no request yet: a warning.
    obj["spec"]["rules"][0]["backendRefs"] = [ref("task-api-green", 100), ref("task-api-blue", 0)]
    assert [f.severity for f in review_objects([("", obj)], lab).findings] == ["warning"]


def test_listener_hostname_and_allowed_namespaces_decide_attachment() -> None:
    gateway = copy.deepcopy(baseline_facts().get("Gateway", "default", "task-api-gateway"))
    assert gateway is not None
    gateway["spec"]["listeners"][0]["hostname"] = "api.lab.example"
    lab = _with([gateway], drop=("task-api-gateway",))
    findings = review_objects([("", route({"backendRefs": [ref("task-api-v1")]},
                                          hostnames=["shop.example"]))], lab).findings
    assert [(f.code, f.field) for f in findings] == [("hostname-mismatch", "spec.hostnames")]
    ok = review_objects([("", route({"backendRefs": [ref("task-api-v1")]},
                                    hostnames=["api.lab.example"]))], lab).findings
    assert ok == []

    other_ns = route({"backendRefs": [ref("task-api-v1")]})
    other_ns["metadata"]["namespace"] = "team-a"
    other_ns["spec"]["parentRefs"][0]["namespace"] = "default"
    findings = review_objects([("", other_ns)], facts()).findings
    assert ("parent-not-attached", "metadata.namespace") in {(f.code, f.field) for f in findings}
    assert "allowedRoutes" in findings[0].problem


def test_attachment_and_references_are_the_translators_verdict() -> None:
    """The reviewer explains, the translator decides: a selector the namespace does not match
    refuses the route (the reviewer alone took any selector as a yes)."""
    gateway = copy.deepcopy(baseline_facts().get("Gateway", "default", "task-api-gateway"))
    assert gateway is not None
    gateway["spec"]["listeners"][0]["allowedRoutes"] = {
        "namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "checkout"}}}}
    lab = _with([gateway], drop=("task-api-gateway",))
    findings = review_objects([("", route({"backendRefs": [ref("task-api-v1")]}))], lab).findings
    assert [(f.severity, f.code, f.field) for f in findings] == [
        ("error", "parent-not-attached", "spec.parentRefs[0]")]
    assert "refuses the route" in findings[0].problem and "NotAllowedByListeners" in findings[0].fix
    # The same verdicts as the status a running lab writes, reference by reference.
    verdict = translator_verdict(route({"backendRefs": [ref("task-api-v1", port=8000)]}), facts())
    assert verdict is not None and verdict.attached(0)
    assert verdict.reference_problem("spec.rules[0].backendRefs[0]") == (
        "spec.rules[0].backendRefs[0].port: Service default/task-api-v1 has no port 8000 (it has 80)")


def test_shadowing_within_a_route_and_between_routes_of_one_file() -> None:
    shadowed = route(
        {"matches": [{"path": {"type": "PathPrefix", "value": "/tasks/"}}],
         "backendRefs": [ref("task-api-v1")]},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/tasks"}}],
         "backendRefs": [ref("task-api-v2")]},
        {"backendRefs": [ref("task-api-v1")]})
    findings = review_objects([("", shadowed)], facts()).findings
    assert [(f.severity, f.code, f.field) for f in findings] == [
        ("error", "duplicate-match", "spec.rules[1].matches[0]")]

    # Two new routes in one file with the same match: the first by namespace/name wins.
    a = route({"matches": [{"headers": [{"name": "x-user-type", "value": "beta"}]}],
               "backendRefs": [ref("task-api-v2")]}, name="beta-a")
    b = route({"matches": [{"headers": [{"name": "x-user-type", "value": "beta"}]}],
               "backendRefs": [ref("task-api-blue")]}, name="beta-b")
    findings = review_objects([("f.yaml", a), ("f.yaml", b)], facts()).findings
    assert [(f.route, f.code) for f in findings] == [("default/beta-b", "match-shadowed")]
    # In separate files they are alternatives: nothing to report.
    assert review_objects([("a.yaml", a), ("b.yaml", b)], facts()).findings == []


def test_a_route_rejected_by_the_schema_leaves_the_old_route_serving() -> None:
    bad = route({"matches": [{"path": {"type": "Prefix", "value": "/"}}],
                 "backendRefs": [ref("task-api-v1")]})
    codes = {f.code for f in review_objects([("", bad)], facts()).findings}
    assert codes == {"schema"}  # no path-misses: the lab keeps serving its route


def test_yaml_errors_and_missing_files_are_findings(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: HTTPRoute\nspec:\n  rules:\n  - backendRefs: [\n")
    report = review_paths([broken, tmp_path / "nope.yaml"], facts())
    assert [f.code for f in report.findings] == ["file", "file"]
    assert "broken.yaml:" in report.findings[0].problem and report.has_errors


# -- the CLI -------------------------------------------------------------------------------
def run_cli(argv: list[str]) -> int:
    return main(argv)


def test_review_cli_exit_status_and_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run_cli(["review", "--no-lab", "-o", "json", str(FLAWED / "16-separate-route.yaml")]) == 1
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["ok"] is False and data["counts"]["error"] == 1
    assert data["findings"][0]["field"] == "spec.rules[0].matches[0]"
    assert "1 error" in err

    assert run_cli(["review", "--no-lab", str(FLAWED / "01-canary-weights-percent.yaml")]) == 0
    out, err = capsys.readouterr()
    assert "weights" in out and "9.1%" in out and "1 warning" in err

    good = tmp_path / "good.yaml"
    good.write_text(GOOD["minimal 9:1, no matches"])
    assert run_cli(["review", "--no-lab", str(good)]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("No problems found")


def test_review_cli_with_lab_insisted_on_but_none_running(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    assert run_cli(["--home", str(tmp_path), "review", "--lab", str(FLAWED)]) == 1
    assert "no lab runs" in capsys.readouterr().err


# -- review-command ------------------------------------------------------------------------
JSON_WEIGHTS = ("kubectl patch httproute task-api -n default --type=json -p "
                "'[{\"op\":\"replace\",\"path\":\"/spec/rules/0/backendRefs/0/weight\",\"value\":90},"
                "{\"op\":\"replace\",\"path\":\"/spec/rules/0/backendRefs/1/weight\",\"value\":10}]'")


def weights_after(review: Any) -> list[tuple[str, int, float]]:
    return [(b["name"], b["weight"], b["percent"])
            for rule in review.changes[0].rules("after") for b in rule["backends"]]


@pytest.mark.parametrize("resource", ["httproute task-api", "httproute/task-api",
                                      "httproutes.gateway.networking.k8s.io task-api",
                                      "HTTPRoute task-api"])
def test_a_json_patch_shows_the_resulting_weights(resource: str) -> None:
    review = review_command(JSON_WEIGHTS.replace("httproute task-api", resource), facts())
    assert review.accepted, review.render()
    assert weights_after(review) == [("task-api-v1", 90, 90.0), ("task-api-v2", 10, 10.0)]
    assert review.changes[0].rules("before")[0]["backends"][0]["weight"] == 100
    assert review.changes[0].rules("after")[0]["matches"] == ["PathPrefix /"]
    assert review.findings == [] and not review.has_errors
    assert "100% -> 90%" in review.render()


def test_review_command_never_changes_its_facts() -> None:
    lab = facts()
    before = copy.deepcopy(lab.objects)
    review_command(JSON_WEIGHTS, lab)
    review_command(JSON_WEIGHTS.replace("--type=json", "--type=merge"), lab)
    assert lab.objects == before


def test_a_merge_patch_that_replaces_the_rules_is_accepted_with_warnings() -> None:
    review = review_command(
        "kubectl patch httproute task-api --type merge -p "
        "'{\"spec\":{\"rules\":[{\"backendRefs\":[{\"name\":\"task-api-v2\",\"port\":80,\"weight\":10}]}]}}'",
        facts())
    assert review.accepted
    assert weights_after(review) == [("task-api-v2", 10, 100.0)]
    notes = " ".join(review.notes)
    assert "replaces the whole list spec.rules" in notes and "no longer lists task-api-v1" in notes


def test_percent_weights_through_a_patch_are_reviewed() -> None:
    review = review_command(JSON_WEIGHTS.replace('"value":90', '"value":100'), facts())
    assert review.accepted and weights_after(review)[1][2] == pytest.approx(9.09, abs=0.01)
    assert [f.code for f in review.findings] == ["weights-percent"]


def test_apply_with_client_dry_run(tmp_path: Path) -> None:
    path = tmp_path / "canary.yaml"
    path.write_text(GOOD["90:10 with every default written out"])
    review = review_command(f"kubectl apply --dry-run=client -f {path.name}", facts(), cwd=tmp_path)
    assert review.accepted and review.dry_run == "client"
    assert review.changes[0].action == "configured"
    assert weights_after(review) == [("task-api-v1", 90, 90.0), ("task-api-v2", 10, 10.0)]
    review = review_command(f"kubectl apply -f {path}", facts())
    assert review.accepted and any("--dry-run=client" in n for n in review.notes)


REJECTIONS = {
    "strategic (kubectl's default) on a custom resource": (
        "kubectl patch httproute task-api -p '{\"spec\":{\"rules\":[]}}'",
        "patch-type", "UnsupportedMediaType"),
    "explicit strategic": (
        "kubectl patch httproute task-api --type strategic -p '{\"spec\":{}}'",
        "patch-type", "strategic merge patch is not supported"),
    "unknown patch type": (
        "kubectl patch httproute task-api --type=xml -p '{}'", "patch-type", "must be one of"),
    "bad JSON, with the position": (
        "kubectl patch httproute task-api --type=json -p "
        "'[{\"op\":\"replace\",\"path\":\"/spec/rules/0/backendRefs/1/weight\",\"value\":10}'",
        "json", "line 1 column 73 (character 72)"),
    "a JSON pointer that does not exist": (
        "kubectl patch httproute task-api --type=json -p "
        "'[{\"op\":\"replace\",\"path\":\"/spec/rules/0/backendRefs/2/weight\",\"value\":10}]'",
        "path-missing", "/spec/rules/0/backendRefs has 2 items (index 0: task-api-v1, index 1: "
                        "task-api-v2), so index 2 does not exist"),
    "a misspelt key in the pointer": (
        "kubectl patch httproute task-api --type=json -p "
        "'[{\"op\":\"replace\",\"path\":\"/spec/rules/0/backendrefs/1/weight\",\"value\":10}]'",
        "path-missing", 'keys are case-sensitive: "backendRefs"'),
    "op missing": (
        "kubectl patch httproute task-api --type=json -p "
        "'[{\"path\":\"/spec/rules/0/backendRefs/1/weight\",\"value\":10}]'",
        "op-missing", 'has no "op"'),
    "an op RFC 6902 does not have": (
        "kubectl patch httproute task-api --type=json -p "
        "'[{\"op\":\"set\",\"path\":\"/spec/rules/0/backendRefs/1/weight\",\"value\":10}]'",
        "op-unknown", "'set' is not one of"),
    "a dotted path instead of a JSON pointer": (
        "kubectl patch httproute task-api --type=json -p "
        "'[{\"op\":\"replace\",\"path\":\"spec.rules[0].backendRefs[1].weight\",\"value\":10}]'",
        "path-syntax", "'/spec/rules/0/backendRefs/1/weight'"),
    "value missing": (
        "kubectl patch httproute task-api --type=json -p "
        "'[{\"op\":\"replace\",\"path\":\"/spec/rules/0/backendRefs/1/weight\"}]'",
        "value-missing", '"value" is missing'),
    "a failed test op": (
        "kubectl patch httproute task-api --type=json -p "
        "'[{\"op\":\"test\",\"path\":\"/spec/rules/0/backendRefs/1/name\",\"value\":\"task-api-v3\"}]'",
        "test-failed", "'task-api-v2', not 'task-api-v3'"),
    "an object given to --type=json": (
        "kubectl patch httproute task-api --type=json -p '{\"spec\":{}}'",
        "patch-shape", "list of operations"),
    "a list given to --type=merge": (
        "kubectl patch httproute task-api --type=merge -p '[]'", "patch-shape", "JSON object"),
    "a result that fails validation": (
        "kubectl patch httproute task-api --type=json -p "
        "'[{\"op\":\"replace\",\"path\":\"/spec/rules/0/backendRefs/1/weight\",\"value\":\"10%\"}]'",
        "invalid", 'spec.rules[0].backendRefs[1].weight: Invalid value: "10%"'),
    "a patch that renames the object": (
        "kubectl patch httproute task-api --type=merge -p '{\"metadata\":{\"name\":\"other\"}}'",
        "invalid", "cannot change the kind, name or namespace"),
    "quotes eaten by the shell": (
        'kubectl patch httproute task-api --type=merge -p "{"spec":{"rules":[{"backendRefs":'
        '[{"name":"task-api-v1","port":80}]}]}}"', "invalid", "double quotes are gone"),
    "an unclosed quote": (
        "kubectl patch httproute task-api --type=json -p '[{\"op\":\"remove\"}]", "shell",
        "No closing quotation"),
    "an object that does not exist": (
        "kubectl patch httproute task-api -n prod --type=json -p '[]'", "not-found", "NotFound"),
    "an unknown resource type": (
        "kubectl patch route task-api --type=json -p '[]'", "resource", "resource type \"route\""),
    "an unknown flag": (
        "kubectl patch httproute task-api --typo=json -p '[]'", "flag", "unknown flag: --typo"),
    "no -p": ("kubectl patch httproute task-api --type=json", "flag", "must specify -p"),
    "not kubectl": ("curl -X PATCH http://localhost", "not-kubectl", "is not kubectl"),
    "another verb": ("kubectl delete httproute task-api", "verb", "not 'delete'"),
    "apply of a missing file": ("kubectl apply -f /nonexistent/route.yaml", "file", "does not exist"),
    "apply without -f": ("kubectl apply --dry-run=client", "flag", "must specify one of -f"),
    "trafficlab patch with YAML instead of JSON": (
        "trafficlab patch httproute task-api --type=merge -p '{spec: {rules: []}}'", "json",
        "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_review_command_says_exactly_why_kubectl_refuses(case: str) -> None:
    command, reason, text = REJECTIONS[case]
    review = review_command(command, facts())
    assert not review.accepted and review.has_errors
    assert review.reason == reason, review.render()
    assert text in review.message + review.hint, review.render()
    assert review.changes == []


def test_apply_of_an_invalid_file_and_a_namespace_mismatch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((FLAWED / "18-prefix-type.yaml").read_text())
    review = review_command(f"kubectl apply --dry-run=client -f {bad}", facts())
    assert review.reason == "invalid" and "path.type" in review.message
    assert any("--dry-run=server" in n for n in review.notes)
    good = tmp_path / "good.yaml"
    good.write_text(GOOD["90:10 with every default written out"])
    review = review_command(f"kubectl apply -n prod -f {good}", facts())
    assert review.reason == "namespace" and "--namespace=default" in review.message


def test_yaml_that_kubectl_accepts_is_accepted_with_a_note() -> None:
    review = review_command("kubectl patch httproute task-api --type=merge -p "
                            "'{spec: {parentRefs: [{name: task-api-gateway}]}}'", facts())
    assert review.accepted
    assert any("kubectl reads -p as YAML" in n for n in review.notes)


def test_review_command_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["review-command", "--no-lab", JSON_WEIGHTS]) == 0
    out, _ = capsys.readouterr()
    assert "ACCEPTED" in out and "task-api-v2" in out and "10%" in out
    bad = REJECTIONS["a JSON pointer that does not exist"][0]
    assert run_cli(["review-command", "--no-lab", "-o", "json", bad]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["accepted"] is False and data["reason"] == "path-missing"
    # Unquoted: the words of the command as separate arguments.
    assert run_cli(["review-command", "--no-lab", "kubectl", "patch", "httproute", "task-api",
                    "--type=json", "-p", "[]"]) == 0
    capsys.readouterr()
    assert run_cli(["review-command", "--no-lab"]) == 1


def test_baseline_route_is_what_review_command_patches() -> None:
    baseline = yaml.safe_load((ROOT / "cluster/manifests/baseline/30-httproute-task-api.yaml").read_text())
    review = review_command("kubectl patch httproute task-api --type=json -p '[]'", facts())
    assert review.changes[0].action == "patched (no change)"
    assert review.changes[0].after["spec"] == baseline["spec"]
