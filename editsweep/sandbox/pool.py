"""The worker pool and its supervisor: run tasks on persistent jailed workers, results in task order.

One supervisor thread per worker keeps two prepared jobs queued on it (so the worker never
idles on a round trip) and waits for each reply with its own deadline (timeout + grace + 4 s,
counted from the previous reply). A worker that dies or overruns is killed (the whole jail
with it) and restarted; the sample it was running is run once more on the fresh worker, and a
sample that takes down its worker twice is scored `crashed`. A `harness_error` from a worker
is retried once. A `timeout` is re-run once on the same worker with twice the budget and
kept only if CPU time says it was the sample's own (`confirm.py`; the other workers go on
meanwhile, so samples that finish lose no throughput). Workers are recycled every
`recycle_after` jobs. Syntax errors and uses of removed APIs are decided before any worker
sees the sample (`tasks.prepare_job`).

    with SandboxPool(workers=2) as pool:
        for result in pool.run(tasks):   # dicts, in task order, as soon as each is known
            ...
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from editsweep.sandbox import confirm, jail
from editsweep.sandbox.cgroup import cgroup_support, remove_stale_groups
from editsweep.sandbox.tasks import Task, TaskError, make_result, parse_task, prepare_job
from editsweep.sandbox.worker import JailRefused, WorkerLimits, WorkerLost, WorkerProcess, WorkerStartError
from editsweep.scoring.status import Status

__all__ = ["SandboxPool", "SandboxError", "BadTask", "run_tasks", "NO_JAIL_WARNING"]

log = logging.getLogger(__name__)

NO_JAIL_WARNING = (
    "editsweep sandbox is running WITHOUT firejail (--no-jail): samples can read and write the host, "
    "the network and your files; use this for development on trusted code only"
)
SUPERVISOR_SLACK_S = 4.0
#: jobs queued on a worker at once: the next one waits in its stdin, so it never idles on a round trip
PIPELINE = 2
_POOL_SERIALS = itertools.count(1)
START_ATTEMPTS = 3


class SandboxError(RuntimeError):
    """The pool cannot run at all (no firejail, jail self-check refused, no way to cap processes)."""


@dataclass(frozen=True)
class BadTask:
    """A task that could not even be read (e.g. a malformed JSON line): scored `harness_error`."""

    id: str
    message: str


@dataclass
class _InFlight:
    """A job queued on a worker: its task index, and what happened to it so far."""

    index: int
    job: dict
    losses: int = 0
    harness_retried: bool = False
    #: for a confirmatory re-run: the first (timeout) result and its budget
    first: dict | None = None
    first_budget_s: float = 0.0


class _Slot:
    """One worker position: the current process (if any) and its generation counter."""

    def __init__(self, index: int):
        self.index = index
        self.worker: WorkerProcess | None = None
        self.generation = 0


class SandboxPool:
    """Persistent workers, each started once (inside firejail unless `jail=False`).

    workers: number of workers (default: one per CPU core available to this process).
    timeout_s: default wall budget per sample (a task's own `timeout_s` wins).
    limits: per-sample and per-worker limits (`WorkerLimits`).
    cgroup: put each worker in its own cgroup (pids.max, memory); None = when possible, and
        required when jailed as root, where nothing else stops a fork bomb.
    recycle_after: restart a worker after this many jobs.
    extra_hidden: more host paths to blacklist inside the jail.
    confirm_timeouts: re-run timeouts once with `confirm_factor` × the budget: "auto" (unless
        the first run already used 90 % of its budget in CPU), "all", or "off" (confirm.py).
    """

    def __init__(self, workers: int | None = None, jail: bool = True, timeout_s: float = 3.0,
                 limits: WorkerLimits | None = None, cgroup: bool | None = None, recycle_after: int = 1000,
                 extra_hidden: Iterable[str] = (), python: str = jail.SYSTEM_PYTHON,
                 confirm_timeouts: str = "auto", confirm_factor: float = 2.0):
        if workers is None:
            workers = len(os.sched_getaffinity(0))
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        confirm.check_mode(confirm_timeouts, confirm_factor)
        self.confirm_timeouts = confirm_timeouts
        self.confirm_factor = float(confirm_factor)
        self.n_workers = int(workers)
        self.jailed = bool(jail)
        self.timeout_s = float(timeout_s)
        self.limits = limits or WorkerLimits()
        self.recycle_after = int(recycle_after)
        self.extra_hidden = tuple(extra_hidden)
        self.python = python
        self.use_cgroup = self._decide_cgroup(cgroup)
        self.slots = [_Slot(i) for i in range(self.n_workers)]
        self.serial = next(_POOL_SERIALS)  # several pools in one process get distinct cgroup names
        self.stats = {"restarts": 0, "worker_losses": 0, "harness_retries": 0, "recycled": 0,
                      "timeout_reruns": 0, "timeouts_overturned": 0}
        self._run_lock = threading.Lock()
        self._started = False

    # -- set-up -------------------------------------------------------------------------
    def _decide_cgroup(self, wanted: bool | None) -> bool:
        usable, reason = cgroup_support()
        if wanted is False:
            if self.jailed and os.geteuid() == 0:
                log.warning("sandbox: running jailed as root without a cgroup: fork bombs and tmpfs "
                            "writes are not capped")
            return False
        if usable:
            return True
        if wanted:
            raise SandboxError(f"a per-worker cgroup was requested but cannot be made: {reason}")
        if self.jailed and os.geteuid() == 0:
            raise SandboxError(
                "as root, RLIMIT_NPROC does not stop a fork bomb and only a cgroup can: " + reason
                + " (run as an unprivileged user, or pass cgroup=False to accept the risk)"
            )
        log.info("sandbox: no cgroup (%s); capping processes with RLIMIT_NPROC", reason)
        return False

    def start(self) -> "SandboxPool":
        if self._started:
            return self
        if not self.jailed:
            warnings.warn(NO_JAIL_WARNING, RuntimeWarning, stacklevel=2)
            log.warning(NO_JAIL_WARNING)
        elif jail.firejail_path() is None:
            raise SandboxError("firejail is not installed (apt-get install firejail); "
                               "--no-jail exists for development only")
        if self.use_cgroup:
            remove_stale_groups()
        errors: list[BaseException] = []

        def boot(slot: _Slot) -> None:
            try:
                self._start_worker(slot)
            except BaseException as exc:  # noqa: B036 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=boot, args=(slot,)) for slot in self.slots]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._started = True
        if errors:
            self.close()
            first = errors[0]
            if isinstance(first, JailRefused):
                raise SandboxError(str(first)) from first
            raise SandboxError(f"sandbox workers did not start: {first}") from first
        log.info(
            "sandbox: %d %s worker(s) up (%s; cgroup: %s; timeout %.1f s)", self.n_workers,
            "jailed" if self.jailed else "UNJAILED", f"firejail {jail.firejail_version()}" if self.jailed else "no firejail",
            f"pids.max={self.limits.pids_max} memory={self.limits.cgroup_memory_bytes >> 20} MiB" if self.use_cgroup
            else "none", self.timeout_s,
        )
        return self

    def _start_worker(self, slot: _Slot) -> WorkerProcess:
        last: Exception | None = None
        for attempt in range(START_ATTEMPTS):
            slot.generation += 1
            worker = WorkerProcess(
                name=f"{os.getpid()}-p{self.serial}-w{slot.index}-{slot.generation}", jailed=self.jailed,
                limits=self.limits,
                use_cgroup=self.use_cgroup, extra_hidden=self.extra_hidden, python=self.python,
            )
            try:
                slot.worker = worker.start()
                return slot.worker
            except JailRefused:
                raise
            except WorkerStartError as exc:
                last = exc
                log.warning("sandbox: worker %s failed to start (attempt %d/%d): %s", worker.name, attempt + 1,
                            START_ATTEMPTS, exc)
                time.sleep(0.2 * (attempt + 1))
        raise WorkerStartError(f"worker slot {slot.index} failed to start {START_ATTEMPTS} times: {last}")

    def close(self) -> None:
        for slot in self.slots:
            if slot.worker is not None:
                slot.worker.stop()
                slot.worker = None
        self._started = False

    def __enter__(self) -> "SandboxPool":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- running ------------------------------------------------------------------------
    def run_one(self, task: Task | dict) -> dict:
        """The result of a single task."""
        (result,) = list(self.run([task]))
        return result

    def run(self, tasks: Iterable[Task | dict | BadTask]) -> Iterator[dict]:
        """Results for `tasks`, in task order, each yielded as soon as it and all before it are done."""
        if not self._run_lock.acquire(blocking=False):
            raise RuntimeError("SandboxPool.run is already running; use one run at a time per pool")
        try:
            if not self._started:
                self.start()
            if not self.jailed:
                log.warning(NO_JAIL_WARNING)
            yield from self._run(tasks)
        finally:
            self._run_lock.release()

    def _run(self, tasks: Iterable[Task | dict | BadTask]) -> Iterator[dict]:
        jobs: queue.Queue = queue.Queue(maxsize=8 * self.n_workers)
        results: dict[int, dict] = {}
        cond = threading.Condition()
        failure: list[BaseException] = []
        state = {"fed": None, "stop": False}

        def deliver(index: int, result: dict) -> None:
            with cond:
                results[index] = result
                cond.notify_all()

        def feed() -> None:
            count = 0
            try:
                for index, item in enumerate(tasks):
                    if state["stop"]:
                        break
                    count = index + 1
                    job, early = self._prepare(index, item)
                    if early is not None:
                        deliver(index, early)
                        continue
                    while not state["stop"]:
                        try:
                            jobs.put((index, job), timeout=0.2)
                            break
                        except queue.Full:
                            continue
            except BaseException as exc:  # noqa: B036 - surfaced to the caller
                failure.append(exc)
            finally:
                for _ in self.slots:
                    jobs.put(None)
                with cond:
                    state["fed"] = count
                    cond.notify_all()

        def supervise(slot: _Slot) -> None:
            def next_job(block: bool):
                while True:  # keeps draining until its sentinel, so the feeder never blocks forever
                    try:
                        item = jobs.get(timeout=0.5) if block else jobs.get_nowait()
                    except queue.Empty:
                        if block:
                            continue
                        return False
                    if item is None:
                        return None
                    if not state["stop"]:
                        return item

            try:
                self._supervise(slot, next_job, deliver)
            except BaseException as exc:  # noqa: B036 - surfaced to the caller
                failure.append(exc)
                state["stop"] = True
                with cond:
                    cond.notify_all()
                while next_job(block=True) is not None:
                    pass

        threads = [threading.Thread(target=feed, name="sandbox-feed", daemon=True)]
        threads += [threading.Thread(target=supervise, args=(s,), name=f"sandbox-w{s.index}", daemon=True)
                    for s in self.slots]
        for thread in threads:
            thread.start()
        next_index = 0
        try:
            while True:
                with cond:
                    while next_index not in results and not failure and (
                        state["fed"] is None or next_index < state["fed"]
                    ):
                        cond.wait(0.5)
                    if failure:
                        raise failure[0]
                    if next_index not in results:
                        break  # everything fed has been delivered
                    result = results.pop(next_index)
                next_index += 1
                yield result
        finally:
            state["stop"] = True
            while True:  # unblock the supervisors if the caller stopped early
                try:
                    jobs.get_nowait()
                except queue.Empty:
                    break
            for _ in self.slots:
                try:
                    jobs.put_nowait(None)
                except queue.Full:
                    break
            for thread in threads[1:]:
                thread.join()

    def _prepare(self, index: int, item: Task | dict | BadTask) -> tuple[dict | None, dict | None]:
        if isinstance(item, BadTask):
            log.error("sandbox: task %s: %s", item.id, item.message)
            return None, make_result(item.id, Status.HARNESS_ERROR, error_type="MalformedTask",
                                     error_message=item.message)
        try:
            task = parse_task(item, where=f"task {index + 1}")
        except TaskError as exc:
            task_id = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else f"#{index + 1}"
            log.error("sandbox: %s", exc)
            return None, make_result(task_id, Status.HARNESS_ERROR, error_type="MalformedTask",
                                     error_message=str(exc))
        return prepare_job(task, self.timeout_s)

    def _supervise(self, slot: _Slot, next_job, deliver) -> None:
        """Drive one worker: keep up to PIPELINE jobs queued on it, collect replies in order.

        The worker runs its queued jobs one after another, so the oldest unanswered job is the
        one running: if the worker dies or overruns, that job is the one charged with the loss
        (re-run once on a fresh worker, `crashed` the second time); the jobs queued behind it
        never started and are simply sent again. Each job's deadline starts when the reply
        before it arrived.
        """
        inflight: deque[_InFlight] = deque()
        exhausted = False
        head_since = time.monotonic()
        while True:
            while not exhausted and len(inflight) < PIPELINE and not self._retiring(slot, len(inflight)):
                item = next_job(block=not inflight)
                if item is False:
                    break
                if item is None:
                    exhausted = True
                    break
                entry = _InFlight(*item)
                if not inflight:
                    head_since = time.monotonic()
                inflight.append(entry)
                self._dispatch(slot, inflight, entry)
            if not inflight:
                if exhausted:
                    return
                self._recycle(slot)
                continue
            head = inflight[0]
            deadline = head_since + float(head.job["timeout_s"]) + self.limits.grace_s + SUPERVISOR_SLACK_S
            worker = slot.worker
            try:
                raw = worker.receive(head.job, deadline)
            except WorkerLost as exc:
                head.losses += 1
                self.stats["worker_losses"] += 1
                worker.kill()
                slot.worker = None
                log.warning("sandbox: sample %s took down worker %s (%d/2): %s", head.job["id"], worker.name,
                            head.losses, exc)
                if head.losses >= 2:
                    inflight.popleft()
                    deliver(head.index, self._complete(head, make_result(
                        head.job["id"], Status.CRASHED, tests_total=sum(head.job["scored"]), error_type="WorkerKilled",
                        error_message=f"the sample killed or wedged its worker twice ({exc})",
                    )))
                head_since = time.monotonic()
                if inflight:
                    self._dispatch(slot, inflight, None)
                continue
            inflight.popleft()
            head_since = time.monotonic()
            result = self._finalize(raw)
            if result["status"] == Status.HARNESS_ERROR.value and not head.harness_retried:
                head.harness_retried = True
                self.stats["harness_retries"] += 1
                log.warning("sandbox: harness error on %s (%s: %s), retrying once", head.job["id"],
                            result["error_type"], result["error_message"])
                inflight.append(head)
                self._dispatch(slot, inflight, head)
                continue
            if head.first is None and result["status"] == Status.TIMEOUT.value:
                budget = float(head.job["timeout_s"])
                if confirm.needs_rerun(self.confirm_timeouts, result, budget):
                    self.stats["timeout_reruns"] += 1
                    rerun = _InFlight(head.index, confirm.rerun_job(head.job, self.confirm_factor), first=result,
                                      first_budget_s=budget)
                    inflight.append(rerun)
                    self._dispatch(slot, inflight, rerun)
                    continue
                if self.confirm_timeouts != "off":
                    result["timeout_rerun"] = confirm.cpu_bound_record(result, budget)
            deliver(head.index, self._complete(head, result))

    def _complete(self, entry: _InFlight, result: dict) -> dict:
        """The result to deliver for `entry`: for a confirmatory re-run, both runs combined."""
        if entry.first is None:
            return result
        final = confirm.combine(entry.first, result, entry.first_budget_s, float(entry.job["timeout_s"]))
        if final["timeout_rerun"]["verdict"] == "overturned":
            self.stats["timeouts_overturned"] += 1
            log.info("sandbox: %s timed out at %.1f s (%.2f s CPU) but finished on the re-run as %s (%.2f s CPU): "
                     "a load-induced timeout", entry.job["id"], entry.first_budget_s, entry.first.get("cpu_s") or 0.0,
                     final["status"], result.get("cpu_s") or 0.0)
        return final

    def _dispatch(self, slot: _Slot, inflight: "deque[_InFlight]", entry: "_InFlight | None") -> None:
        """Queue `entry` (already in `inflight`) on the slot's worker; a fresh worker gets all of `inflight`.

        If the worker died while other jobs were queued on it, nothing is sent here: the next
        `receive` charges the loss to the job that was running and then re-dispatches.
        """
        worker = slot.worker
        if worker is not None and worker.alive:
            try:
                worker.send(entry.job)
            except WorkerLost:
                pass  # the receive for the oldest job will see the loss and charge it
            return
        if worker is not None and any(e is not entry for e in inflight):
            return
        if worker is not None:
            worker.kill()
            self.stats["restarts"] += 1
        self._start_worker(slot)
        try:
            for queued in inflight:
                slot.worker.send(queued.job)
        except WorkerLost:
            pass  # died at once: the receive charges it

    def _retiring(self, slot: _Slot, queued: int) -> bool:
        """No more jobs for this worker: with those queued on it, it has its share."""
        return slot.worker is not None and slot.worker.jobs_done + queued >= self.recycle_after

    def _recycle(self, slot: _Slot) -> None:
        """Replace a worker that has done its share of jobs (called with nothing in flight)."""
        if slot.worker is not None and slot.worker.jobs_done >= self.recycle_after:
            slot.worker.stop()
            slot.worker = None
            self.stats["recycled"] += 1

    @staticmethod
    def _finalize(raw: dict) -> dict:
        if raw.get("stragglers_killed"):
            log.debug("sandbox: %s left %d process(es) behind, killed", raw["id"], raw["stragglers_killed"])
        status = raw["status"]
        error_type, message, line = raw.get("error_type"), raw.get("error_message"), raw.get("error_line")
        if raw.get("oom_killed") and status in ("crashed", "timeout"):
            status, error_type, line = "memory", "MemoryLimit", None
            message = "killed by the kernel at the worker's cgroup memory limit"
        return make_result(
            raw["id"], status, tests_passed=raw.get("tests_passed", 0), tests_total=raw.get("tests_total", 0),
            error_type=error_type, error_message=message, error_line=line, duration_s=raw.get("duration_s", 0.0),
            cpu_s=raw.get("cpu_s"), output=raw.get("output") or "",
        )


def run_tasks(tasks: Iterable[Task | dict], **pool_kwargs: Any) -> list[dict]:
    """Run `tasks` on a fresh pool (see SandboxPool for the keyword arguments); results in task order."""
    with SandboxPool(**pool_kwargs) as pool:
        return list(pool.run(tasks))
