"""Running rows through the model: padded chunks, values read at given token positions, logits only where needed.

Keys, values and losses are read at a few positions per row, so the vocabulary projection is
applied to those positions alone (a full [rows, length, vocab] logits tensor of a 92k-vocab
model is gigabytes). Chunks are bounded in padded tokens to bound activation memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from editsweep.editing.hooks import StopForward, capture, stop_after
from editsweep.editing.tokens import Batch, EncodedRow, chunk_rows, pad_rows

__all__ = [
    "model_device",
    "SplitBatch",
    "split_rows",
    "run_decoder",
    "final_hidden",
    "logits_at",
    "read_at_positions",
    "length_sorted_chunks",
]


def model_device(model: Any) -> Any:
    return next(model.parameters()).device


def length_sorted_chunks(rows: Sequence[EncodedRow], max_tokens: int) -> list[list[int]]:
    """Row indices grouped into chunks of similar length, each within `max_tokens` padded tokens."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].input_ids))
    chunks = chunk_rows([len(rows[i].input_ids) for i in order], max_tokens)
    return [[order[j] for j in chunk] for chunk in chunks]


def run_decoder(model: Any, inputs: Batch | dict[str, Any], stop_module: Any | None = None) -> Any:
    """The decoder stack's output (no vocabulary projection), or None when it stopped after `stop_module`.

    `inputs` is a padded `Batch` or the decoder's keyword arguments (e.g. a `SplitBatch` suffix
    with its `past_key_values`).
    """
    decoder = model.get_decoder()
    kwargs = inputs.model_inputs() if isinstance(inputs, Batch) else dict(inputs)
    kwargs.setdefault("use_cache", False)
    if stop_module is None:
        return decoder(**kwargs).last_hidden_state
    with stop_after(stop_module):
        try:
            return decoder(**kwargs).last_hidden_state
        except StopForward:
            return None


def final_hidden(model: Any, arch: Any, inputs: Batch | dict[str, Any], loss_layer: int | None) -> Any:
    """Normalised hidden states [B, L, d] after `loss_layer` (None: the last layer, i.e. the true logits' input).

    For an earlier layer this is the logit lens of MEMIT's `v_loss_layer`: the final norm applied to
    that layer's output; the forward stops there.
    """
    from editsweep.models.arch import get_module

    if loss_layer is None or loss_layer == arch.n_layers - 1:
        return run_decoder(model, inputs)
    layer_name = arch.layer(loss_layer)
    layer = get_module(model, layer_name)
    with capture({layer_name: layer}, what="output", detach=False) as store:
        run_decoder(model, inputs, stop_module=layer)
    return get_module(model, arch.final_norm)(store[layer_name])


@dataclass
class SplitBatch:
    """Rows cut at a token each: the prefixes (left-padded, so they all end at column `width`) run once
    into a KV cache; the suffixes (right-padded) are re-run on top of it as often as needed.

    Nothing before a row's cut can depend on what is injected at or after it (causal attention),
    which is why the δ optimisation only recomputes the suffixes: the key token and the targets.
    `suffix_column(b, p)` maps row position p ≥ cut to a column of the suffix batch.
    """

    prefix: Batch
    suffix_ids: Any
    suffix_mask: Any
    suffix_positions: Any
    cuts: list[int]
    width: int
    kv: list[tuple[Any, Any]] | None = None

    def suffix_column(self, row: int, position: int) -> int:
        column = position - self.cuts[row]
        if column < 0:
            raise IndexError(f"position {position} of row {row} lies before its cut {self.cuts[row]}")
        return column

    def fill_cache(self, model: Any) -> None:
        """Run the prefixes once (no gradient) and keep their keys and values."""
        import torch

        if self.width == 0:
            self.kv = []
            return
        with torch.no_grad():
            out = model.get_decoder()(**self.prefix.model_inputs(), use_cache=True)
        self.kv = _cache_tensors(out.past_key_values)

    def suffix_inputs(self, rows: Any | None = None) -> dict[str, Any]:
        """Decoder kwargs for the suffixes of `rows` (all when None) on a fresh cache over the stored prefixes."""
        import torch
        from transformers import DynamicCache

        if self.kv is None:
            raise RuntimeError("SplitBatch.fill_cache must run before suffix_inputs")
        pick = (lambda t: t) if rows is None else (lambda t: t.index_select(0, rows))
        mask = torch.cat([self.prefix.attention_mask, self.suffix_mask], dim=1)
        inputs = {
            "input_ids": pick(self.suffix_ids),
            "attention_mask": pick(mask),
            "position_ids": pick(self.suffix_positions),
        }
        if self.kv:
            # The forward concatenates onto these tensors, never writes into them, so they are reusable.
            inputs["past_key_values"] = DynamicCache([(pick(k), pick(v)) for k, v in self.kv])
            inputs["use_cache"] = True
        return inputs


