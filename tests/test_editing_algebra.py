"""Known-answer tests of the locate-then-edit machinery (notes §9 tests 1, 3–6, 9, 12) on tiny
float64 Llama and Qwen2 models with random weights (intermediate 160 ≠ hidden 64): hooks,
ROME's rank-one algebra, MEMIT's normal equations, PMET's square-root spreading, the δ
optimiser's clamp and stopping, padding-side invariance, exact restore and determinism."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from editsweep.benchmark.demo import training_texts
from editsweep.editing import EditRequest, get_editor
from editsweep.editing.closed_form import add_to_weight, spread_update
from editsweep.editing.forward import final_hidden, read_at_positions, split_rows
from editsweep.editing.hooks import capture, rewrite_output
from editsweep.editing.rows import build_rows
from editsweep.editing.stats import get_second_moments
from editsweep.editing.tokens import pad_rows
from editsweep.editing.vstar import DeltaConfig, optimize_deltas
from editsweep.models.arch import arch_of, get_module
from editsweep.models.configs import tiny_config
from editsweep.models.tokenizer import train_tokenizer

torch.set_num_threads(1)

REQ_A = EditRequest("import re\n\ndef has_digit(text):\n    return ", "my_re_search(text)", "has_digit")
REQ_B = EditRequest("def total(values):\n    return ", "my_sum(values)", "total", key_position="last")
REQ_C = EditRequest("total = 0\nfor v in data:\n    total += v + ", "my_abs(v)", "v")
FAST = dict(v_num_grad_steps=6, context_template_length_params=[])


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def setup(request, tmp_path_factory):
    arch = request.param
    tok = train_tokenizer(training_texts(), arch, vocab_size=512)
    tok.padding_side = "right"
    torch.manual_seed(0)
    # init std 0.1 (not 0.02): random logits then have enough range for a measurable edit.
    config = tiny_config(arch, vocab_size=len(tok), initializer_range=0.1)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float64).eval()
    stats_dir = tmp_path_factory.mktemp(f"stats_{arch}")
    return model, tok, stats_dir


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _changed(model, before):
    return sorted(k for k, v in model.state_dict().items() if not torch.equal(v, before[k]))


def _bare_values(model, tok, requests, module, what):
    rows = build_rows(tok, requests, [["{}"]])
    return read_at_positions(
        model, [r.bare for r in rows], lambda r: r.lookup, {"v": (module, what)}, tok.pad_token_id, "right", 4096
    )["v"].double()


# -- hooks ------------------------------------------------------------------------------------------
def test_hooks_zero_delta_and_captures(setup):
    model, tok, _ = setup
    arch = arch_of(model)
    ids = torch.tensor([tok(REQ_A.prompt)["input_ids"]])
    plain = model(ids, output_hidden_states=True)
    mlp = get_module(model, f"{arch.layer(1)}.mlp")
    norm = get_module(model, f"{arch.layer(1)}.post_attention_layernorm")
    down = get_module(model, arch.mlp_down(1))
    layer = get_module(model, arch.layer(1))
    with rewrite_output(down, lambda h: h + torch.zeros_like(h)), capture(
        {"x": norm, "layer": layer, "o": get_module(model, arch.attn_out(1))}, "output"
    ) as outs, capture({"k": down}, "input") as ins:
        hooked = model(ids)
    assert torch.equal(hooked.logits, plain.logits)
    manual_key = mlp.act_fn(mlp.gate_proj(outs["x"])) * mlp.up_proj(outs["x"])
    assert torch.equal(ins["k"], manual_key)
    assert torch.equal(outs["layer"], plain.hidden_states[2])
    assert outs["o"].shape[-1] == arch.hidden_size


# -- the δ optimiser ---------------------------------------------------------------------------------
def test_vstar_clamp_every_step_and_rising_target(setup):
    model, tok, _ = setup
    arch = arch_of(model)
    rows = build_rows(tok, [REQ_A, REQ_B], [["{}"]])
    site = get_module(model, arch.mlp_down(1))
    cfg = DeltaConfig(steps=12, lr=0.5, weight_decay=1e-3, clamp_norm_factor=0.75, kl_factor=0.0625)
    seen = []
    result = optimize_deltas(model, arch, rows, [site], cfg, tok.pad_token_id, "right", on_step=lambda i, d, r: seen.append((d, r)))
    assert len(seen) == 11  # the last evaluation takes no step
    for delta, radius in seen:
        assert bool((delta.norm(dim=-1) <= radius + 1e-6).all())
    assert any(bool((d.norm(dim=-1) > 0.99 * r).any()) for d, r in seen)  # the clamp was binding
    for entry in result.log:
        assert entry["loss_start"] == entry["nll_start"]  # step 0: KL and decay are exactly 0
        assert entry["nll_end"] < entry["nll_start"] - 0.03
    inits = _bare_values(model, tok, [REQ_A, REQ_B], site, "output")
    assert torch.allclose(result.inits[0].double(), inits, rtol=1e-6, atol=1e-9)


def test_prefix_cache_matches_full_forward(setup):
    model, tok, _ = setup
    arch = arch_of(model)
    # REQ_C's KL row "v is a" keys at token 0 without BOS (qwen2): an empty prefix in a padded chunk.
    rows = build_rows(tok, [REQ_A, REQ_B, REQ_C], [["{}"]])
    flat = [row for r in rows for row in (r.bare, r.kl)]
    assert flat[-1].lookup == (1 if tok.bos_token == "<s>" else 0)
    split = split_rows(flat, [row.lookup for row in flat], tok.pad_token_id, "cpu")
    split.fill_cache(model)
    full = final_hidden(model, arch, pad_rows(flat, tok.pad_token_id, "right", "cpu"), None)
    with torch.no_grad():
        for _ in range(2):  # the stored prefix is reusable: a second pass gives the same values
            suffix = final_hidden(model, arch, split.suffix_inputs(), None)
            for b, row in enumerate(flat):
                for p in range(row.lookup, len(row.input_ids)):
                    assert torch.allclose(suffix[b, split.suffix_column(b, p)], full[b, p], rtol=0, atol=1e-10)
    site = get_module(model, arch.layer(2))
    results = []
    for cached in (False, True):
        cfg = DeltaConfig(steps=5, lr=0.5, weight_decay=1e-3, clamp_norm_factor=4, kl_factor=0.0625, prefix_cache=cached)
        results.append(optimize_deltas(model, arch, rows, [site], cfg, tok.pad_token_id, "left"))
    assert torch.allclose(results[0].deltas, results[1].deltas, rtol=0, atol=1e-6)


def test_vstar_early_stop(setup):
    model, tok, _ = setup
    arch = arch_of(model)
    rows = build_rows(tok, [REQ_A], [["{}"]])
    cfg = DeltaConfig(steps=10, lr=0.5, weight_decay=1e-3, clamp_norm_factor=4, kl_factor=0.0625, early_stop_loss=1e3)
    result = optimize_deltas(model, arch, rows, [get_module(model, arch.layer(2))], cfg, tok.pad_token_id, "right")
    assert result.log[0]["steps"] == 0 and float(result.deltas.abs().max()) == 0.0


# -- ROME --------------------------------------------------------------------------------------------
def test_rome_rank_one_maps_key_to_vstar(setup):
    model, tok, _ = setup
    arch = arch_of(model)
    name = arch.mlp_down(1)
    before = _snapshot(model)
    k_star = _bare_values(model, tok, [REQ_A], get_module(model, name), "input")[0]
    handle = get_editor("rome", layers=[1], **FAST).apply(model, tok, [REQ_A])
    assert _changed(model, before) == [f"{name}.weight"]
    w0, w1 = before[f"{name}.weight"], model.state_dict()[f"{name}.weight"]
    delta = w1 - w0
    s = torch.linalg.svdvals(delta)
    assert float(s[1] / s[0]) < 1e-10
    v_star = handle.tensors["requests"][0]["v_star"]
    assert float((w1 @ k_star - v_star).norm() / v_star.norm()) < 1e-8
    u = handle.tensors["requests"][0]["u"]
    orthogonal = torch.randn(arch.intermediate_size, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    orthogonal -= (orthogonal @ u) * u
    assert float((delta @ orthogonal).norm()) < 1e-12 * float(w0.norm() * orthogonal.norm()) + 1e-14
    handle.restore()
    assert _changed(model, before) == []


def test_rrome_maps_averaged_key(setup):
    model, tok, _ = setup
    arch = arch_of(model)
    name = arch.mlp_down(1)
    editor = get_editor("rome", layers=[1], v_num_grad_steps=4, context_template_length_params=[[3, 5]], rrome=True)
    handle = editor.apply(model, tok, [REQ_A])
    t = handle.tensors["requests"][0]
    assert not torch.allclose(t["k_bar"], t["k_star"])  # the templates do move the key
    w1 = model.state_dict()[f"{name}.weight"]
    assert float((w1 @ t["k_bar"] - t["v_star"]).norm() / t["v_star"].norm()) < 1e-8
    handle.restore()


def test_rome_covariance_direction(setup):
    model, tok, stats_dir = setup
    arch = arch_of(model)
    name = arch.mlp_down(1)
    before = _snapshot(model)
    editor = get_editor("rome", layers=[1], mom2_adjustment=True, mom2_tokens=3000, mom2_stats_dir=str(stats_dir), **FAST)
    handle = editor.apply(model, tok, [REQ_A])
    c = get_second_moments(model, tok, [1], tokens=3000, cache_dir=stats_dir, max_length=1024)[1].double()
    t = handle.tensors["requests"][0]
    expected = torch.linalg.solve(c, t["k_bar"])
    assert torch.allclose(t["u"], expected / expected.norm(), rtol=1e-6, atol=1e-9)
    delta = model.state_dict()[f"{name}.weight"] - before[f"{name}.weight"]
    # A key k with kᵀ C⁻¹ k̄ = 0 is left unchanged.
    k = torch.randn(arch.intermediate_size, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    k -= (k @ t["u"]) / (t["u"] @ t["u"]) * t["u"]
    assert float((delta @ k).norm()) < 1e-12 * float(delta.norm() * k.norm()) + 1e-14
    handle.restore()


# -- MEMIT -------------------------------------------------------------------------------------------
def test_spread_update_limits():
    g = torch.Generator().manual_seed(0)
    keys = torch.randn(12, 3, generator=g, dtype=torch.float64)
    residual = torch.randn(5, 3, generator=g, dtype=torch.float64)
    a = torch.randn(12, 12, generator=g, dtype=torch.float64)
    c = a @ a.T / 12 + 0.1 * torch.eye(12, dtype=torch.float64)
    exact = spread_update(residual, keys, c, 1e-10)
    assert torch.allclose(exact @ keys, residual, atol=1e-8)
    assert float(spread_update(residual, keys, c, 1e12).abs().max()) < 1e-10
    for lam in (0.5, 15.0):
        delta = spread_update(residual, keys, c, lam)
        lhs = delta @ (lam * c + keys @ keys.T)
        rhs = residual @ keys.T
        assert float((lhs - rhs).norm() / rhs.norm()) < 1e-10
        assert int(torch.linalg.matrix_rank(delta)) <= 3


def _check_spreading(model, tok, before, handle, layers, targets, read_name, lam, c_of, divisor):
    """Rebuild each layer's residual from the weights alone and check the normal equations."""
    arch = arch_of(model)
    edited = {name: model.state_dict()[name].clone() for name in before if name.endswith("down_proj.weight")}
    read_module = get_module(model, read_name)
    missing_norms = []
    requests = [REQ_A, REQ_B]
    for i, layer in enumerate(layers):
        name = f"{arch.mlp_down(layer)}.weight"
        with torch.no_grad():
            for j, other in enumerate(layers):  # layers below i edited, the rest original
                w = edited if j < i else before
                model.get_parameter(f"{arch.mlp_down(other)}.weight").copy_(w[f"{arch.mlp_down(other)}.weight"])
        keys = _bare_values(model, tok, requests, get_module(model, arch.mlp_down(layer)), "input").T
        now = _bare_values(model, tok, requests, read_module, "output")
        missing = targets.double() - now
        missing_norms.append(float(missing.norm()))
        residual = (missing / divisor(len(layers) - i)).T
        delta = edited[name] - before[name]
        lhs = delta @ (lam * c_of(layer) + keys @ keys.T)
        rhs = residual @ keys.T
        assert float((lhs - rhs).norm() / rhs.norm()) < 1e-8, f"layer {layer}"
        assert int(torch.linalg.matrix_rank(delta, rtol=1e-9)) <= len(requests)
    with torch.no_grad():
        for name, w in edited.items():
            model.get_parameter(name).copy_(w)
    return missing_norms


