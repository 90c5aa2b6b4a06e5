"""slurm/: the single-node cluster scripts, fake GPUs, the sacct stand-in, and what runs inside a job."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
UP = ["bash", str(REPO / "slurm" / "up.sh")]
DOWN = ["bash", str(REPO / "slurm" / "down.sh")]


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=kwargs.pop("timeout", 120), **kwargs)


def node_state() -> str:
    return run(["sinfo", "-h", "-N", "-n", "localhost", "-o", "%T"]).stdout.strip()


def sbatch_wait(tmp_path: Path, *args: str, script: str, check: bool = True) -> str:
    out = tmp_path / "job.out"
    result = run(["sbatch", "--wait", "-o", str(out), *args, "--wrap", script], cwd=tmp_path, timeout=180)
    if check:
        assert result.returncode == 0, result.stderr + (out.read_text() if out.exists() else "")
    return out.read_text() if out.exists() else result.stderr


def test_up_is_idempotent_and_fast(slurm_cluster: str) -> None:
    started = time.monotonic()
    again = run(UP)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 5
    assert "writing" not in again.stderr and "starting" not in again.stderr  # nothing restarted
    assert node_state() in ("idle", "mixed", "allocated")


def test_bad_arguments_are_named(slurm_cluster: str) -> None:
    result = run([*UP, "--gpus", "two"])
    assert result.returncode == 2 and "--gpus needs a non-negative integer, got 'two'" in result.stderr
    assert run([*DOWN, "--all"]).returncode == 2


def test_fake_gpus_are_scheduled_then_removed(tmp_path: Path, slurm_cluster: str) -> None:
    try:
        up = run([*UP, "--gpus", "2"])
        assert up.returncode == 0, up.stderr
        assert "gpu:2" in run(["sinfo", "-h", "-N", "-o", "%G"]).stdout
        one = sbatch_wait(tmp_path, "--gpus-per-node=1", script="echo $CUDA_VISIBLE_DEVICES $SLURM_GPUS_ON_NODE")
        assert one.split() == ["0", "1"]
        two = sbatch_wait(tmp_path, "--gres=gpu:2", script="echo $CUDA_VISIBLE_DEVICES")
        assert two.split() == ["0,1"]
        too_many = run(["sbatch", "--gpus-per-node=3", "--wrap", "true"], cwd=tmp_path)
        assert too_many.returncode != 0
    finally:
        restored = run(UP)
    assert restored.returncode == 0, restored.stderr
    assert run(["sinfo", "-h", "-N", "-o", "%G"]).stdout.strip() == "(null)"
    refused = run(["sbatch", "--gpus-per-node=1", "--wrap", "true"], cwd=tmp_path)
    assert refused.returncode != 0 and "gres" in refused.stderr.lower()


def test_down_then_up_again(tmp_path: Path, slurm_cluster: str) -> None:
    down = run(DOWN)
    assert down.returncode == 0, down.stderr
    assert run(["scontrol", "ping"]).stdout.count("UP") == 0
    assert run(DOWN).returncode == 0  # idempotent
    up = run(UP)
    assert up.returncode == 0, up.stderr
    assert sbatch_wait(tmp_path, script="echo alive").strip() == "alive"


def test_sacct_stand_in_answers_submitits_query(tmp_path: Path, slurm_cluster: str) -> None:
    from submitit.slurm.slurm import SlurmInfoWatcher

    done = run(["sbatch", "--parsable", "--wait", "-o", "/dev/null", "--wrap", "true"], cwd=tmp_path, timeout=120)
    array = run(["sbatch", "--parsable", "--array=0-1", "-o", "/dev/null", "--wrap", "sleep 30"], cwd=tmp_path)
    done_id, array_id = done.stdout.strip(), array.stdout.strip()
    try:
        result = run([str(REPO / "slurm" / "bin" / "sacct"), "-o", "JobID,State,NodeList", "--parsable2",
                      "-j", done_id, "-j", array_id])
        assert result.returncode == 0, result.stderr
        info = SlurmInfoWatcher().read_info(result.stdout)
        assert info[done_id]["State"] == "COMPLETED"
        assert info[f"{array_id}_0"]["State"] in ("PENDING", "RUNNING")
        assert info[f"{array_id}_1"]["State"] in ("PENDING", "RUNNING")
        unsupported = run([str(REPO / "slurm" / "bin" / "sacct"), "-o", "JobID,Elapsed", "-j", done_id])
        assert unsupported.returncode == 1 and "only -o JobID,State,NodeList" in unsupported.stderr
    finally:
        run(["scancel", array_id])


def test_jailed_sandbox_starts_inside_a_slurm_job(tmp_path: Path, slurm_cluster: str) -> None:
    """The cells run the jailed sandbox inside Slurm jobs, whose environment holds ~100 variables."""
    script = tmp_path / "jailed.py"
    script.write_text(textwrap.dedent("""
        from editsweep.sandbox import SandboxPool
        with SandboxPool(workers=1, timeout_s=5) as pool:
            result = pool.run_one({"id": "t", "program": "def f():\\n    return 1\\n", "tests": ["assert f() == 1"],
                                   "entry_point": "f"})
        print("STATUS", result["status"])
    """))
    output = sbatch_wait(tmp_path, "--cpus-per-task=1", script=f"srun {sys.executable} {script} 2>&1", check=False)
    assert "STATUS passed" in output, output[-3000:]
