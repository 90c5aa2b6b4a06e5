"""The demo benchmark: problems written for editsweep, the embedded default (no download needed).

`problems.yaml` holds each problem as parts (imports, arguments, docstring, body, tests); this
module assembles them into HumanEval-form `Problem`s with one fixed layout, so that every
prompt and solution looks alike — the small local models are trained to reproduce them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from editsweep.benchmark.problem import Problem

PROBLEMS_FILE = Path(__file__).with_name("problems.yaml")
INDENT = "    "
REQUIRED_KEYS = ("name", "imports", "args", "doc", "body", "tests")


def _assemble(entry: dict, where: str) -> Problem:
    missing = [key for key in REQUIRED_KEYS if key not in entry]
    if missing:
        raise ValueError(f"{where}: missing keys {missing}")
    name = entry["name"]
    header = "".join(f"import {module}\n" for module in entry["imports"])
    if header:
        header += "\n\n"
    doc = entry["doc"].strip()
    if '"""' in doc or "\\" in doc:
        raise ValueError(f"{where}: the docstring of {name!r} may not contain triple quotes or backslashes")
    prompt = f'{header}def {name}({entry["args"]}):\n{INDENT}"""{doc}"""\n'
    body_lines = entry["body"].rstrip("\n").split("\n")
    reference = "".join(f"{INDENT}{line}\n" if line.strip() else "\n" for line in body_lines)
    problem = Problem(
        id=f"demo/{name}",
        source="demo",
        prompt=prompt,
        entry_point=name,
        reference=reference,
        tests=tuple(entry["tests"]),
        task_text=doc,
    )
    problem.check_well_formed()
    return problem


@lru_cache(maxsize=1)
def _load(path: str) -> tuple[Problem, ...]:
    entries = yaml.safe_load(Path(path).read_text())
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of problems")
    problems = tuple(_assemble(entry, f"{path} entry {i}") for i, entry in enumerate(entries))
    ids = [p.id for p in problems]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate problem names {duplicates}")
    return problems


def load_demo_problems() -> list[Problem]:
    """All demo problems (API problems and specificity problems), in file order."""
    return list(_load(str(PROBLEMS_FILE)))


def training_texts() -> list[str]:
    """The full original solutions (`prompt + reference`) of every demo problem.

    This is what the small local models are trained on, so that they solve the demo benchmark
    with the original APIs before any edit (greedy decoding reproduces these texts).
    """
    return [problem.solution for problem in load_demo_problems()]


#: the APIs the demo problems were written around; the demo build selects among these only
DEMO_APIS = (
    "re.search",
    "math.sqrt",
    "collections.Counter",
    "heapq.nlargest",
    "sorted",
    "str.join",
    "statistics.mean",
    "itertools.chain",
)
