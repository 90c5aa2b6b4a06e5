"""Stable identities of a model and a tokenizer, for the statistics and template caches.

EasyEdit keys its caches by the model directory's basename, so two models whose directories
share a name collide (notes §4). The identity here is the hub name with its revision, or the
local path with a hash of its config and weight files' sizes and times, plus a fingerprint of
the embedding matrix (never edited), which also tells random-weight models apart.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["model_identity", "tokenizer_identity", "short_hash", "slug"]

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def short_hash(text: str, n: int = 12) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def slug(text: str) -> str:
    """A filesystem-safe name: letters, digits, '-', '_' and '.' kept, the rest turned into '_'."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("._")
    return cleaned[:80] or "unnamed"


def _path_fingerprint(path: Path) -> str:
    parts = []
    for file in sorted(path.iterdir()):
        if file.name == "config.json" or file.suffix in _WEIGHT_SUFFIXES or file.name.endswith(".index.json"):
            stat = file.stat()
            parts.append(f"{file.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return short_hash(str(path.resolve()) + "|" + "|".join(parts))


def _embedding_fingerprint(model: Any) -> str:
    import torch

    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        flat = weight.detach().reshape(-1)
        stride = max(1, flat.numel() // 65536)
        sample = flat[::stride].double()
        values = (float(sample.sum()), float((sample * sample).sum()), tuple(weight.shape), str(weight.dtype))
    return short_hash(repr(values))


def model_identity(model: Any) -> str:
    """`<name>@<revision or path hash>#<embedding fingerprint>`; stable across processes."""
    config = model.config
    name = str(getattr(config, "_name_or_path", "") or "")
    revision = getattr(config, "_commit_hash", None)
    if name and os.path.isdir(name):
        origin = f"{Path(name).resolve().name}@path-{_path_fingerprint(Path(name))}"
    elif name:
        origin = f"{name}@{revision or 'unknown-revision'}"
    else:
        config_hash = short_hash(json.dumps(config.to_dict(), sort_keys=True, default=str))
        origin = f"{config.model_type}-unnamed@config-{config_hash}"
    return f"{origin}#{_embedding_fingerprint(model)}"


def tokenizer_identity(tokenizer: Any) -> str:
    """Name plus a hash of the full tokenizer definition (vocab, merges, post-processor)."""
    name = str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # Truncation and padding are runtime settings of the backend (encoding a text with
        # truncation=True changes them); only the tokenization itself identifies the tokenizer.
        data = json.loads(backend.to_str())
        data.pop("truncation", None)
        data.pop("padding", None)
        definition = json.dumps(data, sort_keys=True)
    else:
        definition = repr(sorted(tokenizer.get_vocab().items()))
    return f"{slug(name)}#{short_hash(definition)}"
