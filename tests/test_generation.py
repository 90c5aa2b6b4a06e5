"""editsweep.generation on CPU with tiny random Llama / Qwen2 models and a locally trained tokenizer.

The reference for correctness is Hugging Face's own `generate`, one prompt at a time.
"""

from __future__ import annotations

import inspect
import textwrap

import pytest

torch = pytest.importorskip("torch")

from editsweep.generation import GenerationConfig, StopRule, sample  # noqa: E402
from editsweep.generation.engine import generate_token_ids  # noqa: E402
from editsweep.generation.sampling import prompt_token_ids  # noqa: E402

PROMPTS = [
    'def add(a, b):\n    """Return the sum of a and b."""\n',
    textwrap.dedent(
        '''\
        import os


        def join_all(parts):
            """Join every part of the list into one path, skipping empty parts.

            >>> join_all(["a", "b"])
            'a/b'
            """
        '''
    ),
    "def g():\n",
    'def longest(words):\n    """Return the longest word of the list, the first one on ties."""\n',
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and the test machine's cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizers():
    from editsweep.models.tokenizer import train_tokenizer

    texts = [inspect.getsource(inspect), inspect.getsource(textwrap)]
    return {arch: train_tokenizer(texts, arch, vocab_size=800) for arch in ("llama", "qwen2")}


def _model(arch, tokenizer, dtype=torch.float32, seed=0):
    from transformers import AutoModelForCausalLM

    from editsweep.models.configs import tiny_config

    torch.manual_seed(seed)
    config = tiny_config(arch, vocab_size=len(tokenizer), max_position_embeddings=256)
    return AutoModelForCausalLM.from_config(config, dtype=dtype).eval()


@pytest.fixture(scope="module")
def llama(tokenizers):
    return _model("llama", tokenizers["llama"]), tokenizers["llama"]


SAMPLING = GenerationConfig(temperature=1.0, top_p=0.9, max_new_tokens=24, stop_mode="none", ignore_eos=True, check_every=4)


# -- greedy correctness against Hugging Face generate, one prompt at a time ---------------------


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("layout", ["shared", "expand"])
def test_greedy_batched_equals_hf_generate_one_at_a_time(tokenizers, arch, layout):
    tokenizer = tokenizers[arch]
    model = _model(arch, tokenizer, dtype=torch.float64, seed=1)
    cfg = GenerationConfig(
        temperature=0, max_new_tokens=20, stop_mode="none", ignore_eos=True, kv_layout=layout, kv_bucket=8,
        prefill_chunk_tokens=64,  # several prefill chunks for the longer prompts
    )
    ids = prompt_token_ids(tokenizer, PROMPTS, cfg, model)
    assert len({len(p) for p in ids}) == len(ids), "prompts of different lengths exercise left padding"
    ours = generate_token_ids(model, ids, 2, cfg, seeds=[0] * len(ids), pad_id=tokenizer.pad_token_id)
    model.generation_config.eos_token_id = None  # exactly max_new_tokens, like ignore_eos
    for index, prompt in enumerate(ids):
        reference = model.generate(
            torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            do_sample=False, max_new_tokens=20, pad_token_id=tokenizer.pad_token_id,
        )[0, len(prompt):].tolist()
        assert ours[index] == [reference, reference], f"prompt {index}"


def test_greedy_text_batched_equals_one_at_a_time(llama):
    model, tokenizer = llama
    cfg = GenerationConfig(temperature=0, max_new_tokens=16, stop_mode="none", ignore_eos=True)
    batched = sample(model, tokenizer, PROMPTS, 1, cfg, progress=False)
    single = [sample(model, tokenizer, [p], 1, cfg, progress=False)[0] for p in PROMPTS]
    assert batched == single
    assert all(c[0] for c in batched)


# -- samples, seeds, batching ------------------------------------------------------------------


def test_n_samples_are_returned_in_order(llama):
    model, tokenizer = llama
    seeds = [11, 12, 13, 14]
    three = sample(model, tokenizer, PROMPTS, 3, SAMPLING, seeds=seeds, progress=False)
    two = sample(model, tokenizer, PROMPTS, 2, SAMPLING, seeds=seeds, progress=False)
    assert [len(s) for s in three] == [3] * len(PROMPTS)
    assert [s[:2] for s in three] == two  # sample j is stream (seed, j), whatever n is
    assert all(len(set(s)) > 1 for s in three), "samples of one prompt should differ at temperature 1"


def test_seeds_reproduce_and_differ(llama):
    model, tokenizer = llama
    first = sample(model, tokenizer, PROMPTS[:2], 2, SAMPLING, seeds=[5, 6], progress=False)
    again = sample(model, tokenizer, PROMPTS[:2], 2, SAMPLING, seeds=[5, 6], progress=False)
    other = sample(model, tokenizer, PROMPTS[:2], 2, SAMPLING, seeds=[7, 8], progress=False)
    assert first == again
    assert first != other
    # without seeds, each prompt's seed comes from cfg.seed and its text: reproducible too
    assert sample(model, tokenizer, PROMPTS[:2], 2, SAMPLING, progress=False) == sample(
        model, tokenizer, PROMPTS[:2], 2, SAMPLING, progress=False
    )


def test_results_do_not_depend_on_batching(tokenizers):
    tokenizer = tokenizers["qwen2"]
    model = _model("qwen2", tokenizer, dtype=torch.float64, seed=2)
    seeds = [101, 102, 103, 104]
    together = sample(model, tokenizer, PROMPTS, 2, SAMPLING, seeds=seeds, progress=False)
    # one prompt per batch (2 sequences at most), reversed order, other layout, tiny buckets
    alone = SAMPLING.replace(max_batch_sequences=2, kv_layout="expand", kv_bucket=3)
    stats = []
    reordered = sample(model, tokenizer, PROMPTS[::-1], 2, alone, seeds=seeds[::-1], stats=stats, progress=False)
    assert [s.prompts for s in stats] == [1] * len(PROMPTS)
    assert reordered[::-1] == together
    subset = sample(model, tokenizer, [PROMPTS[2], PROMPTS[0]], 2, SAMPLING, seeds=[103, 101], progress=False)
    assert subset == [together[2], together[0]]


def test_batch_plan_follows_the_token_budget(llama):
    model, tokenizer = llama
    stats = []
    cfg = SAMPLING.replace(token_budget=2 * (2 * 24) + 2 * 40, kv_layout="shared")
    sample(model, tokenizer, PROMPTS, 2, cfg, seeds=[1, 2, 3, 4], stats=stats, progress=False)
    assert sum(s.prompts for s in stats) == len(PROMPTS)
    assert len(stats) > 1
    for s in stats:
        assert s.prompts * s.prompt_len + s.sequences * 24 <= cfg.token_budget
    lengths = [s.prompt_len for s in stats]
    assert lengths == sorted(lengths, reverse=True), "longest prompts first"


# -- stopping ----------------------------------------------------------------------------------


def test_stop_strings_cut_exactly_and_end_early(llama):
    model, tokenizer = llama
    cfg = GenerationConfig(temperature=0, max_new_tokens=48, stop_mode="none", ignore_eos=True, check_every=4)
    full = sample(model, tokenizer, PROMPTS[:1], 1, cfg, progress=False)[0][0]
    assert len(full) > 12
    stop = full[8:11]
    expected = full[: full.find(stop)]
    stats = []
    cut = sample(model, tokenizer, PROMPTS[:1], 1, cfg, stops=[stop], stats=stats, progress=False)[0][0]
    assert cut == expected
    assert stats[0].steps < cfg.max_new_tokens - 1, "generation should stop once the stop string appeared"
    # per-prompt rules: the first prompt stops, the second (no rule) runs to the end
    both = sample(model, tokenizer, PROMPTS[:2], 1, cfg, stops=[StopRule((stop,)), None], progress=False)
    assert both[0][0] == expected
    assert both[1][0] == sample(model, tokenizer, PROMPTS[1:2], 1, cfg, progress=False)[0][0]


def test_eos_ends_a_sequence_unless_ignored(tokenizers):
    tokenizer = tokenizers["llama"]
    model = _model("llama", tokenizer, seed=3)
    with torch.no_grad():  # make EOS the only sensible next token
        model.lm_head.weight[tokenizer.eos_token_id] = model.lm_head.weight.abs().max() * 50
    cfg = GenerationConfig(temperature=0, max_new_tokens=12, stop_mode="none", check_every=4)
    stats = []
    assert sample(model, tokenizer, PROMPTS[:2], 2, cfg, stats=stats, progress=False) == [["", ""], ["", ""]]
    assert stats[0].steps == 0, "every sequence ended at its first token"
    ids = prompt_token_ids(tokenizer, PROMPTS[:1], cfg)
    kept = generate_token_ids(model, ids, 1, cfg.replace(ignore_eos=True), [0], tokenizer.pad_token_id, [tokenizer.eos_token_id])
    assert len(kept[0][0]) == 12


def test_stop_rule_function_body_semantics():
    from editsweep.prompts import stop_rule

    rule = stop_rule("humaneval", GenerationConfig())
    assert rule.cut("    return a + b\n\ndef other():\n    pass", "\n") == "    return a + b\n"
    assert rule.cut("def other():\n    pass", "\n") == ""  # the prompt's final newline starts the line
    assert rule.cut("    x = 1\nprint(x)", "\n") == "    x = 1"
    assert rule.cut("    x = 1\nif __name__ == '__main__':", "\n") == "    x = 1"
    assert rule.cut("    assert_ok()\n    print(1)", "\n") == "    assert_ok()\n    print(1)"  # indented: kept
    assert rule.cut("    return 1", "\n") == "    return 1"
    dedent = stop_rule("humaneval", GenerationConfig(stop_mode="dedent"))
    assert dedent.cut("    y = 2\n\n    return y\nfoo = 3\n", "\n") == "    y = 2\n\n    return y"
    assert dedent.cut("x", "\n") == ""
    assert dedent.cut("x", ":") == "x"
    assert not stop_rule("mbpp", GenerationConfig(stop_mode="none")).active
    # a stop string lying wholly in the prompt is not a stop
    assert StopRule(("ab",)).find("c", "ab") is None
    assert StopRule(("bc",)).find("cd", "ab") == 0
    with pytest.raises(ValueError):
        StopRule(("",))


# -- bad input ---------------------------------------------------------------------------------


def test_empty_and_overlong_prompts_are_clear_errors(llama):
    model, tokenizer = llama
    cfg = GenerationConfig(max_new_tokens=8)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        sample(model, tokenizer, ["def f():\n", "  \n"], 1, cfg, progress=False)
    long_prompt = "def f():\n" + "    x = 1\n" * 400
    with pytest.raises(ValueError, match=r"prompt 0 has \d+ tokens; with max_new_tokens=8 it exceeds the model's 256 positions"):
        sample(model, tokenizer, [long_prompt], 1, cfg, progress=False)
    with pytest.raises(ValueError, match="over max_prompt_tokens=5"):
        sample(model, tokenizer, [PROMPTS[1]], 1, cfg.replace(max_prompt_tokens=5), progress=False)
    with pytest.raises(ValueError, match="needs .* of the batch budget"):
        sample(model, tokenizer, [PROMPTS[1]], 5, cfg.replace(token_budget=10), progress=False)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        sample(model, tokenizer, PROMPTS, 0, cfg, progress=False)
    with pytest.raises(ValueError, match="2 seeds for 4 prompts"):
        sample(model, tokenizer, PROMPTS, 1, cfg, seeds=[1, 2], progress=False)
    with pytest.raises(TypeError, match="list of strings"):
        sample(model, tokenizer, "def f():\n", 1, cfg, progress=False)
    assert sample(model, tokenizer, [], 3, cfg, progress=False) == []


def test_model_attention_is_restored_after_sampling(llama):
    model, tokenizer = llama
    before = model.config._attn_implementation
    model.train()
    sample(model, tokenizer, PROMPTS[:1], 1, GenerationConfig(max_new_tokens=4), progress=False)
    assert model.config._attn_implementation == before
    assert model.training
    model.eval()
