"""The pieces of editsweep.generation that need no model: streams, sampler, planner, config, prompts."""

from __future__ import annotations

import ast

import pytest

torch = pytest.importorskip("torch")

from editsweep.generation import GenerationConfig  # noqa: E402
from editsweep.generation.config import default_config_path  # noqa: E402
from editsweep.generation.planner import kv_slots, plan_batches  # noqa: E402
from editsweep.generation.sampler import choose_tokens  # noqa: E402
from editsweep.generation.streams import _mul32, derive_seed, stream_keys, uniforms  # noqa: E402
from editsweep.prompts import format_prompt, prepare, stop_strings, style_for  # noqa: E402

# -- random streams ----------------------------------------------------------------------------


def test_mul32_is_exact_modular_multiplication():
    values = [0, 1, 0xFFFF, 0x10000, 0xDEADBEEF, 0xFFFFFFFF, 123456789]
    for c in (0x7FEB352D, 0x846CA68B, 0x9E3779B9, 1):
        got = _mul32(torch.tensor(values, dtype=torch.long), c).tolist()
        assert got == [(v * c) % 2**32 for v in values]


def test_uniforms_depend_only_on_key_and_step():
    keys = torch.tensor(stream_keys([1, 2, 3], 4), dtype=torch.long)
    step = torch.tensor([7])
    u = uniforms(keys, step)
    assert u.dtype == torch.float32 and u.shape == (12,)
    assert bool(((u >= 0) & (u < 1)).all())
    permutation = torch.randperm(12)
    assert torch.equal(uniforms(keys[permutation], step), u[permutation])  # batch layout does not matter
    assert torch.equal(uniforms(keys[5:6], step), u[5:6])
    assert not torch.equal(uniforms(keys, step + 1), u)
    assert stream_keys([3], 2) == stream_keys([1, 2, 3], 2)[4:6]  # a key is a function of (seed, j) only


def test_uniforms_look_uniform():
    keys = torch.tensor(stream_keys(range(2000), 1), dtype=torch.long)
    draws = torch.cat([uniforms(keys, torch.tensor([t])) for t in range(10)])
    assert abs(float(draws.mean()) - 0.5) < 0.01
    histogram = torch.histc(draws, bins=10, min=0, max=1)
    assert float(histogram.min()) > 0.9 * len(draws) / 10


def test_derive_seed_is_stable_and_distinct():
    assert derive_seed(0, "cell-a", "humaneval/1") == derive_seed(0, "cell-a", "humaneval/1")
    assert derive_seed(0, "cell-a", "humaneval/1") != derive_seed(0, "cell-a", "humaneval/2")
    assert 0 <= derive_seed("x") < 2**63


# -- sampler -----------------------------------------------------------------------------------


def _frequencies(logits_row, rows, temperature=1.0, top_p=1.0, top_k=0):
    logits = torch.tensor([logits_row] * rows, dtype=torch.float32)
    keys = torch.tensor(stream_keys(range(rows), 1), dtype=torch.long)
    tokens = choose_tokens(logits, keys, torch.tensor([0]), temperature, top_p, top_k)
    return torch.bincount(tokens, minlength=len(logits_row)).float() / rows


def test_sampling_follows_the_softmax():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    freq = _frequencies(probs.log().tolist(), 20000)
    assert torch.allclose(freq, probs, atol=0.015)
    hot = _frequencies(probs.log().tolist(), 20000, temperature=0.5)  # p^2, renormalised
    assert torch.allclose(hot, probs**2 / (probs**2).sum(), atol=0.015)


def test_top_p_and_top_k_truncate():
    probs = torch.tensor([0.05, 0.6, 0.3, 0.05])
    nucleus = _frequencies(probs.log().tolist(), 20000, top_p=0.8)  # keeps 0.6 and 0.3
    assert float(nucleus[0] + nucleus[3]) == 0.0
    assert abs(float(nucleus[1]) - 0.6 / 0.9) < 0.015
    assert float(_frequencies(probs.log().tolist(), 5000, top_p=0.5)[1]) == 1.0  # the first token is always kept
    top1 = _frequencies(probs.log().tolist(), 5000, top_k=1)
    assert float(top1[1]) == 1.0


