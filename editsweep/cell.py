"""One sweep cell end to end: config -> benchmark, model, editor, sandbox -> regime -> result.json.

`run_cell(cfg)` is what `launch.py` calls for each Hydra job. It validates the config, opens
(or resumes) the cell store in `<sweep.root>/<sweep.name>/<cell subdir>/`, starts the W&B run,
runs the regime (editsweep.regimes) unit by unit, logs the per-sample table and summary,
writes `result.json` last, and returns a small JSON-able dict. On failure it writes the
traceback to `error.txt`, closes the W&B run with exit code 1 and re-raises. On SIGTERM (scancel,
preemption) it stops after the unit it is on and leaves without a result or an error of its own
(`regimes.CellStopped`). A finished cell
(result.json present) returns at once. Nothing here branches on the editing method.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional

from editsweep.config_schema import model_key

log = logging.getLogger(__name__)


# --- config helpers (also used by config_schema.validate_config) ----------------------------------------

def resolve_method_hparams(method: Mapping[str, Any], model: Mapping[str, Any]) -> Dict[str, Any]:
    """The method's `hparams` updated by its `per_model` entry for this model, checked by the method."""
    from editsweep.editing import editor_class

    name = str(method["name"])
    values = dict(method.get("hparams") or {})
    values.update((method.get("per_model") or {}).get(model_key(model)) or {})
    editor_class(name).hparams_class.from_dict(name, values)
    return values


def resolve_generation_config(generation: Mapping[str, Any]) -> Any:
    from editsweep.generation import GenerationConfig

    return GenerationConfig.from_mapping(dict(generation))


def plain_config(cfg: Any) -> Dict[str, Any]:
    from omegaconf import OmegaConf

    if OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True, throw_on_missing=True)
    return dict(cfg)


def cpus_available() -> int:
    """CPUs this cell may use: Slurm's allocation, else the process's affinity."""
    for var in ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"):
        if os.environ.get(var, "").isdigit():
            return max(1, int(os.environ[var]))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def current_job_id() -> Optional[str]:
    if os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID")


# --- loading the parts ---------------------------------------------------------------------------

def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_cell_model(model: Mapping[str, Any], runtime: Mapping[str, Any]):
    """(model, tokenizer) on the cell's device; `model.path` wins over `model.name` when given.

    `model.random_weights: true` (e.g. `+model.random_weights=true` with a paper model) builds
    that architecture with random weights and the local tokenizer: no download, for timing runs.
    """
    import torch

    from editsweep.models.loading import load_model

    device = resolve_device(str(runtime.get("device", "auto")))
    if device == "cpu":
        torch.set_num_threads(int(runtime.get("threads") or cpus_available()))
    dtype = runtime.get("dtype") or model.get("dtype")
    if model.get("random_weights"):
        from editsweep.models.configs import build_random_model
        from editsweep.models.loading import local_tokenizer

        if dtype in (None, "auto"):
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        log.warning("model %s: RANDOM weights (random_weights=true), for timing only", model["name"])
        return build_random_model(model_key(model), dtype=dtype, device=device), local_tokenizer(str(model["arch"]))
    return load_model(model.get("path") or model["name"], device=device, dtype=dtype, expect=model.get("expect"))


def open_sandbox(sandbox: Mapping[str, Any]):
    from editsweep.sandbox import SandboxPool
    from editsweep.sandbox.worker import WorkerLimits

    limits = WorkerLimits(memory_budget_bytes=int(sandbox["memory_mb"]) * 2**20)
    pool = SandboxPool(workers=sandbox.get("workers") or cpus_available(), jail=not sandbox.get("no_jail", False),
                       timeout_s=float(sandbox["timeout_s"]), limits=limits)
    return pool.start()


