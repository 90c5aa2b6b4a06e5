"""Find the cells of a sweep directory, decide each one's state, and list the ones the grid lacks.

The report never trusts the launcher: a cell's state comes from its own store (docs/architecture.md,
"Cell store"). `result.json` marks a finished cell even if an earlier attempt left `error.txt`; a cell
with `error.txt` and no `result.json` failed; anything else with a `cell.json` is in progress (running,
queued for resume, or interrupted). The expected grid is every model x method x regime x subset
combination seen among the cells (plus the values of the sweep's `multirun.yaml`, when present), so a
cell that never started still shows up, as missing.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

#: the concrete subsets; a cell with subset "all" covers the three
SUBSETS = ("reliability", "generalization", "specificity")
BASELINE_METHOD = "none"
#: the files that make a directory look like a cell store even without its cell.json
STORE_FILES = ("cell.json", "edits.jsonl", "samples.jsonl", "evals.jsonl", "progress.json",
               "result.json", "error.txt")
AXES = ("model", "method", "regime", "subset")

DONE, IN_PROGRESS, FAILED, MISSING = "done", "in progress", "failed", "missing"
STATES = (DONE, IN_PROGRESS, FAILED, MISSING)


class ReportInputError(ValueError):
    """The sweep directory holds something the report cannot read; the message names the file."""


@dataclass(frozen=True)
class CellKey:
    """Where a cell sits in the grid. `data` and `seed` only separate cells when a sweep varies them."""

    model: str
    method: str
    regime: str
    subset: str
    data: str = ""
    seed: str = ""

    def label(self) -> str:
        parts = [f"model={self.model}", f"method={self.method}", f"regime={self.regime}",
                 f"subset={self.subset}"]
        if self.data:
            parts.append(f"data={self.data}")
        if self.seed:
            parts.append(f"seed={self.seed}")
        return " ".join(parts)


@dataclass
class Cell:
    """One cell of the grid: a store on disk, or a hole where the grid expects one."""

    key: CellKey
    state: str
    path: Path | None = None
    cell_id: str = ""
    error_summary: str = ""          # last line of error.txt, for failed cells
    result: dict = field(default_factory=dict)
    progress: dict = field(default_factory=dict)
    edit_steps: int = 0              # lines of edits.jsonl
    overrides: list[str] = field(default_factory=list)  # the cell's Hydra overrides, when recorded
    config: dict = field(default_factory=dict)  # the identity config of cell.json (what the cell computes)

    @property
    def subsets(self) -> tuple[str, ...]:
        return SUBSETS if self.key.subset == "all" else (self.key.subset,)


@dataclass
class Sweep:
    """Everything the report knows about a sweep directory before reading any sample."""

    root: Path
    cells: list[Cell]                 # present cells, then missing ones
    unidentified: list[Path]          # store-like directories without a readable cell.json
    multirun_axes: dict[str, list[str]]
    multirun_note: str

    def counts(self) -> dict[str, int]:
        return {state: sum(c.state == state for c in self.cells) for state in STATES}

    def present(self) -> list[Cell]:
        return [c for c in self.cells if c.state != MISSING]


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(value, dict):
        raise ReportInputError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def error_headline(path: Path) -> str:
    """What went wrong, in one line: a traceback's last line (the exception), or the first line of a
    message the launcher wrote for a job killed from outside."""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if not lines:
        return "(error.txt is empty)"
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def read_cell(path: Path) -> Cell:
    """The state and coordinates of one cell directory (which must contain cell.json)."""
    meta = _read_json(path / "cell.json")
    missing = [axis for axis in AXES if meta.get(axis) in (None, "")]
    if missing:
        raise ReportInputError(f"{path / 'cell.json'}: missing field(s) {', '.join(missing)}")
    key = CellKey(model=str(meta["model"]), method=str(meta["method"]), regime=str(meta["regime"]),
                  subset=str(meta["subset"]), data=str(meta.get("data") or ""),
                  seed="" if meta.get("seed") is None else str(meta["seed"]))
    if key.subset not in SUBSETS + ("all",):
        raise ReportInputError(f"{path / 'cell.json'}: subset {key.subset!r} is not one of "
                               f"{', '.join(SUBSETS + ('all',))}")
    cell = Cell(key=key, state=IN_PROGRESS, path=path, cell_id=str(meta.get("cell_id") or path.name),
                config=meta.get("config") if isinstance(meta.get("config"), dict) else {})
    if (path / "result.json").exists():
        cell.state = DONE
        cell.result = _read_json(path / "result.json")
    elif (path / "error.txt").exists():
        cell.state = FAILED
        cell.error_summary = error_headline(path / "error.txt")
    if (path / "progress.json").exists():
        try:
            cell.progress = _read_json(path / "progress.json")
        except ReportInputError as exc:  # written atomically, so this is a real defect: say it, go on
            log.warning("%s", exc)
    cell.edit_steps = _count_lines(path / "edits.jsonl")
    cell.overrides = _hydra_overrides(path)
    return cell


def _hydra_overrides(path: Path) -> list[str]:
    """The overrides Hydra recorded for this cell (`.hydra/overrides.yaml`), or [] if none."""
    file = path / ".hydra" / "overrides.yaml"
    if not file.exists():
        return []
    import yaml

    try:
        items = yaml.safe_load(file.read_text()) or []
    except yaml.YAMLError:
        return []
    return [str(item) for item in items] if isinstance(items, list) else []


_SWEEP_VALUE = re.compile(r"^(?:choice\((?P<choice>.*)\)|(?P<list>[^()]*))$")


def _split_sweep_values(text: str) -> list[str] | None:
    """`a,b` or `choice(a,b)` -> ["a", "b"]; other Hydra sweep syntax (range, glob, ...) -> None."""
    match = _SWEEP_VALUE.match(text.strip())
    if not match:
        return None
    body = match.group("choice") if match.group("choice") is not None else match.group("list")
    values = [v.strip().strip("'\"") for v in body.split(",")]
    return [v for v in values if v]


def read_multirun(root: Path, cells: list[Cell] = ()) -> tuple[dict[str, list[str]], str]:
    """The grid axes named on the command line of the sweep's last launch (Hydra's multirun.yaml),
    as the labels the cells carry (see `option_labels`)."""
    path = root / "multirun.yaml"
    if not path.exists():
        return {}, "No multirun.yaml in the sweep directory: the expected grid comes from the cells present"
    import yaml  # only needed here

    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        return {}, f"multirun.yaml could not be parsed ({exc.__class__.__name__}); ignored"
    hydra = config.get("hydra") or {}
    # a grid preset (conf/experiment/*.yaml) sets sweeper params; command-line overrides come after and win
    params = (hydra.get("sweeper") or {}).get("params") or {}
    overrides = [f"{k}={v}" for k, v in params.items()] + list(((hydra.get("overrides") or {}).get("task")) or [])
    options: dict[str, list[str]] = {}
    unparsed = []
    for item in overrides:
        name, _, value = str(item).partition("=")
        name = name.lstrip("+~")
        if name not in AXES:
            continue
        values = _split_sweep_values(value)
        if values is None:
            unparsed.append(str(item))
        else:
            options[name] = values
    conf_dirs = [Path(source["path"]) for source in ((hydra.get("runtime") or {}).get("config_sources") or [])
                 if isinstance(source, dict) and source.get("schema") == "file" and source.get("path")]
    labels = option_labels(cells, conf_dirs)
    axes = {axis: [labels.get(axis, {}).get(v, v) for v in values] for axis, values in options.items()}
    note = "The sweep's multirun.yaml (its last launch) names: " + (
        "; ".join(f"{k}={','.join(v)}" for k, v in options.items()) or "no grid axes")
    if unparsed:
        note += f"; not expanded: {', '.join(unparsed)}"
    return axes, note


def option_labels(cells: list[Cell], conf_dirs: list[Path]) -> dict[str, dict[str, str]]:
    """Config option -> the label its cells carry, per axis (`model=tiny_llama` makes cells whose
    cell.json says model "tiny:llama"). Learnt from the cells' own `.hydra/overrides.yaml`, else from
    the option's `name:` in the config directory the sweep was launched with; else the option itself."""
    import yaml

    labels: dict[str, dict[str, str]] = {axis: {} for axis in AXES}
    for cell in cells:
        for item in cell.overrides:
            name, _, value = item.partition("=")
            name = name.lstrip("+~")
            if name in AXES and value and "," not in value:
                labels[name].setdefault(value, getattr(cell.key, name))
    for conf in conf_dirs:
        for axis in AXES:
            folder = conf / axis
            if not folder.is_dir():
                continue
            for option_file in folder.glob("*.yaml"):
                if option_file.stem in labels[axis]:
                    continue
                try:
                    data = yaml.safe_load(option_file.read_text()) or {}
                except (OSError, yaml.YAMLError):
                    continue
                if isinstance(data, dict) and data.get("name") is not None:
                    labels[axis][option_file.stem] = str(data["name"])
    return labels


