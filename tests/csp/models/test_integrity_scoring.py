"""Issue 12, scoring side: true neighbour distances, geometry the models never saw, unseen elements, empties."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import csp.structures.validity
import storage.validation
from csp.errors import InputError
from csp.models.dataset import from_crystals
from csp.models.graphs import build_graphs, build_graphs_same_species
from csp.models.infer import Scorer, UnseenElementWarning, UnsupportedElementError
from csp.models.training._data import dataset_graphs
from csp.structures.crystal import Crystal
from csp.structures.validity import GeometryError, GeometryWarning

MODELS = Path(__file__).resolve().parents[3] / "onnx_models"
ROCKSALT = np.array([[0.0, 2.1, 2.1], [2.1, 0.0, 2.1], [2.1, 2.1, 0.0]])


def mgo(frac_o=(0.5, 0.5, 0.5)) -> Crystal:
    return Crystal(ROCKSALT, [12, 8], [[0, 0, 0], list(frac_o)])


def box(edge: float, z: int = 1) -> Crystal:
    return Crystal(np.eye(3) * edge, [z], [[0.0, 0.0, 0.0]])


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(dft=MODELS / "ALIGNN-DFT-2026.11-Eform", pu=MODELS / "ALIGNN-PU-2026.11-Psyn", threads=1)


def test_both_packages_state_the_same_physical_bounds() -> None:
    assert csp.structures.validity.MIN_DISTANCE_ANGSTROM == storage.validation.MIN_DISTANCE_ANGSTROM == 0.5
    assert csp.structures.validity.MAX_VACUUM_ANGSTROM == storage.validation.MAX_VACUUM_ANGSTROM
    # the packed sort key of the graph builder is exact below 32.767 A: the bound must stay under it
    assert csp.structures.validity.MAX_KTH_NEIGHBOUR_ANGSTROM < 32.0


# --- true distances -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edge", "kth"),
    [(25.0, 25.0 * np.sqrt(2)), (33.0, 33.0 * np.sqrt(2)), (100.0, 100.0 * np.sqrt(2))],
)
def test_an_atom_in_a_big_box_is_refused_with_its_true_12th_neighbour_distance(
    edge: float, kth: float
) -> None:
    # one atom in a cube: 6 images at edge, then 12 at edge * sqrt(2); the 12th neighbour is at edge * sqrt(2)
    with pytest.raises(GeometryError) as info:
        build_graphs([box(edge)])
    assert info.value.index == 0
    assert f"the 12th nearest neighbour lies {kth:.1f} A away" in str(info.value)


def test_the_largest_cell_under_the_bound_still_gets_exact_neighbours() -> None:
    edge = 7.5  # 12th neighbour at 10.61 A, under the 11 A bound
    g = build_graphs([box(edge)])
    d = np.linalg.norm(g.bond_vectors[0], axis=-1)
    np.testing.assert_allclose(d[:6], edge, atol=1e-3)
    np.testing.assert_allclose(d[6:], edge * np.sqrt(2), atol=1e-3)


def test_overlapping_atoms_are_refused_wherever_graphs_are_built() -> None:
    with pytest.raises(
        GeometryError, match=r"crystal 1 of the batch: atoms too close: Mg-O 0.000 A < 1.0\d\d A"
    ):
        build_graphs([mgo(), mgo((0, 0, 0))])
    lattices = np.stack([ROCKSALT, ROCKSALT])
    frac = np.array([[[0, 0, 0], [0.5, 0.5, 0.5]], [[0, 0, 0], [0.01, 0, 0]]])
    with pytest.raises(
        GeometryError, match=r"crystal 1 of the batch: atoms too close: Mg-O 0.0\d\d A < 1.0\d\d A"
    ):
        build_graphs_same_species(lattices, frac, [12, 8])


def test_scorer_refuses_overlaps_naming_the_structure(scorer: Scorer) -> None:
    with pytest.raises(GeometryError) as info:
        scorer.score([mgo(), mgo((0, 0, 0))], ids=["mgo-ok", "mgo-one-site"])
    assert str(info.value).startswith("structure mgo-one-site: atoms too close: Mg-O 0.000 A < 1.055 A")
    assert isinstance(info.value, InputError)


def test_scorer_refuses_an_isolated_atom(scorer: Scorer) -> None:
    with (
        pytest.raises(GeometryError, match=r"crystal 0 of the batch: the 12th nearest neighbour lies 35.4 A"),
        pytest.warns(GeometryWarning, match="an empty slab 25.0 A thick"),
    ):
        scorer.score([box(25.0)])


def test_scorer_flags_a_layer_in_vacuum(scorer: Scorer) -> None:
    a = 2.46
    lat = np.array([[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, 40.0]])
    graphene = Crystal(lat, [6, 6], [[0, 0, 0.5], [1 / 3, 2 / 3, 0.5]])
    with pytest.warns(GeometryWarning, match=r"crystal 0 of the batch: an empty slab 40.0 A thick"):
        scores = scorer.score([graphene])
    assert np.isfinite(scores.dhf_dft).all()


def test_training_names_the_offending_structure() -> None:
    arrays = from_crystals([mgo(), box(30.0)], [-3.0, 0.0], ids=["mp:mgo", "user:h-in-a-box"])
    with pytest.raises(GeometryError) as info:
        dataset_graphs(arrays)
    assert str(info.value).startswith(
        "structure user:h-in-a-box: the 12th nearest neighbour lies 42.4 A away"
    )


# --- empty batches ------------------------------------------------------------------------------------


def test_empty_in_empty_out(scorer: Scorer) -> None:
    scores = scorer.score([])
    assert scores.dhf_dft.shape == (0,) and scores.p_syn.shape == (0,) and scores.p_syn_std.shape == (0,)
    assert scores.dhf_exp is None  # not configured
    same = scorer.score_same_species(np.zeros((0, 3, 3)), np.zeros((0, 2, 3)), [12, 8])
    assert same.dhf_dft.shape == (0,) and same.p_syn.shape == (0,)
    only = scorer.score_same_species(np.zeros((0, 3, 3)), np.zeros((0, 2, 3)), [12, 8], include=["dft"])
    assert only.dhf_dft.shape == (0,) and only.p_syn is None
    g = build_graphs([])
    assert g.neighbours.shape == (0, 12) and g.bond_vectors.shape == (0, 12, 3) and g.num_crystals == 0


# --- elements with no training rows -------------------------------------------------------------------


@pytest.mark.parametrize(("z", "symbol"), [(87, "Fr"), (88, "Ra"), (18, "Ar")])
def test_elements_without_training_rows_are_refused(scorer: Scorer, z: int, symbol: str) -> None:
    crystal = Crystal(ROCKSALT, [z, 17], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(UnsupportedElementError, match=rf"has no training rows containing {symbol} \({z}\)"):
        scorer.score([crystal])


def test_unseen_elements_score_with_a_warning_when_allowed() -> None:
    lenient = Scorer(dft=MODELS / "ALIGNN-DFT-2026.11-Eform", threads=1, allow_unseen_elements=True)
    crystal = Crystal(ROCKSALT * 1.6, [87, 17], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.warns(UnseenElementWarning, match=r"no training rows containing Fr \(87\)"):
        scores = lenient.score([crystal])
    assert scores.dhf_dft.shape == (1,)


def test_seen_elements_score_silently(scorer: Scorer) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = scorer.score([mgo()])
    assert scores.dhf_dft.shape == (1,)
    assert scorer.models["dft"].training_rows(12) > 1000 and scorer.models["dft"].training_rows(87) == 0
