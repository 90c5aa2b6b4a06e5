"""The sandboxed judge: persistent jailed workers that run model-written Python and score it.

`SandboxPool` / `run_tasks` run tasks (docs/architecture.md, "Sandbox task and result") and
return one result per task in task order; `split_test_units` turns a HumanEval `check()` test
or MBPP asserts into the per-assertion units that partial credit is counted on.
Design and measurements: ../shared/notes/execution-sandbox.md (§8 is what is built here).
"""

from editsweep.sandbox.pool import BadTask, SandboxError, SandboxPool, run_tasks
from editsweep.sandbox.tasks import Task, TaskError, make_result, parse_task
from editsweep.sandbox.units import is_scored_unit, split_test_units
from editsweep.sandbox.worker import WorkerLimits

__all__ = [
    "BadTask", "SandboxError", "SandboxPool", "Task", "TaskError", "WorkerLimits", "is_scored_unit", "make_result",
    "parse_task", "run_tasks", "split_test_units",
]
