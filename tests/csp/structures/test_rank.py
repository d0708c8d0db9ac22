"""Ranking never merges across space groups, and a group is shown by its most symmetric member."""

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from csp.structures.matching import rank
from csp.structures.symmetry import spacegroup_number

FCC = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
KEYS = {
    "rank",
    "formula",
    "spacegroup",
    "spacegroup_symbol",
    "family_wyckoff",
    "a",
    "b",
    "c",
    "alpha",
    "beta",
    "gamma",
    "dhf_pred_ev_per_atom",
    "p_syn",
    "p_syn_std",
    "fitness",
    "family_spacegroup",
    "wyckoff",
    "outer_step",
    "duplicates",
    "structure",
    "row",
    "structure_row",
    "family_spacegroups",
    "resymmetrised",
}


def rock_salt(cation, anion, lattice):
    return Structure(lattice, [cation] * 4 + [anion] * 4, np.vstack([FCC, FCC + 0.5 * np.eye(3)[0]]) % 1)


def p213_twin(a, shift_angstrom):
    """Rock salt LiH written in P2_13 (4a x,x,x for both) with Li off-centre by ``shift_angstrom``."""
    x = shift_angstrom / (np.sqrt(3) * a)

    def orbit(v):
        return [[v, v, v], [0.5 - v, -v, 0.5 + v], [-v, 0.5 + v, 0.5 - v], [0.5 + v, 0.5 - v, -v]]

    return Structure(Lattice.cubic(a), ["Li"] * 4 + ["H"] * 4, np.mod(orbit(x) + orbit(0.5), 1.0))


def row(structure, fitness, family_spacegroup, step):
    return {
        "valid": True,
        "fitness": fitness,
        "dhf_pred_ev_per_atom": -1.0 + fitness,
        "p_syn": 0.9,
        "p_syn_std": 0.01,
        "lattice": structure.lattice.matrix.reshape(-1).tolist(),
        "numbers": [site.specie.Z for site in structure],
        "frac_coords": structure.frac_coords.reshape(-1).tolist(),
        "spacegroup": family_spacegroup,
        "wyckoff": f"family {family_spacegroup}",
        "outer_step": step,
    }


def test_exact_rock_salt_is_not_folded_into_a_better_tetragonal_twin():
    exact = rock_salt("Mg", "O", Lattice.cubic(4.21))
    twin = rock_salt("Mg", "O", Lattice.tetragonal(4.03, 4.03 * 1.1))  # c/a 1.1: I4/mmm at 0.1 A
    assert StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5).fit(exact, twin)  # what used to merge them
    top = rank([row(exact, 0.10, 225, 3), row(twin, 0.09, 123, 1)], k=5)
    assert [(t["spacegroup"], t["outer_step"], t["duplicates"]) for t in top] == [(139, 1, 0), (225, 3, 0)]
    assert all(set(t) == KEYS for t in top)


def test_lih_off_centred_p213_twin_and_rock_salt_are_both_ranked():
    # the pilot's LiH case: a 0.05 A off-centred P2_13 twin, 1 meV/atom better, used to represent rock salt
    a = 4.08
    twin, exact = p213_twin(a, 0.05), rock_salt("Li", "H", Lattice.cubic(a))
    assert spacegroup_number(twin) == 198
    top = rank([row(twin, 0.050, 198, 0), row(exact, 0.051, 225, 7)])
    assert [(t["spacegroup"], t["outer_step"]) for t in top] == [(198, 0), (225, 7)]


def test_a_distorted_twin_is_shown_symmetrised_and_an_exact_member_represents_its_group():
    a = 4.08  # LiH
    twin = p213_twin(a, 0.02)
    exact = rock_salt("Li", "H", Lattice.cubic(a))
    assert spacegroup_number(twin, 1e-3) == 198 and spacegroup_number(twin) == 225
    # the twin alone: ranked under its re-symmetrised group and shown as an exact rock salt
    (alone,) = rank([row(twin, 0.050, 198, 0)])
    assert alone["spacegroup"] == 225 and alone["resymmetrised"]
    assert spacegroup_number(alone["structure"], 1e-3) == 225
    # the twin scores 1 meV/atom better: one group, ranked by the twin's fitness, shown as the exact member
    (top,) = rank([row(twin, 0.050, 198, 0), row(exact, 0.051, 225, 7)])
    assert top["spacegroup"] == 225 and top["duplicates"] == 1
    assert top["fitness"] == 0.050 and top["outer_step"] == 0  # the best member ranks the group
    assert top["structure_row"]["outer_step"] == 7 and not top["resymmetrised"]  # the exact one is shown
    assert top["family_spacegroups"] == [198, 225]
    assert spacegroup_number(top["structure"], 1e-3) == 225


def test_duplicates_within_a_space_group_are_merged_and_top_k_is_kept():
    rows = [
        row(rock_salt("Mg", "O", Lattice.cubic(4.21 + 0.01 * i)), 0.1 + 0.01 * i, 225, i) for i in range(4)
    ]
    rows.append(row(rock_salt("Mg", "O", Lattice.tetragonal(4.0, 4.6)), 0.3, 123, 9))
    top = rank(rows, k=1)
    assert len(top) == 1 and top[0]["duplicates"] == 3 and top[0]["outer_step"] == 0
    assert [t["spacegroup"] for t in rank(rows, k=5)] == [225, 139]


def test_a_crystal_of_one_element_is_named_by_its_symbol_not_its_molecule():
    """Issue 22 follow-up: `csp campaign run H` headed its table "(H2)": pymatgen's reduced formula names
    elemental H, N, O, F and Cl after their molecules. The result (and the POSCAR comment, the plot title) names
    a crystal of hydrogen H; compounds keep pymatgen's formula."""
    from pymatgen.core import Composition

    from csp.structures.composition import reduced_formula
    from csp.structures.io import poscar_comment

    hydrogen = Structure(Lattice.cubic(2.0), ["H", "H"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    (top,) = rank([row(hydrogen, 0.1, 229, 0)])
    assert top["formula"] == "H"
    assert poscar_comment(hydrogen).startswith("H spacegroup 229")
    assert [reduced_formula(Composition(f)) for f in ("H4", "N2", "Cl", "LiH", "BaZrO3", "Fe2")] == [
        "H", "N", "Cl", "LiH", "BaZrO3", "Fe"
    ]  # fmt: skip
    assert rank([row(rock_salt("Mg", "O", Lattice.cubic(4.21)), 0.1, 225, 0)])[0]["formula"] == "MgO"
