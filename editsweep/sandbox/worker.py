"""One persistent worker process seen from the orchestrator: launch, self-check, jobs, kill.

A worker is started once (inside firejail unless `jailed=False`), in its own cgroup when one
can be made, with a clean environment and `cwd=/`. Its program text is written to its stdin
(the project directory is blacklisted in the jail). It then answers one JSON line per job.
The orchestrator side keeps its own deadline per job, so a wedged worker is killed from here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from editsweep.sandbox import jail
from editsweep.sandbox.cgroup import WorkerCgroup

__all__ = ["WorkerLimits", "WorkerProcess", "WorkerStartError", "JailRefused", "WorkerLost"]

log = logging.getLogger(__name__)
PROGRAM_PATH = Path(__file__).with_name("worker_program.py")
GIB = 1 << 30
MIB = 1 << 20
#: wraps the launch so the process joins its cgroup *before* exec'ing firejail (no race with forks)
CGROUP_WRAPPER = 'p=$$; while [ "$1" != "--" ]; do echo "$p" > "$1" || exit 111; shift; done; shift; exec "$@"'


class WorkerStartError(RuntimeError):
    """The worker did not come up (firejail missing, crashed at start, no ready message)."""


class JailRefused(WorkerStartError):
    """The worker's self-check found it is not properly jailed; `reasons` says what is wrong."""

    def __init__(self, reasons: list[str]):
        self.reasons = list(reasons)
        super().__init__("the sandbox worker refused to run outside a proper jail: " + "; ".join(reasons))


class WorkerLost(RuntimeError):
    """The worker died or stopped answering during a job."""


@dataclass(frozen=True)
class WorkerLimits:
    """Per-sample and per-worker limits (notes/execution-sandbox.md §8.2)."""

    memory_budget_bytes: int = 1 * GIB     # RLIMIT_AS above the worker's VmSize
    cpu_extra_s: int = 1                   # RLIMIT_CPU = ceil(timeout) + this (hard: + 1 more)
    file_size_bytes: int = 16 * MIB        # RLIMIT_FSIZE
    open_files: int = 64                   # RLIMIT_NOFILE
    output_limit: int = 2048               # bytes of stdout/stderr kept
    grace_s: float = 1.0                   # wall deadline = timeout + grace, then killpg
    pids_max: int = 64                     # cgroup pids.max per worker
    cgroup_memory_bytes: int = 1536 * MIB  # cgroup memory limit per worker (bounds tmpfs too)
    nproc: int = 256                       # RLIMIT_NPROC, only when not root and no cgroup


