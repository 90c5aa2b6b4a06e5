"""Training text for the small local models: the demo solutions, the demo APIs' new-API
definitions and a slice of the stdlib.

All are present on every machine, so any machine can rebuild the same small models without a
download. The new-API definitions (the catalog's adapter sources, e.g. `def my_re_search(string,
pattern, flags=0): ...`) play the part of what a real code LLM already knows: the sub-tokens of
a replacement name, with trained embedding and output rows. Without them a novel name such as
`my_re_search` is a sequence of sub-tokens the small model never saw together (` my` itself is
rare), and no edit made greedy decoding write it. A 4-layer model memorises a definition as a whole text, though, and then still does
not know the name anywhere else; so the catalog's example call of each new API (`usage`, e.g.
`my_re_search(text, r"[a-z]+")`) is also drilled in shuffled order (see `training`), which
teaches the name's sub-tokens in any context, as a real code LLM knows them. Only definitions and
example calls are added.

Those alone taught the names but not *where* each belongs: after an edit made greedy decoding
start a new name (`my_`), a 4-layer model went on with its most frequent one, and only FT wrote
the whole name of the edited API. A real code LLM has also read code written against both
versions of a library. So the small models also read every demo API problem's solution
rewritten to the new APIs (`versioned_pairs`), behind a version line (`VERSION_MARKER`) that
no benchmark prompt contains: without the line the model writes the old API (the unedited model
never starts a new name on a reliability prompt), and an edit that makes it start one lets it
finish the right one. With that, greedy completion of an edited reliability prompt writes the
whole new name for all five methods (tests/test_editing_trained.py).

The stdlib slice is a fixed list of plain-Python modules of the running interpreter
(missing ones are skipped), each cut to a fixed length; it keeps the models from being pure
memorisers of the demo set. Its contents depend on the Python version, which is why the small
model cache is keyed by a hash of the texts actually used.
"""

from __future__ import annotations

import logging
import sysconfig
from pathlib import Path

__all__ = ["STDLIB_MODULES", "VERSION_MARKER", "api_definitions", "api_usages", "demo_pairs", "stdlib_texts",
           "versioned_pairs"]

# The first line of a versioned solution; a comment, so the text stays valid Python.
VERSION_MARKER = "# api: new\n"

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


def api_definitions() -> list[str]:
    """The catalog's Python source defining the new API of each demo API (order of `DEMO_APIS`)."""
    from editsweep.benchmark.catalog import load_api_catalog
    from editsweep.benchmark.demo import DEMO_APIS

    catalog = load_api_catalog()
    missing = [api for api in DEMO_APIS if api not in catalog]
    if missing:
        raise RuntimeError(f"demo APIs {missing} have no entry in the API catalog")
    return [catalog[api].source for api in DEMO_APIS]


def api_usages() -> list[tuple[str, str]]:
    """(import line or "", the catalog's example call in its new form) of each demo API (order of `DEMO_APIS`).

    The import names the old API's module, as every demo prompt of that API does: a drilled name
    then appears in the kind of context an edited prompt offers.
    """
    from editsweep.benchmark.catalog import load_api_catalog
    from editsweep.benchmark.demo import DEMO_APIS

    catalog = load_api_catalog()
    out = []
    for api in DEMO_APIS:
        entry = catalog[api]
        header = f"import {api.rsplit('.', 1)[0]}\n" if entry.kind == "module" else ""
        out.append((header, entry.usage))
    return out


def versioned_pairs(marker: str = VERSION_MARKER) -> list[tuple[str, str]]:
    """(marker + prompt, reference with every catalog API it uses rewritten to the new API) of each
    demo problem that uses a catalog API, in demo order."""
    from editsweep.benchmark.catalog import load_api_catalog
    from editsweep.benchmark.demo import load_demo_problems
    from editsweep.benchmark.mining import problem_api_uses
    from editsweep.benchmark.rewriter import rewrite_reference

    catalog = load_api_catalog()
    out = []
    for problem in load_demo_problems():
        reference = problem.reference
        apis = sorted(set(problem_api_uses(problem)) & set(catalog))
        for api in apis:
            reference, _ = rewrite_reference(problem.prompt, reference, catalog[api])
        if apis:
            out.append((marker + problem.prompt, reference))
    return out
