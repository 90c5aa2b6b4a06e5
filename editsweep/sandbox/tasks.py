"""Sandbox tasks and results: validation, the static stage (syntax, removed APIs) and result records.

Everything that can be decided without running the sample is decided here, in the
orchestrator, so no jail is spent on it: a program that does not compile is `syntax_error`;
one that uses a removed API anywhere it is statically visible (any kind: module attribute,
builtin or method of a builtin type, aliases included) is `deprecated_api`. What is left is a
*job* for a worker: the program, its test units with their scored flags, and the run-time
environment (module attributes and builtins to remove, new APIs to install).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from editsweep.apis import find_api_uses, parse_api
from editsweep.sandbox.units import is_scored_unit
from editsweep.scoring.status import COMPILED_STATUSES, Status

__all__ = ["Task", "TaskError", "parse_task", "prepare_job", "make_result", "RESULT_KEYS"]

#: keys every result carries (docs/architecture.md); `error_line` and `output` are added when known
RESULT_KEYS = (
    "id", "status", "compiled", "tests_passed", "tests_total",
    "error_type", "error_message", "error_line", "duration_s",
)


class TaskError(ValueError):
    """A task that is not well formed; the message names the field and what is wrong."""


@dataclass(frozen=True)
class Task:
    """One sample to run: see docs/architecture.md, "Sandbox task and result"."""

    id: str
    program: str
    tests: list[str]
    entry_point: str | None = None
    remove: list[str] = field(default_factory=list)
    install: dict[str, str] = field(default_factory=dict)
    timeout_s: float | None = None


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise TaskError(f"{where}: {message}")


def parse_task(obj: Any, where: str = "task") -> Task:
    """Validate a task dict (as read from JSON) and return a Task; TaskError names the bad field."""
    if isinstance(obj, Task):
        return obj
    _require(isinstance(obj, dict), where, f"expected a JSON object, got {type(obj).__name__}")
    known = {"id", "program", "tests", "entry_point", "remove", "install", "timeout_s"}
    unknown = sorted(set(obj) - known)
    _require(not unknown, where, f"unknown field(s) {', '.join(unknown)}")
    for key in ("id", "program", "tests"):
        _require(key in obj, where, f"missing required field {key!r}")
    task_id = obj["id"]
    _require(isinstance(task_id, str) and task_id != "", where, "'id' must be a non-empty string")
    where = f"{where} {task_id!r}"
    _require(isinstance(obj["program"], str), where, "'program' must be a string")
    tests = obj["tests"]
    _require(isinstance(tests, list) and all(isinstance(t, str) for t in tests), where,
             "'tests' must be a list of strings")
    entry_point = obj.get("entry_point")
    _require(entry_point is None or (isinstance(entry_point, str) and entry_point.isidentifier()), where,
             f"'entry_point' must be null or an identifier, got {entry_point!r}")
    remove = obj.get("remove") or []
    _require(isinstance(remove, list) and all(isinstance(r, str) for r in remove), where,
             "'remove' must be a list of API names")
    install = obj.get("install") or {}
    _require(isinstance(install, dict), where, "'install' must be an object {name: python_source}")
    for name, source in install.items():
        _require(isinstance(name, str) and name.isidentifier(), where, f"install name {name!r} is not an identifier")
        _require(isinstance(source, str), where, f"install source of {name!r} must be a string")
    timeout = obj.get("timeout_s")
    if timeout is not None:
        _require(isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
                 and math.isfinite(timeout) and 0 < timeout <= 600, where,
                 f"'timeout_s' must be null or a number in (0, 600], got {timeout!r}")
        timeout = float(timeout)
    return Task(task_id, obj["program"], list(tests), entry_point, list(remove), dict(install), timeout)


def make_result(task_id: str, status: Status | str, *, tests_passed: int = 0, tests_total: int = 0,
                error_type: str | None = None, error_message: str | None = None,
                error_line: int | None = None, duration_s: float = 0.0, **extra: Any) -> dict:
    """A result record with `compiled` derived from the status (COMPILED_STATUSES)."""
    status = Status(status)
    result = {
        "id": task_id,
        "status": status.value,
        "compiled": status in COMPILED_STATUSES,
        "tests_passed": int(tests_passed),
        "tests_total": int(tests_total),
        "error_type": error_type,
        "error_message": error_message,
        "error_line": error_line,
        "duration_s": round(float(duration_s), 4),
    }
    result.update(extra)
    return result


def _first_use(uses: dict[str, list[tuple[int, int]]]) -> tuple[str, int, int]:
    return min(((api, line, col) for api, spots in uses.items() for line, col in spots), key=lambda t: (t[1], t[2]))


@lru_cache(maxsize=4096)
def _scored_flags(tests: tuple[str, ...], entry_point: str | None) -> tuple[list[bool], str | None]:
    """Which units count, and a message if a unit does not parse; cached (k samples share tests)."""
    for index, test in enumerate(tests):
        try:
            ast.parse(test)
        except SyntaxError as exc:
            return [], f"test unit {index} does not parse: {exc.msg} (line {exc.lineno})"
    return [is_scored_unit(test, entry_point) for test in tests], None


def prepare_job(task: Task, default_timeout_s: float) -> tuple[dict | None, dict | None]:
    """Run the static stage. Returns (job, None) to execute, or (None, result) when decided here."""
    scored, problem = _scored_flags(tuple(task.tests), task.entry_point)
    if problem is not None:
        return None, make_result(task.id, Status.HARNESS_ERROR, error_type="TestSyntaxError", error_message=problem)
    total = sum(scored)
    try:
        refs = [parse_api(name) for name in task.remove]
    except ValueError as exc:
        return None, make_result(task.id, Status.HARNESS_ERROR, tests_total=total, error_type="BadApiName",
                                 error_message=str(exc))
    try:
        tree = ast.parse(task.program, "<program>")
        compile(tree, "<program>", "exec")
    except (SyntaxError, ValueError) as exc:  # ValueError: null bytes in the source
        line = getattr(exc, "lineno", None)
        message = getattr(exc, "msg", None) or str(exc)
        return None, make_result(task.id, Status.SYNTAX_ERROR, tests_total=total, error_type=type(exc).__name__,
                                 error_message=message, error_line=line)
    if refs:
        uses = find_api_uses(tree, [ref.qualname for ref in refs])
        if uses:
            api, line, col = _first_use(uses)
            return None, make_result(task.id, Status.DEPRECATED_API, tests_total=total, error_type="DeprecatedAPI",
                                     error_message=f"uses the removed API {api} (line {line}, column {col})",
                                     error_line=line)
    job = {
        "id": task.id,
        "program": task.program,
        "tests": task.tests,
        "scored": list(scored),
        "entry_point": task.entry_point,
        "remove_modules": [[ref.owner, ref.attr] for ref in refs if ref.kind == "module"],
        "remove_builtins": [ref.attr for ref in refs if ref.kind == "builtin"],
        "install": task.install,
        "timeout_s": task.timeout_s if task.timeout_s is not None else float(default_timeout_s),
    }
    return job, None
