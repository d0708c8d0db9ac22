"""Trial 22: stale pid files, the port probe, the lake a worker was started for, and what `status` says
(fast: stand-in processes and a stand-in Prefect API; the real service is in test_service_integration.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest

from flows.service import Service, down, up
from flows.service_pids import check_port, record_start, start_file, worker_lake_of_ancestors
from flows.service_status import status
from tests.flows.cli_process import REPO, free_port, invoke_csp
from tests.flows.test_service_status import (
    SERVER_STAND_IN,
    WORKER_STAND_IN,
    fake_prefect_api,
    stand_in,
    stand_ins,
)


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()
    proc.stdout.close()


def test_down_and_status_leave_other_programs_named_by_stale_pid_files_alone(tmp_path):
    """Pid reuse after a crash or reboot: the pid files name two unrelated sleeping programs. `status` says
    "stale pid file (pid N is another program)" and "not running" (exit 1), removes the files; `down`
    signals nothing ("nothing was running"). Before, status called them running and down killed both."""
    svc = Service(port=free_port(), home=tmp_path / "ph", lake=tmp_path / "lake")
    svc.state_dir.mkdir(parents=True)
    others = [stand_in(tmp_path / "elsewhere", ["sleeping"]) for _ in range(2)]
    try:
        for pid_file, proc in zip((svc.server_pid_file, svc.worker_pid_file), others, strict=True):
            pid_file.write_text(f"{proc.pid}\n")
        env = {"PREFECT_HOME": str(svc.home)}
        shown = invoke_csp(svc.lake, "service", "status", "--port", str(svc.port), env=env)
        assert shown.returncode == 1, shown.stdout
        for proc in others:
            assert f"stale pid file (pid {proc.pid} is another program)" in shown.stdout, shown.stdout
        assert "running;" not in shown.stdout.replace("not running;", "")
        assert not svc.server_pid_file.exists() and not svc.worker_pid_file.exists()

        for pid_file, proc in zip((svc.server_pid_file, svc.worker_pid_file), others, strict=True):
            pid_file.write_text(f"{proc.pid}\n")
        said: list[str] = []
        down(svc, log=said.append)
        assert all(proc.poll() is None for proc in others), "down signalled another program"
        assert said[-1] == "nothing was running", said
        assert f"worker: stale pid file (pid {others[1].pid} is another program)" in said[0]
        assert not svc.server_pid_file.exists() and not svc.worker_pid_file.exists()
    finally:
        for proc in others:
            _stop(proc)


def test_a_pid_of_the_right_command_but_another_start_time_is_stale(tmp_path):
    """The recorded start time tells a reused pid from the process `up` started, even one that looks like a
    Prefect worker of this home; and a worker of another PREFECT_HOME is not this home's."""
    svc = Service(port=1, home=tmp_path / "ph", lake=tmp_path / "lake")
    svc.state_dir.mkdir(parents=True)
    worker = stand_in(svc.home, WORKER_STAND_IN)
    other_home = stand_in(tmp_path / "other", SERVER_STAND_IN)
    try:
        svc.worker_pid_file.write_text(f"{worker.pid}\n")
        record_start(svc.worker_pid_file, worker.pid)
        assert status(svc)["worker"]["state"] == "ours"
        start_file(svc.worker_pid_file).write_text("1\n")  # the process `up` started began at tick 1
        assert status(svc)["worker"]["state"] == "stale"
        assert worker.poll() is None and not svc.worker_pid_file.exists()

        svc.server_pid_file.write_text(f"{other_home.pid}\n")
        assert status(svc)["server"]["state"] == "stale"
        assert other_home.poll() is None
    finally:
        _stop(worker)
        _stop(other_home)


