"""`editsweep report SWEEP_DIR [--out DIR]`: paper-style tables and plots from the cell stores alone.

Reads `<sweep_dir>/<cell>/` (cell.json, samples.jsonl, progress.json, result.json, error.txt; see
docs/architecture.md "Cell store") and writes `report.md`, `tables/*.csv` and `figures/*.png`,
organised by the study's four questions. A sweep still running can be reported: only committed
steps count, and cells that are running, failed or missing are marked as such everywhere.

Modules: `cells` (find cells, their state, the missing ones), `aggregate` (stream samples into
per-unit counts), `analysis` (units, baselines, matched comparisons), `tables` (the rows of each
table), `figures`, `markdown`, `formatting`.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

def _csv_columns() -> dict[str, list[str]]:
    """The columns of each CSV under tables/, in order (editsweep.report.tables says what they mean)."""
    from editsweep.report.aggregate import PASS_KEYS
    from editsweep.report.analysis import KEY_COLUMNS
    from editsweep.report.tables import ADOPTION_COLUMNS, DELTA_KEYS, DROP_COLUMNS, ERROR_COLUMNS, RQ1_METRICS

    keys = list(KEY_COLUMNS)
    return {
        "rq1_instant": keys + ["n_units", "n_samples", *RQ1_METRICS, *DELTA_KEYS, "n_matched_units", "baseline_cell"],
        "rq2_sequential": keys + ["step", "n_edits", "n_units", "n_samples", *RQ1_METRICS,
                                  *(f"baseline/{m}" for m in PASS_KEYS), *DELTA_KEYS, "baseline_cell"],
        "rq3_adoption": keys + ["evaluation", *ADOPTION_COLUMNS],
        "rq4_errors": keys + ["evaluation", *ERROR_COLUMNS],
        "rq4_drop_split": keys + ["evaluation", *DROP_COLUMNS],
        "cells": ["model", "method", "regime", "subset", "data", "seed", "state", "cell_id", "path",
                  "edit_steps", "last_committed_step", "n_samples", "uncommitted_samples", "error"],
    }


def _cell_rows(analysis) -> list[dict]:
    rows = []
    for cell in analysis.sweep.cells:
        data = analysis.cell_data(cell)
        rows.append({"model": cell.key.model, "method": cell.key.method, "regime": cell.key.regime,
                     "subset": cell.key.subset, "data": cell.key.data, "seed": cell.key.seed, "state": cell.state,
                     "cell_id": cell.cell_id, "path": str(cell.path or ""), "edit_steps": cell.edit_steps,
                     "last_committed_step": data.last_committed,
                     "n_samples": sum(u.n for units in data.units.values() for u in units.values()),
                     "uncommitted_samples": data.uncommitted, "error": cell.error_summary})
    return rows


def _draw_figures(results: dict[str, list[dict]], fig_dir: Path) -> dict[str, list[Path]]:
    """Four figures per model (per model, data and seed when the sweep varies those)."""
    from tqdm import tqdm

    from editsweep.report import figures as plots

    all_rows = [r for rows in results.values() for r in rows]
    variants = sorted({(r["model"], r["data"], r["seed"]) for r in all_rows})
    vary_data = len({v[1] for v in variants}) > 1
    vary_seed = len({v[2] for v in variants}) > 1
    drawn: dict[str, list[Path]] = {"rq1": [], "rq2": [], "rq3": [], "rq4": []}
    for model, data, seed in tqdm(variants, desc="drawing figures", unit="model", leave=False):
        def pick(name: str) -> list[dict]:
            return [r for r in results[name] if (r["model"], r["data"], r["seed"]) == (model, data, seed)]

        label = model + (f", data {data}" if vary_data else "") + (f", seed {seed}" if vary_seed else "")
        stem = "".join(ch if ch.isalnum() or ch in "-_." else "_"
                       for ch in "_".join([model] + ([data] if vary_data else []) + ([f"s{seed}"] if vary_seed else [])))
        if pick("rq1_instant"):
            drawn["rq1"].append(plots.rq1_figure(pick("rq1_instant"), label, fig_dir / f"rq1_instant_{stem}.png"))
        if any(r["method"] != "none" for r in pick("rq2_sequential")):
            drawn["rq2"].append(plots.rq2_figure(pick("rq2_sequential"), label, fig_dir / f"rq2_sequential_{stem}.png"))
        if pick("rq3_adoption"):
            drawn["rq3"].append(plots.rq3_figure(pick("rq3_adoption"), label, fig_dir / f"rq3_adoption_{stem}.png"))
        if pick("rq4_errors"):
            drawn["rq4"].append(plots.rq4_figure(pick("rq4_errors"), pick("rq4_drop_split"), label,
                                                 fig_dir / f"rq4_failures_{stem}.png"))
        log.info("figures for %s drawn", label)
    return drawn


def build_report(sweep_dir: Path, out_dir: Path | None = None, figures: bool = True) -> Path:
    """Write report.md, tables/*.csv and figures/*.png for a sweep; returns the path of report.md."""
    from tqdm import tqdm

    from editsweep.report import markdown, tables
    from editsweep.report.analysis import Analysis
    from editsweep.report.cells import discover
    from editsweep.report.formatting import write_csv

    started = time.monotonic()
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir / "report"
    sweep = discover(sweep_dir)
    analysis = Analysis.load(
        sweep, progress=lambda cells: tqdm(cells, desc="reading cell stores", unit="cell", leave=False))
    log.info("read %d cell stores in %.1f s", len(sweep.present()), time.monotonic() - started)
    results = {
        "rq1_instant": tables.rq1_rows(analysis),
        "rq2_sequential": tables.rq2_rows(analysis),
        "rq3_adoption": tables.rq3_rows(analysis),
        "rq4_errors": tables.rq4_error_rows(analysis),
        "rq4_drop_split": tables.rq4_drop_rows(analysis),
    }
    columns = _csv_columns()
    for name, rows in {**results, "cells": _cell_rows(analysis)}.items():
        write_csv(out_dir / "tables" / f"{name}.csv", rows, columns[name])

    drawn = _draw_figures(results, out_dir / "figures") if figures else {}
    report = out_dir / "report.md"
    report.write_text(markdown.render(analysis, results, drawn, out_dir))
    counts = sweep.counts()
    log.info("report written to %s in %.1f s (%s)", report, time.monotonic() - started,
             ", ".join(f"{n} {state}" for state, n in counts.items()))
    return report


def run(args: argparse.Namespace) -> int:
    from editsweep.report.cells import ReportInputError

    try:
        report = build_report(args.sweep_dir, args.out, figures=not args.no_figures)
    except ReportInputError as exc:
        log.error("%s", exc)
        return 2
    print(report)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="tables and plots of a sweep from its cell stores",
        description="Paper-style tables and plots of a sweep from its cell stores alone: report.md, "
                    "tables/*.csv and figures/*.png, by research question. A sweep still running can be "
                    "reported; missing and failed cells are marked.")
    parser.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR", help="the sweep directory (one subdirectory per cell)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="where to write report.md, tables/ and figures/ (default: SWEEP_DIR/report)")
    parser.add_argument("--no-figures", action="store_true", help="tables and report.md only (faster)")
    parser.set_defaults(func=run)
