"""GRACE (Hartvigsen et al., NeurIPS 2023): a key/value codebook in front of one `mlp.down_proj`.

Base weights never change (notes §3.5). An adapter hooks the wrapped layer: for every input
it takes the query, the layer's input at the input's last real token (computed per call from
the attention mask, so a later edit with another prompt length cannot move an earlier edit's
query, which is EasyEdit's stale-position bug), finds the nearest key, and when the distance is
within that entry's radius ε replaces the layer's output by the entry's value: at the query
token (`replace_last`), at every token up to it (`replace_prompt`) or everywhere (`replace_all`).
Otherwise the output is untouched, so logits are bit-identical.

An edit queries at the prompt's last token, then: far from every key → new entry with radius
`eps`; within range of a key with another label → new entry and both radii set to dist/2;
within range with the same label → that radius grows to dist (`coverage`) and its value is
retrained. A value starts random (`cold`) or at the current output (`warm`) and is trained with
Adam for `n_iter` steps on the teacher-forced target loss with replacement active.

GRACE affects generation (prompt, then one token at a time): a single teacher-forced pass over
prompt + target queries at the target's last token instead, as the method intends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from editsweep.editing.protocol import EditHandle, EditRequest, Editor, HParams

__all__ = ["GraceHParams", "GraceEditor", "GraceAdapter", "REPLACEMENTS", "adapter_of"]

REPLACEMENTS = ("replace_last", "replace_prompt", "replace_all")
_ATTR = "_editsweep_grace_adapters"


@dataclass(frozen=True)
class GraceHParams(HParams):
    edit_lr: float = 1.0
    n_iter: int = 30
    eps: float = 1.0
    val_init: str = "cold"
    replacement: str = "replace_last"
    eps_expand: str = "coverage"
    seed: int = 0

    def validate(self, method: str) -> None:
        super().validate(method)
        if self.val_init not in ("cold", "warm"):
            raise ValueError(f"method {method!r}: val_init must be 'cold' or 'warm', got {self.val_init!r}")
        if self.replacement not in REPLACEMENTS:
            raise ValueError(f"method {method!r}: replacement must be one of {REPLACEMENTS}, got {self.replacement!r}")
        if self.eps_expand != "coverage":
            raise ValueError(f"method {method!r}: eps_expand supports 'coverage' only, got {self.eps_expand!r}")
        if self.eps <= 0 or self.n_iter < 1 or self.edit_lr <= 0:
            raise ValueError(f"method {method!r}: eps, n_iter and edit_lr must be positive")


class GraceAdapter:
    """The codebook and hooks of one layer; a plain object, so the model's state_dict never changes."""

    def __init__(self, model: Any, layer: int, replacement: str) -> None:
        import torch

        from editsweep.models.arch import arch_of, get_module

        arch = arch_of(model)
        self.layer = layer
        self.replacement = replacement
        self.module = get_module(model, arch.mlp_down(layer))
        device = self.module.weight.device
        self.keys = torch.zeros(0, arch.intermediate_size, device=device)
        self.values = torch.zeros(0, arch.hidden_size, device=device)
        self.eps = torch.zeros(0, device=device)
        self.labels: list[str] = []
        self.version = 0
        self.forced_positions = None  # [B] query positions while training a value
        self.train_value = None  # a [d] tensor with grad while training
        self._mask = None
        self._hooks = [
            model.get_decoder().register_forward_pre_hook(self._remember_mask, with_kwargs=True),
            self.module.register_forward_hook(self._replace),
        ]

    def __len__(self) -> int:
        return len(self.labels)

    # -- hooks ---------------------------------------------------------------------------------
    def _remember_mask(self, _module, args, kwargs):
        self._mask = kwargs.get("attention_mask")
        return None

    def query_positions(self, batch: int, length: int) -> Any:
        """Per row, the index (within this call's tokens) of the last real token; -1 when none."""
        import torch

        if self.forced_positions is not None:
            return self.forced_positions
        mask = self._mask
        if mask is None or mask.dim() != 2:
            return torch.full((batch,), length - 1, dtype=torch.long, device=self.keys.device)
        current = mask[:, -length:].to(self.keys.device)
        index = torch.arange(length, device=current.device).expand_as(current)
        return torch.where(current.bool(), index, torch.full_like(index, -1)).max(dim=1).values

    def _replace(self, _module, inputs, output):
        """Swap the layer output for the nearest entry's value where the query is within its ε.

        Written without host synchronisation (no `.any()`, `.tolist()` or boolean indexing), so
        generation can capture the edited model in a CUDA graph: every row is looked up, and rows
        without a hit keep their output through `torch.where`.
        """
        import torch

        if self.train_value is None and len(self) == 0:
            return None
        x = inputs[0]
        batch, length = x.shape[0], x.shape[1]
        positions = self.query_positions(batch, length)
        if self.train_value is not None:
            hit = positions >= 0
            values = self.train_value.unsqueeze(0).expand(batch, -1)
        else:
            query = x[torch.arange(batch, device=x.device), positions.clamp(min=0)].float()
            nearest_dist, nearest = torch.cdist(query, self.keys).min(dim=1)
            hit = (positions >= 0) & (nearest_dist <= self.eps[nearest])
            values = self.values[nearest]
        index = torch.arange(length, device=x.device)[None, :]
        if self.replacement == "replace_last":
            where = index == positions[:, None]
        elif self.replacement == "replace_prompt":
            where = index <= positions[:, None]
        else:
            where = torch.ones_like(index, dtype=torch.bool).expand(batch, length)
        where = (where & hit[:, None])[..., None]
        return torch.where(where, values.to(output.dtype)[:, None, :], output)

    # -- codebook ------------------------------------------------------------------------------
    def snapshot(self) -> tuple:
        return (self.keys.clone(), self.values.clone(), self.eps.clone(), list(self.labels))

    def load(self, state: tuple) -> None:
        self.keys, self.values, self.eps, self.labels = state[0].clone(), state[1].clone(), state[2].clone(), list(state[3])

    def remove(self, model: Any) -> None:
        for hook in self._hooks:
            hook.remove()
        adapters = model.__dict__.get(_ATTR, {})
        adapters.pop(self.layer, None)
        if not adapters:
            model.__dict__.pop(_ATTR, None)


