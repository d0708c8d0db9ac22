"""Bring a local Prefect service up and down: server, process work pool, deployments, one worker.

Everything lives under ``PREFECT_HOME`` (default ``.prefect_home/`` in the project): the server's SQLite
database and pid file, and ``service/`` with the worker's pid file, the lake it serves and both logs. The
API listens on 127.0.0.1 only. Used by ``csp service up|down|status`` and ``make service-up`` /
``make service-down``; what ``status`` reports is :mod:`flows.service_status`.

One service, one lake:

* a service uses only a server it started: ``up`` on a port where another ``PREFECT_HOME``'s server
  answers (another user, another checkout) is refused, as the server's ``/api/admin/settings`` tells;
* its work pool is named after its lake (:func:`work_pool_for`), so its worker never picks up a run
  deployed for another lake;
* its deployments carry the lake in their job variables (``CSP_SERVICE_LAKE``), and a flow run whose
  worker has another ``CSP_HOME`` refuses to start (:func:`flows.settings.settings`); nor does a run whose
  ``CSP_HOME`` is not the lake its worker was started with (job variables cannot change that);
* a pid file is trusted only for a live process of this home with the start time recorded beside it
  (:mod:`flows.service_pids`): a stale one is removed, never signalled.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from flows.service_pids import (
    SERVER_ARGS,
    WORKER_ARGS,
    alive,
    check_port,
    forget,
    read_pid,
    record_start,
    stale_message,
    stop_pid,
    verify,
)

PROJECT_DIR = Path(__file__).resolve().parents[1]
WORK_POOL = "csp-process"  # the prefix of every lake's work pool
DEFAULT_PORT = 4200


def work_pool_for(lake: Path) -> str:
    """The work pool of the service that writes to ``lake``: ``csp-process-<folder name>-<8 hex>``, the hex
    digits the start of the sha256 of the resolved path (so two lakes with one folder name get two pools)."""
    resolved = lake.expanduser().resolve()
    name = re.sub(r"[^A-Za-z0-9_-]", "-", resolved.name)[:24] or "root"
    return f"{WORK_POOL}-{name}-{hashlib.sha256(str(resolved).encode()).hexdigest()[:8]}"


@dataclass
class Service:
    """Where the local service keeps its state, and the environment of everything it starts."""

    port: int = DEFAULT_PORT
    home: Path | None = None  # PREFECT_HOME; default $PREFECT_HOME or <project>/.prefect_home
    project: Path = PROJECT_DIR
    lake: Path | None = None  # the lake its worker writes to; default CSP_HOME (flows.settings)

    def __post_init__(self) -> None:
        if self.home is None:
            env = os.environ.get("PREFECT_HOME")
            self.home = Path(env) if env else self.project / ".prefect_home"
        self.home = self.home.expanduser().resolve()
        if self.lake is None:
            from flows.settings import settings

            self.lake = settings().home
        self.lake = self.lake.expanduser().resolve()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_dir(self) -> Path:
        return self.home / "service"

    @property
    def server_pid_file(self) -> Path:
        return self.home / "server.pid"  # written by `prefect server start --background`

    @property
    def server_port_file(self) -> Path:
        return self.state_dir / "server.port"  # the port this home's server was started on

    @property
    def worker_pid_file(self) -> Path:
        return self.state_dir / "worker.pid"

    @property
    def worker_log(self) -> Path:
        return self.state_dir / "worker.log"

    @property
    def worker_lake_file(self) -> Path:
        return self.state_dir / "worker.lake"  # the lake the running worker serves

    @property
    def work_pool(self) -> str:
        return work_pool_for(self.lake)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        path = env.get("PYTHONPATH", "")
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
            # prefect.yaml's pull step: `set_working_directory: {{ $CSP_PROJECT_DIR }}`
            CSP_PROJECT_DIR=str(self.project),
            # flow runs import this checkout's `flows` and `csp`, whatever else is installed
            PYTHONPATH=str(self.project) + (os.pathsep + path if path else ""),
            # the worker writes to the same lake that `csp sql` in this shell reads; prefect.yaml names
            # the pool after it and passes it to every run as CSP_SERVICE_LAKE (checked by the flow)
            CSP_HOME=str(self.lake),
            CSP_WORK_POOL=self.work_pool,
        )
        env.pop("CSP_SERVICE_LAKE", None)  # the worker itself serves CSP_HOME; runs bring their own
        return env

    def prefect(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "prefect", *args],
            cwd=self.project,
            env=self.env(),
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


# ------------------------------------------------------------------------------------ processes


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def server_home(api_url: str, timeout: float = 5.0) -> Path | None:
    """The ``PREFECT_HOME`` of the server answering at ``api_url`` (its ``/admin/settings``), or None."""
    try:
        with urllib.request.urlopen(f"{api_url}/admin/settings", timeout=timeout) as response:
            home = json.loads(response.read()).get("home")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(home).expanduser().resolve() if isinstance(home, str) and home else None


def wait_healthy(api_url: str, timeout: float = 90.0, pid_file: Path | None = None) -> float:
    """Seconds until the API answers; raises ``RuntimeError`` on timeout or when the server process died."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if healthy(api_url):
            return time.monotonic() - start
        if pid_file is not None and time.monotonic() - start > 2.0:
            pid = read_pid(pid_file)
            if pid is None or not alive(pid):
                pid_file.unlink(missing_ok=True)
                raise RuntimeError(
                    f"The Prefect server exited before answering {api_url}/health; "
                    "check the port and run `prefect server start` by hand to see why."
                )
        time.sleep(0.3)
    raise RuntimeError(f"The Prefect server did not answer {api_url}/health within {timeout:.0f} s.")


