"""The two editing regimes, as loops over committed units of the cell store.

- instant: for each API in turn, apply its edit requests, evaluate that API's problems (or
  the specificity set) with that API deprecated, restore the original weights, check that the
  model is bit-for-bit back (fingerprint of every parameter and buffer), commit the unit.
- sequential: APIs are edited one after another in a seeded order and never restored; after
  every `eval_every` edits (and after the last) the model is evaluated on the problems of
  every API edited so far (and the specificity set) with all of them deprecated; each
  evaluation point is a unit, so the curve is `evals.jsonl`. A resumed cell re-applies the
  edits of its committed units (not logged again) and continues after them.

Nothing here depends on the method: the editor is anything with `apply(model, tok, requests)`
returning a handle with `restore()`. Heavy imports happen inside functions.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

log = logging.getLogger(__name__)

SUBSETS = ("reliability", "generalization", "specificity")


class RestoreError(RuntimeError):
    """The model is not exactly the original after an instant edit was restored."""


# --- which problems a cell evaluates ------------------------------------------------------------------

@dataclass
class Plan:
    """The APIs a cell edits and, per API, the problems it evaluates."""

    subsets: Tuple[str, ...]
    apis: List[str]
    reliability: Dict[str, List[dict]]
    generalization: Dict[str, List[dict]]
    specificity: List[dict]

    def problems(self, apis: Sequence[str]) -> List[dict]:
        """The problems to evaluate once `apis` are edited (and deprecated), in a stable order."""
        chosen: List[dict] = []
        for api in apis:
            if "reliability" in self.subsets:
                chosen.extend(self.reliability[api])
            if "generalization" in self.subsets:
                chosen.extend(self.generalization[api])
        if "specificity" in self.subsets:
            chosen.extend(self.specificity)
        return chosen

    def requests(self, api: str) -> List[Any]:
        """The edit requests of one API: one per reliability problem of that API.

        Built with `EditRequest.from_record`, so each request knows where the problem prompt ends
        (`context_end`) and is tokenized as sampling tokenizes it; without it GRACE's key never
        matches at generation time and the other methods are taught in a context never sampled.
        """
        from editsweep.editing import EditRequest

        return [EditRequest.from_record(p) for p in self.reliability[api]]


def build_plan(problems: Sequence[Mapping[str, Any]], subset: Mapping[str, Any], regime: Mapping[str, Any]) -> Plan:
    """Select the cell's APIs and problems from the benchmark records (deterministic: sorted ids)."""
    name = str(subset["name"])
    subsets = SUBSETS if name == "all" else (name,)
    by_id = sorted(problems, key=lambda p: str(p["id"]))
    apis = sorted({str(p["api"]) for p in by_id if p.get("subset") == "reliability" and p.get("edit_request")})
    if not apis:
        raise ValueError("the benchmark has no reliability problem with an edit request: nothing to edit")
    if regime.get("max_apis"):
        apis = apis[: int(regime["max_apis"])]
    limit = subset.get("max_problems_per_api")

    def per_api(kind: str) -> Dict[str, List[dict]]:
        out: Dict[str, List[dict]] = {api: [] for api in apis}
        for p in by_id:
            if p.get("subset") == kind and p.get("api") in out:
                if kind == "reliability" and not p.get("edit_request"):
                    continue
                out[p["api"]].append(dict(p))
        return {api: (items[: int(limit)] if limit else items) for api, items in out.items()}

    specificity = [dict(p) for p in by_id if p.get("subset") == "specificity"]
    if subset.get("max_specificity"):
        specificity = specificity[: int(subset["max_specificity"])]
    plan = Plan(subsets, apis, per_api("reliability"), per_api("generalization"), specificity)
    if "specificity" in subsets and not specificity:
        raise ValueError("subset includes specificity but the benchmark has no specificity problem")
    if "generalization" in subsets and not any(plan.generalization.values()):
        raise ValueError("subset includes generalization but no selected API has a generalization problem")
    return plan


# --- evaluation: generate, execute, score ---------------------------------------------------------------

