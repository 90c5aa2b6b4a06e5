"""Tests for editsweep.apis: API name parsing and alias-following use detection."""

from __future__ import annotations

import ast
import builtins
import itertools
import textwrap
import tokenize

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editsweep.apis import ApiRef, BUILTIN_TYPES, find_api_uses, parse_api, tolerant_tokens, uses_name


def uses(source: str, *apis: str) -> dict[str, list[tuple[int, int]]]:
    return find_api_uses(textwrap.dedent(source), apis)


def lines(source: str, api: str) -> list[int]:
    return [line for line, _ in uses(source, api).get(parse_api(api).qualname, [])]


# ---------------------------------------------------------------------------------- parse_api


@pytest.mark.parametrize(
    "name, expected",
    [
        ("re.search", ApiRef("re.search", "module", "re", "search")),
        ("os.path.join", ApiRef("os.path.join", "module", "os.path", "join")),
        ("collections.Counter", ApiRef("collections.Counter", "module", "collections", "Counter")),
        ("sorted", ApiRef("sorted", "builtin", None, "sorted")),
        ("builtins.sorted", ApiRef("sorted", "builtin", None, "sorted")),
        ("str.join", ApiRef("str.join", "method", "str", "join")),
        ("list.append", ApiRef("list.append", "method", "list", "append")),
        ("dict.get", ApiRef("dict.get", "method", "dict", "get")),
        ("builtins.str.join", ApiRef("str.join", "method", "str", "join")),
        (" max ", ApiRef("max", "builtin", None, "max")),
    ],
)
def test_parse_api_kinds(name, expected):
    assert parse_api(name) == expected


@pytest.mark.parametrize(
    "name, new_name",
    [("re.search", "my_re_search"), ("sorted", "my_sorted"), ("str.join", "my_str_join"),
     ("os.path.join", "my_os_path_join"), ("builtins.sorted", "my_sorted")],
)
def test_new_name(name, new_name):
    assert parse_api(name).new_name == new_name


@pytest.mark.parametrize(
    "bad", ["", "   ", "frobnicate", "str.nope", "re..search", "1re.search", "re.search(", "builtins",
            "builtins.str", "str", "sorted.key", "class.x", "builtins.a.b"],
)
def test_parse_api_errors_name_the_input(bad):
    with pytest.raises(ValueError) as err:
        parse_api(bad)
    assert repr(bad) in str(err.value)


def test_parse_api_rejects_non_string():
    with pytest.raises(ValueError):
        parse_api(None)  # type: ignore[arg-type]


@given(st.sampled_from(sorted(BUILTIN_TYPES)).flatmap(
    lambda t: st.tuples(st.just(t), st.sampled_from([m for m in dir(getattr(builtins, t)) if not m.startswith("_")]))))
def test_every_public_builtin_method_parses(pair):
    owner, method = pair
    ref = parse_api(f"{owner}.{method}")
    assert (ref.kind, ref.owner, ref.attr) == ("method", owner, method)
    assert ref.new_name == f"my_{owner}_{method}"


# ------------------------------------------------------------------------------- module APIs


@pytest.mark.parametrize(
    "source, expected_lines",
    [
        ("import re\nre.search('a', 'b')", [2]),
        ("import re as r\nr.search('a', 'b')", [2]),
        ("from re import search\nsearch('a', 'b')", [1, 2]),
        ("from re import search as s\ns('a', 'b')", [1, 2]),
        ("from re import *\nsearch('a', 'b')", [2]),
        ("import re\nf = re.search\n", [2]),
        ("import re\ngetattr(re, 'search')('a', 'b')", [2]),
        ("import re\nr = re\nr.search('a', 'b')", [3]),
        ("import re\ndef f(s):\n    return re.search('a', s)", [3]),
        ("def f(s):\n    import re as rx\n    return rx.search('a', s)", [3]),
        ("re.search('a', 'b')", [1]),  # no import: still reaching for the removed API
    ],
)
def test_module_api_alias_forms(source, expected_lines):
    assert lines(source, "re.search") == expected_lines


