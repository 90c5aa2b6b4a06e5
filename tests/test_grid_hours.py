"""The grid-hours extrapolation (benchmarks/grid_hours.py) on the committed H200 measurements."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def load_script():
    spec = importlib.util.spec_from_file_location("grid_hours", ROOT / "benchmarks" / "grid_hours.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_benchmark(path: Path) -> Path:
    """Two APIs: a has 2 reliability + 1 generalization problems, b 1 + 3; 4 specificity problems."""
    rows = (
        [{"api": "a", "subset": "reliability"}] * 2 + [{"api": "a", "subset": "generalization"}]
        + [{"api": "b", "subset": "reliability"}] + [{"api": "b", "subset": "generalization"}] * 3
        + [{"api": None, "subset": "specificity"}] * 4
    )
    path.mkdir()
    (path / "benchmark.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_instant_cell_cost_is_edits_restores_and_one_eval_per_api(tmp_path):
    grid = load_script()
    m = {"startup_s_per_cell": 10.0, "edit_s_per_request": 2.0, "restore_s_per_step": 0.5, "small_generate_s_per_step": 3.0,
         "big_generate_s_per_sample": 0.1, "big_eval_samples": 100, "execute_score_s_per_sample": 0.01}
    shape = grid.benchmark_shape(write_benchmark(tmp_path / "bench"))
    # 3 requests × 2 s + 2 restores × 0.5 s; generalization evals: a 1 problem (5 samples -> max(3, 0.5)),
    # b 3 problems (15 samples -> max(3, 1.5)); execution 4 problems × 5 samples × 0.01 s
    assert grid.cell_seconds("instant", "generalization", shape, m, 5, 5) == pytest.approx(6 + 1 + 3 + 3 + 0.2)
    # specificity after each of the 2 edits: 4 problems × 5 samples × 0.1 s = 2 s -> latency floor 3 s
    assert grid.cell_seconds("instant", "specificity", shape, m, 5, 5) == pytest.approx(6 + 1 + 3 + 3 + 0.4)
    # sequential, eval every 1 edit: after a (2 reliability problems), after a+b (3 problems)
    assert grid.cell_seconds("sequential", "reliability", shape, m, 5, 1) == pytest.approx(6 + 3 + 3 + 0.25)


def test_each_method_costs_its_own_edits_and_unmeasured_ones_the_slowest(tmp_path):
    grid = load_script()
    shared = {"startup_s_per_cell": 10.0, "small_generate_s_per_step": 3.0, "big_generate_s_per_sample": 0.1,
              "big_eval_samples": 100, "execute_score_s_per_sample": 0.01}
    methods = {"rome": {"edit_s_per_request": 2.0, "restore_s_per_step": 0.5, "small_generate_s_per_step": 3.0},
               "ft": {"edit_s_per_request": 1.0, "restore_s_per_step": 0.5, "small_generate_s_per_step": 6.0}}
    shape = grid.benchmark_shape(write_benchmark(tmp_path / "bench"))
    result = grid.estimate({**shared, "methods": methods}, shape, 5, 5)
    assert result["assumed_methods"] == ["memit", "pmet", "grace"]
    hours = result["cell_hours"]
    # ft: 3 requests × 1 s + 2 restores × 0.5 s + 2 small evals × 6 s + execution 0.2 s
    assert hours["ft/instant/generalization"] * 3600 == pytest.approx(3 + 1 + 12 + 0.2)
    assert hours["rome/instant/generalization"] * 3600 == pytest.approx(6 + 1 + 6 + 0.2)
    assert hours["memit/instant/generalization"] == hours["rome/instant/generalization"]  # the slowest measured
    assert result["cells_per_model"] == 33
    per_model = sum(hours.values()) + sum(result["baseline_hours"].values()) + 33 * 10.0 / 3600
    assert result["hours_per_model"] == pytest.approx(per_model)


def test_measurements_of_the_committed_h200_cells_give_a_grid_estimate(tmp_path):
    grid = load_script()
    instant = sorted(RESULTS.glob("h200-codellama7b-random-*-instant-reliability-4apis"))
    measured = grid.measure(instant, RESULTS / "h200-codellama7b-random-rome-sequential-all")
    assert sorted(measured["methods"]) == sorted(grid.METHODS)
    for method, costs in measured["methods"].items():
        assert 0.3 < costs["edit_s_per_request"] < 5, method
        assert 1 < costs["small_generate_s_per_step"] < 10, method
    assert measured["big_eval_samples"] == 1260
    assert 5 < measured["startup_s_per_cell"] < 30  # random-weight build + benchmark + sandbox start
    result = grid.estimate(measured, grid.benchmark_shape(write_benchmark(tmp_path / "bench")), 5, 5,
                           load_allowance_s=30.0)
    assert result["cells_per_model"] == 33 and result["assumed_methods"] == []
    assert result["overhead_s_per_cell"] == pytest.approx(measured["startup_s_per_cell"] + 30.0)
    assert result["grid_hours"] == pytest.approx(3 * result["hours_per_model"])
