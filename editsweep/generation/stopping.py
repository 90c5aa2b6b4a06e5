"""Where a code completion ends: stop strings and the column-0 (dedent) rule.

A completion continues a prompt, so a rule such as "a new top-level `def`" means a newline
followed by `def ` — also when that newline is the last character of the prompt. `StopRule`
therefore matches against the completion with the prompt's last character in front of it, and
returns the cut position inside the completion itself. The text before the first match is the
completion; the match is not part of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["StopRule", "NO_STOP"]

_COLUMN0 = re.compile(r"\n(?=[^\s])")


@dataclass(frozen=True)
class StopRule:
    """Stop at the first of `strings`, or (with `dedent`) at the first line starting in column 0."""

    strings: tuple[str, ...] = ()
    dedent: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.strings, str):
            raise TypeError("StopRule.strings must be a sequence of strings, not one string")
        strings = tuple(self.strings)
        for s in strings:
            if not isinstance(s, str) or not s:
                raise ValueError(f"stop strings must be non-empty strings, got {s!r}")
        object.__setattr__(self, "strings", strings)

    @property
    def active(self) -> bool:
        return bool(self.strings) or self.dedent

    def find(self, completion: str, prompt_tail: str = "") -> int | None:
        """Index in `completion` where it must be cut, or None when no rule matches yet.

        `prompt_tail` is the end of the prompt (one character is enough: it only matters when
        the prompt ends with a newline and a stop string starts with one).
        """
        if not self.active or not completion:
            return None
        lead = prompt_tail[-1:] if prompt_tail else ""
        text = lead + completion
        best: int | None = None
        for s in self.strings:
            # A match must end inside the completion: a stop string wholly inside the prompt tail
            # is not new text.
            start = text.find(s, max(0, len(lead) - len(s) + 1))
            if start != -1 and (best is None or start < best):
                best = start
        if self.dedent:
            match = _COLUMN0.search(text)
            if match and (best is None or match.start() < best):
                best = match.start()
        if best is None:
            return None
        return max(0, best - len(lead))

    def cut(self, completion: str, prompt_tail: str = "") -> str:
        """`completion` up to (not including) the first stop."""
        index = self.find(completion, prompt_tail)
        return completion if index is None else completion[:index]


NO_STOP = StopRule()