@pytest.mark.parametrize(
    "source, expected_lines",
    [
        ("import os.path\nos.path.join('a', 'b')", [2]),
        ("import os\nos.path.join('a', 'b')", [2]),
        ("from os import path\npath.join('a', 'b')", [2]),
        ("from os import path as p\np.join('a', 'b')", [2]),
        ("import os.path as osp\nosp.join('a', 'b')", [2]),
        ("from os.path import join\njoin('a', 'b')", [1, 2]),
        ("import os\ngetattr(os.path, 'join')('a')", [2]),
    ],
)
def test_dotted_module_alias_forms(source, expected_lines):
    assert lines(source, "os.path.join") == expected_lines


@pytest.mark.parametrize(
    "source",
    [
        "import re\nre.match('a', 'b')",  # another attribute
        "import regex\nregex.search('a', 'b')",  # another module
        "import re\ndef f(re):\n    return re.search('a')",  # parameter shadows the module
        "x = 're.search'\n# re.search(...)",  # strings and comments are not code
        "import re\ngetattr(re, name)",  # not statically visible
    ],
)
def test_module_api_non_uses(source):
    assert uses(source, "re.search") == {}


def test_shadowing_parameter_hides_the_imported_name_inside_only():
    source = "from re import search\ndef f(search):\n    return search(1)\nsearch('a', 'b')"
    assert lines(source, "re.search") == [1, 4]


def test_positions_are_line_and_column():
    assert uses("x = 1\ny = re.search('a', 'b')", "re.search") == {"re.search": [(2, 4)]}


def test_only_used_apis_appear_and_keys_are_canonical():
    found = uses("import re\nre.search('a', 'b')\nsorted([1])", "re.search", "builtins.sorted", "max", "str.join")
    assert set(found) == {"re.search", "sorted"}


def test_syntax_error_raises():
    with pytest.raises(SyntaxError):
        find_api_uses("def f(:\n", ["re.search"])


def test_deeply_nested_source_is_walked():
    source = "x = " + " + ".join(["'a'"] * 1500) + "\nx.join(y)\n"  # deeper than the default recursion limit
    assert find_api_uses(source, ["str.join"]) == {"str.join": [(2, 0)]}
    assert uses_name(source + "my_f(x)\n", "my_f") == [(3, 0)]


def test_too_deep_to_parse_is_a_syntax_error():
    source = "x = " + " + ".join(["1"] * 100_000) + "\n"
    with pytest.raises(SyntaxError):
        find_api_uses(source, ["sorted"])


def test_accepts_an_ast():
    tree = ast.parse("import re\nre.search('a', 'b')")
    assert find_api_uses(tree, ["re.search"]) == {"re.search": [(2, 0)]}


def test_bad_api_name_raises_value_error():
    with pytest.raises(ValueError, match="nosuchbuiltin"):
        find_api_uses("x = 1", ["nosuchbuiltin"])


# ------------------------------------------------------------------------------ builtin APIs


@pytest.mark.parametrize(
    "source, expected_lines",
    [
        ("sorted([3, 1])", [1]),
        ("f = sorted", [1]),
        ("import builtins\nbuiltins.sorted([1])", [2]),
        ("import builtins as b\nb.sorted([1])", [2]),
        ("from builtins import sorted as srt\nsrt([1])", [1, 2]),
        ("import builtins\ngetattr(builtins, 'sorted')([1])", [2]),
        ("__builtins__.sorted([1])", [1]),
        ("__builtins__['sorted']([1])", [1]),
        ("import builtins\nbuiltins.__dict__['sorted']([1])", [2]),
        ("def f(x):\n    return sorted(x)", [2]),
        ("def f(x):\n    return [sorted(y) for y in x]", [2]),
        ("class A:\n    sorted = 1\n    def m(self, x):\n        return sorted(x)", [4]),  # class scope is not visible in methods
    ],
)
def test_builtin_uses(source, expected_lines):
    assert lines(source, "sorted") == expected_lines


@pytest.mark.parametrize(
    "source",
    [
        "def f(sorted):\n    return sorted(1)",
        "def f(x):\n    sorted = list\n    return sorted(x)",
        "def sorted(x):\n    return x\nsorted([1])",
        "import mylib as sorted\nsorted.x",
        "from mylib import sorted\nsorted([1])",
        "[sorted for sorted in range(3)]",
        "for sorted in range(3):\n    print(sorted)",
        "with open('f') as sorted:\n    sorted.read()",
        "try:\n    pass\nexcept Exception as sorted:\n    print(sorted)",
        "sorted = None\ndef f(x):\n    return sorted(x)",  # global binding shadows in nested scopes
        "def outer():\n    sorted = list\n    def inner(x):\n        return sorted(x)\n    return inner",
        "x = {'sorted': 1}\nx['sorted']",
        "obj.sorted(x)",
    ],
)
def test_builtin_shadowed_or_not_a_use(source):
    assert uses(source, "sorted") == {}