def own_pid(svc: Service, which: str, log=print) -> int | None:
    """The live pid of this home's ``server`` or ``worker`` (:func:`flows.service_pids.verify`), or None; a
    pid file naming another program is removed, never signalled, and said."""
    pid_file, args = (
        (svc.server_pid_file, SERVER_ARGS) if which == "server" else (svc.worker_pid_file, WORKER_ARGS)
    )
    pid, state = verify(pid_file, args, svc.home)
    if state == "stale":
        forget(pid_file)
        log(f"{which}: {stale_message(pid)}; removed {pid_file} without signalling it")
    return pid if state == "ours" else None


# ------------------------------------------------------------------------------------ up / down


def start_server(svc: Service, log=print) -> None:
    if not 1 <= svc.port <= 65535:
        check_port(svc.port)  # raises before anything is written
    svc.home.mkdir(parents=True, exist_ok=True)
    if healthy(svc.api_url):
        home = server_home(svc.api_url)
        if home != svc.home:  # another user's or checkout's server: never share it
            raise RuntimeError(
                f"Port {svc.port} already serves a Prefect server that this service did not start "
                f"(its PREFECT_HOME is {home or 'unknown'}, this one's {svc.home}); choose another --port, or "
                f"stop that server with `csp service down --port {svc.port}` where it was started."
            )
        log(f"server already answers at {svc.api_url}")
        return
    if own_pid(svc, "server", log) is not None:
        raise RuntimeError(
            f"A server process ({svc.server_pid_file}) runs but does not answer on port {svc.port}; "
            "run `csp service down` first."
        )
    forget(svc.server_pid_file)
    svc.server_port_file.unlink(missing_ok=True)
    check_port(svc.port)
    try:
        svc.prefect("server", "start", "--host", "127.0.0.1", "--port", str(svc.port), "--background")
        seconds = wait_healthy(svc.api_url, pid_file=svc.server_pid_file)
    except BaseException:
        pid = read_pid(svc.server_pid_file)
        if alive(pid):
            stop_pid(pid, signals=1, grace=5.0)
        forget(svc.server_pid_file)
        raise
    record_start(svc.server_pid_file, read_pid(svc.server_pid_file) or 0)  # tells it from a later reuse
    svc.state_dir.mkdir(parents=True, exist_ok=True)
    svc.server_port_file.write_text(f"{svc.port}\n")  # `csp service status` reports where it answers
    log(f"server up at {svc.api_url} in {seconds:.1f} s (pid {read_pid(svc.server_pid_file)})")


def create_work_pool(svc: Service) -> None:
    """Create (or reset) the lake's process work pool (:func:`work_pool_for`) with Prefect's default job
    template.

    Through the API client in this process, as ``prefect work-pool create --type process --overwrite``
    does, without paying another Prefect start-up in a subprocess.

    Raises:
        RuntimeError: the server does not answer or refuses the pool (the CLI prints it as one line).
    """
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.workers.process import ProcessWorker

    pool = WorkPoolCreate(
        name=svc.work_pool, type="process", base_job_template=ProcessWorker.get_default_base_job_template()
    )
    try:
        with temporary_settings({PREFECT_API_URL: svc.api_url}), get_client(sync_client=True) as client:
            client.create_work_pool(work_pool=pool, overwrite=True)
    except httpx.HTTPError as exc:  # a server that stopped answering, or answered with an error
        raise RuntimeError(
            f"The Prefect server at {svc.api_url} did not take the work pool {svc.work_pool} ({exc}); "
            "run `csp service status`, then `csp service down` and `up` again."
        ) from exc


