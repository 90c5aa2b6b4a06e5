"""The report's numbers: one list of row dicts per table, computed from the cells' counts.

Rates are fractions here (0..1); the writers turn them into percentages. Every cell of the grid
gets its rows, present or not, so a missing or failed cell is visible in each table. Deltas compare
an edited cell with the unedited baseline (method=none, same model, data and subset) on the
evaluation units both have: the same `(step, problem)` when the baseline ran the same regime, else the
same problem. For finished cells that is the whole subset; for a cell still running it keeps the
comparison fair.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from editsweep.report.aggregate import (
    PASS_KEYS,
    CellData,
    Unit,
    adoption_shares,
    error_counts,
    pass_metrics,
    read_cell_data,
)
from editsweep.report.cells import BASELINE_METHOD, DONE, MISSING, SUBSETS, Cell, Sweep, error_headline
from editsweep.scoring import API_ADOPTION_CLASSES, ERROR_CLASSES, drop_split

log = logging.getLogger(__name__)

INSTANT, SEQUENTIAL = "instant", "sequential"
#: methods in the paper's order; others follow alphabetically
METHOD_ORDER = ("none", "ft", "grace", "rome", "memit", "pmet")
KEY_COLUMNS = ("model", "method", "regime", "subset", "data", "seed", "state", "cell_id")


def method_rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method), "") if method in METHOD_ORDER else (len(METHOD_ORDER), method)


def subset_rank(subset: str) -> int:
    return SUBSETS.index(subset) if subset in SUBSETS else len(SUBSETS)


def row_order(row: dict) -> tuple:
    return (row["model"], row["data"], row["seed"], row["regime"], method_rank(row["method"]),
            subset_rank(row["subset"]), row.get("n_edits") or 0)


@dataclass
class Analysis:
    """A sweep's cells with their counts, and the lookups every table needs."""

    sweep: Sweep
    data: dict[int, CellData]       # id(cell) -> counts
    warnings: list[str]
    _cache: dict = field(default_factory=dict)
    _baseline_choice: dict = field(default_factory=dict)

    @classmethod
    def load(cls, sweep: Sweep, progress=None) -> "Analysis":
        data, warnings = {}, []
        present = sweep.present()
        iterator = progress(present) if progress else present
        for cell in iterator:
            cell_data = read_cell_data(cell)
            data[id(cell)] = cell_data
            where = f"{cell.key.label()} ({cell.path})"
            if cell_data.truncated_tail:
                warnings.append(f"{where}: the last line of samples.jsonl was cut off mid-write and skipped")
            if cell_data.duplicates:
                warnings.append(f"{where}: {cell_data.duplicates} duplicate samples (same step, problem and "
                                f"sample index) were ignored; the store should never hold any")
            if cell_data.uncommitted:
                after = ("" if cell_data.last_committed is None
                         else f" after the last committed step {cell_data.last_committed}")
                warnings.append(f"{where}: {cell_data.uncommitted} samples of a unit not committed yet{after} "
                                f"(progress.json) were left out; the cell recomputes them when it resumes")
        for path in sweep.unidentified:
            if (path / "error.txt").exists():
                warnings.append(f"{path}: failed before its cell started (no cell.json): "
                                f"{error_headline(path / 'error.txt')}")
            else:
                warnings.append(f"{path}: looks like a cell store but has no readable cell.json; not reported")
        analysis = cls(sweep=sweep, data=data, warnings=warnings)
        for cell in present:
            warnings.extend(analysis.check_result(cell))
        return analysis

    def check_result(self, cell: Cell) -> list[str]:
        """Compare a finished cell's own summary (result.json "metrics", per subset) with what the
        report computes from its samples; a difference means the store or one of the two is wrong."""
        stored = cell.result.get("metrics") if cell.state == DONE else None
        if not isinstance(stored, dict):
            return []
        problems = []
        for subset, metrics in stored.items():
            if not isinstance(metrics, dict) or subset not in self.cell_data(cell).units:
                continue
            last = self.last_step(cell, subset) if cell.key.regime == SEQUENTIAL else None
            units = self.units(cell, subset, None if last is None else {last})
            ours = pass_metrics(units.values())
            for metric in PASS_KEYS:
                theirs = metrics.get(metric)
                if theirs is None or ours[metric] is None:
                    continue
                if abs(float(theirs) - ours[metric]) > 1e-9:
                    problems.append(f"{cell.key.label()}: result.json says {subset} {metric} = {float(theirs):.6f}, "
                                    f"its samples give {ours[metric]:.6f}")
        return problems

    # ---- lookups ------------------------------------------------------------------------------

    def cell_data(self, cell: Cell) -> CellData:
        return self.data.get(id(cell)) or CellData()

    def subsets_of(self, cell: Cell) -> list[str]:
        """The subsets a cell has rows for: its own, plus any its samples carry."""
        own = list(cell.subsets)
        extra = [s for s in self.cell_data(cell).subsets() if s not in own]
        return own + sorted(extra, key=subset_rank)

    def cells(self, regime: str | None = None, edited_only: bool = False) -> list[Cell]:
        out = [c for c in self.sweep.cells if regime is None or c.key.regime == regime]
        if edited_only:
            out = [c for c in out if c.key.method != BASELINE_METHOD]
        return out

    def baseline(self, cell: Cell, subset: str) -> Cell | None:
        """The unedited cell to compare `cell` with: same model, data and subset; same regime and
        seed preferred; only cells with samples for that subset qualify."""
        key = (id(cell), subset)
        if key not in self._baseline_choice:
            self._baseline_choice[key] = self._find_baseline(cell, subset)
        return self._baseline_choice[key]

    def _find_baseline(self, cell: Cell, subset: str) -> Cell | None:
        candidates = [
            c for c in self.sweep.present()
            if c.key.method == BASELINE_METHOD and c.key.model == cell.key.model and c.key.data == cell.key.data
            and subset in c.subsets and self.cell_data(c).units.get(subset)
        ]
        candidates.sort(key=lambda c: (c.key.regime != cell.key.regime, c.key.seed != cell.key.seed,
                                       c.state != DONE, c.key.regime, c.key.seed))
        return candidates[0] if candidates else None

    def steps(self, cell: Cell, subset: str) -> list[int]:
        """The committed steps of a cell with samples of `subset` (each a complete evaluation point)."""
        return sorted(self._units_by_step(cell, subset))

    def units(self, cell: Cell, subset: str, steps: set[int] | None) -> dict[tuple[int, str], Unit]:
        units = self.cell_data(cell).units.get(subset, {})
        if steps is None:
            return units
        if len(steps) == 1:
            return self._units_by_step(cell, subset).get(next(iter(steps)), {})
        return {key: unit for key, unit in units.items() if key[0] in steps}

    def _units_by_step(self, cell: Cell, subset: str) -> dict[int, dict]:
        key = ("by_step", id(cell), subset)
        if key not in self._cache:
            split: dict[int, dict] = {}
            for unit_key, unit in self.cell_data(cell).units.get(subset, {}).items():
                split.setdefault(unit_key[0], {})[unit_key] = unit
            self._cache[key] = split
        return self._cache[key]

    def n_edits(self, cell: Cell, step: int) -> int:
        return self.cell_data(cell).n_edits.get(step, step)

    def last_step(self, cell: Cell, subset: str) -> int | None:
        steps = self.steps(cell, subset)
        return steps[-1] if steps else None

    # ---- baseline comparison ------------------------------------------------------------------

    def _baseline_values(self, base: Cell, subset: str, by_step: bool) -> dict:
        """pass@k of the baseline's units, keyed (step, problem) or, pooling its steps, by problem."""
        key = (id(base), subset, by_step)
        if key not in self._cache:
            values: dict = {}
            if by_step:
                for unit_key, unit in self.units(base, subset, None).items():
                    values[unit_key] = {m: unit.value(m) for m in PASS_KEYS}
            else:
                pooled: dict[str, list[Unit]] = {}
                for (_, problem), unit in self.units(base, subset, None).items():
                    pooled.setdefault(problem, []).append(unit)
                for problem, units in pooled.items():
                    values[problem] = {}
                    for metric in PASS_KEYS:
                        kept = [v for v in (u.value(metric) for u in units) if v is not None]
                        values[problem][metric] = sum(kept) / len(kept) if kept else None
            self._cache[key] = values
        return self._cache[key]

    def matched(self, cell: Cell, subset: str, units: dict[tuple[int, str], Unit]):
        """(baseline cell, {metric: (edited mean, baseline mean, n matched units)}) on shared units."""
        base = self.baseline(cell, subset)
        if base is None or not units:
            return base, {}
        same_regime = base.key.regime == cell.key.regime
        base_values = self._baseline_values(base, subset, by_step=same_regime)
        sums = {m: [0.0, 0.0, 0] for m in PASS_KEYS}
        for (step, problem), unit in units.items():
            other = base_values.get((step, problem) if same_regime else problem)
            if other is None:
                continue
            for metric in PASS_KEYS:
                base_value = other[metric]
                if base_value is None:
                    continue
                value = unit.value(metric)
                if value is None:
                    continue
                total = sums[metric]
                total[0] += value
                total[1] += base_value
                total[2] += 1
        return base, {m: (e / n, b / n, n) for m, (e, b, n) in sums.items() if n}


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
