"""The rewriter: a solution that uses an old API → the same solution using its replacement.

Uses are located by `editsweep.apis.find_api_uses` (so aliases such as `import re as r` or
`from re import search` are followed), then each use is rewritten by the catalog entry's
rule. The transform is text preserving: only the calls that change are re-spelled, and their
arguments keep their original source text (nested uses inside arguments are rewritten first),
so the result reads like the original rather than like `ast.unparse` output.

- a call `api(...)` / `x.method(...)` / `str.method(x, ...)` becomes `new_api(...)` per the rule;
- a bare reference (`key=len`, `map(str.lower, xs)`) becomes the new name, or a lambda when the
  new usage differs in positional calls (`key=lambda obj: my_len(obj=obj)`);
- `from re import search` inside the rewritten part loses that name (the statement goes when empty);
- anything that cannot be rewritten statically (`**kwargs`, a bound method passed around,
  `getattr(re, "search")`) raises `RewriteError` with the reason.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from typing import Callable

from editsweep.apis import find_api_uses, parse_api
from editsweep.benchmark.catalog import CatalogEntry
from editsweep.benchmark.rules import Arg, CallArgs, RewriteError


@dataclass(frozen=True)
class CallSite:
    """One rewritten use: the original text, its replacement and where the replacement starts."""

    old_text: str
    new_text: str
    new_start: int  # character offset in the rewritten text (relative to `start` for a reference)
    is_call: bool  # a call (as opposed to a bare reference)

_NEEDS_PARENS_AS_ARGUMENT = (ast.NamedExpr, ast.Yield, ast.YieldFrom)
# names whose use means the API is reached dynamically: getattr(re, "search"), __builtins__["len"]
_DYNAMIC_ACCESS = frozenset({"getattr", "__builtins__", "vars"})
# where a lambda may stand without parentheses (a call argument, a keyword value, a whole value)
_LAMBDA_SAFE_PARENTS = (ast.Call, ast.keyword, ast.Assign, ast.Return, ast.List, ast.Tuple)


class _Source:
    """Offsets of AST positions (1-based lines, UTF-8 byte columns) as character offsets."""

    def __init__(self, text: str):
        self.text = text
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", errors="replace"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)


class _Renderer:
    """Source text of nodes with the edits inside them applied (inner edits first).

    `spans` may widen an edit beyond its node (a removed import takes its whole line).
    """

    def __init__(
        self,
        source: _Source,
        edits: dict[ast.AST, Callable[[_Renderer], str]],
        spans: dict[ast.AST, tuple[int, int]] | None = None,
    ):
        self.source = source
        self.edits = edits
        self.spans = {node: source.span(node) for node in edits}
        self.spans.update(spans or {})

    def text(self, node: ast.AST) -> str:
        if node in self.edits:
            return self.edits[node](self)
        start, end = self.source.span(node)
        return self.span_text(start, end)

    def argument(self, node: ast.AST) -> str:
        text = self.text(node)
        if isinstance(node, ast.GeneratorExp) and not text.startswith("("):
            return f"({text})"
        if isinstance(node, _NEEDS_PARENS_AS_ARGUMENT):
            return f"({text})"
        return text

    def span_text(self, start: int, end: int, placed: list | None = None) -> str:
        """Text of [start, end) with the outermost edits inside it applied.

        `placed`, when given, receives (node, output offset, replacement) for each of them.
        """
        inner = sorted(
            ((span, node) for node, span in self.spans.items() if start <= span[0] and span[1] <= end),
            key=lambda item: (item[0][0], -item[0][1]),
        )
        pieces: list[str] = []
        length = 0
        cursor = start
        for (node_start, node_end), node in inner:
            if node_start < cursor:  # inside an edit already applied
                continue
            before = self.source.text[cursor:node_start]
            replacement = self.edits[node](self)
            pieces.extend((before, replacement))
            if placed is not None:
                placed.append((node, length + len(before), replacement))
            length += len(before) + len(replacement)
            cursor = node_end
        pieces.append(self.source.text[cursor:end])
        return "".join(pieces)


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _use_nodes(tree: ast.AST, positions: set[tuple[int, int]], attr: str) -> list[ast.AST]:
    """The nodes that are the recorded uses: the attribute/name/alias starting at each position."""
    by_position: dict[tuple[int, int], list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Attribute, ast.Name, ast.alias, ast.Call)) and hasattr(node, "lineno"):
            key = (node.lineno, node.col_offset)
            if key in positions:
                by_position.setdefault(key, []).append(node)
    found: list[ast.AST] = []
    for position in sorted(positions):
        nodes = by_position.get(position, [])
        aliases = [n for n in nodes if isinstance(n, ast.alias)]
        attributes = [n for n in nodes if isinstance(n, ast.Attribute) and n.attr == attr]
        names = [n for n in nodes if isinstance(n, ast.Name) and n.id not in _DYNAMIC_ACCESS]
        if aliases:
            found.extend(aliases)
        elif attributes:
            found.extend(attributes)
        elif names:
            found.extend(names)
        else:
            raise RewriteError(f"the use at line {position[0]} is dynamic (getattr or a mapping lookup)")
    return found


def _call_args(renderer: _Renderer, call: ast.Call, receiver: ast.AST | None) -> CallArgs:
    positional: list[Arg] = []
    if receiver is not None:
        positional.append(Arg(renderer.argument(receiver)))
    for arg in call.args:
        if isinstance(arg, ast.Starred):
            positional.append(Arg(renderer.argument(arg.value), starred=True))
        else:
            positional.append(Arg(renderer.argument(arg)))
    keywords = tuple((k.arg, renderer.argument(k.value)) for k in call.keywords)
    return CallArgs(tuple(positional), keywords)


def bound_names(tree: ast.AST) -> set[str]:
    """Every name the program binds anywhere (assignment, parameter, def, class, import, …)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def _is_unbound_method(node: ast.AST, owner: str, shadowed: set[str]) -> bool:
    """`str.join` (the builtin type spelled out) as opposed to `sep.join` (a bound method).

    A program that binds the type's name itself (`def f(str): str.split()`, common in MBPP)
    calls a method of that value, not of the type.
    """
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == owner
        and owner not in shadowed
    )


