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
campaign_app = typer.Typer(help="Crystal-structure prediction campaigns.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(campaign_app, name="campaign")
augment_app = typer.Typer(
    help="Polymorph augmentation labelled by a universal potential (needs the augment extra).",
    no_args_is_help=True,
)
app.add_typer(augment_app, name="augment")

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
    energy_field: Annotated[
        str | None, typer.Option(help="Attribute holding eV/atom (e.g. _oqmd_delta_e).")
    ] = None,
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


@models_app.command("dataset")
def models_dataset(
    mode: Annotated[str, typer.Argument(help="dft, transfer or pu.")],
    out: Annotated[Path, typer.Option(help="Where to write the .npz training set.")],
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source", "-s", help="Lake sources to train on (default: the DFT sources / Jha 2019)."
        ),
    ] = None,
    compress: Annotated[bool, typer.Option(help="Zip-compress the arrays (smaller to carry).")] = False,
) -> None:
    """Export a training set from the lake (the exclusion list is honoured)."""
    from flows.training import prepare_dataset

    if mode not in ("dft", "transfer", "pu"):
        fail(f"Unknown mode {mode!r}; choose dft, transfer or pu.")
    try:
        summary = prepare_dataset(mode, out, sources=source or None, compress=compress)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
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
    try:
        summary = prepare_dataset(mode, work / f"{name}.npz", settings)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
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


@models_app.command("export")
def models_export(
    run_dir: Annotated[
        Path, typer.Argument(help="Run folder written by python -m csp.training (checkpoint.pt).")
    ],
    name: Annotated[str, typer.Option(help="Model folder name under the models directory.")],
    mode: Annotated[str, typer.Option(help="Training set the run used: dft, transfer or pu.")],
    command: Annotated[str, typer.Option(help="How the run was trained (goes into the model card).")] = "",
    description: Annotated[str, typer.Option(help="One paragraph for the model card.")] = "",
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="The sources the run was trained on (default: the mode's)."),
    ] = None,
) -> None:
    """Export a training run to ONNX with its card, after checking it was trained on this lake's data."""
    from flows.training import export, verify_lineage

    if mode not in ("dft", "transfer", "pu"):
        fail(f"Unknown mode {mode!r}; choose dft, transfer or pu.")
    settings = Settings()
    try:
        summary = verify_lineage(run_dir, mode, settings, sources=source or None)
    except ValueError as exc:
        fail(str(exc))
    folder = export(
        run_dir, name, summary=summary, command=command, description=description, settings=settings
    )
    console.print(
        f"exported {folder} (training data matches the lake export: {summary['content_hash'][:12]})"
    )


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


def _print_top(top: list[dict], title: str) -> None:
    view = Table(title=title)
    for col in (
        "rank",
        "space group",
        "a (Å)",
        "b (Å)",
        "c (Å)",
        "dHf (eV/atom)",
        "P_syn",
        "FV",
        "E pot (eV/atom)",
        "family",
    ):
        view.add_column(col, justify="right" if col not in ("space group", "family") else "left")
    for t in top:
        view.add_row(
            str(t["rank"]),
            f"{t['spacegroup_symbol']} ({t['spacegroup']})",
            f"{t['a']:.3f}",
            f"{t['b']:.3f}",
            f"{t['c']:.3f}",
            f"{t['dhf_pred_ev_per_atom']:.3f}",
            f"{t['p_syn']:.2f} ± {t['p_syn_std']:.2f}" if t.get("p_syn") is not None else "",
            f"{t['fitness']:.3f}",
            _fmt(t.get("energy_potential_ev_per_atom")),
            str(t["wyckoff"]),
        )
    console.print(view)


def _run_with_progress(params: dict, campaign_id: str | None, export_dir: Path | None):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flows.campaigns import CampaignError, run_campaign

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(
            f"campaign {params.get('composition')}", total=params.get("outer_steps", 200), info=""
        )

        def progress(p: dict) -> None:
            bar.update(
                task,
                completed=p["outer_step"] + 1,
                info=f"best FV {p['best_fitness']:.3f}, {p['inner_evaluations']} structures",
            )

        try:
            return run_campaign(params, campaign_id=campaign_id, progress=progress, export_dir=export_dir)
        except CampaignError as exc:
            fail(str(exc))


