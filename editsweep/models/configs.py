"""Configs built locally, with no download: the paper's three 7B models and tiny test models.

`known_config` rebuilds each paper model's `config.json` from its published values, so GPU
benchmarks can instantiate a 7B architecture with random weights (`build_random_model`) and the
loader can assert that a downloaded checkpoint is the model we think it is (`ESSENTIAL_KEYS`).
`tiny_config` is the test fixture of notes §9: intermediate size ≠ hidden size (a transposed
update would go unnoticed otherwise), grouped-query attention, untied head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ESSENTIAL_KEYS",
    "KNOWN_MODELS",
    "KnownModel",
    "build_random_model",
    "known_config",
    "known_model_for_hub_id",
    "tiny_config",
]


@dataclass(frozen=True)
class KnownModel:
    """A paper model: its hub id and the values of its `config.json`."""

    key: str
    hub_id: str
    model_type: str
    values: dict[str, Any] = field(default_factory=dict)


# Values of each checkpoint's config.json (notes §2). rope_parameters is the transformers-5
# spelling of rope_theta + rope_scaling.
KNOWN_MODELS: dict[str, KnownModel] = {
    "codellama_7b": KnownModel(
        key="codellama_7b",
        hub_id="codellama/CodeLlama-7b-hf",
        model_type="llama",
        values=dict(
            num_hidden_layers=32,
            hidden_size=4096,
            intermediate_size=11008,
            num_attention_heads=32,
            num_key_value_heads=32,
            max_position_embeddings=16384,
            vocab_size=32016,
            rms_norm_eps=1e-5,
            rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
            bos_token_id=1,
            eos_token_id=2,
            tie_word_embeddings=False,
            attention_bias=False,
        ),
    ),
    "deepseek_coder_6_7b": KnownModel(
        key="deepseek_coder_6_7b",
        hub_id="deepseek-ai/deepseek-coder-6.7b-base",
        model_type="llama",
        values=dict(
            num_hidden_layers=32,
            hidden_size=4096,
            intermediate_size=11008,
            num_attention_heads=32,
            num_key_value_heads=32,
            max_position_embeddings=16384,
            vocab_size=32256,
            rms_norm_eps=1e-6,
            rope_parameters={"rope_type": "linear", "factor": 4.0, "rope_theta": 100_000.0},
            bos_token_id=32013,
            eos_token_id=32014,
            tie_word_embeddings=False,
            attention_bias=False,
        ),
    ),
    "codeqwen15_7b": KnownModel(
        key="codeqwen15_7b",
        hub_id="Qwen/CodeQwen1.5-7B",
        model_type="qwen2",  # q/k/v biases are built in by the Qwen2 modules
        values=dict(
            num_hidden_layers=32,
            hidden_size=4096,
            intermediate_size=13440,
            num_attention_heads=32,
            num_key_value_heads=4,
            max_position_embeddings=65536,
            vocab_size=92416,
            rms_norm_eps=1e-5,
            rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
            bos_token_id=2,
            eos_token_id=2,
            tie_word_embeddings=False,
            use_sliding_window=False,
            sliding_window=65536,
            max_window_layers=28,
        ),
    ),
}

# What the loader asserts on a downloaded known checkpoint: the shapes editors depend on.
ESSENTIAL_KEYS: tuple[str, ...] = (
    "model_type",
    "num_hidden_layers",
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "max_position_embeddings",
    "vocab_size",
)


def _config_class(model_type: str):
    from transformers import LlamaConfig, Qwen2Config

    classes = {"llama": LlamaConfig, "qwen2": Qwen2Config}
    if model_type not in classes:
        from editsweep.models.arch import SUPPORTED_MODEL_TYPES

        raise ValueError(
            f"no config class for model_type {model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return classes[model_type]


def known_config(name: str, **overrides: Any):
    """The transformers config of paper model `name` (a key of KNOWN_MODELS), with overrides."""
    if name not in KNOWN_MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(KNOWN_MODELS)}")
    known = KNOWN_MODELS[name]
    values = {**known.values, **overrides}
    config = _config_class(known.model_type)(**values)
    config.architectures = [
        {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}[known.model_type]
    ]
    config._name_or_path = known.hub_id
    return config


def known_model_for_hub_id(hub_id: str) -> KnownModel | None:
    """The KnownModel whose hub id is `hub_id` (case-insensitive), else None."""
    for known in KNOWN_MODELS.values():
        if known.hub_id.lower() == hub_id.strip("/").lower():
            return known
    return None


def tiny_config(arch: str, **overrides: Any):
    """A 4-layer test model config for `arch` ('llama' or 'qwen2'), matching the local tokenizer.

    hidden 64, intermediate 160 (≠ hidden), 4 heads / 2 kv heads, untied lm_head; the vocab and
    special-token ids are those of `editsweep.models.tokenizer` for the same architecture.
    """
    from editsweep.models.tokenizer import special_token_ids, VOCAB_SIZE

    config_class = _config_class(arch)
    ids = special_token_ids(arch)
    values: dict[str, Any] = dict(
        num_hidden_layers=4,
        hidden_size=64,
        intermediate_size=160,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        vocab_size=VOCAB_SIZE,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 10_000.0},
        tie_word_embeddings=False,
        bos_token_id=ids["bos"],
        eos_token_id=ids["eos"],
        pad_token_id=ids["pad"],
    )
    if arch == "qwen2":
        values.update(use_sliding_window=False, sliding_window=None)
    values.update(overrides)
    config = config_class(**values)
    config.architectures = [{"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}[arch]]
    return config


def build_random_model(name: str, dtype: Any = "bfloat16", device: Any = "cuda", seed: int = 0, **overrides: Any):
    """A paper model's architecture with random weights (no download), for GPU benchmarks.

    Weights are created directly on `device` in `dtype` (a torch dtype or its name); `overrides`
    change config values (e.g. `num_hidden_layers=2` for a quick CPU check). Eval mode, SDPA.
    """
    import torch
    from transformers import AutoModelForCausalLM

    torch_dtype = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not isinstance(torch_dtype, torch.dtype):
        raise ValueError(f"dtype must be a torch dtype or its name, got {dtype!r}")
    config = known_config(name, **overrides)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype, attn_implementation="sdpa")
    return model.eval()
