"""Plots of a search history: real PNG/SVG files, the values they draw, and one-line refusals."""

from __future__ import annotations

import base64

import pandas as pd
import pytest

from csp import plots
from csp.errors import InputError
from storage.query import load_candidates
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
