"""`sample`: n completions per prompt, as text cut at the stop rules.

Text in, text out: prompts are tokenized with the model's tokenizer (its own special-token
convention, e.g. BOS for Llama), token ids go through `engine.generate_token_ids`, and each
continuation is decoded *after its prompt* — decoded together with the last prompt tokens and
stripped of their text — so a tokenizer that merges a leading space into the first generated
token still yields the exact characters that follow the prompt. Hence, for every returned
completion, the program is `prompt + completion`.
"""

from __future__ import annotations

import logging
from typing import Sequence

from editsweep.generation.config import GenerationConfig
from editsweep.generation.engine import generate_token_ids
from editsweep.generation.stopping import NO_STOP, StopRule
from editsweep.generation.streams import derive_seed

log = logging.getLogger(__name__)

__all__ = ["sample", "default_stop_rule", "prompt_token_ids"]

_CONTEXT_TOKENS = 4  # prompt tokens decoded with a continuation to recover its exact leading text


def default_stop_rule(cfg: GenerationConfig, source: str = "humaneval") -> StopRule:
    """The stop rule `cfg` asks for, for prompts of `source` (see `editsweep.prompts`)."""
    from editsweep.prompts import stop_rule

    return stop_rule(source, cfg)


def prompt_token_ids(tokenizer, prompts: Sequence[str], cfg: GenerationConfig, model=None) -> list[list[int]]:
    """Token ids of each prompt, with clear errors for empty and over-long prompts."""
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise TypeError(f"prompts must be a list of strings, got {type(prompts).__name__}")
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise TypeError(f"prompt {index} is {type(prompt).__name__}, not str")
        if not prompt.strip():
            raise ValueError(f"prompt {index} is empty")
    encoded = tokenizer(list(prompts), add_special_tokens=True)["input_ids"] if prompts else []
    limit = cfg.max_prompt_tokens
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    for index, ids in enumerate(encoded):
        if len(ids) > limit:
            raise ValueError(f"prompt {index} has {len(ids)} tokens, over max_prompt_tokens={limit}")
        if positions is not None and len(ids) + cfg.max_new_tokens > positions:
            raise ValueError(
                f"prompt {index} has {len(ids)} tokens; with max_new_tokens={cfg.max_new_tokens} it exceeds the "
                f"model's {positions} positions"
            )
    return [list(ids) for ids in encoded]


class _TextFinisher:
    """Decodes a sequence's tokens after its prompt and reports whether its stop rule matched."""

    def __init__(self, tokenizer, prompts, prompt_ids, rules: Sequence[StopRule]):
        self.tokenizer = tokenizer
        self.prompts = prompts
        self.rules = rules
        self.context = [ids[-_CONTEXT_TOKENS:] for ids in prompt_ids]
        self.context_text = [self._decode(ids) for ids in self.context]
        self.active = any(rule.active for rule in rules)

    def _decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def text(self, prompt_index: int, token_ids: Sequence[int]) -> str:
        """The characters the tokens add after the prompt."""
        if not token_ids:
            return ""
        full = self._decode(list(self.context[prompt_index]) + list(token_ids))
        head = self.context_text[prompt_index]
        if full.startswith(head):
            return full[len(head):]
        return self._decode(list(token_ids))  # the context ended inside a multi-byte character

    def finished(self, prompt_index: int, sample_index: int, token_ids: Sequence[int]) -> bool:
        rule = self.rules[prompt_index]
        if not rule.active:
            return False
        return rule.find(self.text(prompt_index, token_ids), self.prompts[prompt_index][-1:]) is not None

    def completion(self, prompt_index: int, token_ids: Sequence[int]) -> str:
        return self.rules[prompt_index].cut(self.text(prompt_index, token_ids), self.prompts[prompt_index][-1:])


def _stop_rules(stops, count: int, cfg: GenerationConfig) -> list[StopRule]:
    if stops is None:
        return [default_stop_rule(cfg)] * count
    if isinstance(stops, StopRule):
        return [stops] * count
    if isinstance(stops, str):
        raise TypeError("stops must be a StopRule, a list of stop strings, or one StopRule per prompt — not a str")
    stops = list(stops)
    if all(isinstance(s, str) for s in stops):
        return [StopRule(tuple(stops))] * count
    if len(stops) != count:
        raise ValueError(f"{len(stops)} stop rules for {count} prompts")
    rules = []
    for index, rule in enumerate(stops):
        if rule is None:
            rules.append(NO_STOP)
        elif isinstance(rule, StopRule):
            rules.append(rule)
        elif isinstance(rule, (list, tuple)):
            rules.append(StopRule(tuple(rule)))
        else:
            raise TypeError(f"stop rule {index} is {type(rule).__name__}; expected StopRule, list of str or None")
    return rules


def _seed_list(seeds, prompts, cfg: GenerationConfig) -> list[int]:
    if seeds is None:
        return [derive_seed(cfg.seed, prompt) for prompt in prompts]
    seeds = list(seeds)
    if len(seeds) != len(prompts):
        raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts (one seed per prompt)")
    for index, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed {index} is {seed!r}; seeds must be integers")
    return seeds


def sample(
    model,
    tokenizer,
    prompts: Sequence[str],
    n: int,
    cfg: GenerationConfig | None = None,
    seeds: Sequence[int] | None = None,
    stops=None,
    stats: list | None = None,
    progress: bool = True,
) -> list[list[str]]:
    """n completions per prompt: the text after the prompt, cut at the stop rule, in sample order.

    seeds: one integer per prompt (the sweep passes a seed per (cell, problem)); sample j of a
    prompt uses the random stream (seed, j), so a completion does not depend on the batch, on
    the other prompts, or on n (sample j is the same for any n > j). Without seeds, each
    prompt's seed is derived from cfg.seed and its text.
    stops: None (cfg's rule for function-body prompts), a StopRule or list of stop strings for
    all prompts, or one StopRule / list / None per prompt (see `editsweep.prompts.prepare`).
    stats: if a list is given, one `engine.BatchStats` per batch is appended.
    """
    cfg = cfg or GenerationConfig()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    prompts = list(prompts) if not isinstance(prompts, str) else prompts
    prompt_ids = prompt_token_ids(tokenizer, prompts, cfg, model)
    if not prompts:
        return []
    seed_list = _seed_list(seeds, prompts, cfg)
    rules = _stop_rules(stops, len(prompts), cfg)
    finisher = _TextFinisher(tokenizer, prompts, prompt_ids, rules)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    eos_ids = _eos_ids(model, tokenizer)
    token_ids = generate_token_ids(
        model, prompt_ids, n, cfg, seed_list, pad_id, eos_ids, finisher=finisher, stats=stats, progress=progress
    )
    return [
        [finisher.completion(index, sequence) for sequence in samples] for index, samples in enumerate(token_ids)
    ]


def _eos_ids(model, tokenizer) -> list[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), getattr(model, "config", None)):
        value = getattr(source, "eos_token_id", None) if source is not None else None
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return sorted(ids)
