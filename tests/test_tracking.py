"""W&B tracking with the real wandb library in offline mode (files under tmp_path only)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from editsweep import tracking
from editsweep.tracking import Tracker, offline_runs, read_offline_run, resolve_mode, run_id_for


def _tracker(cell_dir: Path, **settings) -> Tracker:
    base = {"mode": "auto", "project": "editsweep-test", "reachability_timeout_s": 1.0, "log_samples": True, "tags": []}
    base.update(settings)
    return Tracker(base, run_id=run_id_for(cell_dir.parent, cell_dir.name), group="sweep1", job_type="rome",
                   name=cell_dir.name, config={"model": "small_llama", "regime": {"name": "instant"}},
                   tags=["model=small_llama"], run_dir=cell_dir)


def test_run_id_is_stable_and_valid(tmp_path: Path) -> None:
    first = run_id_for(tmp_path, "cell-1")
    assert first == run_id_for(tmp_path / "." , "cell-1")
    assert first != run_id_for(tmp_path, "cell-2") and first != run_id_for(tmp_path / "other", "cell-1")
    assert len(first) == 16 and all(c in "0123456789abcdef" for c in first)


def test_offline_run_records_steps_table_summary_and_exit(tmp_path: Path, wandb_offline_env: Path) -> None:
    cell = tmp_path / "sweep1" / "cell-a"
    tracker = _tracker(cell).start()
    assert tracker.mode == "offline"
    tracker.log_step(0, {"reliability": {"full@1": 0.25}})
    tracker.log_step(1, {"reliability": {"full@1": 0.5}})
    tracker.log_samples([{"step": 0, "problem_id": "p", "status": "passed", "apis": ["a"]}])
    tracker.set_summary({"reliability": {"full@1": 0.375, "compile@1": None}, "n_samples": 2})
    tracker.finish()
    runs = offline_runs(cell)
    assert len(runs) == 1
    run = read_offline_run(runs[0])
    assert run["run_id"] == tracker.run_id and run["group"] == "sweep1" and run["job_type"] == "rome"
    assert run["summary"]["reliability/full@1"] == 0.375
    assert run["summary"]["reliability/compile@1"] is None
    assert run["summary"]["n_samples"] == 2
    steps = [row for row in run["history"] if "reliability/full@1" in row]
    assert [(r[tracking.STEP_METRIC], r["reliability/full@1"]) for r in steps] == [(0, 0.25), (1, 0.5)]
    assert run["config"]["model"] == "small_llama"
    assert run["exit_code"] == 0
    assert list((runs[0] / "files" / "media" / "table").glob("samples_*.table.json"))


def test_failure_and_requeue_close_the_run(tmp_path: Path, wandb_offline_env: Path) -> None:
    failed = _tracker(tmp_path / "s" / "failed").start()
    failed.finish(exit_code=1)
    assert read_offline_run(offline_runs(tmp_path / "s" / "failed")[0])["exit_code"] == 1

    requeued = _tracker(tmp_path / "s" / "requeued").start()
    assert tracking.close_active_run(preempting=True) is True
    assert tracking.close_active_run() is False  # nothing open any more
    run = read_offline_run(offline_runs(tmp_path / "s" / "requeued")[0])
    assert run["exit_code"] == 1 and run["preempting"] is True
    requeued.finish()  # idempotent


def _wandb_core_pids() -> list:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"wandb-core" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_a_dying_wandb_core_does_not_fail_the_cell(tmp_path: Path, wandb_offline_env: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Slurm's scancel SIGTERMs every process of the step; wandb-core dies, the cell must go on."""
    tracker = _tracker(tmp_path / "s" / "c").start()
    tracker.log_step(0, {"a": 1})
    pids = _wandb_core_pids()
    assert pids, "wandb-core should run as a child of this process"
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while tracker.mode != "broken" and time.monotonic() < deadline:
        tracker.log_step(1, {"a": 2})
        time.sleep(0.2)
    assert tracker.mode == "broken" and "continues without W&B" in caplog.text
    tracker.log_samples([{"a": 1}])
    tracker.set_summary({"a": 1})
    tracker.finish()
    assert tracking.close_active_run() is False


