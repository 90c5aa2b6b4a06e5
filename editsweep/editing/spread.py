"""Spreading a target over several layers (MEMIT, PMET): one least-squares update per layer, lowest first.

For layer index i of T, the residual R = (Z − H_cur) / divisor(T − i) is re-measured after the
earlier layers were written (H_cur is read at the last layer l_T at the bare prompts' key tokens),
so each remaining layer takes a share of what is still missing (notes §3.3–3.4). Keys are the
written matrix's inputs at the key token, averaged per template group then across groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from editsweep.editing.rows import RequestRows, average_keys

__all__ = ["SpreadTarget", "spread_over_layers"]


@dataclass
class SpreadTarget:
    """Write matrices of kind `kind` (an ArchSpec name) so that `read_name` at l_T moves to `targets` [N, d]."""

    kind: str
    read_name: str
    targets: Any


def spread_over_layers(
    model: Any,
    arch: Any,
    rows: Sequence[RequestRows],
    layers: Sequence[int],
    spread: Sequence[SpreadTarget],
    divisor: Callable[[int], float],
    lam: float,
    mom2: Callable[[str, int], Any],
    pad_id: int,
    side: str,
    max_tokens: int,
) -> list[dict[str, Any]]:
    """Apply ΔW_l for every layer and every target kind in place; returns per-layer diagnostics."""
    import torch

    from editsweep.editing.closed_form import add_to_weight, spread_update
    from editsweep.editing.forward import read_at_positions
    from editsweep.editing.hooks import frozen
    from editsweep.models.arch import get_module

    flat = [row for req in rows for row in req.rewrite]
    owner = [r for r, req in enumerate(rows) for _ in req.rewrite]
    bare_index = []
    for r, req in enumerate(rows):
        bare_index.append(sum(len(x.rewrite) for x in rows[:r]))
    last_layer = get_module(model, arch.layer(max(layers)))
    records = []
    for i, layer in enumerate(layers):
        modules = {}
        for target in spread:
            modules[f"key:{target.kind}"] = (get_module(model, getattr(arch, target.kind)(layer)), "input")
            modules[f"now:{target.kind}"] = (get_module(model, target.read_name), "output")
        with frozen(model):
            values = read_at_positions(model, flat, lambda r: r.lookup, modules, pad_id, side, max_tokens, stop_module=last_layer)
        record: dict[str, Any] = {"layer": layer}
        for target in spread:
            keys_flat = values[f"key:{target.kind}"].double()
            owner_t = torch.tensor(owner, device=keys_flat.device)
            keys = torch.stack(
                [average_keys(keys_flat[owner_t == r], rows[r].group_of, by_group=True) for r in range(len(rows))], dim=1
            )  # [m, N]
            now = values[f"now:{target.kind}"].double()[bare_index]  # [N, d]
            missing = target.targets.double().to(now.device) - now
            residual = (missing / divisor(len(layers) - i)).T  # [d, N]
            c = mom2(target.kind, layer)
            delta = spread_update(residual, keys, c, lam)
            weight = get_module(model, getattr(arch, target.kind)(layer)).weight
            add_to_weight(weight, delta)
            record[target.kind] = {
                "missing_norm": float(missing.norm(dim=1).mean()),
                "residual_norm": float(residual.norm(dim=0).mean()),
                "delta_w_norm": float(delta.norm()),
            }
        records.append(record)
    return records
