"""The decoding loop: prefill each batch once, then one fixed-shape step per new token.

Per batch: left-padded prompts are encoded once (chunks of rows, SDPA with a causal+padding
mask) into `KVState`; the first token of each of the n samples is drawn from the last prompt
position's logits; every further step feeds the previous token of all B·n sequences through the
model's own forward (with `kv_attention` swapped in) and draws the next token on the device.
A step never reads a value back to the host, so steps queue up on the GPU, and with
`cuda_graphs` each step is captured once per KV bucket and replayed. The host looks at the
tokens only every `check_every` steps (EOS and stop strings) and ends the batch as soon as every
sequence has finished — or never, when nothing can finish early (ignore_eos, no stop rule).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from editsweep.generation.config import GenerationConfig
from editsweep.generation.kvcache import KVState, attention_swapped, model_geometry
from editsweep.generation.planner import kv_slots, memory_budget, plan_batches
from editsweep.generation.sampler import choose_tokens
from editsweep.generation.streams import stream_keys

log = logging.getLogger(__name__)

__all__ = ["generate_token_ids", "Finisher", "BatchStats", "bytes_per_kv_token"]

# Per-sequence working memory of one step besides the KV cache, in bytes per vocabulary entry:
# logits (model dtype) and their float copy, the sorted copy, sort indices (int64), probabilities,
# two cumulative sums and the keep mask.
_SAMPLER_BYTES_PER_LOGIT = 48


class Finisher(Protocol):
    """Decides from the tokens so far whether a sequence is done (e.g. a stop string appeared)."""

    active: bool

    def finished(self, prompt_index: int, sample_index: int, token_ids: Sequence[int]) -> bool: ...


@dataclass
class BatchStats:
    """What one batch did, for logs and the benchmark."""

    prompts: int
    sequences: int
    prompt_len: int
    prompt_tokens: int
    steps: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0
    capture_s: float = 0.0
    graphs: bool = False
    graph_error: str | None = None
    cache_bytes: int = 0
    extra: dict = field(default_factory=dict)


def bytes_per_kv_token(model) -> int:
    """Bytes of keys + values one cached token takes over all layers."""
    geo = model_geometry(model.config)
    element = next(model.parameters()).element_size()
    return 2 * geo["layers"] * geo["kv_heads"] * geo["head_dim"] * element


def _gen_len(step: int, bucket: int, max_new: int) -> int:
    return min(max_new, (step // bucket + 1) * bucket)


def generate_token_ids(
    model,
    prompt_ids: Sequence[Sequence[int]],
    n: int,
    cfg: GenerationConfig,
    seeds: Sequence[int],
    pad_id: int,
    eos_ids: Sequence[int] = (),
    finisher: Finisher | None = None,
    stats: list | None = None,
    progress: bool = False,
) -> list[list[list[int]]]:
    """n token-id continuations per prompt (cut after EOS unless cfg.ignore_eos).

    A sequence stopped by `finisher` keeps the tokens generated up to the check that stopped it;
    the caller cuts the text. Prompts must be non-empty and fit the model (checked by `sample`).
    """
    import torch

    if len(seeds) != len(prompt_ids):
        raise ValueError(f"{len(seeds)} seeds for {len(prompt_ids)} prompts")
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    devices = {str(p.device) for p in model.parameters()}
    if len(devices) > 1:
        raise NotImplementedError(
            f"the model is spread over {sorted(devices)}; editsweep.generation needs it on one device"
        )
    geo = model_geometry(model.config)
    lengths = [len(p) for p in prompt_ids]
    max_new = cfg.max_new_tokens
    layout = cfg.kv_layout

    if cfg.token_budget == "auto" and device.type == "cuda":
        kv_token = bytes_per_kv_token(model)
        per_sequence = geo["vocab"] * _SAMPLER_BYTES_PER_LOGIT + geo["hidden"] * 64
        reserve = cfg.prefill_chunk_tokens * geo["hidden"] * param.element_size() * 24 + 2**30
        limit = memory_budget(device, cfg.memory_fraction, reserve)

        def cost(batch: int, plen: int) -> float:
            return kv_slots(batch, plen, n, max_new, layout) * kv_token + batch * n * per_sequence

    else:
        limit = cfg.cpu_token_budget if cfg.token_budget == "auto" else cfg.token_budget

        def cost(batch: int, plen: int) -> float:
            return kv_slots(batch, plen, n, max_new, layout)

    batches = plan_batches(lengths, n, max_new, layout, cost, limit, cfg.max_batch_sequences)
    use_graphs = bool(cfg.cuda_graphs and device.type == "cuda")
    log.info(
        "generating %d prompts × %d samples × ≤%d tokens in %d batch(es) (kv layout %s, cuda graphs %s)",
        len(prompt_ids), n, max_new, len(batches), layout, "on" if use_graphs else "off",
    )
    results: list[list[list[int]] | None] = [None] * len(prompt_ids)
    eos = sorted({int(e) for e in eos_ids}) if not cfg.ignore_eos else []
    from tqdm.auto import tqdm

    with torch.inference_mode(), attention_swapped(model), tqdm(
        total=len(prompt_ids), unit="prompt", desc="generating", disable=not progress
    ) as bar:
        for batch in batches:
            batch_stats = BatchStats(
                prompts=len(batch.indices),
                sequences=len(batch.indices) * n,
                prompt_len=batch.prompt_len,
                prompt_tokens=sum(lengths[i] for i in batch.indices),
            )
            rows = _run_batch(
                model, [prompt_ids[i] for i in batch.indices], list(batch.indices), n, cfg,
                [seeds[i] for i in batch.indices], pad_id, eos, finisher, geo, device, dtype,
                use_graphs, batch_stats,
            )
            for position, index in enumerate(batch.indices):
                results[index] = rows[position * n : (position + 1) * n]
            if stats is not None:
                stats.append(batch_stats)
            bar.update(len(batch.indices))
    return results  # type: ignore[return-value]


def _run_batch(model, prompts, indices, n, cfg, seeds, pad_id, eos, finisher, geo, device, dtype, use_graphs, stats):
    import numpy as np
    import torch

    batch, plen, max_new = len(prompts), stats.prompt_len, cfg.max_new_tokens
    rows = batch * n
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    started = time.perf_counter()

    ids = torch.full((batch, plen), pad_id, dtype=torch.long)
    valid = torch.zeros((batch, plen), dtype=torch.bool)
    for r, prompt in enumerate(prompts):
        ids[r, plen - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        valid[r, plen - len(prompt):] = True
    positions = (valid.long().cumsum(-1) - 1).clamp_(min=0).to(device)
    ids = ids.to(device)
    lengths_rows = torch.tensor([len(p) for p in prompts], dtype=torch.long).repeat_interleave(n).to(device)
    keys = torch.tensor(stream_keys(seeds, n), dtype=torch.long, device=device)

    state = KVState(geo, valid, n, max_new, cfg.kv_layout, dtype, device)
    stats.cache_bytes = state.cache_bytes()

    # Prefill: every prompt once, in chunks of rows, each padded to its own longest prompt.
    row_lengths = [len(p) for p in prompts]
    first_logits = None
    r0 = 0
    while r0 < batch:
        r1 = min(batch, r0 + max(1, cfg.prefill_chunk_tokens // row_lengths[r0]))
        length = max(row_lengths[r0:r1])  # = row_lengths[r0]: the planner sorts longest first
        state.begin_prefill(r0, r1, length)
        out = model(
            input_ids=ids[r0:r1, plen - length:], position_ids=positions[r0:r1, plen - length:],
            use_cache=False, logits_to_keep=1, editsweep_kv=state,
        )
        logits = out.logits[:, -1]
        if first_logits is None:
            first_logits = torch.empty((batch, logits.shape[-1]), dtype=logits.dtype, device=device)
        first_logits[r0:r1] = logits
        r0 = r1
    state.prefill_mask = None
    tokens = torch.zeros((rows, max_new), dtype=torch.long, device=device)
    first = choose_tokens(first_logits.repeat_interleave(n, dim=0), keys, state.step, cfg.temperature, cfg.top_p, cfg.top_k)
    tokens[:, 0] = first
    last = first.clone()
    del first_logits, first
    sync()
    stats.prefill_s = time.perf_counter() - started

    def step(gen_len: int) -> None:
        state.begin_decode(gen_len)
        position = (lengths_rows + state.step).unsqueeze(-1)
        out = model(input_ids=last.unsqueeze(-1), position_ids=position, use_cache=False, editsweep_kv=state)
        chosen = choose_tokens(out.logits[:, -1], keys, state.step + 1, cfg.temperature, cfg.top_p, cfg.top_k)
        tokens.index_copy_(1, state.step + 1, chosen.unsqueeze(-1))
        last.copy_(chosen)
        state.step.add_(1)

    graphs = None
    capture_started = time.perf_counter()
    if use_graphs and max_new > 1:
        buckets = sorted({_gen_len(s, cfg.kv_bucket, max_new) for s in range(max_new - 1)})
        try:
            graphs = _capture(step, buckets, state, last)
            stats.graphs = True
        except Exception as exc:  # a model with host syncs or data-dependent control flow
            stats.graph_error = f"{type(exc).__name__}: {exc}"
            log.warning("CUDA graph capture failed (%s); decoding this batch eagerly", stats.graph_error)
            torch.cuda.synchronize()
            state.step.zero_()
            last.copy_(tokens[:, 0])
            graphs = None
    stats.capture_s = time.perf_counter() - capture_started

    decode_started = time.perf_counter()
    checking = bool(eos) or bool(finisher is not None and finisher.active)
    finished = np.zeros(rows, dtype=bool)
    ends = np.full(rows, max_new, dtype=np.int64)
    host = np.zeros((rows, 0), dtype=np.int64)
    produced = 1

    def check() -> None:
        nonlocal host
        new = tokens[:, host.shape[1]:produced].cpu().numpy()
        start = host.shape[1]
        host = np.concatenate([host, new], axis=1)
        for row in np.flatnonzero(~finished):
            if eos:
                hits = np.flatnonzero(np.isin(new[row], eos))
                if hits.size:
                    ends[row] = start + int(hits[0])
                    finished[row] = True
                    continue
            if finisher is not None and finisher.active:
                if finisher.finished(indices[row // n], row % n, host[row].tolist()):
                    ends[row] = produced
                    finished[row] = True

    if checking:
        check()
    for s in range(max_new - 1):
        if checking and finished.all():
            break
        gen_len = _gen_len(s, cfg.kv_bucket, max_new)
        if graphs is not None:
            graphs[gen_len].replay()
        else:
            step(gen_len)
        produced = s + 2
        stats.steps += 1
        if checking and (stats.steps % cfg.check_every == 0 or produced == max_new):
            check()
    sync()
    stats.decode_s = time.perf_counter() - decode_started
    if host.shape[1] < produced:
        host = np.concatenate([host, tokens[:, host.shape[1]:produced].cpu().numpy()], axis=1)
    ends = np.minimum(ends, produced)
    del graphs, state
    return [host[row, : ends[row]].tolist() for row in range(rows)]


def _capture(step, buckets, state, last):
    """Warm up and capture one CUDA graph per KV bucket; the state is left as before."""
    import torch

    saved_last = last.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for gen_len in buckets:
            step(gen_len)
            state.step.zero_()
            last.copy_(saved_last)
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    pool = torch.cuda.graph_pool_handle()
    graphs = {}
    for gen_len in buckets:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool, stream=stream):
            step(gen_len)
        graphs[gen_len] = graph
    torch.cuda.synchronize()
    return graphs
