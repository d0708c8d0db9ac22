"""Golden tests of the fixed-degree neighbour graphs on real structures."""

from __future__ import annotations

import numpy as np
import pytest

from csp.models.graphs import angle_cosines, build_graphs, build_graphs_same_species, rbf_expand
from csp.structures.crystal import Crystal
from tests.csp.models.model_fixtures import mp_crystals, needs_data, table1_crystal

pytestmark = needs_data
TOL = 1e-4  # Angstrom


def _lengths(g):
    return np.linalg.norm(g.bond_vectors, axis=-1)


def test_rock_salt_mgo_shells_and_tie_cut():
    c = table1_crystal("MgO")
    a = np.linalg.norm(c.lattice[0])
    g = build_graphs([c])
    assert g.neighbours.shape == (8, 12) and g.bond_vectors.shape == (8, 12, 3)
    d = _lengths(g)
    np.testing.assert_allclose(d[:, :6], a / 2, atol=TOL)  # 6 nearest at a/2
    np.testing.assert_allclose(d[:, 6:], a / np.sqrt(2), atol=TOL)  # 6 of the 12 at a/sqrt(2)
    species = g.numbers[g.neighbours]
    for i, z in enumerate(g.numbers):
        other = 8 if z == 12 else 12
        assert (species[i, :6] == other).all() and (species[i, 6:] == z).all()
    # octahedral first shell: partners of bond 0 within the shell have cosines 0 (x4) and -1 (x1)
    cos = angle_cosines(g.bond_vectors)
    first = np.sort(cos[0, 0, :5])
    np.testing.assert_allclose(first, [-1, 0, 0, 0, 0], atol=1e-5)
    # the tie rule keeps the same 6 second-shell directions for every atom (direction-ordered)
    np.testing.assert_allclose(g.bond_vectors[0], g.bond_vectors[1], atol=TOL)


def test_zincblende_gaas():
    c = table1_crystal("GaAs")
    a = np.linalg.norm(c.lattice[0])
    d = _lengths(build_graphs([c]))
    np.testing.assert_allclose(d[:, :4], a * np.sqrt(3) / 4, atol=TOL)
    np.testing.assert_allclose(d[:, 4:], a / np.sqrt(2), atol=TOL)
    cos = angle_cosines(build_graphs([c]).bond_vectors)
    np.testing.assert_allclose(cos[0, 0, :3], -1 / 3, atol=1e-5)  # tetrahedral angle


def test_perovskite_bazro3():
    c = table1_crystal("BaZrO3")
    a = np.linalg.norm(c.lattice[0])
    g = build_graphs([c])
    d = _lengths(g)
    z = g.numbers
    ba, zr = np.flatnonzero(z == 56)[0], np.flatnonzero(z == 40)[0]
    np.testing.assert_allclose(d[ba], a / np.sqrt(2), atol=TOL)  # 12 O
    np.testing.assert_allclose(d[zr, :6], a / 2, atol=TOL)  # 6 O, then 6 of 8 Ba
    np.testing.assert_allclose(d[zr, 6:], a * np.sqrt(3) / 2, atol=TOL)
    for o in np.flatnonzero(z == 8):
        np.testing.assert_allclose(d[o, :2], a / 2, atol=TOL)  # 2 Zr, then 10 of 4 Ba + 8 O
        np.testing.assert_allclose(d[o, 2:], a / np.sqrt(2), atol=TOL)


def test_low_symmetry_matches_pymatgen_distances():
    crystals, _, _ = mp_crystals()
    for c in crystals[:20]:
        g = build_graphs([c])
        s = c.to_pymatgen()
        for i in range(c.num_sites):
            ref = np.sort([n.nn_distance for n in s.get_neighbors(s[i], 9.0)])[:12]
            # equal within the 1e-3 A tie tolerance, our order is by direction: compare sorted
            np.testing.assert_allclose(np.sort(_lengths(g)[i]), ref, atol=TOL)
            assert np.abs(_lengths(g)[i] - ref).max() < 1e-3


@pytest.mark.parametrize("index", [0, 5, 17, 40])
def test_invariant_to_permutation_translation_and_cell_choice(index):
    crystals, _, _ = mp_crystals()
    for c in (crystals[index], table1_crystal("MgO")):
        base = build_graphs([c])
        rng = np.random.default_rng(index)
        perm = rng.permutation(c.num_sites)
        U = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1]])  # unimodular: same lattice, another cell
        same = np.arange(c.num_sites)
        shift = np.array([0.31, -0.2, 0.7])
        variants = [
            (Crystal(c.lattice, c.numbers[perm], c.frac_coords[perm]), perm),
            (Crystal(c.lattice, c.numbers, c.frac_coords + shift), same),
            (Crystal(U @ c.lattice, c.numbers, c.frac_coords @ np.linalg.inv(U)), same),
        ]
        for other, order in variants:
            g = build_graphs([other])
            np.testing.assert_allclose(g.bond_vectors, base.bond_vectors[order], atol=1e-4)
            np.testing.assert_array_equal(g.numbers[g.neighbours], base.numbers[base.neighbours][order])


def test_batches_mixed_sizes_and_same_species_fast_path():
    crystals, _, _ = mp_crystals()
    chosen = crystals[:30]
    g = build_graphs(chosen)
    assert g.num_crystals == 30 and g.natoms.sum() == len(g.numbers)
    assert (np.diff(g.crystal_index) >= 0).all()
    start = 0
    for i, c in enumerate(chosen):
        single = build_graphs([c])
        n = c.num_sites
        np.testing.assert_array_equal(g.neighbours[start : start + n] - start, single.neighbours)
        np.testing.assert_allclose(g.bond_vectors[start : start + n], single.bond_vectors)
        assert (g.crystal_index[start : start + n] == i).all()
        start += n
    mgo = table1_crystal("MgO")
    rng = np.random.default_rng(0)
    lattices = np.stack([mgo.lattice * s for s in (0.9, 1.0, 1.3)])
    frac = np.stack([mgo.frac_coords + rng.normal(0, 0.02, mgo.frac_coords.shape) for _ in range(3)])
    fast = build_graphs_same_species(lattices, frac, mgo.numbers)
    slow = build_graphs([Crystal(lat, mgo.numbers, f) for lat, f in zip(lattices, frac, strict=True)])
    np.testing.assert_array_equal(fast.neighbours, slow.neighbours)
    np.testing.assert_allclose(fast.bond_vectors, slow.bond_vectors, atol=1e-6)


def test_one_atom_cell_uses_self_images_and_sparse_cell_widens():
    sc = Crystal(np.eye(3) * 3.0, [84], [[0, 0, 0]])
    d = _lengths(build_graphs([sc]))
    np.testing.assert_allclose(d[0, :6], 3.0, atol=TOL)
    np.testing.assert_allclose(d[0, 6:], 3.0 * np.sqrt(2), atol=TOL)
    # 12th neighbour beyond the 8 A cutoff (9.92 A) but within what the models saw (csp.structures.validity)
    sparse = Crystal(np.diag([6.5, 7.0, 7.5]), [1], [[0.1, 0.2, 0.3]])
    d = _lengths(build_graphs([sparse]))
    np.testing.assert_allclose(d[0, :2], 6.5, atol=TOL)
    assert d[0, -1] > 8.0


def test_rbf_expansion_peaks_at_centres():
    phi = rbf_expand(np.array([0.0, 4.0, 8.0]), 0.0, 8.0, 80)
    assert phi.shape == (3, 80)
    assert phi[0].argmax() == 0 and phi[2].argmax() == 79
