"""Issue 22 follow-up (cif22b): a CIF that contradicts itself is refused with a reason, never stored as one of
its readings (the last of two site loops, the last of two cell lengths, a symbol's operations that do not fit
the cell, a declared group its listed operations are not, a Z its sites cannot hold)."""

from __future__ import annotations

import pytest
from pymatgen.symmetry.groups import SpaceGroup

from storage.readers._structure import _pymatgen_symbol, cell_from_cif
from storage.validation import StructureError
from tests.storage.test_cif_checks import CUBE, FCC_OPS, operations, stored
from tests.storage.test_no_impossible_crystal import only_reason

SITE_HEAD = "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
NA = "Na1 Na 0 0 0\n"
CL = "Cl1 Cl 0.5 0.5 0.5\n"


def nacl(*, symmetry: str = "", sites: str = SITE_HEAD + NA + CL, extra: str = "", a: str = "5.64") -> str:
    return "data_nacl\n" + CUBE.format(a=a) + symmetry + extra + sites


def refused(text: str) -> str:
    with pytest.raises(StructureError) as info:
        cell_from_cif(text)
    return str(info.value)


# --- 1. a tag stated twice: pymatgen kept the last statement ------------------------------------------------


@pytest.mark.parametrize(
    "symmetry", ["_symmetry_space_group_name_H-M 'P 1'\n", operations(*FCC_OPS)], ids=["p1", "fm3m-ops"]
)
def test_two_atom_site_loops_are_refused_not_read_as_the_last(tmp_path, symmetry) -> None:
    # was stored as Cl only (4 Cl, or 1 Cl in P1): the Na loop was dropped
    reason = only_reason(tmp_path, nacl(symmetry=symmetry, sites=SITE_HEAD + NA + SITE_HEAD + CL))
    assert reason.startswith(
        "the CIF lists atom sites in more than one loop (_atom_site_label in two loop_s); only the last loop "
        "would be read"
    )


def test_two_symmetry_operation_loops_are_refused() -> None:
    text = nacl(symmetry=operations("x,y,z") + operations(*FCC_OPS))
    assert refused(text).startswith(
        "the CIF lists symmetry operations in more than one loop (_symmetry_equiv_pos_as_xyz twice)"
    )


@pytest.mark.parametrize(
    ("extra", "tag"),
    [
        ("_cell_length_a 9.99\n", "_cell_length_a"),  # first a wrong, last right: the last won
        ("_chemical_formula_sum 'Na Cl'\n_chemical_formula_sum 'K Br'\n", "_chemical_formula_sum"),
    ],
)
def test_a_crystal_tag_stated_twice_with_different_values_is_refused(extra, tag) -> None:
    text = "data_nacl\n" + extra + CUBE.format(a="5.64") + operations(*FCC_OPS) + SITE_HEAD + NA + CL
    assert refused(text).startswith(f"the CIF states {tag} more than once with different values")


def test_a_tag_stated_twice_alike_still_reads(tmp_path) -> None:
    text = nacl(symmetry=operations(*FCC_OPS), extra="_cell_length_a 5.64\n_journal_name_full 'A'\n")
    text += "_journal_name_full 'B'\n"  # a publication detail twice is no part of the crystal
    assert stored(tmp_path, text) == [
        {"source_id": "a", "reduced_formula": "NaCl", "nsites": 8, "spacegroup": 225}
    ]


# --- 2. operations generated from a symbol or number are checked against the cell --------------------------

BETA_CELL = (
    "_cell_length_a 5.151\n_cell_length_b 5.212\n_cell_length_c 5.317\n"
    "_cell_angle_alpha 90\n_cell_angle_beta 99.23\n_cell_angle_gamma 90\n"
)


@pytest.mark.parametrize(
    ("cell", "symbol", "op"),
    [
        (CUBE.format(a="5.64"), "P 6/m m m", "'-x+y, y, -z'"),  # was stored as NaCl3
        (
            CUBE.format(a="5.64").replace("_cell_length_a 5.64", "_cell_length_a 4.0"),
            "P m -3 m",
            "'-z, x, y'",
        ),
        (BETA_CELL, "P 21/b 1 1", "'x+1/2, -y+1/2, -z'"),  # a-unique ops on a b-unique (beta = 99) cell
    ],
    ids=["hexagonal-on-cubic", "cubic-on-orthorhombic", "a-unique-on-beta-cell"],
)
def test_operations_of_a_symbol_that_do_not_fit_the_cell_are_refused(cell, symbol, op) -> None:
    text = f"data_x\n{cell}_symmetry_space_group_name_H-M '{symbol}'\n" + SITES_NACL
    reason = refused(text)
    assert reason.startswith(
        f"space group '{symbol}', expanded from its symbol or number: symmetry operation {op}"
    )
    assert "does not fit the cell" in reason


