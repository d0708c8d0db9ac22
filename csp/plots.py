"""Plots of a search history with matplotlib: convergence, energies, space groups, optimizers, P_syn vs dHf,
and one card per structure of a campaign result (its cell and its simulated powder pattern).

Every function takes the pandas DataFrame of candidate rows that ``storage.query.load_candidates`` returns
(columns ``campaign_id``, ``stage``, ``outer_step``, ``inner_step``, ``spacegroup``, ``dhf_pred_ev_per_atom``
(eV/atom), ``p_syn``, ``fitness``, ``valid``, ``seconds``), returns a ``matplotlib.figure.Figure`` (built
without pyplot, so it is safe in worker threads) and raises :class:`csp.errors.InputError` with a
one-line message when the rows cannot make the plot. Save with :func:`save` (PNG or SVG by suffix) or embed
with :func:`markdown_image` (a base64 data-URI PNG).

:func:`structure_card` and :func:`result_cards` take structures (a campaign result's entries), not rows:
what an experimentalist checks first, the cell drawn by ASE (``ase.visualize.plot.plot_atoms_raw``) beside
the Cu K-alpha powder pattern of :func:`csp.structures.xrd.simulate`.

The figures of the paper report (:func:`parity_panels`, :func:`band_panels`, :func:`histogram_panels`,
:func:`grouped_bars`) take plain numbers (lists and dicts, as the report's JSON holds them), so a report is
redrawn from its JSON alone.

Fitness (FV) and P_syn are set on outer rows (one per symmetry family); inner rows are the structures the
inner optimizer scored (predicted formation enthalpy only).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from csp.errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from pymatgen.core import Structure

    from csp.structures.xrd import Pattern

__all__ = [
    "band_panels",
    "card_title",
    "convergence",
    "convergence_curve",
    "energy_distribution",
    "grouped_bars",
    "histogram_panels",
    "markdown_image",
    "optimizer_comparison",
    "parity_panels",
    "png_base64",
    "png_bytes",
    "psyn_vs_dhf",
    "refined_vs_unrefined",
    "result_cards",
    "save",
    "spacegroup_frequency",
    "structure_card",
]


def _figure(ncols: int = 1, width: float = 6.0, height: float = 4.0) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def _stage(df: pd.DataFrame, stage: str, what: str) -> pd.DataFrame:
    if df is None or len(df) == 0:
        raise InputError(f"No candidate rows to plot {what}: the query matched nothing.")
    rows = df[df["stage"] == stage]
    if len(rows) == 0:
        raise InputError(f"No {stage} rows to plot {what} (the campaign has not finished a family yet).")
    return rows


def convergence_curve(df: pd.DataFrame) -> pd.DataFrame:
    """Best-so-far fitness per outer step of one campaign.

    Returns:
        DataFrame with ``outer_step``, ``evaluations`` (inner structures scored up to and including that
        step), ``seconds`` (campaign wall time, s) and ``best_fitness`` (running minimum of FV).

    Raises:
        InputError: no outer rows, or rows of more than one campaign.
    """
    import pandas as pd

    outer = _stage(df, "outer", "convergence").sort_values("outer_step")
    if outer["campaign_id"].nunique() != 1:
        raise InputError("Convergence is per campaign: pass the rows of one campaign (campaign=...).")
    inner = df[df["stage"] == "inner"]
    per_step = inner.groupby("outer_step").size()
    evaluations = per_step.reindex(outer["outer_step"], fill_value=0).cumsum().to_numpy()
    if not evaluations.any():
        evaluations = np.arange(1, len(outer) + 1)
    fitness = pd.to_numeric(outer["fitness"], errors="coerce").to_numpy(dtype=float)
    best = np.fmin.accumulate(np.where(np.isnan(fitness), np.inf, fitness))
    return pd.DataFrame(
        {
            "outer_step": outer["outer_step"].to_numpy(),
            "evaluations": evaluations,
            "seconds": outer["seconds"].to_numpy(dtype=float),
            "best_fitness": np.where(np.isinf(best), np.nan, best),
        }
    )


def convergence(df: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Best fitness (FV, lower is better) vs structures evaluated (left) and vs wall time in s (right)."""
    curve = convergence_curve(df)
    fig, (left, right) = _figure(2, width=5.0)
    for ax, x, label in ((left, "evaluations", "structures evaluated"), (right, "seconds", "wall time (s)")):
        ax.step(curve[x], curve["best_fitness"], where="post", color="tab:blue", lw=2)
        ax.plot(curve[x], curve["best_fitness"], "o", color="tab:blue", ms=4)
        ax.set_xlabel(label)
        ax.set_ylabel("best fitness FV (lower is better)")
        ax.grid(alpha=0.3)
    cid = str(df["campaign_id"].iloc[0])
    fig.suptitle(title or f"Convergence of {cid}")
    return fig


