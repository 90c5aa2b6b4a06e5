"""Weights & Biases as a view of the cell store: one run per cell.

The run id is derived from the sweep directory and the cell id, so a requeued or relaunched
cell writes to the same run (`resume="allow"`); group = sweep name, job_type = method, the
config is the resolved cell config, facet values are top-level config keys and tags. Metrics
are logged per evaluation step against an explicit x-axis (`progress/step`, since offline
restarts reset W&B's own step); the per-sample table and the summary are logged once, when
the cell completes. The run is closed on success, on failure and on requeue (the launcher's
`checkpoint()` calls `close_active_run`), because Slurm's signals otherwise leave it unclosed.

Modes: `online`, `offline`, `disabled`, and `auto` (online when an API key is configured,
else offline). An online run is only attempted after a quick TCP check of the server; when
the server is unreachable, or no key is configured, the run falls back to offline with a
warning instead of blocking the cell for ~100 s. `wandb` is imported only when a run starts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import netrc
import os
import struct
import threading
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional
from urllib.parse import urlparse

log = logging.getLogger(__name__)

#: wandb 0.31's default server (notes/orchestration.md §10); WANDB_BASE_URL or tracking.base_url override it
DEFAULT_BASE_URL = "https://api.forge.coreweave.com"
STEP_METRIC = "progress/step"

_ACTIVE: Optional["Tracker"] = None


def run_id_for(sweep_dir: Path, cell_id: str) -> str:
    """16 hex characters, stable across requeues and relaunches of the same cell in the same sweep dir."""
    key = f"{Path(sweep_dir).resolve()}::{cell_id}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def flatten(metrics: Mapping[str, Any], prefix: str = "", sep: str = "/") -> Dict[str, Any]:
    """{"full": {"pass@1": .5}} -> {"full/pass@1": .5}; non-numeric leaves are kept as they are."""
    out: Dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name, sep))
        else:
            out[name] = value
    return out


# --- mode resolution -------------------------------------------------------------------------------

def api_key_configured(base_url: str) -> bool:
    """WANDB_API_KEY, or a netrc entry for the server's host (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(base_url).hostname
    netrc_path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        return bool(host) and netrc.netrc(netrc_path).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def server_reachable(base_url: str, timeout_s: float) -> bool:
    """Does a W&B server answer at `base_url` within `timeout_s`?

    A GraphQL POST must come back as JSON (a W&B server answers JSON even when it refuses the
    request). A TCP connect is not enough: egress proxies accept every connection. DNS is
    inside the deadline too, since a hung resolver must not block the cell.
    """
    import urllib.error
    import urllib.request

    if not urlparse(base_url).hostname:
        return False
    outcome: Dict[str, bool] = {}
    request = urllib.request.Request(
        base_url.rstrip("/") + "/graphql",
        data=json.dumps({"query": "query { viewer { id } }"}).encode(),
        headers={"Content-Type": "application/json"},
    )

    def probe() -> None:
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                body = response.read(65536)
        except urllib.error.HTTPError as exc:
            body = exc.read(65536)
        except (OSError, ValueError):
            outcome["ok"] = False
            return
        try:
            json.loads(body)
            outcome["ok"] = True
        except ValueError:
            outcome["ok"] = False

    thread = threading.Thread(target=probe, name="wandb-reachability", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return outcome.get("ok", False)


def resolve_mode(mode: str, base_url: str, timeout_s: float) -> str:
    """The mode a run really uses: online only with a key and a reachable server."""
    mode = str(getattr(mode, "value", mode))
    if mode in ("disabled", "offline"):
        return mode
    has_key = api_key_configured(base_url)
    if mode == "auto" and not has_key:
        return "offline"
    if not has_key:
        log.warning("tracking.mode=online but no W&B API key is configured: logging offline instead")
        return "offline"
    if not server_reachable(base_url, timeout_s):
        log.warning("W&B server %s is not reachable within %.1fs: logging offline instead "
                    "(sync later with `wandb sync <cell>/wandb/offline-run-*`)", base_url, timeout_s)
        return "offline"
    return "online"


def _reset_service() -> None:
    """Tear down this process's W&B service connection (e.g. after wandb-core was killed)."""
    try:
        import wandb

        wandb.teardown()
    except Exception as exc:  # the service is usually already gone
        log.debug("wandb.teardown: %s", exc)


def drop_inherited_service() -> None:
    """Forget a W&B service token inherited from another process (WANDB_SERVICE).

    wandb exports its service's socket to child processes so they can share it; a cell started
    by a process that used W&B (a test runner, a notebook, the basic launcher's parent) would
    otherwise try to connect to a service that is not its own, possibly gone.
    """
    token = os.environ.get("WANDB_SERVICE")
    if not token:
        return
    parts = token.split("-")
    owner = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
    if owner != os.getpid():
        log.info("ignoring the W&B service inherited from process %s", owner)
        os.environ.pop("WANDB_SERVICE", None)


# --- the tracker -----------------------------------------------------------------------------------

class Tracker:
    """One W&B run for one cell; every method is a no-op when the mode is `disabled`."""

    def __init__(
        self,
        tracking: Mapping[str, Any],
        *,
        run_id: str,
        group: str,
        job_type: str,
        name: str,
        config: Mapping[str, Any],
        tags: Iterable[str],
        run_dir: Path,
    ) -> None:
        self.settings = dict(tracking)
        self.base_url = self.settings.get("base_url") or os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL
        self.run_id = run_id
        self.group = group
        self.job_type = job_type
        self.name = name
        self.config = dict(config)
        self.tags = sorted(set(tags) | set(self.settings.get("tags") or []))
        self.run_dir = Path(self.settings.get("dir") or run_dir)
        self.mode = "disabled"
        self.run: Any = None

    def start(self) -> "Tracker":
        global _ACTIVE
        requested = self.settings.get("mode", "auto")
        self.mode = resolve_mode(requested, self.base_url, float(self.settings.get("reachability_timeout_s", 3.0)))
        if self.mode == "disabled":
            return self
        import wandb

        self.run_dir.mkdir(parents=True, exist_ok=True)
        drop_inherited_service()
        try:
            self.run = self._init(wandb)
        except Exception as exc:  # a refused key, a dead service: try once more offline, on a fresh service
            log.warning("W&B %s init failed (%s: %s); retrying offline", self.mode, type(exc).__name__, exc)
            _reset_service()
            self.mode = "offline"
            try:
                self.run = self._init(wandb)
            except Exception as again:
                log.warning("W&B offline init failed too (%s: %s)", type(again).__name__, again)
                self.run = None
        if self.run is None:
            log.warning("the cell continues without W&B (the store has everything)")
            self.mode = "broken"
            return self
        self.run.define_metric(STEP_METRIC)
        self.run.define_metric("*", step_metric=STEP_METRIC)
        _ACTIVE = self
        log.info("W&B run %s (%s) in %s", self.run_id, self.mode, self.run_dir)
        return self

    def _init(self, wandb: Any) -> Any:
        return wandb.init(
            project=self.settings.get("project") or "editsweep",
            entity=self.settings.get("entity"),
            id=self.run_id,
            name=self.name,
            group=self.group,
            job_type=self.job_type,
            tags=self.tags,
            config=self.config,
            dir=str(self.run_dir),
            mode=self.mode,
            resume="allow",
            reinit="finish_previous",
            settings=wandb.Settings(console="off", init_timeout=60, base_url=self.base_url),
        )

    def log_step(self, step: int, metrics: Mapping[str, Any]) -> None:
        if self.run is not None:
            self._guard("log metrics", lambda: self.run.log({**flatten(metrics), STEP_METRIC: step}))

    def log_samples(self, samples: List[Mapping[str, Any]], key: str = "samples") -> None:
        if self.run is None or not samples or not self.settings.get("log_samples", True):
            return
        import wandb

        columns = sorted({c for s in samples for c in s})
        rows = [[_cell_value(s.get(c)) for c in columns] for s in samples]
        self._guard("log the sample table", lambda: self.run.log({key: wandb.Table(columns=columns, data=rows)}))

    def set_summary(self, metrics: Mapping[str, Any]) -> None:
        if self.run is not None:
            self._guard("set the summary", lambda: self.run.summary.update(flatten(metrics)))

    def _guard(self, what: str, action: Any) -> None:
        """W&B is a view of the store: when it breaks (e.g. wandb-core killed by Slurm's SIGTERM),
        the cell goes on without it instead of failing."""
        try:
            action()
        except Exception as exc:
            log.warning("W&B failed to %s (%s: %s); the cell continues without W&B (the store has everything)",
                        what, type(exc).__name__, exc)
            self.abandon()

    def abandon(self) -> None:
        """Drop the run and the (dead) service connection, so a later run in this process starts afresh."""
        global _ACTIVE
        self.run = None
        self.mode = "broken"
        if _ACTIVE is self:
            _ACTIVE = None
        _reset_service()

    def finish(self, exit_code: int = 0, preempting: bool = False) -> None:
        """Close the run (idempotent). `preempting` marks a requeue so W&B shows it as preempted."""
        global _ACTIVE
        run, self.run = self.run, None
        if _ACTIVE is self:
            _ACTIVE = None
        if run is None:
            return
        try:
            if preempting:
                run.mark_preempting()
            run.finish(exit_code=exit_code)
        except Exception:  # a dying wandb-core must not turn a finished cell into a failed one
            log.exception("closing W&B run %s failed", self.run_id)


def _cell_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def close_active_run(preempting: bool = False) -> bool:
    """Close the run of the cell running in this process, if any (called on requeue). True if one was open."""
    tracker = _ACTIVE
    if tracker is None:
        return False
    tracker.finish(exit_code=1, preempting=preempting)
    return True


# --- reading offline runs back ----------------------------------------------------------------------

_BLOCK = 32768
_HEADER = 7


def _read_records(path: Path) -> List[bytes]:
    """The records of a `.wandb` file (a LevelDB-style log: 7-byte header, 32 KiB blocks)."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    records, parts, pos = [], [], _HEADER
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + _HEADER])
        pos += _HEADER
        if kind == 0 and length == 0:  # zero padding to the end of the block
            pos += left - _HEADER
            continue
        parts.append(data[pos:pos + length])
        pos += length
        if kind in (1, 4):  # FULL or LAST
            records.append(b"".join(parts))
            parts = []
    return records


def _items_to_dict(items: Iterable[Any], target: Dict[str, Any]) -> None:
    for item in items:
        keys = list(item.nested_key) or [item.key]
        node = target
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = json.loads(item.value_json)


def read_offline_run(run_dir: Path, wait_s: float = 10.0) -> Dict[str, Any]:
    """Summary, history rows, config, run id and exit code of one `offline-run-*` directory.

    Lets tests and users check what a run recorded without a W&B server. wandb-core writes the
    file asynchronously (it can hold only its header right after `finish()` returns), so this
    waits up to `wait_s` for the exit record of a closed run.
    """
    import time

    deadline = time.monotonic() + wait_s
    while True:
        out = _parse_offline_run(Path(run_dir))
        if out["exit_code"] is not None or time.monotonic() >= deadline:
            return out
        time.sleep(0.2)


def _parse_offline_run(run_dir: Path) -> Dict[str, Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    out: Dict[str, Any] = {"summary": {}, "history": [], "config": {}, "run_id": None, "group": None,
                           "job_type": None, "exit_code": None, "preempting": False}
    for raw in _read_records(files[0]):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out.update(run_id=record.run.run_id, group=record.run.run_group, job_type=record.run.job_type)
            _items_to_dict(record.run.config.update, out["config"])
        elif kind == "config":
            _items_to_dict(record.config.update, out["config"])
        elif kind == "summary":
            _items_to_dict(record.summary.update, out["summary"])
        elif kind == "history":
            row: Dict[str, Any] = {}
            _items_to_dict(record.history.item, row)
            out["history"].append(row)
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
        elif kind == "preempting":
            out["preempting"] = True
    return out


def offline_runs(directory: Path) -> List[Path]:
    """The offline run directories under `<directory>/wandb/`, oldest first."""
    return sorted(Path(directory).glob("wandb/offline-run-*"))