def adapter_of(model: Any, layer: int) -> GraceAdapter | None:
    """The GRACE adapter attached to `layer`, if any."""
    return model.__dict__.get(_ATTR, {}).get(layer)


class GraceHandle(EditHandle):
    """Puts the codebook back as it was before the edit; removes the adapter when it was new."""

    def __init__(self, model: Any, adapter: GraceAdapter, state: tuple, created: bool, n_requests: int) -> None:
        super().__init__("grace", n_requests)
        self._model, self._adapter, self._state, self._created = model, adapter, state, created
        self._version = None

    def _restore(self) -> None:
        adapter = self._adapter
        if adapter.version != self._version:
            raise RuntimeError("GRACE edits must be restored in reverse order (a later edit is still applied)")
        adapter.load(self._state)
        adapter.version -= 1
        if self._created:
            adapter.remove(self._model)


class GraceEditor(Editor):
    name = "grace"
    batches = False
    n_layers = 1
    hparams_class = GraceHParams

    def _apply(self, model: Any, tokenizer: Any, requests: list[EditRequest]) -> EditHandle:
        import torch

        h = self.hparams
        layer = h.layers[0]
        adapter = adapter_of(model, layer)
        created = adapter is None
        if created:
            adapter = GraceAdapter(model, layer, h.replacement)
            model.__dict__.setdefault(_ATTR, {})[layer] = adapter
        elif adapter.replacement != h.replacement:
            raise ValueError(f"GRACE adapter at layer {layer} uses {adapter.replacement}, this editor {h.replacement}")
        handle = GraceHandle(model, adapter, adapter.snapshot(), created, len(requests))
        generator = torch.Generator(device="cpu").manual_seed(h.seed + len(adapter))
        records = []
        try:
            for request in requests:
                records.append(self._edit_one(model, tokenizer, adapter, request, generator))
        except BaseException:
            adapter.load(handle._state)
            if created:
                adapter.remove(model)
            raise
        adapter.version += 1
        handle._version = adapter.version
        handle.info["requests"] = records
        return handle

    def _edit_one(self, model: Any, tokenizer: Any, adapter: GraceAdapter, request: EditRequest, generator: Any) -> dict:
        import torch

        from editsweep.editing.forward import final_hidden, logits_at, model_device
        from editsweep.editing.hooks import capture, frozen
        from editsweep.editing.tokens import encode_row, pad_id_of, padding_side_of, pad_rows
        from editsweep.models.arch import arch_of

        h = self.hparams
        arch = arch_of(model)
        device = model_device(model)
        row = encode_row(
            tokenizer, "", request.prompt, request.subject_start, request.subject, request.target_new, "last", request.context_end
        )
        batch = pad_rows([row], pad_id_of(tokenizer), padding_side_of(tokenizer), device)
        key_col = batch.column(0, row.prompt_len - 1)
        adapter.forced_positions = torch.tensor([key_col], device=device)
        try:
            with frozen(model):
                with torch.no_grad(), capture({"x": adapter.module}, "input") as ins, capture({"y": adapter.module}, "output") as outs:
                    adapter.train_value = None
                    final_hidden(model, arch, batch, None)
                query = ins["x"][0, key_col].float()
                current_out = outs["y"][0, key_col].float()
                label = request.target_new
                decision, index, radius = self._place(adapter, query, label)
                if decision == "expand":
                    start = adapter.values[index].clone()
                elif h.val_init == "warm":
                    start = current_out.clone()
                else:
                    start = torch.rand(arch.hidden_size, generator=generator).to(device)
                value = start.clone().requires_grad_(True)
                optimizer = torch.optim.Adam([value], lr=h.edit_lr)
                rows_t = torch.zeros(len(row.target_positions), dtype=torch.long, device=device)
                cols_t = torch.tensor([batch.column(0, p - 1) for p in row.target_positions], device=device)
                labels = torch.tensor(list(row.target_ids), device=device)
                losses = []
                with torch.enable_grad():
                    adapter.train_value = value
                    for _ in range(h.n_iter):
                        hidden = final_hidden(model, arch, batch, None)
                        logp = torch.log_softmax(logits_at(model, arch, hidden, rows_t, cols_t), dim=-1)
                        loss = -logp.gather(1, labels.unsqueeze(1)).mean()
                        losses.append(float(loss.detach()))
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
        finally:
            adapter.train_value = None
            adapter.forced_positions = None
        trained = value.detach()
        if decision == "expand":
            adapter.values[index] = trained
        else:
            adapter.keys = torch.cat([adapter.keys, query.unsqueeze(0)])
            adapter.values = torch.cat([adapter.values, trained.unsqueeze(0)])
            adapter.eps = torch.cat([adapter.eps, torch.tensor([radius], device=device)])
            adapter.labels.append(label)
        return {"decision": decision, "loss_start": losses[0], "loss_end": losses[-1], "codebook": len(adapter)}

    def _place(self, adapter: GraceAdapter, query: Any, label: str) -> tuple[str, int, float]:
        """(decision, nearest entry, radius of a new entry); shrinks or grows the nearest radius."""
        import torch

        eps = self.hparams.eps
        if len(adapter) == 0:
            return "new", -1, eps
        dist = torch.cdist(query.unsqueeze(0), adapter.keys).squeeze(0)
        nearest = int(dist.argmin())
        d = float(dist[nearest])
        if d > eps + float(adapter.eps[nearest]):
            return "new", -1, eps
        if adapter.labels[nearest] != label:
            adapter.eps[nearest] = d / 2
            return "conflict", nearest, d / 2
        adapter.eps[nearest] = max(float(adapter.eps[nearest]), d)
        return "expand", nearest, eps
