"""The report's numbers: one list of row dicts per table (RQ1-RQ4), computed from an Analysis.

Rates are fractions here (0..1); the writers turn them into percentages. Every cell of the grid
gets its rows, present or not, so a missing or failed cell is visible in each table.
"""

from __future__ import annotations

from editsweep.report.aggregate import PASS_KEYS, adoption_shares, error_counts, pass_metrics
from editsweep.report.analysis import (
    INSTANT,
    KEY_COLUMNS,
    SEQUENTIAL,
    Analysis,
    method_rank,
    row_order,
    subset_rank,
)
from editsweep.report.cells import BASELINE_METHOD, MISSING, Cell
from editsweep.scoring import API_ADOPTION_CLASSES, ERROR_CLASSES, drop_split

def _key_columns(cell: Cell, subset: str) -> dict:
    return {"model": cell.key.model, "method": cell.key.method, "regime": cell.key.regime, "subset": subset,
            "data": cell.key.data, "seed": cell.key.seed, "state": cell.state, "cell_id": cell.cell_id}


def _empty(columns) -> dict:
    return {name: None for name in columns}


RQ1_METRICS = PASS_KEYS + ("partial_credit",)
DELTA_KEYS = tuple(f"delta/{m}" for m in PASS_KEYS)


def rq1_rows(analysis: Analysis) -> list[dict]:
    """Instant editing: pass@k at the three levels per model x method x subset, with the change from
    the baseline. Baseline rows (method none) are the reference; they carry no delta."""
    rows = []
    # baselines whose regime is neither (a sweep may label them e.g. "none") are the instant reference too
    other_baselines = [c for c in analysis.cells() if c.key.method == BASELINE_METHOD
                       and c.key.regime not in (INSTANT, SEQUENTIAL)]
    for cell in analysis.cells(INSTANT) + other_baselines:
        for subset in analysis.subsets_of(cell):
            row = _key_columns(cell, subset)
            units = analysis.units(cell, subset, None)
            row["n_units"] = len(units)
            row["n_samples"] = sum(u.n for u in units.values())
            row.update(pass_metrics(units.values()) if units else _empty(RQ1_METRICS))
            row.update(_empty(DELTA_KEYS))
            row["n_matched_units"] = None
            row["baseline_cell"] = None
            if cell.key.method != BASELINE_METHOD:
                base, matched = analysis.matched(cell, subset, units)
                row["baseline_cell"] = base.cell_id if base else None
                for metric, (edited, baseline, n) in matched.items():
                    row[f"delta/{metric}"] = edited - baseline
                if "compile@1" in matched:
                    row["n_matched_units"] = matched["compile@1"][2]
            rows.append(row)
    return sorted(rows, key=row_order)


def rq2_rows(analysis: Analysis) -> list[dict]:
    """Sequential editing: the three levels at each completed evaluation point, the baseline on the
    same problems, and the change from it. A cell without points yet gets one row with its state."""
    rows = []
    for cell in analysis.cells(SEQUENTIAL):
        for subset in analysis.subsets_of(cell):
            steps = analysis.steps(cell, subset)
            if not steps:
                row = _key_columns(cell, subset)
                row.update({"step": None, "n_edits": None, "n_units": 0, "n_samples": 0})
                row.update(_empty(RQ1_METRICS))
                row.update({f"baseline/{m}": None for m in PASS_KEYS})
                row.update(_empty(DELTA_KEYS))
                row["baseline_cell"] = None
                rows.append(row)
                continue
            for step in steps:
                units = analysis.units(cell, subset, {step})
                row = _key_columns(cell, subset)
                row.update({"step": step, "n_edits": analysis.n_edits(cell, step), "n_units": len(units),
                            "n_samples": sum(u.n for u in units.values())})
                row.update(pass_metrics(units.values()))
                row.update({f"baseline/{m}": None for m in PASS_KEYS})
                row.update(_empty(DELTA_KEYS))
                row["baseline_cell"] = None
                if cell.key.method != BASELINE_METHOD:
                    base, matched = analysis.matched(cell, subset, units)
                    row["baseline_cell"] = base.cell_id if base else None
                    for metric, (edited, baseline, _n) in matched.items():
                        row[f"baseline/{metric}"] = baseline
                        row[f"delta/{metric}"] = edited - baseline
                rows.append(row)
    return sorted(rows, key=row_order)


