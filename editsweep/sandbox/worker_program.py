"""The program that runs inside the jail: one persistent worker that forks one child per sample.

This file is never imported by the orchestrator. Its *source text* is sent to
`python3 -c <loader>` on the worker's stdin at start-up, because the project directory is
blacklisted inside the jail and so cannot be read from there. It therefore uses the standard
library only and must stay self-contained.

Protocol (JSON lines): the worker prints one ``{"type": "ready", ...}`` (or ``"refused"`` with
the reasons, then exits) and then answers each job line read from stdin with one result line.
Both protocol fds are moved to private numbers at start-up; the worker makes itself
non-dumpable so that a sample cannot reach them through ``/proc/<worker>/fd``.

Per sample the child: ``setsid``; ``oom_score_adj`` 1000; rlimits (address space = current
VmSize + budget, CPU, file size, open files, no core); a fresh scratch cwd; an empty env;
stdin on /dev/null, stdout/stderr on a pipe the worker drains and truncates; every other fd
closed except the result pipe. It reports one frame per phase/unit on that pipe, each prefixed
with a per-job nonce, so that the parent knows which units finished even if the child is later
killed. The program runs in its own globals with the sample's builtins (removed builtins gone,
new APIs installed, imports through per-sample module views); the test units run in a layer
over those globals with the full builtins (`_ModuleViews`, `_TestGlobals`). After the child:
kill its process group, kill every other process left in the jail's
pid namespace (or, without a jail, every orphan reparented to this subreaper), reap, wipe the
writable directories, and reply.

Residual risk, stated plainly: the sample runs in the child's own interpreter, so a program
written against this harness can find the nonce in its own memory (``gc``, frames) and forge
unit frames. Forged stdout lines are never parsed, writes to the result pipe without the nonce
mark the sample as tampering (``crashed``), and the worker's protocol fds are out of reach; an
in-process forgery that knows the nonce is not detected, as with every in-process harness.
"""

import builtins
import ctypes
import hashlib
import json
import math
import os
import resource
import select
import signal
import stat
import sys
import time
import traceback

PREIMPORTED = (
    "typing", "math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string",
    "statistics", "random", "copy", "operator", "fractions", "decimal", "datetime", "json",
    "hashlib", "array", "textwrap", "unicodedata", "dataclasses", "enum", "abc",
)
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
RESULT_FD = 3
PROGRAM_FILE = "<program>"
MESSAGE_LIMIT = 500


class SampleTimeout(BaseException):
    """Raised in the child by SIGALRM when the sample's wall budget is spent."""


def _prctl(option, value):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _status_fields():
    fields = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _vmsize_bytes():
    return int(_status_fields()["VmSize"].split()[0]) * 1024


def self_check(config):
    """Reasons why this process is not in the jail it was promised (empty list: all good)."""
    reasons = []
    status = _status_fields()
    if status.get("Seccomp") != "2":
        reasons.append(f"seccomp filter not active (Seccomp={status.get('Seccomp')})")
    if status.get("NoNewPrivs") != "1":
        reasons.append(f"no_new_privs not set (NoNewPrivs={status.get('NoNewPrivs')})")
    if int(status.get("CapEff", "1"), 16) != 0:
        reasons.append(f"capabilities not dropped (CapEff={status.get('CapEff')})")
    try:
        interfaces = sorted(os.listdir("/sys/class/net"))
    except OSError as exc:
        interfaces = [f"<unreadable: {exc}>"]
    if interfaces != ["lo"]:
        reasons.append(f"network not isolated (interfaces: {', '.join(interfaces)})")
    if os.getppid() != 1:
        reasons.append(f"not in a fresh pid namespace (parent pid {os.getppid()}, expected 1)")
    for kind in ("pid", "net", "mnt"):
        host = config["host_namespaces"].get(kind)
        mine = os.readlink(f"/proc/self/ns/{kind}")
        if host is not None and mine == host:
            reasons.append(f"{kind} namespace is the host's ({mine})")
    if os.path.exists(config["host_marker"]):
        reasons.append(f"host /tmp is visible (marker {config['host_marker']} found)")
    for path in config["hidden_paths"]:
        if _has_content(path):
            reasons.append(f"{path} is readable inside the jail")
    for name, digest in config["hidden_env"].items():
        value = os.environ.get(name)
        if value is not None and hashlib.sha256(value.encode()).hexdigest()[:16] == digest:
            reasons.append(f"caller environment variable {name} leaked into the jail")
    return reasons


