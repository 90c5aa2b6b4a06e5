"""Tests for editsweep.scoring: pass@k, levels, bootstrap and summarize."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editsweep.scoring import (
    Status,
    bootstrap_ci,
    mean_pass_at_k,
    metric_keys,
    partial_credit,
    pass_at_k,
    pass_at_k_ci,
    problem_counts,
    sample_levels,
    summarize,
)

# ------------------------------------------------------------------------------------ pass@k


@pytest.mark.parametrize(
    "k, expected",
    [(1, [0, 0.2, 0.4, 0.6, 0.8, 1]), (3, [0, 0.6, 0.9, 1, 1, 1]), (5, [0, 1, 1, 1, 1, 1])],
)
def test_pass_at_k_known_answers_n5(k, expected):
    assert [pass_at_k(5, c, k) for c in range(6)] == pytest.approx(expected, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_matches_the_binomial_form(nck):
    n, c, k = nck
    expected = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_stays_exact_where_binomials_overflow_floats():
    value = pass_at_k(2000, 3, 1000)
    assert value == pytest.approx(1 - math.comb(1997, 1000) / math.comb(2000, 1000), abs=1e-12)
    assert value == pytest.approx(0.875, abs=1e-3)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 30).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(1, n))))
def test_pass_at_k_is_monotone_in_c(nck):
    n, c, k = nck
    assert pass_at_k(n, c, k) <= pass_at_k(n, c + 1, k) + 1e-12


@pytest.mark.parametrize("n, c, k, match", [(2, 1, 3, "fewer than k"), (5, 6, 1, "0 <= c <= n"),
                                             (5, -1, 1, "0 <= c <= n"), (5, 1, 0, "k must be"),
                                             (5.0, 1, 1, "n must be an int")])
def test_pass_at_k_errors(n, c, k, match):
    with pytest.raises(ValueError, match=match):
        pass_at_k(n, c, k)


def test_mean_pass_at_k_leaves_out_short_problems():
    assert mean_pass_at_k([(5, 1), (2, 2), (5, 5)], 3) == (pytest.approx(0.8), 1)
    assert mean_pass_at_k([(2, 2)], 3) == (None, 1)


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    values = [0.0] * 30 + [1.0] * 70
    low, high = bootstrap_ci(values, seed=7)
    assert (low, high) == bootstrap_ci(values, seed=7)
    assert low < 0.7 < high
    assert 0.55 < low and high < 0.85
    assert bootstrap_ci([0.4] * 10) == pytest.approx((0.4, 0.4))


def test_bootstrap_ci_errors():
    with pytest.raises(ValueError, match="no values"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0], confidence=1.5)


def test_pass_at_k_ci_uses_problems_with_enough_samples():
    low, high = pass_at_k_ci([(5, 0), (5, 5), (5, 0), (5, 5), (2, 2)], 5, seed=1)
    assert 0.0 <= low <= 0.5 <= high <= 1.0
    with pytest.raises(ValueError, match="k=5"):
        pass_at_k_ci([(2, 2)], 5)


# ------------------------------------------------------------------------------------ levels


def test_sample_levels_follow_status_and_compiled_flag():
    assert sample_levels({"status": "passed", "tests_passed": 3, "tests_total": 3}) == {
        "compile": True, "partial": True, "full": True}
    assert sample_levels({"status": "failed", "tests_passed": 1, "tests_total": 3}) == {
        "compile": True, "partial": True, "full": False}
    assert sample_levels({"status": "definition_error", "tests_passed": 0, "tests_total": 3}) == {
        "compile": False, "partial": False, "full": False}
    # the sandbox's flag wins over the status-derived default
    assert sample_levels({"status": "timeout", "compiled": False, "tests_passed": 0})["compile"] is False


def test_early_exit_is_not_a_pass_even_with_all_tests_counted():
    sample = {"status": Status.CRASHED, "tests_passed": 3, "tests_total": 3}
    assert sample_levels(sample) == {"compile": True, "partial": True, "full": False}


def test_partial_credit():
    assert partial_credit({"status": "failed", "tests_passed": 1, "tests_total": 4}) == 0.25
    assert partial_credit({"status": "failed", "tests_passed": 0, "tests_total": 0}) is None
    with pytest.raises(ValueError, match="outside"):
        partial_credit({"status": "failed", "tests_passed": 5, "tests_total": 4})


def test_unknown_status_is_named():
    with pytest.raises(ValueError, match="'exploded'"):
        sample_levels({"status": "exploded"})


# --------------------------------------------------------------------------------- summarize


def _s(pid, i, status, passed, total, adoption=None, error=None, compiled=None):
    row = {"step": 0, "problem_id": pid, "sample": i, "status": status, "tests_passed": passed,
           "tests_total": total, "adoption": adoption, "error_class": error}
    if compiled is not None:
        row["compiled"] = compiled
    return row


HAND_BUILT = [
    # problem A: 4 valid samples (one harness error), compile 3, partial 3, full 2
    _s("A", 0, "passed", 4, 4, "correct_adoption"),
    _s("A", 1, "passed", 4, 4, "workaround"),
    _s("A", 2, "failed", 1, 4, "incorrect_adoption", "assertion_failure"),
    _s("A", 3, "syntax_error", 0, 4, "legacy", "syntax_error", compiled=False),
    _s("A", 4, "harness_error", 0, 4, "correct_adoption", "crash"),  # excluded everywhere
    # problem B: 5 samples, compile 4, partial 1, full 0
    _s("B", 0, "failed", 0, 2, "other_failure", "assertion_failure"),
    _s("B", 1, "failed", 0, 2, "other_failure", "wrong_usage"),
    _s("B", 2, "failed", 0, 2, "other_failure", "name_error"),
    _s("B", 3, "definition_error", 0, 2, "legacy", "deprecated_api"),
    _s("B", 4, "timeout", 1, 2, "incorrect_adoption", "timeout"),
    # problem C: a specificity problem with only 2 samples, both pass
    _s("C", 0, "passed", 3, 3, "spurious_adoption"),
    _s("C", 1, "passed", 3, 3, "none"),
]


def test_summarize_hand_built_set():
    m = summarize(HAND_BUILT)
    assert list(m) == metric_keys()
    assert (m["n_problems"], m["n_samples"], m["n_harness_errors"]) == (3, 11, 1)
    expected = {
        # pass@1: per problem c/n, then the mean over A, B, C
        "compile@1": (3 / 4 + 4 / 5 + 1) / 3, "partial@1": (3 / 4 + 1 / 5 + 1) / 3, "full@1": (2 / 4 + 0 + 1) / 3,
        # pass@3: C (n=2) is left out; A n=4 has n-c<3 for c>=2 -> 1; B partial c=1 -> 0.6
        "compile@3": 1.0, "partial@3": (1 + 0.6) / 2, "full@3": (1 + 0) / 2,
        # pass@5: only B has 5 valid samples
        "compile@5": 1.0, "partial@5": 1.0, "full@5": 0.0,
        # A: (1 + 1 + 0.25 + 0) / 4, B: (0 + 0 + 0 + 0 + 0.5) / 5, C: 1
        "partial_credit": ((2.25 / 4) + 0.1 + 1.0) / 3,
        "adoption/correct_adoption": 1 / 9, "adoption/incorrect_adoption": 2 / 9, "adoption/workaround": 1 / 9,
        "adoption/legacy": 2 / 9, "adoption/other_failure": 3 / 9, "spurious_adoption": 0.5,
    }
    for key, value in expected.items():
        assert m[key] == pytest.approx(value), key
    assert (m["n_problems_below@1"], m["n_problems_below@3"], m["n_problems_below@5"]) == (0, 1, 2)
    assert (m["n_adoption_samples"], m["n_specificity_samples"], m["n_failing_samples"]) == (9, 2, 7)
    assert {k: v for k, v in m.items() if k.startswith("errors/") and v} == {
        "errors/assertion_failure": 2, "errors/syntax_error": 1, "errors/wrong_usage": 1,
        "errors/name_error": 1, "errors/deprecated_api": 1, "errors/timeout": 1}
    assert sum(m[f"adoption/{c}"] for c in ("correct_adoption", "incorrect_adoption", "workaround",
                                            "legacy", "other_failure")) == pytest.approx(1.0)


def test_summarize_empty_rates_are_none():
    m = summarize([])
    assert m["n_samples"] == 0 and m["full@1"] is None and m["partial_credit"] is None
    assert m["adoption/legacy"] is None and m["spurious_adoption"] is None and m["errors/crash"] == 0


def test_summarize_only_harness_errors():
    m = summarize([_s("A", 0, "harness_error", 0, 1)])
    assert (m["n_problems"], m["n_samples"], m["n_harness_errors"], m["full@1"]) == (0, 0, 1, None)


@pytest.mark.parametrize(
    "rows, match",
    [
        ([{"status": "passed"}], "sample #0 has no 'problem_id'"),
        ([_s("A", 0, "passed", 1, 1), _s("A", 0, "failed", 0, 1)], "duplicate sample 0 of problem 'A'"),
        ([_s("A", 0, "bogus", 1, 1)], r"sample #0 \(A\): unknown status 'bogus'"),
        ([_s("A", 0, "passed", 1, 1, adoption="maybe")], "unknown adoption class 'maybe'"),
        ([_s("A", 0, "failed", 0, 1, error="oops")], "unknown error class 'oops'"),
        ([_s("A", 0, "passed", 1, 1), dict(_s("B", 0, "passed", 1, 1), step=1)], "one evaluation point"),
        (["not a dict"], "sample #0 is a str"),
    ],
)
def test_summarize_rejects_bad_rows(rows, match):
    with pytest.raises(ValueError, match=match):
        summarize(rows)


def test_problem_counts_feed_the_bootstrap():
    assert sorted(problem_counts(HAND_BUILT, "full")) == [(2, 2), (4, 2), (5, 0)]
    assert sorted(problem_counts(HAND_BUILT, "compile")) == [(2, 2), (4, 3), (5, 4)]
    low, high = pass_at_k_ci(problem_counts(HAND_BUILT, "full"), 1, seed=3)
    assert 0.0 <= low <= summarize(HAND_BUILT)["full@1"] <= high <= 1.0
    with pytest.raises(ValueError, match="'best'"):
        problem_counts(HAND_BUILT, "best")
