"""``csp candidates``, ``csp structures`` and ``csp plot``: OPTIMADE queries, exports and plots of histories.

Thin faces over :mod:`storage.query` (rows, filters, Parquet), :mod:`csp.structure_io` (structure files)
and :mod:`csp.plots` (matplotlib). Registered on the main app by :func:`register_analysis`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from flows.settings import Settings

candidates_app = typer.Typer(help="Evaluated candidates: OPTIMADE queries and exports.", no_args_is_help=True)
structures_app = typer.Typer(help="Ingested structures: OPTIMADE queries and exports.", no_args_is_help=True)
plot_app = typer.Typer(
    help="Plots of search histories (PNG or SVG by the --out suffix).", no_args_is_help=True
)

#: columns printed for a query (all columns go to files)
SHOWN = {
    "candidates": [
        "id",
        "evaluation",
        "spacegroup",
        "crystal_system",
        "nsites",
        "dhf_pred_ev_per_atom",
        "p_syn",
        "fitness",
        "valid",
        "seconds",
    ],
    "structures": [
        "id",
        "chemical_formula_reduced",
        "nsites",
        "spacegroup",
        "dhf_dft_ev_per_atom",
        "energy_method",
        "split",
    ],
}
FORMAT_HELP = "table (print), parquet (one file), or cif, poscar, extxyz, json, entry (one file per row)."


def register_analysis(app: typer.Typer) -> None:
    """Add ``candidates``, ``structures`` and ``plot`` to the main ``csp`` app."""
    app.add_typer(candidates_app, name="candidates")
    app.add_typer(structures_app, name="structures")
    app.add_typer(plot_app, name="plot")


def _home() -> Path:
    return Settings().home


def _errors() -> tuple[type[Exception], ...]:
    from csp.errors import InputError
    from storage.lake import LakeError
    from storage.optimade import FilterError

    return (FilterError, LakeError, InputError)


def _fail(message: str) -> None:
    from flows.cli import fail

    fail(str(message).splitlines()[0])


def _emit(table: Any, kind: str, fmt: str, out: Path | None, max_rows: int, what: str) -> None:
    """Print or write the rows of a query in ``fmt``."""
    from flows.cli import console, print_arrow

    if table.num_rows == 0:
        console.print(f"No {kind} match {what}.", highlight=False)
        if fmt != "table":
            raise typer.Exit(1)
        return
    if fmt == "table":
        shown = [c for c in SHOWN[kind] if c in table.column_names]
        print_arrow(table.select(shown), title=f"{table.num_rows} {kind} matching {what}", max_rows=max_rows)
        return
    if out is None:
        _fail(f"--format {fmt} needs --out (a file for parquet, a folder for structure files).")
    if fmt == "parquet":
        from storage.query import write_parquet

        path = write_parquet(table, out)
        console.print(f"wrote {table.num_rows} rows to {path}")
        return
    from csp.structure_io import write_structures
    from storage.query import to_structures

    paths = write_structures(to_structures(table), out, fmt)
    console.print(f"wrote {len(paths)} {fmt} files to {out}")


def _query(
    kind: str,
    filter_: str,
    *,
    campaign: str | None,
    stage: str | None,
    limit: int | None,
    fmt: str,
    out: Path | None,
    max_rows: int,
) -> None:
    from storage.query import load_campaign, query

    try:
        if campaign is not None:
            load_campaign(campaign, home=_home())
        where = {k: v for k, v in (("campaign_id", campaign), ("stage", stage)) if v is not None}
        table = query(filter_, table=kind, where=where, limit=limit, home=_home())  # type: ignore[arg-type]
        _emit(table, kind, fmt, out, max_rows, f"'{filter_}'" if filter_ else "(no filter)")
    except _errors() as exc:
        _fail(str(exc))


@candidates_app.command("query")
def candidates_query(
    filter_: Annotated[
        str,
        typer.Argument(
            metavar="FILTER",
            help='OPTIMADE filter, e.g. \'elements HAS ALL "Mg","O" AND nsites<=8 AND _csp_p_syn>0.8\'.',
        ),
    ] = "",
    campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
    stage: Annotated[str | None, typer.Option(help="inner, outer (or refined).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many rows.")] = None,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "table",
    out: Annotated[Path | None, typer.Option(help="File (parquet) or folder (structure files).")] = None,
    max_rows: Annotated[int, typer.Option(help="Rows to print.")] = 50,
) -> None:
    """Evaluated candidates matching an OPTIMADE filter, in scoring order (fields: `csp candidates fields`)."""
    _query(
        "candidates",
        filter_,
        campaign=campaign,
        stage=stage,
        limit=limit,
        fmt=fmt,
        out=out,
        max_rows=max_rows,
    )


@structures_app.command("query")
def structures_query(
    filter_: Annotated[
        str,
        typer.Argument(metavar="FILTER", help="OPTIMADE filter, e.g. 'chemical_formula_reduced=\"MgO\"'."),
    ] = "",
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many rows.")] = None,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "table",
    out: Annotated[Path | None, typer.Option(help="File (parquet) or folder (structure files).")] = None,
    max_rows: Annotated[int, typer.Option(help="Rows to print.")] = 50,
) -> None:
    """Ingested structures matching an OPTIMADE filter (fields: `csp structures fields`)."""
    _query("structures", filter_, campaign=None, stage=None, limit=limit, fmt=fmt, out=out, max_rows=max_rows)


def _print_fields(kind: str) -> None:
    from rich.table import Table

    from flows.cli import console
    from storage.optimade import FIELDS

    view = Table(title=f"OPTIMADE fields of {kind}")
    for col in ("field", "column", "kind", "meaning"):
        view.add_column(col)
    for name, field in FIELDS[kind].items():
        view.add_row(name, field.column, field.kind, field.doc)
    console.print(view)


@candidates_app.command("fields")
def candidates_fields() -> None:
    """The fields a candidates filter can use."""
    _print_fields("candidates")


@structures_app.command("fields")
def structures_fields() -> None:
    """The fields a structures filter can use."""
    _print_fields("structures")


@candidates_app.command("export")
def candidates_export(
    campaign: Annotated[str, typer.Argument(help="Campaign id.")],
    out: Annotated[Path, typer.Option(help="Folder (structure files) or file (parquet).")],
    fmt: Annotated[
        str, typer.Option("--format", help="cif, poscar, extxyz, json, entry or parquet.")
    ] = "cif",
    top_k: Annotated[int, typer.Option(min=1, help="Best family results by fitness.")] = 5,
    filter_: Annotated[str, typer.Option("--filter", help="Extra OPTIMADE filter.")] = "",
) -> None:
    """Export a campaign's top-k family results (lowest fitness first) in one format."""
    from storage.query import load_campaign, query

    try:
        load_campaign(campaign, home=_home())
        rows = query(
            filter_ or None,
            table="candidates",
            where={"campaign_id": campaign, "stage": "outer"},
            home=_home(),
        )
        rows = rows.filter(rows["fitness"].is_valid()).sort_by([("fitness", "ascending")]).slice(0, top_k)
        _emit(rows, "candidates", fmt, out, top_k, f"campaign {campaign}")
    except _errors() as exc:
        _fail(str(exc))


