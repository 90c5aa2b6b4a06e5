"""The full benchmark from ../shared/data (HumanEval + MBPP), built once through the real sandbox.

Checks the paper's shape (797 problems, 65 APIs, 259/328/210) and the invariants of the split.
Building takes about a minute on two cores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from editsweep.apis import find_api_uses
from editsweep.benchmark import build_benchmark, load_benchmark, load_catalog, load_stats
from editsweep.benchmark.selection import PAPER
from editsweep.benchmark.sources import quiet_source_warnings
from editsweep.benchmark.stats import format_stats

pytestmark = [pytest.mark.slow, pytest.mark.jail]

SHARED_DATA = Path(os.environ.get("EDITSWEEP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="module")
def full_dir(tmp_path_factory) -> Path:
    return build_benchmark(f"local:{SHARED_DATA}", tmp_path_factory.mktemp("full"), cache_dir=None)


def test_paper_shape(full_dir):
    stats = load_stats(full_dir)
    assert stats["n_problems"] == PAPER["n_problems"]
    assert stats["n_apis"] == PAPER["n_apis"]
    assert stats["subsets"] == {k: PAPER[k] for k in ("reliability", "generalization", "specificity")}
    assert stats["kinds"]["module"] >= 10 and stats["kinds"]["method"] >= 10 and stats["kinds"]["builtin"] >= 10
    table = format_stats(stats)
    assert "259 (32%)" in table and "paper (v1)" in table


def test_split_invariants(full_dir):
    records = load_benchmark(full_dir)
    catalog = load_catalog(full_dir)
    apis = sorted(catalog)
    assert len({r["id"] for r in records}) == len(records)  # every problem in exactly one subset
    for api in apis:
        subsets = [r["subset"] for r in records if r["api"] == api]
        assert "reliability" in subsets and "generalization" in subsets, api
    with quiet_source_warnings():
        for r in records:
            original = r["prompt"] + r["reference"]
            if r["subset"] == "specificity":
                assert find_api_uses(original, apis) == {}, r["id"]
            else:
                assert r["api"] in find_api_uses(original, [r["api"]])
                assert find_api_uses(r["prompt"] + r["reference_new"], [r["api"]]) == {}
                assert (r["edit_request"] is not None) == (r["subset"] == "reliability")
            if r["edit_request"]:
                assert r["edit_request"]["subject"] in r["edit_request"]["prompt"]
                assert len(r["edit_request"]["prompt"]) <= 1200


def test_validation_backs_every_record_and_every_drop_has_a_reason(full_dir):
    checks = [json.loads(line) for line in (full_dir / "validation.jsonl").read_text().splitlines()]
    by_id = {c["id"]: c for c in checks}
    for r in load_benchmark(full_dir):
        if r["subset"] == "specificity":
            assert by_id[f"specificity:{r['id']}"]["ok"]
        else:
            assert by_id[f"rewritten:{r['api']}:{r['id']}"]["ok"]
            assert by_id[f"original:{r['api']}:{r['id']}"]["status"] == "deprecated_api"
        assert by_id[f"baseline:{r['id']}"]["ok"]
    stats = load_stats(full_dir)
    assert stats["dropped"] and all(d["reason"] for d in stats["dropped"])
    failed = {(c["problem_id"], c["api"]) for c in checks if not c["ok"]}
    listed = {(d["problem_id"], d["api"]) for d in stats["dropped"]}
    dropped_at_baseline = {d["problem_id"] for d in stats["dropped"] if d["stage"] == "baseline"}
    silent = {(pid, api) for pid, api in failed if (pid, api) not in listed and pid not in dropped_at_baseline}
    assert not silent  # every failed check shows up in stats.json "dropped"
