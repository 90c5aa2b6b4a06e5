"""`GenerationConfig`: the sampling settings of `conf/generation/*.yaml`, validated in one place.

The dataclass mirrors the YAML keys one for one, so a Hydra node, a plain dict or keyword
arguments all build the same object, and a misspelt key is an error rather than a silent default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

__all__ = ["GenerationConfig", "STOP_MODES", "KV_LAYOUTS", "default_config_path"]

STOP_MODES = ("strings", "dedent", "none")
KV_LAYOUTS = ("shared", "expand")


def default_config_path() -> Path:
    """`conf/generation/default.yaml` of this checkout (the sweep's default generation group)."""
    return Path(__file__).resolve().parents[2] / "conf" / "generation" / "default.yaml"


@dataclass(frozen=True)
class GenerationConfig:
    """How completions are sampled. Defaults equal `conf/generation/default.yaml`.

    Sampling: `temperature` 0 means greedy; `top_p` < 1 keeps the smallest set of most likely
    tokens whose mass reaches top_p; `top_k` > 0 keeps the k most likely (0 = off).
    Stopping: `stop_mode` "strings" cuts at the per-source stop strings (or `stop_strings` when
    given), "dedent" at the first line that starts in column 0, "none" only at EOS (or nowhere
    with `ignore_eos`, which benchmarks use to get exactly `max_new_tokens` per sequence).
    Memory and speed: `token_budget` caps the KV-cache tokens of one batch ("auto" sizes it from
    the free GPU memory times `memory_fraction`; on CPU `cpu_token_budget` applies);
    `kv_layout` "expand" copies the prompt cache n times after one prefill (SDPA attention;
    the faster one on the H200), "shared" keeps one prompt cache per problem that its n
    samples read (1/n of the prompt memory; matmul attention); `cuda_graphs` replays each decode step as a CUDA graph;
    `kv_bucket` is the granularity (tokens) at which attention grows over the generated part;
    `check_every` is how many steps run between host checks for stop strings.
    """

    n_samples: int = 5
    temperature: float = 0.2
    top_p: float = 0.95
    top_k: int = 0
    max_new_tokens: int = 256
    seed: int = 0
    stop_mode: str = "strings"
    stop_strings: tuple[str, ...] | None = None
    ignore_eos: bool = False
    prompt_styles: Mapping[str, str] = field(default_factory=lambda: {"mbpp": "tests_docstring"})
    max_prompt_tokens: int = 2048
    token_budget: int | str = "auto"
    cpu_token_budget: int = 65536
    memory_fraction: float = 0.9
    max_batch_sequences: int = 1024
    prefill_chunk_tokens: int = 8192
    check_every: int = 16
    kv_layout: str = "expand"
    cuda_graphs: bool = True
    kv_bucket: int = 64

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.n_samples, int) or self.n_samples < 1:
            problems.append(f"n_samples must be an integer >= 1, got {self.n_samples!r}")
        if not (isinstance(self.temperature, (int, float)) and self.temperature >= 0):
            problems.append(f"temperature must be >= 0, got {self.temperature!r}")
        if not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            problems.append(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            problems.append(f"top_k must be an integer >= 0, got {self.top_k!r}")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            problems.append(f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
        if not isinstance(self.seed, int):
            problems.append(f"seed must be an integer, got {self.seed!r}")
        if self.stop_mode not in STOP_MODES:
            problems.append(f"stop_mode must be one of {STOP_MODES}, got {self.stop_mode!r}")
        if self.stop_strings is not None and (
            isinstance(self.stop_strings, str) or not all(isinstance(s, str) and s for s in self.stop_strings)
        ):
            problems.append(f"stop_strings must be a list of non-empty strings or null, got {self.stop_strings!r}")
        if not isinstance(self.max_prompt_tokens, int) or self.max_prompt_tokens < 1:
            problems.append(f"max_prompt_tokens must be an integer >= 1, got {self.max_prompt_tokens!r}")
        if self.token_budget != "auto" and not (isinstance(self.token_budget, int) and self.token_budget > 0):
            problems.append(f"token_budget must be 'auto' or a positive integer, got {self.token_budget!r}")
        if not isinstance(self.cpu_token_budget, int) or self.cpu_token_budget < 1:
            problems.append(f"cpu_token_budget must be a positive integer, got {self.cpu_token_budget!r}")
        if not (isinstance(self.memory_fraction, (int, float)) and 0 < self.memory_fraction <= 1):
            problems.append(f"memory_fraction must be in (0, 1], got {self.memory_fraction!r}")
        for name in ("max_batch_sequences", "prefill_chunk_tokens", "check_every", "kv_bucket"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if self.kv_layout not in KV_LAYOUTS:
            problems.append(f"kv_layout must be one of {KV_LAYOUTS}, got {self.kv_layout!r}")
        if problems:
            raise ValueError("invalid generation config: " + "; ".join(problems))
        if self.stop_strings is not None:
            object.__setattr__(self, "stop_strings", tuple(self.stop_strings))
        object.__setattr__(self, "prompt_styles", dict(self.prompt_styles))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> "GenerationConfig":
        """Build from a YAML/Hydra mapping; unknown keys are an error naming them."""
        merged = {**dict(values or {}), **overrides}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ValueError(f"unknown generation config keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        if merged.get("stop_strings") is not None:
            merged["stop_strings"] = tuple(merged["stop_strings"])
        if merged.get("prompt_styles") is not None:
            merged["prompt_styles"] = dict(merged["prompt_styles"])
        return cls(**merged)

    @classmethod
    def from_yaml(cls, path: str | Path | None = None, **overrides: Any) -> "GenerationConfig":
        """Load `conf/generation/<name>.yaml` (default.yaml when `path` is None), without Hydra.

        A Hydra `defaults:` list naming sibling files of the same group is honoured (they are
        loaded first, this file's keys override them), so `greedy.yaml` reads as Hydra reads it.
        """
        path = Path(path) if path is not None else default_config_path()
        return cls.from_mapping(_load_group_file(path), **overrides)

    def replace(self, **changes: Any) -> "GenerationConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if data["stop_strings"] is not None:
            data["stop_strings"] = list(data["stop_strings"])
        return data


def _load_group_file(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    import yaml

    if path in seen:
        raise ValueError(f"{path}: circular defaults list ({' -> '.join(map(str, seen + (path,)))})")
    with open(path, encoding="utf-8") as handle:
        values = yaml.safe_load(handle) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of generation settings, got {type(values).__name__}")
    merged: dict[str, Any] = {}
    for entry in values.pop("defaults", None) or []:
        if entry == "_self_":
            continue
        if not isinstance(entry, str):
            raise ValueError(f"{path}: only sibling names are supported in its defaults list, got {entry!r}")
        merged.update(_load_group_file(path.with_name(f"{entry}.yaml"), seen + (path,)))
    merged.update(values)
    return merged