def _cache_tensors(cache: Any) -> list[tuple[Any, Any]]:
    """Per-layer (keys, values) of a transformers DynamicCache (v5 `layers`, or v4 `key_cache`)."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))


def split_rows(rows: Sequence[EncodedRow], cuts: Sequence[int], pad_id: int, device: Any) -> SplitBatch:
    """Cut each row before position `cuts[b]` (0 ≤ cut < length): prefixes left-padded, suffixes right-padded."""
    import torch

    if len(rows) != len(cuts) or not rows:
        raise ValueError("split_rows needs one cut per row and at least one row")
    for row, cut in zip(rows, cuts):
        if not 0 <= cut < len(row.input_ids):
            raise ValueError(f"cut {cut} outside a row of {len(row.input_ids)} tokens")
    width = max(cuts)
    if width:
        prefix = pad_rows([row.input_ids[:cut] for row, cut in zip(rows, cuts)], pad_id, "left", device)
    else:
        empty = torch.zeros((len(rows), 0), dtype=torch.long, device=device)
        prefix = Batch(empty, empty, empty, [0] * len(rows))
    suffix_len = max(len(row.input_ids) - cut for row, cut in zip(rows, cuts))
    ids = torch.full((len(rows), suffix_len), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), suffix_len), dtype=torch.long)
    positions = torch.zeros((len(rows), suffix_len), dtype=torch.long)
    for b, (row, cut) in enumerate(zip(rows, cuts)):
        tail = row.input_ids[cut:]
        ids[b, : len(tail)] = torch.tensor(tail, dtype=torch.long)
        mask[b, : len(tail)] = 1
        positions[b] = torch.arange(cut, cut + suffix_len)
    return SplitBatch(prefix, ids.to(device), mask.to(device), positions.to(device), list(cuts), width)


def logits_at(model: Any, arch: Any, hidden: Any, rows: Any, cols: Any) -> Any:
    """Float32 logits at (rows[i], cols[i]) only."""
    from editsweep.models.arch import get_module

    head = get_module(model, arch.lm_head)
    return head(hidden[rows, cols]).float()


def read_at_positions(
    model: Any,
    rows: Sequence[EncodedRow],
    positions: Callable[[EncodedRow], int],
    modules: dict[str, tuple[Any, str]],
    pad_id: int,
    side: str,
    max_tokens: int,
    stop_module: Any | None = None,
) -> dict[str, Any]:
    """{name: float32 [len(rows), dim]}: each module's input or output at each row's position.

    `modules` maps a name to (module, "input" | "output"). Runs without gradients; the forward
    stops after `stop_module` when given.
    """
    import torch

    device = model_device(model)
    out: dict[str, list] = {name: [None] * len(rows) for name in modules}
    by_kind: dict[str, dict[str, Any]] = {"input": {}, "output": {}}
    for name, (module, what) in modules.items():
        by_kind[what][name] = module
    with torch.no_grad():
        for chunk in length_sorted_chunks(rows, max_tokens):
            batch = pad_rows([rows[i] for i in chunk], pad_id, side, device)
            cols = torch.tensor([batch.column(b, positions(rows[i])) for b, i in enumerate(chunk)], device=device)
            bidx = torch.arange(len(chunk), device=device)
            with capture(by_kind["input"], "input") as ins, capture(by_kind["output"], "output") as outs:
                run_decoder(model, batch, stop_module)
            for name in modules:
                store = ins if name in ins else outs
                values = store[name][bidx, cols].float()
                for b, i in enumerate(chunk):
                    out[name][i] = values[b]
    return {name: torch.stack(values) for name, values in out.items()}
