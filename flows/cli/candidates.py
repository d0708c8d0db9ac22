"""``csp candidates query|fields|export`` and ``csp structures query|fields``: OPTIMADE queries and exports.

Thin faces over :mod:`storage.query` (rows, filters, Parquet) and :mod:`csp.structures.io` (structure files);
the plots of the same histories are ``csp plot`` (:mod:`flows.cli.plot`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli._common import console, fail, print_arrow
from flows.cli._options import number_option, output_option
from flows.settings import lake as current_lake

candidates_app = typer.Typer(help="Evaluated candidates: OPTIMADE queries and exports.", no_args_is_help=True)
structures_app = typer.Typer(help="Ingested structures: OPTIMADE queries and exports.", no_args_is_help=True)

#: columns printed for a query (all columns go to files)
SHOWN = {
    "candidates": [
        "id",
        "evaluation",
        "spacegroup",
        "family_spacegroup",
        "crystal_system",
        "nsites",
        "dhf_pred_ev_per_atom",
        "p_syn",
        "fitness",
        "energy_potential_ev_per_atom",
        "converged",
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
OUT_HELP = "File (parquet) or folder (structure files)."


def history_errors() -> tuple[type[Exception], ...]:
    """What a history query, export or plot refuses with a one-line message (storage and science errors)."""
    from csp.errors import CSPError
    from storage.errors import StorageError

    return (StorageError, CSPError)


def fail_one_line(message: object) -> None:
    """:func:`flows.cli._common.fail` with the first line of ``message`` only."""
    fail(str(message).splitlines()[0])


def _emit(table: Any, kind: str, fmt: str, out: Path | None, max_rows: int, what: str) -> None:
    """Print or write the rows of a query in ``fmt``."""
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
        fail_one_line(f"--format {fmt} needs --out (a file for parquet, a folder for structure files).")
    if fmt == "parquet":
        from storage.query import write_parquet

        path = write_parquet(table, out)
        console.print(f"wrote {table.num_rows} rows to {path}")
        return
    from csp.structures.io import write_structures
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
    from storage.optimade import abbreviate
    from storage.query import load_campaign, query

    try:
        if campaign is not None:
            load_campaign(campaign, home=current_lake())
        where = {k: v for k, v in (("campaign_id", campaign), ("stage", stage)) if v is not None}
        table = query(filter_, table=kind, where=where, limit=limit, home=current_lake())  # type: ignore[arg-type]
        shown = f"'{abbreviate(filter_)}'" if filter_ else "(no filter)"  # not all of a 4000-term filter
        _emit(table, kind, fmt, out, max_rows, shown)
    except history_errors() as exc:
        fail_one_line(exc)


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
    stage: Annotated[str | None, typer.Option(help="inner, outer, refined or single_point.")] = None,
    limit: Annotated[int | None, number_option("At most this many rows.", low=1)] = None,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "table",
    out: Annotated[Path | None, output_option(OUT_HELP, "file or folder")] = None,
    max_rows: Annotated[int, number_option("Rows to print.", low=1)] = 50,
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
    limit: Annotated[int | None, number_option("At most this many rows.", low=1)] = None,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "table",
    out: Annotated[Path | None, output_option(OUT_HELP, "file or folder")] = None,
    max_rows: Annotated[int, number_option("Rows to print.", low=1)] = 50,
) -> None:
    """Ingested structures matching an OPTIMADE filter (fields: `csp structures fields`)."""
    _query("structures", filter_, campaign=None, stage=None, limit=limit, fmt=fmt, out=out, max_rows=max_rows)


def _print_fields(kind: str) -> None:
    from rich.table import Table

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
    out: Annotated[Path, output_option(OUT_HELP, "file or folder")],
    fmt: Annotated[
        str, typer.Option("--format", help="cif, poscar, extxyz, json, entry or parquet.")
    ] = "cif",
    top_k: Annotated[int | None, number_option("Structures (default: the campaign's top_k).", low=1)] = None,
    stage: Annotated[
        str,
        typer.Option(
            help="final: the campaign result (refined when refinement ran, as `csp campaign show`); "
            "search: the search's own top k by FV, before refinement."
        ),
    ] = "final",
    filter_: Annotated[
        str,
        typer.Option(
            "--filter", help="OPTIMADE filter: rank only the matching rows (e.g. '_csp_spacegroup=216')."
        ),
    ] = "",
) -> None:
    """Export a campaign's result (the final ranked, deduplicated top k) in one format."""
    from flows.results import NoCampaignError, result_of

    if stage not in ("final", "search"):
        fail_one_line(f"Unknown --stage {stage!r}: choose final or search.")
    try:
        result = result_of(current_lake(), campaign, k=top_k, filter_=filter_ or None)
        entries = result.top if stage == "final" else result.search_top
        if not entries:
            console.print(f"No scored structure of campaign {campaign} matches.", highlight=False)
            raise typer.Exit(1)
        if fmt == "table":
            fail_one_line(
                "--format table is for `csp candidates query`; `csp campaign show` prints the result."
            )
        if fmt == "parquet":
            _export_parquet(campaign, entries, out)
        else:
            from csp.structures.io import write_structures

            # the search's own top k never overwrites the final answer's files of the same campaign
            prefix = f"{campaign}-rank" if stage == "final" else f"{campaign}-search-rank"
            names = [f"{prefix}{e.rank}" for e in entries]
            paths = write_structures(result.structures(stage), out, fmt, names=names)
            console.print(f"wrote {len(paths)} {fmt} files to {out}", highlight=False)
        what = result.rank_rule if stage == "final" else "fitness FV of the search, before refinement"
        console.print(f"ranked by {what}", highlight=False)
        from flows.cli._result import print_check_line

        print_check_line(result, stage)
    except (*history_errors(), NoCampaignError) as exc:
        fail_one_line(exc)


def _export_parquet(campaign: str, entries: list[Any], out: Path) -> None:
    """The lake rows of the result's entries (whole rows) plus their ``rank``, in rank order."""
    import pyarrow as pa

    from storage.query import query, write_parquet

    rows = query(None, table="candidates", where={"campaign_id": campaign}, home=current_lake())
    keys = list(
        zip(*(rows.column(c).to_pylist() for c in ("stage", "outer_step", "inner_step")), strict=True)
    )
    at = {key: i for i, key in enumerate(keys)}
    picked = rows.take(pa.array([at[e.key] for e in entries]))
    picked = picked.append_column("rank", pa.array([e.rank for e in entries], pa.int32()))
    path = write_parquet(picked, out)
    console.print(f"wrote {picked.num_rows} rows to {path}", highlight=False)
