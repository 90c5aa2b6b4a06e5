"""The resumable submitit launcher: Hydra multirun cells as Slurm array tasks or local processes.

What it adds to hydra-submitit-launcher (see notes/orchestration.md for why each matters):
- every cell config is composed and validated before anything is submitted; one bad cell
  stops the launch with a message naming the cell and the key;
- cells whose `result.json` exists are skipped, and cells that resolve to the same directory
  (e.g. the baseline under two regimes) run once;
- it waits for results itself, polling the result pickles and `squeue` (or the local child
  process): a cell killed from outside is reported failed after `lost_grace_s`, with no `sacct`;
- on the job side, a failed cell's traceback is written into its directory and returned as a
  plain `RuntimeError`, and a non-JSON-able return value is refused, so the result pickle
  always unpickles; on requeue (`checkpoint`) the cell's W&B run is closed first;
- every launch is appended to `<sweep>/launches.jsonl` (cell dir, overrides, job id), which
  `editsweep status` reads.
"""


import json
import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
from omegaconf import DictConfig, OmegaConf

from .config import EXTRA_KEYS
from .job_state import LOCAL_ALIVE_STATES, SLURM_ALIVE_STATES, LivenessTracker, squeue_states

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 40
STATUS_LOG_EVERY_S = 60.0


class CellFailedError(RuntimeError):
    """A cell did not complete; the message says where its traceback is."""


@dataclass
class _Cell:
    index: int
    overrides: List[str]
    config: DictConfig
    dir: Path
    job: Any = None
    result: Optional[JobReturn] = None
    duplicate_of: Optional[int] = None
    skipped: bool = False
    adopted: bool = False


