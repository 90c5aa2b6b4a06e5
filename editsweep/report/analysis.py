"""A sweep's cells with their streamed counts, and the lookups every table needs: which units a row
covers, which unedited cell is its baseline, and the comparison with it on the units both share.

Deltas compare an edited cell with the unedited baseline (method=none, same model, data and subset)
on the evaluation units both have: the same `(step, problem)` when the baseline ran the same regime,
else the same problem (its steps pooled). For finished cells that is the whole subset; for a cell
still running it keeps the comparison fair.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from editsweep.report.aggregate import PASS_KEYS, CellData, Unit, pass_metrics, read_cell_data
from editsweep.report.cells import BASELINE_METHOD, DONE, SUBSETS, Cell, Sweep, error_headline

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


def shared_coordinates(cells: list[Cell]) -> list[str]:
    """A note per set of cells with the same coordinates but different configs (e.g. cells of an
    older small model left in the sweep after retraining, or a hand-changed hyperparameter): the
    tables show them side by side, told apart by a `cell_id` column, and the note says what differs."""
    from editsweep.tracking import flatten

    groups: dict = {}
    for cell in cells:
        groups.setdefault(cell.key, []).append(cell)
    notes = []
    for key, group in groups.items():
        if len(group) < 2:
            continue
        configs = [flatten(c.config, sep=".") for c in group]
        names = sorted(set().union(*configs))
        differ = [n for n in names if len({repr(c.get(n)) for c in configs}) > 1]
        shown = ", ".join(f"{n} ({' / '.join(str(c.get(n, '–')) for c in configs)})" for n in differ[:4])
        more = f" and {len(differ) - 4} more" if len(differ) > 4 else ""
        notes.append(f"`{key.label()}`: {len(group)} cells share these coordinates "
                     f"(cell ids {', '.join(c.cell_id for c in group)}); their configs differ in "
                     f"{shown or 'nothing recorded'}{more}. The tables show them side by side with their "
                     f"`cell_id`; give each version of an experiment its own `sweep.name` to keep them apart")
    return notes


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
        warnings.extend(shared_coordinates(present))
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
