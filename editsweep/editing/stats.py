"""Second-moment statistics C = (1/N) Σ k kᵀ of an edited matrix's input, computed once and cached.

MEMIT and PMET (and ROME with `mom2_adjustment`) regularise their update with C (notes §4).
All requested layers are accumulated in one forward pass per batch, which stops after the last
layer needed; padding tokens are excluded; the budget is counted in tokens. Each (model,
tokenizer, module, layer, corpus, token budget, max length) is one safetensors file holding
`mom2` (float32) and its token count, written atomically so concurrent cells can share the cache.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

__all__ = [
    "MODULE_KINDS",
    "StatsRequest",
    "default_stats_dir",
    "stats_path",
    "compute_second_moments",
    "get_second_moments",
    "load_second_moment",
]

log = logging.getLogger(__name__)

# The matrices whose input statistics can be computed: names of ArchSpec methods.
MODULE_KINDS = ("mlp_down", "attn_out")
_FORMAT_VERSION = "1"


def default_stats_dir() -> Path:
    """`$EDITSWEEP_STATS_DIR`, else `stats/` under the project cache (`$EDITSWEEP_CACHE` or ~/.cache/editsweep)."""
    from editsweep.models.small import cache_root

    env = os.environ.get("EDITSWEEP_STATS_DIR")
    return Path(env).expanduser() if env else cache_root() / "stats"


@dataclass(frozen=True)
class StatsRequest:
    """What to compute: the corpus spec, the token budget and the per-document length cap."""

    corpus: str = "stdlib"
    tokens: int = 200_000
    max_length: int = 1024
    batch_tokens: int = 8192

    def __post_init__(self) -> None:
        from editsweep.editing.corpus import parse_corpus

        parse_corpus(self.corpus)
        for name in ("tokens", "max_length", "batch_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"statistics {name} must be a positive int, got {value!r}")
        if self.batch_tokens < self.max_length:
            raise ValueError(f"statistics batch_tokens ({self.batch_tokens}) < max_length ({self.max_length})")


def _check_kind(module: str) -> None:
    if module not in MODULE_KINDS:
        raise ValueError(f"statistics module must be one of {', '.join(MODULE_KINDS)}, got {module!r}")


def stats_path(cache_dir: Path, model_id: str, tokenizer_id: str, module: str, layer: int, request: StatsRequest) -> Path:
    """Where one layer's statistics live; the directory name carries a hash of both identities."""
    from editsweep.editing.corpus import parse_corpus
    from editsweep.editing.identity import short_hash, slug

    model_dir = f"{slug(model_id.split('@')[0])}-{short_hash(model_id + '|' + tokenizer_id)}"
    corpus_dir = slug(parse_corpus(request.corpus).identity)
    name = f"{module}-layer{layer:03d}-tokens{request.tokens}-len{request.max_length}.safetensors"
    return Path(cache_dir) / model_dir / corpus_dir / name


