"""``csp plot convergence|energies|spacegroups|psyn-dhf|optimizers|refined|structures``: matplotlib plots.

Thin face over :mod:`storage.query` (the rows), :func:`flows.results.result_of` (the one campaign result)
and :mod:`csp.plots` (the figures); PNG or SVG by the suffix of ``--out`` (``structures``: by ``--format``,
one file per entry in the folder ``--out``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from flows.cli._common import console
from flows.cli._options import number_option, output_option
from flows.cli.candidates import fail_one_line, history_errors
from flows.settings import lake as current_lake

plot_app = typer.Typer(
    help="Plots of search histories (PNG or SVG by the --out suffix).", no_args_is_help=True
)


def _plot(kind: str, campaigns: list[str], out: Path, **kwargs: Any) -> None:
    import pandas as pd

    from csp import plots
    from storage.query import load_campaign, load_candidates

    try:
        if out.suffix.lower() not in (".png", ".svg"):
            fail_one_line(f"--out must end in .png or .svg, not {out.name!r}.")
        frames = []
        labels = {}
        for cid in campaigns:
            meta = load_campaign(cid, home=current_lake())
            p = meta["parameters"]
            labels[cid] = (
                f"{p.get('outer_optimizer')}/{p.get('inner_optimizer')} seed {p.get('seed')} ({cid})"
            )
            frames.append(load_candidates(campaign=cid, home=current_lake()))
        df = pd.concat(frames, ignore_index=True)
        if kind == "optimizers":
            fig = plots.optimizer_comparison(df, labels)
        else:
            fig = getattr(plots, kind)(df, **kwargs)
        path = plots.save(fig, out)
    except history_errors() as exc:
        fail_one_line(exc)
    console.print(f"wrote {path}")


Campaign = Annotated[str, typer.Argument(help="Campaign id.")]
Out = Annotated[Path, output_option("Image file: .png or .svg.", "file")]


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
    campaign: Campaign, out: Out, top_k: Annotated[int, number_option("Marked best.", low=1)] = 5
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


@plot_app.command("structures")
def plot_structures(
    campaign: Campaign,
    out: Annotated[
        Path, output_option("Folder for the images, one <campaign>-rank<N> file per entry.", "folder")
    ],
    top_k: Annotated[int | None, number_option("Entries (default: the campaign's top_k).", low=1)] = None,
    fmt: Annotated[Literal["png", "svg"], typer.Option("--format", help="png or svg.")] = "png",
) -> None:
    """For each entry of the campaign result (the top k of `csp campaign show`): its cell and its
    simulated powder pattern (Cu K-alpha, strongest lines indexed)."""
    from csp import plots
    from flows.results import NoCampaignError, result_of

    try:
        result = result_of(current_lake(), campaign, k=top_k)
        figures = plots.result_cards(result)
        paths = [
            plots.save(fig, out / f"{campaign}-rank{entry.rank}.{fmt}")
            for fig, entry in zip(figures, result.top, strict=True)
        ]
    except (*history_errors(), NoCampaignError, ValueError) as exc:
        fail_one_line(exc)
    for path in paths:
        console.print(f"wrote {path}", highlight=False)
    console.print(f"ranked by {result.rank_rule}", highlight=False)