def test_operations_of_a_number_that_do_not_fit_the_cell_are_refused() -> None:
    text = "data_x\n" + CUBE.format(a="5.64") + "_symmetry_Int_Tables_number 191\n" + SITES_NACL
    assert refused(text).startswith(
        "space group '191', expanded from its symbol or number: symmetry operation"
    )


def test_a_symbol_that_fits_its_cell_still_reads(tmp_path) -> None:
    text = nacl(symmetry="_symmetry_space_group_name_H-M 'F m -3 m'\n")
    assert stored(tmp_path, text) == [
        {"source_id": "a", "reduced_formula": "NaCl", "nsites": 8, "spacegroup": 225}
    ]


SITES_NACL = SITE_HEAD + "Na1 Na 0.1 0.2 0.3\nCl1 Cl 0.6 0.7 0.8\n"


# --- 3. a declared space group that the listed operations are not ----------------------------------------------

PM3M_OPS = [op.as_xyz_str() for op in SpaceGroup("P m -3 m").symmetry_ops]
IM3M_OPS = [op.as_xyz_str() for op in SpaceGroup("I m -3 m").symmetry_ops]


@pytest.mark.parametrize(
    ("ops", "count"),
    [(PM3M_OPS, 48), (["x,y,z"], 1), (IM3M_OPS, 96)],
    ids=[
        "pm3m-ops",
        "identity-only",
        "im3m-ops",
    ],  # were stored as a CsCl-type 2-site cell, NaCl 2 sites, ...
)
def test_a_declared_symbol_the_listed_operations_contradict_is_refused(ops, count) -> None:
    text = nacl(symmetry="_symmetry_space_group_name_H-M 'F m -3 m'\n" + operations(*ops))
    assert refused(text) == (
        f"the CIF declares space group 'F m -3 m' (192 operations) but lists {count} symmetry operations of "
        "another group; the crystal would be expanded by the listed ones: fix the symbol or the operations"
    )


def test_a_declared_number_the_listed_operations_contradict_is_refused() -> None:
    text = nacl(symmetry="_symmetry_Int_Tables_number 225\n" + operations(*PM3M_OPS))
    assert refused(text).startswith(
        "the CIF declares space group number 225 (Fm-3m, 192 operations) but lists 48 symmetry operations"
    )


@pytest.mark.parametrize("symbol", ["F m -3 m", "F m -3 m Z", "F m 3 m"], ids=["plain", "icsd-suffix", "old"])
def test_a_declared_symbol_matching_its_operations_reads(tmp_path, symbol) -> None:
    text = nacl(symmetry=f"_symmetry_space_group_name_H-M '{symbol}'\n_symmetry_Int_Tables_number 225\n")
    text += operations(*FCC_OPS)
    assert stored(tmp_path, text) == [
        {"source_id": "a", "reduced_formula": "NaCl", "nsites": 8, "spacegroup": 225}
    ]


# --- 4. a declared Z with no formula is compared with the sites ---------------------------------------------------


@pytest.mark.parametrize(
    "symmetry",
    [
        "_symmetry_space_group_name_H-M 'P m -3 m'\n",
        operations(*PM3M_OPS),
        "_symmetry_space_group_name_H-M 'P 1'\n",
    ],
    ids=["symbol", "ops", "p1-path"],
)
def test_a_declared_z_the_sites_cannot_hold_is_refused(tmp_path, symmetry) -> None:
    # NaCl declared Z = 4 but read with 2 sites (1 Na, 1 Cl): was stored as a CsCl-type cell
    reason = only_reason(tmp_path, nacl(symmetry=symmetry, extra="_cell_formula_units_Z 4\n"))
    assert reason == (
        "the CIF declares Z = 4 formula units but its 2 sites (Cl1 Na1) cannot hold 4 whole formula units "
        "(missing, extra or mis-expanded sites)"
    )


