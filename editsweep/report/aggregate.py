"""Stream a cell's samples.jsonl once into small per-unit counts that every table is computed from.

A unit is one evaluation of one problem: `(step, problem_id)`. pass@k is the mean over units of the
unbiased per-unit estimate (editsweep.scoring), which for one step is exactly `scoring.summarize`; in
the instant regime the units of all steps are pooled (each API's problems are evaluated once, under
that API's edit). Only counts are kept, never the completions, so hundreds of thousands of samples
take seconds and little memory.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

from editsweep.report.cells import Cell, ReportInputError
from editsweep.scoring import (
    API_ADOPTION_CLASSES,
    DEFAULT_KS,
    ERROR_CLASSES,
    LEVELS,
    SPECIFICITY_CLASSES,
    is_valid,
    partial_credit,
    pass_at_k,
    sample_levels,
)

log = logging.getLogger(__name__)

REQUIRED_SAMPLE_FIELDS = ("step", "problem_id", "subset", "status")
#: the pass@k metric names of a row, in table order: compile@1 … full@5
PASS_KEYS = tuple(f"{level}@{k}" for level in LEVELS for k in DEFAULT_KS)
_METRIC_PARTS = {f"{level}@{k}": (level, k) for level in LEVELS for k in DEFAULT_KS}


#: scoring.pass_at_k memoised: a sweep has few distinct (n, c, k) and millions of unit evaluations
cached_pass_at_k = lru_cache(maxsize=None)(pass_at_k)


@dataclass(slots=True)
class Unit:
    """Counts of the valid samples of one problem at one evaluation point."""

    n: int = 0
    compile: int = 0
    partial: int = 0
    full: int = 0
    credit_sum: float = 0.0
    credit_n: int = 0

    def value(self, metric: str) -> float | None:
        """pass@k of this unit for a metric name like "full@3"; None if it has fewer than k samples."""
        level, k = _METRIC_PARTS[metric]
        return cached_pass_at_k(self.n, getattr(self, level), k) if self.n >= k else None


@dataclass
class CellData:
    """What one cell's samples add up to, split by the sample's subset and step."""

    units: dict[str, dict[tuple[int, str], Unit]] = field(default_factory=dict)   # subset -> unit key -> counts
    n_edits: dict[int, int] = field(default_factory=dict)                       # step -> edits applied
    adoption: Counter = field(default_factory=Counter)                          # (subset, step, class)
    errors: Counter = field(default_factory=Counter)                            # (subset, step, class)
    failing: Counter = field(default_factory=Counter)                           # (subset, step) -> not full
    harness_errors: Counter = field(default_factory=Counter)                    # (subset, step)
    last_committed: int | None = None        # progress.json's last_step: later records are uncommitted
    uncommitted: int = 0                     # samples of a unit not committed yet (left out)
    duplicates: int = 0
    truncated_tail: bool = False

    def subsets(self) -> list[str]:
        return list(self.units)


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each line; a last line cut off mid-write is skipped with a warning.

    Any other line that is not a JSON object is an error naming the file and line: the store is
    append-only and written whole lines at a time, so it means the store is damaged.
    """
    decode = json.JSONDecoder().decode
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                value = decode(line)
            except json.JSONDecodeError as exc:
                if not line.strip():
                    continue
                if not line.endswith("\n"):  # only the last line can lack its newline: a write cut short
                    log.warning("%s:%d: last line is incomplete (a write in progress?); skipped", path, number)
                    raise _TruncatedTail() from None
                raise ReportInputError(f"{path}:{number}: not valid JSON ({exc})") from None
            if not isinstance(value, dict):
                raise ReportInputError(f"{path}:{number}: expected a JSON object, found {type(value).__name__}")
            yield number, value


class _TruncatedTail(Exception):
    """Internal: the file ended in a partial line."""


def committed_limit(cell: Cell) -> float | None:
    """The last committed step (editsweep.store: progress.json is the commit point); records of later
    steps belong to a unit still being written and are recomputed on resume, so the report leaves them
    out. None means every record counts (a finished store without progress.json)."""
    last = cell.progress.get("last_step") if cell.progress else None
    if last is not None:
        return int(last)
    has_progress = cell.path is not None and (cell.path / "progress.json").exists()
    if cell.state == "done" and not has_progress:
        return None
    return float("-inf")  # nothing committed yet


def read_cell_data(cell: Cell) -> CellData:
    """Stream `samples.jsonl` of a present cell into counts (an empty CellData if it has none yet)."""
    data = CellData()
    if cell.path is None:
        return data
    limit = committed_limit(cell)
    data.last_committed = None if limit is None or limit == float("-inf") else int(limit)
    path = cell.path / "samples.jsonl"
    if not path.exists():
        return data
    seen: set[tuple] = set()
    scorer = _SampleScorer()
    try:
        for number, row in iter_jsonl(path):
            _add_sample(data, row, seen, path, number, limit, scorer)
    except _TruncatedTail:
        data.truncated_tail = True
    return data


class _SampleScorer:
    """scoring's per-sample decisions, memoised on exactly the fields each one reads: a sweep has a
    handful of distinct (status, compiled, tests_passed, tests_total) combinations and hundreds of
    thousands of samples."""

    def __init__(self):
        self._valid: dict = {}
        self._levels: dict = {}
        self._credit: dict = {}

    def valid(self, row: dict) -> bool:
        status = row["status"]
        if status not in self._valid:
            self._valid[status] = is_valid(row)
        return self._valid[status]

    def levels(self, row: dict) -> tuple[bool, bool, bool]:
        key = (row["status"], row.get("compiled"), row.get("tests_passed"))
        if key not in self._levels:
            levels = sample_levels(row)
            self._levels[key] = tuple(levels[level] for level in LEVELS)
        return self._levels[key]

    def credit(self, row: dict) -> float | None:
        key = (row.get("tests_passed"), row.get("tests_total"))
        if key not in self._credit:
            self._credit[key] = partial_credit(row)
        return self._credit[key]


