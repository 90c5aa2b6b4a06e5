"""Mining: which standard-library APIs each reference solution calls, and where.

Candidates are the three kinds of docs/architecture.md: callables of the standard-library
modules the solution imports (`re.search`, `collections.Counter`, `os.path.join`), builtin
functions (`sorted`, `max`; builtin *types* such as `list` are not APIs) and methods of builtin
types (`str.join`, `list.append`). Uses are found by `editsweep.apis.find_api_uses`, which
follows aliases (`import re as r`, `from re import search`).

A use counts for a problem only when it lies in the reference (the part a model completes);
an API that also appears in the prompt cannot be a target of that problem, because the prompt
is shared by the original and the rewritten solution.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import sys
import types
from dataclasses import dataclass
from functools import lru_cache

from editsweep.apis import BUILTIN_TYPES, find_api_uses, parse_api
from editsweep.benchmark.problem import Problem


@dataclass(frozen=True)
class ApiUse:
    """Where one API occurs in one problem's solution (character offsets into prompt + reference)."""

    api: str
    offsets: tuple[int, ...]
    in_prompt: bool  # some use lies in the prompt

    @property
    def in_reference(self) -> bool:
        return any(True for _ in self.offsets) and not self.in_prompt


def _is_exception_type(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseException)


@lru_cache(maxsize=1)
def builtin_candidates() -> tuple[str, ...]:
    """Builtin functions that are API candidates (callables, not types with methods, not exceptions)."""
    names = []
    for name in sorted(dir(builtins)):
        obj = getattr(builtins, name)
        if name.startswith("_") or not callable(obj) or name in BUILTIN_TYPES or _is_exception_type(obj):
            continue
        names.append(name)
    return tuple(names)


@lru_cache(maxsize=1)
def method_candidates() -> tuple[str, ...]:
    """Public methods of the builtin types that own method APIs: `str.join`, `list.append`, …"""
    names = []
    for type_name in sorted(BUILTIN_TYPES):
        owner = getattr(builtins, type_name)
        names.extend(f"{type_name}.{attr}" for attr in sorted(dir(owner)) if not attr.startswith("_"))
    return tuple(names)


def _is_stdlib(module_path: str) -> bool:
    return module_path.split(".")[0] in sys.stdlib_module_names


@lru_cache(maxsize=None)
def module_callables(module_path: str) -> tuple[str, ...]:
    """Public callables of a standard-library module, and of its public submodule attributes (os → os.path.*)."""
    if not _is_stdlib(module_path):
        return ()
    try:
        module = importlib.import_module(module_path)
    except ImportError:
        return ()
    found = []
    for name in sorted(dir(module)):
        if name.startswith("_"):
            continue
        obj = getattr(module, name, None)
        if isinstance(obj, types.ModuleType):
            if obj.__name__.split(".")[0] in sys.stdlib_module_names and module_path.count(".") == 0:
                found.extend(f"{module_path}.{name}.{sub}" for sub in _plain_callables(obj))
        elif callable(obj) and not _is_exception_type(obj):
            found.append(f"{module_path}.{name}")
    return tuple(found)


def _plain_callables(module: types.ModuleType) -> list[str]:
    return [
        name
        for name in sorted(dir(module))
        if not name.startswith("_")
        and callable(getattr(module, name, None))
        and not isinstance(getattr(module, name), types.ModuleType)
        and not _is_exception_type(getattr(module, name))
    ]


def imported_modules(tree: ast.AST) -> set[str]:
    """Standard-library module paths a program imports (`from os import path` → `os`, `os.path`)."""
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                modules.add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            for alias in node.names:
                modules.add(f"{node.module}.{alias.name}")  # submodule imports; non-modules import nothing
    return {m for m in modules if _is_stdlib(m)}


def candidate_apis(tree: ast.AST) -> list[str]:
    """Every canonical API name a program could be using, for `find_api_uses` to check."""
    names = list(builtin_candidates()) + list(method_candidates())
    for module_path in sorted(imported_modules(tree)):
        names.extend(module_callables(module_path))
    valid = []
    for name in dict.fromkeys(names):
        try:
            parse_api(name)
        except ValueError:
            continue
        valid.append(name)
    return valid


def _offset(line_starts: list[int], lineno: int, col: int) -> int:
    return line_starts[lineno - 1] + col


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for index, char in enumerate(text):
        if char == "\n":
            starts.append(index + 1)
    return starts


def problem_api_uses(problem: Problem, apis: list[str] | None = None) -> dict[str, ApiUse]:
    """The APIs (all candidates, or `apis`) used anywhere in the problem's solution.

    Columns from `ast` are UTF-8 byte offsets; they are converted to character offsets so they
    can be compared with `len(prompt)`.
    """
    solution = problem.solution
    tree = ast.parse(solution)
    wanted = apis if apis is not None else candidate_apis(tree)
    found = find_api_uses(tree, wanted)
    lines = solution.split("\n")
    starts = _line_starts(solution)
    uses = {}
    for api, positions in sorted(found.items()):
        offsets = []
        for lineno, col in positions:
            char_col = len(lines[lineno - 1].encode("utf-8")[:col].decode("utf-8", errors="replace"))
            offsets.append(_offset(starts, lineno, char_col))
        uses[api] = ApiUse(api, tuple(offsets), in_prompt=any(o < len(problem.prompt) for o in offsets))
    return uses
