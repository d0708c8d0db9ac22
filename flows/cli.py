"""The ``csp`` command line: noun-verb commands over the lake, the models and campaigns."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flows.settings import Settings

app = typer.Typer(help="Crystal-structure prediction calibrated to experiment.", no_args_is_help=True)
lake_app = typer.Typer(help="The Parquet/DuckDB lake.", no_args_is_help=True)
ingest_app = typer.Typer(help="Ingest data sources into the lake.", no_args_is_help=True)
app.add_typer(lake_app, name="lake")
app.add_typer(ingest_app, name="ingest")

console = Console()
err = Console(stderr=True)


def _version() -> str:
    try:
        return version("alignn-csp")
    except PackageNotFoundError:
        return "unknown"


def fail(message: str, code: int = 1) -> None:
    """Print a one-line error and exit non-zero."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _lake():
    from storage.lake import Lake

    return Lake(Settings().home)


def print_arrow(table, *, title: str | None = None, max_rows: int = 50) -> None:
    """Render an Arrow table as a rich table (first ``max_rows`` rows)."""
    view = Table(title=title, show_lines=False)
    for name in table.column_names:
        view.add_column(name, overflow="fold")
    for row in table.slice(0, max_rows).to_pylist():
        view.add_row(*[_fmt(v) for v in row.values()])
    console.print(view)
    if table.num_rows > max_rows:
        console.print(f"... {table.num_rows - max_rows} more rows (use --csv or --parquet for all)")


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


@app.callback(invoke_without_command=True)
def main(
    show_version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if show_version:
        console.print(f"csp {_version()}")
        raise typer.Exit()


@app.command("sql")
def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query over the lake's views.")],
    csv: Annotated[Path | None, typer.Option(help="Write the result to this CSV file.")] = None,
    parquet: Annotated[Path | None, typer.Option(help="Write the result to this Parquet file.")] = None,
    max_rows: Annotated[int, typer.Option(help="Rows to print.")] = 50,
) -> None:
    """Run a read-only SQL query over the lake (writes are refused)."""
    from storage.lake import LakeError

    try:
        result = _lake().query(query)
    except LakeError as exc:
        fail(str(exc))
    if csv is not None:
        import pyarrow.csv as pacsv

        pacsv.write_csv(result, csv)
        console.print(f"wrote {result.num_rows} rows to {csv}")
    if parquet is not None:
        import pyarrow.parquet as pq

        pq.write_table(result, parquet)
        console.print(f"wrote {result.num_rows} rows to {parquet}")
    if csv is None and parquet is None:
        print_arrow(result, max_rows=max_rows)


@lake_app.command("init")
def lake_init() -> None:
    """Create the lake folders and the DuckDB catalog."""
    lake = _lake().init()
    path = lake.refresh_catalog()
    console.print(f"lake ready at {lake.root} (catalog {path})")


@lake_app.command("stats")
def lake_stats() -> None:
    """Rows and parts per table."""
    from storage.schemas import SCHEMAS

    lake = _lake()
    view = Table(title=f"lake {lake.root}")
    view.add_column("table")
    view.add_column("rows", justify="right")
    view.add_column("parts", justify="right")
    for table in SCHEMAS:
        view.add_row(table, str(lake.count(table)), str(len(lake.parts(table))))
    console.print(view)


@lake_app.command("compact")
def lake_compact(
    table: Annotated[list[str] | None, typer.Argument(help="Tables to compact (default: all).")] = None,
) -> None:
    """Merge small Parquet parts without losing or duplicating a row."""
    from storage.schemas import SCHEMAS

    lake = _lake()
    for name in table or list(SCHEMAS):
        if name not in SCHEMAS:
            fail(f"Unknown table {name!r}; choose from {', '.join(SCHEMAS)}.")
        report = lake.compact(name)
        console.print(f"{name}: {report.parts_before} parts -> {report.parts_after}, {report.rows} rows")
    lake.refresh_catalog()


@lake_app.command("catalog")
def lake_catalog() -> None:
    """Rewrite catalog.duckdb (views for the DuckDB shell)."""
    console.print(str(_lake().refresh_catalog()))


def _print_ingest_reports(reports) -> None:
    view = Table(title="ingest")
    for col in ("source", "read", "written", "quarantined", "seconds"):
        view.add_column(col, justify="right" if col != "source" else "left")
    for r in reports:
        view.add_row(
            r.source,
            str(sum(r.read.values())),
            str(sum(r.written.values())),
            str(r.n_rejected),
            f"{r.seconds:.1f}",
        )
    console.print(view)
    for r in reports:
        for reason, n in r.rejected.most_common():
            console.print(f"  {r.source}: {n} quarantined: {reason}", highlight=False)


@ingest_app.command("run")
def ingest_run(
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Sources (default: all).")] = None,
) -> None:
    """Ingest registered sources from the data mirror (idempotent: re-running adds nothing)."""
    from rich.progress import Progress

    from storage.ingest import ingest_source, new_run_id, ordered_sources

    settings = Settings()
    try:
        mirror = settings.require_mirror()
        names = ordered_sources(source)
    except (ValueError, KeyError) as exc:
        fail(str(exc).strip("'\""))
    lake = _lake().init()
    run_id = new_run_id()
    reports = []
    with Progress(console=console, transient=True) as bar:
        for name in names:
            task = bar.add_task(f"ingest {name}", total=None)
            reports.append(
                ingest_source(lake, name, mirror, run_id=run_id, progress=lambda n, t=task: bar.update(t, completed=n))
            )
            bar.remove_task(task)
    lake.refresh_catalog()
    _print_ingest_reports(reports)


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
    lake = _lake().init()
    report = ingest_records(
        lake, read_id_prop_folder(folder, source=source, license=license), source=source, run_id=new_run_id()
    )
    _print_ingest_reports([report])


@ingest_app.command("optimade")
def ingest_optimade(
    path: Annotated[Path, typer.Argument(help="An OPTIMADE JSON structures response.")],
    source: Annotated[str, typer.Option(help="Source name to record on every row.")],
    license: Annotated[str, typer.Option(help="Licence of the data.")] = "unknown",
    energy_field: Annotated[str | None, typer.Option(help="Attribute holding eV/atom (e.g. _oqmd_delta_e).")] = None,
) -> None:
    """Ingest an OPTIMADE structures response (as served by OQMD, Materials Project and others)."""
    from storage.ingest import ingest_records, new_run_id
    from storage.readers import read_optimade

    if not path.is_file():
        fail(f"{path} is not a file.")
    lake = _lake().init()
    items = read_optimade(path, source=source, license=license, energy_field=energy_field)
    report = ingest_records(lake, items, source=source, run_id=new_run_id())
    _print_ingest_reports([report])


if __name__ == "__main__":
    app()