class _EditsweepLauncherMixin:
    """Shared by the Slurm and local variants; `_EXECUTOR` picks submitit's executor."""

    _EXECUTOR = "abstract"

    def __init__(self, **params: Any) -> None:
        self.options = {k: params.pop(k) for k in EXTRA_KEYS if k in params}
        super().__init__(**params)  # type: ignore[call-arg]

    # ------------------------------------------------------------------------------------------
    # job side
    # ------------------------------------------------------------------------------------------
    def __call__(self, sweep_overrides: List[str], job_dir_key: str, job_num: int, job_id: str,
                 singleton_state: Dict[type, Singleton]) -> JobReturn:
        started = time.time()
        try:
            ret = super().__call__(sweep_overrides, job_dir_key, job_num, job_id, singleton_state)  # type: ignore[misc]
        except Exception as exc:  # config loading failed before Hydra's own try
            raise RuntimeError("".join(traceback.format_exception(exc))) from None
        cell_dir = Path(str(ret.hydra_cfg.hydra.runtime.output_dir)) if ret.hydra_cfg is not None else None
        if ret.status == JobStatus.COMPLETED:
            try:
                json.dumps(ret._return_value)
            except (TypeError, ValueError) as exc:
                ret.status = JobStatus.FAILED
                ret._return_value = RuntimeError(
                    f"the task returned {type(ret._return_value).__name__}, which is not JSON-able ({exc}); "
                    "cells must return small plain dicts"
                )
        if ret.status == JobStatus.FAILED:
            exc = ret._return_value
            text = "".join(traceback.format_exception(exc)) if isinstance(exc, BaseException) else str(exc)
            if cell_dir is not None:
                _write_error_if_stale(cell_dir, text, started)
            ret._return_value = RuntimeError(text)  # always unpicklable-safe
        return ret

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Requeue (preemption or timeout): close the cell's W&B run before Slurm's signals kill it."""
        try:
            from editsweep.tracking import close_active_run

            close_active_run(preempting=True)
        except Exception:
            log.exception("closing the W&B run before requeue failed")
        return super().checkpoint(*args, **kwargs)  # type: ignore[misc]

    # ------------------------------------------------------------------------------------------
    # launching side
    # ------------------------------------------------------------------------------------------
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None  # type: ignore[attr-defined]
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()  # type: ignore[attr-defined]
        cells = self._compose_cells(job_overrides, initial_job_idx, sweep_dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)

        by_dir: Dict[Path, _Cell] = {}
        for cell in cells:
            first = by_dir.setdefault(cell.dir, cell)
            if first is not cell:
                cell.duplicate_of = first.index
            elif self.options.get("skip_done", True) and (cell.dir / "result.json").exists():
                cell.skipped = True
                cell.result = _completed_from_store(cell)
        to_run = [c for c in cells if c.duplicate_of is None and not c.skipped]
        for cell in cells:
            what = ("skip (done)" if cell.skipped else f"same cell as #{cell.duplicate_of}" if cell.duplicate_of is not None
                    else "submit")
            log.info("#%d %s -> %s: %s", cell.index, " ".join(filter_overrides(cell.overrides)), cell.dir.name, what)
        log.info("%d of %d cells to run (%d done, %d duplicates); sweep dir %s", len(to_run), len(cells),
                 sum(c.skipped for c in cells), sum(c.duplicate_of is not None for c in cells), sweep_dir)

        self._find_running(to_run, sweep_dir)
        if to_run:
            prepare = _load_function(self.options.get("prepare"))
            fresh = [c for c in to_run if c.job is None and c.result is None]
            if prepare is not None and fresh:
                prepare([c.config for c in fresh])
            executor = self._make_executor()
            if self._EXECUTOR == "slurm":
                self._submit_all(executor, fresh)
                self._record_launch(sweep_dir, cells)
                self._wait(to_run, limit=None, executor=None)
            else:
                self._record_launch(sweep_dir, cells)
                self._wait(to_run, limit=max(1, int(self.options.get("parallelism") or 1)), executor=executor)
        else:
            self._record_launch(sweep_dir, cells)

        index_to_cell = {c.index: c for c in cells}
        results = []
        for cell in cells:
            source = index_to_cell[cell.duplicate_of] if cell.duplicate_of is not None else cell
            assert source.result is not None
            results.append(source.result)
        self._log_summary(cells, sweep_dir)
        return results

    def _compose_cells(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, sweep_dir: Path) -> List[_Cell]:
        """Compose and validate every cell; raise one error listing all invalid cells."""
        from editsweep.config_schema import ConfigError

        validate = _load_function(self.options.get("validator"))
        cells, problems = [], []
        for offset, overrides in enumerate(job_overrides):
            index = initial_job_idx + offset
            label = " ".join(filter_overrides(overrides)) or "(no overrides)"
            try:
                cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))  # type: ignore
                if validate is not None:
                    validate(cfg)
                subdir = _sweep_subdir(cfg)
            except Exception as exc:  # ConfigError, or whatever the validator raised
                reason = str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
                problems.append(f"  #{index} [{label}]: {reason}")
                continue
            cells.append(_Cell(index=index, overrides=list(overrides), config=cfg, dir=sweep_dir / subdir))
        if problems:
            raise ConfigError(f"{len(problems)} of {len(job_overrides)} cells have an invalid config; nothing was submitted:\n"
                              + "\n".join(problems))
        return cells

    def _make_executor(self) -> Any:
        import submitit

        params = dict(self.params)  # type: ignore[attr-defined]
        folder = params.pop("submitit_folder")
        init = {}
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params.pop("max_num_timeout")
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, folder=folder, **init)
        base_keys = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base_keys else f"{self._EXECUTOR}_{k}": v for k, v in params.items()})
        return executor

    def _job_args(self, cell: _Cell) -> tuple:
        return (cell.overrides, "hydra.sweep.dir", cell.index, f"job_id_for_{cell.index}", Singleton.get_state())

    def _find_running(self, cells: List[_Cell], sweep_dir: Path) -> None:
        """Cells still queued or running from an earlier launch (whose launcher died) are waited
        for, never submitted twice: two jobs on one cell store would duplicate its samples."""
        from editsweep.store import marker_process_alive, read_json, read_launches

        launches = read_launches(sweep_dir)
        markers = {c.index: read_json(c.dir / "running.json") or {} for c in cells}
        if self._EXECUTOR != "slurm":
            for cell in cells:
                marker = markers[cell.index]
                if marker_process_alive(marker):
                    cell.result = _failed(cell, f"cell {cell.dir.name} is already running in process {marker['pid']} "
                                                "(started by another launch); not started twice")
                    log.error("#%d %s: already running in process %s; not started twice", cell.index, cell.dir.name,
                              marker["pid"])
            return
        candidates = {c.index: markers[c.index].get("job_id") or launches.get(c.dir.name, {}).get("job_id")
                      for c in cells}
        candidates = {i: j for i, j in candidates.items() if j}
        if not candidates:
            return
        try:
            states = squeue_states(candidates.values())
        except RuntimeError as exc:
            log.warning("%s; cannot tell whether earlier jobs still run", exc)
            return
        from submitit.slurm.slurm import SlurmJob

        for cell in cells:
            job_id = candidates.get(cell.index)
            if job_id and states.get(job_id) in SLURM_ALIVE_STATES:
                cell.job = SlurmJob(folder=self.params["submitit_folder"], job_id=job_id)  # type: ignore[attr-defined]
                cell.adopted = True
                log.info("#%d %s: still %s as job %s from an earlier launch; waiting for it instead of submitting "
                         "it again", cell.index, cell.dir.name, states[job_id], job_id)

    def _submit_all(self, executor: Any, cells: List[_Cell]) -> None:
        if not cells:
            return
        jobs = executor.map_array(self, *zip(*[self._job_args(c) for c in cells]))
        for cell, job in zip(cells, jobs):
            cell.job = job
        log.info("submitted %d cell(s): Slurm job %s", len(jobs), jobs[0].job_id.split("_")[0] if jobs else "-")

    def _wait(self, cells: List[_Cell], limit: Optional[int], executor: Any) -> None:
        """Collect results; with `executor`, submit (locally) while fewer than `limit` run."""
        poll_s = float(self.options.get("poll_s", 5.0))
        liveness = LivenessTracker(float(self.options.get("lost_grace_s", 30.0)))
        active: List[_Cell] = [c for c in cells if c.job is not None and c.result is None]
        queue: List[_Cell] = [c for c in cells if c.job is None and c.result is None] if executor is not None else []
        last_poll = 0.0
        last_status_log = time.time()
        done_count = 0
        while queue or active:
            while executor is not None and queue and len(active) < (limit or 1):
                cell = queue.pop(0)
                cell.job = executor.submit(self, *self._job_args(cell))
                active.append(cell)
                log.info("#%d started (job %s)", cell.index, cell.job.job_id)
            now = time.time()
            poll = now - last_poll >= poll_s
            if poll:
                last_poll = now
                states = self._job_states([c.job for c in active])
                for cell in active:
                    if states is None:  # the scheduler did not answer: no news is not bad news
                        break
                    state = states.get(cell.job.job_id)
                    alive = state in (SLURM_ALIVE_STATES if self._EXECUTOR == "slurm" else LOCAL_ALIVE_STATES)
                    liveness.observe(cell.job.job_id, state, alive, now)
            for cell in list(active):
                if cell.job.paths.result_pickle.exists():
                    cell.result = self._collect(cell)
                elif poll and liveness.lost(cell.job.job_id, now):
                    cell.result = self._lost(cell, liveness.last_state.get(cell.job.job_id))
                if cell.result is not None:
                    active.remove(cell)
                    done_count += 1
                    if cell.result.status == JobStatus.COMPLETED:
                        log.info("#%d %s: done (%d/%d)", cell.index, cell.dir.name, done_count, len(cells))
            if time.time() - last_status_log >= STATUS_LOG_EVERY_S:
                last_status_log = time.time()
                log.info("%d/%d cells finished, %d running or queued, %d not started", done_count, len(cells),
                         len(active), len(queue))
            if queue or active:
                time.sleep(1.0)

    def _job_states(self, jobs: List[Any]) -> Optional[Dict[str, Optional[str]]]:
        """{job id: state (None: unknown to the scheduler)}, or None when the scheduler did not answer."""
        if not jobs:
            return {}
        if self._EXECUTOR == "slurm":
            try:
                return squeue_states(j.job_id for j in jobs)
            except RuntimeError as exc:
                log.warning("%s; job states unknown this round", exc)
                return None
        return {j.job_id: j.state for j in jobs}

    def _collect(self, cell: _Cell) -> JobReturn:
        try:
            ret = cell.job.results()[0]
        except Exception as exc:  # the job failed outside Hydra's try, or the pickle is unreadable
            message = f"cell {cell.dir.name} (job {cell.job.job_id}) failed outside the task:\n{exc}"
            _write_error(cell.dir, message)
            return _failed(cell, message)
        if ret.status != JobStatus.COMPLETED:
            first_line = str(ret._return_value).strip().splitlines()[-1:] or ["(no message)"]
            log.error("#%d %s: FAILED: %s (traceback: %s)", cell.index, cell.dir.name, first_line[0],
                      cell.dir / "error.txt")
            return _failed(cell, f"cell {cell.dir.name} failed: {first_line[0]}; traceback in {cell.dir / 'error.txt'}")
        return ret

    def _lost(self, cell: _Cell, state: Optional[str]) -> JobReturn:
        """The job ended (or vanished) without a result: it was killed from outside."""
        state_text = state or "unknown to squeue"
        stderr = ""
        try:
            stderr = "\n".join((cell.job.stderr() or "").splitlines()[-STDERR_TAIL_LINES:])
        except Exception:  # log files may be missing on a lost node
            pass
        message = (f"cell {cell.dir.name}: job {cell.job.job_id} ended ({state_text}) without a result; "
                   f"it was killed from outside (scancel, OOM kill, node loss or time limit).\n"
                   f"job logs: {cell.job.paths.stdout} {cell.job.paths.stderr}\n")
        if stderr:
            message += f"last lines of its stderr:\n{stderr}\n"
        _write_error(cell.dir, message)
        try:
            (cell.dir / "running.json").unlink()
        except FileNotFoundError:
            pass
        log.error("#%d %s: FAILED: job %s %s without a result (details: %s)", cell.index, cell.dir.name,
                  cell.job.job_id, state_text, cell.dir / "error.txt")
        return _failed(cell, f"cell {cell.dir.name}: job {cell.job.job_id} ended ({state_text}) without a result; "
                             f"see {cell.dir / 'error.txt'}")

    def _record_launch(self, sweep_dir: Path, cells: List[_Cell]) -> None:
        from editsweep.store import record_launch

        hydra_overrides = list(OmegaConf.to_container(self.config.hydra.overrides.hydra))  # type: ignore[attr-defined]
        record_launch(sweep_dir, [
            {
                "cell": cell.dir.name,
                "overrides": list(filter_overrides(cell.overrides)),
                "hydra_overrides": hydra_overrides,
                "job_id": cell.job.job_id if cell.job is not None else None,
                "executor": self._EXECUTOR,
                "skipped": cell.skipped,
            }
            for cell in cells if cell.duplicate_of is None
        ])

    def _log_summary(self, cells: List[_Cell], sweep_dir: Path) -> None:
        failed = [c for c in cells if c.duplicate_of is None and c.result is not None
                  and c.result.status != JobStatus.COMPLETED]
        ran = [c for c in cells if c.duplicate_of is None]
        log.info("sweep %s: %d cell(s) done, %d failed", sweep_dir, len(ran) - len(failed), len(failed))
        if failed:
            log.error("failed cells: %s. Rerun the same command to retry them (done cells are skipped); "
                      "`editsweep status %s` lists them with their overrides.",
                      ", ".join(c.dir.name for c in failed), sweep_dir)


def _sweep_subdir(cfg: DictConfig) -> str:
    """The cell's subdir exactly as the job will compute it; it must not depend on the job number."""
    from editsweep.config_schema import ConfigError

    raw = str(OmegaConf.to_container(cfg.hydra.sweep, resolve=False).get("subdir"))
    if "hydra.job." in raw:
        raise ConfigError(f"hydra.sweep.subdir={raw} depends on the job number; the resumable launcher finds "
                          "cells by their directory, so keep the default ${editsweep_cell_subdir:}")
    return str(OmegaConf.select(cfg, "hydra.sweep.subdir"))


