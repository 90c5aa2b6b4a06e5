"""The rewriter on tricky code: aliases, nested calls, keywords, method chains, imports, shadowing."""

from __future__ import annotations

import ast

import pytest

from editsweep.benchmark.catalog import load_api_catalog
from editsweep.benchmark.rewriter import rewrite_reference, rewrite_source
from editsweep.benchmark.rules import RewriteError, RewriteRule

CATALOG = load_api_catalog()


def rewrite(api: str, source: str) -> str:
    result = rewrite_source(source, CATALOG[api])
    ast.parse(result)
    return result


def test_module_alias_and_permutation():
    src = "import re as r\ndef f(s):\n    return r.search('a+', s)\n"
    assert rewrite("re.search", src) == "import re as r\ndef f(s):\n    return my_re_search(s, 'a+')\n"


def test_from_import_alias_is_removed_with_its_line():
    src = "from re import search as find\ndef f(s):\n    return find('a', s) is None\n"
    assert rewrite("re.search", src) == "def f(s):\n    return my_re_search(s, 'a') is None\n"


def test_from_import_keeps_other_names():
    src = "from re import sub, search\ndef f(s):\n    return sub('a', 'b', s), search('a', s)\n"
    out = rewrite("re.search", src)
    assert out.startswith("from re import sub\n") and "my_re_search(s, 'a')" in out and "sub('a', 'b', s)" in out


def test_nested_calls_rewrite_inside_out():
    src = "import re\ndef f(s):\n    return re.sub('a', 'b', re.sub('c', 'd', s), count=1)\n"
    assert rewrite("re.sub", src).endswith("return my_re_sub(my_re_sub(s, 'c', 'd'), 'a', 'b', count=1)\n")


def test_keyword_arguments_are_renamed_and_reordered():
    src = "def f(xs):\n    return sorted(xs, reverse=True, key=lambda x: -x)\n"
    assert rewrite("sorted", src).endswith("return my_sorted(xs, by=lambda x: -x, descending=True)\n")
    src = "import heapq\ndef f(xs):\n    return heapq.nlargest(2, xs, key=abs)\n"
    assert rewrite("heapq.nlargest", src).endswith("my_heapq_nlargest(xs, 2, key=abs)\n")


def test_keyword_only_argument_and_positional_passed_by_keyword():
    assert rewrite("math.sqrt", "import math\ny = math.sqrt(2)\n").endswith("y = my_math_sqrt(value=2)\n")
    src = "import re\ny = re.search(pattern='a', string=s)\n"
    assert rewrite("re.search", src).endswith("y = my_re_search(string=s, pattern='a')\n")


def test_method_chain_only_the_target_method_changes():
    src = "def f(s):\n    return s.strip().lower().strip('x').split()\n"
    out = rewrite("str.strip", src)
    assert out.endswith("return my_str_strip(my_str_strip(s).lower(), 'x').split()\n")


def test_method_receiver_becomes_an_argument_at_its_place():
    assert rewrite("str.join", "y = ', '.join(words)\n") == "y = my_str_join(words, ', ')\n"
    assert rewrite("list.count", "y = xs.count(3)\n") == "y = my_list_count(3, xs)\n"
    assert rewrite("str.join", "y = str.join('-', words)\n") == "y = my_str_join(words, '-')\n"


def test_generator_argument_gets_parentheses():
    src = "def f(xs):\n    return ''.join(x.upper() for x in xs)\n"
    assert rewrite("str.join", src).endswith("return my_str_join((x.upper() for x in xs), '')\n")


def test_a_variable_named_like_the_type_is_a_bound_method_receiver():
    src = "def f(n, str):\n    return str.split(' ')\n"
    assert rewrite("str.split", src).endswith("return my_str_split(str, ' ')\n")


def test_bare_references():
    assert rewrite("str.lower", "y = list(map(str.lower, xs))\n") == "y = list(map(my_str_lower, xs))\n"
    assert rewrite("len", "y = sorted(xs, key=len)\n") == "y = sorted(xs, key=lambda obj: my_len(obj=obj))\n"
    assert rewrite("len", "y = [len] * 2\n") == "y = [lambda obj: my_len(obj=obj)] * 2\n"


def test_alias_by_assignment_rewrites_both_sites():
    out = rewrite("sorted", "s = sorted\ny = s(xs, reverse=True)\n")
    assert "my_sorted(xs, descending=True)" in out and "sorted" not in out.replace("my_sorted", "")


def test_packing_several_arguments_into_one_list():
    assert rewrite("zip", "y = list(zip(a, b))\n") == "y = list(my_zip([a, b]))\n"
    assert rewrite("zip", "y = list(zip(*m))\n") == "y = list(my_zip(m))\n"
    assert rewrite("max", "y = max(a, b, key=len)\n") == "y = my_max([a, b], by=len)\n"
    assert rewrite("max", "y = max(xs)\n") == "y = my_max(xs)\n"
    assert rewrite("itertools.chain", "import itertools\ny = itertools.chain(a)\n").endswith("my_itertools_chain([a])\n")


def test_multiline_call_keeps_argument_text():
    src = "import re\ny = re.findall(\n    r'\\d+',   # digits\n    text,\n)\n"
    assert rewrite("re.findall", src).endswith("y = my_re_findall(text, r'\\d+')\n")


@pytest.mark.parametrize(
    "api, source, reason",
    [
        ("sorted", "y = sorted(xs, **opts)\n", "**"),
        ("list.append", "g = xs.append\n", "bound method"),
        ("max", "y = max(*xs)\n", "depends on its length"),
        ("re.search", "import re\ny = getattr(re, 'search')('a', s)\n", "dynamic"),
        ("re.search", "def f(s):\n    return s\n", "does not use"),
        ("heapq.nlargest", "import heapq\ny = heapq.nlargest(*args)\n", "would fill"),
    ],
)
def test_what_cannot_be_rewritten_is_an_error(api, source, reason):
    with pytest.raises(RewriteError, match=reason if reason != "**" else r"\*\*"):
        rewrite_source(source, CATALOG[api])


def test_reference_rewrite_keeps_the_prompt_and_reports_call_sites():
    prompt = 'import re\n\n\ndef f(text):\n    """Doc."""\n'
    reference = "    m = re.search(r'\\d', text)\n    return m\n"
    new, sites = rewrite_reference(prompt, reference, CATALOG["re.search"])
    assert new == "    m = my_re_search(text, r'\\d')\n    return m\n"
    assert len(sites) == 1 and sites[0].old_text == "re.search(r'\\d', text)"
    assert new[sites[0].new_start:].startswith(sites[0].new_text)


def test_a_use_in_the_prompt_is_refused():
    prompt = "from re import search\n\ndef f(text):\n"
    with pytest.raises(RewriteError, match="prompt"):
        rewrite_reference(prompt, "    return search('a', text)\n", CATALOG["re.search"])


def test_rule_checks_reject_inconsistent_signatures():
    with pytest.raises(ValueError, match="no place"):
        RewriteRule.from_data({"old": "(a, b)", "new": "(a)"}, "test")
    with pytest.raises(ValueError, match="unknown old"):
        RewriteRule.from_data({"old": "(a)", "new": "(z)"}, "test")
    with pytest.raises(ValueError, match="was optional"):
        RewriteRule.from_data({"old": "(a, b=1)", "new": "(b, a)"}, "test")
