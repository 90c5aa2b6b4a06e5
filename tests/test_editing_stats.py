"""Second-moment statistics (notes §9 test 11): the batched one-pass accumulation equals the
brute-force (1/N) Σ k kᵀ over unpadded sequences, is symmetric PSD, fp32 and fp64 agree, the
cache round-trips bit-identically with its token count, and the corpus order is deterministic."""

from __future__ import annotations

import logging

import pytest
import torch
from transformers import AutoModelForCausalLM

from editsweep.benchmark.demo import training_texts
from editsweep.editing.corpus import parse_corpus, stdlib_files
from editsweep.editing.hooks import capture
from editsweep.editing.identity import model_identity, tokenizer_identity
from editsweep.editing.stats import (
    StatsRequest,
    _token_batches,
    compute_second_moments,
    get_second_moments,
    load_second_moment,
    stats_path,
)
from editsweep.models.arch import arch_of, get_module
from editsweep.models.configs import tiny_config
from editsweep.models.tokenizer import train_tokenizer

torch.set_num_threads(1)

REQUEST = StatsRequest(corpus="stdlib", tokens=1500, max_length=160, batch_tokens=480)


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def setup(request):
    tok = train_tokenizer(training_texts(), request.param, vocab_size=512)
    torch.manual_seed(0)
    config = tiny_config(request.param, vocab_size=len(tok))
    model64 = AutoModelForCausalLM.from_config(config, dtype=torch.float64).eval()
    model32 = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    model32.load_state_dict({k: v.float() for k, v in model64.state_dict().items()})
    return model64, model32, tok


def test_matches_brute_force_and_excludes_padding(setup):
    model, _, tok = setup
    arch = arch_of(model)
    texts = training_texts()  # documents of varied lengths, so batches are padded
    batches = list(_token_batches(tok, iter(texts), REQUEST))
    sequences = [seq for batch in batches for seq in batch]
    assert sum(map(len, sequences)) == REQUEST.tokens
    assert len(batches) > 1 and any(len({len(s) for s in batch}) > 1 for batch in batches)  # padding happens
    result = compute_second_moments(model, tok, [0, 2], REQUEST, progress=False, documents=texts)
    for layer in (0, 2):
        module = get_module(model, arch.mlp_down(layer))
        total = torch.zeros(arch.intermediate_size, arch.intermediate_size, dtype=torch.float64)
        for seq in sequences:  # one unpadded sequence at a time
            with torch.no_grad(), capture({"k": module}, "input") as store:
                model(torch.tensor([seq]))
            keys = store["k"][0]
            total += keys.T @ keys
        brute = total / REQUEST.tokens
        mom2, count = result[layer]
        assert count == REQUEST.tokens
        assert torch.allclose(mom2.double(), brute, rtol=1e-5, atol=1e-12)
        assert torch.equal(mom2, mom2.T)
        assert float(torch.linalg.eigvalsh(mom2.double()).min()) > -1e-9


def test_float32_and_float64_agree(setup):
    model64, model32, tok = setup
    c64 = compute_second_moments(model64, tok, [1], REQUEST, progress=False)[1][0]
    c32 = compute_second_moments(model32, tok, [1], REQUEST, progress=False)[1][0]
    assert torch.allclose(c32.double(), c64.double(), rtol=1e-4, atol=1e-9)


def test_cache_round_trip(setup, tmp_path, caplog):
    model, _, tok = setup
    first = get_second_moments(model, tok, [1, 3], corpus="stdlib", tokens=1500, cache_dir=tmp_path, max_length=160, batch_tokens=480)
    path = stats_path(tmp_path, model_identity(model), tokenizer_identity(tok), "mlp_down", 3, REQUEST)
    assert path.is_file()
    mom2, count = load_second_moment(path)
    assert count == 1500 and torch.equal(mom2, first[3])
    with caplog.at_level(logging.INFO, logger="editsweep.editing.stats"):
        second = get_second_moments(model, tok, [3, 1], corpus="stdlib", tokens=1500, cache_dir=tmp_path, max_length=160, batch_tokens=480)
    assert "cached" in caplog.text and "saved" not in caplog.text
    assert all(torch.equal(first[l], second[l]) for l in (1, 3))
    # Another token budget is another entry; the o_proj input has its own statistics.
    other = get_second_moments(model, tok, [1], tokens=1200, cache_dir=tmp_path, max_length=160, batch_tokens=480)
    assert not torch.equal(other[1], first[1])
    attn = get_second_moments(model, tok, [1], tokens=1200, cache_dir=tmp_path, max_length=160, batch_tokens=480, module="attn_out")
    assert attn[1].shape == (arch_of(model).hidden_size, arch_of(model).hidden_size)


def test_identity_is_stable_and_specific(setup):
    model64, model32, tok = setup
    before = tokenizer_identity(tok)
    tok("x " * 50, truncation=True, max_length=8)  # changes the backend's runtime truncation setting
    assert tokenizer_identity(tok) == before
    assert model_identity(model64) != model_identity(model32)  # dtype is part of the fingerprint
    torch.manual_seed(1)
    other = AutoModelForCausalLM.from_config(model64.config, dtype=torch.float64)
    assert model_identity(other) != model_identity(model64)


def test_corpus_specs_and_order():
    assert stdlib_files() == stdlib_files()
    assert not any("site-packages" in p.parts for p in stdlib_files())
    spec = parse_corpus("hf:bigcode/the-stack-smol:data/python@train")
    assert (spec.dataset, spec.config, spec.split) == ("bigcode/the-stack-smol", "data/python", "train")
    assert parse_corpus("stdlib").identity.startswith("stdlib-py3.")
    for bad in ("wikipedia", "hf:", "hf:@train"):
        with pytest.raises(ValueError, match="corpus"):
            parse_corpus(bad)
    with pytest.raises(ValueError, match="batch_tokens"):
        StatsRequest(tokens=10, max_length=100, batch_tokens=50)


def test_budget_beyond_corpus_is_an_error(setup):
    _, _, tok = setup
    with pytest.raises(ValueError, match="ran out"):
        list(_token_batches(tok, iter(["def f(x):\n    return x\n"] * 3), StatsRequest(tokens=10_000, max_length=64, batch_tokens=256)))


def test_stats_compute_command(tmp_path, capsys):
    import json

    from editsweep.cli import main

    args = ["stats", "compute", "--model", "tiny:qwen2", "--layers", "1", "2", "--tokens", "600", "--max-length", "200",
            "--batch-tokens", "600", "--cache-dir", str(tmp_path), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for layer in ("1", "2"):
        mom2, count = load_second_moment(summary["files"][layer])
        assert count == 600 and mom2.shape == (160, 160)
    assert main(args[:5] + ["7"] + args[7:]) == 2  # a layer the model lacks is a clear error