def _expected_keys(cells: list[Cell], multirun_axes: dict[str, list[str]]) -> set[tuple]:
    """(model, method, regime, subset, data, seed) combinations the grid should contain.

    The baseline (method=none) is one cell per model and subset: its regime is not a grid axis
    (whatever regime its cells carry is not expected of the edited methods, and the other way round).
    Expected baselines carry the regime of a baseline cell seen, else the first regime of the grid.
    """
    seen = {axis: set() for axis in AXES}
    baseline_regimes = set()
    for cell in cells:
        seen["model"].add(cell.key.model)
        seen["method"].add(cell.key.method)
        seen["subset"].update(cell.subsets)
        if cell.key.method == BASELINE_METHOD:
            baseline_regimes.add(cell.key.regime)
        else:
            seen["regime"].add(cell.key.regime)
    for axis, values in multirun_axes.items():
        for value in values:
            seen[axis].update(SUBSETS if (axis == "subset" and value == "all") else (value,))
    data_seeds = sorted({(c.key.data, c.key.seed) for c in cells}) or [("", "")]
    regimes = sorted(seen["regime"])
    baseline_regime = min(baseline_regimes) if baseline_regimes else (regimes[0] if regimes else "instant")
    expected = set()
    for model, method, subset in itertools.product(sorted(seen["model"]), sorted(seen["method"]),
                                                   sorted(seen["subset"])):
        for regime in ([baseline_regime] if method == BASELINE_METHOD else regimes):
            for data, seed in data_seeds:
                expected.add((model, method, regime, subset, data, seed))
    return expected