def _has_content(path):
    """Whether `path` shows anything: a blacklisted path is unreadable, or an empty stand-in."""
    try:
        if os.path.isdir(path):
            return bool(os.listdir(path))
        with open(path, "rb") as handle:
            return bool(handle.read(1))
    except OSError:
        return False


def _wipe_dir(path):
    """Remove everything inside `path` (not `path` itself), restoring permissions a sample took away.

    Iterative (a sample may nest directories deeper than the recursion limit) and forgiving:
    whatever cannot be removed now is retried after the next sample.
    """
    try:
        entries = os.listdir(path)
    except OSError:
        return
    stack = [(os.path.join(path, name), False) for name in entries]
    while stack:
        target, emptied = stack.pop()
        try:
            mode = os.lstat(target).st_mode
        except OSError:
            continue
        if not stat.S_ISDIR(mode):
            try:
                os.unlink(target)
            except OSError:
                pass
        elif emptied:
            try:
                os.rmdir(target)
            except OSError:
                pass
        else:
            try:
                os.chmod(target, 0o700)
                children = os.listdir(target)
            except OSError:
                children = []
            stack.append((target, True))
            stack.extend((os.path.join(target, name), False) for name in children)


class Worker:
    def __init__(self, config, proto_in, proto_out):
        self.config = config
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.inbuf = b""
        self.pid = os.getpid()
        self.jailed = config["jailed"]
        # wiping is only ever done inside a verified jail; without one only our own scratch root
        self.wipe_dirs = config["wipe_dirs"] if self.jailed else []
        self.scratch_root = config["scratch_root"]
        if not os.path.basename(self.scratch_root.rstrip("/")).startswith("editsweep-"):
            raise ValueError(f"refusing scratch root {self.scratch_root!r}: not an editsweep- directory")
        self.is_root = os.geteuid() == 0
        self.vmsize = None
        self.jobs_since_vmsize = 0
        self.install_cache = {}
        self.orphaned = False  # the job channel hung up: finish the clean-up and exit
        self.devnull = os.open(os.devnull, os.O_RDWR)
        os.set_inheritable(self.devnull, False)

    def prepare(self, job):
        """What the child needs, made here where it costs no copy-on-write page faults."""
        if self.jobs_since_vmsize >= 100 or self.vmsize is None:
            self.vmsize = _vmsize_bytes()
            self.jobs_since_vmsize = 0
        self.jobs_since_vmsize += 1
        try:
            program = compile(job["program"], PROGRAM_FILE, "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            program = None  # the child compiles again and reports the error as the sample's
        units = []
        for index, test in enumerate(job["tests"]):
            try:
                units.append(compile(test, f"<test:{index}>", "exec", dont_inherit=True))
            except (SyntaxError, ValueError):
                units.append(test)
        return {
            "program": program,
            "units": units,
            "builtins": dict(builtins.__dict__),
            "test_builtins": dict(builtins.__dict__),
            "install": {name: self.install_code(name, source) for name, source in job.get("install", {}).items()},
            "address_space": self.vmsize + int(self.config["memory_budget_bytes"]),
            "limits": self.limits_for(float(job["timeout_s"])),
            "devnull": self.devnull,
        }

    def install_code(self, name, source):
        """An install source compiled once per worker (the k samples of a problem share it)."""
        key = (name, source)
        code = self.install_cache.get(key)
        if code is None:
            try:
                code = compile(source, "<install:" + name + ">", "exec", dont_inherit=True)
            except (SyntaxError, ValueError):
                return source  # the child compiles again and reports the error as a harness error
            if len(self.install_cache) >= 512:
                self.install_cache.clear()
            self.install_cache[key] = code
        return code

    def limits_for(self, timeout):
        cpu = _cpu_limit(timeout, self.config)
        limits = [
            (resource.RLIMIT_CPU, (cpu, cpu + 1)),
            (resource.RLIMIT_FSIZE, (int(self.config["file_size_bytes"]),) * 2),
            (resource.RLIMIT_NOFILE, (int(self.config["open_files"]),) * 2),
            (resource.RLIMIT_CORE, (0, 0)),
        ]
        if not self.is_root and self.config.get("nproc"):
            limits.append((resource.RLIMIT_NPROC, (int(self.config["nproc"]),) * 2))
        return limits

    # -- protocol -------------------------------------------------------------------------
    def send(self, message):
        data = (json.dumps(message) + "\n").encode()
        while data:
            written = os.write(self.proto_out, data)
            data = data[written:]

    def read_job(self):
        while b"\n" not in self.inbuf:
            chunk = os.read(self.proto_in, 1 << 16)
            if not chunk:
                return None
            self.inbuf += chunk
        line, _, self.inbuf = self.inbuf.partition(b"\n")
        return json.loads(line)

    # -- one sample -----------------------------------------------------------------------
    def run_job(self, job):
        nonce = os.urandom(16).hex()
        prepared = self.prepare(job)
        result_r, result_w = os.pipe()
        output_r, output_w = os.pipe()
        os.makedirs(self.scratch_root, exist_ok=True)
        scratch = os.path.join(self.scratch_root, "job-" + nonce[:12])
        os.mkdir(scratch, 0o700)
        sys.stdout.flush()
        sys.stderr.flush()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child never returns from here
            code = 70
            try:
                os.close(result_r)
                os.close(output_r)
                code = run_child(job, prepared, nonce, result_w, output_w, scratch)
            finally:
                os._exit(code)
        os.close(result_w)
        os.close(output_w)
        stragglers = 0
        try:
            outcome = self.watch_child(job, pid, result_r, output_r, started)
        finally:  # whatever happened above, nothing of this sample survives into the next
            os.close(result_r)
            os.close(output_r)
            stragglers = self.sweep(pid)
            for path in self.wipe_dirs:
                _wipe_dir(path)
            if not self.jailed:
                _wipe_dir(self.scratch_root)
        outcome["cpu_limit_s"] = _cpu_limit(float(job["timeout_s"]), self.config)
        outcome["stragglers_killed"] = stragglers
        return decide(job, nonce, outcome)

    def watch_child(self, job, pid, result_r, output_r, started):
        """Collect frames and output until the child exits or the wall deadline passes."""
        timeout = float(job["timeout_s"])
        deadline = started + timeout + float(self.config["grace_s"])
        limit = int(self.config["output_limit"])
        frames = bytearray()
        output = bytearray()
        for fd in (result_r, output_r):
            os.set_blocking(fd, False)
        pidfd = os.pidfd_open(pid)
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.register(result_r, select.POLLIN)
        poller.register(output_r, select.POLLIN)
        poller.register(self.proto_in, 0)  # hang-up only: the orchestrator went away
        open_fds = {result_r, output_r}
        wall_killed = False
        wait_status = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.orphaned:
                wall_killed = not self.orphaned
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                break
            events = poller.poll(remaining * 1000.0)
            exited = False
            for fd, _event in events:
                if fd == pidfd:
                    exited = True
                    continue
                if fd == self.proto_in:
                    self.orphaned = True
                    poller.unregister(fd)
                    continue
                if fd in open_fds and not self._drain(fd, frames if fd == result_r else output, limit, fd == output_r):
                    poller.unregister(fd)
                    open_fds.discard(fd)
            if exited:
                break
        _, wait_status, usage = os.wait4(pid, 0)
        os.close(pidfd)
        duration = time.monotonic() - started
        for fd in list(open_fds):
            self._drain(fd, frames if fd == result_r else output, limit, fd == output_r)
        return {
            "frames": bytes(frames),
            "output": bytes(output[:limit]).decode("utf-8", "replace"),
            "wait_status": wait_status,
            "wall_killed": wall_killed,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "duration_s": round(duration, 4),
        }

    @staticmethod
    def _drain(fd, sink, limit, bounded):
        """Read what is available; False at EOF. Output beyond `limit` is read and dropped."""
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            if not bounded:
                if len(sink) < (1 << 22):  # frames are small; a flood is tampering anyway
                    sink.extend(chunk)
            elif len(sink) < limit:
                sink.extend(chunk[: limit - len(sink)])

    def stray_pids(self, child_pid):
        """Processes left behind by the sample: the namespace's others (jail) or our orphans."""
        found = set()
        if self.jailed:
            for name in os.listdir("/proc"):
                if name.isdigit() and int(name) not in (1, self.pid):
                    found.add(int(name))
        else:
            try:
                with open(f"/proc/self/task/{self.pid}/children") as handle:
                    found.update(int(p) for p in handle.read().split())
            except OSError:
                pass
        return found

    def sweep(self, child_pid):
        """Kill the child's group, then every stray process; return how many were killed."""
        try:
            os.killpg(child_pid, signal.SIGKILL)
        except OSError:
            pass
        killed = set()
        for _round in range(200):
            self._reap()
            pids = self.stray_pids(child_pid)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGSTOP)
                except OSError:
                    pass
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            killed.update(pids)
            self._reap()
            time.sleep(0.001)
        return len(killed)

    @staticmethod
    def _reap():
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def serve(self):
        while not self.orphaned:
            job = self.read_job()
            if job is None:
                return
            try:
                reply = self.run_job(job)
            except Exception as exc:  # the worker itself failed: report, keep serving
                reply = {
                    "id": job.get("id"),
                    "status": "harness_error",
                    "tests_passed": 0,
                    "tests_total": sum(1 for s in job.get("scored", []) if s),
                    "error_type": "WorkerError",
                    "error_message": "".join(traceback.format_exception_only(type(exc), exc)).strip(),
                    "duration_s": 0.0,
                }
            if self.orphaned:
                return
            try:
                self.send(reply)
            except BrokenPipeError:
                return