@dataclass
class Evaluator:
    """Samples n completions per problem, runs them in the sandbox, scores them into store rows."""

    model: Any
    tokenizer: Any
    generation: Any  # editsweep.generation.GenerationConfig
    pool: Any  # editsweep.sandbox.SandboxPool (started)
    catalog: Mapping[str, Mapping[str, Any]]
    seed: int
    timeout_s: Optional[float] = None
    progress: bool = True

    def evaluate(self, step: int, n_edits: int, problems: Sequence[Mapping[str, Any]],
                 active_apis: Sequence[str]) -> Tuple[List[dict], Dict[str, float]]:
        from editsweep.generation import derive_seed, sample
        from editsweep.prompts import prepare
        from editsweep.scoring import adoption_class, error_class

        seconds: Dict[str, float] = {}
        if not problems:
            return [], seconds
        n = int(self.generation.n_samples)
        prompts, stops = prepare(problems, self.generation)
        seeds = [derive_seed(self.generation.seed, self.seed, p["id"]) for p in problems]
        started = time.perf_counter()
        completions = sample(self.model, self.tokenizer, prompts, n, self.generation, seeds=seeds, stops=stops,
                             progress=self.progress)
        seconds["generate"] = time.perf_counter() - started

        active = sorted(set(active_apis))
        install = {self.catalog[a]["new_api"]: self.catalog[a]["source"] for a in active}
        new_names = sorted(install)
        tasks, keys = [], []
        for problem, prompt, samples in zip(problems, prompts, completions):
            for index, completion in enumerate(samples):
                tasks.append({
                    "id": f"{step}:{problem['id']}:{index}",
                    "program": prompt + completion,
                    "tests": list(problem["tests"]),
                    "entry_point": problem.get("entry_point"),
                    "remove": active,
                    "install": install,
                    "timeout_s": self.timeout_s,
                })
                keys.append((problem, prompt, index, completion))
        started = time.perf_counter()
        results = list(self.pool.run(tasks))
        seconds["execute"] = time.perf_counter() - started

        started = time.perf_counter()
        rows = []
        for (problem, prompt, index, completion), task, result in zip(keys, tasks, results):
            if result["id"] != task["id"]:
                raise RuntimeError(f"sandbox returned result {result['id']!r} for task {task['id']!r}")
            rows.append({
                "step": step,
                "n_edits": n_edits,
                "problem_id": problem["id"],
                "subset": problem["subset"],
                "api": problem.get("api"),
                "new_api": problem.get("new_api"),
                "sample": index,
                "completion": completion,
                "status": result["status"],
                "compiled": result["compiled"],
                "tests_passed": result["tests_passed"],
                "tests_total": result["tests_total"],
                "error_type": result.get("error_type"),
                "error_message": result.get("error_message"),
                "adoption": adoption_class(completion, result["status"], problem.get("api"), problem.get("new_api"),
                                           prompt=prompt, subset=problem["subset"], active_new_apis=new_names),
                "error_class": error_class(result, task["program"], removed_apis=active, new_apis=new_names),
                "duration_s": result.get("duration_s"),
            })
        seconds["score"] = time.perf_counter() - started
        return rows, seconds


def metrics_by_subset(rows: Sequence[Mapping[str, Any]], key_by_step: bool = False) -> Dict[str, Dict[str, Any]]:
    """`summarize` per subset present in `rows`; with key_by_step a problem counts once per step."""
    from editsweep.scoring import summarize

    out: Dict[str, Dict[str, Any]] = {}
    for subset in SUBSETS:
        chosen = [r for r in rows if r["subset"] == subset]
        if not chosen:
            continue
        if key_by_step:  # pool the steps: a (step, problem) pair is one problem of the pooled point
            chosen = [{**r, "problem_id": f"{r['step']}/{r['problem_id']}", "step": None} for r in chosen]
        out[subset] = summarize(chosen)
    return out


# --- restore check --------------------------------------------------------------------------------

