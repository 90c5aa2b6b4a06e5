"""The report's PNG figures, one per research question and model, drawn from the table rows.

Each function takes the rows of one model (and data / seed, when a sweep varies them) and the label
to title the figure with.

Every figure marks the unedited baseline (method none) and labels cells that are missing, failed or
still running, so a plot never looks complete when the sweep is not. matplotlib is imported inside the
functions (Agg backend) to keep `editsweep --help` instant.
"""

from __future__ import annotations

from pathlib import Path

from editsweep.report.cells import BASELINE_METHOD, DONE, MISSING, SUBSETS
from editsweep.report.analysis import method_rank, subset_rank
from editsweep.scoring import API_ADOPTION_CLASSES, ERROR_CLASSES, LEVELS

LEVEL_COLORS = {"compile": "#1f77b4", "partial": "#ff7f0e", "full": "#2ca02c"}
LEVEL_MARKERS = {"compile": "o", "partial": "s", "full": "^"}
SPURIOUS_COLOR = "#9467bd"
SUBSET_COLORS = {"reliability": "#4c72b0", "generalization": "#dd8452", "specificity": "#55a868"}
ADOPTION_COLORS = {"correct_adoption": "#2ca02c", "incorrect_adoption": "#98df8a", "workaround": "#1f77b4",
                   "legacy": "#d62728", "other_failure": "#7f7f7f"}
ERROR_COLORS = dict(zip(ERROR_CLASSES, ("#d62728", "#ff9896", "#9467bd", "#e377c2", "#1f77b4", "#17becf",
                                        "#bcbd22", "#8c564b", "#7f7f7f")))
STATE_MARK = {MISSING: "missing", "failed": "failed", "in progress": "running"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _pct(value):
    return None if value is None else 100.0 * value


def _label(text: str) -> str:
    return text.replace("_", " ")


def _methods(rows) -> list[str]:
    return sorted({r["method"] for r in rows}, key=method_rank)


def _subsets(rows) -> list[str]:
    return sorted({r["subset"] for r in rows}, key=subset_rank)


def _method_label(method: str) -> str:
    return "none\n(unedited)" if method == BASELINE_METHOD else method


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)  # constrained layout already fits everything: no second "tight" pass
    _pyplot().close(fig)
    return path


def _tick(method: str, row) -> str:
    """An x tick: the method, and the cell's state when it is not done."""
    note = _state_note(row) if row is not None else "n/a"
    return _method_label(method) + (f"\n[{note}]" if note else "")


def _state_note(row) -> str:
    if row is None:
        return "n/a"
    if row["state"] == DONE:
        return ""
    return STATE_MARK.get(row["state"], row["state"])


def rq1_figure(rows: list[dict], label: str, path: Path) -> Path:
    """Instant editing: pass@1 per method (groups) and subset (colours), one panel per level."""
    plt = _pyplot()
    methods, subsets = _methods(rows), _subsets(rows)
    by_key = {(r["method"], r["subset"]): r for r in rows}
    fig, axes = plt.subplots(1, 3, figsize=(max(10, 1.6 * len(methods) * 3), 4.6), sharey=True,
                             layout="constrained")
    width = 0.8 / max(1, len(subsets))
    for ax, level in zip(axes, LEVELS):
        metric = f"{level}@1"
        for j, subset in enumerate(subsets):
            xs, heights, notes = [], [], []
            for i, method in enumerate(methods):
                row = by_key.get((method, subset))
                x = i - 0.4 + width * (j + 0.5)
                value = _pct(row[metric]) if row else None
                note = _state_note(row)
                if value is not None:
                    xs.append(x)
                    heights.append(value)
                if note:
                    notes.append((x, value or 0.0, note))
            bars = ax.bar(xs, heights, width=width * 0.95, color=SUBSET_COLORS.get(subset, "#999999"),
                          label=subset)
            for x, y, note in notes:
                ax.text(x, y + 1.5, note, rotation=90, ha="center", va="bottom", fontsize=8, color="#222222")
            base = by_key.get((BASELINE_METHOD, subset))
            if base is not None and base[metric] is not None:
                ax.axhline(_pct(base[metric]), color=SUBSET_COLORS.get(subset, "#999999"), linestyle="--",
                           linewidth=1, alpha=0.8)
            del bars
        ax.set_title(f"{level} pass@1")
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels([_method_label(m) for m in methods])
        ax.set_ylim(0, 112)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("pass@1 (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="#444444", linestyle="--", linewidth=1))
    labels.append("unedited baseline (per subset)")
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False)
    fig.suptitle(f"RQ1 instant editing, {label}: pass@1 by method and subset (labels: cells not done)")
    return _save(fig, path)