def _add_sample(data: CellData, row: dict, seen: set, path: Path, number: int, limit: float | None,
                scorer: _SampleScorer) -> None:
    try:
        step = int(row["step"])
        problem, subset = row["problem_id"], row["subset"]
    except (KeyError, TypeError, ValueError):
        raise _bad_sample(row, path, number) from None
    if problem is None or subset is None or row.get("status") is None:
        raise _bad_sample(row, path, number)
    problem, subset = str(problem), str(subset)
    if limit is not None and step > limit:
        data.uncommitted += 1
        return
    index = row.get("sample")
    if index is not None:
        identity = (step, problem, index)
        if identity in seen:  # the store promises none; count it, keep the first
            data.duplicates += 1
            return
        seen.add(identity)
    try:
        valid = scorer.valid(row)
        if valid:
            compiled, partial, full = scorer.levels(row)
            credit = scorer.credit(row)
    except ValueError as exc:
        raise ReportInputError(f"{path}:{number}: {exc}") from None
    if step not in data.n_edits and row.get("n_edits") is not None:
        data.n_edits[step] = int(row["n_edits"])
    if not valid:
        data.harness_errors[subset, step] += 1
        return
    units = data.units.get(subset)
    if units is None:
        units = data.units[subset] = {}
    unit = units.get((step, problem))
    if unit is None:
        unit = units[step, problem] = Unit()
    unit.n += 1
    unit.compile += compiled
    unit.partial += partial
    unit.full += full
    if credit is not None:
        unit.credit_sum += credit
        unit.credit_n += 1
    adoption = row.get("adoption")
    if adoption is not None:
        if adoption not in _ADOPTION_NAMES:
            raise ReportInputError(f"{path}:{number}: unknown adoption class {adoption!r}")
        data.adoption[subset, step, adoption] += 1
    if not full:
        data.failing[subset, step] += 1
        error = row.get("error_class")
        if error is not None:
            if error not in _ERROR_NAMES:
                raise ReportInputError(f"{path}:{number}: unknown error class {error!r}")
            data.errors[subset, step, error] += 1


def _bad_sample(row: dict, path: Path, number: int) -> ReportInputError:
    missing = [name for name in REQUIRED_SAMPLE_FIELDS if row.get(name) is None]
    if missing:
        return ReportInputError(f"{path}:{number}: sample has no {', '.join(missing)}")
    return ReportInputError(f"{path}:{number}: step {row['step']!r} is not an integer")


_ADOPTION_NAMES = frozenset(API_ADOPTION_CLASSES + SPECIFICITY_CLASSES)
_ERROR_NAMES = frozenset(ERROR_CLASSES)


# ---- metrics over a selection of units -------------------------------------------------------

def pass_metrics(units: Iterable[Unit]) -> dict[str, float | None]:
    """compile/partial/full pass@k over the units plus the partial credit.

    The mean of scoring.pass_at_k over units (as scoring.mean_pass_at_k, leaving out units with fewer
    than k samples), taken over the distinct (n, c) pairs with their multiplicity so that it stays
    fast on large cells.
    """
    units = list(units)
    out: dict[str, float | None] = {}
    for level in LEVELS:
        pairs = Counter((u.n, getattr(u, level)) for u in units)
        for k in DEFAULT_KS:
            kept = [(n, c, w) for (n, c), w in pairs.items() if n >= k]
            weight = sum(w for _, _, w in kept)
            out[f"{level}@{k}"] = (sum(w * cached_pass_at_k(n, c, k) for n, c, w in kept) / weight
                                   if weight else None)
    credits = [u.credit_sum / u.credit_n for u in units if u.credit_n]
    out["partial_credit"] = sum(credits) / len(credits) if credits else None
    return out


def adoption_shares(counts: Counter, subset: str, steps: set[int] | None) -> dict[str, float | int | None]:
    """Shares of the API adoption classes and of spurious adoption, as in scoring.summarize."""
    def total(name: str) -> int:
        return sum(v for (s, step, c), v in counts.items()
                   if s == subset and c == name and (steps is None or step in steps))

    api = {name: total(name) for name in API_ADOPTION_CLASSES}
    spec = {name: total(name) for name in SPECIFICITY_CLASSES}
    n_api, n_spec = sum(api.values()), sum(spec.values())
    out: dict[str, float | int | None] = {"n_adoption_samples": n_api}
    for name, count in api.items():
        out[f"adoption/{name}"] = count / n_api if n_api else None
        out[f"count/{name}"] = count
    out["n_specificity_samples"] = n_spec
    out["spurious_adoption"] = spec["spurious_adoption"] / n_spec if n_spec else None
    out["count/spurious_adoption"] = spec["spurious_adoption"]
    return out


def error_counts(data: CellData, subset: str, steps: set[int] | None) -> dict[str, int]:
    """Failing samples and their taxonomy classes (counts) over the chosen steps."""
    out = {"n_failing_samples": sum(v for (s, step), v in data.failing.items()
                                    if s == subset and (steps is None or step in steps))}
    for name in ERROR_CLASSES:
        out[f"errors/{name}"] = sum(v for (s, step, c), v in data.errors.items()
                                    if s == subset and c == name and (steps is None or step in steps))
    out["n_harness_errors"] = sum(v for (s, step), v in data.harness_errors.items()
                                  if s == subset and (steps is None or step in steps))
    return out
