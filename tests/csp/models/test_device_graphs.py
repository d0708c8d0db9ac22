"""The torch graph builder (run here on the CPU, the code a GPU runs) gives the numpy builder's graphs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csp.models.device_graphs import (
    DeviceGraphs,
    angle_cosines,
    build_device_graphs,
    build_device_graphs_same_species,
)
from csp.models.graphs import angle_cosines as numpy_angle_cosines
from csp.models.graphs import build_graphs, build_graphs_same_species
from csp.structures.crystal import Crystal
from csp.structures.validity import GeometryError
from tests.csp.models.model_fixtures import mp_crystals, needs_data, table1_crystal

TOL = 1e-5  # Angstrom: float32 bond vectors


def _same(device: DeviceGraphs, reference) -> None:
    """Edges, crystal layout and bond vectors equal; bond lengths and angle cosines equal."""
    got = device.numpy()
    np.testing.assert_array_equal(got.numbers, reference.numbers)
    np.testing.assert_array_equal(got.crystal_index, reference.crystal_index)
    np.testing.assert_array_equal(got.natoms, reference.natoms)
    np.testing.assert_array_equal(got.neighbours, reference.neighbours)
    assert got.bond_vectors.dtype == np.float32
    np.testing.assert_allclose(got.bond_vectors, reference.bond_vectors, atol=TOL, rtol=0)
    np.testing.assert_allclose(
        np.linalg.norm(got.bond_vectors, axis=-1), np.linalg.norm(reference.bond_vectors, axis=-1), atol=TOL
    )
    cos = angle_cosines(device.bond_vectors.double()).numpy()
    np.testing.assert_allclose(cos, numpy_angle_cosines(reference.bond_vectors), atol=1e-6)


def _synthetic() -> list[Crystal]:
    """Tiny cells whose neighbours are mostly periodic images, a triclinic cell and a skewed one."""
    rng = np.random.default_rng(7)
    fcc = 3.6 / 2 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])  # 1 atom: its 12 neighbours are its images
    cells = [
        Crystal(fcc, [29], [[0, 0, 0]]),
        Crystal(np.eye(3) * 2.9, [26], [[0, 0, 0]]),  # simple cubic, 1 atom: 6 + 6 of the 12 at a sqrt 2
        Crystal(np.eye(3) * 3.2, [55, 17], [[0, 0, 0], [0.5, 0.5, 0.5]]),  # CsCl, 2 atoms
        Crystal(
            # triclinic (a, b, c and every angle different), four atoms
            [[4.1, 0.0, 0.0], [0.9, 4.6, 0.0], [-0.7, 1.1, 5.3]],
            [8, 8, 12, 14],
            [[0.05, 0.1, 0.2], [0.55, 0.4, 0.7], [0.3, 0.8, 0.45], [0.8, 0.25, 0.9]],
        ),
        # a cell sheared to ~25 degrees: its neighbours lie many images away along the short spacing
        Crystal([[3.0, 0.0, 0.0], [2.7, 1.3, 0.0], [0.0, 0.0, 3.4]], [3, 9], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ]
    for n in (3, 6, 9):  # random cells of growing size, positions redrawn until the distance rule holds
        lattice = np.eye(3) * (2.3 * n ** (1 / 3) + 1.2) + rng.normal(0, 0.3, (3, 3))
        while True:
            crystal = Crystal(lattice, rng.choice([8, 12, 20, 38, 56], n), rng.random((n, 3)))
            try:
                build_graphs([crystal])
            except GeometryError:
                continue
            cells.append(crystal)
            break
    return cells


def test_tiny_triclinic_and_skewed_cells_match_numpy():
    cells = _synthetic()
    _same(build_device_graphs(cells), build_graphs(cells))
    # one cell at a time, and in chunks so small that every crystal is its own chunk (and retries)
    for cell in cells:
        _same(build_device_graphs([cell]), build_graphs([cell]))
    _same(build_device_graphs(cells, max_candidates=1), build_graphs(cells))


@needs_data
def test_real_structures_of_mixed_sizes_match_numpy():
    crystals = list(mp_crystals()[0][:60]) + [table1_crystal(n) for n in ("MgO", "GaAs", "BaZrO3", "K2Se")]
    assert len({c.num_sites for c in crystals}) > 5
    reference = build_graphs(crystals)
    _same(build_device_graphs(crystals), reference)
    _same(build_device_graphs(crystals, max_candidates=50_000), reference)  # several padded chunks


@needs_data
def test_rock_salt_shell_cut_follows_the_tie_rule():
    # MgO: 6 neighbours at a/2, then 6 of the 12 at a/sqrt(2), chosen by direction as numpy chooses
    mgo = table1_crystal("MgO")
    got = build_device_graphs([mgo]).numpy()
    _same(build_device_graphs([mgo]), build_graphs([mgo]))
    a = np.linalg.norm(mgo.lattice[0])
    np.testing.assert_allclose(np.linalg.norm(got.bond_vectors[:, 6:], axis=-1), a / np.sqrt(2), atol=TOL)


def test_same_species_fast_path_matches_numpy():
    rng = np.random.default_rng(3)
    base = np.array([[4.2, 0.0, 0.0], [0.3, 4.0, 0.0], [0.2, -0.4, 4.4]])
    frac0 = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]])
    lattices = np.stack([base * s + rng.normal(0, 0.1, (3, 3)) for s in np.linspace(0.9, 1.3, 12)])
    frac = np.stack([frac0 + rng.normal(0, 0.02, frac0.shape) for _ in range(12)])
    numbers = np.array([12, 8, 12, 8])
    reference = build_graphs_same_species(lattices, frac, numbers)
    _same(build_device_graphs_same_species(lattices, frac, numbers), reference)
    empty = build_device_graphs_same_species(np.zeros((0, 3, 3)), np.zeros((0, 4, 3)), numbers)
    assert empty.num_crystals == 0 and empty.neighbours.shape == (0, 12)


def test_geometry_errors_name_the_earliest_bad_crystal():
    good = Crystal(np.eye(3) * 3.2, [55, 17], [[0, 0, 0], [0.5, 0.5, 0.5]])
    overlap = Crystal(np.eye(3) * 4.0, [12, 8], [[0, 0, 0], [0.05, 0, 0]])
    slab = Crystal(np.diag([3.0, 3.0, 30.0]), [12], [[0, 0, 0]])  # 27 A of vacuum, but 12 neighbours in plane
    molecule = Crystal(np.eye(3) * 25.0, [12, 8], [[0, 0, 0], [0.08, 0, 0]])  # an isolated pair in vacuum
    for batch, index in (([good, overlap], 1), ([good, molecule, overlap], 1), ([good, good, overlap], 2)):
        with pytest.raises(GeometryError) as numpy_error:
            build_graphs(batch)
        with pytest.raises(GeometryError) as device_error:
            build_device_graphs(batch)
        assert device_error.value.index == index
        if numpy_error.value.index == index:  # the same crystal: the same words
            assert device_error.value.detail == numpy_error.value.detail
    with pytest.raises(GeometryError, match=r"atoms too close: Mg-O 0\.200 A"):
        build_device_graphs([overlap])
    with pytest.raises(GeometryError, match="12th nearest neighbour lies"):
        build_device_graphs([molecule])
    _same(build_device_graphs([slab]), build_graphs([slab]))


def test_device_graphs_round_trip_and_model_inputs():
    cells = _synthetic()
    reference = build_graphs(cells)
    graphs = DeviceGraphs.from_numpy(reference)
    assert graphs.k == 12 and graphs.num_crystals == len(cells) and graphs.device == torch.device("cpu")
    assert [t.dtype for t in graphs.inputs()] == [
        torch.int64,
        torch.int64,
        torch.float32,
        torch.int64,
        torch.int64,
    ]
    _same(graphs.to("cpu"), reference)
    with pytest.raises(ValueError, match="singular"):
        build_device_graphs_same_species(np.zeros((1, 3, 3)), np.zeros((1, 1, 3)), [12])
