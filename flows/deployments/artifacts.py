"""Prefect UI pieces of the campaign deployments: a sparkline, a text chart, the convergence plot, the summary
and, in it, what an experimentalist checks first (each entry's cell and powder pattern)."""

from __future__ import annotations

from typing import Any

from flows.coverage import coverage_line, gap_line
from storage.campaigns import candidates_sql

SPARK = "▁▂▃▄▅▆▇█"

#: columns of the top-k table artifact (the one campaign result, :mod:`csp.potentials.result`)
TOP_COLUMNS = (
    "rank",
    "structure",
    "delta_e_mev_per_atom",
    "energy_potential_ev_per_atom",
    "converged",
    "dhf_pred_ev_per_atom",
    "p_syn",
    "fitness",
    "a",
    "b",
    "c",
    "wyckoff",
    "family",
    "duplicates",
    "exploitation_gap_ev_per_atom",
    "check",
)


def _structure(t: dict[str, Any]) -> str:
    return f"{t.get('spacegroup_symbol')} ({t.get('spacegroup')})"


def _family(t: dict[str, Any]) -> str:
    if t.get("family_spacegroup") is None:
        return ""
    return f"{t['family_spacegroup']} {t.get('family_wyckoff') or ''}".strip()


def sparkline(values: list[float]) -> str:
    """One character per value; the lowest value gets the lowest bar (fitness: lower is better)."""
    finite = [v for v in values if v != float("inf")]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    return "".join(
        " " if v == float("inf") else SPARK[round((v - lo) / span * (len(SPARK) - 1))] for v in values
    )


