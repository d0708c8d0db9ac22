"""``csp service status``: what this ``PREFECT_HOME``'s service runs, said honestly (issue 22).

* the server's port is the one it really answers on: the port recorded when this home started it
  (``service/server.port``, else the ``--port`` of its live process), not only the ``--port`` asked about;
* a pid that this home did not record is "unknown (not started by this home)", never ``None``;
* a worker that serves another lake than this shell's ``CSP_HOME`` is named as such, and the status is
  not "running" (the CLI exits 1): its runs would write into that lake, not this one.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from flows.service import Service, alive, healthy, read_pid, server_home, work_pool_for, worker_lake

UNKNOWN_PID = "unknown (not started by this home)"


def _cmdline_port(pid: int) -> int | None:
    """The ``--port`` on the command line of the live process ``pid`` (Linux ``/proc``), or None."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    for flag, value in pairwise(args):
        if flag == b"--port" and value.isdigit():
            return int(value)
    return None


def server_port(svc: Service) -> int | None:
    """The port this home's live server was started on, or None (no live server of this home, or unknown)."""
    pid = read_pid(svc.server_pid_file)
    if not alive(pid):
        return None
    recorded = read_pid(svc.server_port_file)  # one integer per file, as a pid file
    return recorded if recorded is not None else _cmdline_port(pid)  # type: ignore[arg-type]


def status(svc: Service) -> dict[str, object]:
    """What runs.

    ``server``: pid, alive, healthy, ``ours`` (this home's server answers), ``home`` (the PREFECT_HOME of
    the server that answers), ``port`` (where it was probed: this home's server's own port when known, else
    the one asked about), ``asked_port``. ``worker``: pid, alive, log, the ``lake`` it serves, that lake's
    ``pool``, ``other_lake`` (not ``lake_here``). ``running``: this home's server answers and its worker
    runs for the lake of this shell. Also ``ui``, ``prefect_home``, ``lake_here``.
    """
    server_pid, worker_pid = read_pid(svc.server_pid_file), read_pid(svc.worker_pid_file)
    port = server_port(svc) or svc.port
    probed = Service(port=port, home=svc.home, project=svc.project, lake=svc.lake)
    answers = healthy(probed.api_url)
    home = server_home(probed.api_url) if answers else None
    server = dict(pid=server_pid, alive=alive(server_pid), healthy=answers, ours=answers and home == svc.home)
    server.update(home=str(home) if home else None, port=port, asked_port=svc.port)
    served = worker_lake(svc)
    pool = work_pool_for(served) if served is not None else svc.work_pool  # the pool of the lake served
    worker = dict(pid=worker_pid, alive=alive(worker_pid), log=str(svc.worker_log), pool=pool)
    worker.update(lake=str(served) if served else None, other_lake=served is not None and served != svc.lake)
    running = bool(
        server["alive"] and answers and server["ours"] and worker["alive"] and not worker["other_lake"]
    )
    here = {"ui": probed.ui_url, "prefect_home": str(svc.home), "lake_here": str(svc.lake)}
    return {"server": server, "worker": worker, "running": running, **here}


def _pid(pid: object) -> str:
    return f"pid {pid}" if pid is not None else f"pid {UNKNOWN_PID}"


def status_text(s: dict) -> str:
    """The lines ``csp service status`` prints for :func:`status`'s answer."""
    server, worker = s["server"], s["worker"]
    port = f"port {server['port']}"
    if server["port"] != server["asked_port"]:
        port += f" (where this home's server was started; not --port {server['asked_port']})"
    if server["healthy"] and not server["ours"]:
        answer = f"answers, but it is not this service's server (its PREFECT_HOME is {server['home'] or 'unknown'})"
    else:
        answer = "healthy" if server["healthy"] else "no answer"
    lake = f"lake {worker['lake']}"
    if worker["other_lake"]:
        lake += f", not this shell's CSP_HOME {s['lake_here']}"
    lines = [
        f"server: {_pid(server['pid'])} {'running' if server['alive'] else 'not running'}; {port} {answer}",
        f"worker: {_pid(worker['pid'])} {'running' if worker['alive'] else 'not running'} "
        f"(pool {worker['pool']}, {lake}, log {worker['log']})",
    ]
    if worker["other_lake"] and worker["alive"]:
        lines.append(
            f"warning: this service's worker writes into the lake {worker['lake']}, not {s['lake_here']}; "
            f"set CSP_HOME={worker['lake']}, or run `csp service down` and `up` from this shell."
        )
    lines += [f"UI: {s['ui']}", f"PREFECT_HOME: {s['prefect_home']}"]
    return "\n".join(lines)
