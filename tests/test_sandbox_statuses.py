"""Known answers for every sample status, partial credit and the API environment, in the real jail."""

from __future__ import annotations

import pytest

from editsweep.sandbox import SandboxPool, run_tasks
from editsweep.scoring.status import COMPILED_STATUSES, Status

pytestmark = pytest.mark.jail

ADD = "def add(a, b):\n    return a + b\n"
TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(0, 0) == 0"]


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=2, timeout_s=2.0) as pool:
        yield pool


def one(pool, program, tests=TESTS, entry_point="add", **extra):
    return pool.run_one({"id": "s", "program": program, "tests": tests, "entry_point": entry_point, **extra})


# -- every status, in the order they are decided -------------------------------------------
def test_syntax_error(pool):
    r = one(pool, "def add(a, b)\n    return a + b\n")
    assert (r["status"], r["compiled"], r["error_line"]) == ("syntax_error", False, 1)


def test_deprecated_api(pool):
    r = one(pool, "def add(a, b):\n    return sum(sorted([a, b]))\n", remove=["sorted"])
    assert (r["status"], r["compiled"], r["error_line"]) == ("deprecated_api", False, 2)


def test_definition_error_keeps_the_exception_and_line(pool):
    r = one(pool, "import no_such_module_here\n" + ADD)
    assert (r["status"], r["compiled"]) == ("definition_error", False)
    assert r["error_type"] == "ModuleNotFoundError" and r["error_line"] == 1


def test_exit_at_module_level_is_a_definition_error(pool):
    r = one(pool, "import sys\n" + ADD + "sys.exit(0)\n")
    assert (r["status"], r["error_type"]) == ("definition_error", "SystemExit")


def test_missing_entry_point(pool):
    r = one(pool, "def plus(a, b):\n    return a + b\n")
    assert (r["status"], r["compiled"], r["tests_passed"]) == ("missing_entry_point", False, 0)
    r = one(pool, "add = 3\n")
    assert r["status"] == "missing_entry_point"


def test_timeout_keeps_units_finished_before_it(pool):
    program = "def add(a, b):\n    if a == 2:\n        while True:\n            pass\n    return a + b\n"
    r = one(pool, program, timeout_s=1.0)
    assert (r["status"], r["compiled"], r["error_type"]) == ("timeout", True, "Timeout")
    assert (r["tests_passed"], r["tests_total"]) == (1, 3)  # the unit after the timeout never ran
    assert 0.9 < r["duration_s"] < 2.5


def test_memory(pool):
    r = one(pool, "def add(a, b):\n    block = bytearray(4 << 30)\n    return a + b\n")
    assert (r["status"], r["compiled"], r["error_type"]) == ("memory", True, "MemoryError")
    assert r["error_line"] == 2


def test_crashed_on_os_exit_and_on_a_signal(pool):
    r = one(pool, "import os\ndef add(a, b):\n    os._exit(0)\n")
    assert (r["status"], r["compiled"], r["tests_passed"]) == ("crashed", True, 0)
    r = one(pool, "import os, signal\ndef add(a, b):\n    if a == 2:\n        os.kill(os.getpid(), signal.SIGSEGV)\n"
                  "    return a + b\n")
    assert (r["status"], r["tests_passed"], r["error_type"]) == ("crashed", 1, "Killed")
    assert "SIGSEGV" in r["error_message"]


def test_failed_with_partial_credit_and_first_error(pool):
    program = "def add(a, b):\n    if a == 2:\n        raise ValueError('two')\n    return a + b\n"
    r = one(pool, program)
    assert (r["status"], r["compiled"], r["tests_passed"], r["tests_total"]) == ("failed", True, 2, 3)
    assert (r["error_type"], r["error_message"], r["error_line"]) == ("ValueError", "two", 3)


def test_assertion_failure_has_no_program_line(pool):
    r = one(pool, "def add(a, b):\n    return a - b\n")
    assert (r["status"], r["tests_passed"], r["error_type"], r["error_line"]) == ("failed", 1, "AssertionError", None)


def test_passed(pool):
    r = one(pool, ADD, tests=["import math", "assert True", *TESTS])
    assert (r["status"], r["compiled"], r["tests_passed"], r["tests_total"]) == ("passed", True, 3, 3)
    assert r["error_type"] is None and r["duration_s"] > 0


def test_harness_error_for_a_broken_install_source(pool):
    r = one(pool, ADD, install={"my_add": "def my_add(:\n"})
    assert (r["status"], r["compiled"]) == ("harness_error", False)
    assert r["error_type"] == "SyntaxError"


def test_every_status_reports_compiled_as_the_scoring_module_says(pool):
    for status in Status:
        assert (status in COMPILED_STATUSES) == (status.value in {"timeout", "memory", "crashed", "failed", "passed"})