def deploy(svc: Service, log=print) -> None:
    """``prefect deploy --all``: every deployment of prefect.yaml onto the work pool (which must exist)."""
    out = svc.prefect("--no-prompt", "deploy", "--all")
    names = [ln.split("'")[1] for ln in out.stdout.splitlines() if "Deployment '" in ln and "'" in ln]
    log(f"deployed from prefect.yaml: {', '.join(dict.fromkeys(names)) or 'see prefect deployment ls'}")


def worker_lake(svc: Service) -> Path | None:
    """The lake the service's running worker was started for (None if unrecorded)."""
    try:
        return Path(svc.worker_lake_file.read_text().strip())
    except OSError:
        return None


def check_same_lake(svc: Service) -> None:
    """Raise ``RuntimeError`` if this service's live worker serves another lake than ``CSP_HOME`` here."""
    served = worker_lake(svc)
    if (
        verify(svc.worker_pid_file, WORKER_ARGS, svc.home)[1] == "ours"
        and served is not None
        and served != svc.lake
    ):
        raise RuntimeError(
            f"The service of {svc.home} already serves the lake {served}, not {svc.lake} (CSP_HOME here); "
            f"set CSP_HOME={served}, or run `csp service down` first."
        )


def start_worker(svc: Service, log=print) -> int:
    pid = own_pid(svc, "worker", log)
    if pid is not None:
        check_same_lake(svc)
        log(f"worker already running (pid {pid})")
        return pid
    svc.state_dir.mkdir(parents=True, exist_ok=True)
    svc.worker_lake_file.write_text(f"{svc.lake}\n")
    with svc.worker_log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "worker",
                "start",
                "--pool",
                svc.work_pool,
                "--type",
                "process",
            ],
            cwd=svc.project,
            env=svc.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    svc.worker_pid_file.write_text(f"{proc.pid}\n")
    record_start(svc.worker_pid_file, proc.pid)
    log(f"worker started (pid {proc.pid}, log {svc.worker_log})")
    return proc.pid


def up(svc: Service, log=print) -> None:
    """Start (or find) this service's server, work pool, worker and deployments.

    Raises:
        RuntimeError: the port serves another service's server, the port is taken, the server does not
            start, or this service's worker serves another lake (one line each, nothing started).
    """
    check_same_lake(svc)
    start_server(svc, log)
    create_work_pool(svc)
    log(f"work pool {svc.work_pool} (process) for the lake {svc.lake}")
    start_worker(svc, log)  # its start-up overlaps with the deploy below; it polls the pool meanwhile
    deploy(svc, log)
    log(f"Prefect UI: {svc.ui_url}  (API {svc.api_url})")


def down(svc: Service, log=print) -> None:
    """Stop this home's worker and server.

    Raises:
        RuntimeError: the server of this home was started on another port than ``svc.port`` (nothing stopped:
            `csp service down --port 4392` must not stop the server answering on 4391).
    """
    recorded = svc.server_port_file.read_text().strip() if svc.server_port_file.exists() else ""
    if recorded.isdigit() and int(recorded) != svc.port:
        raise RuntimeError(
            f"The service of PREFECT_HOME {svc.home} runs on port {recorded}, not {svc.port}; nothing was "
            f"stopped (`csp service down --port {recorded}` stops it)."
        )
    stopped = False
    pid = own_pid(svc, "worker", log)
    if pid is not None:
        stop_pid(pid, signals=2)
        stopped = True
        log(f"worker stopped (pid {pid})")
    forget(svc.worker_pid_file)
    svc.worker_lake_file.unlink(missing_ok=True)
    pid = own_pid(svc, "server", log)
    if pid is not None:
        # what `prefect server stop` does (SIGTERM to the pid it wrote), without a Prefect start-up
        stop_pid(pid, signals=1, grace=15.0)
        stopped = True
        log(f"server stopped (pid {pid})")
    forget(svc.server_pid_file)
    svc.server_port_file.unlink(missing_ok=True)
    if not stopped:
        log("nothing was running")


def status(svc: Service) -> dict[str, object]:
    """What runs (:func:`flows.service_status.status`: the real port, unknown pids, another lake's worker)."""
    from flows.service_status import status as what_runs

    return what_runs(svc)
