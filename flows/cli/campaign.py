"""``csp campaign run|resume|list|show|export`` and ``csp demo``: crystal-structure prediction campaigns.

``campaign run`` takes one option per field of :class:`flows.campaigns.CampaignParameters` (generated, so
a new search parameter needs no change here); the values go straight into :func:`flows.campaigns.prepare`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from flows.campaigns import CampaignParameters
from flows.cli._common import console, err, fail, print_arrow, styled
from flows.cli._options import model_options, number_option, option, output_option
from flows.settings import lake as current_lake
from flows.settings import settings as current_settings

campaign_app = typer.Typer(help="Crystal-structure prediction campaigns.", no_args_is_help=True)
#: help of ``--force`` (run and resume); the bounds are :data:`csp.search.budget.MAX_CANDIDATES` and
#: :data:`csp.search.budget.MAX_LISTING_S`
FORCE_HELP = "Accept a budget above 2,000,000 structures, or a family listing longer than 120 s."
EXPORT_CIF_HELP = "Folder for CIFs of the top structures."


def _run_with_progress(
    params: dict[str, Any] | CampaignParameters,
    campaign_id: str | None,
    export_dir: Path | None,
    force: bool = False,
):
    from flows.campaign_progress import run_with_progress

    return run_with_progress(params, campaign_id, export_dir, console=console, fail=fail, force=force)


def _finish(outcome) -> None:
    from flows.cli._result import print_result

    print_result(outcome.result, outcome.campaign_id)
    import os
    import shlex

    from storage.campaigns import candidates_sql

    # the lake of this run, spelled out when it is not the default one, so the query can be pasted as is
    home = f"CSP_HOME={shlex.quote(str(current_settings().home))} " if "CSP_HOME" in os.environ else ""
    cut = outcome.excluded or {}
    if cut.get("formula_units"):
        zs = cut["formula_units"]
        left = f"{zs[0]}..{zs[-1]}" if zs == list(range(zs[0], zs[-1] + 1)) and len(zs) > 2 else str(zs)
        counted = (
            f"{cut['families']} families, {cut['space_groups']} space groups not searched at all"
            if cut.get("counted", True)
            else f"their families were not counted (that would take more than {cut['bound_s']:g} s)"
        )
        console.print(
            f"The {cut['max_atoms']}-atom cap left out Z = {left}: {counted}; raise --max-atoms to include them.",
            highlight=False,
        )
    from flows.coverage import gap_line

    gap = None if outcome.result.refined else gap_line(outcome.top_search)
    if gap:
        console.print(gap, highlight=False)
    if outcome.refine_s >= 0.5:  # the time after the search: refinement, or the gap probes' single points
        console.print(
            f"search {outcome.search_s:.0f} s, universal potential (refinement or gap probes) "
            f"{outcome.refine_s:.0f} s",
            highlight=False,
        )
    scored = f"{outcome.n_candidates} candidates scored in {outcome.elapsed_s:.0f} s"
    # a resume: the rows of the earlier runs were replayed, not scored (nor timed) again
    if outcome.n_replayed:
        scored = (
            f"{outcome.n_candidates} candidates: {outcome.n_replayed} replayed from earlier runs, "
            f"{outcome.n_candidates - outcome.n_replayed} scored by this run in {outcome.elapsed_s:.0f} s"
        )
    console.print(
        f"{scored} ({outcome.invalid_share:.1%} invalid). Every candidate is in the lake:\n"
        f'  {home}csp sql "{candidates_sql(outcome.campaign_id)}"',
        highlight=False,
    )
    from flows.coverage import coverage_line

    thin = coverage_line({"thin_elements": outcome.thin_elements})
    if thin:
        err.print(styled("warning:", "bold yellow", thin), highlight=False)


@campaign_app.command("run")
@model_options(
    CampaignParameters,
    arguments=("composition",),
    extra=[
        option("campaign_id", str | None, None, "Id (default: generated)."),
        option("export_cif", Path | None, None, "", marker=output_option(EXPORT_CIF_HELP, "folder")),
        option("force", bool, False, FORCE_HELP),
    ],
)
def campaign_run(**values: Any) -> None:
    """Run a campaign: every candidate lands in the lake; prints the top k."""
    campaign_id, export_cif, force = values.pop("campaign_id"), values.pop("export_cif"), values.pop("force")
    _refuse_an_unused_potential(values)
    _finish(_run_with_progress(values, campaign_id, export_cif, force))


def _refuse_an_unused_potential(values: dict[str, Any]) -> None:
    """One line when a potential or its device is chosen but never runs (``--no-refine --gap-probes 0``, not
    ``rs-relax``: :func:`csp.potentials.refine.potential_runs`): it would be ignored, so it is refused, not
    dropped. Where the potential runs, :func:`csp.potentials.refine.check_refinement` checks it is installed."""
    from pydantic import ValidationError

    from csp.potentials.refine import potential_runs

    try:
        config = CampaignParameters(**values).search_config()
    except (ValidationError, ValueError):
        return  # the campaign's own checks say what is wrong
    if potential_runs(config):
        return
    fields = CampaignParameters.model_fields
    chosen = [
        f"--{name.replace('_', '-')} {values[name]}"
        for name in ("refine_potential", "refine_device")
        if name in values and values[name] != fields[name].default
    ]
    if chosen:
        fail(
            f"{' and '.join(chosen)} would be ignored: with --no-refine and --gap-probes 0 no universal potential "
            "runs; leave it out, or give --gap-probes N (single points with it) or --refine."
        )


@campaign_app.command("resume")
def campaign_resume(
    campaign_id: Annotated[str, typer.Argument(help="The campaign to continue.")],
    export_cif: Annotated[Path | None, output_option(EXPORT_CIF_HELP, "folder")] = None,
    force: Annotated[bool, typer.Option(help=FORCE_HELP)] = False,
    score_device: Annotated[
        str | None,
        typer.Option(help="Where the models score: auto, cpu or cuda (default: as the campaign started)."),
    ] = None,
) -> None:
    """Continue a stopped or killed campaign where it stopped (nothing is scored or written twice)."""
    from flows.campaigns import CampaignError, stored_parameters

    try:
        params = stored_parameters(current_lake(), campaign_id)
    except CampaignError as exc:
        fail(str(exc))
    if score_device is not None:  # not part of the fingerprint: a GPU campaign may resume on a CPU machine
        params["score_device"] = score_device
    _finish(_run_with_progress(params, campaign_id, export_cif, force))


@campaign_app.command("list")
def campaign_list() -> None:
    """Campaigns with their latest status, best structure and its energy (``stale``: its last status is
    running but its process is gone)."""
    import pyarrow as pa

    from storage.campaign_state import shown_status_table
    from storage.campaigns import best_of_campaigns, list_campaigns

    lake = current_lake()
    table = shown_status_table(lake, list_campaigns(lake))
    best = best_of_campaigns(lake)
    rows = []
    for rec in table.to_pylist():
        b = best.get(rec["campaign_id"], {})
        rows.append(
            {
                "campaign_id": rec["campaign_id"],
                "composition": rec["composition"],
                "status": rec["status"],
                "best structure": b.get("structure", ""),
                "best energy (eV/atom)": b.get("energy", ""),
                "ranked by": b.get("rule", ""),
                "candidates": rec["n_candidates"],
                "seconds (all runs)": rec["total_elapsed_s"],
                "reason": rec["reason"] or "",
                "written_at": rec["written_at"],
            }
        )
    if not rows:
        console.print("No campaigns in this lake yet; `csp campaign run MgO` starts one.")
        return
    print_arrow(pa.Table.from_pylist(rows), max_rows=200)


@campaign_app.command("show")
def campaign_show(
    campaign_id: Annotated[str, typer.Argument(help="Campaign id.")],
    xrd: Annotated[
        bool,
        typer.Option(help="Also print the 5 strongest simulated Cu K-alpha powder lines of each structure."),
    ] = False,
    compare_xrd: Annotated[
        Path | None,
        typer.Option(
            help="Rank the top k against a measured pattern (two columns: 2-theta in degrees, intensity)."
        ),
    ] = None,
) -> None:
    """Parameters, status and the campaign result: the final top k with its rank rule (the same answer
    as ``campaign export``, ``candidates export`` and ``csp.predict``)."""
    from flows.cli._result import print_result
    from flows.results import result_of
    from storage.campaign_state import shown_status
    from storage.campaigns import campaign_row

    measured = None
    if compare_xrd is not None:  # read before anything is printed: a bad file is one line
        from csp.errors import InputError
        from csp.structures.xrd import read_pattern

        try:
            measured = read_pattern(compare_xrd)
        except InputError as exc:
            fail(str(exc))
    lake = current_lake()
    row = campaign_row(lake, campaign_id)
    if row is None:
        fail(f"No campaign {campaign_id!r}; `csp campaign list` shows the ids.")
    status, note = shown_status(lake, campaign_id, row["status"])
    reason = note or row["reason"]
    console.print(
        f"{campaign_id}: {row['composition']}, status {status}" + (f" ({reason})" if reason else ""),
        highlight=False,
    )
    console.print(f"parameters: {row['parameters_json']}", highlight=False, soft_wrap=True)
    result = result_of(lake, campaign_id)
    print_result(result, campaign_id)
    if xrd and result.top:
        from flows.cli._result import print_xrd

        print_xrd(result)
    if measured is not None and result.top:
        from flows.cli._result import print_xrd_comparison

        print_xrd_comparison(result, measured, compare_xrd.name)


@campaign_app.command("export")
def campaign_export(
    campaign_id: Annotated[str, typer.Argument(help="Campaign id.")],
    out: Annotated[Path, output_option("Folder for the structure files.", "folder")],
    top_k: Annotated[int | None, number_option("Structures (default: the campaign's top_k).", low=1)] = None,
    fmt: Annotated[str, typer.Option("--format", help="cif, poscar, extxyz, json or entry.")] = "cif",
) -> None:
    """Write the campaign result's top structures (the final ranked, deduplicated top k: refined when
    refinement ran), one file each, named <campaign>-rank<N>."""
    from csp.structures.io import FORMATS, write_structures
    from flows.results import NoCampaignError, result_of

    if fmt not in FORMATS:
        fail(f"Unknown format {fmt!r}; choose from {', '.join(FORMATS)}.")
    try:
        result = result_of(current_lake(), campaign_id, k=top_k)
    except (ValueError, NoCampaignError) as exc:
        fail(str(exc))
    if not result.top:
        fail(f"Campaign {campaign_id!r} has no scored families yet.")
    structures = result.structures("final")
    names = [f"{campaign_id}-rank{e.rank}" for e in result.top]
    for path in write_structures(structures, out, fmt, names=names):
        console.print(f"wrote {path}", highlight=False)
    console.print(f"ranked by {result.rank_rule}", highlight=False)
    from flows.cli._result import print_check_line

    print_check_line(result)


def demo() -> None:
    """The main job: a short MgO campaign (cubic, BO outer, PSO inner) on the shipped models."""
    params = CampaignParameters(composition="MgO", outer_steps=20, inner_steps=120)
    outcome = _run_with_progress(params, None, None)
    _finish(outcome)
    _report_reference(outcome, "MgO")


def _report_reference(outcome, formula: str) -> None:
    """Say where the experimental structure (the paper's reference CIF, if the data mirror has it) ranks."""
    from pymatgen.core import Structure

    from csp.structures.matching import matches

    mirror = current_settings().mirror()
    cif = mirror / "validation" / "table1" / f"{formula}.cif" if mirror is not None else None
    if cif is None or not cif.is_file():
        return
    reference = Structure.from_file(cif)
    found = next((t for t in outcome.result.top if matches(t.structure, reference)), None)
    if found is None:
        console.print(f"The experimental {formula} structure is not in the top {len(outcome.top)}.")
    else:
        console.print(
            f"The experimental {formula} structure ({found.spacegroup_symbol}) is rank {found.rank} "
            "(StructureMatcher match and the same space group)."
        )
