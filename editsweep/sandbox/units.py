"""Test statements as units: split HumanEval `check()` / MBPP asserts, and decide which ones count.

A unit is one test statement run in the sample's namespace after the program. Splitting a
test into units lets a sample earn partial credit per assertion, and lets the harness know
which assertions finished before a sample was killed. Only units that assert something about
the candidate are *scored*: HumanEval has lines like `assert True, "..."` that any sample
passes (48 of 1,181 assert statements), and counting those inflates partial credit.
"""

from __future__ import annotations

import ast
import textwrap

__all__ = ["split_test_units", "is_scored_unit", "CANDIDATE_NAME"]

CANDIDATE_NAME = "candidate"


def _statement_source(source: str, node: ast.stmt) -> str:
    """The exact source of one statement, dedented (comments inside it are kept)."""
    segment = ast.get_source_segment(source, node, padded=True)
    if segment is None:
        return ast.unparse(node)
    text = textwrap.dedent(segment).strip("\n")
    try:
        ast.parse(text)
    except SyntaxError:  # e.g. odd continuation indentation: fall back to the canonical form
        return ast.unparse(node)
    return text


def _is_check_call(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "check"
    )


def split_test_units(test_source: str, entry_point: str | None) -> list[str]:
    """Split a test into units, in the order they must run in one namespace.

    HumanEval style (a top-level `def check(param)`): the other module-level statements
    (setup such as `METADATA = …` or imports) in order, then `param = <entry_point>`, then
    each top-level statement of `check`'s body (a `for` loop holding asserts stays one unit,
    so its local variables keep their meaning). A trailing `check(...)` call is dropped.
    MBPP style (no `check`): every top-level statement is one unit (setup code and asserts).

    Raises ValueError naming the problem if the test does not parse, or if a `check` test
    has no entry point to bind or takes other than one parameter.
    """
    if not isinstance(test_source, str):
        raise ValueError(f"test source must be a string, got {type(test_source).__name__}")
    try:
        tree = ast.parse(test_source)
    except SyntaxError as exc:
        raise ValueError(f"test source does not parse: {exc.msg} (line {exc.lineno})") from exc
    checks = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "check"]
    if not checks:
        return [_statement_source(test_source, node) for node in tree.body]
    check = checks[-1]
    if isinstance(check, ast.AsyncFunctionDef):
        raise ValueError("test defines `async def check`, which cannot be split into units")
    params = check.args.posonlyargs + check.args.args
    if len(params) != 1 or check.args.vararg or check.args.kwonlyargs:
        raise ValueError(f"`def check` must take exactly one parameter (the candidate), line {check.lineno}")
    if not entry_point:
        raise ValueError("a `check(candidate)` test needs an entry point to bind the candidate to")
    if not entry_point.isidentifier():
        raise ValueError(f"entry point {entry_point!r} is not an identifier")
    units = [
        _statement_source(test_source, node)
        for node in tree.body
        if node is not check and node not in checks and not _is_check_call(node)
    ]
    units.append(f"{params[0].arg} = {entry_point}")
    units.extend(_statement_source(test_source, node) for node in check.body)
    return units


def _mentions(tree: ast.AST, names: set[str]) -> bool:
    return any(isinstance(node, ast.Name) and node.id in names for node in ast.walk(tree))


def is_scored_unit(unit_source: str, entry_point: str | None) -> bool:
    """True if the unit contains an `assert` and mentions the entry point or `candidate`.

    With no entry point (a free-form task) there is no candidate to look for, so every unit
    containing an `assert` counts.
    """
    try:
        tree = ast.parse(unit_source)
    except SyntaxError:
        return False
    if not any(isinstance(node, ast.Assert) for node in ast.walk(tree)):
        return False
    names = {CANDIDATE_NAME}
    if entry_point:
        names.add(entry_point)
        return _mentions(tree, names)
    return True
