"""The grading policy's guarantees for split checks, proven exactly and by simulation.

Policy (docs: "Grading policy"): a correct configuration fails a split check with
probability at most 1e-6, and a split off by 5 percentage points or more fails with
probability at least 0.999.

*Exact*: the binomial tails of every plan are recomputed here with integer arithmetic
(``C(n, k) a^k (b-a)^(n-k) / b^n`` for ``p = a/b``), independently of the floating-point
code under test, and compared with the bounds without rounding.

*Simulation*: numpy's binomial sampler (seeded) draws 200,000 request counts per case;
``random.Random`` (seeded) routes requests one by one for whole multi-backend checks.
"""

from __future__ import annotations

import math
import random
import re
from fractions import Fraction
from functools import lru_cache

import numpy as np
import pytest

from trafficlab.stats import (
    SplitPlan,
    acceptance_region,
    binomial_cdf,
    binomial_sf,
    check_split,
    plan_split_check,
    requests_needed,
)

FALSE_FAIL = Fraction(1, 10**6)
MISS = Fraction(1, 1000)  # 1 - power
SHARES = [0.05, 0.1, 0.25, 0.5, 0.9]
DRAWS = 200_000


@lru_cache(maxsize=64)
def exact_terms(n: int, share: str) -> tuple[tuple[int, ...], int]:
    """Integers T_k with P(X = k) = T_k / b**n exactly, for p = Fraction(share) = a/b."""
    p = Fraction(share)
    a, b = p.numerator, p.denominator
    if a == 0:
        return (b**n,) + (0,) * n, b**n
    if a == b:
        return (0,) * n + (b**n,), b**n
    term = (b - a) ** n
    terms = [term]
    for k in range(n):
        # T_{k+1} = T_k (n-k) a / ((k+1)(b-a)), an exact integer division.
        term = term * (n - k) * a // ((k + 1) * (b - a))
        terms.append(term)
    return tuple(terms), b**n


def exact_between(n: int, share: float, low: int, high: int) -> Fraction:
    """P(low <= X <= high) for X ~ Binomial(n, share), as an exact fraction."""
    terms, denom = exact_terms(n, repr(share))
    return Fraction(sum(terms[max(0, low):max(0, high + 1)]), denom)


def exact_outside(n: int, share: float, low: int, high: int) -> Fraction:
    return 1 - exact_between(n, share, low, high)


def alternatives(share: float, off: float) -> list[float]:
    """Shares off by ``off`` that are valid shares, rounded to avoid 0.1+0.05 noise."""
    return [round(share + d, 10) for d in (-off, off) if 0.0 <= round(share + d, 10) <= 1.0]


# --- exact guarantees ----------------------------------------------------------------------


@pytest.mark.parametrize("share", SHARES)
def test_plan_false_failure_is_at_most_1e6_exactly(share: float) -> None:
    plan = plan_split_check(share)
    outside = exact_outside(plan.requests, share, plan.low, plan.high)
    assert outside <= FALSE_FAIL
    assert plan.low <= share * plan.requests <= plan.high


@pytest.mark.parametrize("share", SHARES)
@pytest.mark.parametrize("off", [0.05, 0.08])
def test_plan_catches_a_split_off_by_5pp_or_more_exactly(share: float, off: float) -> None:
    plan = plan_split_check(share)
    n = plan.requests
    for wrong in alternatives(share, off):
        # The acceptance region itself...
        assert exact_between(n, wrong, plan.low, plan.high) <= MISS
        # ...and the whole one-sided tail, which bounds every share further away.
        if wrong > share:
            assert exact_between(n, wrong, 0, plan.high) <= MISS
        else:
            assert exact_between(n, wrong, plan.low, n) <= MISS


@pytest.mark.parametrize("share", SHARES)
def test_guarantees_hold_for_a_few_hundred_requests_more_than_planned(share: float) -> None:
    # Counts are integers, so the guarantees wiggle near the smallest n; the plan moves
    # past that, so a grader that counts more requests than planned keeps them.
    need = requests_needed({"a": share, "b": 1 - share})
    for n in range(need, need + 300):
        verdict = check_split({"a": round(share * n), "b": n - round(share * n)},
                              {"a": share, "b": 1 - share})
        assert verdict.enough, n


def test_deterministic_shares_need_an_exact_count() -> None:
    assert plan_split_check(0.0) == SplitPlan(135, 0, 0)
    assert plan_split_check(1.0) == SplitPlan(135, 135, 135)
    # 135 is the smallest n with (1 - 5%)^n <= 0.001: a wrong config that sends 5% of
    # the traffic to a weight-0 backend is caught with probability >= 0.999.
    assert Fraction(19, 20) ** 135 <= MISS < Fraction(19, 20) ** 134