# -- the child ---------------------------------------------------------------------------
def _short(text):
    text = str(text)
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def _program_line(exc):
    """The deepest line of the program in the traceback of `exc` (None if not in the program)."""
    if isinstance(exc, SyntaxError) and exc.filename == PROGRAM_FILE:
        return exc.lineno
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == PROGRAM_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _describe(exc):
    return {"type": type(exc).__name__, "message": _short(exc), "line": _program_line(exc)}


def _cpu_limit(timeout, config):
    return int(math.ceil(timeout)) + int(config["cpu_extra_s"])


def _isolate_fds(devnull, result_w, output_w):
    os.dup2(devnull, 0)
    os.dup2(output_w, 1)
    os.dup2(output_w, 2)
    os.dup2(result_w, RESULT_FD)
    os.closerange(RESULT_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    os.set_inheritable(RESULT_FD, False)


def _install(job, prepared):
    """The new APIs, each defined from its source with the full builtins and the real modules."""
    installed = {}
    for name, code in prepared["install"].items():
        namespace = {"__builtins__": builtins, "__name__": "editsweep_install_" + name}
        exec(code if not isinstance(code, str) else compile(code, "<install:" + name + ">", "exec"), namespace)
        if name not in namespace:
            raise RuntimeError(f"install source for {name} does not define {name}")
        installed[name] = namespace[name]
    return installed


class _ModuleViews:
    """Per-sample stand-ins for modules that lost attributes; the real modules stay intact.

    The sample's `__import__` (and `importlib.import_module`, and `import builtins`) return a
    *view* instead of a module with removed attributes, of each package along its dotted path
    (`os` for `os.path.join`), of `builtins` and of `importlib`. A view is a fresh module object
    holding a copy of the real one's names minus the removed ones, with the submodules along a
    removal's path swapped for their views (`os.path` in the view of `os`) and a module
    `__getattr__` that reads later additions from the real module (still hiding the removed
    names). Other modules' own references lead to the real modules (`posixpath.os`,
    `collections._heapq`): reaching for them is a deliberate workaround, like `sys.modules`.
    Views are made on first use, so a sample pays only for the modules it imports. The standard
    library's own code keeps using the real modules, so `Counter.__eq__` still finds `Counter`
    and `Counter.most_common` still finds `heapq.nlargest`.
    """

    def __init__(self, removals, sample_builtins):
        import importlib

        self.hidden = {}  # id(real module) -> (real module, names hidden in its view)
        self.links = {}  # id(real package) -> {attribute: real submodule} along the removals' paths
        for module_name, attr in removals:
            module = importlib.import_module(module_name)
            self.hidden.setdefault(id(module), (module, set()))[1].add(attr)
            parts = module_name.split(".")
            for end in range(1, len(parts)):
                parent = sys.modules[".".join(parts[:end])]
                self.hidden.setdefault(id(parent), (parent, set()))
                self.links.setdefault(id(parent), {})[parts[end]] = sys.modules[".".join(parts[: end + 1])]
        self.hidden.setdefault(id(importlib), (importlib, set()))
        self.importlib_id = id(importlib)
        self.real_import = builtins.__import__
        self.real_import_module = importlib.import_module
        self.views = {}  # id(real module) -> its view, made on first use
        builtins_view = type(sys)("builtins")
        builtins_view.__dict__.update(sample_builtins)
        builtins_view.__dict__["__import__"] = self.import_hook
        self.views[id(builtins)] = builtins_view
        self.sample_builtins = builtins_view.__dict__

    def view_of(self, value):
        """The view standing in for `value` if it is a module with a view, else `value` itself."""
        key = id(value)
        view = self.views.get(key)
        if view is not None:
            return view
        entry = self.hidden.get(key)
        if entry is None:
            return value
        real, names = entry
        view = self.views[key] = type(sys)(real.__name__)  # registered first: modules refer to each other
        namespace = view.__dict__
        namespace.update(real.__dict__)
        for name in names:
            namespace.pop(name, None)
        namespace.pop("__dir__", None)
        for name, submodule in self.links.get(key, {}).items():
            if namespace.get(name) is submodule:
                namespace[name] = self.view_of(submodule)
        if names and isinstance(namespace.get("__all__"), (list, tuple)):
            namespace["__all__"] = [name for name in namespace["__all__"] if name not in names]
        view_of = self.view_of

        def __getattr__(name):  # attributes the real module gained after the copy (lazy submodules)
            if name in names:
                raise AttributeError(f"module {real.__name__!r} has no attribute {name!r}")
            return view_of(getattr(real, name))

        namespace["__getattr__"] = __getattr__
        if key == self.importlib_id:
            for name, hook in (("import_module", self.import_module), ("__import__", self.import_hook)):
                if name not in names:
                    namespace[name] = hook
        return view

    def import_hook(self, name, globals=None, locals=None, fromlist=(), level=0):
        """The sample's `__import__`: the real import, then the view of what it returns."""
        return self.view_of(self.real_import(name, globals, locals, fromlist, level))

    def import_module(self, name, package=None):
        """The sample's `importlib.import_module`."""
        return self.view_of(self.real_import_module(name, package))


def _environment(job, prepared):
    """The sample's builtins and the tests' builtins (new APIs in both; removals in the sample's only)."""
    installed = _install(job, prepared)
    sample_builtins = prepared["builtins"]
    test_builtins = prepared["test_builtins"]
    for name in job.get("remove_builtins", []):
        sample_builtins.pop(name, None)
    sample_builtins.update(installed)
    test_builtins.update(installed)
    removals = [tuple(pair) for pair in job.get("remove_modules", [])]
    if removals or job.get("remove_builtins"):
        sample_builtins = _ModuleViews(removals, sample_builtins).sample_builtins
    return sample_builtins, test_builtins


_ABSENT = object()


class _TestGlobals(dict):
    """The tests' globals: their own names, then the program's (read live), then the full builtins.

    Test units run here, not in the program's namespace, so that a builtin removed for the
    program (`abs`) is still there for the tests, while the program's functions keep resolving
    names in their own globals with the restricted builtins. Reads fall through to the program's
    namespace at each lookup, so a test sees a global the program rebound after the tests began;
    names the tests bind (`candidate = …`, setup values, loop variables) stay in this layer,
    as in HumanEval's `check()`, whose names are locals that the program never sees.
    """

    __slots__ = ("program", "builtins")

    def __missing__(self, name):  # the builtins are looked up here too: no KeyError raised on the way
        value = self.program.get(name, _ABSENT)
        return self.builtins[name] if value is _ABSENT else value


def run_child(job, prepared, nonce, result_w, output_w, scratch):
    """Run one sample in this forked child; report frames on the result pipe. Returns the exit code."""
    os.setsid()
    try:
        os.write(os.open("/proc/self/oom_score_adj", os.O_WRONLY), b"1000")
    except OSError:
        pass
    timeout = float(job["timeout_s"])
    tag = nonce.encode() + b" "

    def emit(kind, payload):
        os.write(RESULT_FD, tag + kind.encode() + b" " + json.dumps(payload).encode() + b"\n")

    _isolate_fds(prepared["devnull"], result_w, output_w)
    os.chdir(scratch)
    os.environ["TMPDIR"] = scratch
    try:
        sample_builtins, test_builtins = _environment(job, prepared)
    except BaseException as exc:
        emit("H", {"type": type(exc).__name__, "message": _short(exc), "line": None})
        return 0
    resource.setrlimit(resource.RLIMIT_AS, (prepared["address_space"], prepared["address_space"]))
    for which, values in prepared["limits"]:
        resource.setrlimit(which, values)

    fired = []

    def on_alarm(_signum, _frame):
        fired.append(True)
        raise SampleTimeout(f"exceeded the {timeout:g} s budget")

    signal.signal(signal.SIGALRM, on_alarm)
    namespace = {"__name__": "__candidate__", "__builtins__": sample_builtins}
    test_namespace = _TestGlobals(__name__="__candidate__", __builtins__=test_builtins)
    test_namespace.program = namespace
    test_namespace.builtins = test_builtins
    try:  # an alarm between two statements of the harness lands here, never in the void
        signal.setitimer(signal.ITIMER_REAL, timeout)
        _run_sample(job, prepared, namespace, test_namespace, emit, fired)
    except SampleTimeout:
        fired.append(True)
    _finish(emit, fired)
    return 0


def _run_sample(job, prepared, namespace, test_namespace, emit, fired):
    try:
        program = prepared["program"]
        exec(program if program is not None else compile(job["program"], PROGRAM_FILE, "exec"), namespace)
    except BaseException as exc:  # noqa: B036 - the sample may raise anything, exit included
        emit("B", {"ok": False, "timeout": bool(fired), **_describe(exc)})
        return
    emit("B", {"ok": True})
    entry_point = job.get("entry_point")
    if entry_point is not None and not callable(namespace.get(entry_point)):
        emit("E", {"name": entry_point})
        return
    for index, unit in enumerate(prepared["units"]):
        if fired:
            return
        try:
            exec(unit if not isinstance(unit, str) else compile(unit, f"<test:{index}>", "exec"), test_namespace)
        except BaseException as exc:  # noqa: B036 - sys.exit inside a test is a failed unit
            emit("U", {"i": index, "ok": False, "timeout": bool(fired), **_describe(exc)})
            continue
        emit("U", {"i": index, "ok": True})


def _finish(emit, fired):
    try:
        signal.setitimer(signal.ITIMER_REAL, 0)
    except SampleTimeout:
        fired.append(True)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    try:
        sys.stdout.flush()
    except BaseException:  # noqa: B036 - a broken stdout must not hide the verdict
        pass
    emit("D", {"timeout": bool(fired)})


# -- the verdict -------------------------------------------------------------------------
def _parse_frames(raw, nonce):
    """Frames with the right nonce, in order; the second item is True if anything else came."""
    frames = []
    tampered = False
    prefix = nonce + " "
    text = raw.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        tampered = True  # a partial trailing frame is not ours: we write whole lines
        lines.pop()
    for line in lines:
        if not line.startswith(prefix):
            tampered = True
            continue
        kind, _, payload = line[len(prefix):].partition(" ")
        try:
            frames.append((kind, json.loads(payload)))
        except ValueError:
            tampered = True
    return frames, tampered


def decide(job, nonce, outcome):
    """Turn the child's frames and exit into a result (the supervisor adds OOM and `compiled`)."""
    scored = job["scored"]
    total = sum(1 for flag in scored if flag)
    frames, tampered = _parse_frames(outcome["frames"], nonce)
    result = {
        "id": job["id"],
        "status": None,
        "tests_passed": 0,
        "tests_total": total,
        "error_type": None,
        "error_message": None,
        "error_line": None,
        "output": outcome["output"],
        "duration_s": outcome["duration_s"],
        "cpu_s": round(outcome["cpu_s"], 4),
        "exit": _exit_description(outcome["wait_status"]),
        "stragglers_killed": outcome.get("stragglers_killed", 0),
    }
    seen_units = set()
    body = None
    done = None
    missing_entry = False
    first_error = None
    memory_error = False
    next_index = 0
    for kind, payload in frames:
        if kind == "H":
            result.update(status="harness_error", error_type=payload["type"], error_message=payload["message"])
            return result
        if kind == "B" and body is None:
            body = payload
        elif kind == "E" and body is not None:
            missing_entry = True
        elif kind == "U" and body is not None and done is None:
            index = payload.get("i")
            if not isinstance(index, int) or index < next_index or index >= len(scored):
                tampered = True
                continue
            next_index = index + 1
            seen_units.add(index)
            if payload["ok"]:
                if scored[index]:
                    result["tests_passed"] += 1
            elif scored[index] or payload.get("type") == "MemoryError":
                if payload.get("type") == "MemoryError":
                    memory_error = True
                if first_error is None and scored[index]:
                    first_error = payload
        elif kind == "D" and body is not None:
            done = done or payload
        else:
            tampered = True
    if tampered:
        result.update(
            status="crashed",
            tests_passed=0,
            error_type="ResultChannelTampering",
            error_message="the result pipe carried data that the harness did not write",
        )
        return result
    cpu_limit = outcome["cpu_limit_s"]
    killed_for_time = (
        outcome["wall_killed"]
        or _killed_by(outcome["wait_status"], signal.SIGXCPU)
        or (_killed_by(outcome["wait_status"], signal.SIGKILL) and outcome["cpu_s"] >= 0.9 * cpu_limit)
    )
    if body is None:
        if killed_for_time:
            return _with_error(result, "timeout", "Timeout", _timeout_message(job, outcome), None)
        return _with_error(result, "crashed", *_crash_error(outcome))
    if not body.get("ok"):
        if body.get("timeout"):
            return _with_error(result, "timeout", "Timeout", _timeout_message(job, outcome), body.get("line"))
        if body.get("type") == "MemoryError":
            return _with_error(result, "memory", "MemoryError", body.get("message"), body.get("line"))
        return _with_error(result, "definition_error", body.get("type"), body.get("message"), body.get("line"))
    if missing_entry:
        name = job.get("entry_point")
        return _with_error(result, "missing_entry_point", "MissingEntryPoint",
                           f"the program defines no callable {name!r}", None)
    if first_error is not None:
        result.update(error_type=first_error.get("type"), error_message=first_error.get("message"),
                      error_line=first_error.get("line"))
    if done is None:  # died among the units
        if killed_for_time:
            result["status"] = "timeout"
            result["error_type"] = result["error_type"] or "Timeout"
            result["error_message"] = result["error_message"] or _timeout_message(job, outcome)
            return _timeout_first(result, job, outcome)
        error_type, message, _ = _crash_error(outcome)
        result.update(status="crashed", error_type=error_type, error_message=message, error_line=None)
        return result
    if done.get("timeout"):
        return _timeout_first(dict(result, status="timeout"), job, outcome)
    if memory_error:
        result["status"] = "memory"
        return result
    passed = result["tests_passed"] == total and all(
        index in seen_units for index, flag in enumerate(scored) if flag
    )
    result["status"] = "passed" if passed else "failed"
    if passed:
        result.update(error_type=None, error_message=None, error_line=None)
    return result


def _timeout_first(result, job, outcome):
    """A timeout reports itself as the error, whatever units failed before it."""
    result.update(error_type="Timeout", error_message=_timeout_message(job, outcome), error_line=None)
    return result


def _with_error(result, status, error_type, message, line):
    result.update(status=status, error_type=error_type, error_message=message, error_line=line)
    return result


def _timeout_message(job, outcome):
    how = "killed at the wall deadline" if outcome["wall_killed"] else "time budget exceeded"
    return f"{how} ({float(job['timeout_s']):g} s budget)"


def _killed_by(wait_status, signum):
    return wait_status is not None and os.WIFSIGNALED(wait_status) and os.WTERMSIG(wait_status) == signum


def _exit_description(wait_status):
    if wait_status is None:
        return None
    if os.WIFSIGNALED(wait_status):
        return {"signal": signal.Signals(os.WTERMSIG(wait_status)).name}
    return {"code": os.WEXITSTATUS(wait_status)}


def _crash_error(outcome):
    status = outcome["wait_status"]
    if status is not None and os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        return "Killed", f"the sample process was killed by {name}", None
    code = os.WEXITSTATUS(status) if status is not None else None
    return "Exited", f"the sample process exited early with code {code}", None


# -- start-up ----------------------------------------------------------------------------
def main(config):
    proto_in = os.dup(0)
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    for fd in (proto_in, proto_out):
        os.set_inheritable(fd, False)
    worker = Worker(config, proto_in, proto_out)
    if config["jailed"]:
        reasons = self_check(config)
        if reasons:
            worker.send({"type": "refused", "reasons": reasons})
            return 2
    # what every sample inherits: its environment, and text streams that the child's fd 1/2
    # (the output pipe) will sit under; line-buffered so output before a kill is not lost
    os.environ.clear()
    os.environ.update(config["child_env"])
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")
    for name in PREIMPORTED:
        try:
            __import__(name)
        except ImportError:
            pass
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    import gc

    gc.collect()
    gc.freeze()
    worker.send({
        "type": "ready",
        "pid": os.getpid(),
        "uid": os.getuid(),
        "python": sys.version.split()[0],
        "hash_randomization": sys.flags.hash_randomization,
        "vmsize_bytes": _vmsize_bytes(),
    })
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
