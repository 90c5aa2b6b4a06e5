"""The sweep's structured config: typed schema, explicit validation, and the cell identity.

Hydra merges every YAML file of `conf/` into the dataclasses below (registered in the
ConfigStore as `editsweep_schema`), so an unknown key or a value of the wrong type fails while
the config is composed, before any cell is submitted. `validate_config` adds the checks a type
cannot express (ranges, cross-field rules, the method's hyperparameters for this model, the
generation settings) and names the offending key in its message.

The cell identity is a hash of the resolved config without the keys that only say *how* or
*where* a cell runs (launcher, tracking, sweep location, runtime), so relaunching a sweep finds
the same cell directories. The readable subdir puts model, method, regime, subset and seed in
front of that hash. The unedited baseline (`method=none`) makes no edit, so every regime gives
the same numbers: it is normalised to the instant regime and its cell is shared.

A cell on one of the project's own small models also carries that model's training key, so
retraining it (new corpus, recipe or training code) starts new cells instead of reusing old ones.

This module is imported by `launch.py`, the launcher plugin and the CLI; it imports only
omegaconf/hydra at module level.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from omegaconf import MISSING, DictConfig, OmegaConf

#: the method name of the unedited baseline
BASELINE_METHOD = "none"
#: top-level keys that do not change what a cell computes
NON_IDENTITY_KEYS = ("hydra", "tracking", "sweep", "runtime")
#: keys that only change speed or memory use, not what is computed (so tuning them keeps the cells)
NON_IDENTITY_PATHS = (
    "sandbox.workers", "data.cache_dir",
    "generation.token_budget", "generation.cpu_token_budget", "generation.memory_fraction",
    "generation.max_batch_sequences", "generation.prefill_chunk_tokens", "generation.check_every",
    "generation.kv_layout", "generation.cuda_graphs", "generation.kv_bucket",
)
#: regime keys that do not matter for the baseline (it runs under the instant regime)
SEQUENTIAL_ONLY_KEYS = ("eval_every", "order_seed")
CELL_ID_LENGTH = 16


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and what is expected."""


class RegimeName(str, Enum):
    instant = "instant"
    sequential = "sequential"


class SubsetName(str, Enum):
    reliability = "reliability"
    generalization = "generalization"
    specificity = "specificity"
    all = "all"


class TrackingMode(str, Enum):
    auto = "auto"          # online when a W&B API key is configured, else offline
    online = "online"
    offline = "offline"
    disabled = "disabled"


@dataclass
class SweepConf:
    """Where the sweep lives: `<root>/<name>/<cell subdir>/`; a fixed name makes reruns resume."""

    name: str = "default"
    root: str = "sweeps"


@dataclass
class RegimeConf:
    name: RegimeName = RegimeName.instant
    #: sequential: evaluate after every `eval_every` edits (and after the last one)
    eval_every: int = 1
    #: sequential: seed of the edit order (null: the cell's `seed`)
    order_seed: Optional[int] = None
    #: use only the first N APIs of the benchmark (in catalog order); null: all
    max_apis: Optional[int] = None
    #: instant: compare every parameter with the original after each restore
    check_restore: bool = True


@dataclass
class SubsetConf:
    name: SubsetName = SubsetName.reliability
    #: at most N problems per API and subset (first N by problem id), for small runs; the edit
    #: requests come from the kept reliability problems; null: all
    max_problems_per_api: Optional[int] = None
    #: evaluate at most N specificity problems at each step (first N by problem id); null: all
    max_specificity: Optional[int] = None


@dataclass
class MethodConf:
    """Layout owned by editsweep.editing: shared hyperparameters plus per-model overrides."""

    name: str = MISSING
    hparams: Dict[str, Any] = field(default_factory=dict)
    per_model: Dict[str, Dict[str, Any]] = field(default_factory=dict)