# -- exits inside tests never pass --------------------------------------------------------
def test_sys_exit_inside_tests_fails_every_unit_it_reaches(pool):
    r = one(pool, "import sys\ndef add(a, b):\n    sys.exit(0)\n")
    assert (r["status"], r["tests_passed"], r["error_type"]) == ("failed", 0, "SystemExit")


def test_os_exit_inside_a_test_statement_does_not_pass(pool):
    r = one(pool, ADD, tests=["assert add(1, 2) == 3", "import os; os._exit(0)", "assert add(2, 2) == 4"])
    assert (r["status"], r["tests_passed"], r["tests_total"]) == ("crashed", 1, 2)


# -- the API environment ------------------------------------------------------------------
RE_TESTS = ["assert find('b', 'abc') == 1"]


def test_removed_module_attribute_is_gone_at_run_time(pool):
    program = "import re\ndef find(p, s):\n    return getattr(re, 'sea' + 'rch')(p, s).start()\n"
    r = one(pool, program, tests=RE_TESTS, entry_point="find", remove=["re.search"])
    assert (r["status"], r["error_type"], r["error_line"]) == ("failed", "AttributeError", 3)
    r = one(pool, program, tests=RE_TESTS, entry_point="find")
    assert r["status"] == "passed"


def test_removed_module_attribute_imported_at_module_level_is_a_definition_error(pool):
    program = "import importlib\nsearch = getattr(importlib.import_module('re'), 'search')\ndef find(p, s):\n    return 1\n"
    r = one(pool, program, tests=RE_TESTS, entry_point="find", remove=["re.search"])
    assert (r["status"], r["error_type"]) == ("definition_error", "AttributeError")


def test_removed_builtin_is_missing_from_the_samples_builtins_only(pool):
    program = "def add(a, b):\n    return eval('sor' + 'ted')([a, b])[0] + max(a, b)\n"
    r = one(pool, program, tests=["assert add(1, 2) == 3"], remove=["sorted"])
    assert (r["status"], r["error_type"]) == ("failed", "NameError")
    # library code still has the real builtin: heapq.nsmallest calls sorted() internally
    program = "import heapq\ndef add(a, b):\n    return sum(heapq.nsmallest(2, [a, b, 99]))\n"
    r = one(pool, program, tests=["assert add(1, 2) == 3"], remove=["sorted"])
    assert r["status"] == "passed"


def test_installed_api_is_a_builtin_and_wrong_usage_points_at_the_call(pool):
    install = {"my_re_search": "import re as _re\n_search = _re.search\n"
                               "def my_re_search(string, pattern):\n    return _search(pattern, string)\n"}
    good = "def find(p, s):\n    return my_re_search(s, p).start()\n"
    r = one(pool, good, tests=RE_TESTS, entry_point="find", remove=["re.search"], install=install)
    assert r["status"] == "passed"
    wrong = "def find(p, s):\n    x = 1\n    return my_re_search(s).start()\n"
    r = one(pool, wrong, tests=RE_TESTS, entry_point="find", remove=["re.search"], install=install)
    assert (r["status"], r["error_type"], r["error_line"]) == ("failed", "TypeError", 3)


def test_removal_does_not_leak_into_the_next_sample(pool):
    program = "import re\ndef find(p, s):\n    return getattr(re, 'sea' + 'rch')(p, s).start()\n"
    results = list(pool.run([
        {"id": "a", "program": program, "tests": RE_TESTS, "entry_point": "find", "remove": ["re.search"],
         "install": {"my_x": "def my_x():\n    return 1\n"}},
        {"id": "b", "program": program + "assert 'my_x' not in __builtins__ and callable(max)\n",
         "tests": RE_TESTS, "entry_point": "find"},
    ] * 3))
    assert [r["status"] for r in results] == ["failed", "passed"] * 3


# -- output and bookkeeping ----------------------------------------------------------------
def test_output_is_captured_and_bounded(pool):
    program = "import os\ndef add(a, b):\n    print('x' * 5000)\n    os.write(2, b'raw')\n    return a + b\n"
    r = one(pool, program)
    assert r["status"] == "passed"
    assert r["output"].startswith("x" * 100) and len(r["output"]) <= 2048


def test_results_come_in_task_order_and_run_tasks_works():
    tasks = [{"id": str(i), "program": ADD if i % 3 else "def add(a, b):\n    return 0\n", "tests": TESTS,
              "entry_point": "add"} for i in range(30)]
    results = run_tasks(tasks, workers=2)
    assert [r["id"] for r in results] == [str(i) for i in range(30)]
    assert [r["status"] for r in results] == ["failed" if i % 3 == 0 else "passed" for i in range(30)]


def test_malformed_task_objects_are_harness_errors_and_the_run_continues(pool):
    results = list(pool.run([{"id": "bad", "program": 1, "tests": []}, {"id": "ok", "program": ADD, "tests": TESTS,
                                                                          "entry_point": "add"}]))
    assert [(r["id"], r["status"]) for r in results] == [("bad", "harness_error"), ("ok", "passed")]
    assert "'program' must be a string" in results[0]["error_message"]
