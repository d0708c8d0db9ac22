"""The ``csp`` command line: noun-verb commands over the lake, the models and campaigns.

One module per noun (:mod:`flows.cli.lake`, :mod:`flows.cli.ingest`, :mod:`flows.cli.models`,
:mod:`flows.cli.campaign`, :mod:`flows.cli.augment`, :mod:`flows.cli.learn`, :mod:`flows.cli.service`, :mod:`flows.cli.candidates` for
``candidates`` and ``structures``, :mod:`flows.cli.plot`, :mod:`flows.cli.benchmark`); this module assembles them.
A new noun: a module with its own ``typer.Typer`` and one ``app.add_typer`` line here.
"""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli._common import OneLineErrors, console, package_version
from flows.cli.augment import augment_app
from flows.cli.benchmark import benchmark_app
from flows.cli.campaign import campaign_app, demo
from flows.cli.candidates import candidates_app, structures_app
from flows.cli.ingest import ingest_app
from flows.cli.lake import lake_app, sql
from flows.cli.learn import learn_app
from flows.cli.models import models_app
from flows.cli.plot import plot_app
from flows.cli.service import service_app

app = typer.Typer(
    cls=OneLineErrors, help="Crystal-structure prediction calibrated to experiment.", no_args_is_help=True
)
app.add_typer(lake_app, name="lake")
app.add_typer(ingest_app, name="ingest")
app.add_typer(models_app, name="models")
app.add_typer(campaign_app, name="campaign")
app.add_typer(augment_app, name="augment")
app.add_typer(learn_app, name="learn")
app.add_typer(service_app, name="service")
app.add_typer(candidates_app, name="candidates")
app.add_typer(structures_app, name="structures")
app.add_typer(plot_app, name="plot")
app.add_typer(benchmark_app, name="benchmark")
app.command("sql")(sql)
app.command("demo")(demo)


@app.callback(invoke_without_command=True)
def main(
    show_version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if show_version:
        console.print(f"csp {package_version()}")
        raise typer.Exit()


if __name__ == "__main__":
    app()
