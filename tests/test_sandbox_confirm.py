"""The confirmatory re-run of timeouts: the rule (known answers) and the pool doing it in the real jail."""

from __future__ import annotations

import pytest

from editsweep.sandbox import SandboxPool
from editsweep.sandbox.confirm import CPU_SHARE, check_mode, combine, needs_rerun, rerun_job


def timeout(cpu_s, passed=1):
    return {"id": "s", "status": "timeout", "tests_passed": passed, "tests_total": 3, "error_type": "Timeout",
            "duration_s": 1.02, "cpu_s": cpu_s}


def finished(status, cpu_s, passed=3, error_type=None):
    return {"id": "s", "status": status, "tests_passed": passed, "tests_total": 3, "error_type": error_type,
            "duration_s": 1.5, "cpu_s": cpu_s}


# -- the rule ---------------------------------------------------------------------------------
def test_which_timeouts_are_rerun():
    assert CPU_SHARE == 0.9
    assert needs_rerun("auto", timeout(cpu_s=0.3), budget_s=1.0)       # kept off the CPU: maybe the load's
    assert not needs_rerun("auto", timeout(cpu_s=0.95), budget_s=1.0)  # used its CPU budget: its own
    assert needs_rerun("auto", timeout(cpu_s=None), budget_s=1.0)      # unknown CPU: re-run
    assert needs_rerun("all", timeout(cpu_s=0.95), budget_s=1.0)
    assert not needs_rerun("off", timeout(cpu_s=0.1), budget_s=1.0)
    assert not needs_rerun("all", finished("passed", 0.1), budget_s=1.0)


def test_rerun_job_doubles_the_budget_of_a_copy():
    job = {"id": "s", "timeout_s": 1.5, "program": "x = 1\n"}
    assert rerun_job(job, 2.0) == {"id": "s", "timeout_s": 3.0, "program": "x = 1\n"}
    assert job["timeout_s"] == 1.5


@pytest.mark.parametrize("rerun, verdict, status", [
    (finished("passed", 0.4), "overturned", "passed"),                       # finished within the CPU budget
    (finished("failed", 0.4, passed=2, error_type="AssertionError"), "overturned", "failed"),
    (finished("passed", 0.95), "confirmed", "timeout"),                      # needed more CPU than the budget
    (dict(timeout(0.5), duration_s=2.0), "confirmed", "timeout"),
    (finished("harness_error", 0.0, passed=0, error_type="WorkerError"), "confirmed", "timeout"),
    (finished("crashed", None, passed=0, error_type="WorkerKilled"), "confirmed", "timeout"),
])
def test_combine_keeps_both_runs_and_overturns_only_on_cpu_evidence(rerun, verdict, status):
    first = timeout(cpu_s=0.3)
    final = combine(first, rerun, budget_s=1.0, rerun_budget_s=2.0)
    assert final["status"] == status
    assert final["tests_passed"] == (rerun if verdict == "overturned" else first)["tests_passed"]
    record = final["timeout_rerun"]
    assert record["verdict"] == verdict
    assert record["first"] == {"status": "timeout", "tests_passed": 1, "error_type": "Timeout", "duration_s": 1.02,
                               "cpu_s": 0.3, "timeout_s": 1.0}
    assert (record["rerun"]["status"], record["rerun"]["timeout_s"], record["rerun"]["cpu_s"]) == (
        rerun["status"], 2.0, rerun["cpu_s"])


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="confirm_timeouts must be one of auto, all, off, got 'yes'"):
        check_mode("yes", 2.0)
    with pytest.raises(ValueError, match="confirm_factor must be greater than 1, got 1.0"):
        check_mode("auto", 1.0)
    with pytest.raises(ValueError, match="confirm_timeouts"):
        SandboxPool(workers=1, confirm_timeouts=True)


# -- the pool, in the jail ----------------------------------------------------------------------
SLEEPY = "import time\ndef add(a, b):\n    if a == 2:\n        time.sleep(1.4)\n    return a + b\n"
SPIN = "def add(a, b):\n    if a == 2:\n        while True:\n            pass\n    return a + b\n"
TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(0, 0) == 0"]


def task(program, i=0, timeout_s=1.0):
    return {"id": f"s{i}", "program": program, "tests": TESTS, "entry_point": "add", "timeout_s": timeout_s}


@pytest.mark.jail
def test_a_timeout_that_did_not_get_its_cpu_is_rerun_and_overturned():
    """Off the CPU for 1.4 s of a 1 s budget (as under load, here by sleeping): 2 s on the re-run pass."""
    quick = "def add(a, b):\n    return a + b\n"
    with SandboxPool(workers=2, timeout_s=1.0) as pool:
        results = list(pool.run([task(quick, 0), task(SLEEPY, 1)] + [task(quick, i) for i in range(2, 12)]))
        stats = dict(pool.stats)
    assert [r["id"] for r in results] == [f"s{i}" for i in range(12)]
    assert all(r["status"] == "passed" for r in results), [r["status"] for r in results]
    slow = results[1]
    record = slow["timeout_rerun"]
    assert record["verdict"] == "overturned"
    assert (record["first"]["status"], record["first"]["tests_passed"], record["first"]["timeout_s"]) == ("timeout", 1, 1.0)
    assert record["first"]["cpu_s"] < 0.5
    assert (record["rerun"]["status"], record["rerun"]["timeout_s"]) == ("passed", 2.0)
    assert (slow["tests_passed"], slow["error_type"]) == (3, None)
    assert 1.3 < slow["duration_s"] < 2.0
    assert all("timeout_rerun" not in r for i, r in enumerate(results) if i != 1)
    assert (stats["timeout_reruns"], stats["timeouts_overturned"]) == (1, 1)


@pytest.mark.jail
def test_off_keeps_the_first_timeout_and_all_confirms_an_endless_loop():
    with SandboxPool(workers=1, timeout_s=1.0, confirm_timeouts="off") as pool:
        r = pool.run_one(task(SLEEPY))
        assert (r["status"], r["tests_passed"]) == ("timeout", 1)
        assert "timeout_rerun" not in r and pool.stats["timeout_reruns"] == 0
    with SandboxPool(workers=1, timeout_s=1.0, confirm_timeouts="all") as pool:
        r = pool.run_one(task(SPIN))
        after = pool.run_one(task("def add(a, b):\n    return a + b\n"))
    assert (r["status"], r["tests_passed"], r["error_type"]) == ("timeout", 1, "Timeout")
    record = r["timeout_rerun"]
    assert (record["verdict"], record["first"]["status"], record["rerun"]["status"]) == ("confirmed", "timeout", "timeout")
    assert record["rerun"]["timeout_s"] == 2.0 and record["rerun"]["duration_s"] >= 1.9
    assert r["duration_s"] == record["first"]["duration_s"] < 2.5  # the verdict is the first run's
    assert after["status"] == "passed"


@pytest.mark.jail
def test_auto_records_why_an_endless_loop_was_or_was_not_rerun():
    """On an idle core the loop uses its CPU budget (not re-run); under load it is re-run and confirmed."""
    with SandboxPool(workers=1, timeout_s=1.0) as pool:
        r = pool.run_one(task(SPIN))
    assert r["status"] == "timeout"
    record = r["timeout_rerun"]
    if record["verdict"] == "cpu_bound":
        assert record["rerun"] is None and record["first"]["cpu_s"] >= CPU_SHARE * 1.0
    else:
        assert record["verdict"] == "confirmed" and record["first"]["cpu_s"] < CPU_SHARE * 1.0
