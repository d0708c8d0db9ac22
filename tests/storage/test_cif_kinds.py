"""Issue 22 follow-up (cif22c): whole kinds of CIF the reader got wrong, each read right or refused with a reason
(CIF2 dotted tags, a ``data_`` line in a text field, duplicated sites, a symbol and number that disagree, a
rhombohedral group given by number alone, special positions written with three digits, upper-case type
symbols)."""

from __future__ import annotations

import pytest
from pymatgen.symmetry.groups import SpaceGroup

from tests.storage.test_cif_checks import CUBE, FCC_OPS, stored
from tests.storage.test_no_impossible_crystal import only_reason

SITE_HEAD = "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
NACL_SITES = SITE_HEAD + "Na1 Na 0 0 0\nCl1 Cl 0.5 0.5 0.5\n"
NACL_ROW = [{"source_id": "a", "reduced_formula": "NaCl", "nsites": 8, "spacegroup": 225}]


def nacl(symmetry: str = "_symmetry_space_group_name_H-M 'F m -3 m'\n", sites: str = NACL_SITES) -> str:
    return "data_nacl\n" + CUBE.format(a="5.64") + symmetry + sites


# --- 1. CIF2 dotted tags are read like their DDL1 spellings --------------------------------------------------

CIF2_NACL = (
    "#\\#CIF_2.0\ndata_nacl\n"
    "_cell.length_a 5.64\n_cell.length_b 5.64\n_cell.length_c 5.64\n"
    "_cell.angle_alpha 90\n_cell.angle_beta 90\n_cell.angle_gamma 90\n"
    "_space_group.name_H-M_alt 'F m -3 m'\n_space_group.IT_number 225\n"
    "loop_\n_space_group_symop.id\n_space_group_symop.operation_xyz\n"
    + "".join(f"{k + 1} '{op}'\n" for k, op in enumerate(FCC_OPS))
    + "loop_\n_atom_site.label\n_atom_site.type_symbol\n_atom_site.fract_x\n_atom_site.fract_y\n"
    "_atom_site.fract_z\n_atom_site.occupancy\nNa1 Na 0 0 0 1\nCl1 Cl 0.5 0.5 0.5 1\n"
)


def underscore_form(text: str) -> str:
    """The same CIF in DDL1 (underscore) spelling."""
    for dotted, plain in (
        ("_cell.", "_cell_"), ("_atom_site.", "_atom_site_"),
        ("_space_group.name_H-M_alt", "_symmetry_space_group_name_H-M"),
        ("_space_group.IT_number", "_symmetry_Int_Tables_number"),
        ("_space_group_symop.id", "_symmetry_equiv_pos_site_id"),
        ("_space_group_symop.operation_xyz", "_symmetry_equiv_pos_as_xyz"),
    ):  # fmt: skip
        text = text.replace(dotted, plain)
    return text


@pytest.mark.parametrize("with_operations", [True, False], ids=["operations", "symbol-only"])
def test_a_cif2_dotted_file_reads_like_its_underscore_form(tmp_path, with_operations) -> None:
    text = CIF2_NACL
    if not with_operations:
        head, _, rest = text.partition("loop_\n_space_group_symop")
        text = head + "loop_\n_atom_site." + rest.split("loop_\n_atom_site.", 1)[1]
    assert "_atom_site_" not in text and "_cell_" not in text  # wholly dotted
    assert stored(tmp_path / "dotted", text) == NACL_ROW  # was refused: "no data block lists atom sites"
    assert stored(tmp_path / "plain", underscore_form(text)) == NACL_ROW


def test_a_cif2_file_with_wrong_dotted_operations_is_still_refused(tmp_path) -> None:
    text = CIF2_NACL.replace("'x, y, z'", "'2x, y, z'")
    assert "2x, y, z" in text
    assert only_reason(tmp_path, text).startswith("symmetry operation '2x, y, z' is no crystallographic operation")


# --- 7. a data_ line inside a text field opens no block ---------------------------------------------------------


@pytest.mark.parametrize("line", ["data_hidden", "  data_2nd_paragraph of the abstract"])
def test_a_data_line_inside_a_text_field_does_not_split_the_block(tmp_path, line) -> None:
    text = nacl().replace("data_nacl\n", f"data_nacl\n_publ_section_abstract\n;\nSome words.\n{line}\nMore.\n;\n")
    assert stored(tmp_path, text) == NACL_ROW  # was refused: "no data block lists atom sites (2 block(s) read)"


def test_a_data_line_outside_a_text_field_still_opens_a_block(tmp_path) -> None:
    text = nacl() + "data_second\n" + CUBE.format(a="5.64") + NACL_SITES
    assert only_reason(tmp_path, text).startswith("the CIF holds 2 structures (data blocks data_nacl, data_second)")
