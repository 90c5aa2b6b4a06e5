"""The closed-form weight updates of ROME (rank one) and MEMIT/PMET (least squares with a prior), in float64.

Weights are HF Linear layouts `W ∈ R^{d×m}` (out × in); every update is built directly in that
layout, so no transpose guess is ever made (EasyEdit's guess is silently wrong when m = d).
"""

from __future__ import annotations

from typing import Any

__all__ = ["rank_one_update", "spread_update", "add_to_weight"]


def rank_one_update(key: Any, value_now: Any, value_target: Any, u: Any) -> Any:
    """ΔW = Λ uᵀ with Λ = (v* − v_now) / (kᵀ u), so that (W + ΔW) k = v* exactly (ROME, notes §3.2).

    ROME passes the bare prompt's key k* and W k*; r-ROME passes the template-averaged k̄ and W k̄.
    """
    key, value_now, value_target, u = (t.double() for t in (key, value_now, value_target, u))
    denominator = key @ u
    if float(denominator.abs()) == 0.0:
        raise FloatingPointError("ROME: the key is orthogonal to the update direction (kᵀu = 0)")
    lam = (value_target - value_now) / denominator
    return lam.unsqueeze(1) * u.unsqueeze(0)


def spread_update(residual: Any, keys: Any, mom2: Any | None, lam: float) -> Any:
    """ΔW = R Kᵀ (λC + K Kᵀ)⁻¹, computed as R · solve(λC + KKᵀ, K)ᵀ (MEMIT/PMET, notes §3.3).

    `residual` R is [d, N], `keys` K is [m, N], `mom2` C is [m, m] (None means C = I). ΔW minimises
    ‖ΔW K − R‖² + λ·tr(ΔW C ΔWᵀ) and has rank ≤ N.
    """
    import torch

    residual, keys = residual.double(), keys.double()
    m = keys.shape[0]
    prior = torch.eye(m, dtype=torch.float64, device=keys.device) if mom2 is None else mom2.double().to(keys.device)
    if prior.shape != (m, m):
        raise ValueError(f"second moment has shape {tuple(prior.shape)}, expected ({m}, {m}) for keys of size {m}")
    system = lam * prior + keys @ keys.T
    adjusted = torch.linalg.solve(system, keys)  # [m, N]
    return residual @ adjusted.T


def add_to_weight(weight: Any, delta: Any) -> None:
    """W ← W + ΔW, summed in float64 and rounded once to the weight's dtype."""
    import torch

    if tuple(delta.shape) != tuple(weight.shape):
        raise ValueError(f"update has shape {tuple(delta.shape)}, weight has {tuple(weight.shape)}")
    with torch.no_grad():
        weight.copy_((weight.double() + delta.to(device=weight.device, dtype=torch.float64)).to(weight.dtype))