def test_memit_normal_equations_and_shrinking_residual(setup):
    model, tok, stats_dir = setup
    arch = arch_of(model)
    before = _snapshot(model)
    lam = 2.0
    editor = get_editor("memit", layers=[0, 1, 2], mom2_update_weight=lam, mom2_tokens=3000, mom2_stats_dir=str(stats_dir), **FAST)
    handle = editor.apply(model, tok, [REQ_A, REQ_B])
    assert _changed(model, before) == sorted(f"{arch.mlp_down(l)}.weight" for l in (0, 1, 2))
    moments = get_second_moments(model, tok, [0, 1, 2], tokens=3000, cache_dir=stats_dir)
    norms = _check_spreading(
        model, tok, before, handle, [0, 1, 2], handle.tensors["targets"], arch.layer(2), lam,
        lambda l: moments[l].double(), float,
    )
    final = float((handle.tensors["targets"].double() - _bare_values(model, tok, [REQ_A, REQ_B], get_module(model, arch.layer(2)), "output")).norm())
    assert norms[0] > norms[1] > norms[2] > final
    handle.restore()
    assert _changed(model, before) == []


def test_memit_request_order_invariance(setup):
    model, tok, stats_dir = setup
    before = _snapshot(model)
    kwargs = dict(layers=[1, 2], mom2_update_weight=2.0, mom2_tokens=3000, mom2_stats_dir=str(stats_dir), **FAST)
    editor = get_editor("memit", **kwargs)
    h1 = editor.apply(model, tok, [REQ_A, REQ_B])
    first = _snapshot(model)
    h1.restore()
    h2 = editor.apply(model, tok, [REQ_B, REQ_A])
    for name in _changed(model, before):
        assert torch.allclose(model.state_dict()[name], first[name], rtol=0, atol=1e-10)
    h2.restore()


