"""A per-worker cgroup that caps processes and memory, because rlimits cannot do it as root.

As root, RLIMIT_NPROC is ignored (a fork bomb creates hundreds of processes) and RLIMIT_AS
does not see files written to RAM-backed tmpfs (`/tmp`, `/dev/shm` inside the jail). A cgroup
with `pids.max` and a memory limit bounds both; with the sample child at `oom_score_adj` 1000,
the kernel OOM-kills the sample, not the worker (measured: notes/execution-sandbox.md §5).

The group is created *below the caller's own cgroup* in each hierarchy, so it stays inside
whatever limits the caller already has, and is removed when the worker stops. cgroup v1 (the
`pids` and `memory` controllers, as on the Debian 12 VMs) and v2 (a unified hierarchy whose
parent delegates `pids` and `memory`) are supported.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CgroupError", "WorkerCgroup", "cgroup_support"]

log = logging.getLogger(__name__)
PREFIX = "editsweep-"


class CgroupError(RuntimeError):
    """The cgroup could not be created or configured; the message says which file failed."""


@dataclass(frozen=True)
class _Mount:
    version: int
    controllers: frozenset[str]
    mountpoint: Path
    root: str  # the mount's root within the hierarchy (not "/" inside a cgroup namespace)


def _mounts() -> list[_Mount]:
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if not tail:
                continue
            fstype = tail[0]
            if fstype == "cgroup":
                options = set(tail[2].split(",")) if len(tail) > 2 else set()
                found.append(_Mount(1, frozenset(options & {"pids", "memory"}), Path(fields[4]), fields[3]))
            elif fstype == "cgroup2":
                path = Path(fields[4])
                try:
                    controllers = frozenset((path / "cgroup.controllers").read_text().split())
                except OSError:
                    controllers = frozenset()
                found.append(_Mount(2, controllers & {"pids", "memory"}, path, fields[3]))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under key "" for v2."""
    paths = {}
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    return paths


def _join(mount: _Mount, path: str) -> Path:
    relative = path
    if mount.root != "/" and path.startswith(mount.root):
        relative = path[len(mount.root):]
    return mount.mountpoint / relative.lstrip("/")


def _parent_dirs() -> dict[str, Path]:
    """Where to create a child group, per controller ("pids", "memory"); v2 uses one dir for both."""
    own = _own_paths()
    parents: dict[str, Path] = {}
    for mount in _mounts():
        if mount.version == 1:
            for controller in mount.controllers:
                if controller in own:
                    parents.setdefault(controller, _join(mount, own[controller]))
    if {"pids", "memory"} <= parents.keys():
        return parents
    for mount in _mounts():
        if mount.version == 2 and {"pids", "memory"} <= mount.controllers and "" in own:
            base = _join(mount, own[""])
            return {"v2": base}
    return parents


def cgroup_support() -> tuple[bool, str]:
    """(usable, explanation): whether per-worker groups with pids and memory limits can be made here."""
    try:
        parents = _parent_dirs()
    except OSError as exc:
        return False, f"cannot read the cgroup layout: {exc}"
    if "v2" in parents:
        base = parents["v2"]
        try:
            enabled = set((base / "cgroup.subtree_control").read_text().split())
        except OSError as exc:
            return False, f"cgroup v2 at {base} is not readable: {exc}"
        if not {"pids", "memory"} <= enabled:
            return False, (f"cgroup v2: {base} does not delegate pids+memory to children "
                           f"(subtree_control: {' '.join(sorted(enabled)) or 'empty'}); "
                           "run under `systemd-run --scope -p Delegate=yes` or enable them")
        if not os.access(base, os.W_OK):
            return False, f"cgroup v2: no write access to {base}"
        return True, f"cgroup v2 below {base}"
    missing = {"pids", "memory"} - parents.keys()
    if missing:
        return False, f"no cgroup {' and '.join(sorted(missing))} controller is mounted"
    unwritable = [str(p) for p in parents.values() if not os.access(p, os.W_OK)]
    if unwritable:
        return False, f"no write access to {', '.join(unwritable)}"
    return True, "cgroup v1 below " + ", ".join(f"{k}:{v}" for k, v in sorted(parents.items()))


