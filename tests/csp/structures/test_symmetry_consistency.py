"""One symmetry function and one tolerance: the lake (storage.readers) and the science (csp.structures.symmetry) give
the same space group for the same cell, strained or rattled."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from csp.structures import symmetry
from csp.structures.matching import spacegroup_number as matching_spacegroup_number
from storage import readers
from storage.readers import Cell, structure_fields

FCC = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])


def rock_salt(lattice):
    return Structure(lattice, ["Mg"] * 4 + ["O"] * 4, np.vstack([FCC, FCC + 0.5 * np.eye(3)[0]]) % 1)


def zinc_blende(lattice):
    return Structure(lattice, ["Ga"] * 4 + ["As"] * 4, np.vstack([FCC, FCC + 0.25]) % 1)


def perovskite(lattice):
    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(lattice, ["Ba", "Zr", "O", "O", "O"], frac)


def cells():
    rng = np.random.default_rng(0)
    out = []
    for build, a in ((rock_salt, 4.21), (zinc_blende, 5.65), (perovskite, 4.19)):
        for strain in (0.0, 0.005, 0.01, 0.02, 0.03):
            for shear in (0.0, 0.3, 1.0, 2.0, 6.0):
                lat = Lattice.from_parameters(a * (1 + strain), a, a * (1 - strain), 90 + shear, 90, 90)
                out.append(build(lat))
        for rattle in (0.01, 0.03, 0.05, 0.08, 0.15):
            s = build(Lattice.cubic(a))
            cart = s.cart_coords + rng.normal(scale=rattle, size=s.cart_coords.shape)
            out.append(Structure(s.lattice, s.species, cart, coords_are_cartesian=True))
    return out


def lake_spacegroup(s):
    cell = Cell(s.lattice.matrix, [site.specie.symbol for site in s], s.frac_coords)
    return structure_fields(cell)["spacegroup"]


def test_the_two_packages_state_the_same_tolerances():
    assert symmetry.SYMPREC == readers.SYMPREC_ANGSTROM == 0.1
    assert symmetry.ANGLE_TOLERANCE_DEG == readers.ANGLE_TOLERANCE_DEG == 5.0


def test_strained_mgo_is_rock_salt_in_both():
    # the cell: 1 % strain and a 1 degree shear used to be Immm (71) in the lake, Fm-3m (225) in csp
    s = rock_salt(Lattice.from_parameters(4.21 * 1.01, 4.21, 4.21 * 0.99, 91.0, 90, 90))
    assert lake_spacegroup(s) == symmetry.spacegroup_number(s) == matching_spacegroup_number(s) == 225


@pytest.mark.slow
def test_lake_and_science_agree_on_strained_and_rattled_cells():
    got = [(lake_spacegroup(s), symmetry.spacegroup_number(s)) for s in cells()]
    assert [a for a, _ in got] == [b for _, b in got]
    assert len({b for _, b in got}) >= 6  # the set spans cubic, tetragonal, orthorhombic, ... groups
