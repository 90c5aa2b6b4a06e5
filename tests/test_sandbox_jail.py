"""The jail itself: firejail present, the self-check refuses weak jails, clean env, cgroup, supervisor."""

from __future__ import annotations

import ast
import logging
import os
import subprocess

import pytest

from editsweep.sandbox import SandboxPool
from editsweep.sandbox import jail
from editsweep.sandbox.pool import NO_JAIL_WARNING
from editsweep.sandbox.worker import JailRefused, WorkerLimits, WorkerProcess

pytestmark = pytest.mark.jail

ECHO_ENV = "import os\ndef f(x):\n    print(sorted(os.environ.items()))\n    return x\n"


def test_firejail_is_installed():
    assert jail.firejail_path() is not None, "firejail is missing: apt-get install firejail"
    assert jail.firejail_version() is not None


def test_the_hardened_worker_passes_its_self_check():
    worker = WorkerProcess(name="selfcheck-ok").start()
    try:
        assert worker.info["type"] == "ready"
        assert worker.info["hash_randomization"] == 0
        assert worker.info["python"].startswith("3.")
    finally:
        worker.stop()


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ([], ["seccomp filter not active", "network not isolated", "fresh pid namespace", "host /tmp is visible"]),
        (["firejail", "--quiet", "--noprofile", "--net=none", "--private"],
         ["seccomp filter not active", "capabilities not dropped", "host /tmp is visible", "is readable inside the jail"]),
    ],
    ids=["no-firejail", "firejail-net-none-private-only"],
)
def test_the_self_check_refuses_a_weak_jail(prefix, expected):
    prefix = [jail.firejail_path(), *prefix[1:]] if prefix else []
    worker = WorkerProcess(name="selfcheck-weak", jail_argv=prefix, use_cgroup=False)
    with pytest.raises(JailRefused) as info:
        worker.start()
    for reason in expected:
        assert any(reason in r for r in info.value.reasons), (reason, info.value.reasons)
    assert not worker.alive


def test_samples_get_a_clean_environment_and_the_system_python():
    os.environ["EDITSWEEP_CALLER_ONLY"] = "leak-me"
    try:
        with SandboxPool(workers=1) as pool:
            r = pool.run_one({"id": "env", "program": ECHO_ENV + "import sys\nprint(sys.executable)\n",
                              "tests": ["assert f(1) == 1"], "entry_point": "f"})
    finally:
        del os.environ["EDITSWEEP_CALLER_ONLY"]
    assert r["status"] == "passed"
    executable, environment = r["output"].splitlines()  # the body prints first, then the test's call
    names = [name for name, _ in ast.literal_eval(environment)]
    assert sorted(names) == sorted([*jail.child_env("/root"), "TMPDIR"])
    assert "leak-me" not in r["output"]
    assert executable == "/usr/bin/python3"


def test_hash_seed_is_pinned_like_pythonhashseed_0():
    expected = subprocess.run([jail.SYSTEM_PYTHON, "-c", "print(hash('editsweep'))"], capture_output=True, text=True,
                              env={**jail.clean_env()}, check=True).stdout.strip()
    task = {"id": "h", "program": "def f(x):\n    print(hash('editsweep'))\n    return x\n", "tests": ["assert f(1) == 1"],
            "entry_point": "f"}
    with SandboxPool(workers=2) as pool:
        outputs = {r["output"].strip() for r in pool.run([task] * 6)}
    assert outputs == {expected}


def test_each_worker_runs_in_its_own_capped_cgroup():
    limits = WorkerLimits(pids_max=48, cgroup_memory_bytes=1 << 30)
    with SandboxPool(workers=2, limits=limits) as pool:
        groups = [slot.worker.cgroup for slot in pool.slots]
        assert len({str(g.dirs["pids"]) for g in groups}) == 2
        for group in groups:
            assert (group.dirs["pids"] / "pids.max").read_text().strip() == "48"
            limit_file = "memory.limit_in_bytes" if group.version == 1 else "memory.max"
            assert int((group.dirs["memory"] / limit_file).read_text()) == 1 << 30
            assert len(group.pids()) == 3
        dirs = [d for g in groups for d in g.dirs.values()]
    assert not any(d.exists() for d in dirs), "cgroups must be removed when the pool closes"


