"""How a worker is launched: the firejail command line, the clean environment, the hidden paths.

Flags (notes/execution-sandbox.md §3, §8.1): `--noprofile` (no distribution profile deciding
for us), `--net=none` (only `lo`), `--private` (empty tmpfs home; also hides a pyenv under
$HOME, so the system `/usr/bin/python3` is used), `--private-tmp`, `--private-dev` (without it
the host `/dev/shm` stays writable), `--read-only=/` (host dirs otherwise writable),
`--caps.drop=all --nonewprivs --seccomp`, `--rlimit-fsize`, and `--blacklist` over the project
checkout, the caller's home, `/root`, `/home` and files with secrets. Never `--timeout` (it
adds ~2 s per start); the pool enforces time itself.

The interpreter runs with `-s -P` instead of `-I`: `-I` implies `-E`, which would ignore the
`PYTHONHASHSEED=0` that makes samples reproducible; the environment is built from scratch
here, so honouring PYTHON* variables lets nothing of the caller in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

__all__ = [
    "SYSTEM_PYTHON", "firejail_path", "firejail_version", "clean_env", "hidden_paths", "firejail_argv",
    "interpreter_argv", "LOADER",
]

SYSTEM_PYTHON = "/usr/bin/python3"
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
#: secrets that root inside the jail could otherwise read (it keeps uid 0, only without capabilities)
SECRET_PATHS = (
    "/root", "/home", "/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/ssh",
    "/etc/munge", "/etc/sudoers", "/etc/sudoers.d", "/var/lib/munge", "/var/lib/slurm", "/var/spool",
    "/etc/ssl/private", "/run/secrets", "/var/lib/postgresql", "/etc/postgresql", "/var/lib/docker",
)
#: directories a sample can write inside the jail (measured), wiped between samples
JAIL_WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/var/log", "/run/lock")
JAIL_SCRATCH_ROOT = "/tmp/editsweep-scratch"
#: variables firejail itself sets inside the jail (so their presence is no leak of the caller's)
FIREJAIL_ENV = frozenset({
    "container", "SHELL", "QT_X11_NO_MITSHM", "QML_DISABLE_DISK_CACHE", "KDE_FORK_SLAVES", "PROMPT_COMMAND",
    "FIREJAIL_QUIET", "LC_CTYPE",
})

#: reads the worker program and its JSON config from stdin (the project dir is invisible in the
#: jail, and firejail refuses long arguments: a config listing a Slurm job's variables is too long)
LOADER = (
    "import os,sys\n"
    "def r(n):\n"
    " b=b''\n"
    " while len(b)<n:\n"
    "  c=os.read(0,n-len(b))\n"
    "  if not c:raise SystemExit('editsweep worker: short input on stdin')\n"
    "  b+=c\n"
    " return b\n"
    "p=r(int(sys.argv[1]));sys.argv=[sys.argv[0],r(int(sys.argv[2])).decode()]\n"
    "exec(compile(p,'<editsweep-worker>','exec'),{'__name__':'__main__','__builtins__':__builtins__})\n"
)


def firejail_path() -> str | None:
    return shutil.which("firejail", path=BASE_PATH + ":/usr/sbin:/sbin")


@lru_cache(maxsize=1)
def firejail_version() -> str | None:
    path = firejail_path()
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.splitlines()[0] if out else ""
    return first.rsplit(" ", 1)[-1] if first else None


def clean_env() -> dict[str, str]:
    """The whole environment a worker gets: nothing of the caller's."""
    return {"PATH": BASE_PATH, "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}


def child_env(home: str) -> dict[str, str]:
    """The environment of each sample process."""
    env = clean_env()
    env.update(HOME=home, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def project_root() -> Path:
    """The checkout this package runs from (its parent directory holds `editsweep/`)."""
    return Path(__file__).resolve().parents[2]


def hidden_paths(extra: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Existing paths to blacklist: the project, the caller's home and cwd, secrets, `extra`."""
    candidates = [str(project_root()), os.path.expanduser("~"), *SECRET_PATHS, *extra]
    cwd = os.getcwd()
    if cwd not in ("/", "/tmp") and not any(cwd == p or cwd.startswith(p.rstrip("/") + "/") for p in
                                             ("/usr", "/etc", "/bin", "/lib", "/lib64", "/sbin")):
        candidates.append(cwd)
    seen: list[str] = []
    for path in candidates:
        if not path or path == "/":
            continue
        real = os.path.realpath(path)
        if os.path.lexists(real) and real not in seen and _safe_to_hide(real):
            seen.append(real)
    return seen


def _safe_to_hide(path: str) -> bool:
    """Never hide what the worker needs to run (the interpreter and its library)."""
    needed = [SYSTEM_PYTHON, os.path.realpath(SYSTEM_PYTHON), "/usr/lib", "/usr/bin", "/lib", "/bin", "/etc/ld.so.cache"]
    return not any(n == path or n.startswith(path.rstrip("/") + "/") for n in needed)


def firejail_argv(hidden: list[str], file_size_bytes: int) -> list[str]:
    path = firejail_path()
    if path is None:
        raise FileNotFoundError(
            "firejail is not installed (apt-get install firejail); use jail=False / --no-jail only for development"
        )
    argv = [
        path, "--quiet", "--noprofile", "--net=none", "--private", "--private-tmp", "--private-dev",
        "--read-only=/", "--caps.drop=all", "--nonewprivs", "--seccomp", f"--rlimit-fsize={int(file_size_bytes)}",
    ]
    argv += [f"--blacklist={p}" for p in hidden]
    return argv


def interpreter_argv(python: str, program_bytes: int, config_bytes: int) -> list[str]:
    """`python -s -P -c LOADER P C`: the loader reads P bytes of worker program, then C bytes of
    JSON config from stdin (see `loader_input`)."""
    flags = ["-s", "-P"] if _supports_safe_path(python) else ["-s"]
    return [python, *flags, "-c", LOADER, str(program_bytes), str(config_bytes)]


def loader_input(program: bytes, config_json: str) -> tuple[list[int], bytes]:
    """The sizes for `interpreter_argv` and the bytes to write to the worker's stdin."""
    config = config_json.encode()
    return [len(program), len(config)], program + config


@lru_cache(maxsize=4)
def _supports_safe_path(python: str) -> bool:
    if python == sys.executable:
        return sys.version_info >= (3, 11)
    try:
        out = subprocess.run([python, "-c", "import sys;print(sys.version_info>=(3,11))"],
                             capture_output=True, text=True, timeout=10, env=clean_env())
    except (OSError, subprocess.SubprocessError):
        return False
    return out.stdout.strip() == "True"