@dataclass
class SandboxConf:
    """Execution of the generated samples (editsweep.sandbox)."""

    #: worker processes; null: one per CPU available to the cell
    workers: Optional[int] = None
    #: run without firejail (development only; the sandbox says so loudly)
    no_jail: bool = False
    #: wall-clock limit per sample
    timeout_s: float = 10.0
    #: address-space limit per sample
    memory_mb: int = 1024


@dataclass
class TrackingConf:
    mode: TrackingMode = TrackingMode.auto
    project: str = "editsweep"
    entity: Optional[str] = None
    #: W&B server; null: WANDB_BASE_URL or the library default
    base_url: Optional[str] = None
    #: where the run files go; null: the cell directory
    dir: Optional[str] = None
    #: seconds allowed for the reachability check before an online run
    reachability_timeout_s: float = 3.0
    #: log the per-sample table at the end of the cell
    log_samples: bool = True
    tags: List[str] = field(default_factory=list)


@dataclass
class RuntimeConf:
    """How and where a cell runs; not part of the cell identity."""

    #: auto: cuda when available, else cpu
    device: str = "auto"
    #: model dtype; null: bf16 on GPU, fp32 on CPU (the loader's default)
    dtype: Optional[str] = None
    #: torch CPU threads; null: the CPUs of the cell (Slurm's allocation or the process affinity)
    threads: Optional[int] = None
    #: tqdm progress bars
    progress: bool = True
    log_level: str = "INFO"


@dataclass
class EditsweepConf:
    # groups owned by other parts keep their own layout; validate_config checks them
    model: Any = MISSING
    method: MethodConf = MISSING
    regime: RegimeConf = field(default_factory=RegimeConf)
    subset: SubsetConf = field(default_factory=SubsetConf)
    data: Any = MISSING
    generation: Any = MISSING
    sandbox: SandboxConf = field(default_factory=SandboxConf)
    tracking: TrackingConf = field(default_factory=TrackingConf)
    sweep: SweepConf = field(default_factory=SweepConf)
    runtime: RuntimeConf = field(default_factory=RuntimeConf)
    seed: int = 0