def _finish(outcome) -> None:
    from flows.campaigns import public_row

    _print_top(
        [public_row(t) for t in outcome.top], f"top {len(outcome.top)}: campaign {outcome.campaign_id}"
    )
    import os
    import shlex

    # the lake of this run, spelled out when it is not the default one, so the query can be pasted as is
    home = f"CSP_HOME={shlex.quote(str(Settings().home))} " if "CSP_HOME" in os.environ else ""
    cut = outcome.excluded or {}
    if cut.get("formula_units"):
        console.print(
            f"The {cut['max_atoms']}-atom cap left out Z = {cut['formula_units']}: {cut['families']} families, "
            f"{cut['space_groups']} space groups not searched at all (raise --max-atoms to include them).",
            highlight=False,
        )
    gaps = [t.get("exploitation_gap_ev_per_atom") for t in outcome.top_search[:5]]
    if any(g is not None for g in gaps):
        console.print(
            "Exploitation gap of the search's top 5 (potential dHf at the found geometry minus the "
            "model's, eV/atom): " + ", ".join(_fmt(g) for g in gaps),
            highlight=False,
        )
    if outcome.refine_s:
        console.print(
            f"search {outcome.search_s:.0f} s, refinement {outcome.refine_s:.0f} s", highlight=False
        )
    console.print(
        f"{outcome.n_candidates} candidates scored in {outcome.elapsed_s:.0f} s "
        f"({outcome.invalid_share:.1%} invalid). Every candidate is in the lake:\n"
        f'  {home}csp sql "SELECT outer_step, inner_step, spacegroup, dhf_pred_ev_per_atom, fitness, valid '
        f"FROM candidates WHERE campaign_id = '{outcome.campaign_id}' ORDER BY fitness NULLS LAST LIMIT 20\"",
        highlight=False,
    )


@campaign_app.command("run")
def campaign_run(
    composition: Annotated[str, typer.Argument(help="Formula to search, e.g. MgO.")],
    alpha: Annotated[float, typer.Option(help="Weight of (1 - P_syn) in the fitness, 0..1.")] = 0.5,
    strategy: Annotated[str, typer.Option(help="fixed (one crystal system) or all.")] = "fixed",
    crystal_system: Annotated[
        str | None, typer.Option(help="Crystal system for --strategy fixed.")
    ] = "cubic",
    optimizer: Annotated[
        str, typer.Option(help="Outer optimizer: bo, rs, pso or ga; rs-relax: the random-structure baseline.")
    ] = "bo",
    inner_optimizer: Annotated[str, typer.Option(help="Inner optimizer: pso, rs, ga or bo.")] = "pso",
    outer_steps: Annotated[int, typer.Option(help="Families tried.")] = 200,
    inner_steps: Annotated[int, typer.Option(help="Structures per family.")] = 300,
    batch_size: Annotated[int, typer.Option(help="Structures per scored batch.")] = 30,
    z_max: Annotated[int, typer.Option(help="Largest number of formula units per cell.")] = 4,
    max_atoms: Annotated[
        int, typer.Option(help="Most atoms per cell; the families it leaves out are counted and reported.")
    ] = 40,
    seed: int = 0,
    dhf_source: Annotated[str, typer.Option(help="exp (fine-tuned) or dft enthalpy model.")] = "exp",
    top_k: int = 5,
    campaign_id: Annotated[str | None, typer.Option(help="Id (default: generated).")] = None,
    export_cif: Annotated[Path | None, typer.Option(help="Folder for CIFs of the top structures.")] = None,
    refine: Annotated[
        bool, typer.Option(help="Relax the best distinct structures with CHGNet keeping their symmetry.")
    ] = True,
    refine_top_n: Annotated[int, typer.Option(help="Distinct structures refined.")] = 32,
    refine_device: Annotated[str, typer.Option(help="Device of the potential: cpu or cuda.")] = "cpu",
) -> None:
    """Run a campaign: every candidate lands in the lake; prints the top k."""
    params = dict(
        composition=composition,
        alpha=alpha,
        strategy=strategy,
        crystal_system=crystal_system if strategy == "fixed" else None,
        outer_optimizer=optimizer,
        inner_optimizer=inner_optimizer,
        outer_steps=outer_steps,
        inner_steps=inner_steps,
        batch_size=batch_size,
        formula_units_max=z_max,
        max_atoms=max_atoms,
        seed=seed,
        dhf_source=dhf_source,
        top_k=top_k,
        refine=refine,
        refine_top_n=refine_top_n,
        refine_device=refine_device,
    )
    _finish(_run_with_progress(params, campaign_id, export_cif))


@campaign_app.command("resume")
def campaign_resume(
    campaign_id: Annotated[str, typer.Argument(help="The campaign to continue.")],
    export_cif: Annotated[Path | None, typer.Option(help="Folder for CIFs of the top structures.")] = None,
) -> None:
    """Continue a stopped or killed campaign where it stopped (nothing is scored or written twice)."""
    from flows.campaigns import CampaignError, stored_parameters

    try:
        params = stored_parameters(_lake(), campaign_id)
    except CampaignError as exc:
        fail(str(exc))
    _finish(_run_with_progress(params, campaign_id, export_cif))


