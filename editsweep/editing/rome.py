"""ROME (Meng et al., 2022): a rank-one update of one `mlp.down_proj`, one request after another.

Per request (notes §3.2): the key direction u is the template-averaged key k̄ (times C⁻¹ with
`mom2_adjustment`), normalised; v* = v₀ + δ comes from optimising δ on the MLP output at the key
token; then ΔW = Λ uᵀ with Λ = (v* − W k*) / (k*ᵀ u), so W' k* = v* for the bare prompt's key k*.
With `rrome` (r-ROME, arXiv 2403.07175) k* is replaced by k̄, so W' k̄ = v*.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from editsweep.editing.locate import LocateEditor, LocateHParams
from editsweep.editing.protocol import EditHandle, EditRequest

__all__ = ["RomeHParams", "RomeEditor"]


@dataclass(frozen=True)
class RomeHParams(LocateHParams):
    mom2_adjustment: bool = False
    rrome: bool = False
    early_stop_loss: float = 0.05


class RomeEditor(LocateEditor):
    name = "rome"
    batches = False
    n_layers = 1
    hparams_class = RomeHParams

    def _apply(self, model: Any, tokenizer: Any, requests: list[EditRequest]) -> EditHandle:
        import torch

        from editsweep.editing.closed_form import add_to_weight, rank_one_update
        from editsweep.editing.forward import read_at_positions
        from editsweep.editing.hooks import frozen
        from editsweep.editing.rows import average_keys
        from editsweep.editing.tokens import pad_id_of, padding_side_of
        from editsweep.editing.vstar import DeltaConfig, optimize_deltas
        from editsweep.editing.weights import WeightHandle, parameter
        from editsweep.models.arch import arch_of, get_module

        h = self.hparams
        arch = arch_of(model)
        layer = h.layers[0]
        down_name = arch.mlp_down(layer)
        down = get_module(model, down_name)
        weight = parameter(model, down_name)
        handle = WeightHandle(self.name, model, [f"{down_name}.weight"], len(requests))
        pad_id, side = pad_id_of(tokenizer), padding_side_of(tokenizer)
        cfg = DeltaConfig(
            steps=h.v_num_grad_steps, lr=h.v_lr, weight_decay=h.v_weight_decay, clamp_norm_factor=h.clamp_norm_factor,
            kl_factor=h.kl_factor, loss_layer=h.v_loss_layer, stop_rule="loss", early_stop_loss=h.early_stop_loss,
            max_tokens=h.max_tokens_per_batch,
        )
        records, tensors = [], []
        try:
            for request in requests:
                (rows,) = self.rows(model, tokenizer, [request])
                with frozen(model):
                    keys = read_at_positions(
                        model, rows.rewrite, lambda r: r.lookup, {"k": (down, "input")}, pad_id, side,
                        h.max_tokens_per_batch, stop_module=down,
                    )["k"].double()
                k_bar = average_keys(keys, rows.group_of, by_group=False)
                if h.mom2_adjustment:
                    mom2 = self.second_moment(model, tokenizer, layer).double()
                    u = torch.linalg.solve(mom2, k_bar)
                else:
                    u = k_bar
                u = u / u.norm()
                result = optimize_deltas(model, arch, [rows], [down], cfg, pad_id, side)
                v_star = result.targets[0, 0].double()
                key = k_bar if h.rrome else keys[0]
                w64 = weight.detach().double()
                value_now = w64 @ key  # down_proj has no bias in either architecture
                delta_w = rank_one_update(key, value_now, v_star, u)
                add_to_weight(weight, delta_w)
                records.append({**result.log[0], "delta_w_norm": float(delta_w.norm())})
                tensors.append({"k_star": keys[0].cpu(), "k_bar": k_bar.cpu(), "u": u.cpu(), "v_star": v_star.cpu()})
        except BaseException:
            handle.restore()
            raise
        handle.info["requests"] = records
        handle.tensors["requests"] = tensors
        return handle
