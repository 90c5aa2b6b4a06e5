"""The cell store: atomic files, units committed by progress.json, repair after a crash, no duplicates."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from editsweep.store import (
    CellStore,
    StoreError,
    append_jsonl,
    read_json,
    read_jsonl,
    read_launches,
    record_launch,
    write_json_atomic,
)


def _rows(step: int, n: int = 3) -> list[dict]:
    return [{"step": step, "problem_id": f"p{i}", "sample": j} for i in range(n) for j in range(2)]


def test_units_survive_reopen_and_uncommitted_records_are_dropped(tmp_path: Path) -> None:
    store = CellStore.open(tmp_path)
    assert store.last_step is None and not store.is_committed(0)
    store.commit_unit(0, edits=[{"step": 0, "apis": ["re.search"]}], samples=_rows(0), evals=[{"step": 0, "metrics": {}}])
    store.commit_unit(1, samples=_rows(1), evals=[{"step": 1, "metrics": {}}])
    # a crash after appending unit 2's samples but before progress.json moved
    append_jsonl(tmp_path / "samples.jsonl", _rows(2))
    append_jsonl(tmp_path / "edits.jsonl", [{"step": 2, "apis": ["sorted"]}])

    reopened = CellStore.open(tmp_path)
    assert reopened.last_step == 1 and reopened.is_committed(1) and not reopened.is_committed(2)
    assert reopened.samples() == _rows(0) + _rows(1)
    assert [e["step"] for e in reopened.edits()] == [0]
    assert len(reopened.evals()) == 2
    reopened.commit_unit(2, samples=_rows(2))
    keys = [(r["step"], r["problem_id"], r["sample"]) for r in CellStore.open(tmp_path).samples()]
    assert len(keys) == len(set(keys)) == 18


def test_torn_last_line_is_removed(tmp_path: Path) -> None:
    store = CellStore.open(tmp_path)
    store.commit_unit(0, samples=_rows(0))
    with open(tmp_path / "samples.jsonl", "a") as handle:
        handle.write('{"step": 1, "problem_id": "p0", "sam')  # killed mid-write
    assert len(read_jsonl(tmp_path / "samples.jsonl")) == 6
    CellStore.open(tmp_path)
    assert (tmp_path / "samples.jsonl").read_text().endswith("}\n")
    assert len(read_jsonl(tmp_path / "samples.jsonl")) == 6


def test_commit_refuses_old_steps_and_foreign_records(tmp_path: Path) -> None:
    store = CellStore.open(tmp_path)
    store.commit_unit(3, samples=_rows(3))
    with pytest.raises(StoreError, match="already committed"):
        store.commit_unit(3, samples=_rows(3))
    with pytest.raises(StoreError, match="step 9"):
        store.commit_unit(4, samples=_rows(9))
    with pytest.raises(StoreError, match="step None"):
        store.commit_unit(4, samples=[{"problem_id": "x"}])


def test_cell_json_of_another_cell_is_refused(tmp_path: Path) -> None:
    store = CellStore.open(tmp_path)
    store.write_cell_info({"cell_id": "aaa", "model": "m"})
    store.write_cell_info({"cell_id": "aaa", "model": "m"})  # same cell again: fine
    with pytest.raises(StoreError, match="two different configs"):
        store.write_cell_info({"cell_id": "bbb", "model": "m"})


def test_atomic_json_and_done_marker(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "x.json", {"a": 1})
    assert read_json(tmp_path / "x.json") == {"a": 1}
    assert read_json(tmp_path / "missing.json") is None
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    store = CellStore.open(tmp_path / "cell")
    assert not store.is_done()
    store.write_result({"status": "done"})
    assert store.is_done() and store.result() == {"status": "done"}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(StoreError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")


def test_running_marker_and_error(tmp_path: Path) -> None:
    store = CellStore.open(tmp_path)
    store.mark_running("12_3")
    marker = read_json(tmp_path / "running.json")
    assert marker["job_id"] == "12_3" and marker["pid"] == os.getpid()
    store.clear_running()
    store.clear_running()
    assert not (tmp_path / "running.json").exists()
    store.write_error("Traceback ...\nValueError: x")
    assert (tmp_path / "error.txt").read_text().endswith("ValueError: x\n")


def test_launch_log_keeps_the_latest_record_per_cell(tmp_path: Path) -> None:
    record_launch(tmp_path, [{"cell": "a", "job_id": "1_0"}, {"cell": "b", "job_id": "1_1"}])
    record_launch(tmp_path, [{"cell": "b", "job_id": "2_0"}])
    latest = read_launches(tmp_path)
    assert latest["a"]["job_id"] == "1_0" and latest["b"]["job_id"] == "2_0"


WRITER = textwrap.dedent("""
    import sys
    from editsweep.store import CellStore
    store = CellStore.open(sys.argv[1])
    start = 0 if store.last_step is None else store.last_step + 1
    for step in range(start, int(sys.argv[2])):
        rows = [{"step": step, "problem_id": f"p{i}", "sample": j, "pad": "x" * 200} for i in range(10) for j in range(5)]
        store.commit_unit(step, edits=[{"step": step}], samples=rows, evals=[{"step": step}])
""")


def _last_step(cell: Path) -> int:
    try:
        return json.loads((cell / "progress.json").read_text())["last_step"]
    except (FileNotFoundError, ValueError):
        return -1


def test_sigkill_at_random_points_never_loses_or_duplicates_a_sample(tmp_path: Path) -> None:
    """Kill the writer with SIGKILL at random moments while it commits, resume each time: the final
    store holds exactly one copy of every sample of every unit."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    cell = tmp_path / "cell"
    units = 400
    rng = random.Random(7)
    kills = 0
    for _ in range(5):
        target = _last_step(cell) + rng.randint(2, 25)
        proc = subprocess.Popen([sys.executable, str(script), str(cell), str(units)])
        deadline = time.monotonic() + 60
        while proc.poll() is None and _last_step(cell) < target and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.02))  # land anywhere inside the next unit's writes
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        store = CellStore.open(cell)  # repairs
        last = store.last_step
        assert all(r["step"] <= last for r in store.samples()) if last is not None else not store.samples()
    assert kills == 5, "the writer finished before a kill: the test did not test anything"
    subprocess.run([sys.executable, str(script), str(cell), str(units)], check=True)
    store = CellStore.open(cell)
    keys = [(r["step"], r["problem_id"], r["sample"]) for r in store.samples()]
    assert len(keys) == len(set(keys)) == units * 50
    assert [e["step"] for e in store.edits()] == list(range(units))
    assert [e["step"] for e in store.evals()] == list(range(units))
    assert _last_step(cell) == units - 1
