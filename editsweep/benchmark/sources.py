"""Source datasets → `Problem`s: HumanEval (164) and full MBPP (974), from a folder or the hub.

A source spec is `demo`, `hub` or `local:PATH`. Local files are checked before use (present,
sha256, record count) so a truncated or edited copy fails loudly, naming the file and what was
expected, instead of silently shrinking the benchmark.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from editsweep.benchmark.problem import Problem, docstring_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceFile:
    name: str
    records: int
    sha256: str


HUMANEVAL_FILE = SourceFile(
    "HumanEval.jsonl.gz", 164, "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef"
)
MBPP_FILE = SourceFile("mbpp.jsonl", 974, "ccf64ceae9c5403bf50a044cb6d505bfd2a2963ee58338ba268fd65beab92a9f")
HUB_HUMANEVAL = ("openai/openai_humaneval", None)
HUB_MBPP = ("google-research-datasets/mbpp", "full")


class SourceError(ValueError):
    """A source file or dataset is missing, corrupt, or has the wrong number of records."""


@dataclass(frozen=True)
class ConversionFailure:
    """A source record that could not be put in HumanEval form (reported, never silently lost)."""

    id: str
    reason: str


def parse_source_spec(spec: str) -> tuple[str, Path | None]:
    """`demo` | `hub` | `local:PATH` → (kind, path)."""
    if spec in ("demo", "hub"):
        return spec, None
    if spec.startswith("local:") and len(spec) > len("local:"):
        return "local", Path(spec[len("local:"):]).expanduser()
    raise SourceError(f"unknown benchmark source {spec!r}: expected 'demo', 'hub' or 'local:PATH'")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_verified_jsonl(folder: Path, expected: SourceFile) -> list[dict]:
    """Read one source file after checking existence, checksum and record count."""
    path = folder / expected.name
    if not path.is_file():
        raise SourceError(
            f"source file {path} is missing (expected {expected.records} records, sha256 {expected.sha256})"
        )
    actual = sha256_of(path)
    if actual != expected.sha256:
        raise SourceError(
            f"source file {path} is corrupt: sha256 {actual}, expected {expected.sha256} "
            f"({expected.records} records)"
        )
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    if len(records) != expected.records:
        raise SourceError(f"source file {path} has {len(records)} records, expected {expected.records}")
    return records


def load_hub_records() -> tuple[list[dict], list[dict]]:
    """HumanEval and full MBPP (all four splits) from the Hugging Face hub via `datasets`."""
    from datasets import load_dataset  # heavy import, only for this path

    humaneval = [dict(r) for r in load_dataset(HUB_HUMANEVAL[0], split="test")]
    mbpp_splits = load_dataset(HUB_MBPP[0], HUB_MBPP[1])
    mbpp = sorted((dict(r) for split in mbpp_splits.values() for r in split), key=lambda r: r["task_id"])
    for name, records, expected in (
        (HUB_HUMANEVAL[0], humaneval, HUMANEVAL_FILE.records),
        (f"{HUB_MBPP[0]} ({HUB_MBPP[1]})", mbpp, MBPP_FILE.records),
    ):
        if len(records) != expected:
            raise SourceError(f"hub dataset {name} has {len(records)} records, expected {expected}")
    return humaneval, mbpp


def _split_test_units(test_source: str, entry_point: str) -> list[str]:
    from editsweep.sandbox import split_test_units

    return list(split_test_units(test_source, entry_point))


def humaneval_problem(record: dict) -> Problem:
    task_id = record["task_id"]
    entry_point = record["entry_point"]
    return Problem(
        id=f"humaneval/{task_id.split('/')[-1]}",
        source="humaneval",
        prompt=record["prompt"],
        entry_point=entry_point,
        reference=record["canonical_solution"],
        tests=tuple(_split_test_units(record["test"], entry_point)),
        task_text=docstring_of(record["prompt"] + record["canonical_solution"], entry_point),
    )


def _called_names(test: str) -> list[str]:
    try:
        tree = ast.parse(test)
    except SyntaxError:
        return []
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    calls.sort(key=lambda node: (node.lineno, node.col_offset))
    return [node.func.id for node in calls]


def _escape_docstring(text: str) -> str:
    """Text that reads back unchanged inside a triple-quoted docstring."""
    return text.strip().replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def mbpp_problem(record: dict) -> Problem:
    """Put an MBPP record in HumanEval form.

    The entry point is the first top-level function of `code` that the first test calls. The
    prompt is everything in `code` before that function's body (imports, helpers, the `def`
    line) plus a docstring made of the task text and the first test as an example; the
    reference is the rest. Line endings are normalised to `\\n`.
    """
    pid = f"mbpp/{record['task_id']}"
    code = record["code"].replace("\r\n", "\n").replace("\r", "\n").rstrip() + "\n"
    tree = ast.parse(code)
    functions = {
        node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    tests = [t.replace("\r\n", "\n") for t in record["test_list"]]
    entry_point = next((name for name in _called_names(tests[0]) if name in functions), None)
    if entry_point is None:
        raise ValueError(f"{pid}: the first test calls no top-level function of the solution")
    node = functions[entry_point]
    lines = code.split("\n")
    first = node.body[0]
    if first.lineno == node.lineno:  # `def f(x): return x` — body on the def line
        raise ValueError(f"{pid}: the body of {entry_point} is on its def line")
    body_indent = lines[first.lineno - 1][: first.col_offset]
    if body_indent.strip() or not body_indent:
        raise ValueError(f"{pid}: cannot read the body indentation of {entry_point}")
    head = "\n".join(lines[: first.lineno - 1]) + "\n"
    reference = "\n".join(lines[first.lineno - 1 :])
    text = _escape_docstring(record["text"])
    example = _escape_docstring(tests[0])
    prompt = head + f'{body_indent}"""{text}\n{body_indent}Example: {example}\n{body_indent}"""\n'
    setup = record.get("test_setup_code") or ""
    units = ([setup.replace("\r\n", "\n")] if setup.strip() else []) + tests
    problem = Problem(
        id=pid,
        source="mbpp",
        prompt=prompt,
        entry_point=entry_point,
        reference=reference,
        tests=tuple(units),
        task_text=record["text"].strip(),
    )
    problem.check_well_formed()
    return problem


def convert_records(humaneval: list[dict], mbpp: list[dict]) -> tuple[list[Problem], list[ConversionFailure]]:
    problems: list[Problem] = []
    failures: list[ConversionFailure] = []
    for record in humaneval:
        problems.append(humaneval_problem(record))
    for record in mbpp:
        try:
            problems.append(mbpp_problem(record))
        except (ValueError, SyntaxError) as exc:
            failures.append(ConversionFailure(f"mbpp/{record['task_id']}", f"conversion: {exc}"))
    if failures:
        log.info("%d source records could not be converted (listed in stats.json 'dropped')", len(failures))
    return problems, failures


def load_source(spec: str) -> tuple[list[Problem], list[ConversionFailure]]:
    """All problems of a source spec, plus the records that could not be converted."""
    with quiet_source_warnings():
        return _load_source(spec)


@contextmanager
def quiet_source_warnings():
    """Silence the invalid-escape warnings that parsing the source solutions raises (their code, not ours)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        yield


def _load_source(spec: str) -> tuple[list[Problem], list[ConversionFailure]]:
    kind, path = parse_source_spec(spec)
    if kind == "demo":
        from editsweep.benchmark.demo import load_demo_problems

        return load_demo_problems(), []
    if kind == "hub":
        humaneval, mbpp = load_hub_records()
    else:
        if not path.is_dir():
            raise SourceError(f"source folder {path} does not exist")
        humaneval = read_verified_jsonl(path, HUMANEVAL_FILE)
        mbpp = read_verified_jsonl(path, MBPP_FILE)
    return convert_records(humaneval, mbpp)
