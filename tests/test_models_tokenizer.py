"""The locally trained BPE tokenizer in its two flavours (editsweep.models.tokenizer)."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from editsweep.benchmark.demo import training_texts
from editsweep.models.configs import tiny_config
from editsweep.models.corpus import stdlib_texts
from editsweep.models.tokenizer import FLAVOURS, special_token_ids, train_tokenizer

SAMPLES = [
    "import re\n\n\ndef f(text):\n    return re.search(r\"\\d\", text)\n",
    "x = 12345 + 0.5\n\t\ty = 'ok'\r\n",
    "caf\u00e9 = '\u00fcber'  # non-ASCII survives the byte level\n",
]


@pytest.fixture(scope="module")
def corpus():
    return training_texts() + stdlib_texts(4000)


@pytest.fixture(scope="module")
def tokenizers(corpus):
    return {arch: train_tokenizer(corpus, arch, vocab_size=1200) for arch in FLAVOURS}


def test_llama_flavour_adds_bos_and_has_eos_pad(tokenizers):
    tok = tokenizers["llama"]
    ids = special_token_ids("llama")
    assert ids == {"bos": 1, "eos": 2, "pad": 3, "unk": 0}
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<s>", "</s>", "<pad>")
    assert tok.bos_token_id == 1 and tok.eos_token_id == 2 and tok.pad_token_id == 3
    encoded = tok("def f():")["input_ids"]
    assert encoded[0] == tok.bos_token_id
    assert tok("def f():", add_special_tokens=False)["input_ids"] == encoded[1:]


def test_qwen2_flavour_adds_no_bos_and_shares_bos_eos(tokenizers):
    tok = tokenizers["qwen2"]
    ids = special_token_ids("qwen2")
    assert ids["bos"] == ids["eos"] == 0 and ids["pad"] == 1 and ids["unk"] is None
    assert tok.bos_token == tok.eos_token == "<|endoftext|>"
    assert tok.pad_token == "<fim_pad>" and tok.pad_token_id != tok.eos_token_id
    encoded = tok("def f():")["input_ids"]
    assert tok.bos_token_id not in encoded
    assert tok("def f():", add_special_tokens=False)["input_ids"] == encoded


@pytest.mark.parametrize("arch", sorted(FLAVOURS))
def test_round_trip_and_offsets(tokenizers, arch):
    tok = tokenizers[arch]
    assert len(tok) == 1200
    for text in SAMPLES:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
        offsets = tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        assert offsets[-1][1] == len(text)
    assert tok.padding_side == "left"
    batch = tok(["a", "def f(x):\n    return x"], padding=True)
    assert batch["input_ids"][0][0] == tok.pad_token_id and batch["attention_mask"][0][0] == 0


@pytest.mark.parametrize("arch", sorted(FLAVOURS))
def test_training_is_deterministic(corpus, tokenizers, arch):
    again = train_tokenizer(corpus, arch, vocab_size=1200)
    assert again.get_vocab() == tokenizers[arch].get_vocab()
    merges = [json.loads(t.backend_tokenizer.to_str())["model"]["merges"] for t in (again, tokenizers[arch])]
    assert merges[0] == merges[1]


@pytest.mark.parametrize("arch", sorted(FLAVOURS))
def test_save_pretrained_next_to_a_model_config_reloads_identically(tmp_path, tokenizers, arch, corpus):
    # transformers picks the tokenizer class from config.json's model_type (Qwen2Tokenizer for
    # qwen2, which rebuilds the pre-tokenizer): the reloaded tokenizer must still agree.
    tok = tokenizers[arch]
    tok.save_pretrained(tmp_path)
    tiny_config(arch, vocab_size=len(tok)).save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for text in SAMPLES + corpus[:20]:
        assert loaded(text)["input_ids"] == tok(text)["input_ids"], text[:60]
    assert (loaded.bos_token, loaded.eos_token, loaded.pad_token) == (tok.bos_token, tok.eos_token, tok.pad_token)
    assert loaded.padding_side == "left"


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="flavour 'gpt2'"):
        train_tokenizer(["x"], "gpt2")
    with pytest.raises(ValueError, match="at least one text"):
        train_tokenizer([], "llama")
