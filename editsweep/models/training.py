"""Train a small causal LM on the demo solutions (plus some stdlib code) on CPU, deterministically.

The recipe is tuned so that greedy decoding from a demo prompt reproduces its reference body:
each demo solution is tokenized as `tokenize(prompt) + tokenize(reference) + EOS`, exactly the
tokens seen when generation starts from the prompt (a joint tokenization would merge the
prompt's final newline with the body's indentation, a boundary the model never meets at
inference). Every step sees all demo solutions and the demo APIs' new-API definitions (see
`corpus`), plus a few stdlib chunks.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Sequence

__all__ = ["SmallRecipe", "TrainResult", "small_config", "train_small_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmallRecipe:
    """Architecture and optimisation settings of a small model; part of its cache key."""

    hidden_size: int = 128
    intermediate_size: int = 352  # ≠ hidden_size, on purpose
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 1024
    vocab_size: int = 4096
    steps: int = 120
    lr: float = 5e-3
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    demo_buckets: int = 4  # demo solutions, sorted by length, in this many padded batches (less padding)
    stdlib_chunks_per_step: int = 8
    stdlib_weight: float = 0.5
    chunk_tokens: int = 96
    stdlib_chars_per_file: int = 12_000
    seed: int = 0
    api_definitions: bool = True  # train on the demo APIs' new-API definitions and example calls (corpus)
    usage_drills_per_step: int = 2  # shuffled sequences of the example calls per step
    versioned_solutions: bool = True  # also train the new-API solutions behind corpus.VERSION_MARKER

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainResult:
    model: object
    tokenizer: object
    seconds: float
    final_loss: float
    demo_loss: float


def small_config(arch: str, recipe: SmallRecipe, tokenizer):
    """The transformers config of a small model of `arch` for `tokenizer`."""
    from editsweep.models.configs import tiny_config

    if len(tokenizer) > recipe.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, more than the recipe's vocab_size {recipe.vocab_size}")
    return tiny_config(
        arch,
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_hidden_layers,
        num_attention_heads=recipe.num_attention_heads,
        num_key_value_heads=recipe.num_key_value_heads,
        max_position_embeddings=recipe.max_position_embeddings,
        vocab_size=recipe.vocab_size,
    )


def training_threads() -> int:
    """2 CPU threads, or 1 when the machine is already busy.

    On a shared, overloaded machine OpenMP's spinning threads cost about 4x the CPU per step
    (measured here: 2.8 vs 0.7 CPU-s per step at load 7 on 2 cores), so one thread is faster.
    """
    cpus = os.cpu_count() or 1
    busy = os.getloadavg()[0] >= cpus
    return 1 if busy or cpus < 2 else 2


def _demo_sequences(tokenizer, pairs: Sequence[tuple[str, str]]) -> list[list[int]]:
    eos = tokenizer.eos_token_id
    return [
        tokenizer(prompt)["input_ids"] + tokenizer(reference, add_special_tokens=False)["input_ids"] + [eos]
        for prompt, reference in pairs
    ]


def _text_sequences(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Each text as one sequence (BOS where the flavour adds one, then the text, then EOS)."""
    return [tokenizer(text)["input_ids"] + [tokenizer.eos_token_id] for text in texts]


# Statement heads of the drilled example calls: the places a call starts in a function body.
USAGE_HEADS = ("    result = ", "    return ", "    print(")


def _usage_drill(tokenizer, usages: Sequence[tuple[str, str]], generator) -> list[int]:
    """One sequence of every (import, example call), in a random order, each call after a random head.

    Shuffling is the point: each name then follows every other line, so the model has to learn it
    from its own sub-tokens and the import before it instead of memorising one fixed text.
    """
    import torch

    order = torch.randperm(len(usages), generator=generator).tolist()
    heads = torch.randint(len(USAGE_HEADS), (len(usages),), generator=generator).tolist()
    blocks = []
    for index, head in zip(order, heads):
        header, call = usages[index]
        head_text = USAGE_HEADS[head]
        blocks.append(f"{header}{head_text}{call}{')' if head_text.endswith('(') else ''}\n")
    return tokenizer("".join(blocks))["input_ids"] + [tokenizer.eos_token_id]


