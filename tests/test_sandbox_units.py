"""Splitting tests into units and deciding which units are scored (no jail needed)."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from editsweep.sandbox.units import is_scored_unit, split_test_units


def shared_data() -> Path:
    return Path(os.environ.get("EDITSWEEP_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


HUMANEVAL_STYLE = '''

METADATA = {
    'author': 'jt',
    'dataset': 'test'
}


def check(candidate):
    assert candidate([1.0, 2.0, 3.9], 0.3) == True
    for x in range(3):
        assert candidate([x], 0.5) == False
    assert True, "This prints if this assert fails 1 (good for debugging!)"

check(has_close_elements)
'''


def test_humaneval_check_becomes_setup_binding_and_body_statements():
    units = split_test_units(HUMANEVAL_STYLE, "has_close_elements")
    assert units[0].startswith("METADATA = {")
    assert units[1] == "candidate = has_close_elements"
    assert units[2] == "assert candidate([1.0, 2.0, 3.9], 0.3) == True"
    assert units[3] == "for x in range(3):\n    assert candidate([x], 0.5) == False"
    assert units[4].startswith("assert True,")
    assert len(units) == 5  # the trailing check(...) call is dropped
    assert [is_scored_unit(u, "has_close_elements") for u in units] == [False, False, True, True, False]


def test_check_parameter_name_is_bound_whatever_it_is():
    units = split_test_units("def check(fn):\n    assert fn(2) == 4\n", "square")
    assert units == ["fn = square", "assert fn(2) == 4"]
    # the scorer only knows `candidate` and the entry point: a unit through another name is unscored
    assert is_scored_unit(units[1], "square") is False


def test_mbpp_asserts_are_one_unit_each_and_setup_is_kept():
    test = "import math\nassert remove_Occ('hello','l') == 'heo'\nassert remove_Occ('abcda','a') == 'bcd'\n"
    units = split_test_units(test, "remove_Occ")
    assert units == ["import math", "assert remove_Occ('hello','l') == 'heo'", "assert remove_Occ('abcda','a') == 'bcd'"]
    assert [is_scored_unit(u, "remove_Occ") for u in units] == [False, True, True]


def test_multiline_statements_keep_their_source():
    test = "def check(candidate):\n    assert candidate(\n        [1, 2],  # two items\n    ) == 3\n"
    units = split_test_units(test, "total")
    assert units[1] == "assert candidate(\n    [1, 2],  # two items\n) == 3"


@pytest.mark.parametrize(
    ("unit", "scored"),
    [
        ("assert candidate(1) == 2", True),
        ("assert f(1) == 2", True),
        ("assert True", False),
        ("x = candidate(1)", False),
        ("assert g(1) == 2", False),
        ("if True:\n    assert candidate(0) is None", True),
        ("assert (", False),  # does not parse
    ],
)
def test_is_scored_unit(unit, scored):
    assert is_scored_unit(unit, "f") is scored


def test_without_entry_point_every_assert_counts():
    assert is_scored_unit("assert g(1) == 2", None) is True
    assert is_scored_unit("x = 1", None) is False


@pytest.mark.parametrize(
    ("test", "entry", "message"),
    [
        ("def check(candidate):\n    assert candidate(1) ==\n", "f", "does not parse"),
        ("def check(a, b):\n    assert a(1)\n", "f", "exactly one parameter"),
        ("def check(candidate):\n    assert candidate(1)\n", None, "needs an entry point"),
        ("def check(candidate):\n    assert candidate(1)\n", "not an id", "not an identifier"),
    ],
)
def test_bad_tests_are_rejected_with_the_reason(test, entry, message):
    with pytest.raises(ValueError, match=message):
        split_test_units(test, entry)


def test_all_humaneval_tests_split_into_the_expected_scored_units():
    path = shared_data() / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt") as handle:
        problems = [json.loads(line) for line in handle]
    assert len(problems) == 164
    per_problem = []
    for problem in problems:
        units = split_test_units(problem["test"], problem["entry_point"])
        scored = sum(is_scored_unit(u, problem["entry_point"]) for u in units)
        assert scored >= 1, problem["task_id"]
        per_problem.append(scored)
    # notes/execution-sandbox.md §7: 1,133 scored units, min 1, median 7, max 26 per problem
    assert sum(per_problem) == 1133
    assert min(per_problem) == 1 and max(per_problem) == 26
    assert sorted(per_problem)[82] == 7
