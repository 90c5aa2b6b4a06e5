"""Demo build end to end (real sandbox): records, edit requests, determinism, cache, corruption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from editsweep.apis import find_api_uses
from editsweep.benchmark import build_benchmark, load_benchmark, load_catalog, load_stats
from editsweep.benchmark.build import OUTPUT_FILES, read_manifest
from editsweep.benchmark.config import read_data_config
from editsweep.benchmark.demo import DEMO_APIS
from editsweep.benchmark.stats import format_stats

pytestmark = pytest.mark.jail

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    return build_benchmark("demo", tmp_path_factory.mktemp("demo"), cache_dir=None)


def test_demo_records_follow_the_contract(demo_dir):
    records = load_benchmark(demo_dir)
    catalog = load_catalog(demo_dir)
    assert sorted(catalog) == sorted(DEMO_APIS)
    subsets = {r["subset"] for r in records}
    assert subsets == {"reliability", "generalization", "specificity"}
    for r in records:
        assert set(r) == {"id", "source", "prompt", "entry_point", "tests", "reference", "reference_new", "api",
                          "new_api", "subset", "edit_request", "task_text"}
        if r["subset"] == "specificity":
            assert r["api"] is None and r["edit_request"] is None
            assert find_api_uses(r["prompt"] + r["reference"], DEMO_APIS) == {}
            continue
        assert r["new_api"] == catalog[r["api"]]["new_api"]
        new_solution = r["prompt"] + r["reference_new"]
        assert r["new_api"] in r["reference_new"] and find_api_uses(new_solution, [r["api"]]) == {}
        assert find_api_uses(r["prompt"] + r["reference"], [r["api"]])
        request = r["edit_request"]
        assert (request is not None) == (r["subset"] == "reliability")
        if request:
            assert request["subject"] in request["prompt"] and request["template"] == "code_context"
            assert request["key_position"] == "last" and request["target_new"].startswith(r["new_api"])
            assert (request["prompt"] + request["target_new"]) in new_solution
    per_api = {api: {r["subset"] for r in records if r["api"] == api} for api in catalog}
    assert all(s == {"reliability", "generalization"} for s in per_api.values())


def test_demo_statistics_and_their_table(demo_dir):
    stats = load_stats(demo_dir)
    records = load_benchmark(demo_dir)
    assert stats["n_problems"] == len(records) and stats["n_apis"] == 8
    assert sum(stats["subsets"].values()) == len(records)
    for drop in stats["dropped"]:
        assert drop["reason"] and drop["stage"]
    table = format_stats(stats)
    assert "paper (v1)" in table and "797" in table and str(len(records)) in table


def test_two_builds_are_byte_identical(demo_dir, tmp_path):
    again = build_benchmark("demo", tmp_path / "again", cache_dir=None, force=True)
    for name in OUTPUT_FILES + ("manifest.json",):
        assert (again / name).read_bytes() == (demo_dir / name).read_bytes(), name


def test_cache_is_reused_and_corruption_is_rebuilt(tmp_path, caplog):
    cache = tmp_path / "cache"
    first = build_benchmark("demo", tmp_path / "a", cache_dir=str(cache))
    key = json.loads((first / "manifest.json").read_text())["cache_key"]
    assert read_manifest(cache / key) is not None

    caplog.set_level("INFO")
    second = build_benchmark("demo", tmp_path / "b", cache_dir=str(cache))
    assert "taken from the cache" in caplog.text
    assert (second / "benchmark.jsonl").read_bytes() == (first / "benchmark.jsonl").read_bytes()

    original = (first / "benchmark.jsonl").read_bytes()
    (first / "benchmark.jsonl").write_bytes(original[: len(original) // 2])  # a truncated file
    with pytest.raises(FileNotFoundError, match="corrupt"):
        load_benchmark(first)
    caplog.clear()
    build_benchmark("demo", first, cache_dir=str(cache))
    assert "does not match its manifest" in caplog.text
    assert (first / "benchmark.jsonl").read_bytes() == original

    (cache / key / "stats.json").write_text("{}")  # a corrupt cache entry is rebuilt, not copied
    caplog.clear()
    third = build_benchmark("demo", tmp_path / "c", cache_dir=str(cache))
    assert "building the demo benchmark" in caplog.text
    assert (third / "stats.json").read_bytes() == (first / "stats.json").read_bytes()
    assert read_manifest(cache / key) is not None


def test_statement_template_and_options(tmp_path):
    out = build_benchmark("demo", tmp_path / "s", cache_dir=None, template="statement")
    requests = [r["edit_request"] for r in load_benchmark(out) if r["edit_request"]]
    assert requests and all(q["prompt"] == f"# {q['subject']} is deprecated; use" for q in requests)
    assert all(q["key_position"] == "subject_last" and q["target_new"].startswith(" my_") for q in requests)
    with pytest.raises(ValueError, match="unknown benchmark build options"):
        build_benchmark("demo", tmp_path / "x", bogus=1)
    with pytest.raises(ValueError, match="template"):
        build_benchmark("demo", tmp_path / "x", template="poem")


def test_data_configs_name_a_source_and_build_options():
    source, options = read_data_config(PROJECT / "conf" / "data" / "demo.yaml")
    assert source == "demo" and options["template"] == "code_context"
    source, options = read_data_config(PROJECT / "conf" / "data" / "humaneval_mbpp.yaml")
    assert source.startswith("local:") and Path(source[len("local:"):]).is_absolute()
    assert (options["n_apis"], options["n_api_problems"], options["n_specificity"]) == (65, 587, 210)
