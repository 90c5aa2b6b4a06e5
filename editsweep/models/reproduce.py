"""How well a model reproduces reference solutions by greedy decoding from their prompts.

The small models must solve the demo benchmark with the original APIs before any edit; this is
the measure: decode greedily from each prompt (batched, left padding, as generation does) and
count a problem as reproduced when the completion starts with the reference body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

__all__ = ["Reproduction", "greedy_completions", "greedy_reproduction"]


@dataclass(frozen=True)
class Reproduction:
    rate: float
    reproduced: tuple[bool, ...]
    completions: tuple[str, ...]


def greedy_completions(model, tokenizer, prompts: Sequence[str], max_new_tokens: int, batch_size: int = 64) -> list[str]:
    """Greedy completions of `prompts` (text after the prompt, special tokens dropped)."""
    import torch

    if tokenizer.pad_token_id is None:
        raise ValueError("tokenizer has no pad token; load it with editsweep.models.load_model")
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    out: list[str] = []
    try:
        for start in range(0, len(prompts), batch_size):
            batch = list(prompts[start : start + batch_size])
            enc = tokenizer(batch, return_tensors="pt", padding=True).to(device)
            with torch.no_grad():
                generated = model.generate(
                    **enc,
                    do_sample=False,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
            new_tokens = generated[:, enc["input_ids"].shape[1] :]
            out.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = previous_side
    return out


def greedy_reproduction(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 64) -> Reproduction:
    """Fraction of (prompt, reference) pairs whose greedy completion begins with the reference."""
    if not pairs:
        raise ValueError("greedy_reproduction needs at least one (prompt, reference) pair")
    longest = max(len(tokenizer(ref, add_special_tokens=False)["input_ids"]) for _, ref in pairs)
    completions = greedy_completions(model, tokenizer, [p for p, _ in pairs], longest + 8, batch_size)
    reproduced = tuple(c.startswith(ref.rstrip()) for c, (_, ref) in zip(completions, pairs))
    return Reproduction(sum(reproduced) / len(pairs), reproduced, tuple(completions))
