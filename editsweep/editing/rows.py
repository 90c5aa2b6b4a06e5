"""The token rows an edit is computed from: each request under each context template, plus its KL prompt.

ROME averages the key over all its templates; MEMIT and PMET average within each template group
first (`[["{}"], templates...]`), so the bare prompt carries half the weight (notes §3.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from editsweep.editing.protocol import EditRequest
from editsweep.editing.tokens import EncodedRow, TokenizationError, encode_row

__all__ = ["RequestRows", "build_rows", "KL_PROMPT", "average_keys"]

# The "essence" prompt whose next-token distribution the δ optimisation keeps (ROME's `{} is a`).
KL_PROMPT = "{} is a"


@dataclass(frozen=True)
class RequestRows:
    """Rows of one request: `rewrite[i]` is the prompt under template i of group `group_of[i]`."""

    request: EditRequest
    rewrite: tuple[EncodedRow, ...]
    group_of: tuple[int, ...]
    kl: EncodedRow

    @property
    def bare(self) -> EncodedRow:
        """The row of the bare prompt (template "{}", always first)."""
        return self.rewrite[0]


def _split_template(template: str) -> str:
    if template.count("{}") != 1 or not template.endswith("{}"):
        raise ValueError(f"context template {template!r} must end with the only '{{}}'")
    return template[:-2]


def build_rows(
    tokenizer: Any, requests: Sequence[EditRequest], template_groups: Sequence[Sequence[str]]
) -> list[RequestRows]:
    """Tokenize every request under every template (targets appended) and its KL prompt."""
    if not template_groups or list(template_groups[0]) != ["{}"]:
        raise ValueError(f"the first template group must be ['{{}}'], got {template_groups[:1]!r}")
    flat = [(g, _split_template(t)) for g, group in enumerate(template_groups) for t in group]
    out = []
    for index, request in enumerate(requests):
        try:
            rewrite = tuple(
                encode_row(
                    tokenizer, prefix, request.prompt, request.subject_start, request.subject,
                    request.target_new, request.key_position, request.context_end,
                )
                for _, prefix in flat
            )
            kl_text = KL_PROMPT.format(request.subject)
            kl = encode_row(tokenizer, "", kl_text, 0, request.subject, "", request.key_position)
        except TokenizationError as exc:
            raise TokenizationError(f"request {index} (prompt ends {request.prompt[-50:]!r}): {exc}") from None
        out.append(RequestRows(request, rewrite, tuple(g for g, _ in flat), kl))
    return out


def average_keys(keys: Any, group_of: Sequence[int], by_group: bool) -> Any:
    """Mean of per-template keys [n_templates, m]: plain (ROME) or per group then across groups (MEMIT)."""
    if not by_group:
        return keys.mean(dim=0)
    groups = sorted(set(group_of))
    import torch

    index = torch.tensor(list(group_of), device=keys.device)
    return torch.stack([keys[index == g].mean(dim=0) for g in groups]).mean(dim=0)