class WorkerCgroup:
    """One worker's cgroup: `pids.max` and a memory limit, the OOM-kill counter, removal."""

    def __init__(self, name: str, pids_max: int, memory_bytes: int):
        if not name.replace("-", "").isalnum():
            raise CgroupError(f"bad cgroup name {name!r}")
        self.name = PREFIX + name
        self.pids_max = int(pids_max)
        self.memory_bytes = int(memory_bytes)
        self.dirs: dict[str, Path] = {}
        self.version = 1

    # -- life cycle ---------------------------------------------------------------------
    def create(self) -> "WorkerCgroup":
        parents = _parent_dirs()
        if "v2" in parents:
            self.version = 2
            group = parents["v2"] / self.name
            self._mkdir(group)
            self.dirs = {"pids": group, "memory": group}
            self._write(group / "pids.max", str(self.pids_max))
            self._write(group / "memory.max", str(self.memory_bytes))
            self._write(group / "memory.swap.max", "0", optional=True)
            return self
        for controller in ("pids", "memory"):
            if controller not in parents:
                raise CgroupError(f"no cgroup v1 {controller} controller is mounted")
            group = parents[controller] / self.name
            self._mkdir(group)
            self.dirs[controller] = group
        self._write(self.dirs["pids"] / "pids.max", str(self.pids_max))
        self._write(self.dirs["memory"] / "memory.limit_in_bytes", str(self.memory_bytes))
        self._write(self.dirs["memory"] / "memory.memsw.limit_in_bytes", str(self.memory_bytes), optional=True)
        return self

    def procs_files(self) -> list[str]:
        """The files a launcher writes its own pid into (once per distinct directory)."""
        return sorted({str(d / "cgroup.procs") for d in self.dirs.values()})

    def pids(self) -> list[int]:
        found: set[int] = set()
        for directory in set(self.dirs.values()):
            try:
                found.update(int(p) for p in (directory / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return sorted(found)

    def kill_all(self, timeout_s: float = 5.0) -> int:
        """SIGKILL every process in the group until none is left; returns how many were killed."""
        killed: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            killed.update(pids)
            time.sleep(0.01)
        return len(killed)

    def remove(self) -> None:
        """Kill whatever is left and remove the group directories."""
        if not self.dirs:
            return
        self.kill_all()
        for directory in set(self.dirs.values()):
            for _ in range(100):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)  # the last processes are still exiting
            else:
                log.warning("could not remove cgroup %s", directory)
        self.dirs = {}

    # -- observation --------------------------------------------------------------------
    def oom_kills(self) -> int:
        """How many processes the kernel OOM-killed in this group so far."""
        memory = self.dirs.get("memory")
        if memory is None:
            return 0
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            for line in (memory / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except OSError:
            pass
        return 0

    def pids_limit_hits(self) -> int:
        """How many forks the `pids.max` limit refused (the fork-bomb counter)."""
        path = self.dirs.get("pids")
        if path is None:
            return 0
        try:
            for line in (path / "pids.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "max":
                    return int(value)
        except OSError:
            pass
        return 0

    # -- helpers ------------------------------------------------------------------------
    @staticmethod
    def _mkdir(path: Path) -> None:
        try:
            path.mkdir(exist_ok=True)
        except OSError as exc:
            raise CgroupError(f"cannot create cgroup {path}: {exc}") from exc

    @staticmethod
    def _write(path: Path, value: str, optional: bool = False) -> None:
        try:
            path.write_text(value)
        except OSError as exc:
            if optional:
                return
            raise CgroupError(f"cannot write {value!r} to {path}: {exc}") from exc


def remove_stale_groups() -> int:
    """Remove empty editsweep groups left by pools that died without cleaning up; returns the count."""
    removed = 0
    try:
        parents = _parent_dirs()
    except OSError:
        return 0
    for parent in set(parents.values()):
        try:
            children = list(parent.iterdir())
        except OSError:
            continue
        for child in children:
            if not child.name.startswith(PREFIX) or not child.is_dir():
                continue
            owner = child.name[len(PREFIX):].split("-")[0]
            if owner.isdigit() and Path(f"/proc/{owner}").exists():
                continue  # its pool is still alive
            try:
                if not (child / "cgroup.procs").read_text().split():
                    child.rmdir()
                    removed += 1
            except OSError:
                pass
    return removed
