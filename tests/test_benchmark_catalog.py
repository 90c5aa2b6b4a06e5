"""Catalog adapters are functionally identical to the APIs they replace (hypothesis properties).

For every catalog API, probe calls written in the old style (`re.search(regex, text)`) are
rewritten by the benchmark's own rewriter and both forms are run on the same drawn arguments:
the results (and any mutated argument) must be equal, or both calls must raise the same
exception type. This checks each adapter *and* its rewrite rule together.
"""

from __future__ import annotations

import ast
import copy
import operator
import re
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from editsweep.benchmark.catalog import CATALOG_FILE, load_api_catalog
from editsweep.benchmark.rewriter import rewrite_source

CATALOG = load_api_catalog()

_alphabet = "abcAB c1,;-"
_text = st.text(alphabet=_alphabet, max_size=12)
_ints = st.integers(-20, 20)
_int_list = st.lists(_ints, max_size=8)

STRATEGIES = {
    "text": _text,
    "sub": st.text(alphabet="abc ,", max_size=2),
    "sub2": st.text(alphabet="xyz", max_size=2),
    "sep": st.sampled_from([",", " ", "ab", ""]),
    "chars": st.text(alphabet="ab ", max_size=3),
    "char": st.text(alphabet=_alphabet, min_size=1, max_size=1),
    "regex": st.sampled_from([r"a", r"[a-c]+", r"\d+", r"(a)(b)?", r"^a", r"b$", r"\s+", r"[,;]", r"(", r"A*"]),
    "repl": st.sampled_from(["x", "", "-", r"\1"]),
    "flags": st.sampled_from([0, re.IGNORECASE]),
    "a": _ints,
    "b": _ints,
    "small_nat": st.integers(0, 5),
    "small_nat2": st.integers(0, 8),
    "small_int": st.integers(-4, 6),
    "pos_int": st.integers(1, 13),
    "code": st.integers(-3, 0x110002),
    "real": st.floats(-1e6, 1e6, allow_nan=False),
    "cplx": st.complex_numbers(max_magnitude=1e3, allow_nan=False, allow_infinity=False),
    "flag": st.booleans(),
    "int_list": _int_list,
    "int_list2": _int_list,
    "short_list": st.lists(_ints, max_size=4),
    "text_list": st.lists(_text, max_size=6),
    "int_lists": st.lists(_int_list, max_size=4),
    "heap": _int_list.map(sorted),
    "heap2": _int_list.map(sorted),
    "dict_si": st.dictionaries(st.text(alphabet="abc ,", max_size=2), _ints, max_size=5),
    "dict_si2": st.dictionaries(st.text(alphabet="abc ,", max_size=2), _ints, max_size=5),
    "set_i": st.sets(_ints, max_size=6),
    "set_i2": st.sets(_ints, max_size=6),
    "key_fn": st.sampled_from([None, abs, operator.neg]),
    "func2": st.sampled_from([operator.add, operator.mul, min]),
    "pred": st.sampled_from([bool, (lambda x: x > 0)]),
    "anything": st.sampled_from([1, "a", 2.5, None, [1], True]),
    "types_": st.sampled_from([int, str, (int, float), bool]),
}

_STR_PREDICATES = ("lower", "upper", "capitalize", "swapcase", "title", "isdigit", "isalpha", "isalnum",
                   "isupper", "islower", "isspace")

