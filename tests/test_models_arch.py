"""Architecture map, known configs and tiny configs (editsweep.models.arch / configs)."""

from __future__ import annotations

import pytest
import torch

from editsweep.models.arch import (
    SUPPORTED_MODEL_TYPES,
    UnsupportedArchitectureError,
    arch_for_config,
    arch_of,
    get_module,
)
from editsweep.models.configs import (
    ESSENTIAL_KEYS,
    KNOWN_MODELS,
    build_random_model,
    known_config,
    known_model_for_hub_id,
    tiny_config,
)
from editsweep.models.loading import tiny_model

ARCHS = ("llama", "qwen2")


@pytest.fixture(scope="module", params=ARCHS)
def tiny(request):
    return request.param, tiny_model(request.param, seed=0)


def test_supported_types_are_llama_and_qwen2():
    assert SUPPORTED_MODEL_TYPES == ("llama", "qwen2")


def test_module_names_resolve_to_modules_of_the_right_shape(tiny):
    arch, model = tiny
    spec = arch_of(model)
    assert spec.model_type == arch
    assert spec.n_layers == 4 and list(spec.layers) == [0, 1, 2, 3]
    d, m = spec.hidden_size, spec.intermediate_size
    assert (d, m) == (64, 160)
    for layer in spec.layers:
        assert spec.layer(layer) == f"model.layers.{layer}"
        assert get_module(model, spec.layer(layer)) is model.model.layers[layer]
        down = get_module(model, spec.mlp_down(layer))
        assert spec.mlp_down(layer) == f"model.layers.{layer}.mlp.down_proj"
        assert tuple(down.weight.shape) == (d, m)  # HF stores W as [d, m]
        assert tuple(get_module(model, spec.mlp_gate(layer)).weight.shape) == (m, d)
        assert tuple(get_module(model, spec.mlp_up(layer)).weight.shape) == (m, d)
        o_proj = get_module(model, spec.attn_out(layer))
        assert spec.attn_out(layer) == f"model.layers.{layer}.self_attn.o_proj"
        assert o_proj is model.model.layers[layer].self_attn.o_proj
        # GQA: 4 heads of 16, 2 kv heads
        assert tuple(get_module(model, spec.attn_k(layer)).weight.shape) == (32, 64)
        assert (get_module(model, spec.attn_q(layer)).bias is not None) == spec.qkv_bias
    assert spec.qkv_bias == (arch == "qwen2")
    assert get_module(model, spec.final_norm) is model.model.norm
    assert get_module(model, spec.lm_head) is model.lm_head
    assert get_module(model, spec.embed) is model.model.embed_tokens
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()  # untied


def test_layer_index_is_checked(tiny):
    _, model = tiny
    spec = arch_of(model)
    with pytest.raises(IndexError, match="layer 4 out of range .* 4 layers"):
        spec.mlp_down(4)
    with pytest.raises(IndexError):
        spec.attn_out(-1)
    with pytest.raises(TypeError):
        spec.layer("1")


def test_unknown_module_name_is_named_in_the_error(tiny):
    _, model = tiny
    with pytest.raises(LookupError, match="model.layers.0.mlp.no_such_proj"):
        get_module(model, "model.layers.0.mlp.no_such_proj")


def test_unsupported_architecture_error_names_type_and_supported():
    from transformers import GPT2Config, MistralConfig

    for config in (GPT2Config(), MistralConfig()):
        with pytest.raises(UnsupportedArchitectureError) as info:
            arch_for_config(config)
        message = str(info.value)
        assert repr(config.model_type) in message
        assert "llama" in message and "qwen2" in message
    with pytest.raises(TypeError, match="no .config"):
        arch_of(torch.nn.Linear(2, 2))


def test_arch_comes_from_model_type_not_the_name():
    config = tiny_config("qwen2")
    config._name_or_path = "meta-llama/CodeLlama-like-name"
    assert arch_for_config(config).model_type == "qwen2"


