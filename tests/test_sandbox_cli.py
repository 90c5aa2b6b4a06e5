"""`editsweep sandbox run` and `editsweep bench sandbox` through the real CLI."""

from __future__ import annotations

import glob
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from editsweep.cli import main

pytestmark = pytest.mark.jail

PROGRAM = "def f(x):\n    return x\n"


def write_tasks(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def task(task_id: str, program: str = PROGRAM, **extra) -> str:
    return json.dumps({"id": task_id, "program": program, "tests": ["assert f(1) == 1"], "entry_point": "f", **extra})


def test_run_writes_one_result_per_task_in_order_and_reports_bad_lines(tmp_path, caplog):
    tasks = write_tasks(tmp_path / "tasks.jsonl", [
        task("a"),
        "{not json",
        "",
        json.dumps({"id": "b", "program": PROGRAM, "tests": "assert f(1) == 1"}),
        task("c", "def f(x):\n    return -x\n"),
        json.dumps([1, 2]),
        task("d", "def f(x)\n"),
        task("e", timeout_s=0.5, program="def f(x):\n    while True:\n        pass\n"),
        task("g"),
    ])
    out = tmp_path / "out" / "results.jsonl"
    code = main(["sandbox", "run", str(tasks), "--out", str(out), "--workers", "2"])
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert code == 1  # harness errors were reported
    assert [(r["id"], r["status"]) for r in results] == [
        ("a", "passed"), ("line-2", "harness_error"), ("b", "harness_error"), ("c", "failed"),
        ("line-6", "harness_error"), ("d", "syntax_error"), ("e", "timeout"), ("g", "passed"),
    ]
    assert "line 2" in results[1]["error_message"] and "not valid JSON" in results[1]["error_message"]
    assert "line 4" in results[2]["error_message"] and "'tests'" in results[2]["error_message"]
    assert "line 6" in results[4]["error_message"]
    for result in results:
        assert {"id", "status", "compiled", "tests_passed", "tests_total", "error_type", "error_message",
                "duration_s"} <= set(result)


def test_results_are_flushed_as_they_complete(tmp_path):
    """Interrupting a run keeps what was already scored: kill it while a slow task is running."""
    lines = [task(f"fast{i}") for i in range(5)]
    lines.append(task("slow", "import time\ndef f(x):\n    time.sleep(30)\n", timeout_s=60))
    tasks = write_tasks(tmp_path / "tasks.jsonl", lines)
    out = tmp_path / "results.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "editsweep", "sandbox", "run", str(tasks), "--out", str(out),
                             "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if out.exists() and len(out.read_text().splitlines()) >= 5:
                break
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in results] == [f"fast{i}" for i in range(5)]
    # the orphaned worker notices that its orchestrator is gone, kills the sample and exits
    groups = [Path(g) for g in glob.glob(f"/sys/fs/cgroup/pids/editsweep-{proc.pid}-*")]
    assert groups, "the run had a worker cgroup"
    deadline = time.monotonic() + 10
    while any((g / "cgroup.procs").read_text().split() for g in groups) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any((g / "cgroup.procs").read_text().split() for g in groups), "jail left running"


def test_missing_task_file_is_a_clear_error(tmp_path, capsys):
    assert main(["sandbox", "run", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "task file not found" in capsys.readouterr().err


def test_bench_sandbox_prints_the_ratio_as_json(capsys):
    code = main(["bench", "sandbox", "--samples", "60", "--skip-humaneval", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("jailed_samples_per_s", "baseline_samples_per_s", "ratio", "load_avg_before", "load_avg_after"):
        assert key in report
    assert report["samples"] == 60 and report["verdict_agreement"] == 1.0
    assert report["jailed_passed"] == 45  # 1 in 4 tiny samples is wrong
    assert report["jailed_samples_per_s"] > 0 and report["baseline_samples_per_s"] > 0


def test_confirm_timeouts_flag_reaches_the_pool(tmp_path):
    """A sample off the CPU past its budget (sleeping) is overturned by default, kept with `off`."""
    sleepy = "import time\ndef f(x):\n    time.sleep(0.8)\n    return x\n"
    tasks = write_tasks(tmp_path / "tasks.jsonl", [task("s", sleepy, timeout_s=0.5)])
    results = {}
    for mode in ("auto", "off"):
        out = tmp_path / f"{mode}.jsonl"
        assert main(["sandbox", "run", str(tasks), "--out", str(out), "--workers", "1", "--confirm-timeouts", mode]) == 0
        (results[mode],) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (results["auto"]["status"], results["auto"]["timeout_rerun"]["verdict"]) == ("passed", "overturned")
    assert results["off"]["status"] == "timeout" and "timeout_rerun" not in results["off"]
    with pytest.raises(SystemExit):
        main(["sandbox", "run", str(tasks), "--out", str(tmp_path / "x.jsonl"), "--confirm-timeouts", "yes"])