def discover(root: Path) -> Sweep:
    """Read every cell directory directly under `root` and add the missing cells of the grid."""
    root = Path(root)
    if not root.is_dir():
        raise ReportInputError(f"{root}: not a directory (expected a sweep directory of cell stores)")
    cells: list[Cell] = []
    unidentified: list[Path] = []
    for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (path / "cell.json").exists():
            try:
                cells.append(read_cell(path))
            except ReportInputError as exc:
                log.warning("%s", exc)
                unidentified.append(path)
        elif any((path / name).exists() for name in STORE_FILES):
            unidentified.append(path)
    multirun_axes, multirun_note = read_multirun(root, cells)
    if not cells and not unidentified:
        raise ReportInputError(f"{root}: no cell stores found (no subdirectory with a cell.json)")

    covered = set()
    for cell in cells:
        for subset in cell.subsets:
            covered.add((cell.key.model, cell.key.method, cell.key.regime, subset, cell.key.data,
                         cell.key.seed))
    baseline_covered = {(m, s, d, sd) for (m, meth, _r, s, d, sd) in covered if meth == BASELINE_METHOD}
    missing = []
    for key in sorted(_expected_keys(cells, multirun_axes)):
        model, method, regime, subset, data, seed = key
        if key in covered:
            continue
        if method == BASELINE_METHOD and (model, subset, data, seed) in baseline_covered:
            continue  # a baseline of another regime covers it
        missing.append(Cell(key=CellKey(model, method, regime, subset, data, seed), state=MISSING))
    log.info("sweep %s: %d cell stores, %d missing from the grid, %d unidentified directories",
             root, len(cells), len(missing), len(unidentified))
    return Sweep(root=root, cells=cells + missing, unidentified=unidentified,
                 multirun_axes=multirun_axes, multirun_note=multirun_note)