def test_workers_are_recycled_and_keep_serving():
    task = {"id": "r", "program": "def f(x):\n    return x\n", "tests": ["assert f(1) == 1"], "entry_point": "f"}
    with SandboxPool(workers=2, recycle_after=5) as pool:
        results = list(pool.run([dict(task, id=str(i)) for i in range(30)]))
        assert pool.stats["recycled"] >= 4
    assert {r["status"] for r in results} == {"passed"}


def test_a_wedged_worker_is_killed_by_the_supervisor_and_the_sample_scored_crashed():
    stop_parent = "import os, signal\ndef f(x):\n    os.kill(os.getppid(), signal.SIGSTOP)\n    return x\n"
    with SandboxPool(workers=1, timeout_s=0.5) as pool:
        r = pool.run_one({"id": "wedge", "program": stop_parent, "tests": ["assert f(1) == 1"], "entry_point": "f"})
        assert (r["status"], r["error_type"]) == ("crashed", "WorkerKilled")
        assert pool.stats["worker_losses"] == 2
        ok = pool.run_one({"id": "ok", "program": "def f(x):\n    return x\n", "tests": ["assert f(1) == 1"],
                           "entry_point": "f"})
        assert ok["status"] == "passed"


def test_the_unjailed_backend_warns_on_every_use(caplog):
    task = {"id": "n", "program": "def f(x):\n    return x\n", "tests": ["assert f(1) == 1"], "entry_point": "f"}
    with caplog.at_level(logging.WARNING, logger="editsweep.sandbox.pool"):
        with pytest.warns(RuntimeWarning, match="WITHOUT firejail"):
            pool = SandboxPool(workers=1, jail=False).start()
        try:
            assert pool.run_one(task)["status"] == "passed"
            assert pool.run_one(task)["status"] == "passed"
        finally:
            pool.close()
    assert sum(NO_JAIL_WARNING in rec.getMessage() for rec in caplog.records) >= 3  # start + each run


def test_groups_left_by_a_dead_pool_are_removed_at_the_next_start():
    from editsweep.sandbox.cgroup import WorkerCgroup

    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid now names no live process: a pool that died without cleaning up
    stale = WorkerCgroup(f"{dead.pid}-w0-1", pids_max=8, memory_bytes=1 << 28).create()
    dirs = list(stale.dirs.values())
    assert all(d.exists() for d in dirs)
    with SandboxPool(workers=1):
        assert not any(d.exists() for d in dirs)


def test_two_pools_in_one_process_do_not_share_cgroups():
    task = {"id": "t", "program": "def f(x):\n    return x\n", "tests": ["assert f(1) == 1"], "entry_point": "f"}
    with SandboxPool(workers=1) as outer:
        with SandboxPool(workers=1) as inner:
            assert outer.slots[0].worker.cgroup.dirs != inner.slots[0].worker.cgroup.dirs
            assert inner.run_one(task)["status"] == "passed"
        assert outer.run_one(task)["status"] == "passed"  # closing the inner pool left this one alone


def test_a_caller_with_a_large_environment_still_gets_a_jailed_worker(monkeypatch):
    """A Slurm job's environment is large; the worker config (which lists digests of every caller
    variable) travels on stdin, since firejail refuses long arguments."""
    for i in range(400):
        monkeypatch.setenv(f"EDITSWEEP_TEST_BULK_{i}", "v" * 200)
    worker = WorkerProcess(name="bigenv").start()
    try:
        assert worker.info["type"] == "ready"
    finally:
        worker.stop()
