"""How numbers look in the report: rates as percentages, deltas signed, gaps as a dash.

CSV values keep 6 decimals so a table reproduces its inputs exactly to a rounding far below what the
sampled metrics can resolve; report.md shows one decimal.
"""

from __future__ import annotations

import csv
from pathlib import Path

MISSING_VALUE = "–"
_RATE_PREFIXES = ("adoption/", "share/", "delta/", "baseline/")
_RATE_NAMES = {"spurious_adoption", "partial_credit", "total_drop", "compile_drop", "post_compile_drop",
               "compile_share_of_drop"}


def is_rate(column: str) -> bool:
    """Whether a column holds a fraction that the outputs show as a percentage."""
    return column in _RATE_NAMES or column.startswith(_RATE_PREFIXES) or ("@" in column and not column.startswith("n_"))


def csv_value(column: str, value) -> str:
    if value is None:
        return ""
    if is_rate(column):
        text = f"{100.0 * value:.6f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return str(value)


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> Path:
    """One CSV per table: the given columns in order, rates in percent, empty for no value."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([csv_value(c, row.get(c)) for c in columns])
    return path


def pct(value, digits: int = 1) -> str:
    """0.4567 -> "45.7"; None -> "–"."""
    return MISSING_VALUE if value is None else f"{100.0 * value:.{digits}f}"


def signed(value, digits: int = 1) -> str:
    """A change in percentage points: 0.05 -> "+5.0", -0.4 -> "-40.0", 0 -> "0.0"."""
    if value is None:
        return MISSING_VALUE
    points = 100.0 * value
    text = f"{points:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


def with_delta(value, delta) -> str:
    """"60.0 (-40.0)", or just "60.0" when there is no baseline to compare with."""
    if value is None:
        return MISSING_VALUE
    return pct(value) if delta is None else f"{pct(value)} ({signed(delta)})"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""
    def cell(text) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
