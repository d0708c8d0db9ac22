"""The one campaign result as rich tables: the final top k, its rank rule, and the search's own top k."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from flows.cli._common import console


def _num(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "NO")


def _check(entry: Any, result: Any) -> str:
    """The check column: ``ok`` or ``FAILS: why`` (empty when the result was not checked)."""
    if not result.checked:
        return ""
    return f"FAILS: {entry.check}" if entry.check else "ok"


def print_check_line(result: Any, which: str = "final") -> None:
    """The one line saying how many of the shown top k fail the lake's physical check (nothing when none)."""
    line = result.check_line(which)
    if line:
        console.print(line, highlight=False, style="bold")


def print_result(result: Any, campaign_id: str) -> None:
    """Print :class:`csp.potentials.result.CampaignResult`: what the table ranks by, the final top k
    (ΔE above rank 1 in meV/atom, converged, duplicates, source family), the refinement counted in words
    and the search's own top k beside it."""
    if not result.top:
        console.print(f"Campaign {campaign_id} has no scored structure yet.", highlight=False)
        return
    console.print(
        f"Top {len(result.top)} of campaign {campaign_id} ({result.formula}), ranked by {result.rank_rule}.",
        highlight=False,
    )
    view = Table(title=None)
    refined = result.refined
    cols: list[tuple[str, str]] = [("rank", "right"), ("structure", "left")]
    # the column and its footnote name one quantity: the potential's ΔE when refined, else the models' ΔdHf
    delta = "ΔE" if refined else "ΔdHf model"
    cols.append((f"{delta} to rank 1 (meV/atom)", "right"))
    if refined:
        cols += [("E potential (eV/atom)", "right"), ("converged", "left")]
    cols += [
        ("dHf model (eV/atom)", "right"),
        ("P_syn", "right"),
        ("FV", "right"),
        ("a, b, c (Å)", "right"),
        ("Wyckoff", "left"),
        ("from family", "left"),
        ("duplicates", "right"),
    ]
    if result.checked:
        cols.append(("check", "left"))
    for name, justify in cols:
        view.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for e in result.top:
        cells = [str(e.rank), f"{e.spacegroup_symbol} ({e.spacegroup})", _num(e.delta_e_mev_per_atom, ".1f")]
        if refined:
            cells += [_num(e.energy_potential_ev_per_atom, ".4f"), _yes_no(e.converged)]
        cells += [
            _num(e.dhf_pred_ev_per_atom, ".3f"),
            "" if e.p_syn is None else f"{e.p_syn:.2f} ± {e.p_syn_std or 0:.2f}",
            _num(e.fitness, ".4f"),
            f"{e.a:.3f}, {e.b:.3f}, {e.c:.3f}",
            e.wyckoff or "",
            e.source_family,
            str(e.duplicates),
        ]
        if result.checked:
            cells.append(_check(e, result))
        view.add_row(*cells)
    console.print(view)
    print_check_line(result)
    console.print(
        f"{delta}: {result.energy_kind}, above rank 1. duplicates: other "
        f"{'relaxed ' if refined else ''}structures merged into this one (same space group, StructureMatcher).",
        highlight=False,
    )
    line = result.refinement_line()
    if line:
        console.print(line, highlight=False)
    if refined:
        _print_search_top(result)
    else:  # the search's own top k is not shown: say how many of its best the check set aside
        print_check_line(result, "search")


def _print_search_top(result: Any) -> None:
    sources = {e.outer_step: e.rank for e in result.top}
    view = Table(title=None)
    for name in (
        "search rank",
        "structure",
        "dHf model (eV/atom)",
        "P_syn",
        "FV",
        "gap (eV/atom)",
        "final rank",
        *(("check",) if result.checked else ()),
    ):
        view.add_column(name, justify="left" if name in ("structure", "check") else "right")
    for e in result.search_top:
        shown = sources.get(e.outer_step)
        view.add_row(
            str(e.rank),
            f"{e.spacegroup_symbol} ({e.spacegroup})",
            _num(e.dhf_pred_ev_per_atom, ".3f"),
            "" if e.p_syn is None else f"{e.p_syn:.2f}",
            _num(e.fitness, ".4f"),
            _num(e.exploitation_gap_ev_per_atom, "+.3f"),
            "" if shown is None else str(shown),
            *((_check(e, result),) if result.checked else ()),
        )
    console.print(
        "The search's own top k (the models' FV before refinement; gap: the potential's dHf at the found "
        "geometry minus the model's; final rank: the rank of the structure relaxed from it):",
        highlight=False,
    )
    console.print(view)
    print_check_line(result, "search")


def print_xrd(result: Any) -> None:
    """The 5 strongest simulated powder lines (Cu K-alpha, pymatgen XRDCalculator) of each entry."""
    from csp.structures.xrd import simulate

    view = Table(title=None)
    for name in ("rank", "structure", "strongest lines: 2θ (°) (hkl) intensity"):
        view.add_column(name, justify="right" if name == "rank" else "left")
    for e in result.top:
        lines = simulate(e.structure).strongest(5)
        view.add_row(
            str(e.rank),
            f"{e.spacegroup_symbol} ({e.spacegroup})",
            ", ".join(f"{t:.2f} ({hkl}) {i:.0f}" for t, i, hkl in lines),
        )
    console.print("Simulated powder patterns (Cu K-alpha, 1.54184 Å; strongest line 100):", highlight=False)
    console.print(view)


def print_xrd_comparison(result: Any, measured: Any, name: str) -> None:
    """The top k ordered by the similarity of their simulated patterns to ``measured``."""
    from csp.structures.xrd import FWHM_DEG, MAX_STRAIN, rank_by_pattern

    ranked = rank_by_pattern([e.structure for e in result.top], measured)
    view = Table(title=None)
    for col in ("by pattern", "rank", "structure", "similarity"):
        view.add_column(col, justify="left" if col == "structure" else "right")
    for order, (i, score) in enumerate(ranked, start=1):
        e = result.top[i]
        view.add_row(str(order), str(e.rank), f"{e.spacegroup_symbol} ({e.spacegroup})", f"{score:.3f}")
    console.print(
        f"The top {len(result.top)} against {name}: similarity is the cosine of the two patterns broadened by "
        f"Gaussians of {FWHM_DEG:g}° FWHM on one 2θ grid, best over uniform scalings of each cell by up to "
        f"±{MAX_STRAIN:.0%} (1: the same peaks at the same intensities; 0: no peak in common).",
        highlight=False,
    )
    console.print(view)
