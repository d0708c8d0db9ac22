"""Plots of a search history: real PNG/SVG files, the values they draw, and one-line refusals."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest

from csp import plots
from csp.errors import InputError
from storage.query import load_candidates
from tests.space_groups import from_spacegroup
from tests.storage.history_fixtures import make_history_lake

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    return make_history_lake(tmp_path_factory.mktemp("history") / "home")


@pytest.fixture(scope="module")
def rows(history):
    return load_candidates(home=history)


def test_convergence_curve_values(rows):
    curve = plots.convergence_curve(rows[rows["campaign_id"] == "hist-a"])
    assert list(curve["evaluations"]) == [3, 6]
    assert list(curve["best_fitness"]) == pytest.approx([0.07, 0.07])
    assert list(curve["seconds"]) == pytest.approx([1.7, 2.7])
    with pytest.raises(InputError, match="one campaign"):
        plots.convergence_curve(rows)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("convergence", {}),
        ("energy_distribution", {}),
        ("spacegroup_frequency", {}),
        ("psyn_vs_dhf", {"top_k": 1}),
    ],
)
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_each_plot_writes_a_real_image(rows, tmp_path, name, kwargs, suffix):
    one = rows[rows["campaign_id"] == "hist-a"]
    path = plots.save(getattr(plots, name)(one, **kwargs), tmp_path / f"{name}{suffix}")
    data = path.read_bytes()
    if suffix == ".png":
        assert data.startswith(PNG) and len(data) > 5000
    else:
        assert b"<svg" in data[:1000]


def test_optimizer_comparison_draws_one_line_per_campaign(rows, tmp_path):
    fig = plots.optimizer_comparison(rows, {"hist-a": "bo/pso", "hist-b": "rs/rs"})
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["bo/pso", "rs/rs"]
    plots.save(fig, tmp_path / "opt.png")


def test_psyn_vs_dhf_marks_the_top_k(rows):
    fig = plots.psyn_vs_dhf(rows[rows["campaign_id"] == "hist-a"], top_k=1)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["1: Fm-3m"]


def test_refined_plot_says_when_there_is_no_refinement(rows):
    with pytest.raises(InputError, match=r"No refined rows \(stage = 'refined'\).*run refinement first"):
        plots.refined_vs_unrefined(rows)


def test_refined_plot_with_refined_rows(rows, tmp_path):
    outer = rows[(rows["campaign_id"] == "hist-a") & (rows["stage"] == "outer")]
    refined = outer.assign(
        stage="refined",
        inner_step=-2,
        dhf_potential_initial_ev_per_atom=[-0.2, 0.5],
        dhf_potential_ev_per_atom=[-0.6, -0.1],
    )
    fig = plots.refined_vs_unrefined(pd.concat([rows, refined], ignore_index=True))
    assert len(fig.axes) == 2
    # the energy that ranks: the potential's, before (as found) and after relaxation
    x, y = fig.axes[0].collections[0].get_offsets().T
    assert list(x) == [-0.2, 0.5] and list(y) == [-0.6, -0.1]
    # beside it, the model's dHf of the search's structure
    x, y = fig.axes[1].collections[0].get_offsets().T
    assert list(x) == pytest.approx(list(outer["dhf_pred_ev_per_atom"])) and list(y) == [-0.6, -0.1]
    assert all(_inside(fig, t) for t in (fig._suptitle, *(ax.title for ax in fig.axes)))  # titles not cut
    plots.save(fig, tmp_path / "refined.png")


def test_empty_rows_and_bad_suffix_are_refused(rows, tmp_path):
    with pytest.raises(InputError, match="matched nothing"):
        plots.convergence(rows.iloc[0:0])
    with pytest.raises(InputError, match=r"\.png or \.svg"):
        plots.save(plots.energy_distribution(rows), tmp_path / "x.jpg")


def test_markdown_image_is_a_data_uri_png(rows):
    md = plots.markdown_image(plots.convergence(rows[rows["campaign_id"] == "hist-b"]), alt="c")
    assert md.startswith("![c](data:image/png;base64,")
    assert base64.b64decode(md.split(",", 1)[1].rstrip(")")).startswith(PNG)


def _outer_row(structure, step: int, fitness: float) -> dict:
    """An outer search row as the search writes it (lattice and coordinates flat)."""
    return {
        "stage": "outer",
        "outer_step": step,
        "inner_step": -1,
        "valid": True,
        "fitness": fitness,
        "dhf_pred_ev_per_atom": -3.0 + fitness,
        "p_syn": 0.9,
        "p_syn_std": 0.01,
        "lattice": structure.lattice.matrix.reshape(-1).tolist(),
        "numbers": [site.specie.Z for site in structure],
        "frac_coords": structure.frac_coords.reshape(-1).tolist(),
    }


@pytest.fixture(scope="module")
def small_result():
    """A campaign result made from three in-memory outer rows (rock salt, CsCl and a rock-salt twin)."""
    from pymatgen.core import Lattice

    from csp.potentials.result import campaign_result

    rs = from_spacegroup(225, Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5] * 3])
    cs = from_spacegroup(221, Lattice.cubic(2.60), ["Mg", "O"], [[0, 0, 0], [0.5] * 3])
    return campaign_result([_outer_row(rs, 0, 0.10), _outer_row(cs, 1, 0.30), _outer_row(rs, 2, 0.20)], k=3)


def _inside(fig, artist) -> bool:
    """True when ``artist`` is drawn wholly inside the figure (a title that is not cut)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    box, page = artist.get_window_extent(renderer), fig.bbox
    return box.x0 >= page.x0 and box.x1 <= page.x1 and box.y0 >= page.y0 and box.y1 <= page.y1