@contextlib.contextmanager
def benchmark_lock(data: Mapping[str, Any]) -> Iterator[None]:
    """An exclusive flock next to the benchmark cache while it is checked, built and read."""
    import fcntl

    root = Path(os.path.expandvars(os.path.expanduser(str(data.get("cache_dir") or ".cache/editsweep/benchmark"))))
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{data.get('name') or 'benchmark'}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_cells(configs: Any) -> None:
    """Before a launch: build (or check) each distinct benchmark once, in the launching process,
    so the cells only read it. A broken data config then fails before anything is submitted."""
    from editsweep.benchmark import ensure_benchmark

    seen = set()
    for cfg in configs:
        data = plain_config(cfg["data"])
        key = repr(sorted(data.items()))
        if key in seen:
            continue
        seen.add(key)
        log.info("preparing the %s benchmark for the sweep", data.get("name"))
        with benchmark_lock(data):
            ensure_benchmark(data)


# --- the cell ----------------------------------------------------------------------------------

@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[Any]:
    """Yields `reason()`: None until SIGTERM arrives, then why the cell should stop at its next unit
    boundary. Slurm sends SIGTERM on scancel and preemption and kills only KillWait later; submitit
    merely logs it, so without this a cancelled cell kept editing and could even finish as done."""
    received: Dict[str, str] = {}
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        received.setdefault("reason", f"signal {signal.Signals(signum).name} received")
        log.warning("SIGTERM received: the cell stops after the unit it is working on")

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield lambda: received.get("reason")
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_cell_from_hydra(cfg: Any) -> Dict[str, Any]:
    """The Hydra task function's body: the cell directory is Hydra's output directory."""
    from hydra.core.hydra_config import HydraConfig

    try:
        output_dir = Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # not inside a Hydra job
        output_dir = None
    return run_cell(cfg, cell_dir=output_dir)


def run_cell(cfg: Any, cell_dir: Optional[Path] = None) -> Dict[str, Any]:
    """Run (or resume, or skip when done) one cell; returns a small JSON-able dict."""
    from editsweep.config_schema import cell_id as compute_cell_id
    from editsweep.regimes import CellStopped
    from editsweep.config_schema import cell_labels, cell_subdir, identity, is_baseline, validate_config
    from editsweep.store import CellStore
    from editsweep.tracking import Tracker, run_id_for

    validate_config(cfg)
    plain = plain_config(cfg)
    plain.pop("hydra", None)
    logging.getLogger("editsweep").setLevel(str(plain["runtime"]["log_level"]).upper())
    cid = compute_cell_id(cfg)
    subdir = cell_subdir(cfg)
    sweep_dir = Path(plain["sweep"]["root"]) / plain["sweep"]["name"]
    expected = sweep_dir / subdir
    if cell_dir is None:
        cell_dir = expected
    elif Path(cell_dir).resolve() != expected.resolve():
        log.warning("cell directory %s is not the one its config names (%s); using %s", cell_dir, expected, cell_dir)
    cell_dir = Path(cell_dir)
    labels = cell_labels(cfg)
    if is_baseline(cfg):
        plain["regime"] = identity(cfg)["regime"]  # the baseline runs once, under the instant regime

    store = CellStore.open(cell_dir)
    owner = (store.cell_info() or {}).get("cell_id")
    if owner is not None and owner != cid:
        raise ValueError(
            f"cell directory {cell_dir} holds the store of another cell (id {owner}, this cell is {cid}); "
            f"refusing to resume or skip it: point this cell at its own directory ({expected})"
        )
    if store.is_done():
        log.info("cell %s is done (result.json exists); nothing to do", cell_dir.name)
        return _small_result(store.result() or {}, skipped=True)
    store.write_cell_info({"cell_id": cid, "cell": cell_dir.name, **labels, "config": identity(cfg)})
    store.mark_running(current_job_id())
    tracker = Tracker(
        plain["tracking"],
        run_id=run_id_for(sweep_dir, cid),
        group=plain["sweep"]["name"],
        job_type=labels["method"],
        name=cell_dir.name,
        config={**labels, **plain},
        tags=[f"{k}={v}" for k, v in labels.items()],
        run_dir=cell_dir,
    )
    started = time.time()
    try:
        tracker.start()
        for record in store.evals():  # a restarted run shows the committed curve again
            tracker.log_step(record["step"], _step_metrics(record))
        with stop_on_sigterm() as stop_requested:
            result = _run_regime(plain, store, tracker, cid, cell_dir.name, labels, started, stop_requested)
        tracker.log_samples(store.samples())
        tracker.set_summary(_summary(result))
        store.write_result(result)
        tracker.finish(exit_code=0)
        log.info("cell %s done: %d samples in %.1fs", cell_dir.name, result["n_samples"], result["wall_s"])
        return _small_result(result)
    except CellStopped as stopped:  # scancel or preemption: no result and no error of our own
        log.warning("cell %s stopped: %s", cell_dir.name, stopped)
        tracker.finish(exit_code=1)
        raise
    except Exception:
        text = traceback.format_exc()
        log.error("cell %s failed:\n%s", cell_dir.name, text)
        store.write_error(text)
        tracker.finish(exit_code=1)
        raise
    finally:
        store.clear_running()


