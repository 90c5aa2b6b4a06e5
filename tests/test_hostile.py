"""Hostile programs in the real jail: each is contained and scored, and leaves nothing behind.

After every case: the pool still serves a normal sample, each worker's cgroup holds only the
worker's own three processes (two firejail, one python), and nothing outside changed (the
canaries are intact, no file carrying this run's token exists on the host).
Mechanisms and the measurements behind them: notes/execution-sandbox.md §5.
"""

from __future__ import annotations

import glob
import os
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from editsweep.sandbox import SandboxPool
from editsweep.sandbox.jail import project_root

pytestmark = pytest.mark.jail

TOKEN = "hostile" + uuid.uuid4().hex[:12]
SECRET_ENV = "EDITSWEEP_HOSTILE_SECRET"
HOME_SECRET = Path(os.path.expanduser("~")) / f".editsweep-{TOKEN}"
NORMAL = {"id": "normal", "program": "def f(x):\n    return x\n", "tests": ["assert f(3) == 3"], "entry_point": "f"}
WORKER_PROCESSES = 3  # outer firejail, firejail's init in the jail, the python worker


@pytest.fixture(scope="module")
def canaries():
    """Files that samples try to delete or read: in a host dir, the host /dev/shm, the home dir."""
    base = Path(tempfile.mkdtemp(prefix=f"editsweep-{TOKEN}-", dir="/srv" if os.path.isdir("/srv") else "/var/tmp"))
    (base / "keep.txt").write_text("keep")
    (base / "sub").mkdir()
    (base / "sub" / "keep.txt").write_text("keep")
    shm = Path(f"/dev/shm/editsweep-{TOKEN}")
    shm.write_text("keep")
    HOME_SECRET.write_text(f"secret-{TOKEN}")
    yield {"dir": base, "shm": shm}
    for path in (base / "sub" / "keep.txt", base / "keep.txt", shm, HOME_SECRET):
        path.unlink(missing_ok=True)
    (base / "sub").rmdir()
    base.rmdir()


@pytest.fixture(scope="module")
def pool(canaries):
    os.environ[SECRET_ENV] = f"env-{TOKEN}"
    try:
        with SandboxPool(workers=2, timeout_s=1.0) as pool:
            yield pool
    finally:
        del os.environ[SECRET_ENV]
    assert not glob.glob(f"/sys/fs/cgroup/*/editsweep-{os.getpid()}-*"), "worker cgroups left behind"


def run(pool, program, tests=("assert f(1) == 1",), **extra):
    task = {"id": "hostile", "program": program, "tests": list(tests), "entry_point": "f", **extra}
    return pool.run_one(task)


def worker_processes(pool):
    return [len(slot.worker.cgroup.pids()) for slot in pool.slots if slot.worker is not None]