def test_float_tails_match_exact_arithmetic() -> None:
    for n, share in [(30, 0.3), (200, 0.05), (2000, 0.9), (6000, 0.5)]:
        terms, denom = exact_terms(n, repr(share))
        for k in range(0, n + 1, max(1, n // 60)):
            below = Fraction(sum(terms[: k + 1]), denom)  # P(X <= k)
            above = Fraction(sum(terms[k:]), denom)  # P(X >= k)
            for got, want in ((binomial_cdf(n, share, k), below),
                              (binomial_sf(n, share, k), above)):
                if want > Fraction(1, 10**300):
                    assert got == pytest.approx(float(want), rel=1e-9, abs=1e-300), (n, k)
    assert binomial_cdf(10, 0.5, -1) == 0.0 and binomial_cdf(10, 0.5, 10) == 1.0
    assert binomial_cdf(10, 0.0, 0) == 1.0 and binomial_sf(10, 1.0, 10) == 1.0


def test_equal_tailed_region_keeps_the_false_failure_bound() -> None:
    for n, share in [(100, 0.1), (1000, 0.5), (500, 0.02)]:
        low, high = acceptance_region(n, share, 1e-6)
        assert exact_outside(n, share, low, high) <= FALSE_FAIL
        assert exact_between(n, share, 0, low - 1) <= FALSE_FAIL / 2  # P(X < low)
        assert exact_between(n, share, high + 1, n) <= FALSE_FAIL / 2  # P(X > high)
        # and it is the narrowest such: one count less on either side breaks it
        assert exact_between(n, share, 0, low) > FALSE_FAIL / 2
        assert exact_between(n, share, high, n) > FALSE_FAIL / 2
    assert acceptance_region(100, 1.0, 1e-6) == (100, 100)


# --- simulation ----------------------------------------------------------------------------


@pytest.mark.parametrize("share", SHARES)
def test_simulated_correct_splits_do_not_fail(share: float) -> None:
    plan = plan_split_check(share)
    rng = np.random.default_rng(20_240_601 + int(share * 1000))
    counts = rng.binomial(plan.requests, share, size=DRAWS)
    failures = int(np.count_nonzero((counts < plan.low) | (counts > plan.high)))
    # The exact computation above is the proof; this is the sampler's view of it. At
    # the bound (1e-6) 200k draws expect 0.2 failures; 3 or more would have
    # probability ~1e-3. (The seeds used here see one failure in 1M draws in all.)
    assert failures <= 2


@pytest.mark.parametrize("share", SHARES)
@pytest.mark.parametrize("off", [0.05, 0.08])
def test_simulated_wrong_splits_fail(share: float, off: float) -> None:
    plan = plan_split_check(share)
    rng = np.random.default_rng(7_000 + int(share * 1000) + int(off * 100))
    for wrong in alternatives(share, off):
        counts = rng.binomial(plan.requests, wrong, size=DRAWS)
        passes = int(np.count_nonzero((counts >= plan.low) & (counts <= plan.high)))
        # At the bound (0.001) 200k draws expect 200 passes, sd ~14; 270 is 5 sd out.
        assert passes <= 270, (wrong, passes)
        if off >= 0.08:
            assert passes == 0


def routed_counts(rng: random.Random, shares: dict[str, float], n: int) -> dict[str, int]:
    """Route ``n`` requests one by one, as a weighted gateway would."""
    names = list(shares)
    picks = rng.choices(names, weights=[shares[k] for k in names], k=n)
    return {name: picks.count(name) for name in names}


def test_simulated_three_way_split_end_to_end() -> None:
    expected = {"v1": 0.5, "v2": 0.3, "v3": 0.2}
    n = requests_needed(expected)
    rng = random.Random(42)
    verdicts = [check_split(routed_counts(rng, expected, n), expected) for _ in range(100)]
    assert all(v.passed for v in verdicts)
    # One backend 5 pp short, another 5 pp over: must fail (P(pass) <= 0.001 each).
    wrong = {"v1": 0.5, "v2": 0.25, "v3": 0.25}
    passes = sum(check_split(routed_counts(rng, wrong, n), expected).passed for _ in range(100))
    assert passes <= 2  # P(>= 3 of 100) < 2e-4 at the bound


# --- verdicts ------------------------------------------------------------------------------


def test_bonferroni_over_backends() -> None:
    expected = {"v1": 0.5, "v2": 0.3, "v3": 0.2}
    need = requests_needed(expected)
    assert need == max(plan_split_check(p, false_fail=1e-6 / 3).requests
                       for p in expected.values())
    verdict = check_split({"v1": need // 2, "v2": need * 3 // 10,
                           "v3": need - need // 2 - need * 3 // 10}, expected)
    assert verdict.passed and verdict.enough and verdict.total == need
    # The exact false-failure probabilities of the three regions add up to <= 1e-6.
    total = sum(exact_outside(need, b.expected, b.low, b.high) for b in verdict.backends)
    assert total <= FALSE_FAIL
    # A weight-0 backend spends no false-failure budget.
    assert requests_needed({"v1": 0.9, "v2": 0.1, "v3": 0.0}) == requests_needed(
        {"v1": 0.9, "v2": 0.1})


def test_weight_zero_backend_must_get_exactly_nothing() -> None:
    expected = {"v1": 1.0, "v2": 0.0}
    ok = check_split({"v1": 200, "v2": 0}, expected)
    assert ok.passed
    bad = check_split({"v1": 200, "v2": 1}, expected)
    assert not bad.passed
    assert [b.name for b in bad.failures] == ["v1", "v2"]
    assert bad.message.splitlines()[1] == (
        "saw 0.5% to v2 (1 of 201), expected 0% (accepted none at all)")
    assert bad.message.splitlines()[0] == (
        "saw 99.5% to v1 (200 of 201), expected 100% (accepted all of them)")


def test_unexpected_backend_fails_unless_expected() -> None:
    counts = {"v1": 2990, "none": 10}  # "none": answers made by the gateway itself
    verdict = check_split(counts, {"v1": 1.0})
    assert not verdict.passed
    assert [b.name for b in verdict.failures] == ["v1", "none"]
    assert "saw 0.3% to none (10 of 3000), expected 0%" in verdict.message
    # A backend expected but never seen fails too when its share is not 0.
    missing = check_split({"v1": 3000}, {"v1": 0.9, "v2": 0.1})
    assert [b.name for b in missing.failures] == ["v1", "v2"]


def test_failure_message_says_what_it_saw_and_expected() -> None:
    verdict = check_split({"v1": 1376, "v2": 624}, {"v1": 0.9, "v2": 0.1},
                          require_enough=False)
    assert not verdict.passed
    line = next(b.message for b in verdict.failures if b.name == "v2")
    assert re.fullmatch(
        r"saw 31\.2% to v2 \(624 of 2000\), expected 10% \(accepted \d+\.\d%\.\.\d+\.\d%\)",
        line)
    v2 = next(b for b in verdict.backends if b.name == "v2")
    assert v2.low_share < 0.1 < v2.high_share
    assert v2.to_dict()["passed"] is False
    backends = verdict.to_dict()["backends"]
    assert isinstance(backends, list) and backends[1]["name"] == "v2"


def test_too_few_requests_fail_with_a_hint() -> None:
    verdict = check_split({"v1": 90, "v2": 10}, {"v1": 0.9, "v2": 0.1})
    assert not verdict.failures  # the counts are right...
    assert not verdict.enough and not verdict.passed  # ...but 100 requests prove little
    assert f"send at least {requests_needed({'v1': 0.9, 'v2': 0.1})}" in verdict.message
    lenient = check_split({"v1": 90, "v2": 10}, {"v1": 0.9, "v2": 0.1}, require_enough=False)
    assert lenient.passed and lenient.message.startswith("split as expected over 100")


def test_plans_are_monotone_and_symmetric() -> None:
    sizes = [plan_split_check(p).requests for p in (0.05, 0.1, 0.25, 0.5)]
    assert sizes == sorted(sizes)
    for p in (0.05, 0.1, 0.25):
        a, b = plan_split_check(p), plan_split_check(1 - p)
        assert a.requests == b.requests and (a.low, a.high) == (b.requests - b.high,
                                                                b.requests - b.low)
    assert math.isclose(plan_split_check(0.1).requests, requests_needed({"a": 0.1, "b": 0.9}),
                        rel_tol=0.1)


@pytest.mark.parametrize("bad", [
    {"v1": 0.5, "v2": 0.4}, {"v1": 1.5, "v2": -0.5}, {},
])
def test_expected_shares_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        check_split({"v1": 1}, bad)


@pytest.mark.parametrize("options", [
    {"expected": 1.2}, {"expected": 0.5, "tolerance": 0.0}, {"expected": 0.5, "power": 1.0},
    {"expected": 0.5, "false_fail": 0.0},
])
def test_plan_options_are_validated(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        plan_split_check(**options)


def test_docstring_examples_hold() -> None:
    import doctest

    import trafficlab.stats

    assert doctest.testmod(trafficlab.stats).failed == 0
