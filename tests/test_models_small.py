"""The small trained models: greedy reproduction of the demo set, and the on-disk cache.

The reproduction test uses the real cache (`$EDITSWEEP_CACHE` or ~/.cache/editsweep): on a fresh
machine it trains each model once (about a minute of CPU per architecture) and later runs reuse
it. The cache-mechanics tests use a throw-away cache and a deliberately cheap recipe.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import pytest

from editsweep.benchmark.demo import DEMO_APIS
from editsweep.models import small
from editsweep.models.corpus import demo_pairs, versioned_pairs
from editsweep.models.loading import load_model
from editsweep.models.reproduce import greedy_reproduction
from editsweep.models.small import MANIFEST, small_model_path, small_model_status
from editsweep.models.training import SmallRecipe

ARCHS = ("llama", "qwen2")
# Stated threshold: greedy decoding from each demo prompt reproduces at least this fraction of the
# demo reference solutions (measured with the default recipe: see the module report / README).
REPRODUCTION_THRESHOLD = 0.80
# The target is 120 s of training on 2 idle cores (measured ~110 s here); the guard allows twice
# that because the suite may train while the machine is busy (training_threads drops to one).
TRAIN_BUDGET_S = 240

CHEAP = SmallRecipe(
    hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
    max_position_embeddings=256, vocab_size=400, steps=2, warmup_steps=1, stdlib_chunks_per_step=1,
    chunk_tokens=32, stdlib_chars_per_file=1500,
)


@pytest.mark.parametrize("arch", ARCHS)
def test_small_model_reproduces_demo_solutions(arch):
    path = small_model_path(arch)  # trains on first use
    model, tokenizer = load_model(f"small:{arch}", device="cpu")
    assert model.config.model_type == arch
    assert model.config.intermediate_size != model.config.hidden_size
    assert (tokenizer("x")["input_ids"][0] == tokenizer.bos_token_id) == (arch == "llama")
    pairs = demo_pairs()
    result = greedy_reproduction(model, tokenizer, pairs)
    failures = [ref for ok, (_, ref) in zip(result.reproduced, pairs) if not ok]
    assert result.rate >= REPRODUCTION_THRESHOLD, f"{arch}: {result.rate:.0%} reproduced; missed e.g. {failures[:3]}"
    manifest = json.loads((path / MANIFEST).read_text())
    # the rate measured at build time (in memory) equals the one after save/load
    assert manifest["demo_greedy_reproduction"] == pytest.approx(result.rate)
    assert manifest["n_demo_texts"] == len(pairs)
    assert manifest["n_api_definitions"] == len(DEMO_APIS)  # new names are known sub-tokens (corpus)
    assert manifest["n_versioned_solutions"] == len(versioned_pairs()) > 0  # both API versions (corpus)
    assert manifest["train_seconds"] <= TRAIN_BUDGET_S, f"{arch}: trained in {manifest['train_seconds']} s"


def test_cli_lists_and_reports_models(capsys):
    from editsweep.cli import main

    assert main(["models", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["codeqwen15_7b"]["intermediate"] == 13440
    assert {"small:llama", "small:qwen2", "tiny:llama", "tiny:qwen2"} <= set(rows)
    assert main(["models", "train", "--arch", "llama", "--json"]) == 0  # cached by the test above
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["name"] == "small:llama" and report["demo_greedy_reproduction"] >= REPRODUCTION_THRESHOLD
    assert main(["models", "train", "--arch", "gpt2"]) == 2


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDITSWEEP_CACHE", str(tmp_path / "cache"))
    builds = []
    real = small.train_and_save

    def counting(*args, **kwargs):  # a spy: the real build runs
        builds.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(small, "train_and_save", counting)
    return tmp_path / "cache", builds


def test_second_call_reuses_the_cache(cache):
    root, builds = cache
    path = small_model_path("qwen2", CHEAP, progress=False)
    assert builds == ["qwen2"]
    assert path.parent == root / "small"
    status = small_model_status("qwen2", CHEAP)
    assert status["valid"] and status["manifest"]["recipe"]["steps"] == 2
    started = time.perf_counter()
    assert small_model_path("qwen2", CHEAP, progress=False) == path
    assert builds == ["qwen2"]
    assert time.perf_counter() - started < 10
    other = small_model_path("qwen2", replace(CHEAP, steps=3), progress=False)
    assert other != path and builds == ["qwen2", "qwen2"]  # the recipe is part of the key


def test_corrupt_or_partial_cache_is_rebuilt_identically(cache):
    root, builds = cache
    path = small_model_path("llama", CHEAP, progress=False)
    weights = path / "model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[: len(original) // 2])  # truncated, as by a full disk
    assert "corrupt" in small_model_status("llama", CHEAP)["problem"]
    assert small_model_path("llama", CHEAP, progress=False) == path
    assert len(builds) == 2
    assert weights.read_bytes() == original  # seeded: the rebuild is bit-identical
    (path / MANIFEST).unlink()  # interrupted before the manifest
    stale = root / "small" / f".{path.name}.tmp-dead"
    stale.mkdir()
    assert "manifest" in small_model_status("llama", CHEAP)["problem"]
    load_path = small_model_path("llama", CHEAP, progress=False)
    assert len(builds) == 3 and small_model_status("llama", CHEAP)["valid"]
    assert not stale.exists()
    model, tokenizer = load_model(load_path, device="cpu")
    assert model.config.hidden_size == 32 and tokenizer.bos_token == "<s>"


def test_two_processes_train_once(tmp_path):
    """Parallel callers: one trains, the other waits on the lock and reuses the result."""
    log = tmp_path / "builds.log"
    go = tmp_path / "go"
    script = textwrap.dedent(f"""
        import os, sys, time
        os.environ["EDITSWEEP_CACHE"] = {str(tmp_path / "cache")!r}
        sys.path.insert(0, {str(__file__.rsplit("/", 1)[0])!r})
        from test_models_small import CHEAP
        from editsweep.models import small
        real = small.train_and_save
        def counting(*args, **kwargs):
            with open({str(log)!r}, "a") as handle:
                handle.write(str(os.getpid()) + "\\n")
            time.sleep(2)  # keep the lock held long enough for the other process to arrive
            return real(*args, **kwargs)
        small.train_and_save = counting
        while not os.path.exists({str(go)!r}):
            time.sleep(0.05)
        print(small.small_model_path("llama", CHEAP, progress=False))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    time.sleep(1)
    go.touch()
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-2000:]
    assert len({out.strip() for out, _ in outputs}) == 1
    assert len(log.read_text().split()) == 1


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="no small model for architecture 'gpt2'"):
        small_model_path("gpt2")


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_local_tokenizer_is_the_small_models_tokenizer(arch):
    """`local_tokenizer` (tiny models, random-weight timing runs) encodes exactly as the small models do,
    new API names included."""
    from transformers import AutoTokenizer

    from editsweep.models.loading import local_tokenizer

    saved = AutoTokenizer.from_pretrained(small_model_path(arch))
    fresh = local_tokenizer(arch)
    text = 'import re\ndef f(s):\n    return my_re_search(s, r"[0-9]+") or my_str_join(",", [s])\n'
    assert fresh(text)["input_ids"] == saved(text)["input_ids"]
    assert fresh.get_vocab() == saved.get_vocab()