# ------------------------------------------------------------------------------------------ plots


def _plot(kind: str, campaigns: list[str], out: Path, **kwargs: Any) -> None:
    import pandas as pd

    from csp import plots
    from flows.cli import console
    from storage.query import load_campaign, load_candidates

    try:
        if out.suffix.lower() not in (".png", ".svg"):
            _fail(f"--out must end in .png or .svg, not {out.name!r}.")
        frames = []
        labels = {}
        for cid in campaigns:
            meta = load_campaign(cid, home=_home())
            p = meta["parameters"]
            labels[cid] = (
                f"{p.get('outer_optimizer')}/{p.get('inner_optimizer')} seed {p.get('seed')} ({cid})"
            )
            frames.append(load_candidates(campaign=cid, home=_home()))
        df = pd.concat(frames, ignore_index=True)
        if kind == "optimizers":
            fig = plots.optimizer_comparison(df, labels)
        else:
            fig = getattr(plots, kind)(df, **kwargs)
        path = plots.save(fig, out)
    except _errors() as exc:
        _fail(str(exc))
    console.print(f"wrote {path}")


Campaign = Annotated[str, typer.Argument(help="Campaign id.")]
Out = Annotated[Path, typer.Option(help="Image file: .png or .svg.")]


@plot_app.command("convergence")
def plot_convergence(campaign: Campaign, out: Out) -> None:
    """Best fitness vs structures evaluated and vs wall time."""
    _plot("convergence", [campaign], out)


@plot_app.command("energies")
def plot_energies(campaign: Campaign, out: Out) -> None:
    """Distribution of the predicted formation enthalpy of every valid structure tried."""
    _plot("energy_distribution", [campaign], out)


@plot_app.command("spacegroups")
def plot_spacegroups(campaign: Campaign, out: Out) -> None:
    """Structures tried per space group."""
    _plot("spacegroup_frequency", [campaign], out)


@plot_app.command("psyn-dhf")
def plot_psyn_dhf(
    campaign: Campaign, out: Out, top_k: Annotated[int, typer.Option(min=1, help="Marked best.")] = 5
) -> None:
    """P_syn vs predicted formation enthalpy of every family, the top k by fitness marked."""
    _plot("psyn_vs_dhf", [campaign], out, top_k=top_k)


@plot_app.command("optimizers")
def plot_optimizers(
    campaigns: Annotated[list[str], typer.Argument(help="Campaign ids to compare.")], out: Out
) -> None:
    """Best fitness vs structures evaluated, one line per campaign (labelled by its optimizers)."""
    _plot("optimizers", campaigns, out)


@plot_app.command("refined")
def plot_refined(campaign: Campaign, out: Out) -> None:
    """Refined vs unrefined energies (needs rows with stage = 'refined')."""
    _plot("refined_vs_unrefined", [campaign], out)
