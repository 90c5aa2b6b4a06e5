"""Context templates: short model-sampled prefixes that make the edit key robust to context.

ROME/MEMIT average the key over `"{}"` plus templates `"<sample>. {}"` sampled (top-k 5) from
the seed words "The", "Therefore", "Because", "I", "You" (notes §3.1). EasyEdit samples them once
per process into a module global, so results depend on which model ran first. Here sampling is
seeded, and the cache is an explicit object owned by the editor, keyed by the model identity.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["SEED_WORDS", "TemplateCache", "sample_templates"]

SEED_WORDS = ("The", "Therefore", "Because", "I", "You")


def sample_templates(
    model: Any,
    tokenizer: Any,
    length_params: Sequence[Sequence[int]],
    seed: int = 0,
    top_k: int = 5,
) -> list[list[str]]:
    """Groups of templates: `[["{}"], group for [n_tokens, count], ...]`.

    For each `[n_tokens, count]`, `count // 5` samples of `n_tokens` new tokens follow each seed
    word. Sampling uses its own generator, so the global RNG is untouched.
    """
    import torch

    groups: list[list[str]] = [["{}"]]
    if not length_params:
        return groups
    device = next(model.parameters()).device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    for params in length_params:
        if len(params) != 2 or min(params) < 1:
            raise ValueError(f"context template length params must be [n_tokens, count] pairs, got {params!r}")
        n_tokens, count = int(params[0]), int(params[1])
        per_seed = max(1, count // len(SEED_WORDS))
        group: list[str] = []
        for word in SEED_WORDS:
            ids = tokenizer(word, add_special_tokens=True)["input_ids"]
            generated = _sample(model, ids, per_seed, n_tokens, top_k, generator, device)
            for row in generated:
                text = word + tokenizer.decode(row, skip_special_tokens=True)
                group.append(text.replace("{", " ").replace("}", " ") + ". {}")
        groups.append(group)
    return groups


def _sample(model, prompt_ids, n, n_tokens, top_k, generator, device) -> list[list[int]]:
    import torch

    with torch.no_grad():
        ids = torch.tensor([prompt_ids] * n, device=device)
        out = model(input_ids=ids, use_cache=True)
        past = out.past_key_values
        logits = out.logits[:, -1, :].float()
        new: list[torch.Tensor] = []
        for step in range(n_tokens):
            top = torch.topk(logits, k=min(top_k, logits.shape[-1]), dim=-1)
            probs = torch.softmax(top.values, dim=-1).cpu()
            choice = torch.multinomial(probs, 1, generator=generator).to(device)
            token = top.indices.gather(1, choice)
            new.append(token)
            if step + 1 < n_tokens:
                out = model(input_ids=token, past_key_values=past, use_cache=True)
                past = out.past_key_values
                logits = out.logits[:, -1, :].float()
    return torch.cat(new, dim=1).tolist()


class TemplateCache:
    """Sampled template groups per (model identity, length params, seed); owned by an editor."""

    def __init__(self) -> None:
        self._store: dict[tuple, list[list[str]]] = {}

    def get(self, model: Any, tokenizer: Any, length_params: Sequence[Sequence[int]], seed: int) -> list[list[str]]:
        from editsweep.editing.identity import model_identity

        key = (model_identity(model), tuple(tuple(p) for p in length_params), seed)
        if key not in self._store:
            self._store[key] = sample_templates(model, tokenizer, length_params, seed=seed)
        return self._store[key]
