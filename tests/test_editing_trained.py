"""Every method on the project's trained small models (Llama and Qwen2 flavours), with the
shipped per-model hyperparameters and real benchmark requests (demo problems rewritten to the
new API, code-context template): the edited targets become more likely by a stated margin
(generation-style scoring), unrelated prompts' next-token distributions barely move, and
restore is exact.

Stated margin: the mean gain in log-probability per target token over the three requests
exceeds MARGIN = 0.3 nats and every request gains. Measured (llama / qwen2 mean gain): ROME
1.21 / 1.38, MEMIT 1.14 / 1.57, PMET 0.82 / 1.09, GRACE 0.94 / 1.02, FT 0.73 / 1.09.
Locality: mean next-token KL on the eight specificity prompts < KL_BOUND = 0.02 and < 1/10 of
the mean KL over the edited targets' positions (measured ≤ 1.6e-3 against ≥ 0.025); GRACE
leaves them bit-identical.

Greedy completion of the edited problem prompt does not emit the new API name on these 4-layer
models for any method: their output head cannot make " my" the most likely token with
probability above ~1.3% (max log p(" my") over all final hidden states: -4.33), and an
unconstrained δ at one position cannot produce the rest of a novel multi-token name.
"""

from __future__ import annotations

import pytest
import torch

from editsweep.benchmark.catalog import load_api_catalog
from editsweep.benchmark.demo import load_demo_problems
from editsweep.benchmark.mining import problem_api_uses
from editsweep.benchmark.requests import make_request
from editsweep.benchmark.rewriter import rewrite_reference
from editsweep.editing import EditRequest, get_editor, resolve_hparams
from editsweep.editing.probe import kl_divergence, next_token_logprobs, target_distributions
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
