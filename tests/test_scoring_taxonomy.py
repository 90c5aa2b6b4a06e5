"""Tests for editsweep.scoring.taxonomy: error classes and the compile / post-compile drop split."""

from __future__ import annotations

import pytest

from editsweep.scoring import drop_split, error_class

PROGRAM = """import re

def f(s):
    x = my_re_search(r'\\d', s)
    y = len(s) + x
    assert y
    return re.search('a', s)
"""


def result(status, error_type=None, message=None, line=None):
    return {"status": status, "error_type": error_type, "error_message": message, "error_line": line}


def classify(res, program=PROGRAM):
    return error_class(res, program, removed_apis=["re.search"], new_apis=["my_re_search"])


@pytest.mark.parametrize(
    "res, expected",
    [
        (result("syntax_error", "SyntaxError", "invalid syntax", 2), "syntax_error"),
        (result("deprecated_api", "DeprecatedApi", "uses str.join"), "deprecated_api"),
        (result("timeout", "Timeout", "time budget exceeded"), "timeout"),
        (result("memory", "MemoryError", ""), "memory"),
        (result("crashed", "Killed", "killed by SIGKILL"), "crash"),
        (result("missing_entry_point", "MissingEntryPoint", "no callable 'f'"), "name_error"),
        # runtime removal: the attribute is gone from the module
        (result("failed", "AttributeError", "module 're' has no attribute 'search'", 7), "deprecated_api"),
        (result("definition_error", "ImportError", "cannot import name 'search' from 're'", 1), "deprecated_api"),
        # an error raised at a line that uses the removed API, whatever its message
        (result("failed", "AttributeError", "'NoneType' object has no attribute 'group'", 7), "deprecated_api"),
        (result("failed", "NameError", "name 'foo' is not defined", 5), "name_error"),
        (result("failed", "UnboundLocalError", "local variable 'x' referenced before assignment", 5), "name_error"),
        (result("failed", "TypeError", "my_re_search() missing 1 required positional argument", 4), "wrong_usage"),
        (result("failed", "TypeError", "unsupported operand type(s) for +", 5), "runtime_error"),  # not a new-API line
        (result("failed", "TypeError", "bad", None), "runtime_error"),  # no line known
        (result("failed", "AssertionError", "", 6), "assertion_failure"),
        (result("failed", "AssertionError", "", None), "assertion_failure"),
        (result("failed", "ValueError", "bad value", 5), "runtime_error"),
        (result("failed", "MemoryError", "", 5), "memory"),
        (result("definition_error", "SystemExit", "0", 1), "runtime_error"),
        (result("failed", None, None, None), "runtime_error"),
        (result("passed"), None),
        (result("harness_error", "WorkerError", "lost"), None),
    ],
)
def test_error_classes(res, expected):
    assert classify(res) == expected


def test_removed_builtin_name_error_is_deprecated_api():
    program = "def f(xs):\n    return sorted(xs)\n"
    res = result("failed", "NameError", "name 'sorted' is not defined", 2)
    assert error_class(res, program, removed_apis=["sorted"]) == "deprecated_api"
    assert error_class(res, program, removed_apis=["re.search"]) == "name_error"


def test_name_error_mentioning_a_module_attr_is_not_deprecated():
    # `search` used bare without an import is a NameError of the model's own making
    program = "def f(s):\n    return search('a', s)\n"
    res = result("failed", "NameError", "name 'search' is not defined", 2)
    assert error_class(res, program, removed_apis=["re.search"]) == "name_error"


def test_wrong_usage_through_an_alias_of_the_new_api():
    program = "def f(s):\n    g = my_re_search\n    return g(s)\n"
    res = result("failed", "TypeError", "missing argument", 2)
    assert error_class(res, program, new_apis=["my_re_search"]) == "wrong_usage"
    # line 3 calls the alias g of the new API
    assert error_class(dict(res, error_line=3), program, new_apis=["my_re_search"]) == "wrong_usage"


def test_unparseable_program_still_classified_by_status_and_type():
    res = result("failed", "TypeError", "x", 1)
    assert error_class(res, "def f(:\n", new_apis=["my_re_search"]) == "runtime_error"


def test_unknown_status_raises():
    with pytest.raises(ValueError, match="'weird'"):
        error_class(result("weird"), PROGRAM)


# -------------------------------------------------------------------------------- drop split


def test_drop_split_hand_computed():
    baseline = {"compile@1": 0.9, "full@1": 0.6}
    edited = {"compile@1": 0.7, "full@1": 0.3}
    split = drop_split(baseline, edited)
    # 0.2 of the drop is samples that stopped compiling; the post-compile failure rate rose
    # from 0.9 - 0.6 = 0.3 to 0.7 - 0.3 = 0.4, i.e. 0.1
    assert split == pytest.approx({"total_drop": 0.3, "compile_drop": 0.2, "post_compile_drop": 0.1})
    assert split["compile_drop"] + split["post_compile_drop"] == pytest.approx(split["total_drop"])


def test_drop_split_reads_the_requested_k():
    baseline = {"compile@1": 0.9, "full@1": 0.6, "compile@5": 1.0, "full@5": 0.8}
    edited = {"compile@1": 0.9, "full@1": 0.6, "compile@5": 1.0, "full@5": 0.5}
    assert drop_split(baseline, edited, k=5) == pytest.approx(
        {"total_drop": 0.3, "compile_drop": 0.0, "post_compile_drop": 0.3})


def test_drop_split_missing_key_is_named():
    with pytest.raises(ValueError, match="edited metrics have no 'full@1'"):
        drop_split({"compile@1": 1, "full@1": 1}, {"compile@1": 1, "full@1": None})
