"""Trial 22 (w22): kinds of user input the ingest read wrongly or refused with a false or multi-line reason,
each now stored as VASP/CIF/OPTIMADE mean it or refused with a true one-line reason: POSCAR scales given as a
negative cell volume with Cartesian positions, trailing comments on POSCAR lines, OPTIMADE ``elements_ratios``
and ``chemical_formula_hill`` that contradict the sites, CIF cell angles left out or given as ``?``."""

from __future__ import annotations

import numpy as np
import pytest

from storage.readers.user_formats import cell_from_poscar
from tests.storage.test_no_impossible_crystal import ingest_folder

# --- W1. a negative scale (the cell volume) applies to Cartesian positions too ----------------------------------

NACL_VOLUME_CARTESIAN = """NaCl volume cart
{scale}
1 0 0
0 1 0
0 0 1
Na Cl
4 4
Cartesian
0 0 0
0 .5 .5
.5 0 .5
.5 .5 0
.5 .5 .5
.5 0 0
0 .5 0
0 0 .5
"""
FE_BCC_VOLUME_CARTESIAN = """Fe bcc given by volume, Cartesian
{scale}
1.068363 0 0
0 1.068363 0
0 0 1.068363
Fe
2
Cartesian
0 0 0
0.534182 0.534182 0.534182
"""


def _sorted_frac(cell) -> np.ndarray:
    frac = np.mod(np.round(np.asarray(cell.frac_coords), 9), 1.0)
    return frac[np.lexsort(frac.T[::-1])]


@pytest.mark.parametrize(
    ("template", "volume", "a", "spacegroup", "formula", "nsites"),
    [
        (NACL_VOLUME_CARTESIAN, 179.406144, 5.64, 225, "NaCl", 8),
        (FE_BCC_VOLUME_CARTESIAN, 23.639903, 2.870, 229, "Fe", 2),
    ],
    ids=["nacl", "fe-bcc"],
)
def test_a_negative_volume_scale_scales_cartesian_positions_as_vasp_does(
    tmp_path, template, volume, a, spacegroup, formula, nsites
):
    """VASP scales the lattice and Cartesian positions by (V / |det L|)^(1/3); pymatgen multiplied the
    positions by the raw negative number (NaCl refused as a far site, bcc Fe stored as R-3m)."""
    by_volume = cell_from_poscar(template.format(scale=f"-{volume}"))
    assert np.allclose(np.abs(np.linalg.det(by_volume.lattice)), volume, rtol=1e-9)
    assert np.allclose(np.linalg.norm(by_volume.lattice, axis=1), a, atol=2e-3)
    factor = (volume / abs(np.linalg.det(cell_from_poscar(template.format(scale="1.0")).lattice))) ** (1 / 3)
    by_factor = cell_from_poscar(template.format(scale=repr(float(factor))))
    assert np.allclose(by_volume.lattice, by_factor.lattice, atol=1e-9)
    assert np.allclose(_sorted_frac(by_volume), _sorted_frac(by_factor), atol=1e-6)
    if formula == "Fe":
        assert np.allclose(_sorted_frac(by_volume), [[0, 0, 0], [0.5, 0.5, 0.5]], atol=1e-5)
    rows, quarantined = ingest_folder(tmp_path, {"a.vasp": template.format(scale=f"-{volume}")})
    assert quarantined == []
    assert rows == [{"source_id": "a", "reduced_formula": formula, "nsites": nsites, "spacegroup": spacegroup}]


def test_a_negative_volume_with_direct_positions_is_unchanged():
    direct = NACL_VOLUME_CARTESIAN.replace("Cartesian", "Direct")
    cell = cell_from_poscar(direct.format(scale="-179.406144"))
    assert np.allclose(cell.lattice, np.eye(3) * 5.64, atol=1e-6)
    assert np.allclose(_sorted_frac(cell), _sorted_frac(cell_from_poscar(direct.format(scale="5.64"))))


@pytest.mark.parametrize(
    ("scale", "lattice", "reason"),
    [
        ("0", "1 0 0\n0 1 0\n0 0 1", "POSCAR scale line is 0; it is a positive factor for the lattice, or a "
         "negative number: the cell volume"),
        ("-10", "1 0 0\n2 0 0\n0 0 1", "POSCAR scale line gives the cell volume 10 A^3 (a negative scale) but the "
         "lattice lines span no volume (the lattice is singular)"),
    ],
    ids=["zero", "volume-of-singular-lattice"],
)
def test_a_scale_no_cell_can_have_is_one_line(tmp_path, scale, lattice, reason):
    text = f"X\n{scale}\n{lattice}\nNa Cl\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"
    _, quarantined = ingest_folder(tmp_path, {"a.vasp": text})
    assert [q["reason"] for q in quarantined] == [f"a.vasp: {reason}"]


# --- W6. a trailing comment on a POSCAR line is cut, as VASP reads only the leading numbers ---------------------

PUO2_SCALE_COMMENT = """PuO2 fluorite
   5.396   ! lattice constant
1 0 0
0 1 0
0 0 1
Pu O
4 8
Direct
0 0 0
0 .5 .5
.5 0 .5
.5 .5 0
.25 .25 .25
.75 .75 .75
.75 .25 .25
.25 .75 .25
.25 .25 .75
.75 .75 .25
.75 .25 .75
.25 .75 .75
"""


def test_a_comment_after_the_scale_is_cut_and_the_file_stored(tmp_path):
    """pymatgen's reason was "could not convert string to float: '5.396 ! lattice constant'"."""
    cell = cell_from_poscar(PUO2_SCALE_COMMENT)
    assert np.allclose(cell.lattice, np.eye(3) * 5.396)
    rows, quarantined = ingest_folder(tmp_path, {"a.vasp": PUO2_SCALE_COMMENT})
    assert quarantined == []
    assert rows == [{"source_id": "a", "reduced_formula": "PuO2", "nsites": 12, "spacegroup": 225}]


def test_comments_after_lattice_counts_and_coordinates_are_cut():
    plain = "NaCl\n1.0\n0 2.82 2.82\n2.82 0 2.82\n2.82 2.82 0\nNa Cl\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"
    commented = (
        "NaCl ! the comment line is free text\n1.0 # scale\n0 2.82 2.82 ! a1\n2.82 0 2.82 ! a2\n2.82 2.82 0 !a3\n"
        "Na Cl ! elements\n1 1 ! counts\nDirect ! mode\n0 0 0 ! Na\n0.5 0.5 0.5 ! Cl\n"
    )
    a, b = cell_from_poscar(plain), cell_from_poscar(commented)
    assert a.species == b.species == ["Na", "Cl"]
    assert np.allclose(a.lattice, b.lattice) and np.allclose(a.frac_coords, b.frac_coords)
