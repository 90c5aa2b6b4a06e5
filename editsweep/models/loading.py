"""Load a model and its tokenizer by hub id, local path, paper-model key or project alias.

Accepted names:
- a paper-model key (`codellama_7b`, `deepseek_coder_6_7b`, `codeqwen15_7b`) or its hub id;
- a local `save_pretrained` directory;
- any other hub id of a supported architecture (see `editsweep.models.arch`);
- `small:llama`, `small:qwen2`: the project's small trained models (trained on first use);
- `tiny:llama`, `tiny:qwen2`: a 4-layer model with random weights (seed 0) and the local tokenizer.

Defaults: bf16 on GPU, fp32 on CPU; SDPA attention; eval mode. For paper models the essential
config values are asserted, so a wrong or altered checkpoint fails at load time.

Tokenizer conventions (the editors and generation rely on them):
- a pad token always exists: if the checkpoint has none, EOS is used as pad (attention masks,
  not pad ids, tell padding apart, so this is safe for generation and for scoring);
- padding side is **left**, as batched generation of decoder-only models needs; code that needs
  right padding (e.g. editors that index positions) sets it per call and restores it;
- BOS handling is left as the checkpoint defines it (CodeLlama/DeepSeek add BOS, CodeQwen does not).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["ResolvedName", "load_model", "load_tokenizer", "local_tokenizer", "resolve_name", "tiny_model"]

log = logging.getLogger(__name__)

_ALIAS_KINDS = ("small", "tiny")


@dataclass(frozen=True)
class ResolvedName:
    """What a model name refers to: `kind` is known|small|tiny|path|hub."""

    name: str
    kind: str
    location: str | None  # hub id or directory; None for tiny (built in memory)
    arch: str | None  # model_type when known without reading a config
    known: str | None  # paper-model key whose values are asserted


def resolve_name(name_or_path: str | Path, expect: str | None = None) -> ResolvedName:
    """Classify a model name without loading anything (except training a small model: no)."""
    from editsweep.models.configs import KNOWN_MODELS, known_model_for_hub_id
    from editsweep.models.small import SMALL_ARCHS

    name = str(name_or_path)
    if expect is not None and expect not in KNOWN_MODELS:
        raise ValueError(f"expect={expect!r} is not a known model; known: {', '.join(KNOWN_MODELS)}")
    prefix, sep, arch = name.partition(":")
    if sep and prefix in _ALIAS_KINDS:
        if arch not in SMALL_ARCHS:
            raise ValueError(f"{name!r}: no {prefix} model for architecture {arch!r}; use one of {', '.join(f'{prefix}:{a}' for a in SMALL_ARCHS)}")
        return ResolvedName(name, prefix, None, arch, None)
    if name in KNOWN_MODELS:
        known = KNOWN_MODELS[name]
        return ResolvedName(name, "known", known.hub_id, known.model_type, name)
    if Path(name).expanduser().is_dir():
        return ResolvedName(name, "path", str(Path(name).expanduser()), None, expect)
    known = known_model_for_hub_id(name)
    if known is not None:
        return ResolvedName(name, "known", known.hub_id, known.model_type, known.key)
    if Path(name).expanduser().exists() or name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"model path {name!r} is not a directory with a saved model")
    return ResolvedName(name, "hub", name, None, expect)


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _resolve_dtype(dtype: Any, device: str):
    import torch

    if dtype is None or dtype == "auto":
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return dtype
    aliases = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32", "fp64": "float64", "double": "float64"}
    name = str(dtype).removeprefix("torch.")
    resolved = getattr(torch, aliases.get(name, name), None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"unknown or non-float dtype {dtype!r}; use auto, bfloat16, float16, float32 or float64")
    return resolved


def _check_known(config: Any, known_key: str, where: str) -> None:
    from editsweep.models.configs import ESSENTIAL_KEYS, KNOWN_MODELS

    known = KNOWN_MODELS[known_key]
    expected = {"model_type": known.model_type, **known.values}
    wrong = {
        key: (getattr(config, key, None), expected[key])
        for key in ESSENTIAL_KEYS
        if getattr(config, key, None) != expected[key]
    }
    if wrong:
        details = ", ".join(f"{k}={got!r} (expected {want!r})" for k, (got, want) in wrong.items())
        raise ValueError(f"{where} does not look like {known_key} ({known.hub_id}): {details}")


def _prepare_tokenizer(tokenizer: Any) -> Any:
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"tokenizer {tokenizer.name_or_path!r} has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
        log.info("tokenizer %s has no pad token; using EOS %r as pad", tokenizer.name_or_path, tokenizer.eos_token)
    tokenizer.padding_side = "left"
    return tokenizer


# Code that any code tokenizer must encode and decode back unchanged.
_ROUND_TRIP_SAMPLE = "import re\n\n\ndef f(x, y=12):\n    return re.sub('a', 'b', x) + str(y)\n"


def _round_trips(tokenizer: Any) -> bool:
    ids = tokenizer(_ROUND_TRIP_SAMPLE, add_special_tokens=False)["input_ids"]
    return tokenizer.decode(ids, skip_special_tokens=True) == _ROUND_TRIP_SAMPLE


def _disagrees_with_tokenizer_json(tokenizer: Any, location: str) -> bool:
    """Whether `tokenizer` encodes the sample differently from the checkpoint's own tokenizer.json."""
    from tokenizers import Tokenizer
    from transformers.utils.hub import cached_file

    path = cached_file(location, "tokenizer.json", _raise_exceptions_for_missing_entries=False)
    if not path:
        return False
    raw = Tokenizer.from_file(path).encode(_ROUND_TRIP_SAMPLE, add_special_tokens=False).ids
    return raw != tokenizer(_ROUND_TRIP_SAMPLE, add_special_tokens=False)["input_ids"]


