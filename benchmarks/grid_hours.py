"""Extrapolate the GPU-hours of the paper grid from measured cells (issue 6, target ≤ 24 H200-hours).

    bash benchmarks/grid_cells.sh OUT                  # on the GPU: the timing cells below
    python benchmarks/grid_hours.py --instant OUT/h200/*-instant-* --sequential OUT/h200/*-sequential-* \
        --benchmark BENCH_DIR [--json]

Inputs are real cell stores (evals.jsonl, edits.jsonl, result.json, cell.json): one instant cell
per editing method (a few APIs each) and one sequential cell with a large evaluation, all run on
the target GPU, and the built benchmark (benchmark.jsonl). The model of a cell's cost:
- edit: seconds per request of the cell's method, the median over its measured edit steps (the
  first step, which pays one-off warm-up such as statistics, is left out when there are others);
  a method without a measured cell costs what the slowest measured method costs (said so);
- restore: seconds per instant step of the method, the median measured;
- generation: a small evaluation (an instant step over one API's few problems) costs the
  method's measured seconds per instant step (latency bound; the baseline takes the median over
  the methods); a large one costs the measured seconds per sequence of the sequential cell's big
  evaluation (throughput bound);
- execution and scoring: measured seconds per sample;
- per-cell start-up: the measured cell wall time minus its per-step stages (model build, benchmark,
  sandbox start), the largest over the cells, plus an allowance for reading a real checkpoint
  (`--load-allowance-s`, not measured: the timing cells build random weights).
The grid is 3 models × (5 methods × 2 regimes × 3 subsets + 1 baseline per subset). Every
model is assumed to cost what the measured one costs (the output says so): the main source of
error, with random weights that never stop early (every sequence writes all its tokens).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from pathlib import Path

N_MODELS = 3
N_METHODS = 5
SUBSETS = ("reliability", "generalization", "specificity")


def read_jsonl(path: Path) -> list[dict]:
    with path.open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def steady(values: list[float]) -> float:
    """Median without the first (warm-up) value when there are others."""
    return statistics.median(values[1:] if len(values) > 1 else values)


def edit_costs(instant_dir: Path, extra_edits: list[dict] = ()) -> dict:
    """Seconds per edit request, per restore and per small evaluation of one method, from its
    instant cell (an edited model may generate slower: GRACE's adapter hooks every forward)."""
    evals = read_jsonl(instant_dir / "evals.jsonl")
    edits = read_jsonl(instant_dir / "edits.jsonl") + list(extra_edits)
    return {
        "edit_s_per_request": steady([row["seconds"] / row["n_requests"] for row in edits]),
        "restore_s_per_step": statistics.median(row["seconds"]["restore"] for row in evals),
        "small_generate_s_per_step": steady([row["seconds"]["generate"] for row in evals]),
    }


def cell_method(cell_dir: Path) -> str:
    return json.loads((cell_dir / "cell.json").read_text())["method"]


def measure(instant_dirs: list[Path], sequential_dir: Path) -> dict:
    methods = [cell_method(d) for d in instant_dirs]
    if len(set(methods)) != len(methods):
        raise SystemExit(f"one instant cell per method expected, got methods {methods}")
    sequential_method = cell_method(sequential_dir)
    instant_evals = [row for d in instant_dirs for row in read_jsonl(d / "evals.jsonl")]
    big = max(read_jsonl(sequential_dir / "evals.jsonl"), key=lambda row: row["n_samples"])
    small_samples = sum(row["n_samples"] for row in instant_evals)
    step_stages = ("edit", "generate", "execute", "score", "restore", "store")
    startup = []
    for cell in [*instant_dirs, sequential_dir]:
        result = json.loads((cell / "result.json").read_text())
        startup.append(result["wall_s"] - sum(result["seconds"].get(stage, 0.0) for stage in step_stages))
    per_method = {}
    for method, directory in zip(methods, instant_dirs):
        extra = read_jsonl(sequential_dir / "edits.jsonl") if method == sequential_method else []
        per_method[method] = edit_costs(directory, extra)
    return {
        "startup_s_per_cell": max(startup),
        "methods": per_method,
        "small_generate_s_per_step": statistics.median(costs["small_generate_s_per_step"]
                                                       for costs in per_method.values()),
        "big_generate_s_per_sample": big["seconds"]["generate"] / big["n_samples"],
        "big_eval_samples": big["n_samples"],
        "execute_score_s_per_sample": (
            sum(row["seconds"]["execute"] + row["seconds"]["score"] for row in instant_evals) / small_samples
        ),
    }


def benchmark_shape(bench_dir: Path) -> dict:
    records = read_jsonl(bench_dir / "benchmark.jsonl")
    per_api = {subset: Counter(r["api"] for r in records if r["subset"] == subset) for subset in SUBSETS[:2]}
    return {
        "apis": sorted(per_api["reliability"]),
        "reliability": per_api["reliability"],
        "generalization": per_api["generalization"],
        "n_specificity": sum(r["subset"] == "specificity" for r in records),
    }


def generate_seconds(n_problems: int, n_samples: int, m: dict) -> float:
    """Latency-bound for small evaluations, throughput-bound for large ones."""
    return max(m["small_generate_s_per_step"], n_problems * n_samples * m["big_generate_s_per_sample"])


def cell_seconds(regime: str, subset: str, shape: dict, m: dict, n_samples: int, eval_every: int) -> float:
    apis = shape["apis"]
    requests = sum(shape["reliability"].values())
    edit = requests * m["edit_s_per_request"]

    def problems_of(edited: list[str]) -> int:
        if subset == "specificity":
            return shape["n_specificity"]
        return sum(shape[subset][api] for api in edited)

    if regime == "instant":
        points = [[api] for api in apis]
        edit += len(apis) * m["restore_s_per_step"]
    else:
        points = [apis[:k] for k in range(eval_every, len(apis) + 1, eval_every)]
        if len(apis) % eval_every:
            points.append(apis)
    evaluated = [problems_of(edited) for edited in points]
    generate = sum(generate_seconds(n, n_samples, m) for n in evaluated)
    execute = sum(evaluated) * n_samples * m["execute_score_s_per_sample"]
    return edit + generate + execute


def baseline_seconds(subset: str, shape: dict, m: dict, n_samples: int) -> float:
    n = shape["n_specificity"] if subset == "specificity" else sum(shape[subset].values())
    return generate_seconds(n, n_samples, m) + n * n_samples * m["execute_score_s_per_sample"]


METHODS = ("rome", "memit", "pmet", "grace", "ft")


def method_costs(m: dict) -> tuple[dict, list[str]]:
    """Edit costs of the grid's five methods; unmeasured ones take the slowest measured one's."""
    measured = m["methods"]
    slowest = max(measured.values(), key=lambda costs: costs["edit_s_per_request"])
    assumed = [method for method in METHODS if method not in measured]
    return {method: measured.get(method, slowest) for method in METHODS}, assumed


def estimate(m: dict, shape: dict, n_samples: int, eval_every: int, overhead_s: float | None = None,
             load_allowance_s: float = 0.0) -> dict:
    """Hours per method and cell kind, per model and for the grid; `overhead_s` None = the measured start-up."""
    if overhead_s is None:
        overhead_s = m["startup_s_per_cell"]
    overhead_s += load_allowance_s
    costs, assumed = method_costs(m)
    cells = {}
    for method, edit in costs.items():
        for regime in ("instant", "sequential"):
            for subset in SUBSETS:
                cells[f"{method}/{regime}/{subset}"] = cell_seconds(regime, subset, shape, {**m, **edit}, n_samples,
                                                                    eval_every)
    baseline = {subset: baseline_seconds(subset, shape, m, n_samples) for subset in SUBSETS}
    n_cells = len(cells) + len(baseline)
    per_model = sum(cells.values()) + sum(baseline.values()) + n_cells * overhead_s
    return {
        "measured": m,
        "assumed_methods": assumed,
        "cell_hours": {key: value / 3600 for key, value in cells.items()},
        "baseline_hours": {key: value / 3600 for key, value in baseline.items()},
        "cells_per_model": n_cells,
        "overhead_s_per_cell": overhead_s,
        "hours_per_model": per_model / 3600,
        "grid_hours": N_MODELS * per_model / 3600,
        "target_hours": 24.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instant", type=Path, nargs="+", required=True,
                        help="cell dirs of measured instant cells, one per method")
    parser.add_argument("--sequential", type=Path, required=True, help="cell dir of a measured sequential cell")
    parser.add_argument("--benchmark", type=Path, required=True, help="built benchmark dir (benchmark.jsonl)")
    parser.add_argument("--n-samples", type=int, default=5)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--load-allowance-s", type=float, default=30.0,
                        help="added per cell for reading a real 7B checkpoint (unmeasured here)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = estimate(measure(args.instant, args.sequential), benchmark_shape(args.benchmark),
                      args.n_samples, args.eval_every, None, args.load_allowance_s)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    m = result["measured"]
    print("measured: small eval %.2f s/step (median over methods), large eval %.4f s/sample (%d samples), execute+score %.4f s/sample"
          % (m["small_generate_s_per_step"], m["big_generate_s_per_sample"], m["big_eval_samples"],
             m["execute_score_s_per_sample"]))
    kinds = [f"{regime}/{subset}" for regime in ("instant", "sequential") for subset in SUBSETS]
    print(f"{'method':<8} {'edit s/req':>10} {'restore s':>9} {'small eval s':>12} " + " ".join(f"{k:>24}" for k in kinds)
          + "  (minutes)")
    for method, edit in method_costs(m)[0].items():
        note = " (assumed: slowest measured)" if method in result["assumed_methods"] else ""
        row = " ".join(f"{result['cell_hours'][f'{method}/{k}'] * 60:24.1f}" for k in kinds)
        print(f"{method:<8} {edit['edit_s_per_request']:10.2f} {edit['restore_s_per_step']:9.2f} "
              f"{edit['small_generate_s_per_step']:12.2f} {row}{note}")
    for key, hours in result["baseline_hours"].items():
        print(f"  baseline, {key:<28} {hours * 60:7.1f} min")
    print(f"per-cell start-up {result['overhead_s_per_cell']:.1f} s (measured {m['startup_s_per_cell']:.1f} s "
          f"+ {args.load_allowance_s:.0f} s checkpoint allowance)")
    print(f"per model: {result['cells_per_model']} cells, {result['hours_per_model']:.1f} GPU-hours "
          f"(every model assumed to cost what the measured one costs)")
    print(f"paper grid ({N_MODELS} models): {result['grid_hours']:.1f} GPU-hours "
          f"= {result['grid_hours'] / result['target_hours']:.2f} × the 24-hour target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
