"""Running rows through the model: padded chunks, values read at given token positions, logits only where needed.

Keys, values and losses are read at a few positions per row, so the vocabulary projection is
applied to those positions alone (a full [rows, length, vocab] logits tensor of a 92k-vocab
model is gigabytes). Chunks are bounded in padded tokens to bound activation memory.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

from editsweep.editing.hooks import StopForward, capture, stop_after
from editsweep.editing.tokens import Batch, EncodedRow, chunk_rows, pad_rows

__all__ = [
    "model_device",
    "can_start_at_layer",
    "layer_input",
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


def can_start_at_layer(model: Any) -> bool:
    """Whether the decoder can be run from a middle layer (every layer has the same attention type)."""
    decoder = model.get_decoder()
    layer_types = getattr(model.config, "layer_types", None)
    return hasattr(decoder, "layers") and (layer_types is None or len(set(layer_types)) <= 1)


@contextlib.contextmanager
def _layers_from(decoder: Any, start: int) -> Iterator[None]:
    """Temporarily make the decoder's layer list begin at layer `start` (same module objects, hooks kept)."""
    import torch

    original = decoder.layers
    decoder.layers = torch.nn.ModuleList(list(original)[start:])
    try:
        yield
    finally:
        decoder.layers = original


def layer_input(model: Any, arch: Any, batch: Batch, layer: int) -> Any:
    """The hidden states entering decoder layer `layer` (no gradient); the forward stops there."""
    import torch

    from editsweep.models.arch import get_module

    module = get_module(model, arch.layer(layer))
    with torch.no_grad(), capture({"h": module}, what="input") as store:
        run_decoder(model, batch, stop_module=module)
    return store["h"]


def run_decoder(model: Any, batch: Batch, stop_module: Any | None = None, start: tuple[int, Any] | None = None) -> Any:
    """The decoder stack's output (no vocabulary projection), or None when it stopped after `stop_module`.

    `start=(layer, hidden)` runs only layers `layer`… on `hidden`, the input of that layer computed
    earlier by `layer_input`: the layers below do not depend on anything an edit optimises there.
    """
    decoder = model.get_decoder()
    inputs = batch.model_inputs()
    with contextlib.ExitStack() as stack:
        if start is not None and start[0] > 0:
            inputs = {"inputs_embeds": start[1], "attention_mask": inputs["attention_mask"], "position_ids": inputs["position_ids"]}
            stack.enter_context(_layers_from(decoder, start[0]))
        if stop_module is None:
            return decoder(**inputs, use_cache=False).last_hidden_state
        stack.enter_context(stop_after(stop_module))
        try:
            return decoder(**inputs, use_cache=False).last_hidden_state
        except StopForward:
            return None


def final_hidden(model: Any, arch: Any, batch: Batch, loss_layer: int | None, start: tuple[int, Any] | None = None) -> Any:
    """Normalised hidden states [B, L, d] after `loss_layer` (None: the last layer, i.e. the true logits' input).

    For an earlier layer this is the logit lens of MEMIT's `v_loss_layer`: the final norm applied to
    that layer's output; the forward stops there. `start` is passed to `run_decoder`.
    """
    from editsweep.models.arch import get_module

    if loss_layer is None or loss_layer == arch.n_layers - 1:
        return run_decoder(model, batch, start=start)
    layer_name = arch.layer(loss_layer)
    layer = get_module(model, layer_name)
    with capture({layer_name: layer}, what="output", detach=False) as store:
        run_decoder(model, batch, stop_module=layer, start=start)
    return get_module(model, arch.final_norm)(store[layer_name])


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
