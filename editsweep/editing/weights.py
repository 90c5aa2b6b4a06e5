"""Exact undo for weight editors: the original tensors of every parameter an edit will write.

Restoring copies the stored originals back, so the model is bit-identical to before the edit
(notes §6, instant regime). Sequential edits undone in reverse order are bit-identical too.
"""

from __future__ import annotations

from typing import Any, Iterable

from editsweep.editing.protocol import EditHandle

__all__ = ["WeightHandle", "parameter"]


def parameter(model: Any, module_name: str, attr: str = "weight") -> Any:
    """The parameter `attr` of the module at `module_name` (a clear error when it is missing)."""
    from editsweep.models.arch import get_module

    module = get_module(model, module_name)
    value = getattr(module, attr, None)
    if value is None:
        raise LookupError(f"module {module_name} has no parameter {attr!r}")
    return value


class WeightHandle(EditHandle):
    """Holds clones of the named parameters taken before they were written."""

    def __init__(self, method: str, model: Any, names: Iterable[str], n_requests: int) -> None:
        super().__init__(method, n_requests)
        params = dict(model.named_parameters())
        self._originals = {}
        for name in names:
            if name not in params:
                raise LookupError(f"{method}: model has no parameter {name!r}")
            self._originals[name] = (params[name], params[name].detach().clone())

    @property
    def names(self) -> list[str]:
        return list(self._originals)

    def _restore(self) -> None:
        import torch

        with torch.no_grad():
            for param, original in self._originals.values():
                param.copy_(original)
        self._originals = {}
