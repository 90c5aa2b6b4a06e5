"""The project's small trained models (`small:llama`, `small:qwen2`): built once, cached on disk.

`small_model_path(arch)` returns a `save_pretrained` directory (model + tokenizer) and trains it
first if needed. The cache lives under `$EDITSWEEP_CACHE` (default `~/.cache/editsweep`) in
`small/<arch>-<key>`, where the key hashes everything the result depends on: the training texts,
the recipe, the tokenizer vocabulary size and the recipe code version. A directory counts as
valid only if its manifest (written last) names the same key and every listed file still has
the recorded SHA-256; anything else (a killed run, a truncated file) is deleted and rebuilt.
Training happens in a temporary sibling directory that is renamed into place, under an
exclusive file lock, so parallel sweep cells or pytest workers train each model once.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from editsweep.models.training import SmallRecipe

__all__ = [
    "MANIFEST",
    "SMALL_ARCHS",
    "cache_root",
    "small_model_key",
    "small_model_path",
    "small_model_status",
    "train_and_save",
]

log = logging.getLogger(__name__)

MANIFEST = "editsweep-small.json"
SMALL_ARCHS = ("llama", "qwen2")
# Bump when the training code changes in a way the recipe fields do not capture.
RECIPE_CODE_VERSION = 3


def cache_root() -> Path:
    """`$EDITSWEEP_CACHE`, else `~/.cache/editsweep`."""
    env = os.environ.get("EDITSWEEP_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "editsweep"


@dataclass(frozen=True)
class TrainingInputs:
    """Every text a small model (and its tokenizer) is trained on; see editsweep.models.corpus."""

    pairs: list[tuple[str, str]]
    stdlib: list[str]
    definitions: list[str]
    usages: list[tuple[str, str]]
    versioned: list[tuple[str, str]]

    def tokenizer_texts(self) -> list[str]:
        return [p + r for p, r in self.pairs + self.versioned] + self.definitions + self.stdlib


@functools.lru_cache(maxsize=4)
def training_inputs(recipe: SmallRecipe) -> TrainingInputs:
    """The texts of `recipe`, read once per process: a cell asks for them twice (its identity's
    training key, then loading the model), and reading them means rewriting the demo solutions.
    Shared between callers: treat the lists as read-only."""
    from editsweep.models.corpus import api_definitions, api_usages, demo_pairs, stdlib_texts, versioned_pairs

    definitions = api_definitions() if recipe.api_definitions else []
    usages = api_usages() if recipe.api_definitions else []
    versioned = versioned_pairs() if recipe.versioned_solutions else []
    return TrainingInputs(demo_pairs(), stdlib_texts(recipe.stdlib_chars_per_file), definitions, usages, versioned)


def small_model_key(arch: str, recipe: SmallRecipe, inputs: TrainingInputs | None = None) -> str:
    """Hex SHA-256 over the training texts, recipe and code version of `arch`'s small model."""
    inputs = inputs or training_inputs(recipe)
    digest = hashlib.sha256()
    header = {"arch": arch, "recipe": recipe.to_dict(), "code_version": RECIPE_CODE_VERSION}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for prompt, reference in inputs.pairs:
        digest.update(b"\x00pair\x00" + prompt.encode() + b"\x00" + reference.encode())
    for text in inputs.stdlib:
        digest.update(b"\x00stdlib\x00" + text.encode())
    for text in inputs.definitions:
        digest.update(b"\x00definition\x00" + text.encode())
    for header, call in inputs.usages:
        digest.update(b"\x00usage\x00" + header.encode() + b"\x00" + call.encode())
    for prompt, reference in inputs.versioned:
        digest.update(b"\x00versioned\x00" + prompt.encode() + b"\x00" + reference.encode())
    return digest.hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_manifest(directory: Path) -> dict | None:
    try:
        return json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _problem_with(directory: Path, key: str) -> str | None:
    """Why `directory` is not a valid cache entry for `key`, or None when it is."""
    if not directory.is_dir():
        return "missing"
    manifest = _read_manifest(directory)
    if manifest is None:
        return "no readable manifest (interrupted build?)"
    if manifest.get("key") != key:
        return "manifest key differs"
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return "manifest lists no files"
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            return f"file {name} missing"
        if _sha256_file(path) != expected:
            return f"file {name} corrupt (checksum mismatch)"
    return None


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        started = time.monotonic()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process to finish building %s", path.stem)
            fcntl.flock(handle, fcntl.LOCK_EX)
            log.info("lock %s acquired after %.1f s", path.name, time.monotonic() - started)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync_tree(directory: Path) -> None:
    for path in sorted(directory.iterdir()):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def train_and_save(arch: str, directory: Path, recipe: SmallRecipe, inputs: TrainingInputs, key: str, progress: bool = True) -> dict:
    """Train tokenizer and model of `arch` into `directory` (which must be new); returns the manifest."""
    from editsweep.models.reproduce import greedy_reproduction
    from editsweep.models.tokenizer import train_tokenizer
    from editsweep.models.training import train_small_model

    started = time.perf_counter()
    tokenizer = train_tokenizer(inputs.tokenizer_texts(), arch, recipe.vocab_size)
    result = train_small_model(
        arch, tokenizer, inputs.pairs + inputs.versioned, inputs.stdlib, recipe, progress=progress,
        definitions=inputs.definitions, usages=inputs.usages,
    )
    reproduction = greedy_reproduction(result.model, tokenizer, inputs.pairs)
    result.model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    import torch
    import transformers

    manifest = {
        "key": key,
        "arch": arch,
        "recipe": recipe.to_dict(),
        "code_version": RECIPE_CODE_VERSION,
        "n_demo_texts": len(inputs.pairs),
        "n_stdlib_texts": len(inputs.stdlib),
        "n_api_definitions": len(inputs.definitions),
        "n_versioned_solutions": len(inputs.versioned),
        "train_seconds": round(result.seconds, 2),
        "build_seconds": round(time.perf_counter() - started, 2),
        "final_loss": result.final_loss,
        "demo_loss": result.demo_loss,
        "demo_greedy_reproduction": reproduction.rate,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "files": {p.name: _sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file()},
    }
    _fsync_tree(directory)
    tmp_manifest = directory / (MANIFEST + ".tmp")
    tmp_manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    with tmp_manifest.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp_manifest, directory / MANIFEST)
    log.info(
        "small:%s built in %.1f s (training %.1f s); greedy reproduction of the demo set %.0f%%",
        arch, manifest["build_seconds"], result.seconds, 100 * reproduction.rate,
    )
    return manifest