def load_tokenizer(location: str) -> Any:
    """The tokenizer at a hub id or directory, with a pad token and left padding.

    transformers 5 picks some tokenizer classes from the model type rather than from the
    checkpoint (every `qwen2` checkpoint gets `Qwen2Tokenizer`, which rebuilds its pipeline
    from vocab and merges with Qwen's own pre-tokenizer). When that tokenizes a code sample
    differently from the checkpoint's own `tokenizer.json`, the latter is loaded as is instead.
    A tokenizer that cannot decode code back to the same text is refused.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tokenizer = AutoTokenizer.from_pretrained(location)
    if _disagrees_with_tokenizer_json(tokenizer, location):
        log.warning("%s: AutoTokenizer chose %s, which tokenizes code differently from the checkpoint's "
                    "tokenizer.json; using tokenizer.json as is", location, type(tokenizer).__name__)
        tokenizer = PreTrainedTokenizerFast.from_pretrained(location)
    if not _round_trips(tokenizer):
        raise ValueError(f"the tokenizer of {location!r} ({type(tokenizer).__name__}) does not decode code back to the same text")
    return _prepare_tokenizer(tokenizer)


@lru_cache(maxsize=2)
def _trained_local_tokenizer(arch: str) -> Any:
    from editsweep.models.small import training_inputs
    from editsweep.models.tokenizer import train_tokenizer
    from editsweep.models.training import SmallRecipe

    recipe = SmallRecipe()
    return train_tokenizer(training_inputs(recipe).tokenizer_texts(), arch, recipe.vocab_size)


def local_tokenizer(arch: str) -> Any:
    """The project's locally trained tokenizer of flavour `arch` (same as the small models'); a fresh copy."""
    return _prepare_tokenizer(copy.deepcopy(_trained_local_tokenizer(arch)))


def tiny_model(arch: str, seed: int = 0, dtype: Any = None, device: str | None = None, **overrides: Any) -> Any:
    """A `tiny_config(arch)` model with random weights from `seed` (no training, no disk)."""
    import torch
    from transformers import AutoModelForCausalLM

    from editsweep.models.configs import tiny_config

    device = device or "cpu"
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(
        tiny_config(arch, **overrides), dtype=_resolve_dtype(dtype, device), attn_implementation="sdpa"
    )
    return model.to(device).eval()


def load_model(
    name_or_path: str | Path,
    device: str | None = None,
    dtype: Any = None,
    expect: str | None = None,
) -> tuple[Any, Any]:
    """`(model, tokenizer)` for a name (see module doc); `expect` asserts a paper model's config on a local path."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from editsweep.models.arch import arch_for_config

    resolved = resolve_name(name_or_path, expect)
    device = str(device or _default_device())
    torch_dtype = _resolve_dtype(dtype, device)
    if resolved.kind == "tiny":
        model = tiny_model(resolved.arch, dtype=torch_dtype, device=device)
        tokenizer = local_tokenizer(resolved.arch)
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        return model, tokenizer
    location = resolved.location
    if resolved.kind == "small":
        from editsweep.models.small import small_model_path

        location = str(small_model_path(resolved.arch))
    config = AutoConfig.from_pretrained(location)
    arch_for_config(config)  # unsupported architectures fail before any weight is read
    if resolved.known:
        _check_known(config, resolved.known, f"checkpoint {location!r}")
    log.info("loading %s (%s) on %s as %s", resolved.name, location, device, torch_dtype)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "attn_implementation": "sdpa"}
    if device != "cpu":
        kwargs["device_map"] = {"": device}
    model = AutoModelForCausalLM.from_pretrained(location, config=config, **kwargs)
    if device == "cpu":
        model = model.to(device)
    model.eval()
    tokenizer = load_tokenizer(location)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
