"""report.md: the sweep's state first, the paper's headline figures for context, then one section per
research question with its figure and table. Every number here is also in a CSV under tables/."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from editsweep.report.cells import BASELINE_METHOD, DONE, FAILED, IN_PROGRESS, MISSING, STATES, Cell
from editsweep.report.formatting import MISSING_VALUE, md_table, pct, signed, with_delta
from editsweep.report.analysis import Analysis, method_rank, subset_rank
from editsweep.scoring import API_ADOPTION_CLASSES, ERROR_CLASSES

PAPER = "“Understanding Robustness of Model Editing in Code LLMs: An Empirical Study” (arXiv 2511.03182, v1)"
PAPER_HEADLINES = (
    "benchmark: 797 problems over 65 distinct APIs; reliability 259 (33%), generalization 328 (41%), "
    "specificity 210 (26%)",
    "instant edits drop syntactic validity by up to 86 points and functional correctness by 45 points, "
    "even in the best setting",
    "sequential edits can collapse the model",
    "correct adoption of the new API happens in only about 6% of cases; most passing outputs are workarounds",
)


def _variant_columns(rows: list[dict]) -> list[str]:
    """data / seed columns, only when the sweep varies them; `cell_id` when cells share coordinates."""
    columns = [name for name in ("data", "seed") if len({r.get(name) for r in rows}) > 1]
    ids: dict = {}
    for r in rows:
        coordinates = tuple(r.get(k) for k in ("model", "data", "seed", "method", "regime", "subset", "evaluation"))
        ids.setdefault(coordinates, set()).add(r.get("cell_id"))
    if any(len(found) > 1 for found in ids.values()):
        columns.append("cell_id")
    return columns


def _state(row: dict) -> str:
    return "" if row["state"] == DONE else row["state"]


def _coordinates(cell: Cell) -> str:
    return cell.key.label()


def _rerun_hint(cell: Cell) -> str:
    return f" · its overrides: `{' '.join(cell.overrides)}`" if cell.overrides else ""


def _status_section(analysis: Analysis) -> list[str]:
    sweep = analysis.sweep
    counts = sweep.counts()
    total = sum(counts.values())
    out = ["## Sweep status", ""]
    out.append(md_table(["expected cells", *STATES],
                        [[str(total), *(str(counts[s]) for s in STATES)]]))
    out.append("")
    out.append(f"The expected grid is every model × method × regime × subset seen among the cells "
               f"(the unedited baseline `method=none` is one cell per model and subset). {sweep.multirun_note}.")
    out.append("")
    failed = [c for c in sweep.cells if c.state == FAILED]
    running = [c for c in sweep.cells if c.state == IN_PROGRESS]
    missing = [c for c in sweep.cells if c.state == MISSING]
    if failed:
        out += ["**Failed cells** (their committed samples are still reported, marked `failed`; rerunning the "
                "sweep's command resumes them, and `editsweep status SWEEP_DIR` prints a command for exactly "
                "these):", ""]
        for cell in failed:
            out.append(f"- `{_coordinates(cell)}` — {cell.error_summary} (`{cell.path / 'error.txt'}`)"
                       + _rerun_hint(cell))
        out.append("")
    if running:
        out += ["**In progress** (no `result.json` yet: running, queued or interrupted; numbers cover the "
                "committed steps only):", ""]
        for cell in running:
            data = analysis.cell_data(cell)
            last = "none" if data.last_committed is None else str(data.last_committed)
            out.append(f"- `{_coordinates(cell)}` — last committed step {last}, {cell.edit_steps} edit step(s), "
                       f"{sum(u.n for units in data.units.values() for u in units.values())} samples")
        out.append("")
    if missing:
        out += ["**Missing cells** (expected by the grid, no cell directory yet):", ""]
        out += [f"- `{_coordinates(cell)}`" for cell in missing]
        out.append("")
    if analysis.warnings:
        out += ["**Data notes:**", ""] + [f"- {w}" for w in analysis.warnings] + [""]
    return out


def _headline_section(rq1: list[dict], rq2: list[dict], rq3: list[dict]) -> list[str]:
    out = ["## Context: the paper's headline figures", "",
           f"*These are the paper's numbers, quoted for context, not computed from this sweep* — {PAPER}:", ""]
    out += [f"- {line}" for line in PAPER_HEADLINES]
    out += ["", "*This sweep, the same quantities* (edited cells against the unedited baseline; cells still "
                "running or failed count with their committed samples):", ""]
    for regime_rows, label in ((rq1, "instant"), ([r for r in rq2 if r["n_edits"] is not None], "sequential")):
        for metric, name in (("compile@1", "syntactic validity (compile pass@1)"),
                             ("full@1", "functional correctness (full pass@1)")):
            deltas = [r for r in regime_rows if r["method"] != BASELINE_METHOD and r.get(f"delta/{metric}") is not None]
            if not deltas:
                out.append(f"- {label}: {name}: no edited cell with a baseline yet")
                continue
            worst = min(deltas, key=lambda r: r[f"delta/{metric}"])
            where = f"{worst['model']}, {worst['method']}, {worst['subset']}"
            if label == "sequential":
                where += f", after {worst['n_edits']} edits"
            out.append(f"- {label}: largest change of {name}: {signed(worst[f'delta/{metric}'])} points ({where})")
    edited = [r for r in rq3 if r["method"] != BASELINE_METHOD and r["regime"] == "instant" and r["n_adoption_samples"]]
    total = sum(r["n_adoption_samples"] for r in edited)
    if total:
        correct = sum(r["count/correct_adoption"] for r in edited)
        workaround = sum(r["count/workaround"] for r in edited)
        passing = correct + workaround
        line = f"- instant: correct adoption in {pct(correct / total)}% of {total} API-problem samples of edited cells"
        if passing:
            line += f"; {pct(workaround / passing)}% of the fully passing ones are workarounds"
        out.append(line)
    else:
        out.append("- instant: no adoption data from edited cells yet")
    out.append("")
    return out


def _figure_lines(figures: list[Path], out_dir: Path) -> list[str]:
    return [f"![{path.stem}]({path.relative_to(out_dir).as_posix()})" for path in figures] + [""]


def _rq1_section(rows: list[dict], figures: list[Path], out_dir: Path) -> list[str]:
    out = ["## RQ1 — instant editing", "",
           "One API update at a time (the model restored in between); every problem is evaluated once, under its "
           "own API's edit (specificity problems after each edit), and all steps are pooled. pass@k in %, at three "
           "levels: *compile* (parses, avoids the removed API, runs, defines the entry point), *partial* (≥ 1 test "
           "passes), *full* (all tests pass). In brackets: the change in points from the unedited baseline "
           "(`none`) on the same problems. *units*: problem evaluations averaged over (a specificity problem is "
           "evaluated once per edit).", ""]
    out += _figure_lines(figures, out_dir)
    variants = _variant_columns(rows)
    metrics = [f"{level}@{k}" for level in ("compile", "partial", "full") for k in (1, 3, 5)]
    header = ["model", *variants, "method", "subset", "state", "units", *metrics]
    table = []
    for r in rows:
        table.append([r["model"], *(r[v] for v in variants), r["method"], r["subset"], _state(r),
                      str(r["n_units"]) if r["state"] != MISSING else MISSING_VALUE,
                      *(with_delta(r[m], r[f"delta/{m}"]) for m in metrics)])
    out += [md_table(header, table) if table else "No instant-regime cell in this sweep.", "",
            "Full table: `tables/rq1_instant.csv` (also the partial credit and the number of units matched "
            "with the baseline).", ""]
    return out


def _rq2_section(rows: list[dict], figures: list[Path], out_dir: Path) -> list[str]:
    out = ["## RQ2 — sequential editing", "",
           "Updates accumulate in a fixed order; after every evaluation point the model is scored on the problems "
           "of all APIs edited so far (and on specificity). The curves show pass@1 of the three levels against "
           "the number of edits; dashed: the unedited baseline on the same problems.", ""]
    out += _figure_lines(figures, out_dir)
    variants = _variant_columns(rows)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], *(r[v] for v in variants), r["method"], r["subset"], r["state"]), []).append(r)
    header = ["model", *variants, "method", "subset", "state", "points", "edits", "full@1 first", "full@1 last",
              "Δ full@1 last", "compile@1 last", "Δ compile@1 last", "lowest full@1"]
    table = []
    for key, group in groups.items():
        points = [r for r in group if r["n_edits"] is not None]
        if not points:
            table.append([*key[:-1], _state(group[0]), "0", MISSING_VALUE, *([MISSING_VALUE] * 6)])
            continue
        first, last = points[0], points[-1]
        lowest = min((r["full@1"] for r in points if r["full@1"] is not None), default=None)
        table.append([*key[:-1], _state(first), str(len(points)), f"{first['n_edits']}–{last['n_edits']}",
                      pct(first["full@1"]), pct(last["full@1"]), signed(last["delta/full@1"]),
                      pct(last["compile@1"]), signed(last["delta/compile@1"]), pct(lowest)])
    out += [md_table(header, table) if table else "No sequential-regime cell in this sweep.", "",
            "Every evaluation point with all nine pass@k values, the baseline on the same problems and the deltas: "
            "`tables/rq2_sequential.csv`.", ""]
    return out


def _rq3_section(rows: list[dict], figures: list[Path], out_dir: Path) -> list[str]:
    out = ["## RQ3 — adoption of the new API", "",
           "Share of samples (%) on the API problems: *correct adoption* (calls the new API, full pass), "
           "*incorrect adoption* (calls it, fails), *workaround* (calls neither, full pass), *legacy* (calls the "
           "removed API), *other* (calls neither, fails). On specificity problems: *spurious adoption*, a new API "
           "used where none was edited in. Instant cells pool all steps; sequential cells are shown at their last "
           "evaluation point.", ""]
    out += _figure_lines(figures, out_dir)
    variants = _variant_columns(rows)
    header = ["model", *variants, "method", "regime", "subset", "state", "evaluation", "samples",
              *(name.replace("_adoption", "").replace("_failure", "") for name in API_ADOPTION_CLASSES),
              "spurious"]
    table = []
    for r in rows:
        if r["subset"] == "specificity":
            samples = r["n_specificity_samples"]
        else:
            samples = r["n_adoption_samples"]
        table.append([r["model"], *(r[v] for v in variants), r["method"], r["regime"], r["subset"], _state(r),
                      r["evaluation"] or MISSING_VALUE, MISSING_VALUE if samples is None else str(samples),
                      *(pct(r[f"adoption/{name}"]) for name in API_ADOPTION_CLASSES), pct(r["spurious_adoption"])])
    out += [md_table(header, table) if table else "No cell.", "",
            "With the counts behind each share: `tables/rq3_adoption.csv`.", ""]
    return out


def _rq4_section(error_rows: list[dict], drop_rows: list[dict], figures: list[Path], out_dir: Path) -> list[str]:
    out = ["## RQ4 — failures", "",
           "Error taxonomy of the failing samples (share of the failing samples, %): "
           + ", ".join(f"*{n.replace('_', ' ')}*" for n in ERROR_CLASSES)
           + ". Then the drop of full pass@1 from the unedited baseline, split exactly into the samples that no "
             "longer compile (*compile part*) and those that compile but fail their tests (*post-compile part*); "
             "points of pass@1, on the problems both cells share. A positive number is a loss against the baseline; "
             "the compile share is given when both parts are losses.", ""]
    out += _figure_lines(figures, out_dir)
    variants = _variant_columns(error_rows)
    short = {"syntax_error": "syntax", "deprecated_api": "deprecated", "name_error": "name",
             "wrong_usage": "wrong usage", "assertion_failure": "assertion", "runtime_error": "runtime",
             "timeout": "timeout", "memory": "memory", "crash": "crash"}
    header = ["model", *variants, "method", "regime", "subset", "state", "evaluation", "failing",
              *(short.get(n, n) for n in ERROR_CLASSES)]
    table = []
    for r in error_rows:
        failing = r["n_failing_samples"]
        table.append([r["model"], *(r[v] for v in variants), r["method"], r["regime"], r["subset"], _state(r),
                      r["evaluation"] or MISSING_VALUE,
                      MISSING_VALUE if failing is None else f"{failing}/{r['n_samples']}",
                      *(pct(r[f"share/{n}"]) for n in ERROR_CLASSES)])
    out += ["### Error taxonomy", "", md_table(header, table) if table else "No cell.", ""]
    header = ["model", *variants, "method", "regime", "subset", "state", "evaluation", "baseline full@1",
              "full@1", "drop", "compile part", "post-compile part", "compile share of drop"]
    table = []
    for r in drop_rows:
        table.append([r["model"], *(r[v] for v in variants), r["method"], r["regime"], r["subset"], _state(r),
                      r["evaluation"] or MISSING_VALUE, pct(r["baseline/full@1"]), pct(r["full@1"]),
                      signed(r["total_drop"]), signed(r["compile_drop"]), signed(r["post_compile_drop"]),
                      pct(r["compile_share_of_drop"])])
    out += ["### Compile vs post-compile split of the drop", "",
            md_table(header, table) if table else "No edited cell.", "",
            "Counts per class: `tables/rq4_errors.csv`; the split: "
            "`tables/rq4_drop_split.csv`.", ""]
    return out


def _cells_section(analysis: Analysis) -> list[str]:
    cells = sorted(analysis.sweep.cells, key=lambda c: (c.key.model, c.key.data, c.key.seed, c.key.regime,
                                                        method_rank(c.key.method), subset_rank(c.key.subset)))
    header = ["model", "method", "regime", "subset", "data", "seed", "state", "cell directory", "edit steps",
              "samples"]
    table = []
    for cell in cells:
        data = analysis.cell_data(cell)
        samples = sum(u.n for units in data.units.values() for u in units.values())
        table.append([cell.key.model, cell.key.method, cell.key.regime, cell.key.subset, cell.key.data or "",
                      cell.key.seed or "", cell.state, cell.path.name if cell.path else MISSING_VALUE,
                      str(cell.edit_steps) if cell.state != MISSING else MISSING_VALUE,
                      str(samples) if cell.state != MISSING else MISSING_VALUE])
    return ["## All cells", "", md_table(header, table), ""]


FILES = (
    ("tables/rq1_instant.csv", "instant regime: pass@1/3/5 at the three levels, partial credit, deltas to the "
                               "baseline (`delta/…`), units matched with it"),
    ("tables/rq2_sequential.csv", "sequential regime: one row per evaluation point (`step`, `n_edits`), the same "
                                  "metrics, the baseline on the same problems (`baseline/…`) and the deltas"),
    ("tables/rq3_adoption.csv", "adoption shares (`adoption/…`) with their counts (`count/…`), spurious adoption"),
    ("tables/rq4_errors.csv", "error classes: counts (`errors/…`) and shares of the failing samples (`share/…`)"),
    ("tables/rq4_drop_split.csv", "full pass@1 drop from the baseline and its compile / post-compile parts"),
    ("tables/cells.csv", "every cell of the grid: state, directory, committed step, samples, error headline"),
)


def _files_section() -> list[str]:
    return (["## Files", "",
             "In the CSVs every rate, delta and share is in percent (points for deltas and drops), with six "
             "decimals; an empty field means no value (cell missing, no baseline, or no sample).", ""]
            + [f"- `{name}`: {text}" for name, text in FILES] + [""])


def render(analysis: Analysis, tables: dict[str, list[dict]], figures: dict[str, list[Path]], out_dir: Path) -> str:
    """The whole report.md text."""
    sweep = analysis.sweep
    n_samples = sum(u.n for data in analysis.data.values() for units in data.units.values() for u in units.values())
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# editsweep report: {sweep.root.name}", "",
             f"Computed {now} from the cell stores in `{sweep.root}` ({len(sweep.present())} cell stores, "
             f"{n_samples} scored samples; harness errors excluded). Rates are percentages; Δ and drops are "
             f"percentage points. Cells not marked `done` are flagged in every table.", ""]
    lines += _status_section(analysis)
    lines += _headline_section(tables["rq1_instant"], tables["rq2_sequential"], tables["rq3_adoption"])
    lines += _rq1_section(tables["rq1_instant"], figures.get("rq1", []), out_dir)
    lines += _rq2_section(tables["rq2_sequential"], figures.get("rq2", []), out_dir)
    lines += _rq3_section(tables["rq3_adoption"], figures.get("rq3", []), out_dir)
    lines += _rq4_section(tables["rq4_errors"], tables["rq4_drop_split"], figures.get("rq4", []), out_dir)
    lines += _cells_section(analysis)
    lines += _files_section()
    return "\n".join(lines).rstrip() + "\n"