@campaign_app.command("list")
def campaign_list() -> None:
    """Campaigns with their latest status."""
    print_arrow(
        _lake().query(
            "SELECT campaign_id, composition, status, n_candidates, round(elapsed_s, 1) AS elapsed_s, reason, "
            "written_at FROM campaigns ORDER BY written_at DESC"
        ),
        max_rows=200,
    )


@campaign_app.command("show")
def campaign_show(campaign_id: Annotated[str, typer.Argument(help="Campaign id.")]) -> None:
    """Parameters, status and top structures of one campaign."""
    import json

    rows = _lake().query("SELECT * FROM campaigns WHERE campaign_id = ?", [campaign_id]).to_pylist()
    if not rows:
        fail(f"No campaign {campaign_id!r}; `csp campaign list` shows the ids.")
    row = rows[0]
    console.print(f"{campaign_id}: {row['composition']} status={row['status']} reason={row['reason']}")
    console.print(f"parameters: {row['parameters_json']}", highlight=False)
    if row["summary_json"]:
        _print_top(json.loads(row["summary_json"])["top"], "top structures")


@campaign_app.command("export")
def campaign_export(
    campaign_id: Annotated[str, typer.Argument(help="Campaign id.")],
    out: Annotated[Path, typer.Option(help="Folder for the CIF files.")],
    top_k: int = 5,
) -> None:
    """Write CIFs of a campaign's top structures (deduplicated) from the stored candidates."""
    from csp.matching import rank, write_cif
    from csp.refine import rank_refined
    from storage.candidates import LakeSink

    history = LakeSink(_lake(), run_id="export").history(campaign_id)
    rows = [r for r in history if r["stage"] == "outer"]
    if not rows:
        fail(f"Campaign {campaign_id!r} has no scored families yet.")
    out.mkdir(parents=True, exist_ok=True)
    # a refined campaign's top structures are its refined ones (ranked by the potential's energy)
    for item in rank_refined(history, k=top_k) or rank(rows, k=top_k):
        path = write_cif(item["structure"], out / f"{campaign_id}-rank{item['rank']}.cif")
        console.print(f"wrote {path}")


@augment_app.command("plan")
def augment_plan(
    out: Annotated[Path, typer.Option(help="Where to write the plan (.npz).")],
    composition: Annotated[
        list[str] | None, typer.Option("--composition", "-c", help="Formulas (default: from the lake).")
    ] = None,
    max_compositions: Annotated[int, typer.Option(min=1)] = 3000,
    max_prototypes: Annotated[int, typer.Option(min=0)] = 12,
    random_structures: Annotated[int, typer.Option(min=0)] = 8,
    reference_sample: Annotated[
        int, typer.Option(min=0, help="Held-out MP-scale DFT test rows per source to evaluate on.")
    ] = 600,
    workers: Annotated[int, typer.Option(min=1)] = 2,
    seed: int = 0,
    polymorph_cases: Annotated[
        bool, typer.Option(help="Only the well-known polymorph cases of the ordering benchmark.")
    ] = False,
) -> None:
    """Plan prototype decorations, symmetric random structures and elemental references."""
    from flows.augmentation import build_plan, default_compositions, polymorph_plan
    from storage.splits import load_exclusions

    if polymorph_cases:
        summary = polymorph_plan(out)
        console.print(f"{summary.rows} decorations of {summary.compositions} polymorph cases -> {out}")
        return
    settings = Settings()
    lake = _lake()
    exclude = load_exclusions(settings.exclusions_file)
    try:
        names = composition or default_compositions(lake, exclude, max_compositions=max_compositions)
        summary = build_plan(
            lake,
            out,
            compositions=names,
            exclude=exclude,
            seed=seed,
            max_prototypes=max_prototypes,
            random_structures=random_structures,
            reference_sample=reference_sample,
            workers=workers,
        )
    except (ValueError, KeyError) as exc:
        fail(str(exc))
    console.print(
        f"{summary.rows} rows over {summary.compositions} compositions -> {summary.path} "
        f"({summary.by_kind}; {summary.seconds:.0f} s)"
    )


