"""Split prompts into batches: sorted by length, each sized to a KV-cache budget.

Sorting (longest first) keeps left padding small, and the longest batch — the one most likely
not to fit — runs first. A batch is closed when adding the next prompt would exceed the budget
(KV slots, or bytes when the budget comes from the free GPU memory) or `max_batch_sequences`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

__all__ = ["Batch", "plan_batches", "kv_slots", "memory_budget"]


@dataclass(frozen=True)
class Batch:
    """Prompt indices (into the caller's list, longest first) and their padded length."""

    indices: tuple[int, ...]
    prompt_len: int


def kv_slots(batch: int, prompt_len: int, n: int, max_new_tokens: int, layout: str) -> int:
    """KV-cache token slots a batch holds: shared keeps one prompt copy per problem."""
    if layout == "shared":
        return batch * prompt_len + batch * n * max_new_tokens
    return batch * n * (prompt_len + max_new_tokens)


def plan_batches(
    lengths: Sequence[int],
    n: int,
    max_new_tokens: int,
    layout: str,
    cost: Callable[[int, int], float],
    limit: float,
    max_sequences: int,
) -> list[Batch]:
    """Greedy batches over prompts sorted by length (descending, ties by index).

    `cost(batch_size, padded_prompt_len)` is compared with `limit`; one prompt alone that
    exceeds it is an error naming the prompt.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[Batch] = []
    current: list[int] = []
    for index in order:
        candidate = current + [index]
        padded = lengths[candidate[0]]
        fits = cost(len(candidate), padded) <= limit and len(candidate) * n <= max(max_sequences, n)
        if fits:
            current = candidate
            continue
        if not current:
            raise ValueError(
                f"prompt {index} ({lengths[index]} tokens) with n={n} and max_new_tokens={max_new_tokens} needs "
                f"{cost(1, lengths[index]):.4g} of the batch budget {limit:.4g}; raise token_budget/memory_fraction "
                "or shorten the prompt"
            )
        batches.append(Batch(tuple(current), lengths[current[0]]))
        current = [index]
    if current:
        batches.append(Batch(tuple(current), lengths[current[0]]))
    return batches


def memory_budget(device, memory_fraction: float, reserve_bytes: int) -> int:
    """Bytes a batch may use on `device`: (free + cached-but-unused) × fraction − reserve (CUDA only).

    Memory PyTorch's allocator holds but no tensor uses (e.g. the last batch's cache) counts as
    free: the next batch's tensors reuse it.
    """
    import torch

    free, _total = torch.cuda.mem_get_info(device)
    free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    budget = int(free * memory_fraction) - reserve_bytes
    if budget <= 0:
        raise RuntimeError(
            f"not enough free GPU memory for generation: {free / 2**30:.1f} GiB free, "
            f"{reserve_bytes / 2**30:.1f} GiB reserved for activations"
        )
    return budget
