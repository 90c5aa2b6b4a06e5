"""`none`: the unedited baseline. Applying it changes nothing, so every cell can run the same loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from editsweep.editing.protocol import EditHandle, EditRequest, Editor, HParams

__all__ = ["NoEditor"]


@dataclass(frozen=True)
class NoneHParams(HParams):
    """`layers` is accepted (every method takes it) and may be empty; nothing is edited."""

    def validate(self, method: str) -> None:
        return None


class NoEditor(Editor):
    name = "none"
    batches = True
    hparams_class = NoneHParams

    def _check_layers(self, model: Any) -> None:
        return None

    def _apply(self, model: Any, tokenizer: Any, requests: list[EditRequest]) -> EditHandle:
        return EditHandle(self.name, len(requests))