@pytest.mark.parametrize(
    "name, model_type, inter, kv, vocab, max_pos, theta",
    [
        ("codellama_7b", "llama", 11008, 32, 32016, 16384, 1e6),
        ("deepseek_coder_6_7b", "llama", 11008, 32, 32256, 16384, 1e5),
        ("codeqwen15_7b", "qwen2", 13440, 4, 92416, 65536, 1e6),
    ],
)
def test_known_configs_carry_the_published_values(name, model_type, inter, kv, vocab, max_pos, theta):
    config = known_config(name)
    assert config.model_type == model_type
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (32, 4096, 32)
    assert config.intermediate_size == inter
    assert config.num_key_value_heads == kv
    assert config.vocab_size == vocab
    assert config.max_position_embeddings == max_pos
    assert config.rope_parameters["rope_theta"] == theta
    assert config.tie_word_embeddings is False
    assert config._name_or_path == KNOWN_MODELS[name].hub_id
    assert known_model_for_hub_id(KNOWN_MODELS[name].hub_id.upper()).key == name
    spec = arch_for_config(config)
    assert spec.n_layers == 32 and spec.intermediate_size == inter


def test_deepseek_has_linear_rope_scaling_and_its_bos():
    config = known_config("deepseek_coder_6_7b")
    assert config.rope_parameters["rope_type"] == "linear"
    assert config.rope_parameters["factor"] == 4.0
    assert config.bos_token_id == 32013
    assert known_config("codeqwen15_7b").bos_token_id == known_config("codeqwen15_7b").eos_token_id == 2


def test_known_config_rejects_unknown_names():
    with pytest.raises(KeyError, match="unknown model 'llama_7b'.*codellama_7b"):
        known_config("llama_7b")
    assert known_model_for_hub_id("someone/else") is None
    assert set(ESSENTIAL_KEYS) >= {"num_hidden_layers", "hidden_size", "intermediate_size", "vocab_size"}


@pytest.mark.parametrize("name", sorted(KNOWN_MODELS))
def test_build_random_model_builds_the_architecture(name):
    # The real 7B shapes, shrunk in depth/width so it runs on CPU in a second.
    small = dict(num_hidden_layers=2, hidden_size=128, intermediate_size=352, vocab_size=1000,
                 num_attention_heads=4, num_key_value_heads=2 if name == "codeqwen15_7b" else 4,
                 bos_token_id=1, eos_token_id=2)
    model = build_random_model(name, dtype="float32", device="cpu", **small)
    spec = arch_of(model)
    assert spec.model_type == KNOWN_MODELS[name].model_type
    assert spec.n_layers == 2
    assert model.dtype == torch.float32 and not model.training
    assert model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        logits = model(torch.tensor([[1, 5, 7]])).logits
    assert logits.shape == (1, 3, 1000) and torch.isfinite(logits).all()
    again = build_random_model(name, dtype=torch.float32, device="cpu", **small)
    assert torch.equal(again.lm_head.weight, model.lm_head.weight)  # seeded
    std = float(model.model.layers[0].mlp.down_proj.weight.detach().std())
    assert abs(std - model.config.initializer_range) < 0.005  # initialised, not left empty
    with pytest.raises(ValueError, match="dtype"):
        build_random_model(name, dtype="float7", device="cpu", **small)


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_config_is_the_test_fixture(arch):
    config = tiny_config(arch)
    assert config.model_type == arch
    assert config.num_hidden_layers == 4
    assert config.hidden_size == 64 and config.intermediate_size == 160
    assert config.intermediate_size != config.hidden_size
    assert (config.num_attention_heads, config.num_key_value_heads) == (4, 2)
    assert config.tie_word_embeddings is False
    assert tiny_config(arch, num_hidden_layers=6, vocab_size=300).num_hidden_layers == 6
    with pytest.raises(ValueError, match="model_type 'mistral'"):
        tiny_config("mistral")
