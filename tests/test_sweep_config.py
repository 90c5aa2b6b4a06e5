"""The sweep's configs: composition, the structured schema, validation messages, cell identity."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from editsweep.config_schema import (
    ConfigError,
    cell_id,
    cell_subdir,
    identity,
    register_configs,
    validate_config,
)

CONF = Path(__file__).resolve().parents[1] / "conf"
register_configs()


def make(*overrides: str, hydra: bool = False):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def test_default_config_composes_and_validates() -> None:
    cfg = make()
    validate_config(cfg)
    assert cfg.model.name and cfg.method.name == "none" and cfg.regime.name.value == "instant"
    assert cell_subdir(cfg).startswith("small_llama-none-instant-reliability-s0-")


def test_primary_config_holds_no_launcher_keys() -> None:
    primary = yaml.safe_load((CONF / "config.yaml").read_text())
    assert "launcher" not in (primary.get("hydra") or {})


@pytest.mark.parametrize("launcher", sorted(p.stem for p in (CONF / "hydra" / "launcher").glob("*.yaml")))
def test_every_launcher_option_composes(launcher: str) -> None:
    cfg = make(f"hydra/launcher={launcher}", hydra=True)
    target = cfg.hydra.launcher._target_
    assert target.startswith("hydra_plugins.editsweep_launcher.launcher.Editsweep")
    assert cfg.hydra.sweep.subdir == cell_subdir(cfg)


@pytest.mark.parametrize("method", sorted(p.stem for p in (CONF / "method").glob("*.yaml")))
@pytest.mark.parametrize("regime", ["instant", "sequential"])
def test_every_method_validates_for_the_small_model(method: str, regime: str) -> None:
    validate_config(make(f"method={method}", f"regime={regime}"))


def test_cell_identity_ignores_how_and_where_but_not_what() -> None:
    base = make()
    same = make("tracking=disabled", "sweep.name=other", "runtime.device=cpu", "sandbox.workers=3", "seed=0",
                "generation.token_budget=4096", "generation.kv_layout=shared", "hydra/launcher=slurm")
    assert cell_id(base) == cell_id(same)
    for change in ("seed=1", "generation.temperature=0.7", "subset=generalization", "model=tiny_llama",
                   "method=rome", "data=humaneval_mbpp", "subset.max_problems_per_api=2"):
        assert cell_id(make(change)) != cell_id(base), change
    assert "tracking" not in identity(base) and "sweep" not in identity(base)


def test_only_this_models_hyperparameters_are_part_of_the_identity() -> None:
    base = make("method=rome")
    assert cell_id(make("method=rome", "+method.per_model.codellama_7b.v_lr=0.9")) == cell_id(base)
    assert cell_id(make("method=rome", "+method.per_model.small_llama.v_lr=0.9")) != cell_id(base)
    assert cell_id(make("method=rome", "method.hparams.v_lr=0.9")) != cell_id(base)
    assert identity(base)["method"]["hparams"]["layers"] == [1]  # small_llama's per_model value


def test_retraining_the_small_model_makes_new_cells(monkeypatch) -> None:
    """Cells on the project's own small model carry its training key: a new corpus, recipe or
    training code gives new cells instead of results of the old weights; hub models do not change."""
    from editsweep import config_schema
    from editsweep.models import small

    small_cell, hub_cell = make("method=rome"), make("method=rome", "model=codellama_7b")
    assert identity(small_cell)["model"]["weights"] == small.small_model_key("llama", small.SmallRecipe())[:16]
    assert "weights" not in identity(hub_cell)["model"]
    before = cell_id(small_cell), cell_id(hub_cell)
    config_schema.trained_weights_key.cache_clear()
    monkeypatch.setattr(small, "RECIPE_CODE_VERSION", small.RECIPE_CODE_VERSION + 1)
    try:
        assert cell_id(small_cell) != before[0] and cell_id(hub_cell) == before[1]
    finally:
        config_schema.trained_weights_key.cache_clear()


def test_baseline_is_one_cell_whatever_the_regime() -> None:
    instant = make("method=none", "regime=instant")
    sequential = make("method=none", "regime=sequential")
    assert cell_subdir(instant) == cell_subdir(sequential)
    assert cell_subdir(make("method=rome", "regime=instant")) != cell_subdir(make("method=rome", "regime=sequential"))
    assert "-sequential-" in cell_subdir(make("method=rome", "regime=sequential"))


def test_cell_subdir_is_readable_and_deterministic() -> None:
    subdir = cell_subdir(make("method=rome", "regime=sequential", "subset=specificity", "seed=3"))
    assert subdir.startswith("small_llama-rome-sequential-specificity-s3-")
    assert subdir == cell_subdir(make("seed=3", "subset=specificity", "regime=sequential", "method=rome"))


@pytest.mark.parametrize("override, message", [
    ("regime.eval_everyy=3", "eval_everyy"),
    ("regime.eval_every=often", "regime.eval_every"),
    ("tracking.mode=sometimes", "tracking.mode"),
    ("seed=zero", "seed"),
    ("model=no_such_model", "no_such_model"),
])
def test_bad_keys_and_types_fail_while_composing(override: str, message: str) -> None:
    with pytest.raises((ConfigCompositionException, ValidationError)) as info:
        make(override)
    assert message in str(info.value) + str(info.value.__cause__)


@pytest.mark.parametrize("overrides, message", [
    (["regime=sequential", "regime.eval_every=0"], "regime.eval_every: must be >= 1, got 0"),
    (["regime.max_apis=0"], "regime.max_apis"),
    (["subset.max_problems_per_api=0"], "subset.max_problems_per_api"),
    (["sandbox.timeout_s=0"], "sandbox.timeout_s"),
    (["sweep.name=a/b"], "sweep.name"),
    (["runtime.device=tpu"], "runtime.device"),
    (["seed=-1"], "seed"),
    (["method=rome", "+method.hparams.no_such_hparam=1"], "no_such_hparam"),
    (["method=rome", "method.per_model.small_llama.layers=[9]"], "[9] but the model has 4 layers"),
    (["method=memit", "model=codellama_7b", "method.hparams.layers=[3,40]"], "[3, 40] but the model has 32 layers"),
    (["generation.temperature=-1"], "generation"),
    (["+generation.bogus=1"], "bogus"),
    (["+regime.eval_everyy=3"], "regime.eval_everyy: unknown key"),
    (["+sweep.nmae=x"], "sweep.nmae: unknown key"),
    (["+method.hparam.lr=1"], "method.hparam: unknown key"),
    (["+foo=1"], "foo: unknown top-level key"),
])
def test_bad_values_fail_validation_naming_the_key(overrides: list, message: str) -> None:
    cfg = make(*overrides)
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    assert message in str(info.value)


def test_hydra_dirs_follow_the_sweep_name() -> None:
    cfg = make("sweep.name=paper", "sweep.root=/data/sweeps", hydra=True)
    assert cfg.hydra.sweep.dir == "/data/sweeps/paper"
    assert cfg.hydra.run.dir == f"/data/sweeps/paper/{cell_subdir(cfg)}"
    assert OmegaConf.select(cfg, "hydra.job.chdir") is False
