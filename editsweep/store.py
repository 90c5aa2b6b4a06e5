"""The cell store: one directory per sweep cell, append-only JSONL plus small atomic JSON files.

A cell's work is a sequence of *units* with increasing integer steps (instant: one API;
sequential: the edits up to an evaluation point plus that evaluation). Every JSONL record
carries the `step` it belongs to. A unit is committed by appending its edit, sample and eval
records (one write per file) and then rewriting `progress.json`; `progress.json` is the
commit point. When a cell restarts (requeue, crash, SIGKILL, rerun) `CellStore.open` drops any
record of an uncommitted unit and any torn last line, so the resumed cell recomputes exactly
the units that were not committed: no scored sample is lost or written twice.

Files (docs/architecture.md, "Cell store"): cell.json, edits.jsonl, samples.jsonl, evals.jsonl,
progress.json, result.json (written last: the done marker), error.txt, plus running.json
while a process works on the cell.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional

log = logging.getLogger(__name__)

CELL_FILE = "cell.json"
EDITS_FILE = "edits.jsonl"
SAMPLES_FILE = "samples.jsonl"
EVALS_FILE = "evals.jsonl"
PROGRESS_FILE = "progress.json"
RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"
RUNNING_FILE = "running.json"
JSONL_FILES = (EDITS_FILE, SAMPLES_FILE, EVALS_FILE)


class StoreError(RuntimeError):
    """The store on disk contradicts itself or the cell being run."""


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temp file in the same directory, fsync, rename: readers see old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Optional[Any]:
    """The JSON object in `path`, or None when the file does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise StoreError(f"{path} is not valid JSON ({exc}); it should only ever be written atomically") from exc


def read_jsonl(path: Path) -> List[Dict[str, Any]]:
    """All complete lines of a JSONL file (a torn last line, from a killed writer, is ignored)."""
    records = []
    try:
        with open(path, encoding="utf-8") as handle:
            data = handle.read()
    except FileNotFoundError:
        return records
    lines = data.split("\n")
    if lines and lines[-1] != "":
        lines = lines[:-1]  # no trailing newline: the last write did not finish
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise StoreError(f"{path}:{number} is not valid JSON ({exc})") from exc
    return records


def append_jsonl(path: Path, records: Iterable[Dict[str, Any]]) -> int:
    """Append records with a single write and fsync; returns how many were written."""
    lines = [json.dumps(r, sort_keys=True, default=str) for r in records]
    if not lines:
        return 0
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return len(lines)


