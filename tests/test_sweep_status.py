"""`editsweep status`: cell states from the stores and the launch log, and the rerun lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from editsweep.status import collect, format_report, rerun_command
from editsweep.store import CellStore, record_launch, write_json_atomic


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _sweep(tmp_path: Path) -> Path:
    sweep = tmp_path / "sweep"
    done = CellStore.open(sweep / "done-cell")
    done.write_cell_info({"cell_id": "a"})
    done.commit_unit(0, samples=[{"step": 0, "problem_id": "p", "sample": 0}])
    done.write_result({"status": "done", "n_samples": 1})

    running = CellStore.open(sweep / "running-cell")
    running.write_cell_info({"cell_id": "b"})
    running.mark_running(None)  # this process: alive

    failed = CellStore.open(sweep / "failed-cell")
    failed.write_cell_info({"cell_id": "c"})
    failed.write_error("Traceback (most recent call last):\n  ...\nValueError: boom")

    vanished = CellStore.open(sweep / "vanished-cell")
    vanished.write_cell_info({"cell_id": "d"})
    vanished.commit_unit(0, samples=[])
    write_json_atomic(sweep / "vanished-cell" / "running.json",
                      {"pid": _dead_pid(), "host": os.uname().nodename, "job_id": None, "started_at": 0})

    lost = CellStore.open(sweep / "lost-cell")
    lost.write_error("cell lost-cell: job 12_3 ended (CANCELLED) without a result; it was killed from outside.\nmore")

    record_launch(sweep, [
        {"cell": name, "overrides": [f"method={name.split('-')[0]}", "sweep.name=s"],
         "hydra_overrides": ["hydra/launcher=slurm", "hydra.mode=MULTIRUN"], "job_id": None}
        for name in ("done-cell", "running-cell", "failed-cell", "vanished-cell", "lost-cell", "queued-cell")
    ])
    return sweep


def test_states_from_the_stores(tmp_path: Path) -> None:
    cells = {c["cell"]: c for c in collect(_sweep(tmp_path))}
    assert {name: c["state"] for name, c in cells.items()} == {
        "done-cell": "done", "running-cell": "running", "failed-cell": "failed", "vanished-cell": "failed",
        "lost-cell": "failed", "queued-cell": "pending",
    }
    assert cells["failed-cell"]["detail"] == "ValueError: boom"
    assert cells["lost-cell"]["detail"].startswith("cell lost-cell: job 12_3 ended (CANCELLED)")
    assert "left no traceback" in cells["vanished-cell"]["detail"]
    assert cells["vanished-cell"]["units"] == 1 and cells["done-cell"]["detail"] == "1 samples"


def test_report_and_rerun_lines(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    cells = collect(sweep)
    report = format_report(sweep, cells)
    assert "1 done, 1 running, 3 failed, 1 pending" in report
    lines = rerun_command([c for c in cells if c["state"] == "failed"]).splitlines()
    assert lines == [f"python launch.py -m hydra/launcher=slurm method={name} sweep.name=s"
                     for name in ("failed", "lost", "vanished")]
    assert str(sweep / "failed-cell" / "error.txt") in report


def test_command_line(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    table = subprocess.run([sys.executable, "-m", "editsweep", "status", str(sweep)], capture_output=True, text=True)
    assert table.returncode == 1 and "3 failed" in table.stdout
    as_json = subprocess.run([sys.executable, "-m", "editsweep", "status", "--json", str(sweep)], capture_output=True,
                             text=True)
    assert len(json.loads(as_json.stdout)) == 6
    missing = subprocess.run([sys.executable, "-m", "editsweep", "status", str(tmp_path / "nope")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "is not a directory" in missing.stderr