def _stdlib_chunks(tokenizer, texts: Sequence[str], size: int) -> list[list[int]]:
    stream: list[int] = []
    for text in texts:  # whole files: the backend tokenizer does not warn about their length
        stream.extend(tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids)
        stream.append(tokenizer.eos_token_id)
    return [stream[i : i + size] for i in range(0, len(stream) - size + 1, size)]


def _batch(sequences: list[list[int]], pad_id: int):
    """Right-padded input ids, attention mask and labels (-100 on padding)."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return ids, mask, labels


def _buckets(sequences: list[list[int]], count: int) -> list[list[list[int]]]:
    """`sequences` sorted by length and cut into `count` groups of near-equal size (less padding)."""
    ordered = sorted(sequences, key=len)
    count = max(1, min(count, len(ordered)))
    bounds = [round(i * len(ordered) / count) for i in range(count + 1)]
    return [ordered[bounds[i] : bounds[i + 1]] for i in range(count)]


def _token_loss_sum(model, ids, mask, labels):
    """Sum of next-token cross-entropies over labelled positions."""
    import torch.nn.functional as F

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum")


def _lr_factor(step: int, recipe: SmallRecipe) -> float:
    if step < recipe.warmup_steps:
        return (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return recipe.min_lr_ratio + (1 - recipe.min_lr_ratio) * cosine


def train_small_model(
    arch: str,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    stdlib: Sequence[str],
    recipe: SmallRecipe,
    progress: bool = True,
    threads: int | None = None,
    definitions: Sequence[str] = (),
    usages: Sequence[tuple[str, str]] = (),
) -> TrainResult:
    """Train a fresh `arch` model from `recipe.seed`; bit-identical on CPU for the same inputs.

    `threads` (default: `training_threads()`) does not change the result (checked: 1 and 2
    threads give bit-identical weights), only the speed, so it is not part of the recipe.
    `definitions` (whole texts) are trained every step together with the demo solutions;
    `usages` (example calls) in `recipe.usage_drills_per_step` freshly shuffled sequences per step.
    """
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM

    if not pairs:
        raise ValueError("train_small_model needs at least one (prompt, reference) pair")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads or training_threads())
    try:
        torch.manual_seed(recipe.seed)
        config = small_config(arch, recipe, tokenizer)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa")
        model.train()
        demo = _demo_sequences(tokenizer, pairs) + _text_sequences(tokenizer, definitions)
        chunks = _stdlib_chunks(tokenizer, stdlib, recipe.chunk_tokens)
        generator = torch.Generator().manual_seed(recipe.seed)
        order = torch.randperm(len(chunks), generator=generator).tolist() if chunks else []
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=recipe.lr,
            betas=(0.9, 0.98),
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, recipe))
        demo_batches = [_batch(group, tokenizer.pad_token_id) for group in _buckets(demo, recipe.demo_buckets)]
        demo_tokens = sum(len(seq) - 1 for seq in demo)

        def demo_loss_fn():
            return sum(_token_loss_sum(model, *batch) for batch in demo_batches) / demo_tokens

        start = time.perf_counter()
        loss_value = float("nan")
        cursor = 0
        bar = tqdm(range(recipe.steps), desc=f"train small:{arch}", disable=not progress, leave=False)
        for step in bar:
            picked = []
            for _ in range(min(recipe.stdlib_chunks_per_step, len(order))):
                picked.append(chunks[order[cursor % len(order)]])
                cursor += 1
            loss = demo_loss_fn()
            if usages and recipe.usage_drills_per_step:
                drills = [_usage_drill(tokenizer, usages, generator) for _ in range(recipe.usage_drills_per_step)]
                ids, mask, labels = _batch(drills, tokenizer.pad_token_id)
                loss = loss + model(input_ids=ids, attention_mask=mask, labels=labels).loss
            if picked:
                ids, mask, labels = _batch(picked, tokenizer.pad_token_id)
                loss = loss + recipe.stdlib_weight * model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            optimizer.step()
            scheduler.step()
            loss_value = float(loss.detach())
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss_value:.3f}")
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            demo_loss = float(demo_loss_fn())
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.bos_token_id = tokenizer.bos_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.do_sample = False
        log.info("trained small:%s in %.1f s: final loss %.4f, demo loss %.4f", arch, seconds, loss_value, demo_loss)
        return TrainResult(model, tokenizer, seconds, loss_value, demo_loss)
    finally:
        torch.set_num_threads(previous_threads)
