"""The selection and split rule on synthetic inputs: invariants, the tie rule, exact sizes."""

from __future__ import annotations

import random

from editsweep.benchmark.selection import (
    PAPER_RELIABILITY_FRACTION,
    assign,
    cap_sizes,
    hash_order,
    pick_specificity,
    reliability_counts,
    split,
)


def synthetic_valid(seed: int = 0, n_apis: int = 90, n_problems: int = 1100) -> dict[str, set[str]]:
    rng = random.Random(seed)
    valid: dict[str, set[str]] = {}
    for index in range(n_apis):
        size = max(1, int(rng.paretovariate(1.2)))  # a few common APIs, many rare ones
        valid[f"api{index:03d}"] = {f"p{rng.randrange(n_problems):04d}" for _ in range(min(size, 200))}
    return valid


def test_split_invariants_and_paper_sizes():
    valid = synthetic_valid()
    selection = split(valid, n_apis=40, n_api_problems=300)
    assert len(selection.apis) == 40
    assigned = [pid for api in selection.apis for pid in selection.reliability[api] + selection.generalization[api]]
    assert len(assigned) == len(set(assigned)) == 300  # each problem in exactly one API and one subset
    assert sum(len(v) for v in selection.reliability.values()) == round(300 * PAPER_RELIABILITY_FRACTION)
    for api in selection.apis:
        assert selection.reliability[api] and selection.generalization[api]
        for pid in selection.reliability[api] + selection.generalization[api]:
            assert pid in valid[api] and selection.assignment[pid] == api


def test_tie_rule_prefers_the_rarer_api_then_the_name():
    valid = {"common": {"p1", "p2", "p3", "p4"}, "rare": {"p1", "p5"}, "also_rare": {"p5", "p6"}}
    assignment = assign(valid, ["common", "rare", "also_rare"])
    assert assignment["p1"] == "rare"  # 2 valid problems beats 4
    assert assignment["p5"] == "also_rare"  # equal sizes: by name


def test_an_api_starved_by_the_tie_rule_is_replaced():
    valid = {"big": {"a", "b", "c"}, "small": {"a", "b"}, "spare": {"x", "y"}}
    selection = split(valid, n_apis=2, n_api_problems=None)
    # big keeps only "c" once the tie rule gives a and b to small: it is replaced by spare
    assert sorted(selection.apis) == ["small", "spare"]
    assert any("big" in note for note in selection.notes)
    for api in selection.apis:
        assert len(selection.reliability[api]) >= 1 and len(selection.generalization[api]) >= 1


def test_cap_reaches_the_target_exactly():
    sizes = {"a": 50, "b": 30, "c": 3, "d": 2}
    kept = cap_sizes(sizes, 40)
    assert sum(kept.values()) == 40 and kept["c"] == 3 and kept["d"] == 2
    assert cap_sizes(sizes, None) == sizes and cap_sizes(sizes, 1000) == sizes


def test_reliability_counts_stay_inside_each_api():
    sizes = {"a": 2, "b": 3, "c": 27, "d": 9}
    counts = reliability_counts(sizes, PAPER_RELIABILITY_FRACTION)
    assert all(1 <= counts[api] <= sizes[api] - 1 for api in sizes)
    assert sum(counts.values()) == round(sum(sizes.values()) * PAPER_RELIABILITY_FRACTION)


def test_order_does_not_depend_on_input_order():
    ids = [f"mbpp/{i}" for i in range(50)] + [f"humaneval/{i}" for i in range(20)]
    shuffled = list(ids)
    random.Random(3).shuffle(shuffled)
    assert hash_order(ids) == hash_order(shuffled)
    assert pick_specificity(shuffled, 10) == hash_order(ids)[:10]
    valid = synthetic_valid(seed=5)
    again = {api: set(sorted(problems, reverse=True)) for api, problems in reversed(list(valid.items()))}
    first, second = split(valid, 30, 200), split(again, 30, 200)
    assert first.apis == second.apis and first.reliability == second.reliability
