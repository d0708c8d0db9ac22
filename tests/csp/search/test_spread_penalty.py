"""The spread penalty: FV = alpha (1 - P_syn) + (1 - alpha) sigmoid(mu + kappa sigma), kappa >= 0."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from csp.errors import InputError
from csp.search.fitness import (
    FV_PENALTY,
    fitness_value,
    pessimistic_enthalpy,
    sigmoid,
    validate_spread_penalty,
)
from csp.search.parameters import SearchParameters
from csp.search.two_stage import InMemorySink, SearchConfig, run_search
from tests.csp.search.test_two_stage import LennardJonesStandInScorer


class SpreadStandInScorer(LennardJonesStandInScorer):
    """TEST FIXTURE ONLY: the Lennard-Jones stand-in with an ensemble-like spread that is largest for the
    densest cells (as a model is unsure of compressed geometry it never saw; deterministic, no model)."""

    enthalpy_members = 5

    def enthalpy_with_spread(self, numbers, lattices, frac):
        volume = np.abs(np.linalg.det(lattices)) / len(numbers)
        return self.enthalpy(numbers, lattices, frac), 3.0 / volume


class OneMemberScorer(SpreadStandInScorer):
    enthalpy_members = 1


def config(**kw):
    base = {
        "strategy": "fixed",
        "crystal_system": "cubic",
        "outer_optimizer": "rs",
        "inner_optimizer": "rs",
        "outer_steps": 3,
        "inner_steps": 20,
        "batch_size": 10,
        "formula_units": (1, 2),
        "seed": 5,
        "refine": False,
        "gap_probes": 0,
    }
    return SearchConfig(**{**base, **kw})


def test_a_high_spread_candidate_ranks_below_an_equal_mean_low_spread_one():
    p, mu, sigma = np.array([0.6, 0.6]), np.array([-1.2, -1.2]), np.array([0.01, 0.4])
    fv0, _ = fitness_value(p, mu, 0.5, dhf_std_ev_per_atom=sigma)  # kappa 0: the paper's FV
    assert fv0[0] == fv0[1]
    fv, ok = fitness_value(p, mu, 0.5, dhf_std_ev_per_atom=sigma, spread_penalty=2.0)
    assert ok.all() and fv[0] < fv[1]  # lower is better: the unsure one ranks below
    np.testing.assert_allclose(fv, 0.5 * (1 - p) + 0.5 * sigmoid(mu + 2.0 * sigma))
    # alpha = 1 ignores the enthalpy, and so its spread
    assert np.ptp(fitness_value(p, mu, 1.0, dhf_std_ev_per_atom=sigma, spread_penalty=2.0)[0]) == 0


def test_the_pessimistic_enthalpy_and_what_counts_as_no_spread():
    mu = np.array([-1.0, -0.5, 0.2])
    np.testing.assert_allclose(pessimistic_enthalpy(mu, np.array([0.1, 0.0, 0.3]), 1.5), [-0.85, -0.5, 0.65])
    np.testing.assert_array_equal(pessimistic_enthalpy(mu, None, 3.0), mu)  # no spread known: 0
    np.testing.assert_array_equal(pessimistic_enthalpy(mu, np.full(3, np.nan), 0.0), mu)  # kappa 0: unused
    # with kappa > 0 a NaN or negative spread is a scorer fault: the candidate is invalid, never a bonus
    fv, ok = fitness_value(np.full(3, 0.5), mu, 0.5, dhf_std_ev_per_atom=np.array([0.1, np.nan, -0.2]),
                           spread_penalty=1.0)  # fmt: skip
    assert ok.tolist() == [True, False, False] and fv[1] == fv[2] == FV_PENALTY


@pytest.mark.parametrize("kappa", [float("nan"), -1, float("inf"), "a lot"])
def test_a_spread_penalty_that_is_not_finite_and_non_negative_is_refused(kappa):
    with pytest.raises(InputError, match=r"spread_penalty \(kappa\) must be a finite number >= 0"):
        validate_spread_penalty(kappa)
    with pytest.raises(ValidationError, match="spread_penalty"):
        SearchParameters(spread_penalty=kappa)
    with pytest.raises(InputError, match="finite number >= 0"):
        fitness_value(np.ones(1), np.zeros(1), 0.5, spread_penalty=kappa)
    assert (
        SearchParameters().spread_penalty == 0.0 and SearchParameters(spread_penalty=1).spread_penalty == 1.0
    )


def test_rows_carry_the_spread_and_kappa_zero_changes_nothing():
    plain, spread = InMemorySink(), InMemorySink()
    run_search("MgO", config(), LennardJonesStandInScorer(), plain, campaign_id="c")
    run_search("MgO", config(), SpreadStandInScorer(), spread, campaign_id="c")
    a, b = plain.history("c"), spread.history("c")
    assert [r["fitness"] for r in a] == [r["fitness"] for r in b]
    assert [r["dhf_pred_ev_per_atom"] for r in a] == [r["dhf_pred_ev_per_atom"] for r in b]
    assert all(r["dhf_pred_std_ev_per_atom"] is None for r in a)  # this scorer gives no spread
    for row in b:
        if row["valid"]:
            volume = abs(np.linalg.det(np.reshape(row["lattice"], (3, 3)))) / len(row["numbers"])
            assert row["dhf_pred_std_ev_per_atom"] == pytest.approx(3.0 / volume)
        else:
            assert row["dhf_pred_std_ev_per_atom"] is None


def test_with_kappa_each_family_keeps_its_best_pessimistic_enthalpy_and_its_fv_uses_it():
    kappa, alpha = 3.0, 0.5
    sink = InMemorySink()
    run_search("MgO", config(spread_penalty=kappa, alpha=alpha), SpreadStandInScorer(), sink, campaign_id="k")
    rows = sink.history("k")
    outer = [r for r in rows if r["stage"] == "outer" and r["valid"]]
    assert outer
    moved = 0
    for out in outer:
        inner = [
            r for r in rows if r["stage"] == "inner" and r["outer_step"] == out["outer_step"] and r["valid"]
        ]
        pen = [r["dhf_pred_ev_per_atom"] + kappa * r["dhf_pred_std_ev_per_atom"] for r in inner]
        lowest_mean = min(inner, key=lambda r: r["dhf_pred_ev_per_atom"])
        chosen = inner[int(np.argmin(pen))]
        assert out["x"] == chosen["x"]
        moved += chosen is not lowest_mean
        h = out["dhf_pred_ev_per_atom"] + kappa * out["dhf_pred_std_ev_per_atom"]
        assert out["fitness"] == pytest.approx(
            alpha * (1 - out["p_syn"]) + (1 - alpha) * sigmoid(np.array([h]))[0]
        )
    assert moved >= 1  # the penalty changed at least one family's choice


def test_kappa_above_zero_needs_an_enthalpy_ensemble():
    for scorer, message in (
        (LennardJonesStandInScorer(), "does not give"),
        (OneMemberScorer(), "has 1 member"),
    ):
        with pytest.raises(InputError, match=message):
            run_search("MgO", config(spread_penalty=0.5), scorer, InMemorySink(), campaign_id="x")
    run_search("MgO", config(spread_penalty=0.0, outer_steps=1), OneMemberScorer(), InMemorySink())