def _entry_dir(arch: str, key: str) -> Path:
    return cache_root() / "small" / f"{arch}-{key[:16]}"


def small_model_path(arch: str, recipe: SmallRecipe | None = None, progress: bool = True) -> Path:
    """The cached directory of `arch`'s small model; trains and saves it first when needed."""
    if arch not in SMALL_ARCHS:
        raise ValueError(f"no small model for architecture {arch!r}; available: {', '.join(SMALL_ARCHS)}")
    recipe = recipe or SmallRecipe()
    inputs = training_inputs(recipe)
    key = small_model_key(arch, recipe, inputs)
    directory = _entry_dir(arch, key)
    if _problem_with(directory, key) is None:
        return directory
    with _exclusive_lock(directory.parent / f"{directory.name}.lock"):
        problem = _problem_with(directory, key)
        if problem is None:  # another process built it while we waited
            return directory
        if problem != "missing":
            log.warning("small model cache %s is invalid (%s); rebuilding", directory, problem)
            shutil.rmtree(directory)
        for stale in directory.parent.glob(f".{directory.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed build; we hold the lock
        log.info("training small:%s (cache %s)", arch, directory)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
        try:
            train_and_save(arch, tmp, recipe, inputs, key, progress=progress)
            os.rename(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fd = os.open(directory.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return directory


def small_model_status(arch: str, recipe: SmallRecipe | None = None) -> dict:
    """Where `arch`'s small model is cached, whether it is valid, and its manifest if so."""
    recipe = recipe or SmallRecipe()
    key = small_model_key(arch, recipe)
    directory = _entry_dir(arch, key)
    problem = _problem_with(directory, key)
    return {
        "arch": arch,
        "path": str(directory),
        "valid": problem is None,
        "problem": problem,
        "manifest": _read_manifest(directory) if problem is None else None,
    }
