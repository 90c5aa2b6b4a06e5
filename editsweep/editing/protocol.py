"""The editor protocol every method implements: requests in, a handle that can undo them out.

A cell never branches on the method: it builds `EditRequest`s, calls `editor.apply(model,
tokenizer, requests)`, and later `handle.restore()` (instant regime) or keeps the edit
(sequential regime). This module imports no torch so that the CLI stays instant.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

__all__ = ["KEY_POSITIONS", "EditRequest", "EditHandle", "Editor", "HParams"]

# Where the key (and ROME/MEMIT/PMET's δ) sits: notes §3.1 `fact_token` options.
KEY_POSITIONS = ("subject_last", "subject_first", "subject_first_after_last", "last")


@dataclass(frozen=True)
class EditRequest:
    """One edit: after `prompt` the model should continue with `target_new`.

    `subject` must occur in `prompt` (its last occurrence is used: in code it is the one nearest
    the call site); `key_position` says which token carries the key (`KEY_POSITIONS`).
    `context_end`, when known, is the offset in `prompt` where the model's generation input ends
    (the problem prompt) and its own writing begins: the two parts are then tokenized as
    generation sees them (`tokens.encode_row`), not merged across that boundary.
    """

    prompt: str
    target_new: str
    subject: str
    ground_truth: str | None = None
    key_position: str = "subject_last"
    context_end: int | None = None

    def __post_init__(self) -> None:
        for name in ("prompt", "target_new", "subject"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"EditRequest.{name} must be a str, got {type(value).__name__}")
        if not self.prompt:
            raise ValueError("EditRequest.prompt is empty")
        if not self.target_new:
            raise ValueError(f"EditRequest.target_new is empty (prompt ends {self.prompt[-40:]!r})")
        if not self.subject:
            raise ValueError(f"EditRequest.subject is empty (prompt ends {self.prompt[-40:]!r})")
        if self.subject not in self.prompt:
            raise ValueError(
                f"EditRequest.subject {self.subject!r} does not occur in its prompt "
                f"(prompt ends {self.prompt[-60:]!r})"
            )
        if self.context_end is not None and not (
            isinstance(self.context_end, int) and 0 < self.context_end <= len(self.prompt)
        ):
            raise ValueError(
                f"EditRequest.context_end {self.context_end!r} must be an offset in the prompt (1..{len(self.prompt)})"
            )
        if self.key_position not in KEY_POSITIONS:
            raise ValueError(
                f"EditRequest.key_position {self.key_position!r} is not one of {', '.join(KEY_POSITIONS)}"
            )

    @property
    def subject_start(self) -> int:
        """Character offset of the subject occurrence used (the last one in the prompt)."""
        return self.prompt.rindex(self.subject)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EditRequest":
        """Build from a benchmark `edit_request` object; extra keys (e.g. `template`) are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        missing = [name for name in ("prompt", "target_new", "subject") if name not in data]
        if missing:
            raise ValueError(f"edit request lacks {', '.join(missing)}: {sorted(data)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "EditRequest":
        """The request of a benchmark problem record (`benchmark.jsonl`), with `context_end` located.

        A code-context request's prompt is a left-truncated piece of `prompt + reference_new`; where
        the problem prompt ends inside it, generation's input ends too.
        """
        data = record.get("edit_request")
        if not data:
            raise ValueError(f"problem {record.get('id')!r} has no edit_request (only reliability problems do)")
        request = cls.from_dict(data)
        if request.context_end is not None:
            return request
        solution = record.get("prompt", "") + record.get("reference_new", "")
        start = solution.find(request.prompt)
        end = len(record.get("prompt", "")) - start
        if start >= 0 and 0 < end < len(request.prompt):
            return dataclasses.replace(request, context_end=end)
        return request


@dataclass(frozen=True)
class HParams:
    """Base of each method's hyperparameters; `from_dict` rejects unknown keys by name."""

    layers: tuple[int, ...] = ()

    @classmethod
    def from_dict(cls, method: str, values: dict[str, Any]) -> "HParams":
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(
                f"unknown hyperparameter(s) {', '.join(unknown)} for method {method!r}; "
                f"known: {', '.join(sorted(fields))}"
            )
        converted = dict(values)
        if "layers" in converted:
            converted["layers"] = _as_layers(method, converted["layers"])
        params = cls(**converted)
        params.validate(method)
        return params

    def validate(self, method: str) -> None:
        """Raise ValueError naming the bad field; subclasses extend it."""
        if not self.layers:
            raise ValueError(f"method {method!r}: `layers` is empty")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["layers"] = list(self.layers)
        return data


def _as_layers(method: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    try:
        layers = tuple(value)
    except TypeError:
        raise ValueError(f"method {method!r}: `layers` must be a list of ints, got {value!r}") from None
    for layer in layers:
        if not isinstance(layer, int) or isinstance(layer, bool) or layer < 0:
            raise ValueError(f"method {method!r}: `layers` must hold non-negative ints, got {value!r}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"method {method!r}: `layers` has duplicates: {list(layers)}")
    return tuple(sorted(layers))


class EditHandle:
    """Undo information for one `apply` call.

    `info` holds JSON-able diagnostics (per-request losses, norms, steps); `tensors` holds the
    computed targets and similar tensors for inspection (tests, analysis), never serialised.
    """

    def __init__(self, method: str, n_requests: int) -> None:
        self.method = method
        self.n_requests = n_requests
        self.info: dict[str, Any] = {}
        self.tensors: dict[str, Any] = {}
        self.restored = False

    def restore(self) -> None:
        """Put the model back exactly as it was before the `apply` that returned this handle."""
        if self.restored:
            raise RuntimeError(f"{self.method} edit handle was already restored")
        self._restore()
        self.restored = True

    def _restore(self) -> None:  # overridden by handles that hold state
        pass


class Editor:
    """Base of all methods: `apply` validates and dispatches to `_apply` (batch) or per request."""

    name: ClassVar[str] = ""
    batches: ClassVar[bool] = False
    hparams_class: ClassVar[type[HParams]] = HParams
    # How many layers the method edits: None (any number) or an exact count.
    n_layers: ClassVar[int | None] = None

    def __init__(self, **hparams: Any) -> None:
        self.hparams = self.hparams_class.from_dict(self.name, hparams)
        if self.n_layers is not None and len(self.hparams.layers) != self.n_layers:
            raise ValueError(
                f"method {self.name!r} edits exactly {self.n_layers} layer(s), got layers={list(self.hparams.layers)}"
            )

    def apply(self, model: Any, tokenizer: Any, requests: Sequence[EditRequest]) -> EditHandle:
        """Edit `model` in place so that each request's prompt continues with its target."""
        requests = list(requests)
        for i, request in enumerate(requests):
            if not isinstance(request, EditRequest):
                raise TypeError(f"request {i} is a {type(request).__name__}, expected EditRequest")
        self._check_layers(model)
        return self._apply(model, tokenizer, requests)

    def _check_layers(self, model: Any) -> None:
        from editsweep.models.arch import arch_of

        arch = arch_of(model)
        bad = [layer for layer in self.hparams.layers if layer >= arch.n_layers]
        if bad:
            raise ValueError(
                f"method {self.name!r}: layers {bad} do not exist in this {arch.model_type} model "
                f"with {arch.n_layers} layers (set per_model layers in conf/method/{self.name}.yaml)"
            )

    def _apply(self, model: Any, tokenizer: Any, requests: list[EditRequest]) -> EditHandle:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hparams})"

