"""`editsweep sandbox run TASKS.jsonl --out RESULTS.jsonl`: score a file of tasks in the sandbox.

One result line per task line, in task order, each written and flushed as soon as it (and
every task before it) is scored, so an interrupted run keeps everything already scored. A
line that is not a valid task is reported (with its line number) as `harness_error` and the
run goes on (the exit code is then 1). Blank lines are skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Iterator

__all__ = ["register", "read_tasks", "run_command"]

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser("sandbox", help="run programs in the jailed sandbox")
    commands = parser.add_subparsers(dest="sandbox_command", metavar="COMMAND", required=True)
    run = commands.add_parser("run", help="score a JSONL file of tasks; results in task order",
                              description=__doc__.strip().splitlines()[0])
    run.add_argument("tasks", type=Path, help="tasks, one JSON object per line (docs/architecture.md)")
    run.add_argument("--out", type=Path, required=True, help="where to write the results (JSONL)")
    run.add_argument("--workers", type=int, default=None, help="number of workers (default: one per core)")
    run.add_argument("--timeout", type=float, default=3.0, help="default per-sample budget in seconds")
    run.add_argument("--confirm-timeouts", choices=("auto", "all", "off"), default="auto",
                     help="re-run timeouts once with 2x the budget and keep them only if CPU time says they are "
                          "the sample's own: auto (skip samples that already used 90%% of the budget in CPU), "
                          "all, or off (default: auto)")
    run.add_argument("--no-jail", action="store_true",
                     help="run WITHOUT firejail (development only, never on untrusted code)")
    run.set_defaults(func=run_command)


def read_tasks(path: Path) -> Iterator[object]:
    """Validated Tasks, or BadTask (message with the file and line number) for lines that are not."""
    from editsweep.sandbox.pool import BadTask
    from editsweep.sandbox.tasks import TaskError, parse_task

    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                obj = json.loads(line)
            except ValueError as exc:
                yield BadTask(f"line-{number}", f"{where}: not valid JSON ({exc})")
                continue
            try:
                yield parse_task(obj, where=where)
            except TaskError as exc:
                task_id = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None
                yield BadTask(task_id or f"line-{number}", str(exc))


def run_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from editsweep.sandbox.pool import SandboxError, SandboxPool

    if not args.tasks.exists():
        print(f"error: task file not found: {args.tasks}", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print(f"error: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    with args.tasks.open("rb") as handle:
        total = sum(1 for line in handle if line.strip())
    counts: dict[str, int] = {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with SandboxPool(workers=args.workers, jail=not args.no_jail, timeout_s=args.timeout,
                         confirm_timeouts=args.confirm_timeouts) as pool, \
                args.out.open("w", encoding="utf-8") as out, \
                tqdm(total=total, unit="sample", desc="sandbox", disable=None) as progress:
            for result in pool.run(read_tasks(args.tasks)):
                out.write(json.dumps(result) + "\n")
                out.flush()
                counts[result["status"]] = counts.get(result["status"], 0) + 1
                progress.update(1)
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
    log.info("sandbox run: %d results written to %s (%s)", sum(counts.values()), args.out, summary or "none")
    return 1 if counts.get("harness_error") else 0