@augment_app.command("label")
def augment_label(
    plan: Annotated[Path, typer.Argument(help="A plan written by csp augment plan.")],
    out: Annotated[Path, typer.Option(help="Folder for the labelled files.")],
    potential: Annotated[str, typer.Option(help="chgnet or sevennet.")] = "chgnet",
    workers: Annotated[int, typer.Option(min=1)] = 1,
    relax_steps: Annotated[int, typer.Option(min=1)] = 40,
    distortions: Annotated[int, typer.Option(min=0)] = 3,
    time_limit_s: Annotated[float, typer.Option(min=1)] = 3600.0,
) -> None:
    """Label a plan here (CSP_DEVICE picks cpu/cuda), skipping rows already labelled in the lake."""
    from flows.augmentation import done_ids, label_plan, potential_source_name

    if not plan.is_file():
        fail(f"{plan} is not a file.")
    if potential not in ("chgnet", "sevennet"):
        fail(f"Unknown potential {potential!r}; choose chgnet or sevennet.")
    try:
        skip = done_ids(_lake(), potential_source_name(potential))
    except RuntimeError as exc:
        fail(str(exc))
    summary = label_plan(
        plan,
        out,
        potential=potential,
        device=Settings().device,
        workers=workers,
        relax_steps=relax_steps,
        distortions=distortions,
        time_limit_s=time_limit_s,
        skip_ids=skip,
    )
    console.print(
        f"labelled {summary['labelled_rows']} rows over {summary['compositions']} compositions "
        f"in {summary['elapsed_s']} s -> {out}"
    )


@augment_app.command("ingest")
def augment_ingest(
    files: Annotated[list[Path], typer.Argument(help="Labelled .npz files (python -m csp.potential label).")],
) -> None:
    """Ingest labelled rows: formation enthalpies from the files' own elemental references."""
    from flows.augmentation import ingest_labels
    from storage.ingest import new_run_id

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        fail(f"Not a file: {', '.join(missing)}")
    try:
        report = ingest_labels(_lake().init(), files, run_id=new_run_id("augment"), workers=2)
    except ValueError as exc:
        fail(str(exc))
    _lake().refresh_catalog()
    console.print(
        f"{report.written} rows written to structures (sources {report.sources}), "
        f"{report.quarantined} quarantined, {report.skipped} evaluation/elemental rows kept out"
    )


@app.command("demo")
def demo() -> None:
    """The main job: a short MgO campaign (cubic, BO outer, PSO inner) on the shipped models."""
    params = dict(
        composition="MgO",
        alpha=0.5,
        strategy="fixed",
        crystal_system="cubic",
        outer_optimizer="bo",
        inner_optimizer="pso",
        outer_steps=20,
        inner_steps=120,
        batch_size=30,
        formula_units_max=4,
        seed=0,
        dhf_source="exp",
        top_k=5,
    )
    outcome = _run_with_progress(params, None, None)
    _finish(outcome)
    _report_reference(outcome, "MgO")


def _report_reference(outcome, formula: str) -> None:
    """Say where the experimental structure (the paper's reference CIF, if the data mirror has it) ranks."""
    from pymatgen.core import Structure

    from csp.matching import matches

    mirror = Settings().data_mirror
    cif = mirror / "validation" / "table1" / f"{formula}.cif" if mirror is not None else None
    if cif is None or not cif.is_file():
        return
    reference = Structure.from_file(cif)
    found = next((t for t in outcome.top if matches(t["structure"], reference)), None)
    if found is None:
        console.print(f"The experimental {formula} structure is not in the top {len(outcome.top)}.")
    else:
        console.print(
            f"The experimental {formula} structure ({found['spacegroup_symbol']}) is rank {found['rank']} "
            "(StructureMatcher match and the same space group)."
        )


# --------------------------------------------------------------------------- service (Prefect)

service_app = typer.Typer(help="The local Prefect service: server, work pool, deployments, worker.")
app.add_typer(service_app, name="service")


def _service(port: int):
    from flows.service import Service

    return Service(port=port)


@service_app.command("up")
def service_up(
    port: Annotated[int, typer.Option(help="Port of the API and UI on 127.0.0.1.")] = 4200,
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
def service_down(port: Annotated[int, typer.Option(help="Port the service was started on.")] = 4200) -> None:
    """Stop the worker (two signals) and the server; remove the pid files."""
    from flows.service import down

    down(_service(port), log=lambda m: console.print(m, highlight=False, soft_wrap=True))


@service_app.command("status")
def service_status(
    port: Annotated[int, typer.Option(help="Port the service was started on.")] = 4200,
) -> None:
    """What runs: server (pid, health), worker (pid), UI URL."""
    from flows.service import status

    s = status(_service(port))
    server, worker = s["server"], s["worker"]
    console.print(
        f"server: pid {server['pid']} {'running' if server['alive'] else 'not running'}, "
        f"{'healthy' if server['healthy'] else 'no answer'}\n"
        f"worker: pid {worker['pid']} {'running' if worker['alive'] else 'not running'} (log {worker['log']})\n"
        f"UI: {s['ui']}\nPREFECT_HOME: {s['prefect_home']}",
        highlight=False,
    )


if __name__ == "__main__":
    app()
