"""Rewrite rules as data: an old call signature, a new one, and how their parameters correspond.

A call to the old API is *bound* to the old signature (which argument fills which parameter),
then *emitted* in the order and style of the new signature. One engine covers every usage
change of the catalog: argument permutation, keyword renames, arguments made keyword-only,
a method's receiver turned into an explicit argument (`self` in the old signature), and
several arguments packed into one list (an old `*args` filled into a plain new parameter).
Arguments are handled as source text, so the rewritten call keeps the original spelling.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

POSITIONAL_ONLY = "positional_only"
POSITIONAL_OR_KEYWORD = "positional_or_keyword"
VAR_POSITIONAL = "var_positional"
KEYWORD_ONLY = "keyword_only"


class RewriteError(ValueError):
    """A call that the rule cannot rewrite statically (the reason says why)."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    has_default: bool

    @property
    def positional(self) -> bool:
        return self.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD)


@dataclass(frozen=True)
class Signature:
    """A call signature written in Python syntax, e.g. `(pattern, string, flags=0)`."""

    text: str
    params: tuple[Param, ...]

    @classmethod
    def parse(cls, text: str) -> Signature:
        try:
            node = ast.parse(f"def _{text.strip()}: pass").body[0]
        except SyntaxError as exc:
            raise ValueError(f"bad signature {text!r}: {exc.msg}") from exc
        args = node.args
        if args.kwarg is not None:
            raise ValueError(f"bad signature {text!r}: **kwargs cannot be rewritten statically")
        params: list[Param] = []
        positional = list(args.posonlyargs) + list(args.args)
        first_default = len(positional) - len(args.defaults)
        for index, arg in enumerate(positional):
            kind = POSITIONAL_ONLY if index < len(args.posonlyargs) else POSITIONAL_OR_KEYWORD
            params.append(Param(arg.arg, kind, index >= first_default))
        if args.vararg is not None:
            params.append(Param(args.vararg.arg, VAR_POSITIONAL, True))
        for arg, default in zip(args.kwonlyargs, args.kw_defaults):
            params.append(Param(arg.arg, KEYWORD_ONLY, default is not None))
        return cls(text.strip(), tuple(params))

    def get(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def required_positional(self) -> list[Param]:
        return [p for p in self.params if p.positional and not p.has_default]


@dataclass(frozen=True)
class Arg:
    """One argument of a call, as source text; `starred` for `*x` (text then excludes the star)."""

    text: str
    starred: bool = False

    def render(self) -> str:
        return f"*{self.text}" if self.starred else self.text


@dataclass(frozen=True)
class CallArgs:
    """The arguments of one call: positional (receiver first for a method) and keywords (None = **)."""

    positional: tuple[Arg, ...]
    keywords: tuple[tuple[str | None, str], ...] = ()


@dataclass(frozen=True)
class _Single:
    text: str
    by_keyword: bool


@dataclass(frozen=True)
class _Many:
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class RewriteRule:
    old: Signature
    new: Signature
    rename: dict[str, str] = field(default_factory=dict)  # new parameter -> old parameter
    single_iterable: bool = False  # a lone positional for an old *args is the iterable itself (max/min)

    @classmethod
    def from_data(cls, data: dict, where: str) -> RewriteRule:
        try:
            rule = cls(
                old=Signature.parse(data["old"]),
                new=Signature.parse(data["new"]),
                rename=dict(data.get("rename") or {}),
                single_iterable=bool(data.get("single_iterable", False)),
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from exc
        rule.check(where)
        return rule

    def to_data(self) -> dict:
        return {
            "old": self.old.text,
            "new": self.new.text,
            "rename": dict(sorted(self.rename.items())),
            "single_iterable": self.single_iterable,
        }

    def old_name(self, new_param: str) -> str:
        return self.rename.get(new_param, new_param)

    def check(self, where: str) -> None:
        """Every new parameter must come from an old one, and every old one must go somewhere."""
        old_names = {p.name for p in self.old.params}
        sources = [self.old_name(p.name) for p in self.new.params]
        unknown = [s for s in sources if s not in old_names]
        if unknown:
            raise ValueError(f"{where}: new parameters map to unknown old parameters {unknown}")
        lost = sorted(old_names - set(sources))
        if lost:
            raise ValueError(f"{where}: old parameters {lost} have no place in the new signature")
        for new_param in self.new.params:
            old_param = self.old.get(self.old_name(new_param.name))
            if old_param.has_default and not new_param.has_default and old_param.kind != VAR_POSITIONAL:
                raise ValueError(f"{where}: {new_param.name!r} is required but {old_param.name!r} was optional")

    # ---- binding and emission -------------------------------------------------------------
    def bind(self, call: CallArgs) -> dict[str, _Single | _Many]:
        """Which argument text fills which old parameter; RewriteError when that is not static."""
        positional = [p for p in self.old.params if p.positional]
        var = next((p for p in self.old.params if p.kind == VAR_POSITIONAL), None)
        bound: dict[str, _Single | _Many] = {}
        extra: list[Arg] = []
        for index, arg in enumerate(call.positional):
            if index < len(positional) and not extra:
                if arg.starred:
                    raise RewriteError(f"*{arg.text} would fill the parameter {positional[index].name!r}")
                bound[positional[index].name] = _Single(arg.text, by_keyword=False)
            elif var is not None:
                extra.append(arg)
            else:
                raise RewriteError(f"too many positional arguments ({len(call.positional)})")
        for name, text in call.keywords:
            if name is None:
                raise RewriteError("**keyword arguments cannot be bound statically")
            param = self.old.get(name)
            if param is None or param.kind in (POSITIONAL_ONLY, VAR_POSITIONAL):
                raise RewriteError(f"unexpected keyword argument {name!r}")
            if name in bound:
                raise RewriteError(f"argument {name!r} given twice")
            bound[name] = _Single(text, by_keyword=True)
        if var is not None:
            bound[var.name] = _Many(tuple(extra))
        missing = [p.name for p in self.old.params if not p.has_default and p.name not in bound]
        if missing:
            raise RewriteError(f"missing arguments {missing}")
        return bound

    def _pack(self, many: _Many) -> str:
        args = many.args
        if self.single_iterable and any(a.starred for a in args) and sum(not a.starred for a in args) < 2:
            # max(*xs) means max(xs[0]) when xs has one item and max over xs otherwise
            raise RewriteError("a *argument to an API whose lone argument is the iterable depends on its length")
        if len(args) == 1 and args[0].starred:
            return args[0].text
        if len(args) == 1 and self.single_iterable:
            return args[0].text
        return "[" + ", ".join(a.render() for a in args) + "]"

    def emit_arguments(self, bound: dict[str, _Single | _Many]) -> str:
        """The new call's argument list (without parentheses)."""
        out: list[str] = []
        positional_open = True  # no positional slot skipped and no keyword emitted yet
        for param in self.new.params:
            value = bound.get(self.old_name(param.name))
            if param.kind == VAR_POSITIONAL:
                if isinstance(value, _Many):
                    if value.args and not positional_open:
                        raise RewriteError(f"*{param.name} cannot follow keyword arguments")
                    out.extend(a.render() for a in value.args)
                elif isinstance(value, _Single):
                    out.append(value.text)
                continue
            if value is None:
                if not param.has_default:
                    raise RewriteError(f"no value for the new parameter {param.name!r}")
                if param.positional:
                    positional_open = False
                continue
            text = self._pack(value) if isinstance(value, _Many) else value.text
            by_keyword = isinstance(value, _Single) and value.by_keyword
            if param.kind == POSITIONAL_ONLY:
                if not positional_open:
                    raise RewriteError(f"positional-only {param.name!r} cannot be passed after a gap or keyword")
                out.append(text)
            elif param.kind == POSITIONAL_OR_KEYWORD and positional_open and not by_keyword:
                out.append(text)
            else:
                out.append(f"{param.name}={text}")
                positional_open = False
        return ", ".join(out)

    def rewrite_call(self, new_name: str, call: CallArgs) -> str:
        return f"{new_name}({self.emit_arguments(self.bind(call))})"

    def reference_replacement(self, new_name: str) -> str:
        """What replaces a bare (uncalled) reference to the old API, e.g. `key=len`.

        The new name itself when calling it positionally is the same as calling the old API
        with its required positional parameters; otherwise a lambda over those parameters.
        """
        params = self.old.required_positional
        if not params and not any(p.kind == VAR_POSITIONAL for p in self.old.params):
            raise RewriteError("a reference to an API without required positional parameters")
        names = [p.name for p in params]
        call = CallArgs(tuple(Arg(n) for n in names))
        rewritten = self.rewrite_call(new_name, call)
        if rewritten == f"{new_name}({', '.join(names)})" and not any(
            p.kind == VAR_POSITIONAL for p in self.old.params
        ):
            return new_name
        if any(p.kind == VAR_POSITIONAL for p in self.old.params):
            raise RewriteError("a reference to an API with *args cannot be rewritten as a fixed lambda")
        return f"lambda {', '.join(names)}: {rewritten}"