def model_fingerprint(model: Any) -> Dict[str, Tuple]:
    """Per parameter/buffer: shape, dtype and two integer checksums of the raw bits; plus the
    module tree and hook counts, so added wrappers or hooks are caught too."""
    import torch

    prints: Dict[str, Tuple] = {}
    tensors = list(model.named_parameters()) + [(f"buffer:{n}", b) for n, b in model.named_buffers()]
    for name, tensor in tensors:
        data = tensor.detach()
        flat = data.reshape(-1)
        if flat.element_size() == 2:
            bits = flat.view(torch.int16).to(torch.int64)
        elif flat.element_size() == 4:
            bits = flat.view(torch.int32).to(torch.int64)
        elif flat.element_size() == 8:
            bits = flat.view(torch.int64)
        else:
            bits = flat.view(torch.uint8).to(torch.int64)
        weights = torch.arange(bits.numel(), device=bits.device, dtype=torch.int64) % 1021 + 1
        prints[name] = (tuple(data.shape), str(data.dtype), int(bits.sum()), int((bits * weights).sum()))
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    prints["__modules__"] = (tuple(n for n, _ in model.named_modules()), hooks)
    return prints


def check_restored(original: Mapping[str, Tuple], model: Any, api: str) -> None:
    current = model_fingerprint(model)
    changed = sorted(k for k in set(original) | set(current) if original.get(k) != current.get(k))
    if changed:
        shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
        raise RestoreError(f"after restoring the edit of {api!r} the model differs from the original in: {shown}")


def peak_memory_gb() -> float:
    import resource

    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)  # KiB -> GiB


# --- the regimes ------------------------------------------------------------------------------------

class CellStopped(BaseException):
    """Raised at a unit boundary when the cell was asked to stop (SIGTERM from scancel or preemption):
    the committed units stay, nothing half-done is written, and a rerun resumes after them.

    A BaseException, like KeyboardInterrupt: the scheduler is taking the job away, so the job must
    end without a result. Hydra and submitit catch only Exception, so no failed result is pickled;
    the launcher then sees the job's own state: CANCELLED after scancel (reported as such), or
    requeued after preemption (waited for: the requeued job resumes from the store)."""


@dataclass
class RegimeRun:
    """Everything a regime loop needs; `on_unit(step, evals_record)` streams metrics (W&B)."""

    model: Any
    tokenizer: Any
    editor: Any
    evaluator: Evaluator
    plan: Plan
    store: Any  # editsweep.store.CellStore
    regime: Mapping[str, Any]
    seed: int
    on_unit: Callable[[int, Dict[str, Any]], None] = lambda step, record: None
    stop_requested: Callable[[], Optional[str]] = lambda: None
    progress: bool = True
    stage_seconds: Dict[str, float] = field(default_factory=dict)

    def add_seconds(self, seconds: Mapping[str, float]) -> None:
        for key, value in seconds.items():
            self.stage_seconds[key] = self.stage_seconds.get(key, 0.0) + float(value)

    def apply_edit(self, api: str) -> Tuple[Any, Dict[str, Any], float]:
        requests = self.plan.requests(api)
        started = time.perf_counter()
        handle = self.editor.apply(self.model, self.tokenizer, requests)
        seconds = time.perf_counter() - started
        record = {"apis": [api], "n_requests": len(requests), "seconds": round(seconds, 4),
                  "peak_mem_gb": peak_memory_gb()}
        info = getattr(handle, "info", None)
        if info:
            record["info"] = info
        return handle, record, seconds

    def commit(self, step: int, edits: List[dict], rows: List[dict], evals: List[dict]) -> None:
        started = time.perf_counter()
        self.store.commit_unit(step, edits=edits, samples=rows, evals=evals,
                               extra_progress={"stage_seconds": dict(self.stage_seconds)})
        self.add_seconds({"store": time.perf_counter() - started})

    def unit_done(self, step: int, record: Dict[str, Any]) -> None:
        """Streams a committed unit's metrics, then stops the cell here if it was asked to."""
        self.on_unit(step, record)
        reason = self.stop_requested()
        if reason:
            raise CellStopped(f"stopped after committing unit {step} ({reason}); rerunning the cell resumes "
                              f"after it")


def _eval_record(step: int, n_edits: int, apis: Sequence[str], rows: List[dict], seconds: Mapping[str, float]) -> dict:
    return {"step": step, "n_edits": n_edits, "apis": list(apis), "n_samples": len(rows),
            "metrics": metrics_by_subset(rows), "seconds": {k: round(v, 4) for k, v in seconds.items()}}


