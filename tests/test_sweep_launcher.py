"""The resumable launcher on the real local Slurm (and the local executor), with a tiny Hydra app.

The app's cells do trivial work (succeed, raise, sleep, return something unpicklable), so these
tests exercise only the launcher: failure reports, tracebacks in cell dirs, skipping done cells,
a cell cancelled from outside without sacct, requeue closing W&B, validation before submission.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import scancel_and_collect, wait_for

APP = textwrap.dedent('''
    import json, os, threading, time
    from pathlib import Path
    import hydra
    from hydra.core.hydra_config import HydraConfig


    class TwoArgError(Exception):
        def __init__(self, a, b):
            super().__init__(f"{a}/{b}")


    @hydra.main(version_base="1.3", config_path="conf", config_name="config")
    def main(cfg):
        out = Path(HydraConfig.get().runtime.output_dir)
        (out / "pid").write_text(str(os.getpid()))
        if cfg.mode == "fail":
            raise ValueError(f"cell {cfg.x} failed on purpose")
        if cfg.mode == "twoarg":
            raise TwoArgError("left", "right")
        if cfg.mode == "sleep":
            time.sleep(600)
        if cfg.mode == "nap":
            time.sleep(12)
        if cfg.mode == "wandb_sleep":
            from editsweep.tracking import Tracker
            tracker = Tracker({"mode": "offline"}, run_id=f"app{cfg.x}", group="g", job_type="app", name="c",
                              config={}, tags=[], run_dir=out).start()
            (out / "tracking-started").write_text("1")
            time.sleep(600)
        if cfg.mode == "lock":
            return threading.Lock()
        (out / "result.json").write_text(json.dumps({"x": cfg.x}))
        return {"x": cfg.x}


    if __name__ == "__main__":
        main()
''')

CHECKS = textwrap.dedent('''
    from editsweep.config_schema import ConfigError


    def check(cfg):
        if cfg.x < 0:
            raise ConfigError(f"x: must be >= 0, got {cfg.x}")
''')

CONFIG = textwrap.dedent('''
    defaults:
      - override hydra/launcher: app_slurm
      - _self_
    mode: ok
    x: 0
    hydra:
      sweep:
        dir: sweep
        subdir: cell_${x}_${mode}
''')

# launcher options live in their own files, as in conf/hydra/launcher/ (no launcher keys above)
APP_SLURM = textwrap.dedent('''
    defaults:
      - editsweep_slurm
      - _self_
    validator: checks:check
    prepare: null
    partition: debug
    cpus_per_task: 1
    poll_s: 1
    lost_grace_s: 5
    timeout_min: 5
    signal_delay_s: 30
    max_num_timeout: 1
''')

APP_LOCAL = textwrap.dedent('''
    defaults:
      - editsweep_local
      - _self_
    validator: checks:check
    prepare: null
    poll_s: 0.5
    lost_grace_s: 3
''')

LOCAL = ["hydra/launcher=app_local"]


@pytest.fixture
def app(tmp_path: Path, wandb_offline_env: Path) -> Path:
    (tmp_path / "conf").mkdir()
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "checks.py").write_text(CHECKS)
    (tmp_path / "conf" / "config.yaml").write_text(CONFIG)
    (tmp_path / "conf" / "hydra" / "launcher").mkdir(parents=True)
    (tmp_path / "conf" / "hydra" / "launcher" / "app_slurm.yaml").write_text(APP_SLURM)
    (tmp_path / "conf" / "hydra" / "launcher" / "app_local.yaml").write_text(APP_LOCAL)
    return tmp_path


def run_app(app: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "app.py", "-m", *args], cwd=app, capture_output=True, text=True,
                          timeout=timeout)


def squeue(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "--states=all", "-r", "-j", job_id.split("_")[0], "-o", "%i|%T"],
                         capture_output=True, text=True).stdout
    return dict(line.split("|") for line in out.split()).get(job_id, "")


def launched_jobs(app: Path) -> dict:
    path = app / "sweep" / "launches.jsonl"
    if not path.exists():
        return {}
    return {r["cell"]: r["job_id"] for r in map(json.loads, path.read_text().splitlines())}


@pytest.mark.slurm
def test_failed_cells_get_tracebacks_and_a_rerun_skips_done_cells(app: Path, slurm_cluster: str) -> None:
    first = run_app(app, "x=0,1", "mode=ok,fail")
    assert first.returncode == 1, first.stderr
    log = first.stderr + first.stdout
    assert "cell_0_fail: FAILED: ValueError: cell 0 failed on purpose" in log
    assert "2 cell(s) done, 2 failed" in log
    for x in (0, 1):
        assert json.loads((app / f"sweep/cell_{x}_ok/result.json").read_text()) == {"x": x}
        error = (app / f"sweep/cell_{x}_fail/error.txt").read_text()
        assert error.startswith("Traceback") and f"ValueError: cell {x} failed on purpose" in error

    status = subprocess.run([sys.executable, "-m", "editsweep", "status", "sweep"], cwd=app, capture_output=True,
                            text=True)
    assert status.returncode == 1
    assert "2 done, 0 running, 2 failed, 0 pending" in status.stdout
    assert "python launch.py -m x=1 mode=fail" in status.stdout

    second = run_app(app, "x=0,1", "mode=ok,fail")
    log = second.stderr + second.stdout
    assert log.count("skip (done)") == 2 and "2 of 4 cells to run (2 done" in log
    assert second.returncode == 1


@pytest.mark.slurm
def test_cell_cancelled_from_outside_is_reported_failed_without_sacct(app: Path, slurm_cluster: str) -> None:
    env = dict(os.environ, PATH=os.environ["PATH"])  # the real sacct: "accounting storage is disabled"
    proc = subprocess.Popen([sys.executable, "app.py", "-m", "x=7", "mode=sleep,ok"], cwd=app, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: "cell_7_sleep" in launched_jobs(app), 60, "the submission")
        job = launched_jobs(app)["cell_7_sleep"]
        wait_for(lambda: squeue(job) == "RUNNING" and (app / "sweep/cell_7_sleep/pid").exists(), 60, "the cell to run")
        output, reported_after = scancel_and_collect(proc, job, timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, output
    assert reported_after < 120, f"the launcher needed {reported_after:.0f}s to report the cancelled cell"
    assert f"cell_7_sleep: FAILED: job {job} CANCELLED without a result" in output
    error = (app / "sweep/cell_7_sleep/error.txt").read_text()
    assert "CANCELLED" in error and "killed from outside" in error
    assert (app / "sweep/cell_7_ok/result.json").exists()
    assert "sacct" not in output.lower(), "the launcher must not depend on sacct"


@pytest.mark.slurm
def test_requeue_closes_the_wandb_run_first(app: Path, slurm_cluster: str) -> None:
    proc = subprocess.Popen([sys.executable, "app.py", "-m", "x=3", "mode=wandb_sleep"], cwd=app,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cell = app / "sweep/cell_3_wandb_sleep"
    try:
        wait_for(lambda: (cell / "tracking-started").exists(), 90, "the cell's W&B run")
        job = launched_jobs(app)["cell_3_wandb_sleep"]
        subprocess.run(["scancel", "--signal=USR2", job], check=True)  # what Slurm sends before a timeout/preemption
        wait_for(lambda: squeue(job) in ("PENDING", "REQUEUED"), 60, "the requeue")
        from editsweep.tracking import offline_runs, read_offline_run

        run = read_offline_run(offline_runs(cell)[0])
        assert run["exit_code"] == 1 and run["preempting"] is True
        subprocess.run(["scancel", job], check=True)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert f"Requeued job {job}" in (app / "sweep/.submitit" / job / f"{job}_0_log.out").read_text()


@pytest.mark.slurm
def test_invalid_cell_config_fails_before_anything_is_submitted(app: Path, slurm_cluster: str) -> None:
    result = run_app(app, "x=1,-1", "mode=ok")
    assert result.returncode == 1
    assert "1 of 2 cells have an invalid config; nothing was submitted" in result.stderr
    assert "x: must be >= 0, got -1" in result.stderr
    assert not (app / "sweep" / ".submitit").exists() and not (app / "sweep" / "cell_1_ok").exists()


def test_subdir_that_depends_on_the_job_number_is_refused(app: Path) -> None:
    result = run_app(app, "x=1", *LOCAL, "hydra.sweep.subdir=${hydra.job.num}")
    assert result.returncode == 1
    assert "depends on the job number" in result.stderr


def test_local_launcher_runs_cells_in_their_own_processes(app: Path) -> None:
    result = run_app(app, "x=0,1,2", "mode=ok", *LOCAL, "hydra.launcher.parallelism=2")
    assert result.returncode == 0, result.stderr
    pids = {int((app / f"sweep/cell_{x}_ok/pid").read_text()) for x in range(3)}
    assert len(pids) == 3 and os.getpid() not in pids
    again = run_app(app, "x=0,1,2", "mode=ok", *LOCAL)
    assert again.returncode == 0 and (again.stderr + again.stdout).count("skip (done)") == 3


def test_unpicklable_results_and_odd_exceptions_fail_cleanly(app: Path) -> None:
    result = run_app(app, "x=0", "mode=lock,twoarg", *LOCAL, timeout=120)
    assert result.returncode == 1
    lock_error = (app / "sweep/cell_0_lock/error.txt").read_text()
    assert "not JSON-able" in lock_error and "lock" in lock_error
    twoarg_error = (app / "sweep/cell_0_twoarg/error.txt").read_text()
    assert "TwoArgError: left/right" in twoarg_error
    assert "2 failed" in result.stderr + result.stdout


def test_local_cell_killed_from_outside_is_reported(app: Path) -> None:
    proc = subprocess.Popen([sys.executable, "app.py", "-m", "x=9", "mode=sleep", *LOCAL], cwd=app,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pid_file = app / "sweep/cell_9_sleep/pid"
    try:
        wait_for(pid_file.exists, 60, "the local cell to start")
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert "cell_9_sleep: FAILED" in output
    assert "killed from outside" in (app / "sweep/cell_9_sleep/error.txt").read_text()


def test_cells_that_share_a_directory_run_once(app: Path) -> None:
    """E.g. the unedited baseline under two regimes: one cell directory, one run, two results."""
    result = run_app(app, "x=4,5", "mode=ok", *LOCAL, "hydra.sweep.subdir=cell_${mode}")
    log = result.stderr + result.stdout
    assert result.returncode == 0, log
    assert "same cell as #0" in log and "1 of 2 cells to run (0 done, 1 duplicates)" in log
    assert json.loads((app / "sweep/cell_ok/result.json").read_text()) == {"x": 4}


@pytest.mark.slurm
def test_relaunch_waits_for_a_cell_still_running_from_a_dead_launcher(app: Path, slurm_cluster: str) -> None:
    """The launcher's terminal died but its job runs on: rerunning must not submit the cell twice."""
    first = subprocess.Popen([sys.executable, "app.py", "-m", "x=8", "mode=nap"], cwd=app,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (app / "sweep/cell_8_nap/pid").exists(), 60, "the cell to start")
    finally:
        first.kill()
        first.wait()
    job = launched_jobs(app)["cell_8_nap"]
    assert squeue(job) == "RUNNING"
    second = run_app(app, "x=8", "mode=nap")
    log = second.stderr + second.stdout
    assert second.returncode == 0, log
    assert f"still RUNNING as job {job} from an earlier launch" in log and "submitted" not in log
    assert json.loads((app / "sweep/cell_8_nap/result.json").read_text()) == {"x": 8}
    records = [json.loads(line) for line in (app / "sweep/launches.jsonl").read_text().splitlines()]
    assert [r["job_id"] for r in records if r["cell"] == "cell_8_nap"] == [job, job]
