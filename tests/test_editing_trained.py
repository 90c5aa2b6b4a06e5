"""Every method on the project's trained small models (Llama and Qwen2 flavours), with the
shipped per-model hyperparameters and real benchmark requests (demo problems rewritten to the
new API, code-context template): the edited targets become more likely by a stated margin
(generation-style scoring), unrelated prompts' next-token distributions barely move, and
restore is exact.

Stated margin: the mean gain in log-probability per target token over the three requests
exceeds MARGIN = 0.3 nats and every request gains. Measured (llama / qwen2 mean gain): ROME
0.54 / 1.03, MEMIT 0.54 / 0.97, PMET 0.50 / 0.85, GRACE 0.55 / 1.03, FT 0.62 / 1.57 (the
models already give the new form some probability: they have read it behind a version line).
Locality: mean next-token KL on the eight specificity prompts < KL_BOUND = 0.02 and < 1/10 of
the mean KL over the edited targets' positions (measured ≤ 3.7e-3 against ≥ 0.43); GRACE
leaves them bit-identical.

Greedy completion of an edited reliability prompt (test_greedy_completion_emits_new_api; one
demo-build reliability request per demo API, 8 in all, of which at least EMIT_REQUIRED = 6 must
start with the edited API's whole new name). The small models know the new names and, behind a
version line no prompt contains, the demo solutions written against the new APIs
(editsweep.models.corpus), as a real code LLM has read code for both versions of a library; the
unedited models write the old API (0/14 requests start with `my_`). Measured on all 14 demo
reliability requests, whole new name written (llama / qwen2): ROME 14 / 14, MEMIT 14 / 14, PMET
13 / 13, GRACE 14 / 13, FT 14 / 14. Before the versioned solutions only FT wrote whole names;
the key-token methods started the new family (`my_`) and then wrote the model's most frequent
name.
"""

from __future__ import annotations

import pytest
import torch

from editsweep.benchmark.build import build_benchmark, load_benchmark
from editsweep.benchmark.catalog import load_api_catalog
from editsweep.benchmark.demo import load_demo_problems
from editsweep.benchmark.mining import problem_api_uses
from editsweep.benchmark.requests import make_request
from editsweep.benchmark.rewriter import rewrite_reference
from editsweep.editing import EditRequest, get_editor, resolve_hparams
from editsweep.editing.probe import kl_divergence, next_token_logprobs, target_distributions
from editsweep.editing.tokens import encode_row
from editsweep.models.loading import load_model

torch.set_num_threads(1)

METHODS = ("rome", "memit", "pmet", "grace", "ft")
MARGIN = 0.3
KL_BOUND = 0.02
CASES = ("demo/has_digit", "demo/hypotenuse", "demo/top_three")


def _cases() -> tuple[list[EditRequest], list[str]]:
    catalog = load_api_catalog()
    requests, unrelated = [], []
    for problem in load_demo_problems():
        apis = sorted(set(problem_api_uses(problem)) & set(catalog))
        if not apis:
            unrelated.append(problem.prompt)
            continue
        if problem.id not in CASES:
            continue
        reference_new, sites = rewrite_reference(problem.prompt, problem.reference, catalog[apis[0]])
        site = ([s for s in sites if s.is_call] or sites)[0]
        request = make_request("code_context", apis[0], problem.prompt, reference_new, site, 1200)
        record = {"id": problem.id, "prompt": problem.prompt, "reference_new": reference_new, "edit_request": request.to_dict()}
        requests.append(EditRequest.from_record(record))
    assert len(requests) == len(CASES) and len(unrelated) >= 5
    return requests, unrelated


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def small(request, tmp_path_factory):
    model, tokenizer = load_model(f"small:{request.param}", device="cpu", dtype="float32")
    requests, unrelated = _cases()
    return request.param, model, tokenizer, requests, unrelated, tmp_path_factory.mktemp("stats")


def test_context_end_located():
    requests, _ = _cases()
    for request in requests:
        assert request.context_end is not None and request.prompt[: request.context_end].endswith('"""\n')


