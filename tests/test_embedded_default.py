"""The embedded default (`python launch.py` with no arguments) and the report written after a sweep.

The grid itself is checked by composing the experiment the empty command line stands for; the
end-to-end test runs that experiment through `python launch.py` on a reduced grid (the baseline
and FT, both regimes, all three subsets in one cell) with the real small model, sandbox and
offline W&B, and reads the report it writes. A second launch with a cell that fails checks that
the report is written anyway and the exit code says the sweep failed.
"""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from helpers import wandb_confined_env

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


def load_launch_module():
    spec = importlib.util.spec_from_file_location("launch_under_test", REPO / "launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compose_with_hydra(overrides: list) -> object:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def run_launch(root: Path, *arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "launch.py", *arguments], cwd=REPO, env=wandb_confined_env(root),
                          capture_output=True, text=True, timeout=timeout)


def read_csv(path: Path) -> list:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_no_arguments_mean_the_embedded_default() -> None:
    launch = load_launch_module()
    assert launch.hydra_arguments([]) == ["+experiment=embedded_default"]
    assert launch.hydra_arguments(["-m", "method=rome"]) == ["-m", "method=rome"]


def test_embedded_default_is_the_full_small_grid() -> None:
    cfg = compose_with_hydra(["+experiment=embedded_default"])
    assert cfg.hydra.mode.name == "MULTIRUN"
    params = {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}
    methods = sorted(p.stem for p in (CONF / "method").glob("*.yaml"))
    assert sorted(params["method"]) == methods == ["ft", "grace", "memit", "none", "pmet", "rome"]
    assert sorted(params["regime"]) == ["instant", "sequential"]
    assert params["subset"] == ["all"]  # one cell evaluates the three subsets
    assert cfg.model.name == "small:llama" and cfg.data.name == "demo"
    assert cfg.tracking.mode.value == "offline"
    assert cfg.hydra.launcher._target_.endswith("EditsweepLocalLauncher")
    assert cfg.hydra.callbacks.sweep_report.enabled is True


def test_command_line_axes_replace_the_grid_and_plain_runs_stay_single() -> None:
    """Hydra's sweeper puts command-line overrides after `hydra.sweeper.params`, so they win per key."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    cfg = compose_with_hydra(["+experiment=embedded_default"])
    params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
    parsed = OverridesParser.create().parse_overrides(params + ["method=rome,none", "subset=reliability,specificity"])
    cells = BasicSweeper.split_arguments(parsed, None)[0]
    assert sorted(" ".join(c) for c in cells) == sorted(
        f"method={m} regime={r} subset={s}" for m in ("rome", "none") for r in ("instant", "sequential")
        for s in ("reliability", "specificity"))
    # without the experiment the primary config is a plain single run (no mode, no grid)
    plain = compose_with_hydra(["method=rome"])
    assert plain.hydra.mode is None and not plain.hydra.sweeper.params


@pytest.mark.slow
def test_embedded_default_end_to_end_writes_a_non_trivial_report(tmp_path: Path) -> None:
    root = tmp_path / "sweeps"
    result = run_launch(tmp_path, "+experiment=embedded_default", "method=none,ft", f"sweep.root={root}",
                        "runtime.progress=false")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    sweep = root / "embedded_default"
    report = sweep / "report" / "report.md"
    assert f"report: {report}" in result.stdout
    # the baseline's sequential twin is its instant cell: 3 cells ran, not 4
    assert len(list(sweep.glob("*/result.json"))) == 3
    assert "same cell as" in result.stdout + result.stderr

    cells = read_csv(sweep / "report" / "tables" / "cells.csv")
    assert sorted((c["method"], c["regime"], c["state"]) for c in cells) == [
        ("ft", "instant", "done"), ("ft", "sequential", "done"), ("none", "instant", "done")]
    text = report.read_text()
    for heading in ("## RQ1", "## RQ2", "## RQ3", "## RQ4"):
        assert heading in text
    figures = sorted((sweep / "report" / "figures").glob("*.png"))
    assert {f.name.split("_small")[0] for f in figures} == {"rq1_instant", "rq2_sequential", "rq3_adoption",
                                                           "rq4_failures"}
    assert all(f.stat().st_size > 10_000 for f in figures)

    rq1 = {(r["method"], r["subset"]): r for r in read_csv(sweep / "report" / "tables" / "rq1_instant.csv")}
    # the unedited small model reproduces the demo solutions: high on specificity (no API removed),
    # and zero on the API problems, whose old API the environment has removed
    assert float(rq1[("none", "specificity")]["full@1"]) >= 60.0
    assert float(rq1[("none", "reliability")]["full@1"]) == 0.0
    adoption = read_csv(sweep / "report" / "tables" / "rq3_adoption.csv")
    baseline = {r["subset"]: r for r in adoption if r["method"] == "none"}
    assert float(baseline["reliability"]["adoption/legacy"]) == 100.0
    # FT teaches the new API: correct adoption appears on the API problems and legacy use drops
    ft = [r for r in adoption if r["method"] == "ft" and r["subset"] in ("reliability", "generalization")]
    assert len(ft) == 4
    assert sum(int(r["count/correct_adoption"]) for r in ft) > 0
    assert min(float(r["adoption/legacy"]) for r in ft) < 100.0


@pytest.mark.slow
def test_report_is_written_when_a_cell_fails(tmp_path: Path) -> None:
    root = tmp_path / "sweeps"
    # a prompt limit of 8 tokens fails the cell at its first generation, after the launch was accepted
    result = run_launch(tmp_path, "+experiment=embedded_default", "method=none", "regime=instant",
                        "subset=specificity", "generation.max_prompt_tokens=8", f"sweep.root={root}",
                        "sweep.name=failing", "runtime.progress=false", timeout=180)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    report = root / "failing" / "report" / "report.md"
    assert f"report: {report}" in result.stdout
    cells = read_csv(root / "failing" / "report" / "tables" / "cells.csv")
    assert [(c["method"], c["state"]) for c in cells] == [("none", "failed")]
    assert "max_prompt_tokens" in cells[0]["error"]
    assert "failed" in report.read_text()


def test_paper_preset_is_the_papers_grid_and_every_cell_validates() -> None:
    from editsweep.config_schema import validate_config

    cfg = compose_with_hydra(["+experiment=paper"])
    params = {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}
    assert sorted(params["model"]) == ["codellama_7b", "codeqwen15_7b", "deepseek_coder_6_7b"]
    assert sorted(params["method"]) == ["ft", "grace", "memit", "none", "pmet", "rome"]
    assert sorted(params["regime"]) == ["instant", "sequential"]
    assert sorted(params["subset"]) == ["generalization", "reliability", "specificity"]
    assert cfg.data.name == "humaneval_mbpp" and cfg.sweep.name == "paper"
    for model in params["model"]:
        for method in params["method"]:
            validate_config(compose_with_hydra(["+experiment=paper", f"model={model}", f"method={method}"]))