class CellStore:
    """Read and extend one cell directory. Use `CellStore.open(dir)` to repair and load it."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.progress: Dict[str, Any] = {"last_step": None, "units": 0}

    # --- opening and repair --------------------------------------------------------------------
    @classmethod
    def open(cls, directory: Path) -> "CellStore":
        store = cls(directory)
        store.dir.mkdir(parents=True, exist_ok=True)
        progress = read_json(store.dir / PROGRESS_FILE)
        if progress is not None:
            store.progress = progress
        store._drop_uncommitted()
        return store

    def _drop_uncommitted(self) -> None:
        """Rewrite each JSONL file without records past the last committed step (and torn lines)."""
        last = self.last_step
        for name in JSONL_FILES:
            path = self.dir / name
            if not path.exists():
                continue
            raw = path.read_text(encoding="utf-8")
            records = read_jsonl(path)
            keep = [r for r in records if last is not None and r.get("step") is not None and r["step"] <= last]
            torn = bool(raw) and not raw.endswith("\n")
            if len(keep) != len(records) or torn:
                log.warning("%s: dropping %d record(s) of an unfinished unit%s", path, len(records) - len(keep),
                            " and a torn last line" if torn else "")
                write_text_atomic(path, "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in keep))

    # --- state ---------------------------------------------------------------------------------
    @property
    def last_step(self) -> Optional[int]:
        return self.progress.get("last_step")

    def is_committed(self, step: int) -> bool:
        return self.last_step is not None and step <= self.last_step

    def is_done(self) -> bool:
        return (self.dir / RESULT_FILE).exists()

    def result(self) -> Optional[Dict[str, Any]]:
        return read_json(self.dir / RESULT_FILE)

    def cell_info(self) -> Optional[Dict[str, Any]]:
        return read_json(self.dir / CELL_FILE)

    def edits(self) -> List[Dict[str, Any]]:
        return read_jsonl(self.dir / EDITS_FILE)

    def samples(self) -> List[Dict[str, Any]]:
        return read_jsonl(self.dir / SAMPLES_FILE)

    def evals(self) -> List[Dict[str, Any]]:
        return read_jsonl(self.dir / EVALS_FILE)

    def iter_samples(self) -> Iterator[Dict[str, Any]]:
        yield from self.samples()

    # --- writing -------------------------------------------------------------------------------
    def write_cell_info(self, info: Dict[str, Any]) -> None:
        """cell.json; a different existing one means two configs share a directory (refused)."""
        path = self.dir / CELL_FILE
        existing = read_json(path)
        if existing is not None and existing.get("cell_id") != info.get("cell_id"):
            raise StoreError(
                f"{path} belongs to cell {existing.get('cell_id')!r}, not {info.get('cell_id')!r}: "
                "two different configs map to the same directory"
            )
        if existing != json.loads(json.dumps(info, default=str)):
            write_json_atomic(path, info)

    def commit_unit(
        self,
        step: int,
        *,
        edits: Iterable[Dict[str, Any]] = (),
        samples: Iterable[Dict[str, Any]] = (),
        evals: Iterable[Dict[str, Any]] = (),
        extra_progress: Optional[Dict[str, Any]] = None,
    ) -> None:
        """Append one unit's records, then move the commit point (`progress.json`) to `step`."""
        if self.last_step is not None and step <= self.last_step:
            raise StoreError(f"{self.dir}: step {step} is already committed (last committed step {self.last_step})")
        for name, records in ((EDITS_FILE, edits), (SAMPLES_FILE, samples), (EVALS_FILE, evals)):
            records = list(records)
            bad = [r for r in records if r.get("step") is None or r["step"] > step]
            if bad:
                raise StoreError(f"{name}: record with step {bad[0].get('step')!r} in unit {step}")
            append_jsonl(self.dir / name, records)
        progress = dict(self.progress)
        progress.update(extra_progress or {})
        progress.update(last_step=step, units=int(self.progress.get("units", 0)) + 1, updated_at=time.time())
        write_json_atomic(self.dir / PROGRESS_FILE, progress)
        self.progress = progress

    def write_result(self, result: Dict[str, Any]) -> None:
        """The done marker, written last."""
        write_json_atomic(self.dir / RESULT_FILE, result)

    def write_error(self, text: str) -> None:
        write_text_atomic(self.dir / ERROR_FILE, text if text.endswith("\n") else text + "\n")

    def mark_running(self, job_id: Optional[str]) -> None:
        write_json_atomic(
            self.dir / RUNNING_FILE,
            {"pid": os.getpid(), "host": socket.gethostname(), "job_id": job_id, "started_at": time.time()},
        )

    def clear_running(self) -> None:
        try:
            os.unlink(self.dir / RUNNING_FILE)
        except FileNotFoundError:
            pass


def marker_process_alive(marker: Dict[str, Any]) -> Optional[bool]:
    """Whether the process a running.json marker names is alive: None when it cannot be told from
    here (the marker was written on another host, or names no pid)."""
    if not marker.get("pid") or marker.get("host") != socket.gethostname():
        return None
    try:
        os.kill(int(marker["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


# --- the sweep-level launch log ------------------------------------------------------------------

LAUNCHES_FILE = "launches.jsonl"


def record_launch(sweep_dir: Path, cells: List[Dict[str, Any]]) -> None:
    """Append one line per cell of a launch: {launched_at, cell, overrides, hydra_overrides, job_id, ...}."""
    now = time.time()
    append_jsonl(Path(sweep_dir) / LAUNCHES_FILE, [{"launched_at": now, **cell} for cell in cells])


def read_launches(sweep_dir: Path) -> Dict[str, Dict[str, Any]]:
    """The latest launch record of each cell directory name."""
    latest: Dict[str, Dict[str, Any]] = {}
    for record in read_jsonl(Path(sweep_dir) / LAUNCHES_FILE):
        latest[record["cell"]] = record
    return latest
