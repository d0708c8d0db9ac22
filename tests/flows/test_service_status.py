"""Issue 22: `csp service status` tells the truth about this home's service (fast: a stand-in HTTP server in
this process plays the Prefect API, and this process stands in for the server and worker processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from flows.service import Service, work_pool_for
from flows.service_pids import record_start
from flows.service_status import server_port, status
from tests.flows.cli_process import free_port, invoke_csp


@contextmanager
def fake_prefect_api(home: Path):
    """A loopback server answering ``/api/health`` and ``/api/admin/settings`` as the Prefect server of
    ``home`` would; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = {"/api/health": True, "/api/admin/settings": {"home": str(home)}}.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


SERVER_STAND_IN = ["-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"]
WORKER_STAND_IN = ["-m", "prefect", "worker", "start", "--pool", "stand-in"]


def stand_in(home: Path, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """A sleeping process whose command line ends with ``args`` and whose ``PREFECT_HOME`` is ``home``: it
    stands in for a Prefect server or worker that `up` started (:func:`flows.service_pids.verify`)."""
    code = "import time; print('up', flush=True); time.sleep(120)"
    full = dict(os.environ, PREFECT_HOME=str(home), **(env or {}))
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, env=full)
    assert proc.stdout.readline() == "up\n"  # its command line and environment are its own once it runs
    return proc


@contextmanager
def stand_ins(svc: Service):
    """This home's server and worker pid files naming live stand-ins, with their start times recorded as
    `up` records them; yields the two processes and stops them afterwards."""
    procs = [stand_in(svc.home, SERVER_STAND_IN), stand_in(svc.home, WORKER_STAND_IN)]
    svc.state_dir.mkdir(parents=True, exist_ok=True)
    for pid_file, proc in zip((svc.server_pid_file, svc.worker_pid_file), procs, strict=True):
        pid_file.write_text(f"{proc.pid}\n")
        record_start(pid_file, proc.pid)
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
            proc.stdout.close()


@contextmanager
def _started(tmp_path: Path, lake: Path, port: int):
    """This home's service as `up` leaves it: pid files (stand-ins), the served lake and the port its
    server was started on."""
    svc = Service(port=port, home=tmp_path / "ph", lake=lake)
    with stand_ins(svc):
        svc.worker_lake_file.write_text(f"{lake}\n")
        svc.server_port_file.write_text(f"{port}\n")
        yield svc


def test_status_fails_when_the_running_worker_serves_another_lake(tmp_path):
    """(a) The worker runs, this home's server answers, but the worker writes into lake a while this shell's
    CSP_HOME is b: the status says so and exits 1 (it exited 0 before)."""
    a, b = tmp_path / "a", tmp_path / "b"
    env = {"PREFECT_HOME": str(tmp_path / "ph")}
    with fake_prefect_api(tmp_path / "ph") as port, _started(tmp_path, a, port) as served:
        assert status(served)["running"] is True
        same = invoke_csp(a, "service", "status", "--port", str(port), env=env)
        assert same.returncode == 0, same.stdout
        assert "warning" not in same.stdout

        seen = status(Service(port=port, home=tmp_path / "ph", lake=b))
        assert seen["running"] is False and seen["worker"]["other_lake"] is True
        assert seen["server"]["ours"] is True and seen["worker"]["alive"] is True
        other = invoke_csp(b, "service", "status", "--port", str(port), env=env)
    assert other.returncode == 1, other.stdout
    assert (
        f"warning: this service's worker writes into the lake {a}, not {b}; set CSP_HOME={a}, "
        "or run `csp service down` and `up` from this shell." in other.stdout
    ), other.stdout
    assert f"(pool {work_pool_for(a)}, lake {a}, not this shell's CSP_HOME {b}, " in other.stdout


def test_status_reports_the_port_the_server_really_answers_on(tmp_path):
    """(b) Started on one port, asked about another (the default 4200, say): the status probes and prints the
    port this home's server was started on, and the UI address on it."""
    lake = tmp_path / "lake"
    asked = free_port()
    with fake_prefect_api(tmp_path / "ph") as port, _started(tmp_path, lake, port):
        assert asked != port
        seen = status(Service(port=asked, home=tmp_path / "ph", lake=lake))
        assert seen["server"]["port"] == port and seen["server"]["asked_port"] == asked
        assert seen["server"]["healthy"] and seen["server"]["ours"] and seen["running"]
        assert seen["ui"] == f"http://127.0.0.1:{port}"
        shown = invoke_csp(
            lake, "service", "status", "--port", str(asked), env={"PREFECT_HOME": str(tmp_path / "ph")}
        )
    assert shown.returncode == 0, shown.stdout
    assert f"; port {port} (where this home's server was started; not --port {asked}) healthy" in shown.stdout
    assert f"UI: http://127.0.0.1:{port}\n" in shown.stdout


def test_the_port_of_a_server_without_a_port_file_is_read_from_its_command_line(tmp_path):
    """A server started before the port was recorded: its live process's ``--port`` tells."""
    svc = Service(port=4200, home=tmp_path / "ph", lake=tmp_path / "lake")
    svc.home.mkdir(parents=True)
    proc = stand_in(svc.home, [*SERVER_STAND_IN, "--port", "4321"])
    try:
        svc.server_pid_file.write_text(f"{proc.pid}\n")
        assert server_port(svc) == 4321
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert server_port(svc) is None  # no live server of this home: no port of its own


def test_status_says_not_running_without_pid_files(tmp_path):
    """(c) No pid file in this home (never started, or after `down`): "not running", never "pid None" nor
    "pid unknown", and no lake it does not have."""
    shown = invoke_csp(
        tmp_path / "lake",
        "service",
        "status",
        "--port",
        str(free_port()),
        env={"PREFECT_HOME": str(tmp_path / "ph")},
    )
    assert shown.returncode == 1
    assert "None" not in shown.stdout and "unknown" not in shown.stdout, shown.stdout
    assert "server: not running; port " in shown.stdout
    assert "worker: not running (pool " in shown.stdout
    assert "UI: none (no server of this home answers)" in shown.stdout