@pytest.mark.parametrize("method", METHODS)
def test_method_on_small_model(small, method):
    arch, model, tok, requests, unrelated, stats_dir = small
    overrides = {"mom2_stats_dir": str(stats_dir), "mom2_tokens": 20_000} if method in ("rome", "memit", "pmet") else {}
    editor = get_editor(method, **resolve_hparams(method, f"small_{arch}", overrides))
    before_state = {k: v.clone() for k, v in model.state_dict().items()}
    before = [target_distributions(model, tok, r.prompt, r.target_new, r.context_end) for r in requests]
    unrelated_before = next_token_logprobs(model, tok, unrelated)

    handle = editor.apply(model, tok, requests)
    after = [target_distributions(model, tok, r.prompt, r.target_new, r.context_end) for r in requests]
    unrelated_after = next_token_logprobs(model, tok, unrelated)
    handle.restore()

    gains, edit_kls = [], []
    for (lp0, ids), (lp1, _) in zip(before, after):
        index = torch.arange(len(ids)), torch.tensor(ids)
        gains.append(float(lp1[index].mean() - lp0[index].mean()))
        edit_kls.append(float(kl_divergence(lp1, lp0).mean()))
    assert min(gains) > 0 and sum(gains) / len(gains) > MARGIN, gains
    unrelated_kl = float(kl_divergence(unrelated_after, unrelated_before).mean())
    if method == "grace":
        assert torch.equal(unrelated_after, unrelated_before)
    assert unrelated_kl < KL_BOUND and unrelated_kl < 0.1 * (sum(edit_kls) / len(edit_kls)), (unrelated_kl, edit_kls)
    assert all(torch.equal(v, before_state[k]) for k, v in model.state_dict().items())


# Required: of the 8 requests (one per demo API), at least this many greedy completions start with
# the whole new name of the edited API.
EMIT_REQUIRED = 6


@pytest.fixture(scope="module")
def reliability_records(tmp_path_factory) -> list[dict]:
    """The first reliability record of each demo API, from a real demo build."""
    directory = build_benchmark("demo", tmp_path_factory.mktemp("demo"))
    first: dict[str, dict] = {}
    for record in load_benchmark(directory):
        if record["subset"] == "reliability":
            first.setdefault(record["api"], record)
    assert len(first) == 8, sorted(first)
    return list(first.values())


def _greedy_after(model, tok, request: EditRequest, max_new_tokens: int = 12) -> str:
    """The text greedy decoding writes after `request.prompt`, from the tokens the edit saw."""
    row = encode_row(tok, "", request.prompt, None, None, request.target_new, "last", request.context_end)
    ids = torch.tensor([row.input_ids[: row.prompt_len]])
    with torch.no_grad():
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new_tokens,
            pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
        )
    text = tok.decode(out[0], skip_special_tokens=True)
    # a token may straddle the prompt's end (qwen2: "(my"), so the prompt ids can stop short of it;
    # a model that does not write the prompt's last characters there has not taken the edit
    if not text.startswith(request.prompt):
        return f"<left the prompt before its end: {text[len(tok.decode(ids[0], skip_special_tokens=True)):]!r}>"
    return text[len(request.prompt):].lstrip()


@pytest.mark.parametrize("method", ("none",) + METHODS)
def test_greedy_completion_emits_new_api(small, reliability_records, method):
    arch, model, tok, _, _, stats_dir = small
    overrides = {"mom2_stats_dir": str(stats_dir), "mom2_tokens": 20_000} if method in ("rome", "memit", "pmet") else {}
    editor = get_editor(method, **resolve_hparams(method, f"small_{arch}", overrides))
    completions = []
    for record in reliability_records:
        request = EditRequest.from_record(record)
        handle = editor.apply(model, tok, [request])
        completions.append((record["new_api"], _greedy_after(model, tok, request)))
        handle.restore()
    if method == "none":  # control: the unedited model writes the old API, never a new name
        assert not any(text.startswith("my_") for _, text in completions), completions
        return
    hits = [text.startswith(name) for name, text in completions]
    assert sum(hits) >= EMIT_REQUIRED, (arch, method, completions)
