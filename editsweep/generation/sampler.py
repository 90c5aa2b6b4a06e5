"""Choose the next token of every sequence from its logits, on the device, with no host sync.

Greedy is an argmax. Sampling draws one uniform per sequence and step from its own stream
(`streams.uniforms`) and inverts the cumulative distribution of the tokens kept by
top-k / top-p (nucleus): sort the logits once, keep the smallest prefix whose mass reaches
top_p (and at most top_k tokens), and pick the first kept token whose running mass exceeds
u × kept mass. Every operation works row by row, so a row's token depends only on its own
logits and stream — never on the batch around it. This is the distribution of
Hugging Face's temperature → top-k → top-p warpers followed by multinomial sampling (up to
which of several exactly tied tokens sits on the nucleus boundary).
"""

from __future__ import annotations

from editsweep.generation.streams import uniforms

__all__ = ["choose_tokens"]


def choose_tokens(logits, keys, step, temperature: float, top_p: float = 1.0, top_k: int = 0):
    """Next token ids (int64 [N]) for `logits` [N, V] (any float dtype).

    keys: int64 [N, 2] stream keys; step: int64 tensor with the index of the token being drawn.
    """
    import torch

    if temperature == 0:
        return logits.argmax(dim=-1)
    u = uniforms(keys, step)
    vocab = logits.shape[-1]
    if top_p >= 1.0 and (top_k <= 0 or top_k >= vocab):
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        cumulative = probs.cumsum(dim=-1)
        index = torch.searchsorted(cumulative, _targets(u, cumulative), right=True).clamp_(max=vocab - 1)
        return index.squeeze(-1)
    # Sort the logits in their own dtype (bf16 keys sort faster than float32; the order is the
    # same as that of the probabilities), then scale the sorted values.
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
    probs = torch.softmax(sorted_logits.float() / temperature, dim=-1)
    cumulative = probs.cumsum(dim=-1)
    keep = (cumulative - probs) < top_p  # the token that crosses top_p is kept; the first always is
    if 0 < top_k < vocab:
        keep[:, top_k:] = False
    probs = probs * keep
    cumulative = probs.cumsum(dim=-1)
    index = torch.searchsorted(cumulative, _targets(u, cumulative), right=True).clamp_(max=vocab - 1)
    return order.gather(-1, index).squeeze(-1)


def _targets(u, cumulative):
    """u × total mass, kept strictly below the total so the search never runs past the last kept token."""
    import torch

    total = cumulative[:, -1:]
    return torch.minimum(u.unsqueeze(-1) * total, torch.nextafter(total, torch.zeros_like(total)))