@pytest.fixture(autouse=True)
def contained_afterwards(pool, canaries):
    """The checks every case must pass after it ran."""
    yield
    assert pool.run_one(NORMAL)["status"] == "passed", "the pool no longer serves"
    deadline = time.monotonic() + 3
    while any(n != WORKER_PROCESSES for n in worker_processes(pool)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(n == WORKER_PROCESSES for n in worker_processes(pool)), f"stragglers: {worker_processes(pool)}"
    assert (canaries["dir"] / "keep.txt").read_text() == "keep"
    assert (canaries["dir"] / "sub" / "keep.txt").read_text() == "keep"
    assert canaries["shm"].read_text() == "keep"
    assert HOME_SECRET.read_text() == f"secret-{TOKEN}"
    leaked = [p for d in ("/tmp", "/var/tmp", "/dev/shm", "/srv", "/opt", str(project_root()), os.path.expanduser("~"))
              for p in glob.glob(f"{d}/*{TOKEN}*")
              if Path(p) not in (canaries["dir"], canaries["shm"], HOME_SECRET)]
    assert not leaked, f"files created outside the jail: {leaked}"


def program(text: str, **values: str) -> str:
    for key, value in {"TOKEN": TOKEN, **values}.items():
        text = text.replace(f"@{key}@", value)
    return text


# -- time ----------------------------------------------------------------------------------
def test_infinite_loop_times_out(pool):
    started = time.monotonic()
    r = run(pool, "def f(x):\n    while True:\n        pass\n")
    assert (r["status"], r["tests_passed"]) == ("timeout", 0)
    assert time.monotonic() - started < 4


def test_loop_swallowing_the_alarm_is_killed(pool):
    started = time.monotonic()
    r = run(pool, "def f(x):\n    while True:\n        try:\n            while True:\n                pass\n"
                  "        except BaseException:\n            pass\n")
    assert r["status"] == "timeout"
    # killed at the wall deadline (budget + 1 s grace) on the first run and on the confirmatory re-run, if any
    record = r["timeout_rerun"]
    runs = [record["first"]] + ([record["rerun"]] if record["rerun"] is not None else [])
    assert all(run["status"] == "timeout" and run["duration_s"] < run["timeout_s"] + 1.5 for run in runs), record
    assert time.monotonic() - started < 5 * len(runs)


def test_c_level_hang_times_out(pool):
    r = run(pool, "def f(x):\n    return sum(range(10 ** 15))\n")
    assert r["status"] == "timeout"


# -- processes and memory ------------------------------------------------------------------
def test_fork_bomb_is_capped_and_swept(pool):
    before = [slot.worker.cgroup.pids_limit_hits() for slot in pool.slots]
    r = run(pool, "import os\ndef f(x):\n    while True:\n        try:\n            if os.fork() == 0:\n"
                  "                os.setsid()\n        except OSError:\n            pass\n")
    assert r["status"] == "timeout"
    after = [slot.worker.cgroup.pids_limit_hits() for slot in pool.slots]
    assert sum(after) > sum(before), "pids.max never refused a fork: the bomb was not capped"


def test_memory_bomb_is_stopped(pool):
    r = run(pool, "def f(x):\n    hog = [bytearray(100 << 20) for _ in range(30)]\n    return x\n", timeout_s=8.0)
    assert r["status"] == "memory"


def test_tmpfs_fill_is_stopped_by_the_cgroup(pool):
    fill = ("import os\ndef f(x):\n    block = b'x' * (16 << 20)\n    for i in range(200):\n"
            "        with open(f'/dev/shm/fill-{i}', 'wb') as out:\n            out.write(block)\n    return x\n")
    r = run(pool, fill, timeout_s=20.0)
    assert r["status"] == "memory", r
    assert run(pool, "import os\ndef f(x):\n    return len(os.listdir('/dev/shm')) + 1\n")["status"] == "passed"


def test_huge_output_is_bounded_and_never_reaches_the_caller(pool, capfd):
    r = run(pool, "import os, sys\ndef f(x):\n    for _ in range(40):\n        print('y' * (1 << 20))\n"
                  "        os.write(1, b'z' * (1 << 20))\n        os.write(2, b'w' * (1 << 20))\n    return x\n")
    assert r["status"] == "passed"
    assert len(r["output"]) <= 2048
    captured = capfd.readouterr()
    assert "yyyy" not in captured.out + captured.err and "zzzz" not in captured.out + captured.err


# -- the file system -----------------------------------------------------------------------
def test_writes_outside_the_scratch_dir_do_not_reach_the_host(pool, canaries):
    targets = [f"{project_root()}/probe-{TOKEN}", f"/srv/probe-{TOKEN}", f"/opt/probe-{TOKEN}",
               f"{canaries['dir']}/probe-{TOKEN}", f"/dev/shm/probe-{TOKEN}", f"/var/tmp/probe-{TOKEN}",
               f"/tmp/probe-{TOKEN}", f"{os.path.expanduser('~')}/probe-{TOKEN}", f"/etc/probe-{TOKEN}"]
    r = run(pool, program("def f(x):\n    for path in @TARGETS@:\n        try:\n            open(path, 'w').write('x')\n"
                          "        except OSError:\n            pass\n    return x\n", TARGETS=repr(targets)))
    assert r["status"] == "passed"


def test_deletes_outside_the_scratch_dir_fail(pool, canaries):
    code = program(
        "import os, posix, shutil\ndef f(x):\n    base = '@BASE@'\n"
        "    for attempt in (lambda: os.remove(base + '/keep.txt'), lambda: posix.unlink(base + '/keep.txt'),\n"
        "                    lambda: shutil.rmtree(base), lambda: posix.rmdir(base + '/sub'),\n"
        "                    lambda: os.rename(base + '/keep.txt', base + '/moved'), lambda: posix.unlink('@SHM@'),\n"
        "                    lambda: posix.truncate(base + '/keep.txt', 0)):\n"
        "        try:\n            attempt()\n            return 'deleted'\n        except OSError:\n            pass\n"
        "    return x\n",
        BASE=str(canaries["dir"]), SHM=str(canaries["shm"]))
    assert run(pool, code)["status"] == "passed"


def test_project_and_home_dirs_are_unreadable(pool):
    code = program(
        "import os\ndef f(x):\n    seen = []\n"
        "    for path in ['@PROJECT@/pyproject.toml', '@HOMESECRET@', '/etc/shadow']:\n"
        "        try:\n            seen.append(open(path).read())\n        except OSError:\n            pass\n"
        "    for d in ['@PROJECT@', '@HOME@']:\n"
        "        try:\n            seen.extend(os.listdir(d))\n        except OSError:\n            pass\n"
        "    print(seen)\n    return x if not any(seen) else seen\n",
        PROJECT=str(project_root()), HOMESECRET=str(HOME_SECRET), HOME=os.path.expanduser("~"))
    r = run(pool, code)
    assert r["status"] == "passed", r["output"]
    assert TOKEN not in r["output"] and "[project]" not in r["output"]


def test_environment_secrets_do_not_leak(pool):
    code = program(
        "import os, glob\ndef f(x):\n    found = [k for k, v in os.environ.items() if '@TOKEN@' in v]\n"
        "    for path in glob.glob('/proc/*/environ') + glob.glob('/proc/*/cmdline'):\n"
        "        try:\n            if b'@TOKEN@' in open(path, 'rb').read():\n                found.append(path)\n"
        "        except OSError:\n            pass\n    return x if not found else found\n")
    assert run(pool, code)["status"] == "passed"


# -- the network ---------------------------------------------------------------------------
def test_loopback_connection_to_a_host_listener_fails(pool):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted = []

    def accept():
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            try:
                accepted.append(listener.accept())
            except (socket.timeout, OSError):
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        code = program("import socket\ndef f(x):\n    try:\n        socket.create_connection(('127.0.0.1', @PORT@), "
                       "timeout=0.5)\n        return 'connected'\n    except OSError:\n        return x\n", PORT=str(port))
        r = run(pool, code)
    finally:
        thread.join()
        listener.close()
    assert r["status"] == "passed"
    assert not accepted


# -- the harness itself --------------------------------------------------------------------
@pytest.mark.parametrize("kill", ["os.kill(os.getppid(), 9)", "posix.kill(-1, 9)"])
def test_killing_the_worker_is_scored_crashed_after_one_retry(pool, kill):
    losses = pool.stats["worker_losses"]
    r = run(pool, f"import os, posix\ndef f(x):\n    {kill}\n    return x\n")
    assert (r["status"], r["error_type"]) == ("crashed", "WorkerKilled")
    assert pool.stats["worker_losses"] == losses + 2


def test_the_jails_init_and_the_orchestrator_cannot_be_killed_from_inside(pool):
    losses = pool.stats["worker_losses"]
    code = program("import posix\ndef f(x):\n    for sig in (9, 15, 2):\n        posix.kill(1, sig)\n"
                   "    try:\n        posix.kill(@HOSTPID@, 9)\n    except OSError:\n        pass\n    return x\n",
                   HOSTPID=str(os.getpid()))
    r = run(pool, code)
    assert r["status"] == "passed"  # the kernel ignores these signals for a pid namespace's init
    assert pool.stats["worker_losses"] == losses  # and the host's pids are not visible in the jail


@pytest.mark.parametrize(
    ("body", "status"),
    [("sys.exit(0)", "failed"), ("raise SystemExit(0)", "failed"), ("os._exit(0)", "crashed"),
     ("os.kill(os.getpid(), 9)", "crashed")],
)
def test_exits_inside_tests_never_pass(pool, body, status):
    r = run(pool, f"import os, sys\ndef f(x):\n    {body}\n", tests=["assert f(1) == 1", "assert f(2) == 2"])
    assert (r["status"], r["tests_passed"]) == (status, 0)


def test_forged_results_are_not_trusted(pool):
    forged = ('{"id": "hostile", "status": "passed", "compiled": true, "tests_passed": 1, "tests_total": 1, '
              '"error_type": null, "error_message": null, "duration_s": 0.0}')
    code = program(
        "import os, glob\ndef f(x):\n    line = '@LINE@\\n'\n    print(line)\n    os.write(1, line.encode())\n"
        "    for path in glob.glob('/proc/*/fd/*'):\n        try:\n            fd = os.open(path, os.O_WRONLY)\n"
        "            os.write(fd, line.encode())\n        except OSError:\n            pass\n    return -1\n",
        LINE=forged.replace("'", "\\'"))
    r = run(pool, code)
    assert r["status"] in ("failed", "crashed") and r["tests_passed"] == 0
    # frames on the private result pipe without the job's nonce mark the sample as tampering
    r = run(pool, "import os\ndef f(x):\n    for fd in range(3, 10):\n        try:\n"
                  "            os.write(fd, b'U {\"i\": 0, \"ok\": true}\\nD {\"timeout\": false}\\n')\n"
                  "        except OSError:\n            pass\n    return -1\n")
    assert (r["status"], r["error_type"], r["tests_passed"]) == ("crashed", "ResultChannelTampering", 0)


def test_no_state_survives_into_the_next_sample(pool):
    dirty = program(
        "import os, sys, math, builtins\ndef f(x):\n"
        "    for d in ['/tmp', '/var/tmp', '/dev/shm', '/var/log', '/run/lock', os.getcwd(), '..', os.path.expanduser('~')]:\n"
        "        try:\n            open(os.path.join(d, 'left-@TOKEN@'), 'w').write('x')\n        except OSError:\n"
        "            pass\n    math.pi = 3\n    builtins.max = None\n    sys.modules['json'] = None\n"
        "    os.environ['LEFT_@TOKEN@'] = '1'\n    return x\n")
    clean = program(
        "import os, sys, math, glob, json\ndef f(x):\n"
        "    left = [p for d in ['/tmp', '/var/tmp', '/dev/shm', '/var/log', '/run/lock', '..', os.path.expanduser('~')]\n"
        "            for p in glob.glob(os.path.join(d, '**', '*@TOKEN@*'), recursive=True)]\n"
        "    assert not left, left\n    assert math.pi > 3.14 and max(1, 2) == 2 and json.dumps(1) == '1'\n"
        "    assert 'LEFT_@TOKEN@' not in os.environ\n    return x\n")
    # one worker, so that every clean sample runs right after a dirty one in the same jail
    with SandboxPool(workers=1, timeout_s=2.0) as solo:
        results = list(solo.run([{"id": kind, "program": code, "tests": ["assert f(1) == 1"], "entry_point": "f"}
                                 for _ in range(3) for kind, code in (("dirty", dirty), ("clean", clean))]))
    assert [r["status"] for r in results] == ["passed"] * 6, [r["output"] for r in results]


def test_locked_deep_directory_trees_are_wiped(pool):
    dirty = program(
        "import os\ndef f(x):\n    path = '/tmp/deep-@TOKEN@'\n    for i in range(300):\n        path += '/d'\n"
        "    os.makedirs(path)\n    open(path + '/f', 'w').write('x')\n    p = path\n"
        "    while p != '/tmp':\n        os.chmod(p, 0)\n        p = os.path.dirname(p)\n    return x\n")
    clean = program("import os\ndef f(x):\n    return x if not os.path.exists('/tmp/deep-@TOKEN@') else 0\n")
    with SandboxPool(workers=1, timeout_s=2.0) as solo:
        results = list(solo.run([{"id": kind, "program": code, "tests": ["assert f(1) == 1"], "entry_point": "f"}
                                 for kind, code in (("dirty", dirty), ("clean", clean))]))
    assert [r["status"] for r in results] == ["passed", "passed"]
