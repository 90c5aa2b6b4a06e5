"""Task validation and the static stage (syntax errors, removed APIs) decided without a jail."""

from __future__ import annotations

import pytest

from editsweep.sandbox.tasks import RESULT_KEYS, TaskError, make_result, parse_task, prepare_job
from editsweep.scoring.status import Status

GOOD = {"id": "t1", "program": "def f(x):\n    return x\n", "tests": ["assert f(1) == 1"], "entry_point": "f"}


def task(**changes):
    return parse_task({**GOOD, **changes})


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1, 2], "expected a JSON object"),
        ({"program": "x", "tests": []}, "missing required field 'id'"),
        ({**GOOD, "program": 3}, "'program' must be a string"),
        ({**GOOD, "tests": "assert f(1)"}, "'tests' must be a list of strings"),
        ({**GOOD, "entry_point": "not valid"}, "'entry_point' must be null or an identifier"),
        ({**GOOD, "remove": "re.search"}, "'remove' must be a list"),
        ({**GOOD, "install": {"my f": "x"}}, "install name 'my f' is not an identifier"),
        ({**GOOD, "timeout_s": -1}, "'timeout_s' must be null or a number"),
        ({**GOOD, "timeout_s": True}, "'timeout_s' must be null or a number"),
        ({**GOOD, "colour": "red"}, "unknown field"),
    ],
)
def test_malformed_tasks_name_the_field(obj, message):
    with pytest.raises(TaskError, match=message) as info:
        parse_task(obj, where="tasks.jsonl line 7")
    assert "tasks.jsonl line 7" in str(info.value)


def test_a_good_task_becomes_a_job_with_scored_flags_and_default_timeout():
    job, early = prepare_job(task(tests=["import math", "assert f(1) == 1", "assert True"]), 3.0)
    assert early is None
    assert job["scored"] == [False, True, False]
    assert job["timeout_s"] == 3.0
    assert prepare_job(task(timeout_s=1.5), 3.0)[0]["timeout_s"] == 1.5


def test_syntax_error_is_decided_statically_with_its_line():
    job, result = prepare_job(task(program="def f(x):\n    return x +\n"), 3.0)
    assert job is None
    assert result["status"] == Status.SYNTAX_ERROR.value and result["compiled"] is False
    assert result["error_line"] == 2 and result["tests_total"] == 1


def test_compile_time_errors_beyond_parsing_are_syntax_errors():
    _, result = prepare_job(task(program="def f(x):\n    return x\nreturn 1\n"), 3.0)
    assert result["status"] == "syntax_error"
    _, result = prepare_job(task(program="x = 1\0"), 3.0)
    assert result["status"] == "syntax_error"


@pytest.mark.parametrize(
    ("program", "api"),
    [
        ("import re\ndef f(x):\n    return re.search('a', x)\n", "re.search"),
        ("import re as r\ndef f(x):\n    return r.search('a', x)\n", "re.search"),
        ("from re import search as s\ndef f(x):\n    return s('a', x)\n", "re.search"),
        ("import re\ndef f(x):\n    return getattr(re, 'search')('a', x)\n", "re.search"),
        ("def f(x):\n    return sorted(x)\n", "sorted"),
        ("import builtins\ndef f(x):\n    return builtins.sorted(x)\n", "builtins.sorted"),
        ("def f(x):\n    return ','.join(x)\n", "str.join"),
    ],
)
def test_static_use_of_a_removed_api_is_deprecated_api(program, api):
    _, result = prepare_job(task(program=program, remove=[api]), 3.0)
    assert result["status"] == Status.DEPRECATED_API.value
    assert result["error_type"] == "DeprecatedAPI"
    assert result["error_line"] is not None and "removed API" in result["error_message"]


def test_unused_removed_apis_become_runtime_removals():
    job, early = prepare_job(task(remove=["re.search", "os.path.join", "sorted", "str.join"]), 3.0)
    assert early is None
    assert job["remove_modules"] == [["re", "search"], ["os.path", "join"]]
    assert job["remove_builtins"] == ["sorted"]


def test_bad_test_unit_or_api_name_is_a_harness_error():
    _, result = prepare_job(task(tests=["assert f(1) =="]), 3.0)
    assert result["status"] == "harness_error" and "test unit 0 does not parse" in result["error_message"]
    _, result = prepare_job(task(remove=["not an api!"]), 3.0)
    assert result["status"] == "harness_error" and result["error_type"] == "BadApiName"


def test_result_records_carry_the_contract_keys_and_compiled():
    for status in Status:
        result = make_result("x", status)
        assert set(RESULT_KEYS) <= set(result)
        assert result["status"] == status.value
    assert make_result("x", "passed")["compiled"] is True
    assert make_result("x", "definition_error")["compiled"] is False
    with pytest.raises(ValueError):
        make_result("x", "nonsense")