def test_result_cards_draw_each_entry_with_its_cell_and_pattern(small_result, tmp_path):
    from csp.structures.xrd import simulate

    assert [e.spacegroup for e in small_result.top] == [225, 221]  # the twin merged into rank 1
    figs = plots.result_cards(small_result)
    assert len(figs) == 2
    for fig, entry in zip(figs, small_result.top, strict=True):
        title = fig._suptitle
        assert title.get_text().startswith(
            f"rank {entry.rank}: MgO {entry.spacegroup_symbol} ({entry.spacegroup})"
        )
        assert _inside(fig, title)
        cell, xrd = fig.axes
        # the pattern panel holds the simulated Cu K-alpha sticks of the entry's structure, strongest 100
        pattern = simulate(entry.structure)
        (sticks,) = xrd.collections
        tops = np.array([seg[1] for seg in sticks.get_segments()])
        assert tops[:, 0] == pytest.approx(pattern.two_theta) and tops[:, 1].max() == pytest.approx(100.0)
        labels = [t.get_text() for t in xrd.texts]
        assert len(labels) == plots.CARD_LABELLED_PEAKS or len(labels) == len(pattern.two_theta)
        # the cell panel: one legend entry per element, one disc per drawn atom
        assert [t.get_text() for t in cell.get_legend().get_texts()] == ["Mg", "O"]
    assert "ΔE 0.0 meV/atom" in figs[0]._suptitle.get_text()
    assert "(200)" in [t.get_text() for t in figs[0].axes[1].texts]  # rock salt's strongest line
    path = plots.save(figs[0], tmp_path / "rank1.png")
    assert path.read_bytes().startswith(PNG)


def test_the_cell_drawing_shows_the_atoms_on_faces_edges_and_corners(small_result):
    rock_salt = small_result.top[0].structure
    assert len(rock_salt) == 8
    assert len(plots._with_boundary_images(rock_salt)) == 27  # 8 corners, 6 faces, 12 edges, 1 centre
    fig = plots.structure_card(rock_salt)
    assert len(fig.axes[0].patches) >= 27 and fig._suptitle.get_text() == "MgO Fm-3m (225)"


def test_cards_of_an_empty_result_are_refused():
    from csp.potentials.result import campaign_result

    with pytest.raises(InputError, match="no scored structure"):
        plots.result_cards(campaign_result([], k=3))


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("convergence", {}),
        ("energy_distribution", {}),
        ("spacegroup_frequency", {}),
        ("psyn_vs_dhf", {"top_k": 2}),
        (
            "optimizer_comparison",
            {"labels": {"hist-a": "MgO bo/pso (hist-a)", "hist-b": "MgO rs/rs (hist-b)"}},
        ),
    ],
)
def test_plot_titles_fit_in_the_figure(rows, name, kwargs):
    one = rows if name == "optimizer_comparison" else rows[rows["campaign_id"] == "hist-a"]
    fig = getattr(plots, name)(one, **kwargs)
    titles = [t for t in (fig._suptitle, *(ax.title for ax in fig.axes)) if t is not None and t.get_text()]
    assert titles
    assert all(_inside(fig, t) for t in titles), [t.get_text() for t in titles]


def test_report_figures_from_plain_numbers(tmp_path):
    parity = plots.parity_panels(
        [
            {"x": [0.0, 1.0], "y": [0.1, 0.9], "group": ["a", "b"], "title": "a", "note": "MAE 0.1"},
            {"x": [], "y": [], "title": "empty"},
        ]
    )
    bands = plots.band_panels(
        [{"series": {"rs": {"x": [1, 2], "mean": [0.5, None], "std": [0.1, None]}}, "xlabel": "evaluations"}]
    )
    hist = plots.histogram_panels([{"edges": [0, 1, 2], "counts": {"rs": [1, 2], "bo": [0, 3]}}])
    bars = plots.grouped_bars(
        [
            {
                "categories": ["MgO", "GaAs"],
                "series": {"dft": [1.0, None], "exp": [2.0, 0.5]},
                "hlines": {"paper": 2.5},
            }
        ]
    )
    for i, fig in enumerate((parity, bands, hist, bars)):
        path = plots.save(fig, tmp_path / f"f{i}.png")
        assert path.read_bytes()[:8] == PNG
    for draw, panel in (
        (plots.parity_panels, {"x": [], "y": []}),
        (plots.band_panels, {"series": {}}),
        (plots.histogram_panels, {"edges": []}),
        (plots.grouped_bars, {"categories": []}),
    ):
        with pytest.raises(InputError):
            draw([panel])
