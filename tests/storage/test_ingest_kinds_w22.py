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
    assert rows == [
        {"source_id": "a", "reduced_formula": formula, "nsites": nsites, "spacegroup": spacegroup}
    ]


def test_a_negative_volume_with_direct_positions_is_unchanged():
    direct = NACL_VOLUME_CARTESIAN.replace("Cartesian", "Direct")
    cell = cell_from_poscar(direct.format(scale="-179.406144"))
    assert np.allclose(cell.lattice, np.eye(3) * 5.64, atol=1e-6)
    assert np.allclose(_sorted_frac(cell), _sorted_frac(cell_from_poscar(direct.format(scale="5.64"))))


@pytest.mark.parametrize(
    ("scale", "lattice", "reason"),
    [
        (
            "0",
            "1 0 0\n0 1 0\n0 0 1",
            "POSCAR scale line is 0; it is a positive factor for the lattice, or a "
            "negative number: the cell volume",
        ),
        (
            "-10",
            "1 0 0\n2 0 0\n0 0 1",
            "POSCAR scale line gives the cell volume 10 A^3 (a negative scale) but the "
            "lattice lines span no volume (the lattice is singular)",
        ),
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


# --- W2. OPTIMADE elements_ratios and chemical_formula_hill are compared with the sites -------------------------

LIH4 = {  # a 4-site LiH cell (two rock-salt-like pairs in a doubled cube)
    "lattice_vectors": [[8.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]],
    "cartesian_site_positions": [[0, 0, 0], [2, 2, 2], [4, 0, 0], [6, 2, 2]],
    "species_at_sites": ["Li", "H", "Li", "H"],
}
RATIOS_RULE = "(missing, extra or mislabelled sites, or a wrong declaration)"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"elements": ["H", "Li"], "elements_ratios": [0.25, 0.75]},
            f"OPTIMADE entry declares elements_ratios [0.25, 0.75] for ['H', 'Li'] but its sites give [0.5, 0.5] "
            f"{RATIOS_RULE}",
        ),
        (
            {"elements_ratios": [0.5, 0.49]},  # no elements: the sites' elements in alphabetical order
            f"OPTIMADE entry declares elements_ratios [0.5, 0.49] for ['H', 'Li'] but its sites give [0.5, 0.5] "
            f"{RATIOS_RULE}",
        ),
        (
            {"elements_ratios": [1.0]},
            "OPTIMADE entry declares 1 elements_ratios for 2 elements ['H', 'Li']; give one atom fraction per element",
        ),
        (
            {"elements_ratios": [float("nan"), 0.5]},
            f"OPTIMADE entry declares elements_ratios [nan, 0.5] for ['H', 'Li'] but its sites give [0.5, 0.5] "
            f"{RATIOS_RULE}",
        ),
        (
            {"chemical_formula_hill": "H3Li"},
            "chemical_formula_hill: declared formula LiH3 (H3Li) disagrees with the sites' formula LiH (missing, "
            "extra or mislabelled sites)",
        ),
        (
            {"chemical_formula_hill": "H2Li2"},  # the 2-site cell holds half of it
            "chemical_formula_hill: declared formula H2Li2 counts 4 atoms, the parsed cell holds 2, not a multiple "
            "of 4 (missing or extra sites, or the cell read in another setting)",
        ),
    ],
    ids=["ratios-swapped", "ratios-off", "ratios-length", "ratios-nan", "hill-counts", "hill-half"],
)
def test_optimade_ratios_or_hill_formula_that_contradict_the_sites_are_refused(tmp_path, changes, reason):
    """Trial 22 W_e14/W_e15: an entry declaring LiH3 (hill) or 0.25/0.75 (ratios) over LiH sites was stored."""
    from tests.storage.test_optimade_entries import ingest, lih

    stored_ids, reasons = ingest(tmp_path, lih("bad", **changes))
    assert stored_ids == ["before", "after"]
    assert reasons == {"1:bad": reason}


@pytest.mark.parametrize(
    "changes",
    [
        {"elements": ["H", "Li"], "elements_ratios": [0.5, 0.5], "chemical_formula_hill": "HLi"},
        {"elements_ratios": [0.5004, 0.4996]},  # within RATIO_TOLERANCE: rounding
        {**LIH4, "chemical_formula_hill": "HLi"},  # reduced: the cell holds it twice
        {**LIH4, "chemical_formula_hill": "H2Li2", "elements_ratios": [0.5, 0.5]},  # the cell's own formula
    ],
    ids=["exact", "rounded", "hill-reduced", "hill-cell"],
)
def test_optimade_ratios_and_hill_formula_that_agree_are_stored(tmp_path, changes):
    from tests.storage.test_optimade_entries import ingest, lih

    stored_ids, reasons = ingest(tmp_path, lih("good", **changes))
    assert (stored_ids, reasons) == (["before", "good", "after"], {})


def test_an_elemental_entry_may_give_its_ratio_as_a_json_integer(tmp_path):
    from tests.storage.test_optimade_entries import ingest, lih

    entry = lih(
        "po",
        lattice_vectors=[[3.36, 0, 0], [0, 3.36, 0], [0, 0, 3.36]],
        cartesian_site_positions=[[0, 0, 0]],
        species_at_sites=["Po"],
        species=[{"name": "Po", "chemical_symbols": ["Po"], "concentration": [1]}],
        elements=["Po"],
        elements_ratios=[1],
        chemical_formula_hill="Po",
    )
    assert ingest(tmp_path, entry) == (["before", "po", "after"], {})


# --- W4, W5. CIF cell angles left out (the core dictionary's default 90) or given as ? ---------------------------