def test_global_declaration_reaches_module_binding():
    source = "sorted = list\ndef f(x):\n    global sorted\n    return sorted(x)"
    assert uses(source, "sorted") == {}


# ------------------------------------------------------------------------------- method APIs


@pytest.mark.parametrize(
    "source, expected_lines",
    [
        ("', '.join(['a'])", [1]),
        ("f'{x}'.join(y)", [1]),
        ("sep = ' '\nsep.join(y)", [2]),
        ("str.join(' ', y)", [1]),
        ("S = str\nS.join(' ', y)", [2]),
        ("getattr(' ', 'join')(y)", [1]),
        ("getattr(obj, 'join')(y)", [1]),  # unknown receiver
        ("def f(sep, y):\n    return sep.join(y)", [2]),  # unknown receiver
        ("def f(sep: str, y):\n    return sep.join(y)", [2]),
        ("x = 'a'.upper().strip()\nx.join(y)", [2]),
        ("x = str(5)\nx.join(y)", [2]),
        ("x = ''.join(a)\nx.join(b)", [1, 2]),
        ("s = ''\nfor c in 'ab':\n    s += c\ns.join(y)", [4]),
        ("x = 'a' + 'b'\nx.join(y)", [2]),
        ("import os\nos.path.sep.join(y)", [2]),  # an attribute of a module: unknown, counted
        ("words = [w for w in y]\n' '.join(words)", [2]),
    ],
)
def test_str_join_uses(source, expected_lines):
    assert lines(source, "str.join") == expected_lines


@pytest.mark.parametrize(
    "source",
    [
        "import os\nos.path.join('a', 'b')",  # a module function, not str.join
        "from os import path\npath.join('a', 'b')",
        "import os.path as osp\nosp.join('a', 'b')",
        "x = [1]\nx.join",  # known list
        "x = b'ab'\nx.join([b'a'])",  # bytes.join is not str.join
    ],
)
def test_str_join_false_positive_guards(source):
    assert uses(source, "str.join") == {}


def test_os_sep_is_a_value_not_a_module():
    assert lines("import os\nos.sep.join(parts)", "str.join") == [2]
    assert lines("import os\nos.path.join('a')", "str.join") == []


def test_unknown_call_result_receiver_counts():
    # threading.Thread() has no known type here, so .join on it is counted (erring towards catching)
    assert lines("import threading\nt = threading.Thread()\nt.join()", "str.join") == [3]


@pytest.mark.parametrize(
    "source, expected",
    [
        ("x = []\nx.append(1)", [2]),
        ("x = list(range(3))\nx.append(1)", [2]),
        ("x = [i for i in y]\nx.append(1)", [2]),
        ("x = sorted(y)\nx.append(1)", [2]),
        ("x = 'a b'.split()\nx.append('c')", [2]),
        ("def f(acc):\n    acc.append(1)", [2]),
        ("from typing import List\ndef f(acc: List[int]):\n    acc.append(1)", [3]),
        ("from collections import deque\nd = deque()\nd.append(1)", []),
        ("import collections\nd = collections.deque()\nd.append(1)", []),
        ("class Stack:\n    def append(self, x):\n        pass\ns = Stack()\ns.append(1)", []),
        ("x = zip(a, b)\nx.append(1)", []),
        ("x = {}\nx.append(1)", []),
        ("x = ()\nx.append(1)", []),
        ("def f(d: dict):\n    d.append(1)", []),
    ],
)
def test_list_append_receiver_inference(source, expected):
    assert lines(source, "list.append") == expected


def test_counter_is_a_dict_for_dict_methods():
    source = "from collections import Counter\nc = Counter('abc')\nc.get('a')"
    assert lines(source, "dict.get") == [3]


def test_reassigned_to_different_types_is_unknown():
    source = "x = []\nx = {}\nx.append(1)"
    assert lines(source, "list.append") == [3]


def test_method_and_module_api_together():
    source = "import re\nm = re.search('a', 'b')\n', '.join(['x'])\nos.path.join('a')"
    found = uses(source, "re.search", "str.join", "os.path.join")
    assert found == {"re.search": [(2, 4)], "str.join": [(3, 0)], "os.path.join": [(4, 0)]}