def _bar(total: int, initial: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, leave=False)


def run_instant(run: RegimeRun) -> None:
    """One API at a time; the model is restored and checked before the next API."""
    apis = run.plan.apis
    original = model_fingerprint(run.model) if run.regime.get("check_restore", True) else None
    done = sum(1 for step in range(len(apis)) if run.store.is_committed(step))
    with _bar(len(apis), done, "instant edits", run.progress) as bar:
        for step, api in enumerate(apis):
            if run.store.is_committed(step):
                continue
            handle, edit, edit_s = run.apply_edit(api)
            rows, seconds = run.evaluator.evaluate(step, 1, run.plan.problems([api]), [api])
            seconds = {"edit": edit_s, **seconds}
            started = time.perf_counter()
            handle.restore()
            if original is not None:
                check_restored(original, run.model, api)
            seconds["restore"] = time.perf_counter() - started
            run.add_seconds(seconds)
            record = _eval_record(step, 1, [api], rows, seconds)
            run.commit(step, [{"step": step, **edit}], rows, [record])
            run.unit_done(step, record)
            log.info("instant step %d/%d (%s): %d samples, %.1fs", step + 1, len(apis), api, len(rows),
                     sum(seconds.values()))
            bar.update(1)


def edit_order(apis: Sequence[str], seed: int) -> List[str]:
    order = list(apis)
    random.Random(seed).shuffle(order)
    return order


def eval_points(n_apis: int, every: int) -> List[int]:
    """After every `every` edits, and after the last one."""
    points = list(range(every, n_apis + 1, every))
    if not points or points[-1] != n_apis:
        points.append(n_apis)
    return points


def run_sequential(run: RegimeRun) -> None:
    """Edits accumulate in a seeded order; an evaluation point every `eval_every` edits."""
    seed = run.regime.get("order_seed")
    order = edit_order(run.plan.apis, run.seed if seed is None else int(seed))
    stored_order = run.store.progress.get("order")
    if stored_order is not None and stored_order != order:
        raise RuntimeError(f"{run.store.dir}: the stored edit order differs from this config's order; "
                           "the cell directory belongs to another configuration")
    points = eval_points(len(order), int(run.regime.get("eval_every", 1)))
    applied = 0
    last = run.store.last_step or 0
    if last:
        log.info("resuming after %d committed edits: re-applying them (not logged again)", last)
        started = time.perf_counter()
        for api in order[:last]:
            run.apply_edit(api)
        run.add_seconds({"replay": time.perf_counter() - started})
        applied = last
    run.store.progress["order"] = order
    with _bar(len(points), sum(1 for p in points if p <= last), "sequential eval points", run.progress) as bar:
        for point in points:
            if point <= last:
                continue
            edits, edit_total = [], 0.0
            while applied < point:
                api = order[applied]
                _, edit, edit_s = run.apply_edit(api)
                applied += 1
                edits.append({"step": applied, **edit})
                edit_total += edit_s
            edited = order[:applied]
            rows, seconds = run.evaluator.evaluate(point, applied, run.plan.problems(edited), edited)
            seconds = {"edit": edit_total, **seconds}
            run.add_seconds(seconds)
            record = _eval_record(point, applied, edited, rows, seconds)
            run.commit(point, edits, rows, [record])
            run.unit_done(point, record)
            log.info("sequential: %d/%d edits, %d samples, %.1fs", applied, len(order), len(rows), sum(seconds.values()))
            bar.update(1)


REGIMES: Dict[str, Callable[[RegimeRun], None]] = {"instant": run_instant, "sequential": run_sequential}


def final_metrics(regime: str, rows: Sequence[Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """The cell's headline numbers: instant over every step (a problem counts once per step);
    sequential at the last evaluation point (the fully edited model)."""
    if regime == "sequential" and rows:
        last = max(r["step"] for r in rows)
        return metrics_by_subset([r for r in rows if r["step"] == last])
    return metrics_by_subset(rows, key_by_step=True)

