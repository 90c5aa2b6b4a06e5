"""`editsweep status SWEEP_DIR`: where every cell of a sweep stands, from the cell stores alone.

States: done (result.json), running (a live process works on it: its Slurm job is running,
or its pid is alive on this host), failed (error.txt, or a worker that died without one),
pending (launched but not started, or queued). For failed cells it prints the command that
reruns exactly them; rerunning the original command works too, since done cells are skipped.
No `sacct` is needed: Slurm states come from `squeue`, when it is available.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

STATES = ("done", "running", "failed", "pending")


def _slurm_states(job_ids: List[str]) -> Dict[str, Optional[str]]:
    if not job_ids or shutil.which("squeue") is None:
        return {}
    from hydra_plugins.editsweep_launcher.job_state import squeue_states

    try:
        return squeue_states(job_ids)
    except RuntimeError:
        return {}


def _error_headline(path: Path) -> str:
    """A traceback's last line (the exception); for the launcher's own reports, their first line."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if not lines:
        return "(empty error.txt)"
    return (lines[-1] if lines[0].startswith("Traceback") else lines[0]).strip()


def collect(sweep_dir: Path) -> List[Dict[str, Any]]:
    """One record per cell: name, state, detail, job id, progress and overrides (when launched)."""
    from hydra_plugins.editsweep_launcher.job_state import SLURM_ALIVE_STATES

    from editsweep.store import CELL_FILE, ERROR_FILE, PROGRESS_FILE, RESULT_FILE, RUNNING_FILE, read_json, read_launches

    launches = read_launches(sweep_dir)
    names = set(launches)
    names.update(p.parent.name for p in sweep_dir.glob(f"*/{CELL_FILE}"))
    names.update(p.parent.name for p in sweep_dir.glob(f"*/{ERROR_FILE}"))
    running_info = {name: read_json(sweep_dir / name / RUNNING_FILE) for name in names}
    job_ids = {launches[n]["job_id"] for n in names if n in launches and launches[n].get("job_id")}
    job_ids |= {r["job_id"] for r in running_info.values() if r and r.get("job_id")}
    slurm = _slurm_states(sorted(j for j in job_ids if j and j[0].isdigit()))

    cells = []
    for name in sorted(names):
        cell_dir = sweep_dir / name
        launch = launches.get(name, {})
        running = running_info.get(name)
        progress = read_json(cell_dir / PROGRESS_FILE) or {}
        job_id = (running or {}).get("job_id") or launch.get("job_id")
        job_state = slurm.get(job_id) if job_id else None
        record = {"cell": name, "job_id": job_id, "job_state": job_state, "units": progress.get("units", 0),
                  "last_step": progress.get("last_step"), "overrides": launch.get("overrides"),
                  "hydra_overrides": launch.get("hydra_overrides") or [], "detail": ""}
        if (cell_dir / RESULT_FILE).exists():
            result = read_json(cell_dir / RESULT_FILE) or {}
            record.update(state="done", detail=f"{result.get('n_samples', '?')} samples")
        elif running and _is_alive(running, job_state, SLURM_ALIVE_STATES):
            record.update(state="running", detail=f"since {_ago(running.get('started_at'))}")
        elif (cell_dir / ERROR_FILE).exists():
            record.update(state="failed", detail=_error_headline(cell_dir / ERROR_FILE))
        elif running:
            record.update(state="failed", detail="its process is gone and left no traceback")
        elif job_state in SLURM_ALIVE_STATES:
            record.update(state="pending" if job_state == "PENDING" else "running", detail=f"Slurm {job_state}")
        else:
            record.update(state="pending", detail="not started" if not progress else "interrupted; rerun to resume")
        cells.append(record)
    return cells


def _is_alive(running: Dict[str, Any], job_state: Optional[str], alive_states: Any) -> bool:
    if job_state is not None:
        return job_state in alive_states
    from editsweep.store import marker_process_alive

    alive = marker_process_alive(running)
    return True if alive is None else alive  # another host and no squeue answer: trust the marker


def _ago(timestamp: Optional[float]) -> str:
    import time

    if not timestamp:
        return "?"
    seconds = int(time.time() - float(timestamp))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def rerun_command(cells: List[Dict[str, Any]], launch_script: str = "python launch.py") -> Optional[str]:
    """One `-m` command per distinct launcher setting that reruns exactly the given cells."""
    lines = []
    for cell in cells:
        if not cell.get("overrides"):
            continue
        hydra_args = [a for a in cell["hydra_overrides"] if not a.startswith("hydra.mode=")]
        args = hydra_args + list(cell["overrides"])
        lines.append(f"{launch_script} -m " + " ".join(shlex.quote(a) for a in args))
    return "\n".join(lines) if lines else None


def format_report(sweep_dir: Path, cells: List[Dict[str, Any]]) -> str:
    counts = {s: sum(c["state"] == s for c in cells) for s in STATES}
    width = max([len(c["cell"]) for c in cells] + [4])
    out = [f"sweep {sweep_dir}: " + ", ".join(f"{counts[s]} {s}" for s in STATES)]
    for cell in cells:
        job = cell["job_id"] or "-"
        out.append(f"  {cell['state']:<8} {cell['cell']:<{width}}  units={cell['units']:<4} job={job:<10} {cell['detail']}")
    failed = [c for c in cells if c["state"] == "failed"]
    if failed:
        command = rerun_command(failed)
        out.append("")
        out.append("rerun the failed cells (done cells are skipped, unfinished ones resume):")
        out.append(command if command else "  (no launch record; rerun the original command)")
        for cell in failed:
            out.append(f"  traceback: {sweep_dir / cell['cell'] / 'error.txt'}")
    return "\n".join(out)


def run(args: Any) -> int:
    sweep_dir = Path(args.sweep_dir)
    if not sweep_dir.is_dir():
        print(f"editsweep status: {sweep_dir} is not a directory", file=sys.stderr)
        return 2
    cells = collect(sweep_dir)
    if args.json:
        print(json.dumps(cells, indent=1, default=str))
    else:
        print(format_report(sweep_dir, cells))
    return 1 if any(c["state"] == "failed" for c in cells) else 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("status", help="list the cells of a sweep: done, running, failed, pending")
    parser.add_argument("sweep_dir", metavar="SWEEP_DIR", help="the sweep directory (<sweep.root>/<sweep.name>)")
    parser.add_argument("--json", action="store_true", help="one JSON record per cell instead of the table")
    parser.set_defaults(func=run)
