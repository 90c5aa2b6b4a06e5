"""Text corpora for second-moment statistics, each a deterministic stream of documents.

- `stdlib`: the Python standard library source of the running interpreter, a code corpus every
  machine has. Files are listed sorted, then shuffled with a fixed seed (so a small token budget
  still spans many packages, not just the alphabetically first ones).
- `hf:DATASET[:CONFIG][@SPLIT]`: a Hugging Face dataset, streamed in its stored order; the
  text column is `text`, `content` or `code`, whichever exists. CLMEEval used Wikipedia
  (`hf:wikimedia/wikipedia:20231101.en`); a code corpus is our documented default (notes §4).
"""

from __future__ import annotations

import os
import random
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

__all__ = ["Corpus", "parse_corpus", "stdlib_files"]

_TEXT_COLUMNS = ("text", "content", "code")
_SHUFFLE_SEED = 0


@dataclass(frozen=True)
class Corpus:
    """A parsed corpus spec; `identity` names it in cache paths (it includes the Python version for stdlib)."""

    spec: str
    kind: str
    dataset: str | None = None
    config: str | None = None
    split: str = "train"

    @property
    def identity(self) -> str:
        if self.kind == "stdlib":
            return f"stdlib-py{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
        parts = [self.dataset or "", self.config or "default", self.split]
        return "hf-" + "-".join(parts)

    def documents(self) -> Iterator[str]:
        if self.kind == "stdlib":
            return _stdlib_documents()
        return _hf_documents(self)


def parse_corpus(spec: str) -> Corpus:
    """`stdlib` or `hf:DATASET[:CONFIG][@SPLIT]`; anything else is a clear error."""
    if spec == "stdlib":
        return Corpus(spec=spec, kind="stdlib")
    if spec.startswith("hf:"):
        rest = spec[3:]
        split = "train"
        if "@" in rest:
            rest, split = rest.rsplit("@", 1)
        dataset, _, config = rest.partition(":")
        if not dataset or not split:
            raise ValueError(f"corpus {spec!r}: expected hf:DATASET[:CONFIG][@SPLIT]")
        return Corpus(spec=spec, kind="hf", dataset=dataset, config=config or None, split=split)
    raise ValueError(f"unknown corpus {spec!r}: use 'stdlib' or 'hf:DATASET[:CONFIG][@SPLIT]'")


def stdlib_files() -> list[Path]:
    """The interpreter's standard-library .py files (no site-packages), in a seeded shuffled order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise FileNotFoundError(f"standard library directory {root} not found")
    skip = {"site-packages", "dist-packages", "__pycache__"}
    files = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [d for d in subfolders if d not in skip]  # prune: site-packages is huge
        files.extend(Path(folder) / name for name in names if name.endswith(".py"))
    files.sort()
    if not files:
        raise FileNotFoundError(f"no .py files under {root}")
    random.Random(_SHUFFLE_SEED).shuffle(files)
    return files


def _stdlib_documents() -> Iterator[str]:
    for path in stdlib_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # a few test fixtures are deliberately not UTF-8; skipping is deterministic
        if text.strip():
            yield text


def _hf_documents(corpus: Corpus) -> Iterator[str]:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a declared dependency
        raise ImportError(f"corpus {corpus.spec!r} needs the `datasets` package") from exc
    stream = datasets.load_dataset(corpus.dataset, corpus.config, split=corpus.split, streaming=True)
    column = None
    for row in stream:
        if column is None:
            column = next((c for c in _TEXT_COLUMNS if c in row), None)
            if column is None:
                raise ValueError(
                    f"corpus {corpus.spec!r}: no text column among {', '.join(_TEXT_COLUMNS)}; columns: {sorted(row)}"
                )
        text = row[column]
        if isinstance(text, str) and text.strip():
            yield text