def rq2_figure(rows: list[dict], label: str, path: Path) -> Path:
    """Sequential editing: the three levels against the number of edits, one panel per method and
    subset, with the unedited baseline on the same problems dashed."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    rows = [r for r in rows if r["method"] != BASELINE_METHOD]
    methods, subsets = _methods(rows), _subsets(rows)
    fig, axes = plt.subplots(len(subsets), len(methods), figsize=(max(7.0, 3.6 * len(methods) + 0.8),
                                                                  2.9 * len(subsets) + 1.2),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    for r_i, subset in enumerate(subsets):
        for c_i, method in enumerate(methods):
            ax = axes[r_i][c_i]
            points = sorted((r for r in rows if r["method"] == method and r["subset"] == subset
                             and r["n_edits"] is not None), key=lambda r: r["n_edits"])
            states = {r["state"] for r in rows if r["method"] == method and r["subset"] == subset}
            for level in LEVELS:
                metric = f"{level}@1"
                xs = [r["n_edits"] for r in points if r[metric] is not None]
                ys = [_pct(r[metric]) for r in points if r[metric] is not None]
                ax.plot(xs, ys, marker=LEVEL_MARKERS[level], markersize=4, color=LEVEL_COLORS[level],
                        label=f"{level} pass@1")
                bx = [r["n_edits"] for r in points if r[f"baseline/{metric}"] is not None]
                by = [_pct(r[f"baseline/{metric}"]) for r in points if r[f"baseline/{metric}"] is not None]
                ax.plot(bx, by, linestyle="--", linewidth=1, color=LEVEL_COLORS[level], alpha=0.7,
                        label=f"{level}, unedited baseline")
            title = f"{method} · {subset}"
            state = next(iter(states)) if len(states) == 1 else "mixed"
            if state != DONE:
                title += f" ({STATE_MARK.get(state, state)})"
            if not points:
                ax.text(0.5, 0.5, "no evaluation point yet" if state != MISSING else "cell missing",
                        transform=ax.transAxes, ha="center", va="center", color="#444444")
                ax.tick_params(axis="x", labelbottom=False)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(title, fontsize=10)
            ax.set_ylim(-3, 105)
            ax.grid(alpha=0.3)
            if r_i == len(subsets) - 1:
                ax.set_xlabel("number of edits applied")
            if c_i == 0:
                ax.set_ylabel("pass@1 (%)")
    handles, labels = [], []
    for level in LEVELS:
        handles.append(plt.Line2D([], [], color=LEVEL_COLORS[level], marker=LEVEL_MARKERS[level], markersize=4))
        labels.append(f"{level} pass@1")
    for level in LEVELS:
        handles.append(plt.Line2D([], [], color=LEVEL_COLORS[level], linestyle="--", linewidth=1))
        labels.append(f"{level}: unedited baseline, same problems")
    fig.suptitle(f"RQ2 sequential editing, {label}: pass@1 against the number of edits")
    fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False, fontsize=8)
    return _save(fig, path)


def rq3_figure(rows: list[dict], label: str, path: Path) -> Path:
    """Adoption: stacked class shares on the API subsets and spurious adoption on specificity, per
    regime (rows) and method (bars)."""
    plt = _pyplot()
    regimes = sorted({r["regime"] for r in rows if r["method"] != BASELINE_METHOD}) or sorted({r["regime"] for r in rows})
    api_subsets = [s for s in SUBSETS[:2] if any(r["subset"] == s for r in rows)]
    has_spec = any(r["subset"] == "specificity" for r in rows)
    columns = api_subsets + (["specificity"] if has_spec else [])
    methods = _methods(rows)
    fig, axes = plt.subplots(len(regimes), len(columns), figsize=(max(4.2, 0.9 * len(methods) + 1.5) * len(columns),
                                                                 3.6 * len(regimes) + 0.9), squeeze=False,
                             layout="constrained")
    for r_i, regime in enumerate(regimes):
        for c_i, subset in enumerate(columns):
            ax = axes[r_i][c_i]
            by_method = {}
            for r in rows:
                if r["subset"] == subset and (r["regime"] == regime or r["method"] == BASELINE_METHOD):
                    if r["method"] not in by_method or r["regime"] == regime:
                        by_method[r["method"]] = r
            for i, method in enumerate(methods):
                row = by_method.get(method)
                if subset == "specificity":
                    value = _pct(row["spurious_adoption"]) if row else None
                    if value is not None:
                        ax.bar(i, value, color=SPURIOUS_COLOR, width=0.6)
                        ax.text(i, value + 1, f"{value:.0f}", ha="center", va="bottom", fontsize=8)
                else:
                    bottom = 0.0
                    for name in API_ADOPTION_CLASSES:
                        share = _pct(row[f"adoption/{name}"]) if row else None
                        if share:
                            ax.bar(i, share, bottom=bottom, color=ADOPTION_COLORS[name], width=0.6)
                            bottom += share
                value_present = row is not None and (
                    row["spurious_adoption"] if subset == "specificity" else row["adoption/correct_adoption"]) is not None
                if row is not None and row["state"] != MISSING and not value_present:
                    ax.text(i, 2, "no samples", rotation=90, ha="center", va="bottom", fontsize=7, color="#444444")
            ax.set_xticks(range(len(methods)))
            ax.set_xticklabels([_tick(m, by_method.get(m)) for m in methods], fontsize=8)
            what = "spurious adoption (%)" if subset == "specificity" else "share of samples (%)"
            ax.set_ylabel(what)
            ax.set_ylim(0, 105 if subset != "specificity" else 100)
            scope = "all APIs pooled" if regime != "sequential" else "at the last evaluation point"
            ax.set_title(f"{regime} · {subset}\n({scope})", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=ADOPTION_COLORS[n]) for n in API_ADOPTION_CLASSES]
    labels = [_label(n) for n in API_ADOPTION_CLASSES]
    if has_spec:
        handles.append(plt.Rectangle((0, 0), 1, 1, color=SPURIOUS_COLOR))
        labels.append("spurious adoption (specificity)")
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6), frameon=False, fontsize=8)
    fig.suptitle(f"RQ3 adoption of the new API, {label}")
    return _save(fig, path)


def _row_label(row) -> str:
    note = _state_note(row)
    return f"{row['method']} · {row['subset']}" + (f" [{note}]" if note else "")


def rq4_figure(error_rows: list[dict], drop_rows: list[dict], label: str, path: Path) -> Path:
    """Failures: the error-class mix of failing samples, and the full-pass drop split into its
    compile and post-compile parts (both for the instant regime, or the first regime present)."""
    plt = _pyplot()
    regimes = sorted({r["regime"] for r in drop_rows}) or sorted({r["regime"] for r in error_rows})
    regime = "instant" if "instant" in regimes else (regimes[0] if regimes else "instant")
    bars = [r for r in error_rows if r["regime"] == regime or r["method"] == BASELINE_METHOD]
    bars.sort(key=lambda r: (subset_rank(r["subset"]), method_rank(r["method"])))
    drops = sorted((r for r in drop_rows if r["regime"] == regime),
                   key=lambda r: (subset_rank(r["subset"]), method_rank(r["method"])))
    height = 0.38 * max(len(bars), len(drops), 4) + 2.4
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, height), layout="constrained")
    below = -0.55 / (height - 1.6)  # legends about half an inch under the axes, whatever the height
    for i, row in enumerate(bars):
        left_edge = 0.0
        for name in ERROR_CLASSES:
            share = _pct(row[f"share/{name}"])
            if share:
                left.barh(i, share, left=left_edge, color=ERROR_COLORS[name])
                left_edge += share
        if row["state"] != MISSING and not row["n_failing_samples"]:
            left.text(1, i, "no failing samples", va="center", fontsize=7, color="#444444")
    left.set_yticks(range(len(bars)))
    left.set_yticklabels([_row_label(r) for r in bars], fontsize=8)
    left.invert_yaxis()
    left.set_xlim(0, 100)
    left.set_xlabel("share of failing samples (%)")
    left.set_title(f"error taxonomy ({regime})")
    left.legend([plt.Rectangle((0, 0), 1, 1, color=ERROR_COLORS[n]) for n in ERROR_CLASSES],
                [_label(n) for n in ERROR_CLASSES], fontsize=7, loc="upper center", bbox_to_anchor=(0.5, below),
                ncol=5, frameon=False)
    for i, row in enumerate(drops):
        compile_drop, post = _pct(row["compile_drop"]), _pct(row["post_compile_drop"])
        if compile_drop is not None:
            right.barh(i, compile_drop, color="#d62728", label="compile part" if i == 0 else None)
            start = compile_drop if (compile_drop >= 0) == (post >= 0) else 0.0
            right.barh(i, post, left=start, color="#1f77b4", label="post-compile part" if i == 0 else None)
            right.plot([_pct(row["total_drop"])], [i], marker="D", color="black", markersize=4,
                       label="total drop of full pass@1" if i == 0 else None)
        if row["state"] != MISSING and compile_drop is None:
            right.text(0, i, "  no baseline to compare with", va="center", fontsize=7, color="#444444")
    right.axvline(0, color="black", linewidth=0.8)
    right.set_yticks(range(len(drops)))
    right.set_yticklabels([_row_label(r) for r in drops], fontsize=8)
    right.invert_yaxis()
    right.set_xlabel("drop from the unedited baseline (percentage points of pass@1)")
    right.set_title(f"where the full-pass drop comes from ({regime})")
    right.grid(axis="x", alpha=0.3)
    handles, labels = right.get_legend_handles_labels()
    if handles:
        right.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, below), ncol=3,
                     frameon=False)
    fig.suptitle(f"RQ4 failures, {label}")
    return _save(fig, path)
