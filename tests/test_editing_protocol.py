"""The editor protocol and the method configs: registry, conf/method layout, hyperparameter
resolution and validation, the `none` baseline, and requests from benchmark records."""

from __future__ import annotations

import pytest

from editsweep.editing import METHODS, EditRequest, editor_class, get_editor, load_method_conf, resolve_hparams

MODELS = ("codellama_7b", "deepseek_coder_6_7b", "codeqwen15_7b", "small_llama", "small_qwen2", "tiny_llama", "tiny_qwen2")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_conf_layout_and_every_model_resolves(method):
    conf = load_method_conf(method)
    assert conf["name"] == method and set(conf) >= {"hparams", "per_model"}
    assert set(conf["per_model"]) == set(MODELS)
    cls = editor_class(method)
    assert isinstance(cls.batches, bool)
    for model in MODELS:
        hparams = resolve_hparams(method, model)
        editor = get_editor(method, **hparams)
        assert list(editor.hparams.layers) == sorted(hparams["layers"])


def test_per_model_and_override_order():
    assert resolve_hparams("rome", "codellama_7b")["layers"] == [5]
    assert resolve_hparams("rome", "small_llama")["layers"] == [1]
    assert resolve_hparams("rome", "small_llama", {"layers": [2]})["layers"] == [2]
    assert resolve_hparams("memit", "some/unknown-model")["layers"] == [4, 5, 6, 7, 8]
    assert get_editor("memit", mom2_update_weight=6000.0).hparams.mom2_update_weight == 6000.0
    assert {name: editor_class(name).batches for name in METHODS} == {
        "none": True, "ft": True, "grace": False, "rome": False, "memit": True, "pmet": True,
    }


def test_bad_hyperparameters_are_named():
    with pytest.raises(ValueError, match="unknown hyperparameter.*v_lrr"):
        resolve_hparams("rome", "codellama_7b", {"v_lrr": 0.1})
    with pytest.raises(ValueError, match="exactly 1 layer"):
        get_editor("rome", layers=[4, 5])
    with pytest.raises(ValueError, match="objective"):
        get_editor("ft", objective="prompt_first")
    with pytest.raises(ValueError, match="rewrite_modules"):
        get_editor("pmet", rewrite_modules=["mlp_up"])
    with pytest.raises(ValueError, match="layers"):
        get_editor("memit", layers=[4, 4])
    with pytest.raises(KeyError, match="unknown editing method"):
        get_editor("knowedit")


def test_layers_beyond_the_model_fail_before_editing():
    import torch
    from transformers import AutoModelForCausalLM

    from editsweep.models.configs import tiny_config

    model = AutoModelForCausalLM.from_config(tiny_config("llama"), dtype=torch.float32)
    request = EditRequest("def f(x):\n    return ", "my_abs(x)", "return")
    with pytest.raises(ValueError, match="do not exist.*per_model"):
        get_editor("rome").apply(model, None, [request])  # the 7B default layer 5 of a 4-layer model
    with pytest.raises(TypeError, match="EditRequest"):
        get_editor("none").apply(model, None, [{"prompt": "x"}])


def test_none_changes_nothing():
    handle = get_editor("none").apply(object(), None, [EditRequest("a = b", "c", "a")])
    assert handle.n_requests == 1
    handle.restore()
    with pytest.raises(RuntimeError):
        handle.restore()


def test_request_from_benchmark_record():
    prompt = 'def f(text):\n    """Doc."""\n'
    reference_new = "    return my_re_search(text, r'x')\n"
    record = {
        "id": "demo/f", "prompt": prompt, "reference_new": reference_new,
        "edit_request": {"prompt": prompt + "    return ", "target_new": "my_re_search(text, r'x')",
                         "ground_truth": "re.search(r'x', text)", "subject": "return", "key_position": "last",
                         "template": "code_context"},
    }
    request = EditRequest.from_record(record)
    assert request.context_end == len(prompt) and request.key_position == "last"
    # A left-truncated context still finds where the problem prompt ends inside it.
    record["edit_request"] = {**record["edit_request"], "prompt": prompt[10:] + "    return "}
    assert EditRequest.from_record(record).context_end == len(prompt) - 10
    # A statement request has no problem prompt inside it.
    record["edit_request"] = {**record["edit_request"], "prompt": "# re.search is deprecated; use", "subject": "re.search"}
    assert EditRequest.from_record(record).context_end is None
    with pytest.raises(ValueError, match="no edit_request"):
        EditRequest.from_record({"id": "x", "edit_request": None})
    with pytest.raises(ValueError, match="context_end"):
        EditRequest("abc", "d", "a", context_end=9)