def test_greedy_is_argmax_and_rows_are_independent():
    logits = torch.randn(6, 50)
    keys = torch.tensor(stream_keys(range(6), 1), dtype=torch.long)
    assert torch.equal(choose_tokens(logits, keys, torch.tensor([0]), 0.0), logits.argmax(-1))
    full = choose_tokens(logits, keys, torch.tensor([3]), 1.0, 0.9)
    for row in range(6):
        alone = choose_tokens(logits[row : row + 1], keys[row : row + 1], torch.tensor([3]), 1.0, 0.9)
        assert int(alone) == int(full[row])


def test_extreme_draws_stay_inside_the_nucleus():
    # three tied tokens and one impossible one; top_p 0.5 keeps the first two of the sorted order
    logits = torch.tensor([[0.0, 0.0, 0.0, -1e9]])
    keys = torch.zeros(1, 2, dtype=torch.long)
    from editsweep.generation import sampler

    def fixed(value):
        return lambda keys, step: torch.full((keys.shape[0],), value)

    original = sampler.uniforms
    try:
        sampler.uniforms = fixed(1 - 2**-24)  # the largest uniform a stream can produce
        assert int(choose_tokens(logits, keys, torch.tensor([0]), 1.0, 0.5)) == 1
        assert int(choose_tokens(logits, keys, torch.tensor([0]), 1.0, 1.0)) == 2
        sampler.uniforms = fixed(0.0)
        assert int(choose_tokens(logits, keys, torch.tensor([0]), 1.0, 0.5)) == 0
    finally:
        sampler.uniforms = original


# -- planner -----------------------------------------------------------------------------------


def test_plan_sorts_by_length_and_respects_the_budget():
    lengths = [30, 200, 50, 120, 10, 90]
    budget = 2000

    def cost(batch, plen):
        return kv_slots(batch, plen, 5, 16, "expand")

    batches = plan_batches(lengths, 5, 16, "expand", cost, budget, max_sequences=1000)
    assert sorted(i for b in batches for i in b.indices) == list(range(len(lengths)))
    flat = [i for b in batches for i in b.indices]
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    for b in batches:
        assert b.prompt_len == max(lengths[i] for i in b.indices)
        assert cost(len(b.indices), b.prompt_len) <= budget
    capped = plan_batches(lengths, 5, 16, "expand", cost, 10**9, max_sequences=10)
    assert all(len(b.indices) <= 2 for b in capped)


def test_kv_slots_of_the_layouts():
    assert kv_slots(4, 100, 5, 256, "expand") == 4 * 5 * 356
    assert kv_slots(4, 100, 5, 256, "shared") == 4 * 100 + 4 * 5 * 256


# -- config ------------------------------------------------------------------------------------


def test_default_yaml_mirrors_the_dataclass():
    assert GenerationConfig.from_yaml() == GenerationConfig()
    greedy = GenerationConfig.from_yaml(default_config_path().with_name("greedy.yaml"))
    assert greedy.greedy and greedy.n_samples == 1 and greedy.max_new_tokens == GenerationConfig().max_new_tokens


def test_config_rejects_bad_values_and_unknown_keys():
    with pytest.raises(ValueError, match="unknown generation config keys: tempreature"):
        GenerationConfig.from_mapping({"tempreature": 0.5})
    with pytest.raises(ValueError, match="top_p must be in"):
        GenerationConfig(top_p=0)
    with pytest.raises(ValueError, match="stop_mode must be one of"):
        GenerationConfig(stop_mode="eol")
    with pytest.raises(ValueError, match="token_budget must be 'auto' or a positive integer"):
        GenerationConfig(token_budget="lots")
    with pytest.raises(ValueError, match="kv_layout"):
        GenerationConfig(kv_layout="paged")
    cfg = GenerationConfig.from_mapping({"stop_strings": ["\nX"], "temperature": 0})
    assert cfg.stop_strings == ("\nX",) and cfg.greedy


# -- prompts -----------------------------------------------------------------------------------

