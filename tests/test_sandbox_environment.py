"""The per-sample API environment, in the real jail: what the program loses, and what it does not.

Removals apply to the candidate program only. Its tests run with the full builtins and see the
program's names (live); the standard library keeps its real modules (so `Counter.__eq__` and
`Counter.most_common` work when `collections.Counter` or `heapq.nlargest` is removed); the
program reaches a module with removed attributes only through filtered views (`__import__`,
`from … import`, parent packages, `importlib.import_module`, `import builtins`). Dynamic access
(`getattr(re, "sea" + "rch")`) is used throughout because static uses never reach a worker.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from editsweep.sandbox import SandboxPool, split_test_units

pytestmark = pytest.mark.jail


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=2, timeout_s=3.0) as pool:
        yield pool


def one(pool, program, tests, entry_point="f", **extra):
    return pool.run_one({"id": "s", "program": program, "tests": tests, "entry_point": entry_point, **extra})


def humaneval(task_id: str) -> dict:
    root = Path(os.environ.get("EDITSWEEP_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    with gzip.open(root / "HumanEval.jsonl.gz", "rt") as handle:
        for line in handle:
            record = json.loads(line)
            if record["task_id"] == task_id:
                return record
    raise AssertionError(f"{task_id} not in {root}")


# -- the tests keep the full builtins -------------------------------------------------------
def test_humaneval_4_asserts_with_abs_while_abs_is_removed_from_the_program(pool):
    problem = humaneval("HumanEval/4")
    body = "    mean = sum(numbers) / len(numbers)\n    return sum(max(x - mean, mean - x) for x in numbers) / len(numbers)\n"
    tests = split_test_units(problem["test"], problem["entry_point"])
    r = one(pool, problem["prompt"] + body, tests, problem["entry_point"], remove=["abs"])
    assert (r["status"], r["tests_passed"], r["tests_total"]) == ("passed", 3, 3)
    # the program's own (dynamic) use of abs still fails, in its body and in a comprehension
    # created at call time (which must not pick up the tests' builtins)
    for body in ("    return eval('ab' + 's')(-1.0)\n", "    return [eval('ab' + 's')(x) for x in numbers][0]\n"):
        r = one(pool, problem["prompt"] + body, tests, problem["entry_point"], remove=["abs"])
        assert (r["status"], r["tests_passed"], r["error_type"]) == ("failed", 0, "NameError")
        assert "'abs' is not defined" in r["error_message"]


def test_humaneval_151_setup_calls_sum_while_sum_is_removed_from_the_program(pool):
    problem = humaneval("HumanEval/151")
    body = ("    total = 0\n    for i in lst:\n        if i > 0 and i % 2 != 0 and '.' not in str(i):\n"
            "            total += i ** 2\n    return total\n")
    tests = split_test_units(problem["test"], problem["entry_point"])
    assert any(unit.startswith("odd_sum = sum(") for unit in tests)
    r = one(pool, problem["prompt"] + body, tests, problem["entry_point"], remove=["sum"])
    assert (r["status"], r["tests_passed"], r["tests_total"]) == ("passed", 7, 7)


def test_tests_read_the_programs_globals_live_and_their_own_names_stay_theirs(pool):
    program = ("calls = 0\ndef f(x):\n    global calls\n    calls += 1\n    return str(x) * calls\n")
    tests = [
        "assert f(1) == '1'",
        "assert f(2) == '22' and calls == 2",  # the program rebound `calls`: the tests see it
        "str = 'shadow'",                       # a test name (HumanEval/38 binds `str`) ...
        "assert f(3) == '333' and str == 'shadow'",  # ... does not reach the program's builtins
        "calls = 100",
        "assert f(4) == '4444' and calls == 100",  # nor does a test rebinding a program global
    ]
    r = one(pool, program, tests)
    assert (r["status"], r["tests_passed"], r["tests_total"]) == ("passed", 4, 4), r


def test_candidate_binding_and_installed_apis_reach_the_tests(pool):
    problem = humaneval("HumanEval/4")
    tests = split_test_units(problem["test"], problem["entry_point"])
    assert "candidate = mean_absolute_deviation" in tests
    install = {"my_abs": "def my_abs(x):\n    return abs(x)\n"}
    body = "    mean = sum(numbers) / len(numbers)\n    return sum(my_abs(x - mean) for x in numbers) / len(numbers)\n"
    r = one(pool, problem["prompt"] + body, tests + ["assert my_abs(candidate([1.0])) == 0"], problem["entry_point"],
            remove=["abs"], install=install)
    assert (r["status"], r["tests_passed"], r["tests_total"]) == ("passed", 4, 4)


# -- the standard library keeps its real modules ---------------------------------------------
ANAGRAM_TESTS = ["assert f('listen', 'silent') is True", "assert f('abc', 'abd') is False",
                 "assert f('aab', 'abb') is False"]


def test_counter_equality_works_when_collections_counter_is_removed(pool):
    install = {"my_collections_Counter": "import collections\n"
                                         "def my_collections_Counter(iterable=None):\n"
                                         "    return collections.Counter(iterable)\n"}
    program = "def f(a, b):\n    return my_collections_Counter(a) == my_collections_Counter(b)\n"
    r = one(pool, program, ANAGRAM_TESTS, remove=["collections.Counter"], install=install)
    assert (r["status"], r["tests_passed"]) == ("passed", 3)
    # the install source looked collections.Counter up at *call* time: the real module is intact


def test_most_common_works_when_heapq_nlargest_is_removed(pool):
    program = ("from collections import Counter\nimport heapq\n"
               "def f(text):\n    top = Counter(text).most_common(1)[0][0]\n"
               "    return top, hasattr(heapq, 'nlargest'), heapq.nsmallest(1, [3, 1])[0]\n")
    r = one(pool, program, ["assert f('abca') == ('a', False, 1)"], remove=["heapq.nlargest"])
    assert (r["status"], r["tests_passed"]) == ("passed", 1), r


def test_the_tests_import_the_real_modules(pool):
    program = "import re\ndef f():\n    return hasattr(re, 'search')\n"
    r = one(pool, program, ["import re as real", "assert f() is False and real.search('b', 'abc').start() == 1"],
            remove=["re.search"])
    assert (r["status"], r["tests_passed"]) == ("passed", 1), r


# -- every way the program reaches a module sees the filtered view --------------------------
RE_TESTS = ["assert f('b', 'abc') == 1"]


@pytest.mark.parametrize("program", [
    "import re\ndef f(p, s):\n    return getattr(re, 'sea' + 'rch')(p, s).start()\n",
    "import re as r\ndef f(p, s):\n    return getattr(r, 'sea' + 'rch')(p, s).start()\n",
    "def f(p, s):\n    return getattr(__import__('re'), 'sea' + 'rch')(p, s).start()\n",
    "import importlib\ndef f(p, s):\n    return getattr(importlib.import_module('re'), 'sea' + 'rch')(p, s).start()\n",
    "from importlib import import_module\n"
    "def f(p, s):\n    return getattr(import_module('re'), 'sea' + 'rch')(p, s).start()\n",
])
def test_a_removed_module_attribute_is_missing_from_every_import_of_the_module(pool, program):
    r = one(pool, program, RE_TESTS, remove=["re.search"])
    assert (r["status"], r["error_type"]) == ("failed", "AttributeError"), r
    assert "has no attribute 'search'" in r["error_message"]
    assert one(pool, program, RE_TESTS)["status"] == "passed"


def test_from_import_of_a_removed_attribute_is_an_import_error(pool):
    program = "exec('from re import sea' + 'rch')\ndef f(p, s):\n    return 1\n"
    r = one(pool, program, RE_TESTS, remove=["re.search"])
    assert (r["status"], r["error_type"], r["error_line"]) == ("definition_error", "ImportError", 1)
    assert "cannot import name 'search'" in r["error_message"]


JOIN_TESTS = ["assert f('b') == 'a/b'"]


@pytest.mark.parametrize("program", [
    "import os.path\ndef f(x):\n    return getattr(os.path, 'jo' + 'in')('a', x)\n",
    "import os\ndef f(x):\n    return getattr(os.path, 'jo' + 'in')('a', x)\n",
    "from os import path\ndef f(x):\n    return getattr(path, 'jo' + 'in')('a', x)\n",
    "import os.path as p\ndef f(x):\n    return getattr(p, 'jo' + 'in')('a', x)\n",
    "import posixpath\ndef f(x):\n    return getattr(posixpath, 'jo' + 'in')('a', x)\n",
])
def test_a_removed_submodule_attribute_is_missing_through_its_parent_package(pool, program):
    r = one(pool, program, JOIN_TESTS, remove=["os.path.join"])
    assert (r["status"], r["error_type"]) == ("failed", "AttributeError"), r
    assert "has no attribute 'join'" in r["error_message"]


def test_the_rest_of_a_filtered_module_works(pool):
    program = ("import os, re\nfrom heapq import *\nfrom os.path import basename\n"
               "def f(x):\n    assert 'nlargest' not in globals() and 'nlargest' not in dir(__import__('heapq'))\n"
               "    return basename(x) + os.sep + os.path.basename(x) + re.sub('a', 'b', 'a') + str(nsmallest(1, [2, 1]))\n")
    r = one(pool, program, ["assert f('/x/y') == 'y/yb[1]'"], remove=["os.path.join", "re.search", "heapq.nlargest"])
    assert (r["status"], r["tests_passed"]) == ("passed", 1), r


def test_a_view_reads_submodules_imported_after_it_was_made(pool):
    program = ("import xml.etree.ElementTree as ET\nimport xml.dom.minidom\n"
               "def f():\n    return xml.dom.minidom.parseString('<a/>').documentElement.tagName, "
               "hasattr(ET, 'fromstr' + 'ing'), hasattr(xml.etree.ElementTree, 'fromstr' + 'ing'), ET.XML('<b/>').tag\n")
    # (ET.XML is fromstring's other name: other names of the same function stay reachable, README)
    r = one(pool, program, ["assert f() == ('a', False, False, 'b')"], remove=["xml.etree.ElementTree.fromstring"])
    assert (r["status"], r["tests_passed"]) == ("passed", 1), r


def test_import_builtins_gives_the_programs_builtins(pool):
    program = ("import builtins\ndef f(x):\n    builtins.double = lambda v: 2 * v\n"
               "    return double(x), hasattr(builtins, 'ab' + 's')\n")
    r = one(pool, program, ["assert f(-2) == (-4, False)"], remove=["abs"])
    assert (r["status"], r["tests_passed"]) == ("passed", 1), r


def test_sys_modules_still_reaches_the_real_module(pool):
    """The documented residual: a deliberate workaround through sys.modules is not closed."""
    program = "import sys\ndef f(p, s):\n    return getattr(sys.modules['re'], 'sea' + 'rch')(p, s).start()\n"
    assert one(pool, program, RE_TESTS, remove=["re.search"])["status"] == "passed"


def test_views_do_not_leak_into_the_next_sample(pool):
    removed = "import re\ndef f(p, s):\n    return getattr(re, 'sea' + 'rch')(p, s).start()\n"
    results = list(pool.run([
        {"id": "a", "program": removed, "tests": RE_TESTS, "entry_point": "f", "remove": ["re.search", "abs"]},
        {"id": "b", "program": removed + "assert callable(abs) and type(__import__).__name__ == 'builtin_function_or_method'\n",
         "tests": RE_TESTS, "entry_point": "f"},
    ] * 3))
    assert [r["status"] for r in results] == ["failed", "passed"] * 3
