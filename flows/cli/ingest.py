"""``csp ingest run|folder|optimade``: data sources into the lake."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flows.cli._common import console, fail
from flows.settings import lake as current_lake
from flows.settings import settings as current_settings

ingest_app = typer.Typer(help="Ingest data sources into the lake.", no_args_is_help=True)


def _print_ingest_reports(reports) -> None:
    view = Table(title="ingest")
    for col in ("source", "read", "written", "quarantined", "already in the lake", "seconds"):
        view.add_column(col, justify="right" if col != "source" else "left")
    for r in reports:  # read = written + quarantined + already in the lake
        view.add_row(
            r.source,
            str(r.n_read),
            str(r.n_written),
            str(r.n_rejected),
            str(r.n_already_present),
            f"{r.seconds:.1f}",
        )
    console.print(view)
    for r in reports:
        for reason, n in r.reasons():
            similar = " (and similar)" if n > 1 else ""
            console.print(f"  {r.source}: {n} quarantined: {reason}{similar}", highlight=False)


@ingest_app.command("run")
def ingest_run(
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Sources (default: all).")
    ] = None,
) -> None:
    """Ingest registered sources from the data mirror (idempotent: re-running adds nothing)."""
    from rich.progress import Progress

    from storage.ingest import ingest_source, new_run_id, ordered_sources

    settings = current_settings()
    try:
        mirror = settings.require_mirror()
        names = ordered_sources(source)
    except (ValueError, KeyError) as exc:
        fail(str(exc).strip("'\""))
    lake = current_lake(init=True)
    run_id = new_run_id()
    reports = []
    with Progress(console=console, transient=True) as bar:
        for name in names:
            task = bar.add_task(f"ingest {name}", total=None)
            try:
                reports.append(
                    ingest_source(
                        lake,
                        name,
                        mirror,
                        run_id=run_id,
                        progress=lambda n, t=task: bar.update(t, completed=n),
                    )
                )
            except FileNotFoundError as exc:
                bar.stop()
                if reports:
                    _print_ingest_reports(reports)
                fail(
                    f"{exc.filename or exc} is missing from the data mirror {mirror} (needed by source {name!r}); "
                    "restore the file or choose other sources with --source."
                )
            bar.remove_task(task)
    lake.refresh_catalog()
    _print_ingest_reports(reports)


def _source_name(source: str) -> str:
    """``--source`` as :func:`storage.source_names.check_source_name` accepts it (NFKC form), checked against
    the names in use before the lake is created; a refused name is a one-line error and nothing is written."""
    from storage.ingest import SourceNameError, check_user_source_name

    try:  # a registered mirror source or a potential's label source is reserved for its own command
        return check_user_source_name(source, current_lake(missing_ok=True))
    except SourceNameError as exc:
        fail(str(exc))
        raise  # not reached: fail() exits


@ingest_app.command("folder")
def ingest_folder(
    folder: Annotated[Path, typer.Argument(help="Folder of CIF/POSCAR files with an id_prop.csv.")],
    source: Annotated[str, typer.Option(help="Source name to record on every row.")],
    license: Annotated[str, typer.Option(help="Licence of the data.")] = "unknown",
) -> None:
    """Ingest a folder in the ALIGNN/CGCNN convention (id_prop.csv: file,value in eV/atom)."""
    from storage.ingest import ingest_records, new_run_id
    from storage.readers import read_id_prop_folder

    if not folder.is_dir():
        fail(f"{folder} is not a folder.")
    if not (folder / "id_prop.csv").is_file():
        fail(
            f"{folder} has no id_prop.csv (one line per structure: file name,value in eV/atom); nothing was "
            "ingested."
        )
    source = _source_name(source)
    lake = current_lake(init=True)
    report = ingest_records(
        lake, read_id_prop_folder(folder, source=source, license=license), source=source, run_id=new_run_id()
    )
    _print_ingest_reports([report])


@ingest_app.command("optimade")
def ingest_optimade(
    path: Annotated[Path, typer.Argument(help="An OPTIMADE JSON structures response.")],
    source: Annotated[str, typer.Option(help="Source name to record on every row.")],
    license: Annotated[str, typer.Option(help="Licence of the data.")] = "unknown",
    energy_field: Annotated[
        str | None, typer.Option(help="Attribute holding eV/atom (e.g. _oqmd_delta_e).")
    ] = None,
) -> None:
    """Ingest an OPTIMADE structures response (as served by OQMD, Materials Project and others)."""
    from storage.ingest import ingest_records, new_run_id
    from storage.readers import read_optimade

    if not path.is_file():
        fail(f"{path} is not a file.")
    source = _source_name(source)
    lake = current_lake(init=True)
    items = read_optimade(path, source=source, license=license, energy_field=energy_field)
    report = ingest_records(lake, items, source=source, run_id=new_run_id())
    _print_ingest_reports([report])
