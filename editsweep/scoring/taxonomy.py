"""Error taxonomy of a failing sample, and the compile / post-compile split of a drop.

Classes, decided in this order (the first that applies):

======================  =================================================================
``syntax_error``        status ``syntax_error``
``deprecated_api``      status ``deprecated_api`` (static check), or an AttributeError /
                        ImportError naming a removed module attribute or method, a NameError
                        naming a removed builtin, or one of those raised at a line that uses
                        a removed API
``timeout``             status ``timeout``
``memory``              status ``memory`` or a MemoryError
``crash``               status ``crashed`` (os._exit, signal, killed its worker twice)
``name_error``          NameError / UnboundLocalError, or status ``missing_entry_point`` (the
                        entry point is an undefined name for the tests)
``wrong_usage``         TypeError raised at a line of the program that uses a new API
``assertion_failure``   AssertionError
``runtime_error``       any other exception (or none recorded), including ``sys.exit``
======================  =================================================================

Passed and harness-error samples have no class (None).
"""

from __future__ import annotations

import ast
from typing import Any, Iterable, Mapping

from editsweep.apis import find_api_uses, parse_api, uses_name
from editsweep.scoring.status import Status

ERROR_CLASSES = (
    "syntax_error",
    "deprecated_api",
    "name_error",
    "wrong_usage",
    "assertion_failure",
    "runtime_error",
    "timeout",
    "memory",
    "crash",
)

_BY_STATUS = {
    Status.SYNTAX_ERROR: "syntax_error",
    Status.DEPRECATED_API: "deprecated_api",
    Status.TIMEOUT: "timeout",
    Status.MEMORY: "memory",
    Status.CRASHED: "crash",
}
_REMOVAL_ERRORS = frozenset({"AttributeError", "ImportError", "NameError"})


def error_class(
    result: Mapping[str, Any],
    program: str,
    *,
    removed_apis: Iterable[str] = (),
    new_apis: Iterable[str] = (),
) -> str | None:
    """The taxonomy class of one scored sample (see the module docstring); None if it passed.

    ``result`` needs ``status`` and reads ``error_type``, ``error_message`` and ``error_line``;
    ``program`` is the text that ran (``prompt + completion``), used to tell which line calls a
    removed or a new API. ``removed_apis`` are canonical names, ``new_apis`` plain names.
    """
    status = Status(result.get("status"))
    if status in (Status.PASSED, Status.HARNESS_ERROR):
        return None
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status is Status.MISSING_ENTRY_POINT:
        return "name_error"
    error_type = result.get("error_type") or ""
    message = result.get("error_message") or ""
    line = result.get("error_line")
    lines = _LineUses(program)
    if error_type in _REMOVAL_ERRORS and _blames_removed_api(error_type, message, line, removed_apis, lines):
        return "deprecated_api"
    if error_type == "MemoryError":
        return "memory"
    if error_type in ("NameError", "UnboundLocalError"):
        return "name_error"
    if error_type == "TypeError" and line is not None and any(line in lines.name_lines(n) for n in new_apis):
        return "wrong_usage"
    if error_type == "AssertionError":
        return "assertion_failure"
    return "runtime_error"


def _blames_removed_api(error_type, message, line, removed_apis, lines) -> bool:
    for api in removed_apis:
        ref = parse_api(api)
        if line is not None and line in lines.api_lines(ref.qualname):
            return True
        quoted = (f"'{ref.attr}'", f'"{ref.attr}"')
        if not any(q in message for q in quoted):
            continue
        if ref.kind == "builtin" and error_type == "NameError":
            return True
        if ref.kind != "builtin" and error_type in ("AttributeError", "ImportError"):
            return True
    return False


class _LineUses:
    """Line numbers of API and name uses in a program, parsed once (empty if it does not parse)."""

    def __init__(self, program: str):
        try:
            self.tree: ast.Module | None = ast.parse(program)
        except (SyntaxError, ValueError):
            self.tree = None

    def api_lines(self, api: str) -> set[int]:
        if self.tree is None:
            return set()
        return {ln for ln, _ in find_api_uses(self.tree, [api]).get(api, [])}

    def name_lines(self, name: str) -> set[int]:
        if self.tree is None:
            return set()
        return {ln for ln, _ in uses_name(self.tree, name)}


def drop_split(baseline: Mapping[str, Any], edited: Mapping[str, Any], k: int = 1) -> dict[str, float]:
    """Split the full-pass drop from the unedited baseline into compile and post-compile parts.

    With ``failure = (1 - compile) + (compile - full)``, the drop ``base_full - edited_full`` is
    ``compile_drop = base_compile - edited_compile`` (samples that no longer compile) plus
    ``post_compile_drop = (edited_compile - edited_full) - (base_compile - base_full)`` (more
    samples that compile but fail the tests). Both inputs are :func:`summarize` dicts (keys
    ``compile@k`` and ``full@k``). Returns ``{"total_drop", "compile_drop", "post_compile_drop"}``.
    """
    values = {}
    for side, metrics in (("baseline", baseline), ("edited", edited)):
        for level in ("compile", "full"):
            key = f"{level}@{k}"
            value = metrics.get(key)
            if value is None:
                raise ValueError(f"drop_split: {side} metrics have no {key!r} value")
            values[side, level] = float(value)
    compile_drop = values["baseline", "compile"] - values["edited", "compile"]
    post_compile_drop = (values["edited", "compile"] - values["edited", "full"]) - (
        values["baseline", "compile"] - values["baseline", "full"]
    )
    return {
        "total_drop": values["baseline", "full"] - values["edited", "full"],
        "compile_drop": compile_drop,
        "post_compile_drop": post_compile_drop,
    }
