"""A small byte-level BPE tokenizer trained locally, in the two flavours of the paper models.

Editing code depends on how a tokenizer treats BOS (index of the subject's last token counts it)
and padding, so the test and demo models reproduce both real conventions:
- `llama` (CodeLlama, DeepSeek-Coder): `<s>` is added in front of every encoded text, `</s>` ends
  a sequence, `<pad>` pads, `<unk>` exists but byte-level BPE never emits it.
- `qwen2` (CodeQwen1.5): `<|endoftext|>` is both BOS and EOS and is *not* added on encode;
  `<fim_pad>` pads.
The qwen2 flavour also uses Qwen2's normalizer (NFC) and pre-tokenizer split (digits one by one):
transformers 5 loads any checkpoint whose config says `model_type: qwen2` with `Qwen2Tokenizer`,
which rebuilds the pipeline from vocab + merges with exactly those pieces, so a tokenizer trained
with another split would tokenize differently after `save_pretrained` + `AutoTokenizer`.
Padding side is left (decoder-only generation); editors that need right padding set it per call.
Training is deterministic for a given list of texts.
"""

from __future__ import annotations

from typing import Any, Iterable

__all__ = ["FLAVOURS", "VOCAB_SIZE", "special_token_ids", "train_tokenizer"]

VOCAB_SIZE = 4096

# Special tokens of each flavour, in id order (they take ids 0..k-1).
FLAVOURS: dict[str, dict[str, Any]] = {
    "llama": {
        "specials": ["<unk>", "<s>", "</s>", "<pad>"],
        "bos": "<s>",
        "eos": "</s>",
        "pad": "<pad>",
        "unk": "<unk>",
        "add_bos": True,
    },
    "qwen2": {
        "specials": ["<|endoftext|>", "<fim_pad>"],
        "bos": "<|endoftext|>",
        "eos": "<|endoftext|>",
        "pad": "<fim_pad>",
        "unk": None,
        "add_bos": False,
    },
}


# The pre-tokenizer split that transformers' Qwen2Tokenizer imposes (see module doc).
QWEN2_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _flavour(arch: str) -> dict[str, Any]:
    if arch not in FLAVOURS:
        raise ValueError(f"unknown tokenizer flavour {arch!r}; known: {', '.join(FLAVOURS)}")
    return FLAVOURS[arch]


def special_token_ids(arch: str) -> dict[str, int | None]:
    """Ids of bos/eos/pad/unk in the flavour `arch` (fixed: specials come first)."""
    flavour = _flavour(arch)
    specials = flavour["specials"]
    return {
        role: (specials.index(flavour[role]) if flavour[role] is not None else None)
        for role in ("bos", "eos", "pad", "unk")
    }


def train_tokenizer(texts: Iterable[str], arch: str, vocab_size: int = VOCAB_SIZE):
    """Train a byte-level BPE on `texts` and wrap it as a `PreTrainedTokenizerFast` of flavour `arch`."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    flavour = _flavour(arch)
    texts = list(texts)
    if not texts:
        raise ValueError("train_tokenizer needs at least one text")
    tokenizer = Tokenizer(models.BPE())
    if arch == "qwen2":
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(flavour["specials"]),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    bos = flavour["bos"]
    if flavour["add_bos"]:
        bos_id = tokenizer.token_to_id(bos)
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=bos,
        eos_token=flavour["eos"],
        pad_token=flavour["pad"],
        unk_token=flavour["unk"],
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=4096,
    )
    return wrapped
