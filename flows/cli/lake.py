"""``csp sql`` and ``csp lake init|stats|compact|catalog``: the Parquet/DuckDB lake."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flows.cli._common import console, fail, print_arrow
from flows.cli._options import number_option, output_option
from flows.settings import lake as current_lake

lake_app = typer.Typer(help="The Parquet/DuckDB lake.", no_args_is_help=True)


def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query over the lake's views.")],
    csv: Annotated[Path | None, output_option("Write the result to this CSV file.", "file")] = None,
    parquet: Annotated[Path | None, output_option("Write the result to this Parquet file.", "file")] = None,
    max_rows: Annotated[int, number_option("Rows to print.", low=1)] = 50,
    input_file: Annotated[
        list[str] | None,
        typer.Option("--input", help="NAME=PATH: a Parquet/CSV file the query may read as view NAME."),
    ] = None,
) -> None:
    """Run a read-only SQL query over the lake: no statement can write a file or read one by path."""
    from flows.checks import parse_inputs
    from storage.lake import LakeError

    try:
        inputs = parse_inputs(input_file or [])
        result = current_lake().query(query, inputs=inputs)
    except (LakeError, ValueError) as exc:
        fail(str(exc))
    from flows.checks import staged_file  # a failed write leaves no partial file

    if csv is not None:
        import pyarrow.csv as pacsv

        with staged_file(csv) as tmp:
            pacsv.write_csv(_csv_ready(result), tmp)
        console.print(f"wrote {result.num_rows} rows to {csv}")
    if parquet is not None:
        import pyarrow.parquet as pq

        with staged_file(parquet) as tmp:
            pq.write_table(result, tmp)
        console.print(f"wrote {result.num_rows} rows to {parquet}")
    if csv is None and parquet is None:
        print_arrow(result, max_rows=max_rows)


def _csv_ready(table):
    """``table`` with every nested column (list, struct, map) as JSON text, one value per cell."""
    import json

    import pyarrow as pa

    for index, field in enumerate(table.schema):
        if pa.types.is_nested(field.type):
            cells = [
                None if value is None else json.dumps(value, default=str, allow_nan=True)
                for value in table.column(index).to_pylist()
            ]
            table = table.set_column(index, pa.field(field.name, pa.string()), pa.array(cells, pa.string()))
    return table


@lake_app.command("init")
def lake_init() -> None:
    """Create the lake folders and the DuckDB catalog."""
    lake = current_lake(init=True)
    path = lake.refresh_catalog()
    console.print(f"lake ready at {lake.root} (catalog {path})")


@lake_app.command("stats")
def lake_stats() -> None:
    """Rows and parts per table."""
    from storage.schemas import SCHEMAS

    lake = current_lake()
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

    lake = current_lake()
    for name in table or list(SCHEMAS):
        if name not in SCHEMAS:
            fail(f"Unknown table {name!r}; choose from {', '.join(SCHEMAS)}.")
        report = lake.compact(name)
        console.print(f"{name}: {report.parts_before} parts -> {report.parts_after}, {report.rows} rows")
    lake.refresh_catalog()


@lake_app.command("catalog")
def lake_catalog() -> None:
    """Rewrite catalog.duckdb (views for the DuckDB shell)."""
    console.print(str(current_lake().refresh_catalog()))