def load_second_moment(path: Path) -> tuple[Any, int]:
    """(mom2 float32 CPU tensor, token count) from a cache file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        mom2 = handle.get_tensor("mom2")
    if "count" not in metadata:
        raise ValueError(f"{path}: statistics file lacks its token count")
    return mom2, int(metadata["count"])


def _save(path: Path, mom2: Any, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({"mom2": mom2.contiguous()}, str(tmp), metadata=metadata)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _token_batches(tokenizer: Any, documents: Iterable[str], request: StatsRequest) -> Iterable[list[list[int]]]:
    """Lists of token sequences (each ≤ max_length, the last one cut to the budget) of ≤ batch_tokens."""
    remaining = request.tokens
    batch: list[list[int]] = []
    width = 0
    char_cap = request.max_length * 12  # tokenizing a 200 kB file to keep 1k tokens is wasteful
    for document in documents:
        ids = tokenizer(document[:char_cap], add_special_tokens=True, truncation=True, max_length=request.max_length)["input_ids"]
        if len(ids) < 2:
            continue
        ids = ids[:remaining]
        if batch and max(width, len(ids)) * (len(batch) + 1) > request.batch_tokens:
            yield batch
            batch, width = [], 0
        batch.append(ids)
        width = max(width, len(ids))
        remaining -= len(ids)
        if remaining == 0:
            break
    if batch:
        yield batch
    if remaining > 0:
        raise ValueError(
            f"corpus {request.corpus!r} ran out after {request.tokens - remaining} of {request.tokens} tokens"
        )


def compute_second_moments(
    model: Any,
    tokenizer: Any,
    layers: Sequence[int],
    request: StatsRequest,
    module: str = "mlp_down",
    progress: bool = True,
    documents: Iterable[str] | None = None,
) -> dict[int, tuple[Any, int]]:
    """{layer: (C float32 on CPU, token count)} for every layer, from one pass over the corpus.

    `documents` replaces the corpus's own texts (the spec then only names them in logs).
    """
    import torch
    from tqdm.auto import tqdm

    from editsweep.editing.corpus import parse_corpus
    from editsweep.editing.forward import run_decoder
    from editsweep.editing.hooks import capture, frozen
    from editsweep.editing.tokens import pad_id_of, pad_rows
    from editsweep.models.arch import arch_of, get_module

    _check_kind(module)
    arch = arch_of(model)
    layers = sorted(set(layers))
    names = {layer: getattr(arch, module)(layer) for layer in layers}
    modules = {name: get_module(model, name) for name in names.values()}
    device = next(model.parameters()).device
    corpus = parse_corpus(request.corpus)
    pad_id = pad_id_of(tokenizer)
    sums = {layer: None for layer in layers}
    count = 0
    started = time.perf_counter()
    bar = tqdm(total=request.tokens, unit="tok", desc=f"second moments {module} layers {layers}", disable=not progress)
    last = modules[names[layers[-1]]]
    with frozen(model), torch.no_grad(), capture(modules, what="input") as store:
        texts = corpus.documents() if documents is None else iter(documents)
        for seqs in _token_batches(tokenizer, texts, request):
            batch = pad_rows(seqs, pad_id, "right", device)
            run_decoder(model, batch, stop_module=last)
            mask = batch.attention_mask.bool()
            for layer in layers:
                keys = store[names[layer]][mask]
                keys = keys if keys.dtype == torch.float64 else keys.float()  # bf16 keys are summed in fp32
                part = (keys.T @ keys).double()
                sums[layer] = part if sums[layer] is None else sums[layer] + part
            n = int(mask.sum())
            count += n
            bar.update(n)
    bar.close()
    log.info(
        "second moments of %s at layers %s from %d tokens of %s in %.1f s",
        module, layers, count, corpus.identity, time.perf_counter() - started,
    )
    return {layer: ((sums[layer] / count).float().cpu(), count) for layer in layers}


def get_second_moments(
    model: Any,
    tokenizer: Any,
    layers: Sequence[int],
    corpus: str = "stdlib",
    tokens: int = 200_000,
    cache_dir: str | Path | None = None,
    *,
    module: str = "mlp_down",
    max_length: int = 1024,
    batch_tokens: int = 8192,
    progress: bool = True,
) -> dict[int, Any]:
    """{layer: C} (float32, CPU), read from the disk cache or computed (all missing layers in one pass) and cached."""
    from editsweep.editing.corpus import parse_corpus
    from editsweep.editing.identity import model_identity, tokenizer_identity

    _check_kind(module)
    request = StatsRequest(corpus=corpus, tokens=int(tokens), max_length=int(max_length), batch_tokens=int(batch_tokens))
    cache_dir = Path(cache_dir) if cache_dir is not None else default_stats_dir()
    model_id, tokenizer_id = model_identity(model), tokenizer_identity(tokenizer)
    paths = {layer: stats_path(cache_dir, model_id, tokenizer_id, module, layer, request) for layer in sorted(set(layers))}
    result: dict[int, Any] = {}
    missing = []
    for layer, path in paths.items():
        if path.is_file():
            mom2, count = load_second_moment(path)
            log.info("second moments of %s layer %d: cached %s (%d tokens)", module, layer, path, count)
            result[layer] = mom2
        else:
            missing.append(layer)
    if missing:
        computed = compute_second_moments(model, tokenizer, missing, request, module=module, progress=progress)
        for layer, (mom2, count) in computed.items():
            metadata = {
                "count": str(count),
                "model": model_id,
                "tokenizer": tokenizer_id,
                "module": module,
                "layer": str(layer),
                "corpus": parse_corpus(corpus).identity,
                "tokens": str(request.tokens),
                "max_length": str(request.max_length),
                "format": _FORMAT_VERSION,
            }
            _save(paths[layer], mom2, metadata)
            log.info("second moments of %s layer %d: saved %s", module, layer, paths[layer])
            result[layer] = mom2
    return result
