"""Aggregate the scored samples of one evaluation point into the metrics dict (keys: see
``editsweep/scoring/__init__.py``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

from editsweep.scoring.adoption import API_ADOPTION_CLASSES, SPECIFICITY_CLASSES
from editsweep.scoring.levels import LEVELS, fully_passed, is_valid, partial_credit, sample_levels
from editsweep.scoring.passk import mean_pass_at_k
from editsweep.scoring.taxonomy import ERROR_CLASSES

DEFAULT_KS = (1, 3, 5)


def metric_keys(ks: Sequence[int] = DEFAULT_KS) -> list[str]:
    """Every key :func:`summarize` returns, in a stable order."""
    keys = ["n_problems", "n_samples", "n_harness_errors"]
    keys += [f"{level}@{k}" for level in LEVELS for k in ks]
    keys += [f"n_problems_below@{k}" for k in ks]
    keys += ["partial_credit", "n_adoption_samples"]
    keys += [f"adoption/{name}" for name in API_ADOPTION_CLASSES]
    keys += ["n_specificity_samples", "spurious_adoption", "n_failing_samples"]
    keys += [f"errors/{name}" for name in ERROR_CLASSES]
    return keys


def summarize(samples: Iterable[Mapping[str, Any]], ks: Sequence[int] = DEFAULT_KS) -> dict[str, Any]:
    """Metrics of the scored samples of *one* evaluation point (cell-store ``samples.jsonl`` rows).

    Harness errors are left out of everything but ``n_harness_errors``. pass@k uses each
    problem's valid samples; a problem with fewer than ``k`` valid samples is left out at that
    ``k`` and counted in ``n_problems_below@k``. Rates with an empty denominator are None.
    """
    rows = _validated(samples)
    valid = [row for row in rows if is_valid(row)]
    by_problem: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in valid:
        by_problem[str(row["problem_id"])].append(row)

    metrics: dict[str, Any] = {
        "n_problems": len(by_problem),
        "n_samples": len(valid),
        "n_harness_errors": len(rows) - len(valid),
    }
    levels_by_problem = {pid: [sample_levels(r) for r in group] for pid, group in by_problem.items()}
    for level in LEVELS:
        counts = [(len(levels), sum(lv[level] for lv in levels)) for levels in levels_by_problem.values()]
        for k in ks:
            metrics[f"{level}@{k}"], short = mean_pass_at_k(counts, k)
            metrics[f"n_problems_below@{k}"] = short
    metrics["partial_credit"] = _mean_partial_credit(by_problem)
    metrics.update(_adoption_shares(valid))
    metrics.update(_error_counts(valid))
    return {key: metrics[key] for key in metric_keys(ks)}


def problem_counts(samples: Iterable[Mapping[str, Any]], level: str) -> list[tuple[int, int]]:
    """``(n valid samples, n at the level)`` per problem, for :func:`pass_at_k_ci` and friends."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r} (expected one of {', '.join(LEVELS)})")
    by_problem: dict[str, list[bool]] = defaultdict(list)
    for row in _validated(samples):
        if is_valid(row):
            by_problem[str(row["problem_id"])].append(sample_levels(row)[level])
    return [(len(flags), sum(flags)) for flags in by_problem.values()]


def _validated(samples: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    rows = list(samples)
    seen: set[tuple[str, Any]] = set()
    steps = set()
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"sample #{index} is a {type(row).__name__}, not a dict")
        for key in ("problem_id", "status"):
            if key not in row:
                raise ValueError(f"sample #{index} has no {key!r} field")
        try:
            is_valid(row)
        except ValueError as err:
            raise ValueError(f"sample #{index} ({row['problem_id']}): {err}") from None
        if row.get("sample") is not None:
            key = (str(row["problem_id"]), row["sample"])
            if key in seen:
                raise ValueError(f"sample #{index}: duplicate sample {row['sample']!r} of problem {row['problem_id']!r}")
            seen.add(key)
        steps.add(row.get("step"))
        adoption = row.get("adoption")
        if adoption is not None and adoption not in API_ADOPTION_CLASSES + SPECIFICITY_CLASSES:
            raise ValueError(f"sample #{index}: unknown adoption class {adoption!r}")
        error = row.get("error_class")
        if error is not None and error not in ERROR_CLASSES:
            raise ValueError(f"sample #{index}: unknown error class {error!r}")
    if len(steps) > 1:
        raise ValueError(f"summarize takes one evaluation point; got samples of steps {sorted(steps, key=str)}")
    return rows


def _mean_partial_credit(by_problem: Mapping[str, list[Mapping[str, Any]]]) -> float | None:
    """Mean over problems of the mean per-sample credit, so every problem weighs the same."""
    per_problem = []
    for group in by_problem.values():
        credits = [c for c in (partial_credit(r) for r in group) if c is not None]
        if credits:
            per_problem.append(sum(credits) / len(credits))
    return sum(per_problem) / len(per_problem) if per_problem else None


def _adoption_shares(valid: list[Mapping[str, Any]]) -> dict[str, Any]:
    api_classes = [r.get("adoption") for r in valid if r.get("adoption") in API_ADOPTION_CLASSES]
    spec_classes = [r.get("adoption") for r in valid if r.get("adoption") in SPECIFICITY_CLASSES]
    out: dict[str, Any] = {"n_adoption_samples": len(api_classes)}
    for name in API_ADOPTION_CLASSES:
        out[f"adoption/{name}"] = api_classes.count(name) / len(api_classes) if api_classes else None
    out["n_specificity_samples"] = len(spec_classes)
    out["spurious_adoption"] = spec_classes.count("spurious_adoption") / len(spec_classes) if spec_classes else None
    return out


def _error_counts(valid: list[Mapping[str, Any]]) -> dict[str, Any]:
    classes = [r.get("error_class") for r in valid if r.get("error_class") is not None]
    out: dict[str, Any] = {"n_failing_samples": sum(not fully_passed(r) for r in valid)}
    for name in ERROR_CLASSES:
        out[f"errors/{name}"] = classes.count(name)
    return out