def energy_distribution(df: pd.DataFrame, *, bins: int = 40, title: str | None = None) -> Figure:
    """Histogram of the predicted formation enthalpy (eV/atom) of every valid structure tried (inner rows)."""
    inner = _stage(df, "inner", "the energy distribution")
    energies = inner.loc[inner["valid"].astype(bool), "dhf_pred_ev_per_atom"].dropna().to_numpy(dtype=float)
    if energies.size == 0:
        raise InputError("No valid scored structure to plot the energy distribution.")
    fig, ax = _figure()
    ax.hist(energies, bins=bins, color="tab:green", alpha=0.8)
    ax.axvline(energies.min(), color="k", ls="--", lw=1, label=f"lowest {energies.min():.3f} eV/atom")
    ax.set_xlabel("predicted formation enthalpy (eV/atom)")
    ax.set_ylabel("structures")
    invalid = int((~inner["valid"].astype(bool)).sum())
    ax.legend()
    note = f" ({invalid} invalid, without energy, not shown)" if invalid else ""
    ax.set_title(title or f"{energies.size} valid structures tried{note}")
    return fig


def _symbol(number: int) -> str:
    from csp.structures.symmetry import spacegroup_symbol

    try:
        return spacegroup_symbol(int(number))
    except ValueError:
        return "?"