def test_a_service_inherited_from_another_process_is_ignored(tmp_path: Path, wandb_offline_env: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Slurm jobs inherit the launching process's environment, including wandb's WANDB_SERVICE."""
    monkeypatch.setenv("WANDB_SERVICE", f"3-1-unix-{tmp_path / 'gone' / 'socket'}")
    tracker = _tracker(tmp_path / "s" / "c").start()
    tracker.finish()
    assert tracker.mode == "offline"
    assert read_offline_run(offline_runs(tmp_path / "s" / "c")[0])["exit_code"] == 0


def test_restart_writes_a_new_offline_dir_with_the_same_id(tmp_path: Path, wandb_offline_env: Path) -> None:
    cell = tmp_path / "s" / "c"
    _tracker(cell).start().finish(exit_code=1)
    second = _tracker(cell).start()
    second.finish()
    runs = offline_runs(cell)
    assert len(runs) == 2
    assert {read_offline_run(r)["run_id"] for r in runs} == {second.run_id}


def test_disabled_mode_imports_and_writes_nothing(tmp_path: Path, wandb_offline_env: Path) -> None:
    tracker = _tracker(tmp_path / "c", mode="disabled").start()
    tracker.log_step(0, {"a": 1})
    tracker.set_summary({"a": 1})
    tracker.finish()
    assert tracker.mode == "disabled" and not (tmp_path / "c").exists()


def test_mode_resolution_without_key_is_offline(wandb_offline_env: Path) -> None:
    assert resolve_mode("auto", "https://api.wandb.ai", 1.0) == "offline"
    assert resolve_mode("online", "https://api.wandb.ai", 1.0) == "offline"
    assert resolve_mode("disabled", "https://api.wandb.ai", 1.0) == "disabled"


def test_key_from_netrc_counts(wandb_offline_env: Path) -> None:
    (wandb_offline_env / "netrc").write_text("machine api.example.org\n  login user\n  password secret\n")
    assert tracking.api_key_configured("https://api.example.org")
    assert not tracking.api_key_configured("https://api.other.org")


class _Server:
    """A local HTTP endpoint standing in for a W&B server (JSON), an egress proxy (empty 404),
    or a host that accepts connections and never answers."""

    def __init__(self, kind: str) -> None:
        import http.server
        import socket
        import threading

        self.kind = kind
        if kind == "silent":
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(8)
            self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
            return

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # noqa: N805
                handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
                body = b'{"errors": [{"message": "user is not logged in"}]}' if kind == "wandb" else b""
                handler.send_response(401 if kind == "wandb" else 404)
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args) -> None:  # noqa: N805
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self.kind == "silent":
            self.sock.close()
        else:
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture
def server(request):
    srv = _Server(request.param)
    yield srv
    srv.close()


@pytest.mark.parametrize("server, reachable", [("wandb", True), ("proxy", False), ("silent", False)],
                         indirect=["server"])
def test_reachability_probe(server, reachable: bool) -> None:
    started = time.monotonic()
    assert tracking.server_reachable(server.url, 1.0) is reachable
    assert time.monotonic() - started < 2.0


def test_unparseable_or_unresolvable_urls_are_unreachable() -> None:
    assert tracking.server_reachable("not a url", 0.5) is False
    assert tracking.server_reachable("http://no-such-host.invalid", 2.0) is False


@pytest.mark.parametrize("server", ["silent"], indirect=True)
def test_online_without_network_falls_back_to_offline_quickly(server, tmp_path: Path, wandb_offline_env: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode("auto", server.url, 1.0) == "offline"
    started = time.monotonic()
    tracker = _tracker(tmp_path / "s" / "c", mode="online", base_url=server.url, reachability_timeout_s=1.0).start()
    elapsed = time.monotonic() - started
    tracker.finish()
    assert tracker.mode == "offline"
    assert elapsed < 15, f"falling back took {elapsed:.1f}s"
    assert "not reachable" in caplog.text
    assert read_offline_run(offline_runs(tmp_path / "s" / "c")[0])["exit_code"] == 0


@pytest.mark.parametrize("server", ["wandb"], indirect=True)
def test_key_and_reachable_server_mean_online(server, wandb_offline_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode("auto", server.url, 1.0) == "online"
    assert resolve_mode("online", server.url, 1.0) == "online"
    assert resolve_mode("offline", server.url, 1.0) == "offline"


def test_flatten() -> None:
    assert tracking.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": None}) == {"a/b": 1, "a/c/d": 2, "e": None}