MBPP_RECORD = {
    "id": "mbpp/2",
    "source": "mbpp",
    "entry_point": "similar_elements",
    "prompt": (
        "import math\n"
        "def similar_elements(test_tup1, test_tup2):\n"
        '    """Write a function to find the shared elements from the given two lists.\n'
        "    Example: assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))\n"
        '    """\n'
    ),
    "reference": "    return tuple(set(test_tup1) & set(test_tup2))\n",
    "tests": [
        "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))",
        "assert set(similar_elements((1, 2, 3, 4),(5, 4, 3, 7))) == set((3, 4))",
        "assert set(similar_elements((11, 12, 14, 13),(17, 15, 14, 13))) == set((13, 14))",
    ],
    "task_text": "Write a function to find the shared elements from the given two lists.",
}


def _docstring(program: str, name: str) -> str:
    tree = ast.parse(program)
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    return ast.get_docstring(function)


def test_mbpp_tests_docstring_lists_every_test_and_keeps_the_program_valid():
    rendered = format_prompt(MBPP_RECORD, "tests_docstring")
    program = rendered + MBPP_RECORD["reference"]
    doc = _docstring(program, "similar_elements")
    for test in MBPP_RECORD["tests"]:
        assert doc.count(test) == 1, "each test shown once (the first is already the example)"
    namespace: dict = {}
    exec(compile(program, "<mbpp>", "exec"), namespace)  # noqa: S102 - our own fixture
    for test in MBPP_RECORD["tests"]:
        exec(test, namespace)  # noqa: S102
    assert rendered.endswith('    """\n')


def test_task_docstring_and_raw_styles():
    assert format_prompt(MBPP_RECORD, "raw") == MBPP_RECORD["prompt"]
    rendered = format_prompt(MBPP_RECORD, "task_docstring")
    assert _docstring(rendered + MBPP_RECORD["reference"], "similar_elements").strip() == MBPP_RECORD["task_text"]
    humaneval = {"id": "humaneval/0", "source": "humaneval", "prompt": "def f(x):\n    \"\"\"Double x.\"\"\"\n", "tests": [],
                 "task_text": None}
    with pytest.raises(ValueError, match="no task_text"):
        format_prompt(humaneval, "task_docstring")
    with pytest.raises(ValueError, match="does not end with a docstring"):
        format_prompt({**MBPP_RECORD, "prompt": "def f(x):\n"}, "tests_docstring")
    with pytest.raises(ValueError, match="unknown prompt style"):
        format_prompt(MBPP_RECORD, "chat")
    with pytest.raises(ValueError, match="empty prompt"):
        format_prompt({**MBPP_RECORD, "prompt": " "}, "raw")


def test_one_line_docstring_gets_tests_on_their_own_lines():
    record = {**MBPP_RECORD, "prompt": 'def similar_elements(a, b):\n    """Shared elements."""\n'}
    rendered = format_prompt(record, "tests_docstring")
    doc = _docstring(rendered + "    return ()\n", "similar_elements")
    assert doc.splitlines()[0] == "Shared elements."
    assert sum(line.startswith("assert") for line in doc.splitlines()) == 3


def test_prepare_uses_source_styles_and_stop_rules():
    cfg = GenerationConfig()
    humaneval = {"id": "humaneval/0", "source": "humaneval", "prompt": "def f(x):\n    \"\"\"Double x.\"\"\"\n",
                 "tests": ["assert candidate(1) == 2"], "entry_point": "f"}
    prompts, rules = prepare([humaneval, MBPP_RECORD], cfg)
    assert prompts[0] == humaneval["prompt"]
    assert prompts[1] == format_prompt(MBPP_RECORD, "tests_docstring")
    assert rules[0].strings == tuple(stop_strings("humaneval"))
    raw_cfg = GenerationConfig(prompt_styles={"mbpp": "raw"}, stop_mode="dedent")
    prompts, rules = prepare([MBPP_RECORD], raw_cfg)
    assert prompts == [MBPP_RECORD["prompt"]] and rules[0].dedent
    assert style_for("demo") == "raw"
    with pytest.raises(ValueError, match="unknown source"):
        stop_strings("apps")