def test_a_declared_z_the_sites_hold_reads(tmp_path) -> None:
    text = nacl(symmetry="_symmetry_space_group_name_H-M 'F m -3 m'\n", extra="_cell_formula_units_Z 4\n")
    assert stored(tmp_path, text) == [
        {"source_id": "a", "reduced_formula": "NaCl", "nsites": 8, "spacegroup": 225}
    ]


# --- 5. CIF2 spellings of the declared formula and Z ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (
            "_chemical_formula_sum 'Na Cl'\n_cell.formula_units_Z 2\n",
            "declared formula Na Cl counts 2 atoms, the parsed cell holds 8, not 2 or 4 (Z = 2)",
        ),
        (
            "_chemical_formula.sum 'K Br'\n",
            "declared formula KBr (K Br) disagrees with the sites' formula NaCl",
        ),
        (
            "_cell_formula_units_Z 4\n_cell.formula_units_Z 2\n",
            "the CIF states _cell_formula_units_z more than once with different values",
        ),
    ],
    ids=["dotted-z", "dotted-formula", "both-spellings-differ"],
)
def test_cif2_dotted_formula_and_z_are_read_like_their_ddl1_tags(tmp_path, extra, reason) -> None:
    text = nacl(symmetry="_symmetry_space_group_name_H-M 'F m -3 m'\n", extra=extra)
    assert only_reason(tmp_path, text).startswith(reason)


def test_cif2_dotted_formula_and_z_that_agree_read(tmp_path) -> None:
    extra = "_chemical_formula.sum 'Na Cl'\n_cell.formula_units_Z 4\n"
    text = nacl(symmetry="_symmetry_space_group_name_H-M 'F m -3 m'\n", extra=extra)
    assert stored(tmp_path, text) == [
        {"source_id": "a", "reduced_formula": "NaCl", "nsites": 8, "spacegroup": 225}
    ]


# --- 6. short and old Hermann-Mauguin symbols with no operations ------------------------------------------------

ZRO2 = (
    "data_zro2\n" + BETA_CELL.replace("5.151", "5.1505").replace("5.212", "5.2116").replace("5.317", "5.3173")
    + "_symmetry_space_group_name_H-M '{symbol}'\n" + SITE_HEAD
    + "Zr1 Zr 0.2754 0.0395 0.2083\nO1 O 0.0700 0.3317 0.3447\nO2 O 0.4416 0.7569 0.4792\n"
)  # fmt: skip


@pytest.mark.parametrize("symbol", ["P 21/c", "P 1 21/c 1"], ids=["short", "full"])
def test_a_short_monoclinic_symbol_reads_in_its_standard_b_unique_setting(tmp_path, symbol) -> None:
    # 'P 21/c' was refused ("lists no symmetry operations this reader can apply"); read as P 1 21/c 1
    rows = stored(tmp_path, ZRO2.format(symbol=symbol))
    assert rows == [{"source_id": "a", "reduced_formula": "ZrO2", "nsites": 12, "spacegroup": 14}]


def test_a_short_symbol_with_another_glide_reads(tmp_path) -> None:
    # P 21/n: the same crystal written with the n glide (x + 1/2 on the c glide's operation)
    rows = stored(tmp_path, ZRO2.format(symbol="P 21/n"))
    assert rows[0]["nsites"] == 12 and rows[0]["spacegroup"] in (14, 2, 4, 7, 13)


def test_an_old_cubic_symbol_reads(tmp_path) -> None:
    text = nacl(symmetry="_symmetry_space_group_name_H-M 'F m 3 m'\n")
    assert stored(tmp_path, text) == [
        {"source_id": "a", "reduced_formula": "NaCl", "nsites": 8, "spacegroup": 225}
    ]


@pytest.mark.parametrize(
    ("written", "expanded"),
    [("P21/c", "P12_1/c1"), ("P21/n", "P12_1/n1"), ("Fd3m", "Fd-3m"), ("Pnma", "Pnma"), ("P432", "P432")],
)
def test_short_and_old_symbols_map_to_ones_pymatgen_expands(written, expanded) -> None:
    assert _pymatgen_symbol(written) == expanded