def test_status_of_a_dead_worker_exits_1_and_asks_for_up_again(tmp_path):
    """A worker killed (kill -9): "not running (pid N has exited)", exit 1, and the hint to run `csp
    service up` again."""
    svc = Service(port=free_port(), home=tmp_path / "ph", lake=tmp_path / "lake")
    with (
        fake_prefect_api(svc.home) as port,
        stand_ins(Service(port=port, home=svc.home, lake=svc.lake)) as procs,
    ):
        svc.worker_lake_file.write_text(f"{svc.lake}\n")
        svc.server_port_file.write_text(f"{port}\n")
        procs[1].kill()
        procs[1].wait()
        shown = invoke_csp(
            svc.lake, "service", "status", "--port", str(port), env={"PREFECT_HOME": str(svc.home)}
        )
    assert shown.returncode == 1, shown.stdout
    assert f"worker: not running (pid {procs[1].pid} has exited)" in shown.stdout, shown.stdout
    assert "hint: this home's worker stopped; run `csp service up` again" in shown.stdout
    assert f"server: pid {procs[0].pid} running; port {port} healthy" in shown.stdout


def test_status_of_another_homes_server_shows_neither_its_lake_nor_its_ui(tmp_path):
    with fake_prefect_api(tmp_path / "other_home") as port:
        shown = invoke_csp(
            tmp_path / "lake",
            "service",
            "status",
            "--port",
            str(port),
            env={"PREFECT_HOME": str(tmp_path / "ph")},
        )
    assert shown.returncode == 1
    assert "another home's server" in shown.stdout and "its lake is not shown" in shown.stdout
    assert "lake None" not in shown.stdout and f"UI: http://127.0.0.1:{port}" not in shown.stdout, (
        shown.stdout
    )


def test_a_port_left_in_time_wait_is_free(tmp_path):
    """A stopped server leaves TIME-WAIT sockets on its port for a minute; nothing listens there, so the
    probe (SO_REUSEADDR, as uvicorn binds) calls it free. A listening port stays taken."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = listener.accept()
    conn.close()  # the server side closes first: its socket on `port` goes to TIME-WAIT
    assert client.recv(1) == b""
    client.close()
    listener.close()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # what the probe did before: "taken" for a minute
    check_port(port)
    with socket.create_server(("127.0.0.1", 0)) as busy, pytest.raises(RuntimeError, match="is taken"):
        check_port(busy.getsockname()[1])


def test_a_run_cannot_move_its_worker_to_another_lake_through_job_variables(tmp_path):
    """The trial set both CSP_HOME and CSP_SERVICE_LAKE of a run to another folder through job variables,
    and lake A's worker wrote there. The run now compares its CSP_HOME with the environment its worker
    process was started with, which job variables cannot change: one line, nothing written."""
    a, x = tmp_path / "a", tmp_path / "x"
    run = textwrap.dedent(
        """
        from flows.settings import WrongLakeError, lake
        try:
            lake(init=True)
        except WrongLakeError as exc:
            print("refused:", exc)
        else:
            print("written")
        """
    )
    worker = textwrap.dedent(
        f"""
        import os, subprocess, sys
        env = dict(os.environ, CSP_HOME={str(x)!r}, CSP_SERVICE_LAKE={str(x)!r}, PYTHONPATH={str(REPO)!r})
        done = subprocess.run([sys.executable, "-c", {run!r}], env=env, capture_output=True, text=True)
        print(done.stdout + done.stderr[-2000:])
        """
    )
    env = {"CSP_HOME": str(a), "PYTHONPATH": str(REPO)}  # what `up` started lake A's worker with
    proc = subprocess.run(
        [sys.executable, "-c", worker, "prefect", "worker", "start", "--pool", "p"],
        env={**env, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    out = proc.stdout
    assert (
        f"refused: This run asks for the lake {x.resolve()}, but its worker was started for {a.resolve()}"
        in (out)
    ), out + proc.stderr
    assert not x.exists()
    assert worker_lake_of_ancestors() is None  # pytest runs under no worker


def test_up_leaves_a_stale_worker_pid_alone(tmp_path, monkeypatch):
    """`up` does not take a stale worker pid file for this home's worker (and never signals it)."""
    from flows import service

    svc = Service(port=free_port(), home=tmp_path / "ph", lake=tmp_path / "lake")
    svc.state_dir.mkdir(parents=True)
    other = stand_in(tmp_path / "elsewhere", ["sleeping"])
    started: list[int] = []
    monkeypatch.setattr(service, "start_server", lambda *_a, **_k: None)
    monkeypatch.setattr(service, "create_work_pool", lambda *_a, **_k: None)
    monkeypatch.setattr(service, "deploy", lambda *_a, **_k: None)
    monkeypatch.setattr(service.subprocess, "Popen", lambda *a, **k: started.append(1) or other)
    try:
        svc.worker_pid_file.write_text(f"{other.pid}\n")
        said: list[str] = []
        up(svc, log=said.append)
        assert started == [1], said  # a new worker was started instead of "already running"
        assert any(f"stale pid file (pid {other.pid} is another program)" in m for m in said), said
        assert other.poll() is None
    finally:
        _stop(other)