def register_configs() -> None:
    """Store the schema (`editsweep_schema`) and the `cell_subdir` resolver; safe to call twice."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="editsweep_schema", node=EditsweepConf)
    if not OmegaConf.has_resolver("editsweep_cell_subdir"):
        OmegaConf.register_new_resolver("editsweep_cell_subdir", _cell_subdir_resolver)


def _cell_subdir_resolver(*, _root_: DictConfig) -> str:
    return cell_subdir(_root_)


# --- identity ------------------------------------------------------------------------------------

def _plain(cfg: Any) -> Any:
    if OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True, throw_on_missing=True)
    return cfg


def is_baseline(cfg: Any) -> bool:
    return str(_select(cfg, "method.name")) == BASELINE_METHOD


def identity(cfg: Any) -> Dict[str, Any]:
    """The resolved config that defines what a cell computes (see the module doc)."""
    keys = [k for k in cfg.keys() if k not in NON_IDENTITY_KEYS]
    ident = {k: _plain(cfg[k]) for k in sorted(keys)}
    for path in NON_IDENTITY_PATHS:
        section, _, key = path.partition(".")
        if isinstance(ident.get(section), dict):
            ident[section].pop(key, None)
    method, model = ident.get("method"), ident.get("model")
    if isinstance(method, dict) and isinstance(model, dict) and "name" in model:
        # only this model's hyperparameters: editing another model's per_model entry keeps this cell
        hparams = dict(method.get("hparams") or {})
        hparams.update((method.get("per_model") or {}).get(model_key(model)) or {})
        ident["method"] = {k: v for k, v in method.items() if k not in ("hparams", "per_model")}
        ident["method"]["hparams"] = hparams
    if isinstance(model, dict) and model.get("path") is None:
        weights = trained_weights_key(str(model.get("name", "")))
        if weights is not None:  # retraining the project's small model must not reuse old cells
            ident["model"] = {**model, "weights": weights}
    if is_baseline(cfg) and isinstance(ident.get("regime"), dict):
        regime = {k: v for k, v in ident["regime"].items() if k not in SEQUENTIAL_ONLY_KEYS}
        regime["name"] = RegimeName.instant.value
        ident["regime"] = regime
    return ident


@functools.lru_cache(maxsize=8)
def trained_weights_key(name: str) -> Optional[str]:
    """The training key of a model the project trains itself (`small:<arch>`: a hash of its
    training texts, recipe and training code), which decides its weights; None for other models."""
    prefix, _, arch = name.partition(":")
    if prefix != "small" or not arch:
        return None
    from editsweep.models.small import small_model_key
    from editsweep.models.training import SmallRecipe

    return small_model_key(arch, SmallRecipe())[:16]


def model_key(model: Any) -> str:
    """The model's config name, the key of a method's `per_model` table (`small:llama` -> `small_llama`)."""
    key = model.get("key") or str(model["name"]).replace(":", "_").replace("/", "_")
    return str(key)


def cell_id(cfg: Any) -> str:
    payload = json.dumps(identity(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(payload.encode()).hexdigest()[:CELL_ID_LENGTH]


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "_", str(value)).strip("_") or "x"


def cell_labels(cfg: Any) -> Dict[str, str]:
    """The facet values of a cell (model, method, regime, subset, data, seed), as plain strings."""
    regime = RegimeName.instant.value if is_baseline(cfg) else _select(cfg, "regime.name")
    return {
        "model": str(_select(cfg, "model.name")),
        "method": str(_select(cfg, "method.name")),
        "regime": _enum_value(regime),
        "subset": _enum_value(_select(cfg, "subset.name")),
        "data": str(_select(cfg, "data.name", default="data")),
        "seed": str(_select(cfg, "seed")),
    }


def cell_subdir(cfg: Any) -> str:
    """`<model>-<method>-<regime>-<subset>-s<seed>-<cell id>`: readable and deterministic."""
    labels = cell_labels(cfg)
    parts = [labels["model"], labels["method"], labels["regime"], labels["subset"], f"s{labels['seed']}"]
    return "-".join(_slug(p) for p in parts) + "-" + cell_id(cfg)


def _enum_value(value: Any) -> str:
    return str(value.value if isinstance(value, Enum) else value)


def _select(cfg: Any, key: str, default: Any = MISSING) -> Any:
    node: Any = cfg
    for part in key.split("."):
        try:
            node = node[part]
        except (KeyError, TypeError, AttributeError) as exc:
            if default is not MISSING:
                return default
            raise ConfigError(f"config has no '{key}' (needed to name the cell)") from exc
        if node is None and default is not MISSING:
            return default
    return node


# --- validation ----------------------------------------------------------------------------------

def _require(condition: bool, key: str, message: str, value: Any) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}, got {value!r}")


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first invalid key; the config itself is not changed."""
    plain: Dict[str, Any] = {}
    for key in cfg.keys():
        if key == "hydra":  # Hydra's own node (present in the launcher's view) is not ours to check
            continue
        try:
            plain[key] = _plain(cfg[key])
        except Exception as exc:  # MissingMandatoryValue, InterpolationResolutionError, ...
            raise ConfigError(f"{key}: does not resolve: {exc}") from exc
    _reject_unknown_keys(plain)

    _require(isinstance(plain.get("seed"), int) and plain["seed"] >= 0, "seed", "must be an integer >= 0", plain.get("seed"))
    regime = plain["regime"]
    _require(regime["eval_every"] >= 1, "regime.eval_every", "must be >= 1", regime["eval_every"])
    for key in ("max_apis",):
        _require(regime[key] is None or regime[key] >= 1, f"regime.{key}", "must be null or >= 1", regime[key])
    subset = plain["subset"]
    for key in ("max_problems_per_api", "max_specificity"):
        _require(subset[key] is None or subset[key] >= 1, f"subset.{key}", "must be null or >= 1", subset[key])
    sandbox = plain["sandbox"]
    _require(sandbox["workers"] is None or sandbox["workers"] >= 1, "sandbox.workers", "must be null or >= 1", sandbox["workers"])
    _require(sandbox["timeout_s"] > 0, "sandbox.timeout_s", "must be > 0", sandbox["timeout_s"])
    _require(sandbox["memory_mb"] >= 64, "sandbox.memory_mb", "must be >= 64", sandbox["memory_mb"])
    tracking = plain["tracking"]
    _require(tracking["reachability_timeout_s"] > 0, "tracking.reachability_timeout_s", "must be > 0",
             tracking["reachability_timeout_s"])
    _require(bool(re.fullmatch(r"[A-Za-z0-9._-]+", plain["sweep"]["name"])), "sweep.name",
             "must be a non-empty name of letters, digits, '.', '_' or '-'", plain["sweep"]["name"])
    runtime = plain["runtime"]
    _require(bool(re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", runtime["device"])), "runtime.device",
             "must be auto, cpu, cuda, cuda:N or mps", runtime["device"])
    _require(runtime["threads"] is None or runtime["threads"] >= 1, "runtime.threads", "must be null or >= 1",
             runtime["threads"])
    _require(runtime["log_level"].upper() in ("DEBUG", "INFO", "WARNING", "ERROR"), "runtime.log_level",
             "must be DEBUG, INFO, WARNING or ERROR", runtime["log_level"])

    model = plain.get("model")
    _require(isinstance(model, dict) and isinstance(model.get("name"), str) and model["name"], "model.name",
             "every model config needs a non-empty 'name'", model)
    _require(isinstance(plain.get("data"), dict), "data", "must be a mapping (a conf/data/*.yaml choice)", plain.get("data"))
    _require(isinstance(plain.get("generation"), dict), "generation", "must be a mapping (a conf/generation/*.yaml choice)",
             plain.get("generation"))
    _validate_parts(plain)


def _reject_unknown_keys(plain: Dict[str, Any]) -> None:
    """Hydra's `+key=value` bypasses the schema's struct mode; catch such keys here."""
    import dataclasses

    top = {f.name: f for f in dataclasses.fields(EditsweepConf)}
    for key in plain:
        if key not in top:
            raise ConfigError(f"{key}: unknown top-level key (known: {', '.join(sorted(top))})")
    for name, fld in top.items():
        kind = fld.type if isinstance(fld.type, type) else globals().get(str(fld.type))
        if not (isinstance(kind, type) and dataclasses.is_dataclass(kind)) or not isinstance(plain.get(name), dict):
            continue
        known = {f.name for f in dataclasses.fields(kind)}
        unknown = sorted(set(plain[name]) - known)
        if unknown:
            raise ConfigError(f"{name}.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")


def _validate_parts(plain: Dict[str, Any]) -> None:
    """Let each part check its own section with its own constructors (named in the error)."""
    from editsweep.cell import resolve_generation_config, resolve_method_hparams

    method, model = plain["method"], plain["model"]
    try:
        hparams = resolve_method_hparams(method, model)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"method.hparams (method={method['name']}, model={model['name']}): {exc}") from exc
    n_layers = model.get("n_layers")
    layers = hparams.get("layers")
    layers = [layers] if isinstance(layers, int) else list(layers or [])
    if isinstance(n_layers, int) and any(not isinstance(x, int) or x >= n_layers for x in layers):
        raise ConfigError(f"method.hparams.layers (method={method['name']}, model={model['name']}): {layers} "
                          f"but the model has {n_layers} layers (set per_model in conf/method/{method['name']}.yaml)")
    try:
        resolve_generation_config(plain["generation"])
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"generation: {exc}") from exc
