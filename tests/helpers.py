"""Plain helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

#: W&B variables of the caller that must not reach a test's runs (a key, a server, a run to resume)
WANDB_CALLER_VARS = ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL", "WANDB_RUN_ID", "WANDB_RESUME")


def wandb_confined_vars(root: Path) -> dict[str, str]:
    """Variables that make real wandb write only under `root` and never find a key (`auto` = offline)."""
    home = root / "wandb-home"
    values = {"NETRC": str(home / "netrc"), "WANDB_SILENT": "true"}
    for var, sub in (("WANDB_DIR", "dir"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data"),
                     ("WANDB_CONFIG_DIR", "config"), ("WANDB_ARTIFACT_DIR", "artifacts")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        values[var] = str(home / sub)
    return values


def wandb_confined_env(root: Path) -> dict[str, str]:
    """This process's environment for a subprocess, with W&B confined to `root`."""
    env = {k: v for k, v in os.environ.items() if k not in WANDB_CALLER_VARS}
    env.update(wandb_confined_vars(root))
    return env


def wait_for(predicate, timeout: float, what: str, poll_s: float = 0.2) -> None:
    """Poll `predicate` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll_s)


def scancel_and_collect(proc: subprocess.Popen, job: str, timeout: float) -> tuple[str, float]:
    """`scancel` a launched job, then the launcher's output and how many seconds after the scancel
    it returned."""
    subprocess.run(["scancel", job], check=True)
    cancelled = time.monotonic()
    output, _ = proc.communicate(timeout=timeout)
    return output, time.monotonic() - cancelled
