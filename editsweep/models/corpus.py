"""Training text for the small local models: the demo solutions plus a slice of the stdlib.

Both are present on every machine, so any machine can rebuild the same small models without a
download. The stdlib slice is a fixed list of plain-Python modules of the running interpreter
(missing ones are skipped), each cut to a fixed length; it keeps the models from being pure
memorisers of the demo set. Its contents depend on the Python version, which is why the small
model cache is keyed by a hash of the texts actually used.
"""

from __future__ import annotations

import logging
import sysconfig
from pathlib import Path

__all__ = ["STDLIB_MODULES", "demo_pairs", "stdlib_texts"]

log = logging.getLogger(__name__)

# Small, readable modules whose idioms resemble the demo functions (string, list and path code).
STDLIB_MODULES: tuple[str, ...] = (
    "bisect.py",
    "heapq.py",
    "textwrap.py",
    "string.py",
    "fnmatch.py",
    "glob.py",
    "shlex.py",
    "posixpath.py",
    "genericpath.py",
    "colorsys.py",
    "keyword.py",
    "copy.py",
    "operator.py",
    "statistics.py",
    "fractions.py",
    "random.py",
    "functools.py",
    "base64.py",
    "calendar.py",
    "csv.py",
    "difflib.py",
    "ipaddress.py",
    "json/decoder.py",
    "json/encoder.py",
    "urllib/parse.py",
    "html/__init__.py",
)


def stdlib_texts(max_chars_per_file: int = 12_000, modules: tuple[str, ...] = STDLIB_MODULES) -> list[str]:
    """The first `max_chars_per_file` characters (cut at a line end) of each listed stdlib module."""
    root = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for name in modules:
        path = root / name
        if not path.is_file():
            log.debug("stdlib module %s not found under %s; skipped", name, root)
            continue
        text = path.read_text(encoding="utf-8")
        if len(text) > max_chars_per_file:
            text = text[: text.rfind("\n", 0, max_chars_per_file) + 1]
        texts.append(text)
    if not texts:
        raise FileNotFoundError(f"none of the stdlib modules {modules} exist under {root}")
    return texts


def demo_pairs() -> list[tuple[str, str]]:
    """(prompt, reference) of every demo problem; `prompt + reference` is its original solution.

    Same texts as `editsweep.benchmark.demo.training_texts()`, kept split at the prompt boundary
    so that training sees the tokens that greedy decoding from the prompt will see.
    """
    from editsweep.benchmark.demo import load_demo_problems, training_texts

    problems = load_demo_problems()
    pairs = [(p.prompt, p.reference) for p in problems]
    if [a + b for a, b in pairs] != training_texts():
        raise RuntimeError("demo problems and training_texts() disagree; the demo module changed shape")
    return pairs
