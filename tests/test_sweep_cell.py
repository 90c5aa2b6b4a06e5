"""One cell end to end in this process, plus the regime building blocks, with real components:
the demo benchmark, the small trained model, a real editor, firejail, W&B offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from editsweep.config_schema import cell_subdir, register_configs
from editsweep.regimes import (
    RestoreError,
    build_plan,
    check_restored,
    edit_order,
    eval_points,
    model_fingerprint,
)
from editsweep.store import CellStore
from editsweep.tracking import flatten, offline_runs, read_offline_run

CONF = Path(__file__).resolve().parents[1] / "conf"
register_configs()

SMALL = ["model=small_llama", "generation.n_samples=2", "generation.max_new_tokens=48", "sandbox.timeout_s=5",
         "runtime.progress=false", "tracking=offline"]


def make(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=[f"sweep.root={tmp_path / 'sweeps'}", *overrides])


@pytest.fixture(scope="module")
def demo_problems():
    from editsweep.benchmark import ensure_benchmark, load_benchmark

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        data = compose("config").data
    return load_benchmark(ensure_benchmark(data))


def test_plan_selects_apis_and_problems_per_subset(demo_problems) -> None:
    regime = {"max_apis": 3}
    plan = build_plan(demo_problems, {"name": "all", "max_problems_per_api": 1, "max_specificity": 2}, regime)
    assert plan.apis == sorted(plan.apis) and len(plan.apis) == 3
    for api in plan.apis:
        assert len(plan.reliability[api]) == 1 and plan.reliability[api][0]["api"] == api
        assert all(p["subset"] == "generalization" and p["api"] == api for p in plan.generalization[api])
        assert len(plan.requests(api)) == 1
        request = plan.requests(api)[0]  # tokenized as sampling does: the problem prompt ends inside it
        assert request.context_end is not None and 0 < request.context_end < len(request.prompt)
    assert len(plan.specificity) == 2 and all(p["api"] is None for p in plan.specificity)
    assert len(plan.problems(plan.apis[:2])) == 2 + sum(len(plan.generalization[a]) for a in plan.apis[:2]) + 2
    only = build_plan(demo_problems, {"name": "specificity", "max_problems_per_api": None, "max_specificity": None}, {})
    assert {p["subset"] for p in only.problems(only.apis)} == {"specificity"}


def test_sequential_schedule() -> None:
    assert eval_points(7, 3) == [3, 6, 7]
    assert eval_points(6, 3) == [3, 6]
    assert eval_points(2, 5) == [2]
    apis = [f"a{i}" for i in range(8)]
    assert edit_order(apis, 1) == edit_order(apis, 1) != edit_order(apis, 2)
    assert sorted(edit_order(apis, 1)) == apis


def test_restore_check_catches_changed_weights_and_leftover_hooks() -> None:
    import torch

    from editsweep.models.loading import load_model

    model, _ = load_model("tiny:llama", device="cpu")
    original = model_fingerprint(model)
    check_restored(original, model, "re.search")
    weight = model.model.layers[1].mlp.down_proj.weight
    with torch.no_grad():
        saved = weight[3, 5].clone()
        weight[3, 5] = torch.nextafter(saved, saved + 1)  # one ulp
    with pytest.raises(RestoreError, match="layers.1.mlp.down_proj.weight"):
        check_restored(original, model, "re.search")
    with torch.no_grad():
        weight[3, 5] = saved
    check_restored(original, model, "re.search")
    hook = model.model.layers[0].register_forward_hook(lambda *args: None)
    with pytest.raises(RestoreError, match="__modules__"):
        check_restored(original, model, "re.search")
    hook.remove()
    check_restored(original, model, "re.search")


def test_instant_cell_with_rome_end_to_end(tmp_path: Path, wandb_offline_env: Path) -> None:
    from editsweep.cell import run_cell

    cfg = make(tmp_path, *SMALL, "method=rome", "regime=instant", "regime.max_apis=2", "subset=all",
               "subset.max_problems_per_api=1", "subset.max_specificity=1")
    returned = run_cell(cfg)
    cell = tmp_path / "sweeps" / "default" / cell_subdir(cfg)
    assert returned == {"cell_id": returned["cell_id"], "cell": cell.name, "status": "done",
                        "n_samples": returned["n_samples"], "skipped": False}
    json.dumps(returned)

    store = CellStore.open(cell)
    result = store.result()
    samples = store.samples()
    edits = store.edits()
    assert [e["step"] for e in edits] == [0, 1] and all(e["n_requests"] == 1 for e in edits)
    assert edits[0]["apis"] == [result["apis"][0]]
    per_step = {step: [s for s in samples if s["step"] == step] for step in (0, 1)}
    for step, rows in per_step.items():
        subsets = sorted({r["subset"] for r in rows})
        assert subsets == ["generalization", "reliability", "specificity"]
        assert {r["api"] for r in rows if r["subset"] != "specificity"} == {result["apis"][step]}
    keys = [(s["step"], s["problem_id"], s["sample"]) for s in samples]
    assert len(keys) == len(set(keys)) == result["n_samples"]
    assert {s["sample"] for s in samples} == {0, 1}
    required = {"step", "n_edits", "problem_id", "subset", "api", "new_api", "sample", "completion", "status",
                "compiled", "tests_passed", "tests_total", "error_type", "error_message", "adoption",
                "error_class", "duration_s"}
    assert all(required <= set(s) for s in samples)
    assert set(result["metrics"]) == {"reliability", "generalization", "specificity"}
    assert result["metrics"]["reliability"]["n_samples"] == sum(
        1 for s in samples if s["subset"] == "reliability")
    assert {"edit", "generate", "execute", "score", "store", "restore"} <= set(result["seconds"])
    assert len(store.evals()) == 2 and not (cell / "running.json").exists()

    run = read_offline_run(offline_runs(cell)[-1])
    expected = flatten(result["metrics"])
    assert {k: run["summary"].get(k) for k in expected} == expected
    assert run["summary"]["n_samples"] == result["n_samples"] and run["exit_code"] == 0
    assert run["job_type"] == "rome" and run["group"] == "default"

    again = run_cell(cfg)
    assert again["skipped"] is True and len(CellStore.open(cell).samples()) == len(samples)

    # another cell pointed at this directory (e.g. a hand-set hydra.run.dir) is refused, not "done"
    other = make(tmp_path, *SMALL, "method=none", "subset=all", "subset.max_problems_per_api=1",
                 "subset.max_specificity=1")
    with pytest.raises(ValueError, match="holds the store of another cell"):
        run_cell(other, cell_dir=cell)
    assert CellStore.open(cell).result() == result and len(CellStore.open(cell).samples()) == len(samples)


def test_failing_cell_writes_its_traceback(tmp_path: Path, wandb_offline_env: Path) -> None:
    from editsweep.cell import run_cell

    # the benchmark source folder does not exist: the cell fails while building its benchmark
    cfg = make(tmp_path, *SMALL, "data=humaneval_mbpp", f"data.path={tmp_path / 'no-such-data'}",
               f"data.cache_dir={tmp_path / 'bench-cache'}")
    with pytest.raises(Exception, match="no-such-data"):
        run_cell(cfg)
    cell = tmp_path / "sweeps" / "default" / cell_subdir(cfg)
    error = (cell / "error.txt").read_text()
    assert error.startswith("Traceback") and "no-such-data" in error
    assert not (cell / "result.json").exists() and not (cell / "running.json").exists()
    assert read_offline_run(offline_runs(cell)[-1])["exit_code"] == 1


def test_sigterm_stops_the_cell_at_a_unit_boundary_and_a_rerun_resumes(tmp_path: Path, wandb_offline_env: Path) -> None:
    """scancel and preemption send SIGTERM first: the cell stops after the unit it is working on
    (committed, never half-written, no result.json), raising CellStopped, which is not an Exception
    (Hydra and submitit must not turn it into a result), and the rerun continues from there."""
    import os
    import signal
    import threading
    import time

    from editsweep.cell import run_cell
    from editsweep.regimes import CellStopped

    cfg = make(tmp_path, *SMALL, "method=ft", "regime=sequential", "regime.max_apis=5", "regime.eval_every=1",
               "subset.max_problems_per_api=1", "generation.n_samples=1", "generation.max_new_tokens=24")
    cell = tmp_path / "sweeps" / "default" / cell_subdir(cfg)

    def terminate_after_first_unit() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            progress = cell / "progress.json"
            if progress.exists() and json.loads(progress.read_text()).get("last_step") == 1:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.02)

    handler_before = signal.getsignal(signal.SIGTERM)
    watcher = threading.Thread(target=terminate_after_first_unit, daemon=True)
    watcher.start()
    with pytest.raises(CellStopped, match=r"stopped after committing unit (1|2) \(signal SIGTERM received\)"):
        run_cell(cfg)
    assert not issubclass(CellStopped, Exception)
    watcher.join(timeout=5)
    store = CellStore.open(cell)
    stopped_at = store.last_step
    assert stopped_at in (1, 2) and not (cell / "result.json").exists() and not (cell / "running.json").exists()
    assert not (cell / "error.txt").exists()  # not a failure of the cell: the scheduler took it away
    assert read_offline_run(offline_runs(cell)[-1])["exit_code"] == 1
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the cell's handler does not outlive it

    run_cell(cfg)
    store = CellStore.open(cell)
    assert [e["step"] for e in store.evals()] == [1, 2, 3, 4, 5] and store.result()["status"] == "done"
    keys = [(s["step"], s["problem_id"], s["sample"]) for s in store.samples()]
    assert len(keys) == len(set(keys))
