"""The target-value optimisation shared by ROME (v*), MEMIT (z) and PMET (z_attn, z_mlp).

A vector δ per request and per site is added to the site's output at the request's key token in
every rewriting row, and optimised with Adam so the target tokens become likely (notes §3.2–3.4):

    L_r = nll_weight · mean_rows[-(1/|t|) Σ_j log p(t_j | row)] + kl_factor · KL(p_δ ‖ p_0)
          + weight_decay · Σ_sites ‖δ_s‖ / ‖init_s‖²

where p is read from the logits (or the logit lens of `loss_layer`), KL is taken at the key token
of the request's `"{subject} is a"` row, and init_s is the site's output at the key token of the
bare prompt. After each step each δ_s is projected onto the ball of radius
`clamp_norm_factor·‖init_s‖`. All requests are optimised together (their losses are separable
and Adam is element-wise, so this equals one optimisation per request) with gradients
accumulated over length-bounded chunks; a request that has stopped is frozen.

Stopping: `loss` (ROME/MEMIT) stops a request once L_r < `early_stop_loss`; `pmet` (PMET's
adaptive rule) drops the NLL weight to 0.1·nll_factor once every target token is the arg-max
and stops once, in addition, KL ≤ 0.01. As in ROME, the last evaluation takes no step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from editsweep.editing.forward import final_hidden, length_sorted_chunks, logits_at, model_device, split_rows
from editsweep.editing.hooks import frozen, rewrite_output
from editsweep.editing.rows import RequestRows
from editsweep.editing.tokens import Batch, EncodedRow, pad_rows

__all__ = ["DeltaConfig", "DeltaResult", "optimize_deltas"]

log = logging.getLogger(__name__)

_PMET_KL_STOP = 0.01
_PMET_NLL_DROP = 0.1


@dataclass(frozen=True)
class DeltaConfig:
    steps: int
    lr: float
    weight_decay: float
    clamp_norm_factor: float
    kl_factor: float
    loss_layer: int | None = None
    stop_rule: str = "loss"
    early_stop_loss: float = 0.05
    nll_factor: float = 1.0
    max_tokens: int = 4096
    # Run each row's tokens before its key once into a KV cache and re-run only key + targets per step.
    prefix_cache: bool = True

    def __post_init__(self) -> None:
        if self.stop_rule not in ("loss", "pmet"):
            raise ValueError(f"stop_rule must be 'loss' or 'pmet', got {self.stop_rule!r}")
        if self.steps < 1:
            raise ValueError(f"v_num_grad_steps must be ≥ 1, got {self.steps}")


@dataclass
class DeltaResult:
    """`deltas` and `inits` are float32 [sites, requests, d]; `targets = inits + deltas`."""

    deltas: Any
    inits: Any
    log: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def targets(self) -> Any:
        return self.inits + self.deltas


@dataclass
class _Plan:
    rows: list[EncodedRow]
    request_of: list[int]
    is_kl: list[bool]
    weight: list[float]  # NLL weight of a rewrite row: 1 / number of rewrite rows of its request
    bare_row: list[int]  # per request


def _plan(requests: Sequence[RequestRows]) -> _Plan:
    rows, request_of, is_kl, weight, bare = [], [], [], [], []
    for r, req in enumerate(requests):
        bare.append(len(rows))
        for row in req.rewrite:
            rows.append(row)
            request_of.append(r)
            is_kl.append(False)
            weight.append(1.0 / len(req.rewrite))
        rows.append(req.kl)
        request_of.append(r)
        is_kl.append(True)
        weight.append(0.0)
    return _Plan(rows, request_of, is_kl, weight, bare)


class _Injector:
    """Adds δ[site, request] to each site's output at the key token of the rows in the current chunk."""

    def __init__(self, n_sites: int) -> None:
        self.delta = None  # [S, N, d]
        self.rows = self.cols = self.req = None
        self.seen: list[Any] = [None] * n_sites

    def fn(self, site: int):
        def add(hidden):
            self.seen[site] = hidden[self.rows, self.cols].detach().float()
            if self.delta is None:
                return None
            value = self.delta[site][self.req].to(hidden.dtype)
            return hidden.index_put((self.rows, self.cols), value, accumulate=True)

        return add


