"""Validation through the sandbox: which (problem, API) pairs and specificity problems hold.

Checks, each one sandbox task (docs/architecture.md task format):
- `baseline`: the original solution passes all its tests with nothing removed (a problem that
  fails here is dropped whatever its API);
- `original`: with the API removed and the replacement installed, the original solution fails
  at the compile level (it must: it still uses the removed API);
- `rewritten`: in that same environment the rewritten solution passes all its tests;
- `specificity`: with every selected API removed and every replacement installed, the
  original solution still passes all its tests.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from editsweep.benchmark.catalog import CatalogEntry
from editsweep.benchmark.problem import Problem

log = logging.getLogger(__name__)

COMPILE_FAILURES = frozenset({"syntax_error", "deprecated_api", "definition_error", "missing_entry_point"})
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Check:
    """One validation task and what its result must be."""

    check: str  # baseline | original | rewritten | specificity
    problem_id: str
    api: str | None
    task: dict

    def passed(self, result: dict) -> bool:
        if self.check == "original":
            return result["status"] in COMPILE_FAILURES
        return result["status"] == "passed"

    def reason(self, result: dict) -> str:
        if self.check == "original":
            return f"the original solution did not fail at compile level (status {result['status']})"
        detail = result.get("error_type") or ""
        message = (result.get("error_message") or "").strip().splitlines()
        if message:  # addresses would make two builds differ
            detail += ": " + re.sub(r"0x[0-9a-fA-F]+", "0x…", message[0][:200])
        what = {
            "baseline": "the original solution fails its tests with nothing removed",
            "rewritten": "the rewritten solution fails in the deprecated environment",
            "specificity": "the original solution fails with the selected APIs removed",
        }[self.check]
        return f"{what} (status {result['status']}, {result['tests_passed']}/{result['tests_total']} tests; {detail})"


def _task(task_id: str, program: str, problem: Problem, remove: list[str], install: dict[str, str], timeout_s: float) -> dict:
    return {
        "id": task_id,
        "program": program,
        "tests": list(problem.tests),
        "entry_point": problem.entry_point,
        "remove": remove,
        "install": install,
        "timeout_s": timeout_s,
    }


def baseline_check(problem: Problem, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    task = _task(f"baseline:{problem.id}", problem.solution, problem, [], {}, timeout_s)
    return Check("baseline", problem.id, None, task)


def pair_checks(problem: Problem, entry: CatalogEntry, reference_new: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Check]:
    install = {entry.new_api: entry.source}
    original = _task(f"original:{entry.api}:{problem.id}", problem.solution, problem, [entry.api], install, timeout_s)
    rewritten = _task(
        f"rewritten:{entry.api}:{problem.id}", problem.prompt + reference_new, problem, [entry.api], install, timeout_s
    )
    return [Check("original", problem.id, entry.api, original), Check("rewritten", problem.id, entry.api, rewritten)]


def specificity_check(problem: Problem, entries: list[CatalogEntry], timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    install = {e.new_api: e.source for e in entries}
    task = _task(f"specificity:{problem.id}", problem.solution, problem, [e.api for e in entries], install, timeout_s)
    return Check("specificity", problem.id, None, task)


def run_checks(checks: list[Check], workers: int | None = None, jail: bool = True, progress: str = "validate") -> list[tuple[Check, dict]]:
    """Run the checks' tasks in the sandbox; (check, result) pairs in input order."""
    if not checks:
        return []
    from tqdm import tqdm

    from editsweep.sandbox import SandboxPool

    results = []
    with SandboxPool(workers=workers, jail=jail) as pool:
        stream = pool.run(check.task for check in checks)
        for check, result in zip(checks, tqdm(stream, total=len(checks), desc=progress, unit="task", leave=False)):
            results.append((check, result))
    return results


def validation_record(check: Check, result: dict) -> dict:
    """One line of validation.jsonl (no timings, so that two builds are byte identical)."""
    ok = check.passed(result)
    return {
        "id": check.task["id"],
        "check": check.check,
        "problem_id": check.problem_id,
        "api": check.api,
        "ok": ok,
        "status": result["status"],
        "tests_passed": result["tests_passed"],
        "tests_total": result["tests_total"],
        "error_type": result.get("error_type"),
        "reason": None if ok else check.reason(result),
    }