def spacegroup_frequency(df: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Structures tried per space group (inner rows), labelled with the Hermann-Mauguin symbol."""
    inner = _stage(df, "inner", "space-group frequency")
    counts = inner.groupby("spacegroup").size().sort_values(ascending=False)
    fig, ax = _figure(width=max(6.0, 0.45 * len(counts)))
    labels = [f"{_symbol(n)}\n({n})" for n in counts.index]
    ax.bar(range(len(counts)), counts.to_numpy(), color="tab:purple")
    ax.set_xticks(range(len(counts)), labels, fontsize=8)
    ax.set_xlabel("space group")
    ax.set_ylabel("structures tried")
    ax.set_title(title or f"{len(inner)} structures over {len(counts)} space groups")
    return fig


def optimizer_comparison(
    df: pd.DataFrame, labels: Mapping[str, str] | None = None, *, title: str | None = None
) -> Figure:
    """Best fitness vs structures evaluated, one line per campaign (e.g. one per optimizer).

    Args:
        df: candidate rows of several campaigns.
        labels: campaign id -> legend label (e.g. ``"bo/pso"``); default the campaign id.
    """
    if df is None or len(df) == 0:
        raise InputError("No candidate rows to compare: the query matched nothing.")
    fig, ax = _figure(width=7.0)
    drawn = 0
    for cid, rows in df.groupby("campaign_id", sort=True):
        if not (rows["stage"] == "outer").any():
            continue
        curve = convergence_curve(rows)
        ax.step(
            curve["evaluations"],
            curve["best_fitness"],
            where="post",
            lw=2,
            label=(labels or {}).get(cid, cid),
        )
        drawn += 1
    if drawn == 0:
        raise InputError("No campaign in these rows has finished a family; nothing to compare.")
    ax.set_xlabel("structures evaluated")
    ax.set_ylabel("best fitness FV (lower is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"Optimizer comparison over {drawn} campaigns")
    return fig


def psyn_vs_dhf(df: pd.DataFrame, *, top_k: int = 5, title: str | None = None) -> Figure:
    """P_syn vs predicted formation enthalpy of every family result; the top ``top_k`` by FV are marked."""
    outer = _stage(df, "outer", "P_syn vs dHf")
    scored = outer.dropna(subset=["p_syn", "dhf_pred_ev_per_atom"])
    if len(scored) == 0:
        raise InputError("No family result has both P_syn and dHf to plot.")
    fig, ax = _figure(width=6.5, height=4.5)
    points = ax.scatter(
        scored["dhf_pred_ev_per_atom"], scored["p_syn"], c=scored["fitness"], cmap="viridis_r", s=30
    )
    fig.colorbar(points, ax=ax, label="fitness FV")
    top = scored.sort_values("fitness").head(top_k)
    ax.scatter(
        top["dhf_pred_ev_per_atom"],
        top["p_syn"],
        s=140,
        facecolors="none",
        edgecolors="red",
        lw=1.5,
        label=f"top {len(top)} by FV",
    )
    for rank, (_, row) in enumerate(top.iterrows(), start=1):
        ax.annotate(
            f"{rank}: {_symbol(row['spacegroup'])}",
            (row["dhf_pred_ev_per_atom"], row["p_syn"]),
            textcoords="offset points",
            xytext=(6, 6),
            fontsize=8,
            color="red",
        )
    ax.set_xlabel("predicted formation enthalpy (eV/atom)")
    ax.set_ylabel("P_syn")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(loc="lower left")
    ax.set_title(title or f"{len(scored)} families: P_syn vs dHf")
    return fig


def refined_vs_unrefined(df: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Refined vs unrefined by the energy that ranks a refined campaign: the universal potential's
    formation enthalpy (eV/atom) of each structure at the geometry the search found (single point,
    ``dhf_potential_initial_ev_per_atom``) against the same after symmetry-kept relaxation
    (``dhf_potential_ev_per_atom``); relaxation can only lower it. A second panel puts the models'
    predicted dHf of the search's structure beside the potential's after relaxation: points far above
    the line are structures that fooled the models (the exploitation gap).

    Raises:
        InputError: no refined rows ("run refinement first"), or none with the potential's energies.
    """
    if df is None or len(df) == 0 or not (df["stage"] == "refined").any():
        raise InputError("No refined rows (stage = 'refined') in these candidates; run refinement first.")
    refined = df[df["stage"] == "refined"]
    before, after = "dhf_potential_initial_ev_per_atom", "dhf_potential_ev_per_atom"
    if before not in refined.columns or after not in refined.columns:
        raise InputError(
            "The refined rows carry no potential formation enthalpy; refine with a potential first."
        )
    pairs = refined.dropna(subset=[before, after])
    if len(pairs) == 0:
        raise InputError(
            "No refined row has the potential's formation enthalpy (collapsed or no elemental reference)."
        )
    outer = df[df["stage"] == "outer"][["campaign_id", "outer_step", "dhf_pred_ev_per_atom"]]
    model = pairs.drop(columns=["dhf_pred_ev_per_atom"]).merge(outer, on=["campaign_id", "outer_step"])
    model = model.dropna(subset=["dhf_pred_ev_per_atom"])
    fig, axes = _figure(2, width=5.0, height=4.5)
    for ax, x, y, xlabel in (
        (axes[0], pairs[before], pairs[after], "potential dHf as found by the search (eV/atom)"),
        (axes[1], model["dhf_pred_ev_per_atom"], model[after], "model dHf as found by the search (eV/atom)"),
    ):
        x, y = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
        ax.scatter(x, y, color="tab:orange" if ax is axes[0] else "tab:red")
        if len(x):
            lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="no change")
            ax.legend()
        ax.set_xlabel(xlabel)
        ax.set_ylabel("potential dHf after relaxation (eV/atom)")
    axes[0].set_title("relaxation lowers the\npotential's energy")
    axes[1].set_title("model vs potential\n(above the line: model fooled)")
    fig.suptitle(title or f"{len(pairs)} refined structures, by the potential's energy (the rank rule)")
    return fig


