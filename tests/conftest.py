"""Shared fixtures. Keep this small and general: each fixture names the real thing it provides."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import WANDB_CALLER_VARS, wandb_confined_vars

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """The local single-node Slurm cluster (slurm/up.sh, idempotent). Fails, never skips, when it
    cannot start: `make test` installs Slurm, so a missing Slurm is a broken setup."""
    proc = subprocess.run(["bash", str(REPO_ROOT / "slurm" / "up.sh")], capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        pytest.fail(f"slurm/up.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stderr.strip().splitlines()[-1]


@pytest.fixture
def wandb_offline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Real wandb, writing only under tmp_path, with no API key (so `auto` means offline)."""
    for var in WANDB_CALLER_VARS:
        monkeypatch.delenv(var, raising=False)
    for var, value in wandb_confined_vars(tmp_path).items():
        monkeypatch.setenv(var, value)
    return tmp_path / "wandb-home"
