"""FT and GRACE known answers (notes §9 tests 7, 8) on tiny random Llama and Qwen2 models:
FT's L∞ box after every step, its two objectives' label positions, only the named tensors
written; GRACE's untouched weights, exact pass-through outside every ε, per-input query
positions (the earlier edit survives a later one with another prompt length), codebook rules,
and exact removal."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from editsweep.benchmark.demo import training_texts
from editsweep.editing import EditRequest, get_editor
from editsweep.editing.ft import loss_positions
from editsweep.editing.grace import adapter_of
from editsweep.editing.hooks import capture
from editsweep.editing.probe import target_logprob
from editsweep.editing.tokens import encode_row, pad_rows
from editsweep.models.arch import arch_of, get_module
from editsweep.models.configs import tiny_config
from editsweep.models.tokenizer import special_token_ids, train_tokenizer

torch.set_num_threads(1)

REQ_A = EditRequest("import re\n\ndef has_digit(text):\n    return ", "my_re_search(text)", "has_digit")
REQ_B = EditRequest(
    "import math\n\ndef hypotenuse(a, b):\n    \"\"\"Length of the long side.\"\"\"\n    return ", "my_math_sqrt(a * a + b * b)", "hypotenuse"
)
UNRELATED = ["def add(a, b):\n    return", "class Point:\n    def __init__(self, x):\n        self.x =", "for i in range(10):\n    print("]


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def setup(request):
    arch = request.param
    tok = train_tokenizer(training_texts(), arch, vocab_size=512)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, vocab_size=len(tok), initializer_range=0.1), dtype=torch.float32)
    return model.eval(), tok, arch


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _changed(model, before):
    return sorted(k for k, v in model.state_dict().items() if not torch.equal(v, before[k]))


def _prompt_ids(tok, request):
    """The prompt's tokens as the edit saw them (joint tokenization with the target)."""
    row = encode_row(tok, "", request.prompt, None, None, request.target_new, "last")
    return list(row.input_ids[: row.prompt_len])


def _logits(model, tok, prompts):
    out = []
    with torch.no_grad():
        for prompt in prompts:
            out.append(model(torch.tensor([tok(prompt)["input_ids"]])).logits)
    return out


# -- FT -----------------------------------------------------------------------------------------------
def test_ft_label_positions(setup):
    _, tok, arch = setup
    row = encode_row(tok, "", REQ_A.prompt, None, None, REQ_A.target_new, "last")
    ft_m = loss_positions(row, "target_new")
    ft_l = loss_positions(row, "prompt_last")
    assert [p for p, _ in ft_m] == [p - 1 for p in row.target_positions]  # prompt tokens carry no label
    assert {p for p, _ in ft_l} == {row.prompt_len - 1}  # FT-L reads only the last prompt position
    labels = [label for _, label in ft_m]
    assert labels == [label for _, label in ft_l] == list(row.target_ids)
    ids = special_token_ids(arch)
    assert ids["bos"] not in labels and ids["pad"] not in labels


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_ft_box_after_every_step(setup, steps):
    model, tok, _ = setup
    arch = arch_of(model)
    before = _snapshot(model)
    eps = 1e-3
    handle = get_editor("ft", layers=[1, 2], num_steps=steps, lr=0.05, norm_constraint=eps).apply(model, tok, [REQ_A, REQ_B])
    names = [f"{arch.mlp_down(l)}.weight" for l in (1, 2)]
    assert _changed(model, before) == sorted(names)
    for name in names:
        change = float((model.state_dict()[name] - before[name]).abs().max())
        assert change <= eps * (1 + 1e-5)
        assert change >= 0.9 * eps  # the box was binding
    handle.restore()
    assert _changed(model, before) == []


@pytest.mark.parametrize("objective", ["target_new", "prompt_last"])
def test_ft_raises_target_logprob(setup, objective):
    model, tok, _ = setup
    before_lp = target_logprob(model, tok, REQ_A.prompt, REQ_A.target_new)
    handle = get_editor("ft", layers=[2], num_steps=10, lr=0.02, norm_constraint=None, objective=objective).apply(model, tok, [REQ_A])
    after_lp = target_logprob(model, tok, REQ_A.prompt, REQ_A.target_new)
    handle.restore()
    assert after_lp > before_lp + 0.2, (before_lp, after_lp)


def test_ft_max_length_keeps_target(setup):
    from editsweep.editing.ft import _truncate

    model, tok, _ = setup
    row = encode_row(tok, "", REQ_B.prompt, None, None, REQ_B.target_new, "last")
    cut = _truncate(row, len(row.target_positions) + 3)
    assert len(cut.input_ids) == len(row.target_positions) + 3 and cut.prompt_len == 3
    assert cut.target_ids == row.target_ids and cut.input_ids == row.input_ids[-len(cut.input_ids):]
    with pytest.raises(ValueError, match="leaves no prompt token"):
        _truncate(row, len(row.target_positions))
    before = _snapshot(model)
    handle = get_editor("ft", layers=[2], num_steps=1, max_length=len(row.target_positions) + 3).apply(model, tok, [REQ_B])
    handle.restore()
    assert _changed(model, before) == []


