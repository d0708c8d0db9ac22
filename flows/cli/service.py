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

    try:
        down(_service(port), log=lambda m: console.print(m, highlight=False, soft_wrap=True))
    except RuntimeError as exc:
        fail(str(exc))


@service_app.command("status")
def service_status(
    port: Annotated[int, number_option(PORT_HELP, low=1, high=65535)] = 4200,
) -> None:
    """What runs: server (pid, health, whose, the port it really answers on), worker (pid, pool, lake), UI
    URL; exits 1 unless this service's server and worker both run, the worker for this shell's CSP_HOME."""
    from flows.service_status import status, status_text

    s = status(_service(port))
    console.print(status_text(s), highlight=False, soft_wrap=True)
    if not s["running"]:
        raise typer.Exit(1)  # scripts can test whether the service runs, and runs for this lake
