"""MEMIT (Meng et al., 2023): many requests at once, the update spread over several `mlp.down_proj`s.

Per batch (notes §3.3): z_i = h_i + δ_i is optimised on the residual stream (decoder-layer output)
at the last edited layer l_T; then, lowest layer first, ΔW_l = R K_lᵀ (λC_l + K_l K_lᵀ)⁻¹ with
R = (Z − H_cur)/(T − i) re-measured after the earlier layers were written, in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from editsweep.editing.locate import LocateEditor, LocateHParams
from editsweep.editing.protocol import EditHandle, EditRequest

__all__ = ["MemitHParams", "MemitEditor"]


@dataclass(frozen=True)
class MemitHParams(LocateHParams):
    # λ of the prior λ·tr(ΔW C ΔWᵀ), relative to C normalised per token (notes §3.3 item 4).
    mom2_update_weight: float = 15000.0
    early_stop_loss: float = 0.05

    def validate(self, method: str) -> None:
        super().validate(method)
        if self.mom2_update_weight < 0:
            raise ValueError(f"method {method!r}: mom2_update_weight must be ≥ 0, got {self.mom2_update_weight}")


class MemitEditor(LocateEditor):
    name = "memit"
    batches = True
    hparams_class = MemitHParams

    def _apply(self, model: Any, tokenizer: Any, requests: list[EditRequest]) -> EditHandle:
        from editsweep.editing.spread import SpreadTarget, spread_over_layers
        from editsweep.editing.tokens import pad_id_of, padding_side_of
        from editsweep.editing.vstar import DeltaConfig, optimize_deltas
        from editsweep.editing.weights import WeightHandle
        from editsweep.models.arch import arch_of, get_module

        h = self.hparams
        arch = arch_of(model)
        handle = WeightHandle(self.name, model, [f"{arch.mlp_down(l)}.weight" for l in h.layers], len(requests))
        if not requests:
            return handle
        pad_id, side = pad_id_of(tokenizer), padding_side_of(tokenizer)
        z_name = arch.layer(h.layers[-1])
        cfg = DeltaConfig(
            steps=h.v_num_grad_steps, lr=h.v_lr, weight_decay=h.v_weight_decay, clamp_norm_factor=h.clamp_norm_factor,
            kl_factor=h.kl_factor, loss_layer=h.v_loss_layer, stop_rule="loss", early_stop_loss=h.early_stop_loss,
            max_tokens=h.max_tokens_per_batch,
        )
        try:
            for layer in h.layers:  # statistics first, from the unedited model
                self.second_moment(model, tokenizer, layer)
            rows = self.rows(model, tokenizer, requests)
            result = optimize_deltas(model, arch, rows, [get_module(model, z_name)], cfg, pad_id, side)
            layers_log = spread_over_layers(
                model, arch, rows, h.layers, [SpreadTarget("mlp_down", z_name, result.targets[0])],
                divisor=float, lam=h.mom2_update_weight,
                mom2=lambda kind, layer: self.second_moment(model, tokenizer, layer, kind),
                pad_id=pad_id, side=side, max_tokens=h.max_tokens_per_batch,
            )
        except BaseException:
            handle.restore()
            raise
        handle.info.update(requests=result.log, layers=layers_log)
        handle.tensors.update(targets=result.targets[0].cpu())
        return handle