PROBES: dict[str, list[str]] = {
    **{f"re.{n}": [f"re.{n}(regex, text)", f"re.{n}(regex, text, flags)", f"re.{n}(regex, string=text)"]
       for n in ("search", "match", "fullmatch", "findall", "finditer")},
    "re.sub": ["re.sub(regex, repl, text)", "re.sub(regex, repl, text, count=small_nat)", "re.sub(regex, repl, text, 1, flags)"],
    "re.split": ["re.split(regex, text)", "re.split(regex, text, maxsplit=small_nat)"],
    "re.compile": ["re.compile(regex)", "re.compile(regex, flags)"],
    **{f"math.{n}": [f"math.{n}(real)", f"math.{n}(a)"] for n in ("sqrt", "ceil", "floor", "log10", "log2")},
    "math.factorial": ["math.factorial(small_int)"],
    "math.pow": ["math.pow(real, small_int)", "math.pow(a, b)"],
    "math.gcd": ["math.gcd(a, b)", "math.gcd(*int_list)", "math.gcd(a)"],
    "heapq.heapify": ["heapq.heapify(int_list)"],
    "heapq.heappop": ["heapq.heappop(heap)"],
    "heapq.heappush": ["heapq.heappush(heap, a)"],
    "heapq.heapreplace": ["heapq.heapreplace(heap, a)"],
    "heapq.nlargest": ["heapq.nlargest(small_nat, int_list)", "heapq.nlargest(small_nat, int_list, key=key_fn)"],
    "heapq.nsmallest": ["heapq.nsmallest(small_nat, int_list)", "heapq.nsmallest(small_nat, int_list, key_fn)"],
    "heapq.merge": ["heapq.merge(heap, heap2)", "heapq.merge(heap, heap2, key=key_fn)", "heapq.merge(*int_lists)"],
    "collections.Counter": ["collections.Counter(text)", "collections.Counter(int_list)", "collections.Counter()"],
    "collections.defaultdict": ["collections.defaultdict(list)", "collections.defaultdict()"],
    "collections.ChainMap": ["collections.ChainMap(dict_si, dict_si2)", "collections.ChainMap()"],
    "collections.deque": ["collections.deque(int_list)", "collections.deque(int_list, maxlen=small_nat)"],
    "cmath.polar": ["cmath.polar(cplx)"],
    "itertools.chain": ["itertools.chain(int_list, text)", "itertools.chain(*int_lists)", "itertools.chain(int_list)"],
    "itertools.groupby": ["itertools.groupby(text)", "itertools.groupby(int_list, key=key_fn)"],
    "itertools.combinations": ["itertools.combinations(short_list, small_nat)", "itertools.combinations(short_list, r=small_nat)"],
    "itertools.permutations": ["itertools.permutations(short_list)", "itertools.permutations(short_list, small_nat)"],
    "statistics.mean": ["statistics.mean(int_list)", "statistics.mean(data=int_list)"],
    "operator.itemgetter": ["operator.itemgetter(small_nat)(int_list)", "operator.itemgetter(small_nat, small_nat2)(int_list)"],
    "bisect.bisect_left": ["bisect.bisect_left(heap, a)", "bisect.bisect_left(heap, a, lo=small_nat)", "bisect.bisect_left(heap, a, key=key_fn)"],
    "bisect.bisect_right": ["bisect.bisect_right(heap, a)", "bisect.bisect_right(heap, a, small_nat)"],
    "len": ["len(text)", "len(int_list)"],
    **{n: [f"{n}(int_list)", f"{n}(a, b)", f"{n}(a, b, key=key_fn)", f"{n}(int_list, default=a)", f"{n}(a, b, *int_list)"]
       for n in ("max", "min")},
    "sorted": ["sorted(int_list)", "sorted(int_list, key=key_fn, reverse=flag)", "sorted(text, reverse=flag)"],
    "sum": ["sum(int_list)", "sum(int_list, a)", "sum(int_list, start=a)"],
    "map": ["map(abs, int_list)", "map(func2, int_list, int_list2)"],
    "zip": ["zip(int_list, text)", "zip(*int_lists)", "zip(int_list, int_list2, strict=flag)", "zip()"],
    "filter": ["filter(pred, int_list)", "filter(None, int_list)"],
    "abs": ["abs(a)", "abs(real)", "abs(cplx)"],
    "isinstance": ["isinstance(anything, types_)"],
    "all": ["all(int_list)", "all(text)"],
    "any": ["any(int_list)", "any(text)"],
    "enumerate": ["enumerate(text)", "enumerate(text, a)", "enumerate(text, start=a)"],
    "round": ["round(real)", "round(real, small_int)", "round(real, ndigits=small_int)"],
    "pow": ["pow(a, small_nat)", "pow(a, small_nat, pos_int)", "pow(base=a, exp=small_nat)"],
    "ord": ["ord(char)", "ord(text)"],
    "chr": ["chr(code)"],
    "next": ["next(iter(int_list))", "next(iter(int_list), a)"],
    "bin": ["bin(a)"],
    "hex": ["hex(a)"],
    "reversed": ["reversed(int_list)", "reversed(text)"],
    "divmod": ["divmod(a, b)", "divmod(real, b)"],
    "str.join": ["text.join(text_list)", "str.join(text, text_list)", "sep.join(int_list)"],
    "str.split": ["text.split()", "text.split(sep)", "text.split(sep, small_int)", "text.split(maxsplit=small_int)"],
    "str.rsplit": ["text.rsplit()", "text.rsplit(sep, small_int)", "text.rsplit(sep=sep)"],
    **{f"str.{n}": [f"text.{n}()", f"str.{n}(text)"] for n in _STR_PREDICATES},
    **{f"str.{n}": [f"text.{n}()", f"text.{n}(chars)"] for n in ("strip", "lstrip", "rstrip")},
    "str.replace": ["text.replace(sub, sub2)", "text.replace(sub, sub2, small_int)"],
    **{f"str.{n}": [f"text.{n}(sub)", f"text.{n}(sub, small_int)", f"text.{n}(sub, small_int, small_nat2)"]
       for n in ("count", "find", "index", "startswith", "endswith")},
    "list.append": ["int_list.append(a)"],
    "list.extend": ["int_list.extend(int_list2)", "int_list.extend(text)"],
    "list.insert": ["int_list.insert(small_int, a)"],
    "list.remove": ["int_list.remove(a)"],
    "list.pop": ["int_list.pop()", "int_list.pop(small_int)"],
    "list.sort": ["int_list.sort()", "int_list.sort(key=key_fn, reverse=flag)"],
    "list.reverse": ["int_list.reverse()"],
    "list.clear": ["int_list.clear()"],
    "list.copy": ["int_list.copy()"],
    "list.count": ["int_list.count(a)"],
    "list.index": ["int_list.index(a)", "int_list.index(a, small_nat)", "int_list.index(a, small_nat, small_nat2)"],
    **{f"dict.{n}": [f"dict_si.{n}()"] for n in ("items", "keys", "values")},
    "dict.get": ["dict_si.get(sub)", "dict_si.get(sub, a)"],
    "dict.setdefault": ["dict_si.setdefault(sub)", "dict_si.setdefault(sub, a)"],
    "dict.pop": ["dict_si.pop(sub)", "dict_si.pop(sub, a)"],
    "dict.update": ["dict_si.update(dict_si2)", "dict_si.update()"],
    "set.add": ["set_i.add(a)"],
    "set.remove": ["set_i.remove(a)"],
    "set.discard": ["set_i.discard(a)"],
    "set.intersection": ["set_i.intersection(set_i2)", "set_i.intersection()", "set_i.intersection(set_i2, int_list)"],
    "set.union": ["set_i.union(set_i2)", "set_i.union(int_list, text)"],
}


