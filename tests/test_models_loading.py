"""load_model on real save_pretrained checkpoints, name resolution, dtype and tokenizer defaults."""

from __future__ import annotations

import json

import pytest
import torch

from editsweep.models.arch import UnsupportedArchitectureError, arch_of
from editsweep.models.configs import KNOWN_MODELS, known_config
from editsweep.models.loading import load_model, local_tokenizer, resolve_name, tiny_model

ARCHS = ("llama", "qwen2")


@pytest.fixture(scope="module", params=ARCHS)
def checkpoint(request, tmp_path_factory):
    """A tiny model and its tokenizer written with save_pretrained, plus the in-memory originals."""
    arch = request.param
    model = tiny_model(arch, seed=3)
    tokenizer = local_tokenizer(arch)
    path = tmp_path_factory.mktemp(f"ckpt-{arch}")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return arch, path, model, tokenizer


def test_load_by_path_gives_the_same_model_and_tokenizer(checkpoint):
    arch, path, original, original_tok = checkpoint
    model, tokenizer = load_model(path, device="cpu")
    assert arch_of(model).model_type == arch
    assert model.dtype == torch.float32  # CPU default
    assert not model.training
    assert model.config._attn_implementation == "sdpa"
    text = "def add(a, b):\n    return a + b\n"
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    assert ids[0].tolist() == original_tok(text)["input_ids"]
    with torch.no_grad():
        assert torch.equal(model(ids).logits, original(ids).logits)
    assert tokenizer.padding_side == "left" and tokenizer.pad_token_id is not None
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    assert (ids[0, 0].item() == tokenizer.bos_token_id) == (arch == "llama")


def test_dtype_argument(checkpoint):
    _, path, _, _ = checkpoint
    for spelled, expected in (("bfloat16", torch.bfloat16), ("fp64", torch.float64), (torch.float16, torch.float16), ("auto", torch.float32)):
        model, _ = load_model(path, device="cpu", dtype=spelled)
        assert model.dtype == expected
    for bad in ("int8", "float7", torch.int64):
        with pytest.raises(ValueError, match="unknown or non-float dtype"):
            load_model(path, device="cpu", dtype=bad)


def test_missing_pad_token_falls_back_to_eos(checkpoint, tmp_path):
    arch, path, model, tokenizer = checkpoint
    tokenizer = local_tokenizer(arch)
    tokenizer.pad_token = None
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config.get("pad_token") is None
    _, loaded = load_model(tmp_path, device="cpu")
    assert loaded.pad_token == loaded.eos_token and loaded.padding_side == "left"


def test_expect_asserts_the_known_config(checkpoint):
    _, path, _, _ = checkpoint
    with pytest.raises(ValueError, match=r"does not look like codellama_7b .*intermediate_size=160 \(expected 11008\)"):
        load_model(path, device="cpu", expect="codellama_7b")
    with pytest.raises(ValueError, match="expect='llama7' is not a known model"):
        load_model(path, device="cpu", expect="llama7")


def test_a_known_model_saved_locally_passes_its_check(tmp_path):
    # The real 7B config with reduced depth is no longer CodeQwen1.5 (layers differ): the check
    # must name exactly that field; the full config must pass the check without loading weights.
    from editsweep.models.loading import _check_known

    _check_known(known_config("codeqwen15_7b"), "codeqwen15_7b", "full config")
    with pytest.raises(ValueError, match=r"num_hidden_layers=2 \(expected 32\)$"):
        _check_known(known_config("codeqwen15_7b", num_hidden_layers=2), "codeqwen15_7b", "shrunk")


def test_unsupported_architecture_fails_before_loading_weights(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedArchitectureError, match="'gpt2'.*llama, qwen2"):
        load_model(tmp_path, device="cpu")


def test_resolve_names():
    for key, known in KNOWN_MODELS.items():
        by_key, by_hub = resolve_name(key), resolve_name(known.hub_id)
        assert by_key.kind == by_hub.kind == "known"
        assert by_key.location == by_hub.location == known.hub_id
        assert by_key.known == by_hub.known == key
    assert resolve_name("small:qwen2").kind == "small"
    assert resolve_name("tiny:llama").arch == "llama"
    assert resolve_name("bigcode/some-model").kind == "hub"
    with pytest.raises(ValueError, match="'small:gpt2'.*small:llama, small:qwen2"):
        resolve_name("small:gpt2")
    with pytest.raises(FileNotFoundError, match="'/no/such/dir'"):
        resolve_name("/no/such/dir")


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_alias(arch):
    model, tokenizer = load_model(f"tiny:{arch}", device="cpu")
    assert arch_of(model).model_type == arch and arch_of(model).n_layers == 4
    assert len(tokenizer) <= model.config.vocab_size
    again, _ = load_model(f"tiny:{arch}", device="cpu")
    assert torch.equal(again.lm_head.weight, model.lm_head.weight)  # seed 0 both times


def test_tokenizer_class_forced_by_model_type_is_checked_against_tokenizer_json(tmp_path, caplog):
    # A qwen2 checkpoint whose tokenizer.json uses another pre-tokenizer (the llama flavour's):
    # AutoTokenizer would impose Qwen2Tokenizer's split ("12" -> "1", "2"); the loader must
    # notice and keep the checkpoint's own tokenization.
    from transformers import AutoTokenizer

    tokenizer = local_tokenizer("llama")
    tokenizer.save_pretrained(tmp_path)
    tiny_model("qwen2", vocab_size=len(tokenizer)).save_pretrained(tmp_path)
    text = "x = 12345\n"
    assert AutoTokenizer.from_pretrained(tmp_path)(text)["input_ids"] != tokenizer(text)["input_ids"]
    with caplog.at_level("WARNING"):
        _, loaded = load_model(tmp_path, device="cpu")
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert "tokenizes code differently" in caplog.text
    assert loaded.padding_side == "left" and loaded.pad_token == "<pad>"
