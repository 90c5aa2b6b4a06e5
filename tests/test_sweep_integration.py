"""The sweep as users run it: `python launch.py -m ...` on the real local Slurm (slurm/up.sh) and
with the local launcher; the small trained model, the demo benchmark, real editors, W&B offline.

One reference grid (2 methods x 2 regimes) runs uninterrupted; the other tests interrupt the
same cells from outside (scancel, SIGKILL) and check that rerunning the command finishes the
sweep with exactly the reference samples.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from editsweep.store import CellStore, read_json
from editsweep.tracking import flatten, offline_runs, read_offline_run
from helpers import scancel_and_collect, wait_for, wandb_confined_env

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
CELL_ARGS = [
    "model=small_llama", "regime.max_apis=8", "regime.eval_every=1", "subset.max_problems_per_api=1",
    "generation.n_samples=2", "generation.max_new_tokens=32", "sandbox.timeout_s=5",
    "runtime.progress=false", "runtime.threads=1", "tracking=offline",
]
GRID = ["method=rome,ft", "regime=instant,sequential"]
SLURM = ["hydra/launcher=slurm_test"]
SEQUENTIAL_ROME = "small_llama-rome-sequential-reliability-s0-"


def launch_args(root: Path, name: str, *args: str) -> list:
    return [sys.executable, "launch.py", "-m", *CELL_ARGS, f"sweep.root={root}", f"sweep.name={name}", *args]


def launch(root: Path, name: str, *args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    return subprocess.run(launch_args(root, name, *args), cwd=REPO, env=wandb_confined_env(root), capture_output=True,
                          text=True, timeout=timeout)


def comparable(samples: list) -> list:
    """Samples without their measured duration, in store order."""
    return [{k: v for k, v in s.items() if k != "duration_s"} for s in samples]


def cells_of(sweep: Path) -> dict:
    return {p.parent.name: p.parent for p in sweep.glob("*/cell.json")}


def committed_first_unit(cell_dir: Path) -> bool:
    """One to four of the eight evaluation points committed: the cell is mid-run with work left (a
    window, not exactly one, so a fast machine cannot step past it between two polls)."""
    progress = read_json(cell_dir / "progress.json") if (cell_dir / "progress.json").exists() else None
    return bool(progress) and 1 <= progress["last_step"] <= 4 and not (cell_dir / "result.json").exists()


def find_cell(sweep: Path, prefix: str) -> Path:
    matches = [p for p in sweep.glob(f"{prefix}*") if p.is_dir()]
    return matches[0] if matches else sweep / "__not_yet__"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, slurm_cluster: str) -> Path:
    """The uninterrupted grid through hydra/launcher=slurm_test."""
    root = tmp_path_factory.mktemp("sweeps")
    started = time.monotonic()
    result = launch(root, "ref", *GRID, *SLURM)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    print(f"reference grid: {time.monotonic() - started:.0f}s")
    return root / "ref"


def test_grid_completes_with_wandb_runs_matching_the_stores(reference: Path) -> None:
    cells = cells_of(reference)
    assert len(cells) == 4
    for name, cell in cells.items():
        store = CellStore.open(cell)
        result = store.result()
        assert result is not None and result["status"] == "done", name
        samples = store.samples()
        assert result["n_samples"] == len(samples) > 0
        keys = [(s["step"], s["problem_id"], s["sample"]) for s in samples]
        assert len(keys) == len(set(keys))
        steps = sorted({e["step"] for e in store.evals()})
        assert steps == (list(range(8)) if "-instant-" in name else list(range(1, 9)))
        runs = offline_runs(cell)
        assert len(runs) == 1, f"{name}: one uninterrupted W&B run expected"
        run = read_offline_run(runs[0])
        expected = flatten(result["metrics"])
        assert {k: run["summary"].get(k) for k in expected} == expected, name
        assert run["summary"]["n_samples"] == len(samples) and run["exit_code"] == 0
        assert run["group"] == "ref" and run["job_type"] == result["method"]
        curve = [row for row in run["history"] if "reliability/full@1" in row]
        assert [row["progress/step"] for row in curve] == steps
    status = subprocess.run([sys.executable, "-m", "editsweep", "status", str(reference)], capture_output=True,
                            text=True)
    assert status.returncode == 0 and "4 done, 0 running, 0 failed, 0 pending" in status.stdout


def test_scancelled_cell_fails_fast_and_a_rerun_matches_the_uninterrupted_grid(reference: Path) -> None:
    root = reference.parent
    sweep = root / "cut"
    proc = subprocess.Popen(launch_args(root, "cut", *GRID, *SLURM), cwd=REPO, env=wandb_confined_env(root),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: committed_first_unit(find_cell(sweep, SEQUENTIAL_ROME)), 300,
                 "the sequential ROME cell to commit its first unit")
        target = find_cell(sweep, SEQUENTIAL_ROME)
        launches = [json.loads(line) for line in (sweep / "launches.jsonl").read_text().splitlines()]
        job = next(r["job_id"] for r in launches if r["cell"] == target.name)
        output, returned_after = scancel_and_collect(proc, job, timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, output[-4000:]
    # scancel sends SIGTERM: the cell stops after the unit it is on and its job ends without a result
    # (editsweep.regimes.CellStopped), so the launcher reports the job as Slurm ended it
    assert f"{target.name}: FAILED: job {job} CANCELLED without a result" in output, output[-4000:]
    assert "3 cell(s) done, 1 failed" in output
    assert returned_after < 120 + 60, f"launcher returned {returned_after:.0f}s after the scancel"
    error = (target / "error.txt").read_text()
    assert "CANCELLED" in error, error
    interrupted_units = CellStore.open(target).last_step
    # the cancelled cell stopped well before its eighth and last evaluation point
    assert interrupted_units is not None and interrupted_units < 8 and not (target / "result.json").exists()

    rerun = launch(root, "cut", *GRID, *SLURM)
    log = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, log[-4000:]
    assert log.count("skip (done)") == 3 and "1 of 4 cells to run" in log
    reference_cells = cells_of(reference)
    for name, cell in cells_of(sweep).items():
        assert comparable(CellStore.open(cell).samples()) == comparable(CellStore.open(reference_cells[name]).samples()), name
    resumed = CellStore.open(target)
    assert [e["step"] for e in resumed.edits()] == list(range(1, 9))
    assert [e["step"] for e in resumed.evals()] == list(range(1, 9))
    runs = offline_runs(target)  # the killed run (left unclosed: SIGTERM killed wandb-core) and the resumed one
    assert len(runs) == 2 and len({r.name.rsplit("-", 1)[1] for r in runs}) == 1
    final = read_offline_run(runs[-1])
    assert final["exit_code"] == 0
    expected = flatten(resumed.result()["metrics"])
    assert {k: final["summary"].get(k) for k in expected} == expected


def test_sigkilled_sequential_cell_resumes_from_its_store_with_the_local_launcher(reference: Path) -> None:
    root = reference.parent
    sweep = root / "killed"
    args = ["method=rome", "regime=sequential", "hydra/launcher=local"]
    proc = subprocess.Popen(launch_args(root, "killed", *args), cwd=REPO, env=wandb_confined_env(root),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: committed_first_unit(find_cell(sweep, SEQUENTIAL_ROME)), 300,
                 "the cell to commit its first evaluation point")
        target = find_cell(sweep, SEQUENTIAL_ROME)
        pid = read_json(target / "running.json")["pid"]
        assert pid != proc.pid
        os.kill(pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1 and f"{target.name}: FAILED" in output, output[-3000:]
    assert "killed from outside" in (target / "error.txt").read_text()
    before = CellStore.open(target)
    assert 1 <= before.last_step < 8
    kept = comparable(before.samples())

    rerun = launch(root, "killed", *args)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-4000:]
    assert "resuming after" in (target / "launch.log").read_text()
    final = comparable(CellStore.open(target).samples())
    assert final[: len(kept)] == kept  # the committed units were kept, not recomputed
    reference_cell = cells_of(reference)[target.name]
    assert final == comparable(CellStore.open(reference_cell).samples())


def test_bad_override_fails_before_anything_is_submitted(tmp_path: Path, slurm_cluster: str) -> None:
    before = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i"], capture_output=True, text=True).stdout
    result = launch(tmp_path, "bad", *GRID, *SLURM, "regime.eval_every=0", timeout=120)
    after = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i"], capture_output=True, text=True).stdout
    assert result.returncode == 1
    assert "nothing was submitted" in result.stderr and "regime.eval_every: must be >= 1, got 0" in result.stderr
    assert before == after and not (tmp_path / "bad" / ".submitit").exists()
    typo = launch(tmp_path, "bad", *GRID, *SLURM, "regime.eval_evry=2", timeout=120)
    assert typo.returncode == 1 and "eval_evry" in typo.stderr
