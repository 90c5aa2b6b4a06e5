"""Tests for editsweep.scoring.adoption: the adoption class of a sample."""

from __future__ import annotations

import pytest

from editsweep.scoring import Status, adoption_class

PROMPT = 'import re\n\ndef has_digit(s: str) -> bool:\n    """True if s has a digit."""\n'
OLD = "    return re.search(r'\\d', s) is not None\n"
NEW = "    return my_re_search(r'\\d', s) is not None\n"
NEITHER = "    return any(ch.isdigit() for ch in s)\n"
BOTH = "    a = my_re_search(r'\\d', s)\n    return re.search(r'\\d', s) is not None\n"


@pytest.mark.parametrize(
    "completion, status, expected",
    [
        (NEW, "passed", "correct_adoption"),
        (NEW, "failed", "incorrect_adoption"),
        (NEW, "timeout", "incorrect_adoption"),
        (NEITHER, "passed", "workaround"),
        (NEITHER, "failed", "other_failure"),
        (OLD, "failed", "legacy"),
        (OLD, "passed", "legacy"),  # whatever the verdict, reaching for the removed API is legacy
        (BOTH, "failed", "legacy"),  # precedence: legacy wins over adoption
        (NEITHER, "deprecated_api", "legacy"),  # the sandbox's static check saw a removed use
    ],
)
def test_api_problem_classes(completion, status, expected):
    assert adoption_class(completion, status, "re.search", "my_re_search", prompt=PROMPT) == expected


def test_new_api_name_defaults_from_the_old_one():
    assert adoption_class(NEW, Status.PASSED, "re.search", prompt=PROMPT) == "correct_adoption"


def test_aliased_legacy_use_is_found():
    completion = "    from re import search as find\n    return find(r'\\d', s) is not None\n"
    assert adoption_class(completion, "failed", "re.search", prompt=PROMPT) == "legacy"


def test_uses_in_the_prompt_are_not_the_models_choice():
    prompt = "def helper(xs):\n    return sorted(xs)\n\ndef f(xs):\n"
    assert adoption_class("    return xs[::-1]\n", "passed", "sorted", prompt=prompt) == "workaround"
    assert adoption_class("    return sorted(xs)\n", "failed", "sorted", prompt=prompt) == "legacy"


def test_completion_that_continues_the_prompts_last_line():
    prompt = "def f(xs):\n    return "  # the completion starts mid-line
    assert adoption_class("my_sorted(xs)\n", "passed", "sorted", prompt=prompt) == "correct_adoption"
    assert adoption_class("sorted(xs)\n", "failed", "sorted", prompt=prompt) == "legacy"


def test_method_api_adoption():
    prompt = "def f(words):\n"
    assert adoption_class("    return ' '.join(words)\n", "deprecated_api", "str.join", prompt=prompt) == "legacy"
    assert adoption_class("    return my_str_join(' ', words)\n", "passed", "str.join", prompt=prompt) \
        == "correct_adoption"


@pytest.mark.parametrize(
    "completion, api, expected",
    [
        ("    return my_re_search(r'\\d' s)\n", "re.search", "incorrect_adoption"),
        ("    return re.search(r'\\d' s)\n", "re.search", "legacy"),
        ("    from re import search\n    return search(r'\\d' s\n", "re.search", "legacy"),
        ("    return sorted(xs, \n", "sorted", "legacy"),
        ("    return ' '.join(words\n", "str.join", "legacy"),
        ("    return nope(\n", "re.search", "other_failure"),
        ("    return s.sorted + (\n", "sorted", "other_failure"),
        # NUL characters (random-weight models write them) do not stop the lexical scan
        ("\x00    return my_re_search(s\n", "re.search", "incorrect_adoption"),
        ("    x = 1\x00\n    return re.search(r'\\d', s\n", "re.search", "legacy"),
    ],
)
def test_syntax_error_samples_are_classified_lexically(completion, api, expected):
    assert adoption_class(completion, "syntax_error", api, prompt=PROMPT) == expected


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("    return my_re_search('a', s)\n", "spurious_adoption"),
        ("    f = my_sorted\n    return f(s)\n", "spurious_adoption"),
        ("    return sorted(s)\n", "none"),
        ("    my_unrelated = 1\n    return my_unrelated\n", "none"),
    ],
)
def test_specificity_problems(completion, expected):
    got = adoption_class(completion, "passed", None, None, prompt="def f(s):\n", subset="specificity",
                         active_new_apis=["my_re_search", "my_sorted"])
    assert got == expected


def test_harness_error_and_missing_api_have_no_class():
    assert adoption_class(NEW, "harness_error", "re.search", prompt=PROMPT) is None
    assert adoption_class(NEW, "passed", None, prompt=PROMPT, subset="reliability") is None


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="'nope'"):
        adoption_class(NEW, "nope", "re.search")
    with pytest.raises(ValueError, match="'frobnicate'"):
        adoption_class(NEW, "passed", "frobnicate")
