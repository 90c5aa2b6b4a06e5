"""What an API name means and where a program uses it (AST based, following aliases).

Three kinds of canonical API name (docs/architecture.md, "API names"):

- ``module``: a module callable, ``re.search``, ``os.path.join``, ``collections.Counter``;
- ``builtin``: a builtin function, ``sorted`` (``builtins.sorted`` is normalised to ``sorted``);
- ``method``: a method of a builtin type, ``str.join``, ``list.append``, ``dict.get``.

The sandbox deletes module attributes and builtins at run time, but it cannot delete a method
of a builtin type, so ``str.join`` is enforced *statically* with :func:`find_api_uses`. The
same function classifies samples (legacy use of a removed API), so it follows every alias
that is visible in the source: ``import re as r``, ``from re import search as s``,
``from re import *``, ``from os import path``, ``getattr(re, "search")``, ``r = re``,
``builtins.sorted``, ``__builtins__["sorted"]`` and bare references (``f = re.search``).

Static limits, chosen to err towards *catching* a use (a false "uses the removed API" costs a
sample; a missed one lets a removed method run):

- Name binding is flow-insensitive, like Python's own rule for function locals: a name bound
  anywhere in a scope (parameter, assignment, ``def``, ``class``, import, loop or ``with``
  target, comprehension variable, ``except … as``) shadows the builtin in the whole scope.
- A method ``T.m`` is counted on every ``.m`` access whose receiver has static type ``T`` *or
  an unknown type*; only receivers that are names of modules, imported objects or builtins
  (``path.join`` after ``from os import path``, ``os.path.join``) or whose type is known to be
  something else (``deque()``, a local class instance, ``zip(...)``) are cleared. An attribute
  chain off a module (``os.sep``, ``threading.Thread``) is a value of unknown type unless it is a
  listed stdlib submodule, so ``os.sep.join(parts)`` counts as ``str.join``. The type
  inference is deliberately light: literals, f-strings, comprehensions, builtin constructors,
  a few known stdlib return types, str/bytes/dict/list methods with known results, annotated
  parameters, and names whose every assignment in their scope infers to the same type.
- A module API's root name that is not bound at all (``re.search`` without ``import re``) is
  still read as that module: the program clearly reaches for the removed API (and would fail).
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import sys
import tokenize
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

__all__ = ["ApiRef", "BUILTIN_TYPES", "parse_api", "find_api_uses", "uses_name"]

#: builtin type names that may own a ``method`` API
BUILTIN_TYPES = frozenset(
    {"str", "bytes", "list", "dict", "set", "frozenset", "tuple", "int", "float", "complex", "bool", "range"}
)

_BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("_"))


@dataclass(frozen=True)
class ApiRef:
    """A parsed canonical API name."""

    qualname: str  # canonical: "re.search", "sorted", "str.join"
    kind: str  # "module" | "builtin" | "method"
    owner: str | None  # module path ("os.path") or type name ("str"); None for builtins
    attr: str  # the attribute / function name ("join", "sorted")

    @property
    def new_name(self) -> str:
        """The name of the replacement API installed as a builtin: ``my_re_search``."""
        return "my_" + self.qualname.replace(".", "_")

    @property
    def target(self) -> str:
        """The fully qualified name that the resolver produces for a use of this API."""
        if self.kind == "module":
            return self.qualname
        return "builtins." + self.qualname


def _is_identifier(part: str) -> bool:
    return part.isidentifier() and not keyword.iskeyword(part)


def parse_api(name: str) -> ApiRef:
    """Parse a canonical API name; ``ValueError`` naming the input if it is not one."""
    if not isinstance(name, str):
        raise ValueError(f"API name must be a string, got {name!r}")
    text = name.strip()
    if not text:
        raise ValueError(f"empty API name {name!r}")
    parts = text.split(".")
    if not all(_is_identifier(p) for p in parts):
        raise ValueError(f"bad API name {name!r}: expected dotted identifiers like 're.search', 'sorted', 'str.join'")
    if parts[0] == "builtins":
        parts = parts[1:]
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[0] not in BUILTIN_TYPES):
            raise ValueError(f"bad API name {name!r}: 'builtins.' must be followed by a builtin function or type.method")
    if len(parts) == 1:
        (attr,) = parts
        if attr not in _BUILTIN_NAMES or not callable(getattr(builtins, attr)):
            raise ValueError(f"unknown builtin {name!r}: a one-part API name must be a builtin function")
        if attr in BUILTIN_TYPES:
            raise ValueError(f"bad API name {name!r}: a builtin type is not an API; name a method like 'str.join'")
        return ApiRef(qualname=attr, kind="builtin", owner=None, attr=attr)
    owner, attr = ".".join(parts[:-1]), parts[-1]
    if owner in BUILTIN_TYPES:
        if not hasattr(getattr(builtins, owner), attr):
            raise ValueError(f"unknown method {name!r}: builtin type {owner!r} has no attribute {attr!r}")
        return ApiRef(qualname=f"{owner}.{attr}", kind="method", owner=owner, attr=attr)
    if parts[0] in _BUILTIN_NAMES and len(parts) == 2:
        raise ValueError(f"bad API name {name!r}: {parts[0]!r} is a builtin but not a builtin type with methods")
    return ApiRef(qualname=f"{owner}.{attr}", kind="module", owner=owner, attr=attr)


# --------------------------------------------------------------------------------------------
# scopes and bindings
# --------------------------------------------------------------------------------------------

_FUNC_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_COMP_NODES = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_SCOPE_NODES = _FUNC_NODES + _COMP_NODES + (ast.ClassDef, ast.Module)


@dataclass(frozen=True)
class _Binding:
    """One binding site of a name: how it was bound and (for type/alias inference) with what."""

    how: str  # import | assign | augassign | annotated | param | def | class | other
    qualname: str | None = None  # for imports
    value: ast.expr | None = None  # assigned value / augmented value
    annotation: ast.expr | None = None  # parameter or AnnAssign annotation
    op: ast.operator | None = None  # for augmented assignment


class _Scope:
    """A Python scope with the names bound in it (collected before any lookup)."""

    def __init__(self, node: ast.AST, parent: _Scope | None):
        self.node = node
        self.parent = parent
        self.is_class = isinstance(node, ast.ClassDef)
        self.is_module = isinstance(node, ast.Module)
        self.bindings: dict[str, list[_Binding]] = {}
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()
        self.star_imports: list[str] = []

    def bind(self, name: str, binding: _Binding) -> None:
        self.bindings.setdefault(name, []).append(binding)

    @property
    def module(self) -> _Scope:
        scope = self
        while scope.parent is not None:
            scope = scope.parent
        return scope


def _target_names(target: ast.AST) -> Iterator[str]:
    """Names an assignment target binds (``x[0] = …`` and ``x.a = …`` bind nothing)."""
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _target_names(element)


class _BindingCollector(ast.NodeVisitor):
    """Record every name bound directly in one scope; nested scopes bind only their own name."""

    def __init__(self, scope: _Scope):
        self.scope = scope

    def collect(self) -> None:
        node = self.scope.node
        if isinstance(node, _FUNC_NODES):
            self._bind_params(node.args)
            body = node.body if isinstance(node.body, list) else [node.body]
            for stmt in body:
                self.visit(stmt)
        elif isinstance(node, _COMP_NODES):
            for gen in node.generators:
                for name in _target_names(gen.target):
                    self.scope.bind(name, _Binding("other"))
        else:  # Module, ClassDef
            for stmt in node.body:
                self.visit(stmt)

    def _bind_params(self, args: ast.arguments) -> None:
        every = list(args.posonlyargs) + list(args.args) + list(args.kwonlyargs)
        every += [a for a in (args.vararg, args.kwarg) if a is not None]
        for arg in every:
            annotation = arg.annotation
            if arg is args.vararg or arg is args.kwarg:
                annotation = None  # *args: str is a tuple, **kw: str a dict; not worth typing
            self.scope.bind(arg.arg, _Binding("param", annotation=annotation))

    # nested scopes: bind their name, do not descend
    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.scope.bind(node.name, _Binding("def"))

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.bind(node.name, _Binding("class"))

    def visit_Lambda(self, node: ast.Lambda) -> None:
        pass

    def _visit_comp(self, node: ast.AST) -> None:
        pass

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _visit_comp

    def visit_Global(self, node: ast.Global) -> None:
        self.scope.globals.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.scope.nonlocals.update(node.names)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.scope.bind(alias.asname, _Binding("import", qualname=alias.name))
            else:
                root = alias.name.split(".")[0]
                self.scope.bind(root, _Binding("import", qualname=root))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module if node.level == 0 else None
        for alias in node.names:
            if alias.name == "*":
                if module:
                    self.scope.star_imports.append(module)
                continue
            qualname = f"{module}.{alias.name}" if module else None
            how = "import" if qualname else "other"
            self.scope.bind(alias.asname or alias.name, _Binding(how, qualname=qualname))

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                self.scope.bind(target.id, _Binding("assign", value=node.value))
            else:
                for name in _target_names(target):
                    self.scope.bind(name, _Binding("other"))
        self.visit(node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.scope.bind(node.target.id, _Binding("annotated", value=node.value, annotation=node.annotation))
        if node.value is not None:
            self.visit(node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self.scope.bind(node.target.id, _Binding("augassign", value=node.value, op=node.op))
        self.visit(node.value)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.scope.bind(node.target.id, _Binding("assign", value=node.value))
        self.visit(node.value)

    def _bind_target(self, target: ast.AST) -> None:
        for name in _target_names(target):
            self.scope.bind(name, _Binding("other"))

    def visit_For(self, node: ast.For) -> None:
        self._bind_target(node.target)
        self.generic_visit(node)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            if item.optional_vars is not None:
                self._bind_target(item.optional_vars)
        self.generic_visit(node)

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.scope.bind(node.name, _Binding("other"))
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._bind_target(target)

    def visit_MatchAs(self, node: ast.AST) -> None:
        if getattr(node, "name", None):
            self.scope.bind(node.name, _Binding("other"))
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.AST) -> None:
        if getattr(node, "name", None):
            self.scope.bind(node.name, _Binding("other"))

    def visit_MatchMapping(self, node: ast.AST) -> None:
        if getattr(node, "rest", None):
            self.scope.bind(node.rest, _Binding("other"))
        self.generic_visit(node)


def _build_scopes(tree: ast.AST) -> dict[ast.AST, _Scope]:
    """Map every scope-introducing node to its scope, with parents and bindings filled in."""
    scopes: dict[ast.AST, _Scope] = {}

    def walk(node: ast.AST, current: _Scope | None) -> None:
        if isinstance(node, _SCOPE_NODES):
            current = _Scope(node, current)
            scopes[node] = current
            _BindingCollector(current).collect()
        for child in ast.iter_child_nodes(node):
            walk(child, current)

    if not isinstance(tree, ast.Module):
        tree = ast.Module(body=[tree] if isinstance(tree, ast.stmt) else [ast.Expr(tree)], type_ignores=[])
    walk(tree, None)
    return scopes


# --------------------------------------------------------------------------------------------
# light static types
# --------------------------------------------------------------------------------------------

_STR_TO_STR = frozenset(
    "capitalize casefold center expandtabs format format_map join ljust lower lstrip removeprefix removesuffix "
    "replace rjust rstrip strip swapcase title translate upper zfill".split()
)
_METHOD_RESULTS: dict[str, dict[str, str]] = {
    "str": {
        **{m: "str" for m in _STR_TO_STR},
        **{m: "list" for m in ("split", "rsplit", "splitlines")},
        **{m: "tuple" for m in ("partition", "rpartition")},
        "encode": "bytes",
        **{m: "int" for m in ("find", "rfind", "index", "rindex", "count")},
        **{m: "bool" for m in ("startswith", "endswith", "isalpha", "isdigit", "isalnum", "isspace",
                               "islower", "isupper", "istitle", "isdecimal", "isnumeric", "isidentifier")},
    },
    "bytes": {"decode": "str", **{m: "bytes" for m in _STR_TO_STR if hasattr(bytes, m)},
              **{m: "list" for m in ("split", "rsplit", "splitlines")}},
    "list": {"copy": "list", "index": "int", "count": "int"},
    "dict": {"copy": "dict", "keys": "dict_keys", "values": "dict_values", "items": "dict_items"},
    "set": {m: "set" for m in ("copy", "union", "intersection", "difference", "symmetric_difference")},
    "frozenset": {m: "frozenset" for m in ("copy", "union", "intersection", "difference", "symmetric_difference")},
    "tuple": {"index": "int", "count": "int"},
}
# builtin callables with a known result type (the builtin types themselves are added below)
_BUILTIN_RESULTS = {
    "sorted": "list", "len": "int", "repr": "str", "ascii": "str", "chr": "str", "ord": "int", "hex": "str",
    "oct": "str", "bin": "str", "format": "str", "input": "str", "reversed": "reversed", "enumerate": "enumerate",
    "zip": "zip", "map": "map", "filter": "filter", "iter": "iterator", "isinstance": "bool", "callable": "bool",
    "hash": "int", "id": "int", "bytearray": "bytearray", "object": "object", "type": "type",
    **{t: t for t in BUILTIN_TYPES},
}
# stdlib callables with a known result type; dict subclasses are "dict" because they run dict's methods
_STDLIB_RESULTS = {
    "collections.deque": "collections.deque", "collections.Counter": "dict", "collections.OrderedDict": "dict",
    "collections.defaultdict": "dict", "re.compile": "re.Pattern", "re.findall": "list", "re.split": "list",
    "re.sub": "str", "re.escape": "str", "os.path.join": "str", "os.path.basename": "str",
    "os.path.dirname": "str", "json.dumps": "str", "math.sqrt": "float", "math.floor": "int", "math.ceil": "int",
    "heapq.nlargest": "list", "heapq.nsmallest": "list", "itertools.chain": "itertools.chain",
    "string.ascii_lowercase": "str", "string.ascii_uppercase": "str", "string.ascii_letters": "str",
    "string.digits": "str", "string.punctuation": "str", "string.whitespace": "str",
}
_CONST_TYPES = {str: "str", bytes: "bytes", int: "int", float: "float", complex: "complex", bool: "bool",
                type(None): "NoneType", type(...): "ellipsis"}
_TYPING_ALIASES = {"List": "list", "Dict": "dict", "Set": "set", "FrozenSet": "frozenset", "Tuple": "tuple",
                   "Text": "str", "AnyStr": None}

_CYCLE = object()  # sentinel: inferring this name needs its own type


class _Resolver:
    """Resolve expressions to qualified names (``re.search``, ``builtins.sorted``) and static types."""

    def __init__(
        self,
        scopes: dict[ast.AST, _Scope],
        module_roots: set[str],
        star_candidates: set[str],
        extra_builtins: Iterable[str] = (),
    ):
        self.scopes = scopes
        self.extra_builtins = frozenset(extra_builtins)  # names installed as builtins (my_re_search)
        self.module_roots = module_roots  # roots of the module APIs asked for ("re", "os")
        self.star_candidates = star_candidates  # module API qualnames a star import may provide
        self._busy: set[tuple[int, str]] = set()

    # ---- name lookup ----------------------------------------------------------------------
    def lookup(self, name: str, scope: _Scope) -> tuple[_Scope, list[_Binding]] | None:
        """Find the scope that binds ``name`` as seen from ``scope`` (Python's LEGB, classes skipped)."""
        current: _Scope | None = scope
        first = True
        while current is not None:
            if name in current.globals:
                current = current.module
            if (first or not current.is_class) and name in current.bindings and name not in current.nonlocals:
                return current, current.bindings[name]
            first = False
            current = current.parent
        return None

    # ---- qualified names ------------------------------------------------------------------
    def qualname(self, expr: ast.AST, scope: _Scope) -> str | None:
        """The dotted name an expression statically denotes, or None (a value, not a name)."""
        if isinstance(expr, ast.Name):
            return self._name_qualname(expr.id, scope)
        if isinstance(expr, ast.Attribute):
            base = self.qualname(expr.value, scope)
            return f"{base}.{expr.attr}" if base else None
        if isinstance(expr, ast.Subscript):  # __builtins__["sorted"], builtins.__dict__["sorted"]
            base = self.qualname(expr.value, scope)
            key = expr.slice
            if base in ("builtins", "builtins.__dict__") and isinstance(key, ast.Constant) and isinstance(key.value, str):
                return f"builtins.{key.value}"
            return None
        if isinstance(expr, ast.Call):
            attr = self.getattr_name(expr, scope)
            if attr is not None:
                base = self.qualname(expr.args[0], scope)
                return f"{base}.{attr}" if base else None
            if self.qualname(expr.func, scope) == "builtins.vars" and len(expr.args) == 1:
                base = self.qualname(expr.args[0], scope)
                return f"{base}.__dict__" if base == "builtins" else None
        return None

    def getattr_name(self, call: ast.Call, scope: _Scope) -> str | None:
        """For ``getattr(x, "name"[, default])`` with a constant name: that name."""
        if (
            isinstance(call.func, ast.Name)
            and call.func.id == "getattr"
            and 2 <= len(call.args) <= 3
            and isinstance(call.args[1], ast.Constant)
            and isinstance(call.args[1].value, str)
            and self._name_qualname("getattr", scope) == "builtins.getattr"
        ):
            return call.args[1].value
        return None

    def _name_qualname(self, name: str, scope: _Scope) -> str | None:
        found = self.lookup(name, scope)
        if found is None:
            module_scope = scope.module
            for module in module_scope.star_imports:
                if f"{module}.{name}" in self.star_candidates:
                    return f"{module}.{name}"
            if name == "__builtins__":
                return "builtins"
            if name in _BUILTIN_NAMES or name in self.extra_builtins:
                return f"builtins.{name}"
            if name in self.module_roots:
                return name
            return None
        owner, bindings = found
        imports = {b.qualname for b in bindings if b.how == "import"}
        if len(imports) == 1:  # err towards catching: an import wins over other rebindings
            return imports.pop()
        if imports:
            return None
        if all(b.how == "assign" for b in bindings):  # r = re; f = re.search
            key = (id(owner), name)
            if key in self._busy:
                return None
            self._busy.add(key)
            try:
                names = {self.qualname(b.value, owner) for b in bindings}
            finally:
                self._busy.discard(key)
            if len(names) == 1:
                return names.pop()
        return None

    # ---- static types ---------------------------------------------------------------------
    def type_of(self, expr: ast.AST, scope: _Scope) -> str | None:
        """The static type of a *value* expression: "str", "list", "collections.deque", …; None if unknown."""
        result = self._type_of(expr, scope)
        return None if result is _CYCLE else result

    def _type_of(self, expr: ast.AST, scope: _Scope):
        if isinstance(expr, ast.Constant):
            return _CONST_TYPES.get(type(expr.value))
        if isinstance(expr, ast.JoinedStr):
            return "str"
        simple = {ast.List: "list", ast.ListComp: "list", ast.Dict: "dict", ast.DictComp: "dict",
                  ast.Set: "set", ast.SetComp: "set", ast.Tuple: "tuple", ast.GeneratorExp: "generator",
                  ast.Lambda: "function", ast.Compare: "bool"}
        for node_type, name in simple.items():
            if isinstance(expr, node_type):
                return name
        if isinstance(expr, ast.Name):
            return self._name_type(expr.id, scope)
        if isinstance(expr, ast.Call):
            return self._call_type(expr, scope)
        if isinstance(expr, ast.BinOp):
            return self._binop_type(expr, scope)
        if isinstance(expr, ast.Subscript):
            base = self._type_of(expr.value, scope)
            if base == "str":
                return "str"
            if base in ("list", "tuple", "bytes") and isinstance(expr.slice, ast.Slice):
                return base
            return None
        if isinstance(expr, ast.IfExp):
            a, b = self._type_of(expr.body, scope), self._type_of(expr.orelse, scope)
            return a if a == b else None
        if isinstance(expr, ast.Attribute):
            qual = self.qualname(expr, scope)
            return _STDLIB_RESULTS.get(qual) if qual and qual.startswith("string.") else None
        return None

    def _call_type(self, call: ast.Call, scope: _Scope):
        qual = self.qualname(call.func, scope)
        if qual is not None:
            if qual.startswith("builtins."):
                return _BUILTIN_RESULTS.get(qual[len("builtins."):])
            return _STDLIB_RESULTS.get(qual)
        if isinstance(call.func, ast.Attribute):
            receiver = self._type_of(call.func.value, scope)
            if isinstance(receiver, str):
                return _METHOD_RESULTS.get(receiver, {}).get(call.func.attr)
            return None
        if isinstance(call.func, ast.Name):
            found = self.lookup(call.func.id, scope)
            if found and all(b.how == "class" for b in found[1]):
                return f"class:{call.func.id}"  # an instance of a class defined in the program
        return None

    def _binop_type(self, expr: ast.BinOp, scope: _Scope):
        left, right = self._type_of(expr.left, scope), self._type_of(expr.right, scope)
        if isinstance(expr.op, ast.Mod) and left in ("str", "bytes"):
            return left
        if isinstance(expr.op, ast.Add) and left == right and left in ("str", "bytes", "list", "tuple"):
            return left
        if isinstance(expr.op, ast.Mult):
            for seq, num in ((left, right), (right, left)):
                if seq in ("str", "bytes", "list", "tuple") and num in ("int", "bool"):
                    return seq
        return None

    def _name_type(self, name: str, scope: _Scope):
        found = self.lookup(name, scope)
        if found is None:
            return None
        owner, bindings = found
        key = (id(owner), name)
        if key in self._busy:
            return _CYCLE
        self._busy.add(key)
        try:
            types = [self._binding_type(b, owner) for b in bindings]
        finally:
            self._busy.discard(key)
        known = {t for t in types if t is not _CYCLE}
        if len(known) == 1 and None not in known:
            return known.pop()
        return None

    def _binding_type(self, binding: _Binding, scope: _Scope):
        if binding.how == "assign":
            if self.qualname(binding.value, scope) is not None:
                return "name"  # an alias of a module, class or function: not an instance
            return self._type_of(binding.value, scope)
        if binding.how == "augassign":  # s += "x" keeps str; other operators keep nothing known
            if isinstance(binding.op, (ast.Add, ast.Mult, ast.Mod)):
                return _CYCLE
            return None
        if binding.how in ("annotated", "param"):
            declared = self._annotation_type(binding.annotation, scope) if binding.annotation is not None else None
            if declared is None and binding.how == "annotated" and binding.value is not None:
                return self._type_of(binding.value, scope)
            return declared
        if binding.how in ("def", "class", "import"):
            return "name"
        return None

    def _annotation_type(self, annotation: ast.expr, scope: _Scope) -> str | None:
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except (SyntaxError, ValueError, RecursionError):
                return None
        if isinstance(annotation, ast.Subscript):  # list[int], List[int]
            annotation = annotation.value
        qual = self.qualname(annotation, scope)
        if qual is None:
            return None
        if qual.startswith("builtins.") and qual[len("builtins."):] in BUILTIN_TYPES:
            return qual[len("builtins."):]
        if qual.startswith("typing."):
            return _TYPING_ALIASES.get(qual[len("typing."):])
        return None


# --------------------------------------------------------------------------------------------
# the use finder
# --------------------------------------------------------------------------------------------


class _UseFinder(ast.NodeVisitor):
    """Walk the tree scope by scope and record every use of the requested APIs."""

    def __init__(self, tree: ast.Module, refs: list[ApiRef], plain_names: Iterable[str] = ()):
        self.refs = refs
        self.by_target = {ref.target: ref.qualname for ref in refs}
        self.methods: dict[str, list[ApiRef]] = {}
        for ref in refs:
            if ref.kind == "method":
                self.methods.setdefault(ref.attr, []).append(ref)
        self.plain_names = set(plain_names)
        module_refs = [r for r in refs if r.kind == "module"]
        self.module_owners = {r.owner for r in module_refs}
        self.scopes = _build_scopes(tree)
        self.resolver = _Resolver(
            self.scopes,
            module_roots={r.owner.split(".")[0] for r in module_refs},
            star_candidates={r.qualname for r in module_refs},
            extra_builtins=self.plain_names,
        )
        self.uses: dict[str, set[tuple[int, int]]] = {}
        self.scope: _Scope = self.scopes[tree]
        self.tree = tree

    def run(self) -> dict[str, list[tuple[int, int]]]:
        self._visit_body(self.tree)
        return {api: sorted(pos) for api, pos in self.uses.items()}

    def _record(self, api: str, node: ast.AST) -> None:
        self.uses.setdefault(api, set()).add((node.lineno, node.col_offset))

    def _visit_body(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            self.visit(child)

    def _in_scope(self, node: ast.AST, visit_inside) -> None:
        outer, self.scope = self.scope, self.scopes[node]
        try:
            visit_inside()
        finally:
            self.scope = outer

    # ---- scope-introducing nodes: evaluate outer parts in the outer scope -----------------
    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for expr in node.decorator_list + node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(expr)
        if node.returns is not None:
            self.visit(node.returns)
        self._in_scope(node, lambda: [self.visit(s) for s in node.body])

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expr in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(expr)
        self._in_scope(node, lambda: self.visit(node.body))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in node.decorator_list + node.bases + [k.value for k in node.keywords]:
            self.visit(expr)
        self._in_scope(node, lambda: [self.visit(s) for s in node.body])

    def _visit_comp(self, node) -> None:
        self.visit(node.generators[0].iter)  # the first iterable is evaluated outside

        def inside() -> None:
            for i, gen in enumerate(node.generators):
                if i:
                    self.visit(gen.iter)
                for cond in gen.ifs:
                    self.visit(cond)
            for part in ("elt", "key", "value"):
                if hasattr(node, part):
                    self.visit(getattr(node, part))

        self._in_scope(node, inside)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _visit_comp

    # ---- uses -------------------------------------------------------------------------------
    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        """``from re import search`` already reaches for re.search (and fails once it is removed)."""
        if node.level == 0 and node.module:
            for alias in node.names:
                api = self.by_target.get(f"{node.module}.{alias.name}")
                if api is not None:
                    self._record(api, alias if hasattr(alias, "lineno") else node)

    def _check_qualname(self, node: ast.AST) -> bool:
        qual = self.resolver.qualname(node, self.scope)
        if qual is None:
            return False
        api = self.by_target.get(qual)
        if api is not None:
            self._record(api, node)
        if qual.startswith("builtins.") and qual[len("builtins."):] in self.plain_names:
            self._record(qual[len("builtins."):], node)
        return True

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            if node.id in self.plain_names:
                self._record(node.id, node)
            else:
                self._check_qualname(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load):
            self._check_qualname(node)
            self._check_method(node.value, node.attr, node)
        self.visit(node.value)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Load):
            self._check_qualname(node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        attr = self.resolver.getattr_name(node, self.scope)
        if attr is not None:
            self._check_qualname(node)
            self._check_method(node.args[0], attr, node)
        self.generic_visit(node)

    def _check_method(self, receiver: ast.AST, attr: str, node: ast.AST) -> None:
        candidates = self.methods.get(attr)
        if not candidates:
            return
        qual = self.resolver.qualname(receiver, self.scope)
        if qual is not None and self._is_namespace(receiver, qual):
            return  # a module, an imported name, a builtin or an alias of one: not an instance
        receiver_type = self.resolver.type_of(receiver, self.scope)
        for ref in candidates:
            if receiver_type is None or receiver_type == ref.owner:
                self._record(ref.qualname, node)


    def _is_namespace(self, receiver: ast.AST, qual: str) -> bool:
        """Whether a receiver with a static name is a module/imported object rather than a value.

        A plain name that resolves (``r`` for ``import re as r``, ``path`` from ``from os import
        path``, ``str``) is one. An attribute chain is one only if it names a known module
        (``os.path``): ``os.path.sep`` or ``os.linesep`` are values of unknown type.
        """
        if isinstance(receiver, ast.Name) or qual == "builtins" or qual.startswith("builtins."):
            return True
        return qual in self.module_owners or qual in _STDLIB_SUBMODULES


#: dotted stdlib submodules reached as attributes (``os.path``); a fixed list, so that the verdict
#: never depends on what happens to be imported in the scoring process. An attribute chain not
#: listed here (``os.sep``, ``threading.Thread``) is read as a value of unknown type and counted.
_STDLIB_SUBMODULES = frozenset(
    "os.path xml.etree xml.etree.ElementTree xml.dom urllib.parse urllib.request urllib.error "
    "email.mime email.utils concurrent.futures importlib.util importlib.resources logging.handlers "
    "collections.abc unittest.mock json.decoder json.encoder http.client http.server "
    "multiprocessing.pool".split()
)


@contextmanager
def _deep_recursion(limit: int = 50_000) -> Iterator[None]:
    """Let the recursive walk follow any tree ``ast.parse`` accepted (a degenerate completion such
    as ``'a' + 'a' + …`` a thousand times nests deeper than the default limit of 1000)."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def _as_tree(source: str | ast.AST) -> ast.Module:
    if isinstance(source, ast.Module):
        return source
    if isinstance(source, ast.AST):
        body = [source] if isinstance(source, ast.stmt) else [ast.Expr(source)]
        return ast.Module(body=body, type_ignores=[])
    if not isinstance(source, str):
        raise TypeError(f"source must be a str or an ast.AST, got {type(source).__name__}")
    try:
        return ast.parse(source)
    except RecursionError:  # CPython's compiler refuses it too, so for us it does not parse
        raise SyntaxError("source is nested too deeply to parse") from None
    except ValueError as exc:  # NUL bytes; UnicodeDecodeError from some CPython parsers' error reporting
        raise SyntaxError(f"source does not parse ({type(exc).__name__}: {exc})") from None


def find_api_uses(source: str | ast.AST, apis: Iterable[str]) -> dict[str, list[tuple[int, int]]]:
    """Where each API of ``apis`` is used: ``{canonical api: [(lineno, col), …]}``, used APIs only.

    ``apis`` may hold any accepted spelling (``builtins.sorted``); keys are canonical names.
    Raises ``SyntaxError`` if ``source`` does not parse and ``ValueError`` for a bad API name.
    """
    refs = list({ref.qualname: ref for ref in (parse_api(a) for a in apis)}.values())
    if not refs:
        return {}
    tree = _as_tree(source)
    with _deep_recursion():
        return _UseFinder(tree, refs).run()


def uses_name(source: str | ast.AST, name: str) -> list[tuple[int, int]]:
    """Every use of the plain name ``name`` (a new API installed as a builtin, ``my_re_search``).

    Counts loads of the name (calls and bare references), ``builtins.name``,
    ``getattr(builtins, "name")`` and loads of a local alias (``g = my_re_search; g(x)``
    counts both lines). It does *not* exclude uses that a local definition shadows:
    a program that calls ``my_re_search`` chose the new API's name, whether or not it also
    defines a function of that name, and the adoption class is about that choice (the tests
    then decide whether the result is correct). Definitions themselves are not uses.

    A source that does not parse is scanned token by token (NAME tokens equal to ``name``),
    so a syntax-error sample can still be classified.
    """
    if not name.isidentifier():
        raise ValueError(f"uses_name: {name!r} is not an identifier")
    try:
        tree = _as_tree(source)
    except SyntaxError:
        return _token_uses(source, name) if isinstance(source, str) else []
    with _deep_recursion():
        return _UseFinder(tree, [], plain_names=[name]).run().get(name, [])


def tolerant_tokens(source: str) -> Iterator[tokenize.TokenInfo]:
    """Python tokens of ``source`` up to where tokenizing gives up, for code that need not parse.

    Python 3.12's C tokenizer gives up on odd model output (random-weight completions hit both on
    an H200) with UnicodeDecodeError (a multi-byte character at an error column) or, on NUL
    characters, SystemError instead of TokenError; NULs become spaces first, and every one of
    these ends the scan like a TokenError.
    """
    try:
        yield from tokenize.generate_tokens(io.StringIO(source.replace("\0", " ")).readline)
    except (tokenize.TokenError, SyntaxError, ValueError, SystemError):
        return  # keep what came before the point where tokenizing gave up


def _token_uses(source: str, name: str) -> list[tuple[int, int]]:
    """NAME tokens equal to ``name``, skipping ``def name``; tolerant of unparseable code."""
    found: list[tuple[int, int]] = []
    previous = ""
    for tok in tolerant_tokens(source):
        if tok.type == tokenize.NAME and tok.string == name and previous not in ("def", "class"):
            found.append(tok.start)
        if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
            previous = tok.string
    return found