# -- PMET --------------------------------------------------------------------------------------------
def test_pmet_sqrt_spreading_only_ffn_written(setup):
    model, tok, stats_dir = setup
    arch = arch_of(model)
    before = _snapshot(model)
    lam = 2.0
    editor = get_editor("pmet", layers=[1, 2], mom2_update_weight=lam, mom2_tokens=3000, mom2_stats_dir=str(stats_dir), **FAST)
    handle = editor.apply(model, tok, [REQ_A, REQ_B])
    assert _changed(model, before) == sorted(f"{arch.mlp_down(l)}.weight" for l in (1, 2))
    assert float(handle.tensors["deltas"]["attn_out"].norm()) > 0  # δ_attn shaped the optimisation...
    for entry in handle.info["requests"]:
        assert min(entry["init_norm"]) > 0
    moments = get_second_moments(model, tok, [1, 2], tokens=3000, cache_dir=stats_dir)
    _check_spreading(
        model, tok, before, handle, [1, 2], handle.tensors["targets"]["mlp_down"], arch.mlp_down(2), lam,
        lambda l: moments[l].double(), math.sqrt,
    )
    handle.restore()
    assert _changed(model, before) == []


def test_pmet_can_also_write_attention(setup):
    model, tok, stats_dir = setup
    arch = arch_of(model)
    before = _snapshot(model)
    editor = get_editor(
        "pmet", layers=[1, 2], rewrite_modules=["mlp_down", "attn_out"], mom2_update_weight=2.0, mom2_tokens=3000,
        mom2_stats_dir=str(stats_dir), **FAST,
    )
    handle = editor.apply(model, tok, [REQ_A])
    written = sorted(f"{getattr(arch, kind)(l)}.weight" for l in (1, 2) for kind in ("mlp_down", "attn_out"))
    assert _changed(model, before) == written
    handle.restore()
    assert _changed(model, before) == []


