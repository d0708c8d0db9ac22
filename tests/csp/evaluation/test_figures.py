"""The data of Figs. 2-4 from plain numbers: metrics, bands over seeds, first hits, histograms, means."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from csp.evaluation.figures import (
    band,
    fig4_summary,
    first_hit,
    histograms,
    parity,
    search_curve,
    tried_energies,
)


def test_parity_metrics():
    m = parity([1.0, 2.0, 4.0], [1.0, 3.0, 3.0])
    assert m["n"] == 3 and m["mae"] == pytest.approx(2 / 3) and m["rmse"] == pytest.approx(np.sqrt(2 / 3))
    assert m["r2"] == pytest.approx(1 - 2 / (np.var([1, 3, 3]) * 3))
    assert parity([], [])["mae"] is None


def trace() -> pd.DataFrame:
    rows = []
    for step, fitness in enumerate([0.5, 0.3, 0.4]):
        for inner in range(2):
            rows.append(
                {
                    "campaign_id": "c",
                    "stage": "inner",
                    "outer_step": step,
                    "inner_step": inner,
                    "spacegroup": 225,
                    "dhf_pred_ev_per_atom": -1.0 - step,
                    "fitness": None,
                    "valid": inner == 0,
                    "seconds": step + 0.5 * inner,
                }
            )
        rows.append(
            {
                "campaign_id": "c",
                "stage": "outer",
                "outer_step": step,
                "inner_step": -1,
                "spacegroup": 225,
                "dhf_pred_ev_per_atom": -1.0 - step,
                "fitness": fitness,
                "valid": True,
                "seconds": step + 1.0,
            }
        )
    return pd.DataFrame(rows)


def test_search_curve_first_hit_and_energies_of_a_trace():
    t = trace()
    curve = search_curve(t)
    assert curve["evaluations"] == [2, 4, 6] and curve["best_fitness"] == [0.5, 0.3, 0.3]
    rows = [
        {"outer_step": 1, "inner_step": 0, "seconds": 1.0, "ok": False},
        {"outer_step": 2, "inner_step": 1, "seconds": 2.5, "ok": True},
    ]
    hit = first_hit(t, rows, lambda r: r["ok"])
    assert hit["evaluations"] == 6 and hit["seconds"] == 2.5 and hit["outer_step"] == 2
    assert first_hit(t, rows, lambda r: False) is None
    assert tried_energies(t) == [-1.0, -2.0, -3.0]


def test_band_is_the_mean_and_spread_of_step_curves_over_the_common_range():
    a = {"evaluations": [10, 20], "seconds": [1.0, 2.0], "best_fitness": [1.0, 0.5]}
    b = {"evaluations": [10, 30], "seconds": [1.0, 3.0], "best_fitness": [0.8, 0.2]}
    out = band([a, b], "evaluations", points=3)
    assert out["x"] == [10.0, 15.0, 20.0]
    assert out["mean"] == pytest.approx([0.9, 0.9, 0.65])
    assert out["std"] == pytest.approx([0.1, 0.1, 0.15])
    assert band([], "seconds") == {"x": [], "mean": [], "std": []}


def test_histograms_share_their_edges():
    h = histograms({"rs": [0.0, 1.0, 1.0], "bo": [2.0], "none": []}, bins=2)
    assert h["edges"] == [0.0, 1.0, 2.0]
    assert h["counts"] == {"rs": [1, 2], "bo": [0, 1], "none": [0, 0]}
    assert h["stats"]["rs"]["n"] == 3 and h["stats"]["none"] == {"n": 0}


def test_fig4_means_with_and_without_the_compounds_the_paper_left_out():
    rows = [
        {"formula": "MgO", "model": "exp", "stage": "search", "lattice_error_pct": 1.0, "dhf_error_pct": 4.0},
        {"formula": "MgO", "model": "exp", "stage": "search", "lattice_error_pct": 3.0, "dhf_error_pct": 6.0},
        {
            "formula": "SrCu",
            "model": "exp",
            "stage": "search",
            "lattice_error_pct": None,
            "dhf_error_pct": 900.0,
        },
    ]
    out = fig4_summary(rows, left_out=["SrCu"])
    assert out["per_compound"]["MgO"]["exp/search"] == {
        "lattice_error_pct": 2.0,
        "dhf_error_pct": 5.0,
        "seeds": 2,
    }
    means = out["means"]["exp/search"]
    assert means["compounds"] == 2 and means["dhf_error_pct"] == pytest.approx(452.5)
    assert means["compounds_paper_set"] == 1 and means["dhf_error_pct_paper_set"] == 5.0
    assert means["lattice_error_pct"] == 2.0


def test_the_baseline_is_sized_and_resized_to_equal_wall_time():
    from csp.evaluation.plan import baseline_structures, needs_rescale

    assert baseline_structures(60.0, 30.0, 3) == 6  # 10 s per structure
    assert baseline_structures(60.0, 0.0, 0) == 1
    assert (
        not needs_rescale(60.0, 70.0, 0.2)
        and needs_rescale(60.0, 80.0, 0.2)
        and needs_rescale(60.0, 40.0, 0.2)
    )
    assert not needs_rescale(60.0, None, 0.2)