def _load_function(spec: Optional[str]) -> Any:
    """"module:function" -> the function (None when not configured)."""
    if not spec:
        return None
    import importlib

    module_name, _, name = str(spec).partition(":")
    return getattr(importlib.import_module(module_name), name)


def _failed(cell: _Cell, message: str) -> JobReturn:
    ret = JobReturn(overrides=cell.overrides, status=JobStatus.FAILED)
    ret.return_value = CellFailedError(message)
    ret.status = JobStatus.FAILED
    return ret


def _completed_from_store(cell: _Cell) -> JobReturn:
    try:
        result = json.loads((cell.dir / "result.json").read_text())
    except (OSError, ValueError):
        result = {}
    value = {"cell": cell.dir.name, "status": "done", "skipped": True, "cell_id": result.get("cell_id")}
    ret = JobReturn(overrides=cell.overrides, status=JobStatus.COMPLETED)
    ret.return_value = value
    return ret


def _write_error(cell_dir: Path, text: str) -> None:
    from editsweep.store import write_text_atomic

    try:
        write_text_atomic(cell_dir / "error.txt", text if text.endswith("\n") else text + "\n")
    except OSError:
        log.exception("could not write %s", cell_dir / "error.txt")


def _write_error_if_stale(cell_dir: Path, text: str, since: float) -> None:
    """Keep the cell's own error.txt when it wrote one during this run; else write the traceback."""
    path = cell_dir / "error.txt"
    try:
        if path.stat().st_mtime >= since:
            return
    except FileNotFoundError:
        pass
    _write_error(cell_dir, text)


class EditsweepSlurmLauncher(_EditsweepLauncherMixin, BaseSubmititLauncher):
    _EXECUTOR = "slurm"


class EditsweepLocalLauncher(_EditsweepLauncherMixin, BaseSubmititLauncher):
    _EXECUTOR = "local"
