"""``csp service up|down|status``: the local Prefect service (server, work pool, deployments, worker)."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli._common import console, fail
from flows.cli._options import number_option

PORT_HELP = "Port the service was started on."
service_app = typer.Typer(help="The local Prefect service: server, work pool, deployments, worker.")


def _service(port: int):
    from flows.service import Service

    return Service(port=port)


@service_app.command("up")
def service_up(
    port: Annotated[int, number_option("Port of the API and UI on 127.0.0.1.", low=1, high=65535)] = 4200,
) -> None:
    """Start the server, create the work pool, deploy prefect.yaml, start a worker; print the UI URL."""
    import subprocess

    from flows.service import up

    try:
        up(_service(port), log=lambda m: console.print(m, highlight=False, soft_wrap=True))
    except subprocess.CalledProcessError as exc:
        fail(f"{' '.join(exc.cmd[2:5])} failed:\n{(exc.stdout or '')[-2000:]}{(exc.stderr or '')[-2000:]}")
    except RuntimeError as exc:
        fail(str(exc))


@service_app.command("down")
def service_down(port: Annotated[int, number_option(PORT_HELP, low=1, high=65535)] = 4200) -> None:
    """Stop the worker (two signals) and the server; remove the pid files."""
    from flows.service import down

    down(_service(port), log=lambda m: console.print(m, highlight=False, soft_wrap=True))


@service_app.command("status")
def service_status(
    port: Annotated[int, number_option(PORT_HELP, low=1, high=65535)] = 4200,
) -> None:
    """What runs: server (pid, health, whose), worker (pid, pool, lake), UI URL; exits 1 unless this
    service's server and worker both run."""
    from flows.service import status

    s = status(_service(port))
    server, worker = s["server"], s["worker"]
    if server["healthy"] and not server["ours"]:
        answer = f"answers, but it is not this service's server (its PREFECT_HOME is {server['home'] or 'unknown'})"
    else:
        answer = "healthy" if server["healthy"] else "no answer"
    lake = f"lake {worker['lake']}"
    if worker["other_lake"]:
        lake += f", not this shell's CSP_HOME {s['lake_here']}"
    console.print(
        f"server: pid {server['pid']} {'running' if server['alive'] else 'not running'}; port {port} {answer}\n"
        f"worker: pid {worker['pid']} {'running' if worker['alive'] else 'not running'} "
        f"(pool {worker['pool']}, {lake}, log {worker['log']})\n"
        f"UI: {s['ui']}\nPREFECT_HOME: {s['prefect_home']}",
        highlight=False,
        soft_wrap=True,
    )
    if not (server["alive"] and server["healthy"] and server["ours"] and worker["alive"]):
        raise typer.Exit(1)  # scripts can test whether the service runs
