"""Constrained fine-tuning (FT-L and FT-M) of the `mlp.down_proj` weights of the given layers.

Notes §3.6. Adam on the named weights only, `num_steps` epochs over chunks of `batch_size`
requests; a step is skipped when the chunk's loss is below 1e-2 and training stops when the
epoch's mean loss is. `norm_constraint` ε is an L∞ box: after every step each weight is clamped
element-wise to [W₀ − ε, W₀ + ε]. Objectives:
- `target_new` (FT-M): teacher-forced log-likelihood of the target tokens after the prompt
  (prompt and padding carry no label);
- `prompt_last` (FT-L, the original ROME baseline): every target token scored from the logits
  at the last prompt position (a bag-of-tokens objective).
Targets come from the joint tokenization, so BOS and pad ids are never labels. Training runs on
float32 master copies (a bf16 weight cannot hold an Adam step of 5e-4 around 1e-2 values); the
model dtype copy is written once at the end, so on bf16 models the box holds up to one rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from editsweep.editing.protocol import EditHandle, EditRequest, Editor, HParams
from editsweep.editing.tokens import EncodedRow

__all__ = ["FTHParams", "FTEditor", "OBJECTIVES", "loss_positions"]

OBJECTIVES = ("target_new", "prompt_last")
_STOP_LOSS = 1e-2


@dataclass(frozen=True)
class FTHParams(HParams):
    num_steps: int = 25
    lr: float = 5e-4
    weight_decay: float = 0.0
    norm_constraint: float | None = 1e-4
    objective: str = "target_new"
    batch_size: int = 1
    # Keep at most this many tokens per request, cutting the prompt from the left (never the target).
    max_length: int | None = None

    def validate(self, method: str) -> None:
        super().validate(method)
        if self.objective not in OBJECTIVES:
            raise ValueError(f"method {method!r}: objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.num_steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"method {method!r}: num_steps, batch_size and lr must be positive")
        if self.norm_constraint is not None and self.norm_constraint <= 0:
            raise ValueError(f"method {method!r}: norm_constraint must be > 0 or null, got {self.norm_constraint}")
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"method {method!r}: max_length must be ≥ 2 or null")


def loss_positions(row: EncodedRow, objective: str) -> list[tuple[int, int]]:
    """(logit position, label id) pairs of one row: FT-M reads each target token's own
    preceding position, FT-L reads every target token at the last prompt position."""
    if objective == "target_new":
        return [(p - 1, row.input_ids[p]) for p in row.target_positions]
    if objective == "prompt_last":
        return [(row.prompt_len - 1, row.input_ids[p]) for p in row.target_positions]
    raise ValueError(f"unknown FT objective {objective!r}")


def _truncate(row: EncodedRow, max_length: int | None) -> EncodedRow:
    if max_length is None or len(row.input_ids) <= max_length:
        return row
    cut = len(row.input_ids) - max_length
    if cut >= row.prompt_len:
        raise ValueError(f"FT max_length {max_length} leaves no prompt token before a {len(row.target_positions)}-token target")
    return EncodedRow(
        row.input_ids[cut:], max(row.lookup - cut, 0), tuple(p - cut for p in row.target_positions), row.prompt_len - cut
    )


class FTEditor(Editor):
    name = "ft"
    batches = True
    hparams_class = FTHParams

    def _apply(self, model: Any, tokenizer: Any, requests: list[EditRequest]) -> EditHandle:
        import torch
        from torch.func import functional_call

        from editsweep.editing.forward import model_device
        from editsweep.editing.hooks import frozen
        from editsweep.editing.tokens import encode_row, pad_id_of, padding_side_of, pad_rows
        from editsweep.editing.weights import WeightHandle
        from editsweep.models.arch import arch_of

        h = self.hparams
        arch = arch_of(model)
        names = [f"{arch.mlp_down(l)}.weight" for l in h.layers]
        handle = WeightHandle(self.name, model, names, len(requests))
        if not requests:
            return handle
        decoder = model.get_decoder()
        prefix = next(name for name, module in model.named_modules() if module is decoder)
        params = dict(model.named_parameters())
        pad_id, side, device = pad_id_of(tokenizer), padding_side_of(tokenizer), model_device(model)
        rows = [
            _truncate(encode_row(tokenizer, "", r.prompt, r.subject_start, r.subject, r.target_new, "last", r.context_end), h.max_length)
            for r in requests
        ]
        originals = {n: params[n].detach().float().clone() for n in names}
        masters = {n: originals[n].clone().requires_grad_(True) for n in names}
        optimizer = torch.optim.Adam(list(masters.values()), lr=h.lr, weight_decay=h.weight_decay)
        eps = h.norm_constraint
        steps_log: list[dict[str, Any]] = []
        try:
            with frozen(model), torch.enable_grad():
                for epoch in range(h.num_steps):
                    losses = []
                    for start in range(0, len(rows), h.batch_size):
                        chunk = rows[start : start + h.batch_size]
                        batch = pad_rows(chunk, pad_id, side, device)
                        override = {n[len(prefix) + 1 :]: masters[n].to(params[n].dtype) for n in names}
                        hidden = functional_call(decoder, override, args=(), kwargs={**batch.model_inputs(), "use_cache": False})
                        hidden = hidden.last_hidden_state
                        loss = self._loss(model, arch, hidden, batch, chunk)
                        value = float(loss.detach())
                        losses.append(value)
                        if value < _STOP_LOSS:
                            continue
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                        if eps is not None:
                            with torch.no_grad():
                                for n in names:
                                    masters[n].copy_(torch.max(torch.min(masters[n], originals[n] + eps), originals[n] - eps))
                        with torch.no_grad():
                            change = max(float((masters[n] - originals[n]).abs().max()) for n in names)
                        steps_log.append({"epoch": epoch, "loss": value, "max_abs_change": change})
                    if sum(losses) / len(losses) < _STOP_LOSS:
                        break
            with torch.no_grad():
                for n in names:
                    params[n].copy_(masters[n].to(params[n].dtype))
        except BaseException:
            handle.restore()
            raise
        handle.info.update(steps=steps_log, epochs=epoch + 1, final_loss=sum(losses) / len(losses))
        return handle

    def _loss(self, model: Any, arch: Any, hidden: Any, batch: Any, chunk: Sequence[EncodedRow]) -> Any:
        """Mean over requests of each request's mean target-token negative log-likelihood."""
        import torch

        from editsweep.editing.forward import logits_at

        device = hidden.device
        rows_idx, cols, labels, owner = [], [], [], []
        for b, row in enumerate(chunk):
            for position, label in loss_positions(row, self.hparams.objective):
                rows_idx.append(b)
                cols.append(batch.column(b, position))
                labels.append(label)
                owner.append(b)
        logp = torch.log_softmax(logits_at(model, arch, hidden, torch.tensor(rows_idx, device=device), torch.tensor(cols, device=device)), -1)
        token_nll = -logp.gather(1, torch.tensor(labels, device=device).unsqueeze(1)).squeeze(1)
        owner_t = torch.tensor(owner, device=device)
        per_row = torch.zeros(len(chunk), device=device).index_add(0, owner_t, token_nll)
        counts = torch.zeros(len(chunk), device=device).index_add(0, owner_t, torch.ones_like(token_nll))
        return (per_row / counts).mean()
