"""PMET (Li et al., AAAI 2024): MEMIT with joint attention/FFN targets and square-root spreading.

Per batch (notes §3.4): δ_attn (on `self_attn.o_proj`'s output) and δ_mlp (on `mlp.down_proj`'s
output) at the last edited layer l_T are optimised together by one Adam, each clamped to its own
initial norm; the adaptive rule drops the NLL weight to 0.1 once every target token is the
arg-max and stops once KL ≤ 0.01. Only the modules in `rewrite_modules` are written (default:
the FFN alone; δ_attn then only shapes the optimisation). For module M the residual is
z_M − M's current output at l_T, re-measured per layer, and ΔW_l = (R/√(T−i)) Kᵀ(KKᵀ + λC)⁻¹.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from editsweep.editing.locate import LocateEditor, LocateHParams
from editsweep.editing.protocol import EditHandle, EditRequest

__all__ = ["PmetHParams", "PmetEditor"]

_SITES = ("attn_out", "mlp_down")  # the order of the optimised δ's


@dataclass(frozen=True)
class PmetHParams(LocateHParams):
    mom2_update_weight: float = 15000.0
    nll_loss_factor: float = 1.0
    # Which matrices are written: ArchSpec names, "mlp_down" and/or "attn_out".
    rewrite_modules: tuple = ("mlp_down",)

    def validate(self, method: str) -> None:
        super().validate(method)
        if not self.rewrite_modules or any(m not in _SITES for m in self.rewrite_modules):
            raise ValueError(f"method {method!r}: rewrite_modules must be a non-empty subset of {_SITES}, got {self.rewrite_modules!r}")
        if self.mom2_update_weight < 0 or self.nll_loss_factor <= 0:
            raise ValueError(f"method {method!r}: mom2_update_weight must be ≥ 0 and nll_loss_factor > 0")

    @classmethod
    def from_dict(cls, method: str, values: dict[str, Any]) -> "PmetHParams":
        values = dict(values)
        if "rewrite_modules" in values:
            modules = values["rewrite_modules"]
            values["rewrite_modules"] = (modules,) if isinstance(modules, str) else tuple(modules)
        return super().from_dict(method, values)


class PmetEditor(LocateEditor):
    name = "pmet"
    batches = True
    hparams_class = PmetHParams

    def _apply(self, model: Any, tokenizer: Any, requests: list[EditRequest]) -> EditHandle:
        from editsweep.editing.spread import SpreadTarget, spread_over_layers
        from editsweep.editing.tokens import pad_id_of, padding_side_of
        from editsweep.editing.vstar import DeltaConfig, optimize_deltas
        from editsweep.editing.weights import WeightHandle
        from editsweep.models.arch import arch_of, get_module

        h = self.hparams
        arch = arch_of(model)
        written = [f"{getattr(arch, kind)(l)}.weight" for l in h.layers for kind in h.rewrite_modules]
        handle = WeightHandle(self.name, model, written, len(requests))
        if not requests:
            return handle
        pad_id, side = pad_id_of(tokenizer), padding_side_of(tokenizer)
        last = h.layers[-1]
        site_names = [getattr(arch, kind)(last) for kind in _SITES]
        cfg = DeltaConfig(
            steps=h.v_num_grad_steps, lr=h.v_lr, weight_decay=h.v_weight_decay, clamp_norm_factor=h.clamp_norm_factor,
            kl_factor=h.kl_factor, loss_layer=h.v_loss_layer, stop_rule="pmet", nll_factor=h.nll_loss_factor,
            max_tokens=h.max_tokens_per_batch,
        )
        try:
            for kind in h.rewrite_modules:  # statistics first, from the unedited model
                for layer in h.layers:
                    self.second_moment(model, tokenizer, layer, kind)
            rows = self.rows(model, tokenizer, requests)
            result = optimize_deltas(model, arch, rows, [get_module(model, n) for n in site_names], cfg, pad_id, side)
            targets = {kind: result.targets[s] for s, kind in enumerate(_SITES)}
            layers_log = spread_over_layers(
                model, arch, rows, h.layers,
                [SpreadTarget(kind, getattr(arch, kind)(last), targets[kind]) for kind in h.rewrite_modules],
                divisor=math.sqrt, lam=h.mom2_update_weight,
                mom2=lambda kind, layer: self.second_moment(model, tokenizer, layer, kind),
                pad_id=pad_id, side=side, max_tokens=h.max_tokens_per_batch,
            )
        except BaseException:
            handle.restore()
            raise
        handle.info.update(requests=result.log, layers=layers_log)
        handle.tensors.update(
            targets={kind: t.cpu() for kind, t in targets.items()},
            deltas={kind: result.deltas[s].cpu() for s, kind in enumerate(_SITES)},
        )
        return handle
