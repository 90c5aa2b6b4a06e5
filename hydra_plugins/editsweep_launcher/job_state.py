"""Is a submitted cell still alive? Answered without `sacct`.

submitit decides that a job is over from its result pickle, and otherwise from `sacct`; on a
cluster without an accounting database a cell killed from outside (scancel, OOM kill, node
loss) writes no pickle, `sacct` fails, and the launcher waits forever. Here the launcher asks
`squeue --states=all` (Slurm) or the child process (local) instead, and a job that has been
ended or unknown for a grace period without a result pickle is declared lost.
"""

from __future__ import annotations

import logging
import subprocess
import time
from typing import Dict, Iterable, Optional

log = logging.getLogger(__name__)

#: Slurm job states in which the job may still produce its result
SLURM_ALIVE_STATES = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
    "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD", "SPECIAL_EXIT",
})
#: submitit's local job states in which the child process still runs
LOCAL_ALIVE_STATES = frozenset({"RUNNING"})


def squeue_states(job_ids: Iterable[str], timeout_s: float = 30.0) -> Dict[str, Optional[str]]:
    """{job id: Slurm state, or None when squeue does not know it}. Array tasks as `A_a`.

    Raises RuntimeError when squeue itself cannot be run (no controller).
    """
    wanted = sorted(set(job_ids))
    states: Dict[str, Optional[str]] = {j: None for j in wanted}
    if not wanted:
        return states
    main_ids = sorted({j.split("_")[0] for j in wanted})
    cmd = ["squeue", "-h", "--states=all", "-r", "-j", ",".join(main_ids), "-o", "%i|%T"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"cannot run squeue: {exc}") from exc
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:
            return states  # every id is gone (purged after MinJobAge)
        raise RuntimeError(f"squeue failed ({proc.returncode}): {proc.stderr.strip()}")
    for line in proc.stdout.splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id in states:
            states[job_id] = state.split()[0] if state else None
    return states


class LivenessTracker:
    """Remembers since when each job looked dead; `lost()` once that lasts `grace_s` seconds."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self._dead_since: Dict[str, float] = {}
        self.last_state: Dict[str, Optional[str]] = {}

    def observe(self, job_id: str, state: Optional[str], alive: bool, now: Optional[float] = None) -> None:
        now = time.time() if now is None else now
        self.last_state[job_id] = state
        if alive:
            self._dead_since.pop(job_id, None)
        else:
            self._dead_since.setdefault(job_id, now)

    def lost(self, job_id: str, now: Optional[float] = None) -> bool:
        now = time.time() if now is None else now
        since = self._dead_since.get(job_id)
        return since is not None and now - since >= self.grace_s
