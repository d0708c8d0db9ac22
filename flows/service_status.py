"""``csp service status``: what this ``PREFECT_HOME``'s service runs, said honestly (issue 22).

* the server's port is the one it really answers on: the port recorded when this home started it
  (``service/server.port``, else the ``--port`` of its live process), not only the ``--port`` asked about;
* a pid file is believed only for a live process of this home (:func:`flows.service_pids.verify`): one that
  names another program is "stale pid file (pid N is another program)" and is removed, never signalled; no
  pid file, or a dead pid, is "not running" (never ``None``), and a dead worker asks for ``csp service up``;
* another home's server answering on the port is said to be that, without its lake or UI address;
* a worker that serves another lake than this shell's ``CSP_HOME`` is named as such, and the status is
  not "running" (the CLI exits 1): its runs would write into that lake, not this one.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from flows.service import Service, healthy, read_pid, server_home, work_pool_for, worker_lake
from flows.service_pids import SERVER_ARGS, WORKER_ARGS, cmdline_of, forget, stale_message, verify


def _cmdline_port(pid: int) -> int | None:
    """The ``--port`` on the command line of the live process ``pid`` (Linux ``/proc``), or None."""
    for flag, value in pairwise(cmdline_of(pid) or []):
        if flag == b"--port" and value.isdigit():
            return int(value)
    return None


def server_port(svc: Service) -> int | None:
    """The port this home's live server was started on, or None (no live server of this home, or unknown)."""
    pid, state = verify(svc.server_pid_file, SERVER_ARGS, svc.home)
    if state != "ours":
        return None
    recorded = read_pid(svc.server_port_file)  # one integer per file, as a pid file
    return recorded if recorded is not None else _cmdline_port(pid)  # type: ignore[arg-type]


def _process(pid_file: Path, args: tuple[bytes, ...], home: Path) -> dict[str, object]:
    """``pid`` and ``state`` ("ours", "gone", "stale", "none") of what a pid file names; a stale file is
    removed (the process it names is another program, and is left alone)."""
    pid, state = verify(pid_file, args, home)
    if state == "stale":
        forget(pid_file)
    return dict(pid=pid, state=state, alive=state == "ours")


def status(svc: Service) -> dict[str, object]:
    """What runs.

    ``server``: pid, ``state`` (:func:`_process`), alive (this home's live server), healthy, ``ours`` (this
    home's server answers), ``home`` (the PREFECT_HOME of the server that answers), ``port`` (where it was
    probed: this home's server's own port when known, else the one asked about), ``asked_port``. ``worker``:
    pid, state, alive, log, the ``lake`` it serves, that lake's ``pool``, ``other_lake`` (not ``lake_here``).
    ``running``: this home's server answers and its worker runs for the lake of this shell. Also ``ui``
    (None unless this home's server answers), ``prefect_home``, ``lake_here``.
    """
    port = server_port(svc) or svc.port
    probed = Service(port=port, home=svc.home, project=svc.project, lake=svc.lake)
    answers = healthy(probed.api_url)
    home = server_home(probed.api_url) if answers else None
    server = _process(svc.server_pid_file, SERVER_ARGS, svc.home)
    server.update(healthy=answers, ours=answers and home == svc.home)
    server.update(home=str(home) if home else None, port=port, asked_port=svc.port)
    served = worker_lake(svc)
    pool = work_pool_for(served) if served is not None else svc.work_pool  # the pool of the lake served
    worker = _process(svc.worker_pid_file, WORKER_ARGS, svc.home)
    worker.update(log=str(svc.worker_log), pool=pool)
    worker.update(lake=str(served) if served else None, other_lake=served is not None and served != svc.lake)
    running = bool(
        server["alive"] and answers and server["ours"] and worker["alive"] and not worker["other_lake"]
    )
    here = {
        "ui": probed.ui_url if server["ours"] else None,
        "prefect_home": str(svc.home),
        "lake_here": str(svc.lake),
    }
    return {"server": server, "worker": worker, "running": running, **here}


def _state(p: dict) -> str:
    if p["state"] == "ours":
        return f"pid {p['pid']} running"
    if p["state"] == "stale":
        return f"{stale_message(p['pid'])}; removed it, signalled nothing; not running"
    if p["state"] == "gone":
        return f"not running (pid {p['pid']} has exited)"
    return "not running"


def status_text(s: dict) -> str:
    """The lines ``csp service status`` prints for :func:`status`'s answer."""
    server, worker = s["server"], s["worker"]
    port = f"port {server['port']}"
    if server["port"] != server["asked_port"]:
        port += f" (where this home's server was started; not --port {server['asked_port']})"
    if server["healthy"] and not server["ours"]:
        answer = (
            f"answers, but it is another home's server (its PREFECT_HOME is {server['home'] or 'unknown'}; "
            "its lake is not shown)"
        )
    else:
        answer = "healthy" if server["healthy"] else "no answer"
    where = [f"pool {worker['pool']}"]
    if worker["lake"] is not None:
        where.append(
            f"lake {worker['lake']}"
            + (f", not this shell's CSP_HOME {s['lake_here']}" if worker["other_lake"] else "")
        )
    lines = [
        f"server: {_state(server)}; {port} {answer}",
        f"worker: {_state(worker)} ({', '.join(where)}, log {worker['log']})",
    ]
    if worker["other_lake"] and worker["alive"]:
        lines.append(
            f"warning: this service's worker writes into the lake {worker['lake']}, not {s['lake_here']}; "
            f"set CSP_HOME={worker['lake']}, or run `csp service down` and `up` from this shell."
        )
    elif not s["running"] and not (server["healthy"] and not server["ours"]):
        gone = [name for name, p in (("server", server), ("worker", worker)) if p["state"] != "ours"]
        if gone and any(p["state"] != "none" for p in (server, worker)):
            why = f" (see {worker['log']} for why the worker stopped)" if worker["state"] == "gone" else ""
            lines.append(f"hint: this home's {' and '.join(gone)} stopped; run `csp service up` again{why}.")
    lines.append(f"UI: {s['ui']}" if s["ui"] else "UI: none (no server of this home answers)")
    lines.append(f"PREFECT_HOME: {s['prefect_home']}")
    return "\n".join(lines)
