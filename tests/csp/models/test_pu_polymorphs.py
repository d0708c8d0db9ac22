"""PU sets that teach structure: composition keys, siblings in every bag, the polymorph-discrimination metric."""

from __future__ import annotations

import numpy as np
import pytest

from csp.errors import InputError
from csp.models.dataset import from_crystals
from csp.models.pu_polymorphs import (
    composition_keys,
    polymorph_discrimination,
    sibling_rows,
    with_hypothetical_polymorphs,
)
from csp.models.training import bag_masks
from csp.structures.crystal import Crystal


def rock_salt(a: float, z=(11, 17), conventional: bool = False) -> Crystal:
    if not conventional:
        lattice = 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
        return Crystal(lattice, np.array(z), np.array([[0, 0, 0], [0.5, 0.5, 0.5]]))
    corners = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    frac = np.vstack([corners, corners + np.array([0.5, 0, 0])]) % 1.0
    return Crystal(a * np.eye(3), np.repeat(np.array(z), 4), frac)


def cesium_chloride(a: float, z=(11, 17)) -> Crystal:
    return Crystal(a * np.eye(3), np.array(z), np.array([[0, 0, 0], [0.5, 0.5, 0.5]]))


def zinc_blende(a: float, z=(11, 17)) -> Crystal:
    lattice = 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    return Crystal(lattice, np.array(z), np.array([[0, 0, 0], [0.25, 0.25, 0.25]]))


def test_composition_keys_ignore_the_number_of_formula_units():
    arrays = from_crystals(
        [rock_salt(5.6), rock_salt(5.6, conventional=True), rock_salt(4.2, (12, 8))], [1, 0, 0]
    )
    keys = composition_keys(arrays)
    assert keys[0] == keys[1] == "11:1 17:1" and keys[2] == "8:1 12:1"


def test_siblings_are_the_unlabeled_rows_of_positive_compositions_and_fill_every_bag():
    labels = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    keys = np.array(["A", "A", "A", "B", "C", "C", "D", "D", "D", "D"])
    siblings = sibling_rows(labels, keys)
    assert siblings.tolist() == [False, True, True, False] + [False] * 6
    masks = bag_masks(labels, 5, np.random.default_rng(0), always=siblings)
    assert masks[labels == 1].all() and masks[siblings].all()  # positives and siblings in every bag
    # the bags stay balanced: as many unlabeled rows as positives, the siblings counted among them
    assert (masks[labels == 0].sum(axis=0) == 2).all()
    assert not masks[4:].any()  # nothing else is drawn when the siblings already balance the bag
    with pytest.raises(InputError, match="unlabeled rows only"):
        bag_masks(labels, 2, np.random.default_rng(0), always=labels == 1)
    with pytest.raises(InputError, match="differ in length"):
        sibling_rows(labels, keys[:3])


def test_polymorph_discrimination_counts_compositions_with_a_positive_and_siblings():
    keys = np.array(["A", "A", "A", "B", "B", "C", "D", "D"])
    labels = np.array([1, 0, 0, 1, 0, 1, 0, 0])
    source = np.array([0, 1, 0, 0, 1, 0, 1, 1])
    # A: the positive (0.9) beats 0.5 and 0.2; B: the sibling ties the positive (a tie is wrong);
    # C has no sibling and D no positive: neither counts
    p_syn = np.array([0.9, 0.5, 0.2, 0.7, 0.7, 0.1, 0.99, 0.3])
    out = polymorph_discrimination(p_syn, labels, keys, source=source, source_names=["dft", "chgnet"])
    assert out["compositions"] == 2 and out["positive_highest"] == 0.5
    assert out["random_baseline"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert out["per_sibling_source"] == {
        "dft": {"compositions": 1, "positive_highest": 1.0},
        "chgnet": {"compositions": 2, "positive_highest": 0.5},
    }
    empty = polymorph_discrimination(np.zeros(2), np.array([1, 1]), np.array(["A", "B"]))
    assert empty == {"compositions": 0, "positive_highest": None, "random_baseline": None}
    with pytest.raises(InputError, match="one value per structure"):
        polymorph_discrimination(p_syn[:3], labels, keys)


def test_merge_keeps_distinct_siblings_and_drops_the_positives_own_structure():
    base = from_crystals(
        [rock_salt(5.64), cesium_chloride(3.4), rock_salt(4.2, (12, 8))],
        [1, 0, 1],
        source=["icsd", "dft", "icsd"],
        ids=["icsd:NaCl", "dft:NaCl-B2", "icsd:MgO"],
    )
    hypothetical = from_crystals(
        [
            zinc_blende(6.1),  # a sibling
            zinc_blende(6.1, (17, 11)),  # the same zinc blende, decorated the other way round
            rock_salt(5.75, conventional=True),  # the positive's own structure (relaxed, a larger cell)
            rock_salt(4.3, (12, 8)),  # MgO's own structure
        ],
        [0, 0, 0, 0],
        source="chgnet",
        ids=["zb-1", "zb-2", "rs-1", "mgo-rs"],
    )
    merged, report = with_hypothetical_polymorphs(base, hypothetical, prototypes=["B3", "B3", "B1", "B1"])
    assert merged.ids.tolist() == ["icsd:NaCl", "dft:NaCl-B2", "icsd:MgO", "zb-1"]
    assert report["hypothetical_distinct"] == 3 and report["hypothetical_added"] == 1
    assert report["unlabeled_matching_a_positive"] == {"chgnet": 2}
    assert report["compositions_with_siblings"]["train"] == 1  # NaCl: its B2 and B3 siblings
    assert report["per_source"] == {"chgnet": 1, "dft": 1, "icsd": 2}
    with pytest.raises(InputError, match="every target must be 0"):
        with_hypothetical_polymorphs(base, base, prototypes=["x"] * 3)
    with pytest.raises(InputError, match="prototype labels"):
        with_hypothetical_polymorphs(base, hypothetical, prototypes=["x"])
