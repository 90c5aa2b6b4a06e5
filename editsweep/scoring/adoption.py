"""Adoption class of one sample: did the model reach for the new API, the removed one, or neither?

On an API problem (reliability / generalization; the problem names the removed ``api`` and its
replacement ``new_api``):

=====================  ==========================================================
``legacy``             uses the removed API (or the sandbox flagged ``deprecated_api``)
``correct_adoption``   uses the new API, does not use the removed one, full pass
``incorrect_adoption`` uses the new API, does not use the removed one, not full pass
``workaround``         uses neither, full pass
``other_failure``      uses neither, not full pass
=====================  ==========================================================

Precedence: ``legacy`` wins when a sample uses both, because the removed API makes it fail
whatever else it does (at the compile stage for methods and module-level imports, at call
time otherwise), so it is a failure to unlearn, not an adoption.

On a specificity problem (no API was edited in for it): ``spurious_adoption`` if it uses any of
the new API names active in the cell (the ``my_*`` names of the edited catalog), else ``none``.

Only the model's own text counts: the program is ``prompt + completion`` and uses that fall
inside the prompt are ignored. A program that does not parse is scanned token by token (the
completion alone), so syntax-error samples are still classified. Harness errors get ``None``.
"""

from __future__ import annotations

import ast
import tokenize
from typing import Iterable

from editsweep.apis import ApiRef, find_api_uses, parse_api, tolerant_tokens, uses_name
from editsweep.scoring.status import Status

API_ADOPTION_CLASSES = ("correct_adoption", "incorrect_adoption", "workaround", "legacy", "other_failure")
SPECIFICITY_CLASSES = ("spurious_adoption", "none")
ADOPTION_CLASSES = API_ADOPTION_CLASSES + SPECIFICITY_CLASSES


def adoption_class(
    completion: str,
    status: Status | str,
    api: str | None,
    new_api: str | None = None,
    *,
    prompt: str = "",
    subset: str | None = None,
    active_new_apis: Iterable[str] = (),
) -> str | None:
    """The adoption class of one sample (see the module docstring), or None when it has none.

    ``new_api`` defaults to the name derived from ``api`` (``my_re_search``). ``subset`` set to
    ``"specificity"`` selects the spurious-adoption question over ``active_new_apis``; an API
    problem with ``api`` None (nothing to adopt) and a ``harness_error`` sample give None.
    """
    status = Status(status)
    if status is Status.HARNESS_ERROR:
        return None
    usage = _CompletionUsage(prompt, completion)
    if subset == "specificity":
        names = sorted(set(active_new_apis))
        return "spurious_adoption" if any(usage.uses_name(name) for name in names) else "none"
    if api is None:
        return None
    ref = parse_api(api)
    new_name = new_api or ref.new_name
    full = status is Status.PASSED
    if status is Status.DEPRECATED_API or usage.uses_api(ref):
        return "legacy"
    if usage.uses_name(new_name):
        return "correct_adoption" if full else "incorrect_adoption"
    return "workaround" if full else "other_failure"


class _CompletionUsage:
    """Uses of names/APIs in the completion part of ``prompt + completion``."""

    def __init__(self, prompt: str, completion: str):
        self.completion = completion
        prompt_lines = prompt.split("\n")
        self._prompt_last_line = len(prompt_lines)
        self._prompt_last_width = len(prompt_lines[-1].encode("utf-8"))  # ast columns are UTF-8 bytes
        self._has_prompt = bool(prompt)
        try:
            self.tree: ast.Module | None = ast.parse(prompt + completion)
        except (SyntaxError, ValueError):  # ValueError: NUL bytes in the source
            self.tree = None

    def _in_completion(self, position: tuple[int, int]) -> bool:
        if not self._has_prompt:
            return True
        line, col = position
        return line > self._prompt_last_line or (line == self._prompt_last_line and col >= self._prompt_last_width)

    def uses_name(self, name: str) -> bool:
        if self.tree is None:
            return bool(uses_name(self.completion, name))
        return any(self._in_completion(p) for p in uses_name(self.tree, name))

    def uses_api(self, ref: ApiRef) -> bool:
        if self.tree is None:
            return _lexical_api_use(self.completion, ref)
        positions = find_api_uses(self.tree, [ref.qualname]).get(ref.qualname, [])
        return any(self._in_completion(p) for p in positions)


def _tokens(source: str) -> list[tuple[int, str]]:
    """(type, string) of the NAME and OP tokens up to where tokenizing gives up."""
    out: list[tuple[int, str]] = []
    for tok in tolerant_tokens(source):
        if tok.type in (tokenize.NAME, tokenize.OP):
            out.append((tok.type, tok.string))
        elif tok.type in (tokenize.NEWLINE, tokenize.NL):
            out.append((tok.type, "\n"))
    return out


def _lexical_api_use(source: str, ref: ApiRef) -> bool:
    """A tolerant guess for unparseable code: ``owner.attr`` chains, ``from owner import attr``,
    a call of a builtin's bare name, or ``.attr`` for a method."""
    tokens = _tokens(source)
    strings = [s for _, s in tokens]
    for i, (kind, text) in enumerate(tokens):
        if kind != tokenize.NAME or text != ref.attr:
            continue
        before = strings[i - 1] if i else ""
        after = strings[i + 1] if i + 1 < len(strings) else ""
        if ref.kind == "method":
            if before == ".":
                return True
        elif ref.kind == "builtin":
            if before not in (".", "def", "class") and after == "(":
                return True
        else:
            owner_tail = ref.owner.split(".")[-1]
            if before == "." and i >= 2 and strings[i - 2] == owner_tail:
                return True
            line_start = max((j for j in range(i) if strings[j] == "\n"), default=-1) + 1
            line = strings[line_start:i]
            if line[:1] == ["from"] and "import" in line and "".join(line[1:line.index("import")]) == ref.owner:
                return True
    return False