def _import_edit(
    source: _Source, statement: ast.ImportFrom, drop: set[str], parents
) -> tuple[Callable[[_Renderer], str], tuple[int, int] | None]:
    """Drop names from a `from … import …`; an emptied statement is deleted with its line.

    Returns the edit and, when the whole line goes, the widened span it replaces.
    """
    kept = [a for a in statement.names if a.name not in drop]
    if kept:
        text = ast.unparse(ast.ImportFrom(module=statement.module, names=kept, level=statement.level))
        return (lambda _: text), None
    start, end = source.span(statement)
    line_start = source.text.rfind("\n", 0, start) + 1
    line_end = source.text.find("\n", end)
    line_end = len(source.text) if line_end == -1 else line_end + 1
    alone = not source.text[line_start:start].strip() and not source.text[end:line_end].strip()
    parent = parents.get(statement)
    siblings = getattr(parent, "body", [])
    if alone and len(siblings) > 1:
        return (lambda _: ""), (line_start, line_end)
    return (lambda _: "pass"), None


def rewrite_source(source: str, entry: CatalogEntry, start: int = 0) -> str:
    """`source` with every use of `entry.api` replaced by its new usage.

    Uses before character offset `start` (a prompt that must stay unchanged) are an error.
    """
    return rewrite_with_sites(source, entry, start)[0]


def rewrite_with_sites(source: str, entry: CatalogEntry, start: int = 0) -> tuple[str, list[CallSite]]:
    """Like `rewrite_source`, also returning the rewritten uses in text order (outermost only)."""
    ref = parse_api(entry.api)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise RewriteError(f"the solution does not parse: {exc.msg}") from exc
    positions = set(find_api_uses(tree, [entry.api]).get(entry.api, []))
    if not positions:
        raise RewriteError(f"the solution does not use {entry.api}")
    text = _Source(source)
    parents = _parents(tree)
    shadowed = bound_names(tree)
    rule = entry.rule
    edits: dict[ast.AST, Callable[[_Renderer], str]] = {}
    imports: dict[ast.ImportFrom, set[str]] = {}

    for use in _use_nodes(tree, positions, ref.attr):
        if isinstance(use, ast.alias):
            statement = next(p for p in ast.walk(tree) if isinstance(p, ast.ImportFrom) and use in p.names)
            imports.setdefault(statement, set()).add(use.name)
            continue
        parent = parents.get(use)
        if isinstance(parent, ast.Call) and parent.func is use:
            if ref.kind == "method" and not _is_unbound_method(use, ref.owner, shadowed):
                receiver = use.value
            else:
                receiver = None
            for keyword in parent.keywords:
                if keyword.arg is None:
                    raise RewriteError(f"**{ast.unparse(keyword.value)} in a call of {entry.api} at line {parent.lineno}")

            def render_call(renderer: _Renderer, call=parent, receiver=receiver) -> str:
                return rule.rewrite_call(entry.new_api, _call_args(renderer, call, receiver))

            edits[parent] = render_call
        else:
            if ref.kind == "method" and not _is_unbound_method(use, ref.owner, shadowed):
                raise RewriteError(f"the bound method {ast.unparse(use)} is used without a call at line {use.lineno}")
            replacement = rule.reference_replacement(entry.new_api)
            if replacement.startswith("lambda") and not isinstance(parent, _LAMBDA_SAFE_PARENTS):
                replacement = f"({replacement})"
            edits[use] = lambda renderer, replacement=replacement: replacement

    wide_spans: dict[ast.AST, tuple[int, int]] = {}
    for statement, names in imports.items():
        edits[statement], wide = _import_edit(text, statement, names, parents)
        if wide is not None:
            wide_spans[statement] = wide

    for node in edits:
        node_start = wide_spans.get(node, text.span(node))[0]
        if node_start < start:
            raise RewriteError(f"{entry.api} is used in the prompt (line {node.lineno}), which must stay unchanged")

    renderer = _Renderer(text, edits, wide_spans)
    placed: list = []
    result = renderer.span_text(0, len(source), placed)
    sites = [
        CallSite(
            old_text=source[slice(*text.span(node))],
            new_text=replacement,
            new_start=offset,
            is_call=isinstance(node, ast.Call),
        )
        for node, offset, replacement in placed
        if not isinstance(node, ast.ImportFrom)
    ]
    try:
        new_tree = ast.parse(result)
    except SyntaxError as exc:
        raise RewriteError(f"the rewritten solution does not parse: {exc.msg} (line {exc.lineno})") from exc
    left = find_api_uses(new_tree, [entry.api]).get(entry.api)
    if left:
        raise RewriteError(f"{entry.api} is still used after rewriting (line {left[0][0]})")
    return result, sites


def rewrite_reference(prompt: str, reference: str, entry: CatalogEntry) -> tuple[str, list[CallSite]]:
    """The new-API reference (`prompt + result` is the rewritten solution, the prompt unchanged)
    and its rewritten uses, with offsets relative to the reference."""
    rewritten, sites = rewrite_with_sites(prompt + reference, entry, start=len(prompt))
    if not rewritten.startswith(prompt):
        raise RewriteError("rewriting changed the prompt")
    shifted = [replace(site, new_start=site.new_start - len(prompt)) for site in sites]
    return rewritten[len(prompt):], shifted
