"""Token positions of an edit, found by character offsets of one joint tokenization.

Notes §3.1: EasyEdit prepends a blind `" "` to targets and counts the subject index as
`len(encode(prefix + subject)) - 1`, which is wrong for code (`= ` + `my_re_search`) and only
right with right padding. Here `prefix + prompt + target` is tokenized once with offsets; the
target is every token that holds a target character (a token straddling the boundary belongs
to the target), the key token is found from the subject's character span, and padding is
applied later with explicit position ids, so either padding side gives the same positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

__all__ = [
    "EncodedRow",
    "Batch",
    "TokenizationError",
    "encode_row",
    "pad_rows",
    "pad_id_of",
    "padding_side_of",
    "chunk_rows",
]


class TokenizationError(ValueError):
    """The key or target cannot be located on token boundaries for this request."""


@dataclass(frozen=True)
class EncodedRow:
    """One tokenized text: ids, the key position, and the target token positions.

    `target_positions[j]` is the index in `input_ids` of target token j; it is predicted by the
    logits at `target_positions[j] - 1`. `prompt_len` counts the tokens before the first target
    token (the whole sequence when there is no target).
    """

    input_ids: tuple[int, ...]
    lookup: int
    target_positions: tuple[int, ...]
    prompt_len: int

    @property
    def target_ids(self) -> tuple[int, ...]:
        return tuple(self.input_ids[p] for p in self.target_positions)


def _require_fast(tokenizer: Any) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            f"{type(tokenizer).__name__} is not a fast tokenizer; editing needs character offsets "
            f"(load it with use_fast=True)"
        )


def encode_row(
    tokenizer: Any,
    prefix: str,
    prompt: str,
    subject_start: int | None,
    subject: str | None,
    target: str,
    key_position: str,
    context_end: int | None = None,
) -> EncodedRow:
    """Tokenize `prefix + prompt + target` and locate the key and the target tokens.

    `subject_start` is the subject's character offset inside `prompt`. Special tokens the
    tokenizer adds (BOS, a trailing EOS) are never target tokens. With `context_end` (an offset
    in `prompt`), the text up to it is tokenized on its own and the rest continues from there,
    as in generation, where the model's input is tokenized alone and the model writes the rest.
    """
    _require_fast(tokenizer)
    text = prefix + prompt + target
    boundary = len(prefix) + len(prompt)
    ids, offsets, special = _encode(tokenizer, text, None if context_end is None else len(prefix) + context_end)
    target_positions = [
        i for i, ((start, end), sp) in enumerate(zip(offsets, special)) if not sp and end > boundary and end > start
    ]
    if target and not target_positions:
        raise TokenizationError(f"target {target!r} produced no tokens after prompt ending {prompt[-40:]!r}")
    prompt_len = target_positions[0] if target_positions else len(ids)
    if target_positions and target_positions != list(range(prompt_len, prompt_len + len(target_positions))):
        raise TokenizationError(f"target {target!r} is not a contiguous run of tokens")
    if prompt_len == 0:
        raise TokenizationError(
            f"no prompt token precedes target {target!r}: the prompt merged into the target's first token"
        )
    lookup = _key_index(offsets, special, prefix, prompt, subject_start, subject, key_position, prompt_len)
    return EncodedRow(tuple(ids), lookup, tuple(target_positions), prompt_len)


def _tokenize(tokenizer: Any, text: str, special_tokens: bool) -> tuple[list[int], list[tuple[int, int]], list[int]]:
    enc = tokenizer(text, add_special_tokens=special_tokens, return_offsets_mapping=True, return_special_tokens_mask=True)
    ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    special = list(enc["special_tokens_mask"])
    # Trailing special tokens (an EOS some tokenizers append) are dropped: the edit is a prefix.
    while len(ids) > 1 and special[-1]:
        ids.pop(), offsets.pop(), special.pop()
    return ids, offsets, special


def _encode(tokenizer: Any, text: str, split: int | None) -> tuple[list[int], list[tuple[int, int]], list[int]]:
    """Joint tokenization of `text`, or the input part `text[:split]` alone followed by the rest.

    The split form is used only when the two parts decode back to the same text as the joint
    form; a tokenizer that prepends a word marker to every encoded text (SentencePiece's dummy
    prefix) would otherwise insert a space, and there the joint form is what generation sees anyway.
    """
    joint = _tokenize(tokenizer, text, True)
    if split is None or split <= 0 or split >= len(text):
        return joint
    head = _tokenize(tokenizer, text[:split], True)
    tail = _tokenize(tokenizer, text[split:], False)
    ids = head[0] + tail[0]
    if tokenizer.decode(ids, skip_special_tokens=True) != tokenizer.decode(joint[0], skip_special_tokens=True):
        return joint
    offsets = head[1] + [(a + split, b + split) for a, b in tail[1]]
    return ids, offsets, head[2] + tail[2]


def _key_index(
    offsets: list[tuple[int, int]],
    special: list[int],
    prefix: str,
    prompt: str,
    subject_start: int | None,
    subject: str | None,
    key_position: str,
    prompt_len: int,
) -> int:
    if key_position == "last":
        return prompt_len - 1
    if subject is None or subject_start is None:
        raise ValueError(f"key position {key_position!r} needs a subject")
    start = len(prefix) + subject_start
    end = start + len(subject)
    real = [i for i in range(prompt_len) if not special[i] and offsets[i][1] > offsets[i][0]]
    if key_position in ("subject_first", "subject_last", "subject_first_after_last"):
        ending = [i for i in real if offsets[i][1] == end]
        if not ending:
            holder = next((i for i in real if offsets[i][0] < end < offsets[i][1]), None)
            piece = prefix + prompt
            where = repr(piece[offsets[holder][0] : offsets[holder][1]]) if holder is not None else "?"
            raise TokenizationError(
                f"subject {subject!r} does not end on a token boundary: its last character is inside "
                f"token {where} (tokenize(prefix + subject) is not a prefix of tokenize(prompt)); "
                f"choose a subject that ends where a token ends"
            )
        last = ending[0]
        if key_position == "subject_last":
            return last
        if key_position == "subject_first_after_last":
            return min(last + 1, prompt_len - 1)
        first = next(i for i in real if offsets[i][1] > start)
        return first
    raise ValueError(f"unknown key position {key_position!r}")


def pad_id_of(tokenizer: Any) -> int:
    """The pad id, falling back to EOS (as generation does) when the tokenizer has none."""
    for attr in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    raise ValueError(f"{type(tokenizer).__name__} has neither a pad nor an EOS token")


def padding_side_of(tokenizer: Any) -> str:
    side = getattr(tokenizer, "padding_side", "right")
    if side not in ("left", "right"):
        raise ValueError(f"tokenizer padding_side must be 'left' or 'right', got {side!r}")
    return side


@dataclass
class Batch:
    """Padded rows on a device; `shift[b]` maps a row position p to column `shift[b] + p`."""

    input_ids: Any
    attention_mask: Any
    position_ids: Any
    shift: list[int]

    def column(self, row: int, position: int) -> int:
        return self.shift[row] + position

    def model_inputs(self) -> dict[str, Any]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask, "position_ids": self.position_ids}


def pad_rows(rows: Sequence[EncodedRow] | Sequence[Sequence[int]], pad_id: int, side: str, device: Any) -> Batch:
    """Pad to one length on `side`, with position ids counted from each row's first real token."""
    import torch

    seqs = [list(r.input_ids) if isinstance(r, EncodedRow) else list(r) for r in rows]
    if not seqs:
        raise ValueError("pad_rows got no rows")
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    pos = torch.zeros((len(seqs), width), dtype=torch.long)
    shift = []
    for b, seq in enumerate(seqs):
        offset = width - len(seq) if side == "left" else 0
        ids[b, offset : offset + len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[b, offset : offset + len(seq)] = 1
        pos[b, offset : offset + len(seq)] = torch.arange(len(seq))
        shift.append(offset)
    return Batch(ids.to(device), mask.to(device), pos.to(device), shift)


def chunk_rows(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Split row indices (in order) into chunks whose padded size stays within `max_tokens`."""
    chunks: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i, length in enumerate(lengths):
        new_width = max(width, length)
        if current and new_width * (len(current) + 1) > max_tokens:
            chunks.append(current)
            current, new_width = [], length
        current.append(i)
        width = new_width
    if current:
        chunks.append(current)
    return chunks
