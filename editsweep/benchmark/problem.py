"""One source problem in HumanEval form, before any API is chosen for it.

Every source (HumanEval, MBPP, the demo set) is converted to this shape so that mining,
selection, rewriting and validation never look at where a problem came from.
"""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Problem:
    """A problem whose `prompt + reference` is the full original solution.

    `tests` are already in the sandbox's unit form (one statement per unit, setup first).
    """

    id: str
    source: str
    prompt: str
    entry_point: str
    reference: str
    tests: tuple[str, ...] = field(default_factory=tuple)
    task_text: str | None = None

    @property
    def solution(self) -> str:
        return self.prompt + self.reference

    def to_dict(self) -> dict:
        data = asdict(self)
        data["tests"] = list(self.tests)
        return data

    def check_well_formed(self) -> None:
        """Raise ValueError naming the problem when the solution does not parse or lacks its entry point."""
        try:
            tree = ast.parse(self.solution)
        except SyntaxError as exc:
            raise ValueError(f"problem {self.id}: prompt + reference does not parse: {exc}") from exc
        names = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
        if self.entry_point not in names:
            raise ValueError(f"problem {self.id}: entry point {self.entry_point!r} is not defined at top level")
        if not self.tests:
            raise ValueError(f"problem {self.id}: no tests")


def docstring_of(source: str, function_name: str) -> str | None:
    """The docstring of a top-level function in `source`, or None (also when it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function_name:
            return ast.get_docstring(node)
    return None