NACL_SITES = (
    "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
    "Na1 Na 0 0 0\nCl1 Cl 0.5 0.5 0.5\n"
)
LENGTHS = "_cell_length_a 5.64\n_cell_length_b 5.64\n_cell_length_c 5.64\n"
FM3M = "_symmetry_space_group_name_H-M 'F m -3 m'\n_chemical_formula_sum 'Cl Na'\n_cell_formula_units_Z 4\n"


def _cif(cell: str, symmetry: str = FM3M) -> str:
    return "data_nacl\n" + cell + symmetry + NACL_SITES


@pytest.mark.parametrize(
    "cell",
    [
        LENGTHS,
        LENGTHS + "_cell_angle_alpha 90\n",
        LENGTHS.replace("_cell_length_", "_cell.length_"),  # CIF2 spelling
    ],
    ids=["no-angles", "alpha-only", "cif2"],
)
def test_left_out_angles_of_a_right_angled_group_take_the_dictionary_default(tmp_path, cell):
    """Trial 22 06_nacl_missing_angles.cif: pymatgen's reason was "cannot reshape array of size 1 into shape
    (3,3)" over two lines. The CIF core dictionary's default for each cell angle is 90 degrees, which the
    cubic group F m -3 m requires anyway."""
    from storage.readers._structure import cell_from_cif

    assert np.allclose(cell_from_cif(_cif(cell)).lattice, np.eye(3) * 5.64)
    rows, quarantined = ingest_folder(tmp_path, {"a.cif": _cif(cell)})
    assert quarantined == []
    assert rows == [{"source_id": "a", "reduced_formula": "NaCl", "nsites": 8, "spacegroup": 225}]


@pytest.mark.parametrize(
    ("cell", "symmetry", "reason"),
    [
        (
            LENGTHS,
            "_symmetry_space_group_name_H-M 'P 1'\n",
            "the CIF gives no _cell_angle_alpha, _cell_angle_beta, _cell_angle_gamma and declares space group 1, "
            "whose symmetry does not fix the angles at 90 degrees; give every cell angle (degrees)",
        ),
        (
            LENGTHS + "_cell_angle_alpha 90\n_cell_angle_gamma 90\n",
            "_symmetry_space_group_name_H-M 'P 1 21/c 1'\n",
            "the CIF gives no _cell_angle_beta and declares space group 14, whose symmetry does not fix the angles "
            "at 90 degrees; give every cell angle (degrees)",
        ),
        (
            LENGTHS,
            "loop_\n_symmetry_equiv_pos_as_xyz\n'x,y,z'\n",
            "the CIF gives no _cell_angle_alpha, _cell_angle_beta, _cell_angle_gamma and declares no orthorhombic, "
            "tetragonal or cubic space group, whose symmetry does not fix the angles at 90 degrees; give every "
            "cell angle (degrees)",
        ),
        (
            "_cell_length_a 5.64\n_cell_length_c 5.64\n",
            FM3M,
            "the CIF gives no _cell_length_b; a cell length has no default: give a, b and c (Angstrom)",
        ),
    ],
    ids=["p1", "monoclinic", "operations-only", "no-length"],
)
def test_left_out_cell_parameters_the_symmetry_does_not_fix_are_one_line(tmp_path, cell, symmetry, reason):
    from tests.storage.test_no_impossible_crystal import only_reason

    assert only_reason(tmp_path, _cif(cell, symmetry)) == reason


@pytest.mark.parametrize(
    ("tag", "value", "reason"),
    [
        (
            "_cell_angle_gamma",
            "?",
            "'?' (unknown), which is no number; a cell parameter must be a number (degrees)",
        ),
        (
            "_cell_angle_alpha",
            ".",
            "'.' (inapplicable), which is no number; a cell parameter must be a number (degrees)",
        ),
        ("_cell_length_b", "?", "'?' (unknown), which is no number; a cell parameter must be a number (A)"),
        ("_cell_length_c", "five", "'five', which is no number; a cell parameter must be a number (A)"),
    ],
    ids=["gamma-?", "alpha-.", "b-?", "c-word"],
)
def test_a_cell_parameter_given_as_unknown_is_one_line_naming_it(tmp_path, tag, value, reason):
    """Trial 22 17_nacl_gamma_question.cif: pymatgen's "could not convert string to float: '?'" was repeated over
    several lines."""
    from tests.storage.test_no_impossible_crystal import only_reason

    cell = LENGTHS + "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
    text = _cif(
        "".join(
            f"{line.split()[0]} {value}\n" if line.split()[0] == tag else f"{line}\n"
            for line in cell.splitlines()
        )
    )
    assert only_reason(tmp_path, text) == f"the CIF gives {tag} as {reason}"


# --- every reason is one line -------------------------------------------------------------------------------------


def test_a_rejection_reason_is_always_one_line():
    from storage.readers import Rejection

    reason = Rejection("a.cif", 0, None, "malformed CIF: first\nsecond\r\n\n  third\u2028fourth", "").reason
    assert reason == "malformed CIF: first second third fourth"


def test_pymatgens_multi_line_error_reaches_the_quarantine_as_one_line(tmp_path, monkeypatch):
    """pymatgen's CifParser errors span lines ("No structure parsed for section 1 in CIF.\\ncannot reshape ...");
    whatever it says, the quarantine row holds one line."""
    from pymatgen.io.cif import CifParser

    from tests.storage.test_no_impossible_crystal import only_reason

    def fail(self, *args, **kwargs):
        raise ValueError(
            "Invalid CIF file with no structures!\nNo structure parsed for section 1 in CIF.\nboom"
        )

    monkeypatch.setattr(CifParser, "parse_structures", fail)
    cell = LENGTHS + "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
    reason = only_reason(tmp_path, _cif(cell))
    assert reason == (
        "malformed CIF: Invalid CIF file with no structures! No structure parsed for section 1 in CIF. boom"
    )
