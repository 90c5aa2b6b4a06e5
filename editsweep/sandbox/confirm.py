"""The confirmatory re-run of timeouts (notes/execution-sandbox.md §8.2): is a timeout the sample's, or the load's?

On a shared machine other processes can keep a slow-but-correct sample off the CPU until its
wall budget is spent. Such a timeout is re-run once with a larger budget (2× by default) and
both runs are recorded. CPU time, unlike wall time, barely depends on load, so it decides:

- a timeout is *overturned* (the re-run's verdict replaces it) only if the re-run finished
  (any status but `timeout`, `harness_error`, or a worker lost twice) using less CPU than
  `CPU_SHARE` of the original budget: on an idle core it would have finished in time;
- mode `auto` (the default) skips the re-run when the first run already used `CPU_SHARE` of
  the budget in CPU (an infinite loop on an idle core): the re-run could not overturn it, so
  for deterministic samples `auto` and `all` give the same verdicts, and timeouts cost no extra
  worker time on an idle machine;
- mode `all` re-runs every timeout; `off` keeps the first verdict.

A sample that is slow because it *sleeps* or blocks uses little CPU; its re-run can overturn it
if it finishes within the doubled budget (a stated limit of this rule).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MODES", "CPU_SHARE", "check_mode", "needs_rerun", "rerun_job", "combine", "cpu_bound_record"]

MODES = ("auto", "all", "off")
#: share of the budget in CPU seconds at which a timeout is the sample's own
CPU_SHARE = 0.9
#: statuses of a re-run that say nothing about the sample's speed
_UNINFORMATIVE = frozenset({"timeout", "harness_error"})
_RECORD_KEYS = ("status", "tests_passed", "error_type", "duration_s", "cpu_s")


def check_mode(mode: str, factor: float) -> None:
    """Raise ValueError naming the bad setting."""
    if mode not in MODES:
        raise ValueError(f"confirm_timeouts must be one of {', '.join(MODES)}, got {mode!r}")
    if not factor > 1:
        raise ValueError(f"confirm_factor must be greater than 1, got {factor!r}")


def _cpu_bound(result: dict, budget_s: float) -> bool:
    cpu = result.get("cpu_s")
    return cpu is not None and cpu >= CPU_SHARE * budget_s


def needs_rerun(mode: str, result: dict, budget_s: float) -> bool:
    """Whether this first result (status `timeout`) is re-run under `mode`."""
    if mode == "off" or result["status"] != "timeout":
        return False
    return mode == "all" or not _cpu_bound(result, budget_s)


def rerun_job(job: dict, factor: float) -> dict:
    """The same job with `factor` × its wall budget."""
    return {**job, "timeout_s": float(job["timeout_s"]) * factor}


def _record(result: dict, budget_s: float) -> dict:
    record = {key: result.get(key) for key in _RECORD_KEYS}
    record["timeout_s"] = budget_s
    return record


def cpu_bound_record(first: dict, budget_s: float) -> dict:
    """The `timeout_rerun` record of a timeout that was not re-run because it used its CPU budget."""
    return {"first": _record(first, budget_s), "rerun": None, "verdict": "cpu_bound"}


def combine(first: dict, rerun: dict, budget_s: float, rerun_budget_s: float) -> dict:
    """The final result of a re-run timeout: the re-run's if it overturns the first, else the first.

    Either way the result carries `timeout_rerun` = {"first", "rerun", "verdict"}, each run with
    its status, tests passed, error type, wall and CPU seconds and budget.
    """
    overturned = (
        rerun["status"] not in _UNINFORMATIVE
        and rerun.get("error_type") != "WorkerKilled"
        and rerun.get("cpu_s") is not None
        and rerun["cpu_s"] < CPU_SHARE * budget_s
    )
    final: dict[str, Any] = dict(rerun if overturned else first)
    final["timeout_rerun"] = {
        "first": _record(first, budget_s),
        "rerun": _record(rerun, rerun_budget_s),
        "verdict": "overturned" if overturned else "confirmed",
    }
    return final
