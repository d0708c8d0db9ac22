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
models_app = typer.Typer(help="Trained models: train, export, list, verify.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(models_app, name="models")

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
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Sources (default: all).")
    ] = None,
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
                ingest_source(
                    lake, name, mirror, run_id=run_id, progress=lambda n, t=task: bar.update(t, completed=n)
                )
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
    from storage.readers import read_id_prop_folder

    from storage.ingest import ingest_records, new_run_id

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
    energy_field: Annotated[
        str | None, typer.Option(help="Attribute holding eV/atom (e.g. _oqmd_delta_e).")
    ] = None,
) -> None:
    """Ingest an OPTIMADE structures response (as served by OQMD, Materials Project and others)."""
    from storage.readers import read_optimade

    from storage.ingest import ingest_records, new_run_id

    if not path.is_file():
        fail(f"{path} is not a file.")
    lake = _lake().init()
    items = read_optimade(path, source=source, license=license, energy_field=energy_field)
    report = ingest_records(lake, items, source=source, run_id=new_run_id())
    _print_ingest_reports([report])


@models_app.command("dataset")
def models_dataset(
    mode: Annotated[str, typer.Argument(help="dft, transfer or pu.")],
    out: Annotated[Path, typer.Option(help="Where to write the .npz training set.")],
) -> None:
    """Export a training set from the lake (the exclusion list is honoured)."""
    from flows.training import prepare_dataset

    if mode not in ("dft", "transfer", "pu"):
        fail(f"Unknown mode {mode!r}; choose dft, transfer or pu.")
    summary = prepare_dataset(mode, out)
    console.print(
        f"{summary.rows} rows -> {out} (splits {summary.per_split}, sources {summary.per_source}, "
        f"{summary.excluded_rows} excluded, sha256 {summary.sha256[:12]})"
    )


@models_app.command("train")
def models_train(
    mode: Annotated[str, typer.Argument(help="dft, transfer or pu.")],
    name: Annotated[str, typer.Option(help="Model folder name to export to.")],
    init: Annotated[Path | None, typer.Option(help="DFT run folder (transfer, pu).")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 30,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    hidden: Annotated[int, typer.Option(min=8)] = 64,
    alignn_layers: Annotated[int, typer.Option(min=0)] = 2,
    gcn_layers: Annotated[int, typer.Option(min=0)] = 2,
    n_bags: Annotated[int, typer.Option(min=1)] = 100,
    time_limit_s: Annotated[float | None, typer.Option()] = None,
    seed: int = 0,
    export_model: Annotated[bool, typer.Option("--export/--no-export")] = True,
) -> None:
    """Export the training set, train on this machine, export to ONNX and write the model card."""
    import shlex
    import sys

    from flows.training import export, prepare_dataset, summary_dict, train

    if mode not in ("dft", "transfer", "pu"):
        fail(f"Unknown mode {mode!r}; choose dft, transfer or pu.")
    settings = Settings()
    work = settings.home / "runs"
    summary = prepare_dataset(mode, work / f"{name}.npz", settings)
    console.print(f"training set: {summary.rows} rows {summary.per_split}")
    model_args = {"hidden": hidden, "alignn_layers": alignn_layers, "gcn_layers": gcn_layers}
    if mode == "pu":
        model_args["n_bags"] = n_bags
    train_args = {
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "time_limit_s": time_limit_s,
        "device": settings.device,
    }
    info = train(
        mode,
        work / f"{name}.npz",
        work / name,
        init=init,
        model_args=model_args,
        train_args=train_args,
        progress=console.print,
    )
    console.print(f"metrics: {info.get('metrics', {}).get('test')}")
    if export_model:
        command = "csp " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        folder = export(work / name, name, summary=summary_dict(summary), command=command, settings=settings)
        console.print(f"exported {folder}")


@models_app.command("list")
def models_list() -> None:
    """Shipped model folders with their kind and sha256."""
    import json

    settings = Settings()
    view = Table(title=f"models in {settings.models_dir}")
    for col in ("name", "task", "sha256", "test metrics"):
        view.add_column(col)
    for meta_path in sorted(settings.models_dir.glob("*/model.json")):
        meta = json.loads(meta_path.read_text())
        test = meta.get("metrics", {}).get("test", {})
        view.add_row(
            meta_path.parent.name,
            meta.get("task", "?"),
            meta.get("sha256", "")[:12],
            ", ".join(f"{k}={v:.4g}" for k, v in test.items() if isinstance(v, float | int)),
        )
    console.print(view)


@models_app.command("verify")
def models_verify() -> None:
    """Check every shipped model file against the sha256 in its model.json."""
    from csp.infer import ModelIntegrityError, OnnxModel

    settings = Settings()
    bad = 0
    for meta_path in sorted(settings.models_dir.glob("*/model.json")):
        try:
            OnnxModel(meta_path.parent, threads=1)
            console.print(f"ok  {meta_path.parent.name}")
        except (ModelIntegrityError, ValueError, FileNotFoundError) as exc:
            bad += 1
            err.print(f"BAD {meta_path.parent.name}: {exc}")
    if bad:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
