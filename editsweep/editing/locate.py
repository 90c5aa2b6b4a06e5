"""What ROME, MEMIT and PMET share: hyperparameters, template rows, statistics, key reading.

The three are locate-then-edit methods: find the key at the subject's token, optimise a target
value there (`vstar`), and write a closed-form update into `mlp.down_proj` (`closed_form`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from editsweep.editing.protocol import EditRequest, Editor, HParams
from editsweep.editing.rows import RequestRows, build_rows
from editsweep.editing.templates import TemplateCache

__all__ = ["LocateHParams", "LocateEditor"]


@dataclass(frozen=True)
class LocateHParams(HParams):
    """Hyperparameters common to ROME/MEMIT/PMET (names follow EasyEdit's yamls)."""

    v_num_grad_steps: int = 25
    v_lr: float = 0.5
    v_weight_decay: float = 1e-3
    clamp_norm_factor: float = 4.0
    kl_factor: float = 0.0625
    # The logit-lens layer of the loss; null means the last layer (the true logits).
    v_loss_layer: int | None = None
    # [[n_tokens, count], ...] sampled templates besides "{}"; [] means the bare prompt only.
    context_template_length_params: tuple = ((10, 5),)
    template_seed: int = 0
    # Second-moment statistics (notes §4): corpus spec, token budget, per-document cap, cache dir.
    mom2_corpus: str = "stdlib"
    mom2_tokens: int = 200_000
    mom2_max_length: int = 1024
    mom2_stats_dir: str | None = None
    # Bound on padded tokens per forward in the optimisation (activation memory).
    max_tokens_per_batch: int = 4096

    def validate(self, method: str) -> None:
        super().validate(method)
        positive = ("v_num_grad_steps", "v_lr", "clamp_norm_factor", "mom2_tokens", "mom2_max_length", "max_tokens_per_batch")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"method {method!r}: {name} must be > 0, got {getattr(self, name)!r}")
        for name in ("v_weight_decay", "kl_factor"):
            if getattr(self, name) < 0:
                raise ValueError(f"method {method!r}: {name} must be ≥ 0, got {getattr(self, name)!r}")
        for pair in self.context_template_length_params:
            if len(pair) != 2 or min(pair) < 1:
                raise ValueError(f"method {method!r}: context_template_length_params entries must be [n_tokens, count], got {pair!r}")

    @classmethod
    def from_dict(cls, method: str, values: dict[str, Any]) -> "LocateHParams":
        values = dict(values)
        if "context_template_length_params" in values:
            values["context_template_length_params"] = tuple(
                tuple(int(x) for x in pair) for pair in (values["context_template_length_params"] or [])
            )
        return super().from_dict(method, values)


class LocateEditor(Editor):
    """Template rows, the loss layer and cached second moments for ROME/MEMIT/PMET."""

    hparams_class = LocateHParams

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        self._templates = TemplateCache()
        self._mom2: dict[tuple, Any] = {}

    def _check_layers(self, model: Any) -> None:
        super()._check_layers(model)
        from editsweep.models.arch import arch_of

        arch = arch_of(model)
        loss_layer = self.hparams.v_loss_layer
        if loss_layer is not None and not (max(self.hparams.layers) <= loss_layer < arch.n_layers):
            raise ValueError(
                f"method {self.name!r}: v_loss_layer {loss_layer} must lie in [{max(self.hparams.layers)}, {arch.n_layers - 1}]"
            )

    def rows(self, model: Any, tokenizer: Any, requests: Sequence[EditRequest]) -> list[RequestRows]:
        groups = self._templates.get(model, tokenizer, self.hparams.context_template_length_params, self.hparams.template_seed)
        return build_rows(tokenizer, requests, groups)

    def second_moment(self, model: Any, tokenizer: Any, layer: int, module: str = "mlp_down") -> Any:
        """C for one layer on the model's device (float32), from the editor's memory or the disk cache.

        On a miss, every edited layer still missing is fetched in the same pass.
        """
        from editsweep.editing.forward import model_device
        from editsweep.editing.identity import model_identity
        from editsweep.editing.stats import get_second_moments

        h = self.hparams
        identity = model_identity(model)

        def key(l: int) -> tuple:
            return (identity, module, l, h.mom2_corpus, h.mom2_tokens, h.mom2_max_length, h.mom2_stats_dir)

        if key(layer) not in self._mom2:
            wanted = sorted({layer, *(l for l in h.layers if key(l) not in self._mom2)})
            moments = get_second_moments(
                model, tokenizer, wanted, corpus=h.mom2_corpus, tokens=h.mom2_tokens, cache_dir=h.mom2_stats_dir,
                module=module, max_length=h.mom2_max_length,
            )
            for l, mom2 in moments.items():
                self._mom2[key(l)] = mom2.to(model_device(model))
        return self._mom2[key(layer)]