def _run_regime(plain: Dict[str, Any], store: Any, tracker: Any, cid: str, cell_name: str,
                labels: Mapping[str, str], started: float,
                stop_requested: Any) -> Dict[str, Any]:
    from editsweep.benchmark import ensure_benchmark, load_benchmark, load_catalog
    from editsweep.editing import editor_class
    from editsweep.regimes import REGIMES, Evaluator, RegimeRun, build_plan, final_metrics

    progress = bool(plain["runtime"]["progress"])
    t0 = time.perf_counter()
    with benchmark_lock(plain["data"]):  # cells of one sweep must not rebuild the same directory at once
        bench_dir = ensure_benchmark(plain["data"])
        problems = load_benchmark(bench_dir)
        catalog = load_catalog(bench_dir)
    plan = build_plan(problems, plain["subset"], plain["regime"])
    log.info("benchmark %s: %d problems; cell edits %d API(s), subsets %s", bench_dir, len(problems), len(plan.apis),
             ",".join(plan.subsets))
    t_bench = time.perf_counter() - t0

    t0 = time.perf_counter()
    model, tokenizer = load_cell_model(plain["model"], plain["runtime"])
    t_model = time.perf_counter() - t0
    hparams = resolve_method_hparams(plain["method"], plain["model"])
    editor = editor_class(plain["method"]["name"])(**hparams)
    generation = resolve_generation_config(plain["generation"])
    regime_name = str(plain["regime"]["name"])

    pool = open_sandbox(plain["sandbox"])
    try:
        evaluator = Evaluator(model, tokenizer, generation, pool, catalog, seed=int(plain["seed"]),
                              timeout_s=float(plain["sandbox"]["timeout_s"]), progress=progress)
        run = RegimeRun(model=model, tokenizer=tokenizer, editor=editor, evaluator=evaluator, plan=plan, store=store,
                        regime=plain["regime"], seed=int(plain["seed"]), progress=progress,
                        on_unit=lambda step, record: tracker.log_step(step, _step_metrics(record)),
                        stop_requested=stop_requested,
                        stage_seconds=dict(store.progress.get("stage_seconds") or {}))
        run.add_seconds({"benchmark": t_bench, "load_model": t_model})
        REGIMES[regime_name](run)
    finally:
        pool.close()

    rows = store.samples()
    return {
        "cell_id": cid,
        "cell": cell_name,
        **labels,
        "status": "done",
        "n_samples": len(rows),
        "n_units": int(store.progress.get("units", 0)),
        "last_step": store.last_step,
        "apis": plan.apis,
        "metrics": final_metrics(regime_name, rows),
        "seconds": {k: round(v, 3) for k, v in run.stage_seconds.items()},
        "wall_s": round(time.time() - started, 3),
        "finished_at": time.time(),
    }


def _step_metrics(record: Mapping[str, Any]) -> Dict[str, Any]:
    """What W&B gets per evaluation step: the metrics per subset, the edit count, stage seconds."""
    return {**record["metrics"], "n_edits": record["n_edits"], "seconds": record.get("seconds", {})}


def _summary(result: Mapping[str, Any]) -> Dict[str, Any]:
    """What the W&B summary holds: the headline metrics per subset plus counts."""
    return {"n_samples": result["n_samples"], "n_units": result["n_units"], **result["metrics"]}


def _small_result(result: Mapping[str, Any], skipped: bool = False) -> Dict[str, Any]:
    return {"cell_id": result.get("cell_id"), "cell": result.get("cell"), "status": result.get("status", "done"),
            "n_samples": result.get("n_samples"), "skipped": skipped}
