"""Extrapolate the GPU-hours of the paper grid from two measured cells (issue 6, target ≤ 24 H200-hours).

    python benchmarks/grid_hours.py --instant DIR --sequential DIR --benchmark BENCH_DIR [--json]

Inputs are real cell stores (evals.jsonl, edits.jsonl) of one instant and one sequential cell run
on the target GPU, and the built benchmark (benchmark.jsonl). The model of a cell's cost:
- edit: seconds per request, the median over the measured edit steps (the first step, which
  pays one-off warm-up, is left out when there are others);
- restore: seconds per instant step, the median measured;
- generation: a small evaluation (an instant step over one API's few problems) costs the
  median measured seconds per instant step (latency bound); a large one costs the measured
  seconds per sequence of the sequential cell's big evaluation (throughput bound);
- execution and scoring: measured seconds per sample;
- per-cell start-up: the measured cell wall time minus its per-step stages (model build, benchmark,
  sandbox start), the larger of the two cells, plus an allowance for reading a real checkpoint
  (`--load-allowance-s`, not measured: the timing cells build random weights).
The grid is 3 models × (5 methods × 2 regimes × 3 subsets + 1 baseline per subset). Every
model is assumed to cost what the measured one costs and every method what the measured method
costs; both are stated in the output, since they are the main sources of error.
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


def measure(instant_dir: Path, sequential_dir: Path) -> dict:
    instant_evals = read_jsonl(instant_dir / "evals.jsonl")
    edits = read_jsonl(instant_dir / "edits.jsonl") + read_jsonl(sequential_dir / "edits.jsonl")
    big = max(read_jsonl(sequential_dir / "evals.jsonl"), key=lambda row: row["n_samples"])
    small_samples = sum(row["n_samples"] for row in instant_evals)
    step_stages = ("edit", "generate", "execute", "score", "restore", "store")
    startup = []
    for cell in (instant_dir, sequential_dir):
        result = json.loads((cell / "result.json").read_text())
        startup.append(result["wall_s"] - sum(result["seconds"].get(stage, 0.0) for stage in step_stages))
    return {
        "startup_s_per_cell": max(startup),
        "edit_s_per_request": steady([row["seconds"] / row["n_requests"] for row in edits]),
        "restore_s_per_step": statistics.median(row["seconds"]["restore"] for row in instant_evals),
        "small_generate_s_per_step": steady([row["seconds"]["generate"] for row in instant_evals]),
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


def estimate(m: dict, shape: dict, n_samples: int, eval_every: int, overhead_s: float | None = None,
             load_allowance_s: float = 0.0) -> dict:
    """Hours per cell kind, per model and for the grid; `overhead_s` None = the measured start-up."""
    if overhead_s is None:
        overhead_s = m["startup_s_per_cell"]
    overhead_s += load_allowance_s
    cells = {}
    for regime in ("instant", "sequential"):
        for subset in SUBSETS:
            cells[f"{regime}/{subset}"] = cell_seconds(regime, subset, shape, m, n_samples, eval_every)
    baseline = {subset: baseline_seconds(subset, shape, m, n_samples) for subset in SUBSETS}
    n_cells = N_METHODS * len(cells) + len(baseline)
    per_model = N_METHODS * sum(cells.values()) + sum(baseline.values()) + n_cells * overhead_s
    return {
        "measured": m,
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
    parser.add_argument("--instant", type=Path, required=True, help="cell dir of a measured instant cell")
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
    print("measured: edit %.2f s/request, restore %.2f s/step, small eval %.2f s/step, large eval %.4f s/sample "
          "(%d samples), execute+score %.4f s/sample" % (
              m["edit_s_per_request"], m["restore_s_per_step"], m["small_generate_s_per_step"],
              m["big_generate_s_per_sample"], m["big_eval_samples"], m["execute_score_s_per_sample"]))
    for key, hours in result["cell_hours"].items():
        print(f"  one method, {key:<26} {hours * 60:7.1f} min")
    for key, hours in result["baseline_hours"].items():
        print(f"  baseline, {key:<28} {hours * 60:7.1f} min")
    print(f"per-cell start-up {result['overhead_s_per_cell']:.1f} s (measured {m['startup_s_per_cell']:.1f} s "
          f"+ {args.load_allowance_s:.0f} s checkpoint allowance)")
    print(f"per model: {result['cells_per_model']} cells, {result['hours_per_model']:.1f} GPU-hours")
    print(f"paper grid ({N_MODELS} models): {result['grid_hours']:.1f} GPU-hours "
          f"= {result['grid_hours'] / result['target_hours']:.2f} × the 24-hour target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
