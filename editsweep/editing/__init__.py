"""Model editing: one protocol (`EditRequest`, `get_editor`, `EditHandle`) for FT, GRACE, ROME, MEMIT, PMET and `none`.

    editor = get_editor("rome", **resolve_hparams("rome", "codellama_7b"))
    handle = editor.apply(model, tokenizer, [EditRequest(prompt, target_new, subject)])
    ...
    handle.restore()   # bit-identical weights (GRACE: adapter removed)

Importing this package loads no torch; method modules and statistics load it when used.
"""

from editsweep.editing.protocol import KEY_POSITIONS, EditHandle, EditRequest, Editor
from editsweep.editing.registry import METHODS, editor_class, get_editor, load_method_conf, resolve_hparams

__all__ = [
    "KEY_POSITIONS",
    "METHODS",
    "EditHandle",
    "EditRequest",
    "Editor",
    "editor_class",
    "get_editor",
    "get_second_moments",
    "load_method_conf",
    "resolve_hparams",
]


def get_second_moments(*args, **kwargs):
    """See `editsweep.editing.stats.get_second_moments` (imported lazily: it needs torch)."""
    from editsweep.editing.stats import get_second_moments as compute

    return compute(*args, **kwargs)
