"""The anchor executor for `editsweep bench sandbox`: one forked process per sample, human-eval style.

This re-implements the mechanism of openai/human-eval's `check_correctness` (notes/
execution-sandbox.md §2.1), so the benchmark can compare against it in the same run: per
sample a `multiprocessing.Manager()` list for the verdict and one forked `Process` that
changes into a temporary directory, disables a few dangerous functions, and `exec`s the whole
program with its tests under a SIGALRM timer with stdout/stderr swallowed; the parent joins
with `timeout + 1` s and kills a straggler; a thread pool runs several samples at once.
It is *not* a sandbox (nothing is isolated) and is used only on the benchmark's own programs.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import signal
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

__all__ = ["check_program", "run_baseline"]


class _TimedOut(Exception):
    pass


def _disable_dangerous_functions() -> None:
    """A short version of human-eval's guard: it prevents accidents, it does not contain anything."""
    import builtins
    import shutil
    import subprocess

    builtins.exit = None
    builtins.quit = None
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork",
                 "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown",
                 "chmod", "chown", "chroot", "lchown"):
        if hasattr(os, name):
            setattr(os, name, None)
    shutil.rmtree = None
    shutil.move = None
    subprocess.Popen = None


def _execute(program: str, timeout_s: float, verdict) -> None:
    import shutil

    saved = (shutil.rmtree, os.rmdir, os.unlink, os.chdir)  # the scratch clean-up needs them back
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        sink = io.StringIO()

        def on_alarm(_signum, _frame):
            raise _TimedOut()

        signal.signal(signal.SIGALRM, on_alarm)
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                _disable_dangerous_functions()
                signal.setitimer(signal.ITIMER_REAL, timeout_s)
                try:
                    exec(program, {})
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            verdict.append("passed")
        except _TimedOut:
            verdict.append("timed out")
        except BaseException as exc:  # noqa: B036 - as the anchor: any exception is a failure
            verdict.append(f"failed: {type(exc).__name__}")
        finally:
            shutil.rmtree, os.rmdir, os.unlink, os.chdir = saved
            os.chdir("/")


def check_program(program: str, timeout_s: float = 3.0) -> str:
    """'passed', 'timed out' or 'failed: <type>' for one whole program (code + asserts)."""
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager:
        verdict = manager.list()
        process = context.Process(target=_execute, args=(program, timeout_s, verdict))
        process.start()
        process.join(timeout=timeout_s + 1)
        if process.is_alive():
            process.kill()
            process.join()
        return verdict[0] if verdict else "timed out"


def run_baseline(programs: Iterable[str], workers: int, timeout_s: float = 3.0) -> list[str]:
    """Verdicts for `programs` in order, `workers` at a time (threads driving processes)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda program: check_program(program, timeout_s), programs))