def ascii_plot(values: list[float], height: int = 8, width: int = 60) -> str:
    """A small text chart of best fitness vs outer step (renders in any markdown viewer, offline)."""
    pts = [(i, v) for i, v in enumerate(values) if v != float("inf")]
    if not pts:
        return "(no scored step)"
    n = len(values)
    cols = min(width, n)
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    span = (hi - lo) or 1.0
    grid = [[" "] * cols for _ in range(height)]
    for i, v in pts:
        c = min(cols - 1, i * cols // n)
        r = round((v - lo) / span * (height - 1))
        grid[height - 1 - r][c] = "*"
    lines = []
    for r, cells in enumerate(grid):
        label = hi - span * r / (height - 1) if height > 1 else hi
        lines.append(f"{label:8.4f} |{''.join(cells)}")
    lines.append(" " * 9 + "+" + "-" * cols)
    lines.append(" " * 10 + f"outer step 1..{n}")
    return "\n".join(lines)


def rounded(v: Any) -> Any:
    """Floats to 4 decimals (table artifacts), anything else unchanged."""
    return round(v, 4) if isinstance(v, float) else v


def top_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The top-k rows of a campaign report (its one result), with the columns of :data:`TOP_COLUMNS`."""
    shown = {"structure": _structure, "family": _family}
    return [{k: shown[k](t) if k in shown else rounded(t.get(k)) for k in TOP_COLUMNS} for t in report["top"]]


def best_row(report: dict[str, Any]) -> dict[str, Any]:
    """The summary columns of a campaign's best structure (one row of a comparison table)."""
    best = report["top"][0] if report["top"] else {}
    curve = report["best_curve"]
    return {
        "best_fitness": rounded(curve[-1]) if curve else None,
        "spacegroup": best.get("spacegroup_symbol"),
        "dhf_ev_per_atom": rounded(best.get("dhf_pred_ev_per_atom")),
        "p_syn": rounded(best.get("p_syn")),
        "candidates": report["n_candidates"],
    }


def convergence_image(campaign_id: str) -> str | None:
    """Markdown image (base64 data-URI PNG) of the campaign's convergence plot; None with nothing to draw."""
    from csp.errors import InputError
    from csp.plots import convergence, markdown_image
    from flows.settings import lake
    from storage.query import load_candidates

    try:
        fig = convergence(load_candidates(campaign=campaign_id, home=lake()))
    except InputError:
        return None
    return markdown_image(fig, alt=f"convergence of {campaign_id}")


#: strongest lines of each entry's simulated powder pattern listed in the summary
XRD_LINES = 5


def xrd_section(result: Any, campaign_id: str, *, images: bool = True, dpi: int = 72) -> str:
    """Markdown: for each entry of the campaign result's top k, the strongest lines of its simulated
    powder pattern (Cu K-alpha; 2-theta in degrees, Miller indices, intensity with the strongest 100) and,
    with ``images``, its card (:func:`csp.plots.structure_card`: the cell beside the pattern) as a data-URI
    PNG, which the Prefect UI renders offline.

    Args:
        result: a :class:`csp.potentials.result.CampaignResult`; an empty one gives an empty string.
        campaign_id: its campaign, named in the commands the section suggests.
        images: embed the cards (a few tens of kB each at ``dpi``).
        dpi: resolution of the embedded cards.
    """
    if not result.top:
        return ""
    from csp.plots import card_title, markdown_image, structure_card
    from csp.structures.xrd import simulate

    lines = [
        "## What an experimentalist checks first",
        "",
        "Each entry's cell and its simulated powder pattern (pymatgen XRDCalculator, Cu Kα 1.54184 Å, "
        f"strongest line 100); `csp plot structures {campaign_id} --out DIR` writes the same pictures, "
        f"`csp campaign show {campaign_id} --compare-xrd FILE` ranks them against a measured pattern.",
        "",
    ]
    for entry in result.top:
        pattern = simulate(entry.structure)
        title = card_title(entry)
        lines += [f"### {title}", ""]
        if images:
            lines += [
                markdown_image(structure_card(entry.structure, title=title, pattern=pattern), title, dpi=dpi),
                "",
            ]
        lines += ["| 2θ (°) | hkl | intensity |", "| ---: | :--- | ---: |"]
        lines += [f"| {t:.2f} | ({hkl}) | {i:.0f} |" for t, i, hkl in pattern.strongest(XRD_LINES)]
        lines.append("")
    return "\n".join(lines)


def refinement_words(counts: dict[str, Any]) -> str:
    """The refinement counts of a stored result in words (see
    :meth:`csp.potentials.result.CampaignResult.refinement_line`)."""
    from csp.potentials.result import CampaignResult

    empty = CampaignResult("", "", "", False, [], [], refinement=counts)
    return empty.refinement_line() or ""


def summary_markdown(
    report: dict[str, Any], *, skipped: bool = False, image: str | None = None, checks: str | None = None
) -> str:
    """The campaign summary: status, counts, parameters, best structure, convergence, the SQL to query.

    ``image`` (markdown, e.g. from :func:`convergence_image`) replaces the text chart of convergence when given;
    ``checks`` (markdown, e.g. from :func:`xrd_section`) is added before the SQL.
    """
    cid = report["campaign_id"]
    curve = report["best_curve"]
    top = report["top"]
    p = report["parameters"]
    lines = [
        f"# Campaign {cid}",
        "",
        f"**{report['composition']}**: status **{report['status']}**"
        + (" (already completed in the lake; nothing was scored this run)" if skipped else ""),
        "",
        f"- {report['n_candidates']} candidates; the last run took {report['elapsed_s'] or 0:.1f} s"
        + (f", {report['invalid_share']:.1%} invalid" if report["invalid_share"] is not None else ""),
        f"- alpha {p['alpha']}, strategy {p['strategy']} ({p.get('crystal_system')}), optimizers "
        f"{p['outer_optimizer']}/{p['inner_optimizer']}, {p['outer_steps']} x {p['inner_steps']} steps, "
        f"seed {p['seed']}, enthalpy model {p['dhf_source']}",
    ]
    thin = coverage_line(report)
    if thin:
        lines.append(f"- {thin}")
    gap = gap_line(list(report.get("top_search") or []))
    if gap:
        lines.append(f"- {gap}")
    result = report.get("result") or {}
    if top:
        t = top[0]
        energy = t.get("energy_potential_ev_per_atom")
        lines.append(
            f"- rank 1 of the top {len(top)} (ranked by {result.get('rank_rule', 'fitness FV')}): "
            f"{_structure(t)}, a={t['a']:.3f} Å"
            + (f", E={energy:.4f} eV/atom" if energy is not None else "")
            + (
                f", converged={'yes' if t.get('converged') else 'no'}"
                if t.get("converged") is not None
                else ""
            )
            + f", dHf(model)={t['dhf_pred_ev_per_atom']:.3f} eV/atom, P_syn={t['p_syn']:.2f}, "
            f"FV={t['fitness']:.4f}; the table holds the whole top {len(top)}"
        )
    counts = result.get("refinement") or {}
    if counts:
        lines.append(f"- {refinement_words(counts)}")
    if result.get("check_line"):
        lines.append(f"- **{result['check_line']}**")
    lines += [
        "",
        "## Convergence (best fitness vs outer step, lower is better)",
        "",
        *([image, ""] if image else [f"`{sparkline(curve)}`", "", "```text", ascii_plot(curve), "```", ""]),
    ]
    if curve:
        marks = sorted({0, *range(0, len(curve), max(1, len(curve) // 10)), len(curve) - 1})
        lines += ["| outer step | best FV |", "| ---: | ---: |"]
        lines += [f"| {i + 1} | {curve[i]:.4f} |" for i in marks]
        lines.append("")
    if checks:
        lines += [checks, ""]
    lines += [
        "## Query the candidates",
        "",
        "```bash",
        f'csp sql "{candidates_sql(cid)}"',
        f"csp campaign show {cid}",
        "```",
    ]
    return "\n".join(lines) + "\n"