# ------------------------------------------------------------------ figures from plain numbers (reports)
def _grid(n: int, ncols: int, width: float, height: float) -> tuple[Figure, list[Any]]:
    from matplotlib.figure import Figure

    nrows = max(1, -(-n // ncols))
    fig = Figure(figsize=(width * min(n, ncols), height * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, min(n, ncols), squeeze=False)).ravel().tolist()
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, axes[:n]


def parity_panels(panels: list[Mapping[str, Any]], *, title: str | None = None, ncols: int = 2) -> Figure:
    """Parity plots, one per panel: ``x`` (reference) against ``y`` (prediction), a diagonal, and a legend
    of each ``group`` when given.

    Each panel is a mapping with ``x``, ``y`` (lists of floats), ``xlabel``, ``ylabel``, ``title`` and
    optionally ``group`` (a label per point) and ``note`` (text in the corner, e.g. the MAE and R2).

    Raises:
        InputError: no panel has a point.
    """
    if not any(len(p.get("x") or []) for p in panels):
        raise InputError("No parity panel has a point to plot.")
    fig, axes = _grid(len(panels), ncols, 4.2, 4.0)
    for ax, panel in zip(axes, panels, strict=True):
        x, y = np.asarray(panel.get("x") or [], dtype=float), np.asarray(panel.get("y") or [], dtype=float)
        groups = panel.get("group")
        if groups:
            for name in sorted(set(groups)):
                mask = np.array([g == name for g in groups])
                ax.scatter(x[mask], y[mask], s=6, alpha=0.5, label=name)
            ax.legend(fontsize=7, loc="lower right", markerscale=2)
        elif len(x):
            ax.scatter(x, y, s=8, alpha=0.6, color="tab:blue")
        if len(x):
            lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        if panel.get("note"):
            ax.text(0.03, 0.97, panel["note"], transform=ax.transAxes, va="top", fontsize=8)
        ax.set_xlabel(panel.get("xlabel", ""))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.set_title(panel.get("title", ""), fontsize=9)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def band_panels(panels: list[Mapping[str, Any]], *, title: str | None = None, ncols: int = 2) -> Figure:
    """Mean curves with a shaded band of one standard deviation, several series per panel.

    Each panel has ``series`` (label -> ``{"x", "mean", "std"}``, None entries skipped), ``xlabel``,
    ``ylabel`` and ``title``.

    Raises:
        InputError: no series has a point.
    """
    if not any(s.get("x") for p in panels for s in p.get("series", {}).values()):
        raise InputError("No curve has a point to plot.")
    fig, axes = _grid(len(panels), ncols, 5.0, 3.6)
    for ax, panel in zip(axes, panels, strict=True):
        for label, series in panel.get("series", {}).items():
            x = np.asarray(series.get("x") or [], dtype=float)
            mean = np.array([np.nan if v is None else v for v in series.get("mean") or []], dtype=float)
            std = np.array([np.nan if v is None else v for v in series.get("std") or []], dtype=float)
            if not len(x):
                continue
            (line,) = ax.step(x, mean, where="post", lw=1.8, label=label)
            ax.fill_between(x, mean - std, mean + std, step="post", alpha=0.2, color=line.get_color())
        ax.set_xlabel(panel.get("xlabel", ""))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.set_title(panel.get("title", ""), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def histogram_panels(panels: list[Mapping[str, Any]], *, title: str | None = None, ncols: int = 2) -> Figure:
    """Histograms on common bin edges, one outline per sample, several samples per panel.

    Each panel has ``edges`` (bin edges), ``counts`` (label -> counts per bin), ``xlabel`` and ``title``.

    Raises:
        InputError: no panel has bins.
    """
    if not any(p.get("edges") for p in panels):
        raise InputError("No histogram has bins to plot.")
    fig, axes = _grid(len(panels), ncols, 5.0, 3.6)
    for ax, panel in zip(axes, panels, strict=True):
        edges = np.asarray(panel.get("edges") or [], dtype=float)
        for label, counts in panel.get("counts", {}).items():
            if len(edges) and len(counts):
                ax.stairs(np.asarray(counts, dtype=float), edges, lw=1.5, label=label)
        ax.set_xlabel(panel.get("xlabel", ""))
        ax.set_ylabel("structures")
        ax.set_title(panel.get("title", ""), fontsize=9)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def grouped_bars(panels: list[Mapping[str, Any]], *, title: str | None = None, ncols: int = 1) -> Figure:
    """Grouped bar charts: per panel, ``categories`` on the x axis and one bar per series (label -> values,
    None drawn as no bar), with ``ylabel`` and ``title``; ``hlines`` (label -> value) draws black reference
    lines (e.g. the paper's means) in turn dotted, dashed and dash-dotted; ``log`` a logarithmic y axis.

    Raises:
        InputError: no panel has a category.
    """
    if not any(p.get("categories") for p in panels):
        raise InputError("No bar chart has a category to plot.")
    widest = max(len(p.get("categories") or []) for p in panels)
    fig, axes = _grid(len(panels), ncols, max(6.0, 0.6 * widest + 2.0), 3.6)
    for ax, panel in zip(axes, panels, strict=True):
        categories = list(panel.get("categories") or [])
        series = panel.get("series", {})
        width = 0.8 / max(1, len(series))
        for i, (label, values) in enumerate(series.items()):
            heights = np.array([np.nan if v is None else v for v in values], dtype=float)
            ax.bar(
                np.arange(len(categories)) + (i - (len(series) - 1) / 2) * width, heights, width, label=label
            )
        for j, (label, value) in enumerate((panel.get("hlines") or {}).items()):
            if value is not None:
                ax.axhline(value, color="k", ls=(":", "--", "-.")[j % 3], lw=1.2, label=label)
        if panel.get("log"):
            ax.set_yscale("log")
        ax.set_xticks(
            range(len(categories)), categories, fontsize=8, rotation=45 if len(categories) > 8 else 0
        )
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.set_title(panel.get("title", ""), fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


#: the strongest lines labelled with their Miller indices on a structure card
CARD_LABELLED_PEAKS = 5


#: fractional coordinate below which an atom is also drawn on the opposite face, edge or corner of the cell
FACE_TOL = 1e-3


def _with_boundary_images(structure: Structure) -> Any:
    """ASE ``Atoms`` of the cell with the periodic images that lie on its faces, edges and corners added
    (a rock-salt cell shows its 27 atoms, as in a textbook), all coordinates wrapped into [0, 1]."""
    from itertools import product

    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    frac = atoms.get_scaled_positions(wrap=True) % 1.0
    frac[frac > 1.0 - FACE_TOL] = 0.0
    keep_numbers, keep_frac = [], []
    for z, f in zip(atoms.get_atomic_numbers(), frac, strict=True):
        on_face = f < FACE_TOL
        for shift in product((0, 1), repeat=3):
            if all(on_face[i] or not shift[i] for i in range(3)):
                keep_numbers.append(z)
                keep_frac.append(f + np.asarray(shift))
    shown = atoms[[0] * len(keep_numbers)]
    shown.set_atomic_numbers(keep_numbers)
    shown.set_scaled_positions(np.asarray(keep_frac))
    return shown


def _draw_cell(ax: Any, structure: Structure) -> None:
    """The cell of ``structure`` seen obliquely (periodic images on its faces, edges and corners drawn),
    atoms at 0.5 x covalent radius in jmol colours, one legend entry per element below it."""
    from ase.data import chemical_symbols, covalent_radii
    from ase.data.colors import jmol_colors
    from ase.visualize.plot import plot_atoms_raw
    from matplotlib.patches import Patch

    atoms = _with_boundary_images(structure)
    numbers = atoms.get_atomic_numbers()
    plot_atoms_raw(atoms, ax, rotation="-75x,10y,0z", radii=0.5 * covalent_radii[numbers], show_unit_cell=2)
    ax.set_axis_off()
    ax.set_aspect("equal")
    handles = [
        Patch(facecolor=jmol_colors[z], edgecolor="k", label=chemical_symbols[z])
        for z in dict.fromkeys(numbers.tolist())
    ]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncols=len(handles),
        fontsize=8,
        frameon=False,
        handlelength=1.0,
    )


def _draw_pattern(ax: Any, pattern: Pattern) -> None:
    from csp.structures.xrd import TWO_THETA

    ax.vlines(pattern.two_theta, 0.0, pattern.intensity, color="tab:blue", lw=1.2)
    for t, i, hkl in pattern.strongest(CARD_LABELLED_PEAKS):
        ax.annotate(
            f"({hkl})" if hkl else "",
            (t, i),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=7,
        )
    ax.set_xlim(*TWO_THETA)
    ax.set_ylim(0.0, 112.0)
    ax.set_xlabel("2θ (°), Cu Kα 1.54184 Å")
    ax.set_ylabel("intensity (strongest 100)")


def structure_card(
    structure: Structure, *, title: str | None = None, pattern: Pattern | None = None
) -> Figure:
    """What an experimentalist checks first, for one structure: its cell (left) and its simulated powder
    pattern (right: Cu K-alpha sticks, 2-theta 10-90 degrees, strongest line 100, the five strongest
    labelled with their Miller indices).

    Args:
        structure: the pymatgen ``Structure`` to draw (e.g. a result entry's symmetrised conventional cell).
        title: the figure title (default: reduced formula and detected space group).
        pattern: its pattern, when already simulated (default :func:`csp.structures.xrd.simulate`).

    Raises:
        InputError: an empty structure.
    """
    from matplotlib.figure import Figure

    from csp.structures.xrd import simulate

    if structure is None or len(structure) == 0:
        raise InputError("No atoms to draw: the structure is empty.")
    pattern = pattern if pattern is not None else simulate(structure)
    fig = Figure(figsize=(8.0, 3.4), layout="constrained")
    cell_ax, xrd_ax = fig.subplots(1, 2, width_ratios=[1.0, 1.6])
    _draw_cell(cell_ax, structure)
    _draw_pattern(xrd_ax, pattern)
    if title is None:
        from csp.structures.composition import reduced_formula
        from csp.structures.symmetry import analyze

        found = analyze(structure)
        title = (
            f"{reduced_formula(structure.composition)} {found.get_space_group_symbol()} "
            f"({found.get_space_group_number()})"
        )
    fig.suptitle(title, fontsize=10)
    return fig


def card_title(entry: Any) -> str:
    """The title of an entry's card: rank, formula, detected group, lattice and ΔE to rank 1, e.g.
    ``"rank 1: GaAs F-43m (216), a=5.744 Å, ΔE 0.0 meV/atom"``.

    ``entry`` is a :class:`csp.potentials.result.ResultEntry` (read by attribute: ``rank``, ``formula``,
    ``spacegroup_symbol``, ``spacegroup``, ``a``, ``b``, ``c``, ``delta_e_mev_per_atom``).
    """
    cell = (
        f"a={entry.a:.3f} Å"
        if abs(entry.a - entry.b) + abs(entry.a - entry.c) < 1e-3
        else (f"a, b, c={entry.a:.2f}, {entry.b:.2f}, {entry.c:.2f} Å")
    )
    delta = "" if entry.delta_e_mev_per_atom is None else f", ΔE {entry.delta_e_mev_per_atom:.1f} meV/atom"
    return f"rank {entry.rank}: {entry.formula} {entry.spacegroup_symbol} ({entry.spacegroup}), {cell}{delta}"


def result_cards(result: Any) -> list[Figure]:
    """One :func:`structure_card` per entry of a campaign result's top k, in rank order, titled by
    :func:`card_title`.

    Args:
        result: a :class:`csp.potentials.result.CampaignResult` (read by attribute: ``top``, whose entries
            carry ``structure``).

    Raises:
        InputError: the result has no entry (nothing scored yet).
    """
    if not result.top:
        raise InputError("The campaign has no scored structure yet: nothing to draw.")
    return [structure_card(e.structure, title=card_title(e)) for e in result.top]


def save(fig: Figure, path: Path | str, *, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG or SVG (by the suffix) and return the path.

    Raises:
        InputError: a suffix other than .png or .svg.
    """
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"Plots are written as .png or .svg, not {path.suffix or 'no suffix'!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format=path.suffix.lower().lstrip("."))
    return path


def png_bytes(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (e.g. for ``IPython.display.Image(data=...)`` in a notebook)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def png_base64(fig: Figure, *, dpi: int = 100) -> str:
    """The figure as a base64-encoded PNG."""
    return base64.b64encode(png_bytes(fig, dpi=dpi)).decode("ascii")


def markdown_image(fig: Figure, alt: str = "plot", *, dpi: int = 100) -> str:
    """Markdown image with the figure inlined as a data-URI PNG (renders offline, e.g. in Prefect)."""
    return f"![{alt}](data:image/png;base64,{png_base64(fig, dpi=dpi)})"