def _evaluation(analysis: Analysis, cell: Cell, subset: str) -> tuple[set[int] | None, str]:
    """Steps that RQ3/RQ4 rows cover: instant pools all; sequential uses the last completed point."""
    if cell.key.regime != SEQUENTIAL:
        return None, "all steps" if cell.state != MISSING else ""
    last = analysis.last_step(cell, subset)
    if last is None:
        return set(), ""
    return {last}, f"after {analysis.n_edits(cell, last)} edits"


ADOPTION_COLUMNS = (("n_adoption_samples",) + tuple(f"adoption/{c}" for c in API_ADOPTION_CLASSES)
                    + tuple(f"count/{c}" for c in API_ADOPTION_CLASSES)
                    + ("n_specificity_samples", "spurious_adoption", "count/spurious_adoption"))


def rq3_rows(analysis: Analysis) -> list[dict]:
    """Adoption: shares of correct / incorrect adoption, workaround, legacy and other failure on API
    problems, and spurious adoption on specificity problems."""
    rows = []
    for cell in analysis.cells():
        for subset in analysis.subsets_of(cell):
            steps, evaluation = _evaluation(analysis, cell, subset)
            row = _key_columns(cell, subset)
            row["evaluation"] = evaluation
            if cell.state == MISSING or steps == set():
                row.update(_empty(ADOPTION_COLUMNS))
            else:
                row.update(adoption_shares(analysis.cell_data(cell).adoption, subset, steps))
            rows.append(row)
    return sorted(rows, key=row_order)


ERROR_COLUMNS = ("n_samples", "n_failing_samples") + tuple(f"errors/{c}" for c in ERROR_CLASSES) \
    + tuple(f"share/{c}" for c in ERROR_CLASSES) + ("n_harness_errors",)


def rq4_error_rows(analysis: Analysis) -> list[dict]:
    """The error taxonomy of failing samples: count per class and share of the failing samples."""
    rows = []
    for cell in analysis.cells():
        for subset in analysis.subsets_of(cell):
            steps, evaluation = _evaluation(analysis, cell, subset)
            row = _key_columns(cell, subset)
            row["evaluation"] = evaluation
            if cell.state == MISSING or steps == set():
                row.update(_empty(ERROR_COLUMNS))
            else:
                counts = error_counts(analysis.cell_data(cell), subset, steps)
                units = analysis.units(cell, subset, steps)
                row["n_samples"] = sum(u.n for u in units.values())
                row.update(counts)
                failing = counts["n_failing_samples"]
                for name in ERROR_CLASSES:
                    row[f"share/{name}"] = counts[f"errors/{name}"] / failing if failing else None
            rows.append(row)
    return sorted(rows, key=row_order)


DROP_COLUMNS = ("baseline_cell", "n_matched_units", "baseline/compile@1", "baseline/full@1", "compile@1", "full@1",
                "total_drop", "compile_drop", "post_compile_drop", "compile_share_of_drop")


def rq4_drop_rows(analysis: Analysis) -> list[dict]:
    """The drop of full pass@1 from the baseline, split (scoring.drop_split) into samples that no
    longer compile and samples that compile but fail their tests; on the units both cells share."""
    rows = []
    for cell in analysis.cells(edited_only=True):
        for subset in analysis.subsets_of(cell):
            steps, evaluation = _evaluation(analysis, cell, subset)
            row = _key_columns(cell, subset)
            row["evaluation"] = evaluation
            row.update(_empty(DROP_COLUMNS))
            if cell.state != MISSING and steps != set():
                base, matched = analysis.matched(cell, subset, analysis.units(cell, subset, steps))
                row["baseline_cell"] = base.cell_id if base else None
                if "compile@1" in matched and "full@1" in matched:
                    edited = {m: matched[m][0] for m in ("compile@1", "full@1")}
                    baseline = {m: matched[m][1] for m in ("compile@1", "full@1")}
                    split = drop_split(baseline, edited, k=1)
                    row.update({"n_matched_units": matched["compile@1"][2],
                                "baseline/compile@1": baseline["compile@1"], "baseline/full@1": baseline["full@1"],
                                "compile@1": edited["compile@1"], "full@1": edited["full@1"], **split})
                    # a share only reads as one when both parts are losses
                    parts_are_losses = split["compile_drop"] >= 0 and split["post_compile_drop"] >= 0
                    total = split["total_drop"]
                    row["compile_share_of_drop"] = (split["compile_drop"] / total
                                                    if total > 0 and parts_are_losses else None)
            rows.append(row)
    return sorted(rows, key=row_order)
