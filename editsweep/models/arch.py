"""Module names of the supported decoder architectures, chosen by `config.model_type`.

Editors and statistics address weights by name (`model.layers.5.mlp.down_proj`). The names come
from here, keyed by the checkpoint's declared `model_type`, never from the model's hub name: a
name like "CodeQwen1.5" says nothing reliable about its architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ArchSpec",
    "SUPPORTED_MODEL_TYPES",
    "UnsupportedArchitectureError",
    "arch_for_config",
    "arch_of",
    "get_module",
]


class UnsupportedArchitectureError(ValueError):
    """The checkpoint's `model_type` has no module map here."""


@dataclass(frozen=True)
class _Layout:
    """Name templates of one architecture family; `{l}` is the layer index."""

    layer: str
    mlp_down: str
    mlp_gate: str
    mlp_up: str
    attn_out: str
    attn_q: str
    attn_k: str
    attn_v: str
    embed: str
    final_norm: str
    lm_head: str
    qkv_bias: bool


# Llama and Qwen2 share the module tree; Qwen2 adds q/k/v biases.
_LLAMA_TREE = dict(
    layer="model.layers.{l}",
    mlp_down="model.layers.{l}.mlp.down_proj",
    mlp_gate="model.layers.{l}.mlp.gate_proj",
    mlp_up="model.layers.{l}.mlp.up_proj",
    attn_out="model.layers.{l}.self_attn.o_proj",
    attn_q="model.layers.{l}.self_attn.q_proj",
    attn_k="model.layers.{l}.self_attn.k_proj",
    attn_v="model.layers.{l}.self_attn.v_proj",
    embed="model.embed_tokens",
    final_norm="model.norm",
    lm_head="lm_head",
)

_LAYOUTS: dict[str, _Layout] = {
    "llama": _Layout(**_LLAMA_TREE, qkv_bias=False),
    "qwen2": _Layout(**_LLAMA_TREE, qkv_bias=True),
}

SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(sorted(_LAYOUTS))


@dataclass(frozen=True)
class ArchSpec:
    """Module names and sizes of one loaded model; layer methods check the index."""

    model_type: str
    n_layers: int
    hidden_size: int
    intermediate_size: int
    layout: _Layout

    # -- per-layer names ---------------------------------------------------------------------
    def _name(self, template: str, layer: int) -> str:
        if not isinstance(layer, int) or isinstance(layer, bool):
            raise TypeError(f"layer index must be an int, got {layer!r}")
        if not 0 <= layer < self.n_layers:
            raise IndexError(
                f"layer {layer} out of range for this {self.model_type} model "
                f"with {self.n_layers} layers (valid: 0..{self.n_layers - 1})"
            )
        return template.format(l=layer)

    def layer(self, layer: int) -> str:
        """The decoder layer (its output is the residual stream after layer `layer`)."""
        return self._name(self.layout.layer, layer)

    def mlp_down(self, layer: int) -> str:
        """The MLP output matrix W [d, m] that ROME/MEMIT/PMET edit; its input is the key."""
        return self._name(self.layout.mlp_down, layer)

    def mlp_gate(self, layer: int) -> str:
        return self._name(self.layout.mlp_gate, layer)

    def mlp_up(self, layer: int) -> str:
        return self._name(self.layout.mlp_up, layer)

    def attn_out(self, layer: int) -> str:
        """The attention output projection (PMET's attention target)."""
        return self._name(self.layout.attn_out, layer)

    def attn_q(self, layer: int) -> str:
        return self._name(self.layout.attn_q, layer)

    def attn_k(self, layer: int) -> str:
        return self._name(self.layout.attn_k, layer)

    def attn_v(self, layer: int) -> str:
        return self._name(self.layout.attn_v, layer)

    # -- whole-model names -------------------------------------------------------------------
    @property
    def embed(self) -> str:
        return self.layout.embed

    @property
    def final_norm(self) -> str:
        return self.layout.final_norm

    @property
    def lm_head(self) -> str:
        return self.layout.lm_head

    @property
    def qkv_bias(self) -> bool:
        """Whether q/k/v projections carry biases (Qwen2 does)."""
        return self.layout.qkv_bias

    @property
    def layers(self) -> range:
        return range(self.n_layers)


def arch_for_config(config: Any) -> ArchSpec:
    """The ArchSpec of a transformers config; a clear error for unsupported model types."""
    model_type = getattr(config, "model_type", None)
    if model_type not in _LAYOUTS:
        raise UnsupportedArchitectureError(
            f"unsupported model_type {model_type!r}: editsweep has module maps for "
            f"{', '.join(SUPPORTED_MODEL_TYPES)} only"
        )
    return ArchSpec(
        model_type=model_type,
        n_layers=int(config.num_hidden_layers),
        hidden_size=int(config.hidden_size),
        intermediate_size=int(config.intermediate_size),
        layout=_LAYOUTS[model_type],
    )


def arch_of(model: Any) -> ArchSpec:
    """The ArchSpec of a loaded model, read from `model.config.model_type`."""
    config = getattr(model, "config", None)
    if config is None:
        raise TypeError(f"{type(model).__name__} has no .config; pass a transformers model")
    return arch_for_config(config)


def get_module(model: Any, name: str) -> Any:
    """The submodule at dotted path `name`; the error names the first missing component."""
    try:
        return model.get_submodule(name)
    except AttributeError as exc:
        raise LookupError(
            f"{type(model).__name__} has no module {name!r} ({exc}); "
            f"module names come from editsweep.models.arch for model_type "
            f"{getattr(getattr(model, 'config', None), 'model_type', '?')!r}"
        ) from None