@dataclass
class WorkerProcess:
    """A started worker. Use `start()`, then `run(job, deadline_s)`, then `stop()`."""

    name: str
    jailed: bool = True
    limits: WorkerLimits = field(default_factory=WorkerLimits)
    use_cgroup: bool = True
    extra_hidden: tuple[str, ...] = ()
    python: str = jail.SYSTEM_PYTHON
    start_timeout_s: float = 20.0
    #: replaces the firejail command prefix (None: the hardened one); the self-check still runs,
    #: so a weaker prefix is refused: this exists to demonstrate exactly that
    jail_argv: list[str] | None = None

    proc: subprocess.Popen | None = field(default=None, init=False)
    cgroup: WorkerCgroup | None = field(default=None, init=False)
    info: dict = field(default_factory=dict, init=False)
    jobs_done: int = field(default=0, init=False)
    _buffer: bytes = field(default=b"", init=False)
    _marker: str | None = field(default=None, init=False)
    _scratch: str | None = field(default=None, init=False)
    _oom_seen: int = field(default=0, init=False)
    _stderr_tail: list[str] = field(default_factory=list, init=False)

    # -- start --------------------------------------------------------------------------
    def start(self) -> "WorkerProcess":
        program = PROGRAM_PATH.read_bytes()
        config = self._config()
        sizes, loader_stdin = jail.loader_input(program, json.dumps(config))
        argv = jail.interpreter_argv(self.python, *sizes)
        if self.jailed:
            prefix = self.jail_argv
            if prefix is None:
                prefix = jail.firejail_argv(config["hidden_paths"], self.limits.file_size_bytes)
            argv = list(prefix) + argv
        if self.use_cgroup:
            self.cgroup = WorkerCgroup(self.name, self.limits.pids_max, self.limits.cgroup_memory_bytes).create()
            self._oom_seen = self.cgroup.oom_kills()
            argv = ["/bin/sh", "-c", CGROUP_WRAPPER, "sh", *self.cgroup.procs_files(), "--", *argv]
        started = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=jail.clean_env(), cwd="/", start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            self._cleanup()
            raise WorkerStartError(f"cannot start worker {self.name}: {exc}") from exc
        threading.Thread(target=self._pump_stderr, name=f"{self.name}-stderr", daemon=True).start()
        try:
            self.proc.stdin.write(loader_stdin)
            self.proc.stdin.flush()
            message = self._read_message(started + self.start_timeout_s)
        except (OSError, WorkerLost) as exc:
            self.kill()
            raise WorkerStartError(
                f"worker {self.name} did not start: {exc}; stderr: {self.stderr_tail() or '(empty)'}"
            ) from exc
        if message.get("type") == "refused":
            self.kill()
            raise JailRefused(message.get("reasons", []))
        if message.get("type") != "ready":
            self.kill()
            raise WorkerStartError(f"worker {self.name} sent {message!r} instead of ready")
        self.info = message
        if message.get("hash_randomization"):
            log.warning("worker %s: hash randomisation is on (PYTHONHASHSEED not honoured)", self.name)
        log.debug("worker %s ready in %.3f s (pid %s in jail, python %s)", self.name, time.monotonic() - started,
                  message.get("pid"), message.get("python"))
        return self

    def _config(self) -> dict:
        home = "/root" if os.geteuid() == 0 else os.path.expanduser("~")
        if self.jailed:
            self._marker = tempfile.mkstemp(prefix="editsweep-marker-", dir="/tmp")[1]
            hidden = jail.hidden_paths(self.extra_hidden)
            scratch_root = jail.JAIL_SCRATCH_ROOT
            wipe = [*jail.JAIL_WRITABLE_DIRS, home]
        else:
            self._scratch = tempfile.mkdtemp(prefix="editsweep-nojail-")
            hidden, scratch_root, wipe = [], self._scratch, []
        namespaces = {}
        for kind in ("pid", "net", "mnt"):
            try:
                namespaces[kind] = os.readlink(f"/proc/self/ns/{kind}")
            except OSError:
                namespaces[kind] = None
        return {
            "jailed": self.jailed,
            "host_marker": self._marker or "",
            "host_namespaces": namespaces,
            "hidden_paths": hidden,
            "hidden_env": {  # digests only: the values may be secrets and argv is visible in ps
                k: hashlib.sha256(v.encode()).hexdigest()[:16] for k, v in os.environ.items()
                if k not in jail.clean_env() and k not in jail.FIREJAIL_ENV
            },
            "scratch_root": scratch_root,
            "wipe_dirs": wipe,
            "child_env": jail.child_env(home),
            "memory_budget_bytes": self.limits.memory_budget_bytes,
            "cpu_extra_s": self.limits.cpu_extra_s,
            "file_size_bytes": self.limits.file_size_bytes,
            "open_files": self.limits.open_files,
            "output_limit": self.limits.output_limit,
            "grace_s": self.limits.grace_s,
            "nproc": None if self.use_cgroup else self.limits.nproc,
        }

    def _pump_stderr(self) -> None:
        proc = self.proc
        for raw in iter(proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            self._stderr_tail = (self._stderr_tail + [line])[-20:]
            log.debug("worker %s stderr: %s", self.name, line)

    def stderr_tail(self) -> str:
        return " | ".join(self._stderr_tail[-5:])

    # -- jobs ---------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def run(self, job: dict, deadline_s: float) -> dict:
        """Send one job and wait for its result; WorkerLost if the worker dies or overruns."""
        self.send(job)
        return self.receive(job, time.monotonic() + deadline_s)

    def send(self, job: dict) -> None:
        """Queue a job on the worker's stdin (it runs jobs one after another, in order)."""
        if not self.alive:
            raise WorkerLost(f"worker {self.name} is not running")
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except OSError as exc:
            raise WorkerLost(f"worker {self.name} stopped reading jobs: {exc}") from exc

    def receive(self, job: dict, deadline: float) -> dict:
        """The result of `job`, the oldest job sent and not yet answered, by `deadline` (monotonic)."""
        message = self._read_message(deadline)
        if message.get("id") != job["id"]:
            raise WorkerLost(f"worker {self.name} answered job {message.get('id')!r} while running {job['id']!r}")
        self.jobs_done += 1
        if self.cgroup is not None and (message.get("exit") or {}).get("signal") == "SIGKILL":
            kills = self.cgroup.oom_kills()
            if kills > self._oom_seen:
                message["oom_killed"] = True
            self._oom_seen = kills
        return message

    def _read_message(self, deadline: float) -> dict:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerLost(f"worker {self.name} did not answer in time")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                code = self.proc.poll()
                raise WorkerLost(f"worker {self.name} exited (code {code}); stderr: {self.stderr_tail() or '(empty)'}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            return json.loads(line)
        except ValueError as exc:
            raise WorkerLost(f"worker {self.name} sent a line that is not JSON: {line[:200]!r}") from exc

    # -- stop ---------------------------------------------------------------------------
    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the job channel so the worker exits, then make sure nothing is left."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout_s)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def kill(self) -> None:
        """Kill the worker and everything it started (the whole jail), remove its cgroup."""
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    self.proc.kill()
                except OSError:
                    pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                log.warning("worker %s (pid %d) did not die after SIGKILL", self.name, self.proc.pid)
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        self._cleanup()

    def _cleanup(self) -> None:
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        if self._marker:
            try:
                os.unlink(self._marker)
            except OSError:
                pass
            self._marker = None
        if self._scratch:
            import shutil

            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