def optimize_deltas(
    model: Any,
    arch: Any,
    requests: Sequence[RequestRows],
    sites: Sequence[Any],
    cfg: DeltaConfig,
    pad_id: int,
    side: str,
    on_step: Callable[[int, Any, Any], None] | None = None,
) -> DeltaResult:
    """Optimise δ for every request at every site module; see the module docstring.

    `on_step(step, delta, radius)` is called after every update with the projected δ [S, N, d]
    and the clamp radii [S, N] (for logging and tests).
    """
    import contextlib

    import torch

    device = model_device(model)
    plan = _plan(requests)
    n_req, n_sites = len(requests), len(sites)
    chunks = length_sorted_chunks(plan.rows, cfg.max_tokens)
    if cfg.prefix_cache:
        # Everything before a row's key token is independent of δ: it runs once, into a KV cache.
        batches: list[Any] = [split_rows([plan.rows[i] for i in chunk], [plan.rows[i].lookup for i in chunk], pad_id, device) for chunk in chunks]
    else:
        batches = [pad_rows([plan.rows[i] for i in chunk], pad_id, side, device) for chunk in chunks]
    injector = _Injector(n_sites)

    def run_chunk(c: int, delta: Any, keep: list[int] | None = None):
        """(per-row nll, KL-row log-probs, per-row all-argmax flags, site values at key) of chunk c's rows `keep`."""
        whole = keep is None
        keep = list(range(len(chunks[c]))) if whole else keep
        chunk = [chunks[c][b] for b in keep]
        index = torch.tensor(keep, device=device)
        full = batches[c]
        if cfg.prefix_cache:
            inputs = full.suffix_inputs(None if whole else index)

            def column(b: int, position: int) -> int:
                return full.suffix_column(keep[b], position)
        else:
            inputs = Batch(full.input_ids[index], full.attention_mask[index], full.position_ids[index], [full.shift[b] for b in keep])

            def column(b: int, position: int) -> int:
                return inputs.column(b, position)
        injector.rows = torch.arange(len(chunk), device=device)
        injector.cols = torch.tensor([column(b, plan.rows[i].lookup) for b, i in enumerate(chunk)], device=device)
        injector.req = torch.tensor([plan.request_of[i] for i in chunk], device=device)
        injector.delta = delta
        with contextlib.ExitStack() as stack:
            for s, module in enumerate(sites):
                stack.enter_context(rewrite_output(module, injector.fn(s)))
            hidden = final_hidden(model, arch, inputs, cfg.loss_layer)
        sel_rows, sel_cols, owner, labels = [], [], [], []
        for b, i in enumerate(chunk):
            row = plan.rows[i]
            if plan.is_kl[i]:
                sel_rows.append(b)
                sel_cols.append(column(b, row.lookup))
                owner.append(b)
                labels.append(-1)
            else:
                for p in row.target_positions:
                    sel_rows.append(b)
                    sel_cols.append(column(b, p - 1))
                    owner.append(b)
                    labels.append(row.input_ids[p])
        logp = torch.log_softmax(
            logits_at(model, arch, hidden, torch.tensor(sel_rows, device=device), torch.tensor(sel_cols, device=device)),
            dim=-1,
        )
        # Index bookkeeping stays in Python lists: no device round trip per row.
        target_sel = [j for j, label in enumerate(labels) if label >= 0]
        target_idx = torch.tensor(target_sel, device=device)
        target_owner = torch.tensor([owner[j] for j in target_sel], device=device)
        target_labels = torch.tensor([labels[j] for j in target_sel], device=device)
        token_lp = logp[target_idx].gather(1, target_labels.unsqueeze(1)).squeeze(1)
        token_hit = logp[target_idx].argmax(dim=-1) == target_labels
        nll = torch.zeros(len(chunk), device=device).index_add(0, target_owner, -token_lp)
        n_tok = torch.zeros(len(chunk), device=device).index_add(0, target_owner, torch.ones_like(token_lp))
        misses = torch.zeros(len(chunk), device=device).index_add(0, target_owner, (~token_hit).float())
        nll = nll / n_tok.clamp(min=1)
        kl_lp = {owner[j]: logp[j] for j, label in enumerate(labels) if label < 0}
        return nll, kl_lp, misses == 0, [v for v in injector.seen]

    with frozen(model), torch.enable_grad():
        if cfg.prefix_cache:
            for batch in batches:
                batch.fill_cache(model)
        # Step 0 values: the sites' outputs at the bare prompts' key tokens and the KL reference.
        inits = torch.zeros(n_sites, n_req, arch.hidden_size, device=device)
        kl_ref: dict[int, Any] = {}
        with torch.no_grad():
            for c, chunk in enumerate(chunks):
                _, kl_lp, _, seen = run_chunk(c, None)
                for b, i in enumerate(chunk):
                    if i == plan.bare_row[plan.request_of[i]]:
                        for s in range(n_sites):
                            inits[s, plan.request_of[i]] = seen[s][b]
                    if plan.is_kl[i]:
                        kl_ref[plan.request_of[i]] = kl_lp[b].detach()
        init_norm = inits.norm(dim=-1)  # [S, N]
        if bool((init_norm == 0).any()):
            raise FloatingPointError("a site's initial output at the key token is exactly zero; the key position hits padding")
        radius = cfg.clamp_norm_factor * init_norm
        delta = torch.zeros_like(inits, requires_grad=True)
        optimizer = torch.optim.Adam([delta], lr=cfg.lr)
        active = torch.ones(n_req, dtype=torch.bool)
        nll_weight = torch.full((n_req,), cfg.nll_factor)
        reached = torch.zeros(n_req, dtype=torch.bool)
        steps_taken = torch.zeros(n_req, dtype=torch.long)
        first: dict[str, list[float]] | None = None
        last: dict[str, list[float]] = {}
        history = []
        for it in range(cfg.steps):
            optimizer.zero_grad(set_to_none=False)
            nll_sum = torch.zeros(n_req)
            kl_sum = torch.zeros(n_req)
            all_hit = torch.ones(n_req, dtype=torch.bool)
            for c, full_chunk in enumerate(chunks):
                keep = [b for b, i in enumerate(full_chunk) if active[plan.request_of[i]]]
                if not keep:
                    continue
                chunk = [full_chunk[b] for b in keep]
                nll, kl_lp, hit, _ = run_chunk(c, delta, keep)
                req_t = torch.tensor([plan.request_of[i] for i in chunk])
                base_w = torch.tensor([plan.weight[i] for i in chunk])
                loss = (nll * (base_w * nll_weight[req_t]).to(device)).sum()
                kl_rows = sorted(kl_lp)
                if kl_rows:
                    kl_req = [plan.request_of[chunk[b]] for b in kl_rows]
                    lp = torch.stack([kl_lp[b] for b in kl_rows])
                    ref = torch.stack([kl_ref[r] for r in kl_req])
                    kls = (lp.exp() * (lp - ref)).sum(dim=-1)
                    loss = loss + cfg.kl_factor * kls.sum()
                    kl_sum.index_add_(0, torch.tensor(kl_req), kls.detach().cpu())
                loss.backward()
                # One transfer per chunk for the per-request bookkeeping.
                nll_cpu, hit_cpu = nll.detach().cpu(), hit.cpu()
                rewrite = torch.tensor([not plan.is_kl[i] for i in chunk])
                nll_sum.index_add_(0, req_t[rewrite], (nll_cpu * base_w)[rewrite])
                for r in req_t[rewrite & ~hit_cpu].tolist():
                    all_hit[r] = False
            decay = cfg.weight_decay * (delta.norm(dim=-1) / init_norm**2)  # [S, N]
            decay_active = decay[:, active.to(device)].sum()
            if decay_active.requires_grad:
                decay_active.backward()
            decay_r = decay.detach().sum(dim=0).cpu()
            total = nll_weight * nll_sum + cfg.kl_factor * kl_sum + decay_r
            record = {"nll": nll_sum.tolist(), "kl": kl_sum.tolist(), "loss": total.tolist()}
            if first is None:
                first = record
            for r in range(n_req):
                if active[r]:
                    last[r] = {"nll": float(nll_sum[r]), "kl": float(kl_sum[r]), "loss": float(total[r]), "hit": bool(all_hit[r])}
            history.append({"step": it, "active": int(active.sum()), "mean_loss": float(total[active].mean())})
            stop_now = torch.zeros(n_req, dtype=torch.bool)
            if cfg.stop_rule == "loss":
                stop_now = active & (total < cfg.early_stop_loss)
            else:
                newly = active & all_hit & ~reached
                reached |= active & all_hit
                nll_weight[newly] = _PMET_NLL_DROP * cfg.nll_factor
                stop_now = active & reached & (kl_sum <= _PMET_KL_STOP)
            active &= ~stop_now
            if not bool(active.any()) or it == cfg.steps - 1:
                break
            keep = delta.detach().clone()
            optimizer.step()
            with torch.no_grad():
                frozen_mask = ~active.to(device)
                delta[:, frozen_mask] = keep[:, frozen_mask]
                norms = delta.norm(dim=-1, keepdim=True)
                scale = torch.clamp(radius.unsqueeze(-1) / norms.clamp(min=1e-30), max=1.0)
                delta.mul_(scale)
            steps_taken += active.long()
            if on_step is not None:
                on_step(it, delta.detach().clone(), radius)
        result_log = []
        for r in range(n_req):
            entry = {
                "steps": int(steps_taken[r]),
                "loss_start": first["loss"][r] if first else None,
                "nll_start": first["nll"][r] if first else None,
                **{f"{k}_end": v for k, v in last.get(r, {}).items()},
                "delta_norm": [float(x) for x in delta.detach()[:, r].norm(dim=-1)],
                "init_norm": [float(x) for x in init_norm[:, r]],
            }
            result_log.append(entry)
    return DeltaResult(deltas=delta.detach().float(), inits=inits.detach(), log=result_log, history=history)