def _normalise(value, depth: int = 0):
    """A comparable form: iterators are drained (items normalised as they come), matches as spans."""
    if depth > 4:
        return repr(value)
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, re.Match):
        return ("match", value.span(), value.groups())
    if isinstance(value, re.Pattern):
        return ("pattern", value.pattern, value.flags)
    if isinstance(value, dict) and type(value) is not dict:
        return (type(value).__name__, getattr(value, "default_factory", None), getattr(value, "maxlen", None),
                sorted(value.items(), key=repr))
    if isinstance(value, (list, tuple)):
        return type(value).__name__, [_normalise(v, depth + 1) for v in value]
    if hasattr(value, "__next__") or isinstance(value, (map, filter, zip, enumerate, reversed, types.GeneratorType)):
        return "iterator", [_normalise(v, depth + 1) for v in value]
    if type(value).__name__ in ("dict_items", "dict_keys", "dict_values"):
        return type(value).__name__, list(value)
    if type(value).__name__ == "deque":
        return "deque", list(value), value.maxlen
    if type(value).__name__ == "ChainMap":
        return "ChainMap", [dict(m) for m in value.maps]
    return value


def _run(program: str, values: dict, extra: dict) -> tuple:
    namespace = {**copy.deepcopy(values), **extra}
    try:
        exec(program, namespace)
        outcome = ("ok", _normalise(namespace["_result"]))
    except Exception as exc:  # the property: both sides raise the same type
        outcome = ("raised", type(exc).__name__)
    return outcome, {name: _normalise(namespace[name]) for name in values}


def _program(probe: str, api: str) -> str:
    module = api.rsplit(".", 1)[0] if CATALOG[api].kind == "module" else None
    header = f"import {module}\n" if module else ""
    return f"{header}_result = {probe}\n"


def _placeholders(probe: str) -> list[str]:
    names = {n.id for n in ast.walk(ast.parse(probe)) if isinstance(n, ast.Name) and n.id in STRATEGIES}
    return sorted(names)


def test_every_catalog_api_has_probes():
    assert sorted(PROBES) == sorted(CATALOG), "add probes for new catalog entries (and drop removed ones)"


def test_probes_rewrite_to_the_new_name():
    for api, probes in PROBES.items():
        for probe in probes:
            rewritten = rewrite_source(_program(probe, api), CATALOG[api])
            assert CATALOG[api].new_api in rewritten, (api, probe, rewritten)


@pytest.mark.parametrize("api", sorted(PROBES))
def test_adapter_is_functionally_identical(api):
    entry = CATALOG[api]
    adapter = entry.adapter()
    cases = []
    for probe in PROBES[api]:
        old = _program(probe, api)
        new = rewrite_source(old, entry)
        names = _placeholders(probe)
        cases.append((old, new, names))
    strategy = st.sampled_from(range(len(cases))).flatmap(
        lambda i: st.tuples(st.just(i), st.fixed_dictionaries({n: STRATEGIES[n] for n in cases[i][2]}))
    )

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(strategy)
    def check(drawn):
        index, values = drawn
        old, new, _ = cases[index]
        expected = _run(old, values, {})
        actual = _run(new, values, {entry.new_api: adapter})
        assert actual == expected, f"{api}: {old!r} vs {new!r} on {values!r}"

    check()


def test_catalog_file_is_what_the_loader_reads():
    assert CATALOG_FILE.name == "catalog.yaml" and len(CATALOG) >= 65
