"""Measuring an edit the way generation sees it: target log-probability and next-token KL.

The prompt runs first, then the target tokens continue from the KV cache, exactly as sampling
proceeds. This matters for GRACE, whose codebook is queried at the last token of each forward
call: a single teacher-forced pass over prompt + target would query at the target's end.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["target_distributions", "target_logprob", "next_token_logprobs", "kl_divergence"]


def target_distributions(model: Any, tokenizer: Any, prompt: str, target: str, context_end: int | None = None) -> tuple[Any, list[int]]:
    """([n_target, vocab] float32 log-probabilities predicting each target token, the target ids)."""
    import torch

    from editsweep.editing.forward import model_device
    from editsweep.editing.tokens import encode_row

    row = encode_row(tokenizer, "", prompt, None, None, target, "last", context_end)
    device = model_device(model)
    prompt_ids = torch.tensor([row.input_ids[: row.prompt_len]], device=device)
    target_ids = list(row.target_ids)
    with torch.no_grad():
        first = model(input_ids=prompt_ids, use_cache=True)
        rows = [torch.log_softmax(first.logits[0, -1].float(), -1)]
        if len(target_ids) > 1:
            rest = torch.tensor([target_ids[:-1]], device=device)
            positions = torch.arange(row.prompt_len, row.prompt_len + len(target_ids) - 1, device=device).unsqueeze(0)
            second = model(input_ids=rest, past_key_values=first.past_key_values, position_ids=positions, use_cache=True)
            rows.extend(torch.log_softmax(second.logits[0].float(), -1))
    return torch.stack(rows), target_ids


def target_logprob(model: Any, tokenizer: Any, prompt: str, target: str, context_end: int | None = None) -> float:
    """Mean log-probability per target token of `target` after `prompt` (tokenized as `encode_row` does)."""
    import torch

    logp, ids = target_distributions(model, tokenizer, prompt, target, context_end)
    return float(logp[torch.arange(len(ids)), torch.tensor(ids, device=logp.device)].mean())


def next_token_logprobs(model: Any, tokenizer: Any, prompts: Sequence[str]) -> Any:
    """[len(prompts), vocab] float32 log-probabilities of the token after each prompt (one call each)."""
    import torch

    from editsweep.editing.forward import model_device

    device = model_device(model)
    out = []
    with torch.no_grad():
        for prompt in prompts:
            ids = torch.tensor([tokenizer(prompt)["input_ids"]], device=device)
            out.append(torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), -1))
    return torch.stack(out)


def kl_divergence(logp: Any, logq: Any) -> Any:
    """KL(p ‖ q) per row from log-probabilities."""
    return (logp.exp() * (logp - logq)).sum(-1)