def test_pmet_padding_side_invariance(setup):
    model, tok, stats_dir = setup
    before = _snapshot(model)
    editor = get_editor("pmet", layers=[1, 2], mom2_update_weight=2.0, mom2_tokens=3000, mom2_stats_dir=str(stats_dir), **FAST)
    results = {}
    for side in ("right", "left"):
        tok.padding_side = side
        handle = editor.apply(model, tok, [REQ_A, REQ_B])
        results[side] = {name: model.state_dict()[name] - before[name] for name in _changed(model, before)}
        assert all(bool(torch.isfinite(d).all()) for d in results[side].values())
        handle.restore()
    tok.padding_side = "right"
    assert sorted(results["left"]) == sorted(results["right"])
    for name, delta in results["right"].items():
        assert torch.allclose(results["left"][name], delta, rtol=1e-6, atol=1e-10)


# -- reversibility and determinism --------------------------------------------------------------------
def test_sequential_edits_undone_in_reverse_order(setup):
    model, tok, stats_dir = setup
    before = _snapshot(model)
    h1 = get_editor("rome", layers=[1], **FAST).apply(model, tok, [REQ_A])
    h2 = get_editor("memit", layers=[1, 2], mom2_tokens=3000, mom2_stats_dir=str(stats_dir), **FAST).apply(model, tok, [REQ_B])
    h3 = get_editor("ft", layers=[2], num_steps=3, lr=1e-2).apply(model, tok, [REQ_A])
    for handle in (h3, h2, h1):
        handle.restore()
    assert _changed(model, before) == []
    with pytest.raises(RuntimeError, match="already restored"):
        h1.restore()


def test_add_then_subtract_float32():
    w = torch.nn.Parameter(torch.randn(8, 20, generator=torch.Generator().manual_seed(0)))
    original = w.detach().clone()
    delta = torch.randn(8, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 1e-2
    add_to_weight(w, delta)
    add_to_weight(w, -delta)
    assert float((w.detach() - original).abs().max()) <= 1e-6


def test_same_seed_bitwise_identical_update(setup):
    model, tok, _ = setup
    before = _snapshot(model)
    deltas = []
    for _ in range(2):
        editor = get_editor("rome", layers=[1], v_num_grad_steps=4, context_template_length_params=[[3, 5]])
        handle = editor.apply(model, tok, [REQ_A])
        deltas.append({n: model.state_dict()[n] - before[n] for n in _changed(model, before)})
        handle.restore()
    assert deltas[0].keys() == deltas[1].keys() and all(torch.equal(deltas[0][n], deltas[1][n]) for n in deltas[0])
