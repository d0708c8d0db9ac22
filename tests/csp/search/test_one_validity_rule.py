"""Issue 22, item 1: one distance rule for the search and the scorer; a crystal the models cannot score is an
invalid row with its reason, never an exception that ends (or blocks the resume of) a campaign."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from csp.models.graphs import build_graphs_same_species
from csp.models.scoring import load_scorer
from csp.search.generate import build_template, check_validity, enumerate_families
from csp.search.two_stage import InMemorySink, SearchConfig, run_search
from csp.structures.composition import parse_composition
from csp.structures.validity import GeometryError, distance_limits
from tests.csp.search.test_two_stage import DyingSink, LennardJonesStandInScorer

MODELS = Path(__file__).resolve().parents[3] / "onnx_models"


def test_the_rule_is_half_the_covalent_radius_sum_with_a_half_angstrom_floor():
    limits = distance_limits(np.array([1, 8, 55]))
    # H-H: 0.5 x (0.31 + 0.31) = 0.31 A, lifted to the 0.5 A floor; O-O 0.5 x 1.40; Cs-Cs 0.5 x 4.88
    np.testing.assert_allclose(limits, [[0.5, 0.505, 1.375], [0.505, 0.70, 1.57], [1.375, 1.57, 2.44]])
    assert distance_limits(np.array(1), np.array(1)) == 0.5
    assert distance_limits(np.array([119]))[0, 0] == 0.5  # no tabulated radius: the floor alone


def test_the_rule_s_radii_are_the_element_table_s_and_need_no_pyxtal():
    import subprocess
    import sys

    from csp.structures.elements import covalent_radius
    from csp.structures.validity import _COVALENT_RADII

    np.testing.assert_array_equal(_COVALENT_RADII[1:], covalent_radius(np.arange(1, 97)))
    # graph building runs on a machine without pyxtal: the rule must not import it
    code = "import csp.structures.validity as v, numpy as np, sys; v.distance_limits(np.array([1, 8])); "
    code += "print('pyxtal' in sys.modules)"
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.strip() == "False"


def test_the_generator_refuses_two_hydrogens_the_scorer_would_refuse():
    lattice = np.eye(3)[None] * 6.0
    numbers = np.array([3, 1, 1])
    for gap, ok in ((0.40, False), (0.49, False), (0.51, True)):  # the old rule accepted 0.31 A and up
        frac = np.array([[[0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [gap / 6.0, 0.0, 0.0]]])
        valid, reasons = check_validity(
            lattice, frac, numbers, reference_volume=float(np.linalg.det(lattice[0]))
        )
        assert bool(valid[0]) is ok, reasons
        if not ok:
            assert reasons[0] == f"atoms too close: H-H {gap:.3f} A < 0.500 A"


@pytest.mark.parametrize("formula", ["LiH", "SmH2", "H2O", "NH3", "CH4", "LiAlH4", "HoHSe"])
def test_every_candidate_the_generator_accepts_the_graph_builder_accepts(formula):
    rng = np.random.default_rng(22)
    families = enumerate_families(
        parse_composition(formula), [1, 2], [1, 2, 14, 62, 139, 166, 186, 194, 216, 225], rng, max_per_group=2
    )
    assert families
    accepted = 0
    for family in families:
        template = build_template(family)
        batch = template.build(rng.random((64, template.dim)))
        valid, _ = check_validity(
            batch.lattices, batch.frac_coords, batch.numbers, reference_volume=template.reference_volume
        )
        if valid.any():  # raises GeometryError if the scorer would refuse one of them
            build_graphs_same_species(batch.lattices[valid], batch.frac_coords[valid], batch.numbers)
        accepted += int(valid.sum())
    assert accepted > 0


class RefusingScorer(LennardJonesStandInScorer):
    """TEST FIXTURE ONLY: the stand-in scorer, refusing (as the ONNX scorer does, with GeometryError and the
    crystal's position) every cell whose first lattice vector is longer than ``max_a`` Angstrom."""

    def __init__(self, max_a: float):
        super().__init__()
        self.max_a = max_a
        self.refused = 0

    def enthalpy(self, numbers, lattices, frac):
        long = np.flatnonzero(np.linalg.norm(lattices[:, 0], axis=1) > self.max_a)
        if len(long):
            self.refused += 1
            raise GeometryError(
                "the 12th nearest neighbour lies 12.0 A away (test refusal)", index=int(long[0])
            )
        return super().enthalpy(numbers, lattices, frac)


def config(**kw):
    base = dict(strategy="fixed", crystal_system="cubic", outer_optimizer="rs", inner_optimizer="rs")
    base |= dict(outer_steps=4, inner_steps=40, batch_size=20, formula_units=(1, 2), seed=5)
    return SearchConfig(**(base | kw))


def test_a_batch_with_unscoreable_crystals_scores_the_rest_and_marks_them():
    sink, scorer = InMemorySink(), RefusingScorer(max_a=3.0)
    result = run_search("MgO", config(), scorer, sink, campaign_id="r")
    rows = [r for r in sink.history("r") if r["stage"] == "inner"]
    assert len(rows) == 4 * 40 and len(result.outer_rows) == 4
    long = [
        r
        for r in rows
        if np.linalg.norm(r["lattice"][:3]) > 3.0 and not r["reject_reason"].startswith("atoms")
    ]
    refused = [r for r in rows if r["reject_reason"].startswith("the models cannot score it")]
    assert scorer.refused > 0 and refused
    # exactly the long cells that met the constraints are refused, each with the scorer's reason and no enthalpy
    assert {(r["outer_step"], r["inner_step"]) for r in refused} == {
        (r["outer_step"], r["inner_step"])
        for r in long
        if not r["reject_reason"].startswith(("volume", "cell"))
    }
    assert all(not r["valid"] and r["dhf_pred_ev_per_atom"] is None for r in refused)
    assert refused[0]["reject_reason"] == (
        "the models cannot score it: the 12th nearest neighbour lies 12.0 A away (test refusal)"
    )
    short = [r for r in rows if np.linalg.norm(r["lattice"][:3]) <= 3.0 and r["reject_reason"] == ""]
    assert short and all(r["valid"] and r["dhf_pred_ev_per_atom"] is not None for r in short)
    assert result.reject_reasons["the models cannot score it"] == len(refused)


@pytest.fixture(scope="module")
def whole_campaign():
    """The campaign run without a stop (the same for every stop point: one seed, one scorer), run once."""
    whole = InMemorySink()
    run_search("MgO", config(), RefusingScorer(max_a=3.0), whole, campaign_id="r")
    return whole


@pytest.mark.parametrize("die_after", [0, 1, 2, 3])
def test_a_campaign_stopped_in_any_family_resumes_past_unscoreable_rows(die_after, whole_campaign):
    whole = whole_campaign
    sink = DyingSink(die_after)
    with pytest.raises(KeyboardInterrupt):
        run_search("MgO", config(), RefusingScorer(max_a=3.0), sink, campaign_id="r")
    sink.die_after = 10**6
    result = run_search("MgO", config(), RefusingScorer(max_a=3.0), sink, campaign_id="r")
    assert len(result.outer_rows) == 4

    def key(r):
        return (r["outer_step"], r["inner_step"])

    got = {key(r): (r["valid"], r["reject_reason"], r["dhf_pred_ev_per_atom"]) for r in sink.history("r")}
    want = {key(r): (r["valid"], r["reject_reason"], r["dhf_pred_ev_per_atom"]) for r in whole.history("r")}
    assert got == want
    assert any(reason.startswith("the models cannot score it") for _, reason, _ in got.values())


@pytest.fixture(scope="module")
def shipped_scorer():
    return load_scorer(MODELS, dhf_source="exp", threads=1)


@pytest.mark.parametrize(("formula", "system"), [("LiH", "cubic"), ("SmH2", "cubic"), ("H2O", "hexagonal")])
def test_hydride_searches_on_the_shipped_models_run_to_the_end(shipped_scorer, formula, system):
    # before issue 22 each of these raised GeometryError (two H 0.31 A apart) in its first family
    cfg = config(crystal_system=system, outer_steps=3, inner_steps=40, seed=1)
    sink = InMemorySink()
    result = run_search(formula, cfg, shipped_scorer, sink, campaign_id=formula)
    rows = sink.history(formula)
    assert len(result.outer_rows) == 3 and len(rows) == 3 * 41
    assert any(r["valid"] for r in result.outer_rows)
    assert not any(r["reject_reason"].startswith("the models cannot score it") for r in rows)