# --------------------------------------------------------------------------------- uses_name


def test_uses_name_counts_calls_and_references():
    source = "x = my_re_search('a', 'b')\nf = my_re_search\nimport builtins\nbuiltins.my_re_search"
    assert uses_name(source, "my_re_search") == [(1, 4), (2, 4), (4, 0)]


def test_uses_name_follows_a_local_alias():
    source = "def f(s):\n    g = my_re_search\n    return g('a', s)\n"
    assert uses_name(source, "my_re_search") == [(2, 8), (3, 11)]
    assert uses_name("def f(g):\n    return g('a')\n", "my_re_search") == []


def test_uses_name_ignores_definitions_but_counts_calls_of_them():
    assert uses_name("def my_sorted(x):\n    return x", "my_sorted") == []
    assert uses_name("def my_sorted(x):\n    return x\nmy_sorted([1])", "my_sorted") == [(3, 0)]


def test_uses_name_ignores_strings_and_attributes_of_other_objects():
    assert uses_name("x = 'my_sorted'\nobj.my_sorted(1)", "my_sorted") == []


def test_uses_name_falls_back_to_tokens_on_syntax_error():
    assert uses_name("def f(x):\n    return my_sorted(x\n", "my_sorted") == [(2, 11)]
    assert uses_name("def my_sorted(:\n", "my_sorted") == []


def test_a_parser_that_fails_with_a_value_error_means_unparseable(monkeypatch):
    """Some CPython releases report errors in odd model output (NUL bytes, a multi-byte character at
    the error column) with ValueError or UnicodeDecodeError instead of SyntaxError; a random-weight
    completion did so on Python 3.12 and killed an H200 timing cell. It must read as "does not parse"."""
    def failing_parse(source, *args, **kwargs):
        raise UnicodeDecodeError("utf-8", b"\xef", 0, 1, "unexpected end of data")

    source = "def f(x):\n    return my_sorted(re.search(x))\n"
    with monkeypatch.context() as patch:  # only around our calls: pytest parses source too
        patch.setattr(ast, "parse", failing_parse)
        assert uses_name(source, "my_sorted") == [(2, 11)]  # the token scan takes over
        with pytest.raises(SyntaxError, match="UnicodeDecodeError") as raised:
            find_api_uses(source, ["re.search"])
    assert raised.value is not None

    real_tokens = tokenize.generate_tokens

    def failing_tokens(readline):
        yield from itertools.islice(real_tokens(readline), 8)
        raise UnicodeDecodeError("utf-8", b"\xef", 0, 1, "unexpected end of data")

    with monkeypatch.context() as patch:
        patch.setattr(tokenize, "generate_tokens", failing_tokens)
        assert [t.string for t in tolerant_tokens("x = my_sorted(y)\nz = 2\n")][:4] == ["x", "=", "my_sorted", "("]
        assert uses_name("f(\nmy_sorted(", "my_sorted") == [(2, 0)]  # tokens before the failure count
        assert uses_name("a = 1\nb = 2\nc = my_sorted(\n", "my_sorted") == []  # ... and only those

    from editsweep.scoring import adoption_class

    assert adoption_class("    return my_re_search(x)\n", "syntax_error", "re.search",
                          prompt="def f(x):\n") == "incorrect_adoption"


def test_uses_name_rejects_non_identifier():
    with pytest.raises(ValueError, match="my-sorted"):
        uses_name("x = 1", "my-sorted")


# ------------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(alias=st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True), attr=st.sampled_from(["search", "match", "sub"]))
def test_any_import_alias_is_followed(alias, attr):
    import keyword

    if keyword.iskeyword(alias) or alias in dir(builtins):
        return
    source = f"import re as {alias}\n{alias}.{attr}('a', 'b')\n"
    assert find_api_uses(source, [f"re.{attr}"]) == {f"re.{attr}": [(2, 0)]}
    other = "match" if attr != "match" else "search"
    assert find_api_uses(source, [f"re.{other}"]) == {}


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(["sorted", "max", "min", "len", "sum", "abs"]), shadow=st.booleans())
def test_builtin_shadowing_property(name, shadow):
    body = f"    {name} = lambda *a: 0\n" if shadow else ""
    source = f"def f(x):\n{body}    return {name}(x)\n"
    found = find_api_uses(source, [name])
    assert (found == {}) == shadow