# -- GRACE --------------------------------------------------------------------------------------------
def test_grace_weights_untouched_and_exact_outside_eps(setup):
    model, tok, _ = setup
    before = _snapshot(model)
    unrelated_before = _logits(model, tok, UNRELATED)
    lp_before = target_logprob(model, tok, REQ_A.prompt, REQ_A.target_new)
    handle = get_editor("grace", layers=[2], eps=1.0, n_iter=20).apply(model, tok, [REQ_A, REQ_B])
    assert list(model.state_dict()) == list(before) and _changed(model, before) == []
    for old, new in zip(unrelated_before, _logits(model, tok, UNRELATED)):
        assert torch.equal(old, new)
    lp_after = target_logprob(model, tok, REQ_A.prompt, REQ_A.target_new)
    assert lp_after > lp_before + 0.5, (lp_before, lp_after)
    handle.restore()
    assert adapter_of(model, 2) is None
    down = get_module(model, arch_of(model).mlp_down(2))
    assert not down._forward_hooks and not model.get_decoder()._forward_pre_hooks
    assert target_logprob(model, tok, REQ_A.prompt, REQ_A.target_new) == lp_before


def test_grace_earlier_edit_survives_later_edit_of_other_length(setup):
    model, tok, _ = setup
    assert len(tok(REQ_A.prompt)["input_ids"]) != len(tok(REQ_B.prompt)["input_ids"])
    editor = get_editor("grace", layers=[2], eps=1.0, n_iter=20)
    h_a = editor.apply(model, tok, [REQ_A])
    lp_a = target_logprob(model, tok, REQ_A.prompt, REQ_A.target_new)
    adapter = adapter_of(model, 2)
    value_a = adapter.values[0].clone()
    h_b = editor.apply(model, tok, [REQ_B])
    assert len(adapter) == 2  # non-conflicting edits add one entry each
    assert target_logprob(model, tok, REQ_A.prompt, REQ_A.target_new) == lp_a
    # The edit prompt retrieves its own value at its last token.
    down = get_module(model, arch_of(model).mlp_down(2))
    with torch.no_grad(), capture({"y": down}, "output") as store:
        model(torch.tensor([_prompt_ids(tok, REQ_A)]))
    assert torch.equal(store["y"][0, -1], value_a)
    with pytest.raises(RuntimeError, match="reverse order"):
        h_a.restore()
    h_b.restore()
    assert len(adapter) == 1
    h_a.restore()
    assert adapter_of(model, 2) is None


@pytest.mark.parametrize("side", ["left", "right"])
def test_grace_query_per_row_in_padded_batch(setup, side):
    model, tok, _ = setup
    handle = get_editor("grace", layers=[2], eps=1.0, n_iter=5).apply(model, tok, [REQ_A])
    value = adapter_of(model, 2).values[0]
    down = get_module(model, arch_of(model).mlp_down(2))
    batch = pad_rows([_prompt_ids(tok, REQ_B), _prompt_ids(tok, REQ_A)], tok.pad_token_id, side, "cpu")
    with torch.no_grad(), capture({"y": down}, "output") as store:
        model(**batch.model_inputs())
    last = int(batch.attention_mask[1].nonzero().max())
    assert torch.equal(store["y"][1, last], value)
    assert not torch.equal(store["y"][0, int(batch.attention_mask[0].nonzero().max())], value)
    handle.restore()


def test_grace_conflict_and_expand(setup):
    model, tok, _ = setup
    editor = get_editor("grace", layers=[2], eps=1e6, n_iter=2)
    h1 = editor.apply(model, tok, [REQ_A])
    adapter = adapter_of(model, 2)
    other = EditRequest(REQ_B.prompt, "my_other(x)", "hypotenuse")
    h2 = editor.apply(model, tok, [other])  # within range, another label: new entry, both radii halved
    dist = float(torch.cdist(adapter.keys[:1], adapter.keys[1:2]))
    assert len(adapter) == 2 and h2.info["requests"][0]["decision"] == "conflict"
    assert torch.allclose(adapter.eps, torch.tensor([dist / 2, dist / 2]))
    h3 = editor.apply(model, tok, [other])  # the same label again: the entry is retrained, no new entry
    assert len(adapter) == 2 and h3.info["requests"][0]["decision"] == "expand"
    # Coverage: a query of the same label just outside the radius grows it to the distance.
    away = (adapter.keys[1] - adapter.keys[0]) / dist
    query = adapter.keys[1] + 0.7 * dist * away
    assert editor._place(adapter, query, "my_other(x)") == ("expand", 1, 1e6)
    assert float(adapter.eps[1]) == pytest.approx(0.7 * dist, rel=1e-5)
    for handle in (h3, h2, h1):
        handle.restore()
    assert adapter_of(model, 2) is None


def test_grace_rejects_bad_settings():
    with pytest.raises(ValueError, match="replacement"):
        get_editor("grace", replacement="replace_some")
    with pytest.raises(ValueError, match="exactly 1 layer"):
        get_editor("grace", layers=[1, 2])