@pytest.mark.parametrize("text", ["99999999999999999999999", "0", "-1", "4194305", "１２"])
def test_a_pid_file_naming_no_possible_pid_is_read_as_none(tmp_path, text):
    """A number beyond Linux's PID_MAX_LIMIT once crashed `status` and `down` (OverflowError in os.kill)."""
    from flows.service_pids import read_pid, verify

    pid_file = tmp_path / "server.pid"
    pid_file.write_text(text)
    assert read_pid(pid_file) is None
    assert verify(pid_file, (b"uvicorn",), tmp_path) == (None, "none")
    assert not pid_file.exists()  # it names no process: removed, never signalled


@pytest.mark.parametrize("text", ["garbage\n", "12ab", "\x00\x01\x02", "1 2\n"])
def test_a_corrupt_pid_file_is_no_pid_and_status_removes_it(tmp_path, text):
    """Issue 22: a pid file of garbage stayed on disk after `csp service status`; a blank one (a file being
    written) is left for its writer."""
    from flows.service_pids import verify

    svc = Service(port=free_port(), home=tmp_path / "ph", lake=tmp_path / "lake")
    svc.state_dir.mkdir(parents=True)
    for pid_file in (svc.server_pid_file, svc.worker_pid_file):
        pid_file.write_text(text)
    shown = status(svc)
    assert (shown["server"]["state"], shown["worker"]["state"]) == ("none", "none")
    assert (shown["server"]["pid"], shown["worker"]["pid"], shown["running"]) == (None, None, False)
    assert not svc.server_pid_file.exists() and not svc.worker_pid_file.exists()
    blank = tmp_path / "blank.pid"
    blank.write_text("")
    assert verify(blank, (b"uvicorn",), tmp_path) == (None, "none") and blank.exists()


def test_down_on_another_port_than_the_server_of_this_home_stops_nothing_and_says_so(tmp_path):
    """Trial: `csp service down --port 4392` in user A's shell silently stopped A's server on 4391."""
    port = free_port()
    svc = Service(port=port, home=tmp_path / "ph", lake=tmp_path / "lake")
    svc.state_dir.mkdir(parents=True)
    server = stand_in(tmp_path / "server", ["sleeping"])
    try:
        svc.server_pid_file.write_text(f"{server.pid}\n")
        svc.server_port_file.write_text(f"{port}\n")
        other = port + 1 if port < 65535 else port - 1
        shown = invoke_csp(
            svc.lake, "service", "down", "--port", str(other), env={"PREFECT_HOME": str(svc.home)}
        )
        assert shown.returncode == 1
        assert f"runs on port {port}, not {other}; nothing was stopped" in shown.stdout + shown.stderr
        assert server.poll() is None and svc.server_pid_file.exists() and svc.server_port_file.exists()
    finally:
        _stop(server)
