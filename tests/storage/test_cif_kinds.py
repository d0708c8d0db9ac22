"""Issue 22 follow-up (cif22c): whole kinds of CIF the reader got wrong, each read right or refused with a reason
(CIF2 dotted tags, a ``data_`` line in a text field, duplicated sites, a symbol and number that disagree, a
rhombohedral group given by number alone, special positions written with three digits, upper-case type
symbols)."""

from __future__ import annotations

import numpy as np
import pytest

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
    assert only_reason(tmp_path, text).startswith(
        "symmetry operation '2x, y, z' is no crystallographic operation"
    )


# --- 7. a data_ line inside a text field opens no block ---------------------------------------------------------


@pytest.mark.parametrize("line", ["data_hidden", "  data_2nd_paragraph of the abstract"])
def test_a_data_line_inside_a_text_field_does_not_split_the_block(tmp_path, line) -> None:
    abstract = f"_publ_section_abstract\n;\nSome words.\n{line}\nMore.\n;\n"
    text = nacl().replace("data_nacl\n", "data_nacl\n" + abstract)
    # was refused: "no data block lists atom sites (2 block(s) read)"
    assert stored(tmp_path, text) == NACL_ROW


def test_a_data_line_outside_a_text_field_still_opens_a_block(tmp_path) -> None:
    text = nacl() + "data_second\n" + CUBE.format(a="5.64") + NACL_SITES
    assert only_reason(tmp_path, text).startswith(
        "the CIF holds 2 structures (data blocks data_nacl, data_second)"
    )


# --- 2. a site listed twice in one atom-site loop -----------------------------------------------------------------

P1_HEAD = (
    "data_c200\n_cell_length_a 15\n_cell_length_b 15\n_cell_length_c 15\n_cell_angle_alpha 90\n"
    "_cell_angle_beta 90\n_cell_angle_gamma 90\n_symmetry_space_group_name_H-M 'P 1'\n" + SITE_HEAD
)


def carbon_rows() -> list[str]:
    """200 C sites of a 15 A cube on a jittered grid (at least 2 A apart)."""
    rng = np.random.default_rng(7)
    grid = np.array([(i, j, k) for i in range(6) for j in range(6) for k in range(6)][:200], dtype=float)
    coords = (grid + 0.5 + rng.uniform(-0.1, 0.1, grid.shape)) / 6.0
    return [f"C{k + 1} C {x:.5f} {y:.5f} {z:.5f}\n" for k, (x, y, z) in enumerate(coords)]


def test_a_200_site_p1_cell_reads_with_200_sites(tmp_path) -> None:
    rows = stored(tmp_path, P1_HEAD + "".join(carbon_rows()))
    assert [(r["reduced_formula"], r["nsites"]) for r in rows] == [("C", 200)]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (
            lambda rows: rows[41],  # the very row again: was stored with 201 sites
            "sites 42 and 201 of the atom-site loop share the label 'C42'",
        ),
        (
            lambda rows: rows[41].replace("C42 ", "C999 "),  # another label, the same position
            "sites C42 and C999 of the atom-site loop are one C atom listed twice (the same position",
        ),
        (
            lambda rows: "C999 C {:.5f} {} {}\n".format(
                float(rows[41].split()[2]) + 1, *rows[41].split()[3:]
            ),
            "sites C42 and C999 of the atom-site loop are one C atom listed twice",
        ),
        (
            lambda rows: "C42 C 0.01 0.99 0.5\n",  # the same label for another position
            "sites 42 and 201 of the atom-site loop share the label 'C42'",
        ),
    ],
    ids=["same-row", "same-position", "same-position-next-cell", "same-label"],
)
def test_a_site_listed_twice_in_one_loop_is_refused(tmp_path, extra, reason) -> None:
    rows = carbon_rows()
    assert only_reason(tmp_path, P1_HEAD + "".join(rows) + extra(rows)).startswith(reason)


def test_a_duplicated_site_of_a_symmetric_cif_is_refused(tmp_path) -> None:
    text = nacl(sites=NACL_SITES + "Na2 Na 0.0005 0 0\n")
    assert only_reason(tmp_path, text).startswith(
        "sites Na1 and Na2 of the atom-site loop are one Na atom listed twice"
    )


# --- 3. a declared symbol and number that name different groups -------------------------------------------------


@pytest.mark.parametrize("number", ["225", "225(0)"])
def test_a_symbol_and_the_same_number_read(tmp_path, number) -> None:
    text = nacl("_symmetry_space_group_name_H-M 'F m -3 m'\n" + f"_symmetry_Int_Tables_number {number}\n")
    assert stored(tmp_path, text) == NACL_ROW


@pytest.mark.parametrize(
    ("symmetry", "reason"),
    [
        (
            "_symmetry_space_group_name_H-M 'F m -3 m'\n_symmetry_Int_Tables_number 221\n",
            "the CIF declares space group 'F m -3 m' (number 225) and space-group number 221 (Pm-3m), two "
            "different groups",
        ),  # was stored as F m -3 m NaCl, the number ignored
        (
            "_space_group_name_H-M_alt 'P m -3 m'\n_space_group_IT_number 225\n",
            "the CIF declares space group 'P m -3 m' (number 221) and space-group number 225 (Fm-3m)",
        ),
    ],
)
def test_a_symbol_and_number_that_disagree_are_refused_naming_both(tmp_path, symmetry, reason) -> None:
    assert only_reason(tmp_path, nacl(symmetry)).startswith(reason)


# --- 4. a rhombohedral group by number alone on rhombohedral axes ------------------------------------------------

BI_RHOMBOHEDRAL = (
    "data_bi\n_cell_length_a 4.7459\n_cell_length_b 4.7459\n_cell_length_c 4.7459\n"
    "_cell_angle_alpha 57.23\n_cell_angle_beta 57.23\n_cell_angle_gamma 57.23\n{symmetry}"
    + SITE_HEAD
    + "Bi1 Bi 0.2339 0.2339 0.2339\n"
)
BI_HEXAGONAL = (
    "data_bi\n_cell_length_a 4.546\n_cell_length_b 4.546\n_cell_length_c 11.862\n"
    "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 120\n{symmetry}"
    + SITE_HEAD
    + "Bi1 Bi 0 0 0.2339\n"
)


@pytest.mark.parametrize(
    ("text", "nsites"),
    [
        (BI_RHOMBOHEDRAL.format(symmetry="_symmetry_Int_Tables_number 166\n"), 2),  # was refused (distances)
        (BI_RHOMBOHEDRAL.format(symmetry="_space_group.IT_number 166\n"), 2),
        (BI_RHOMBOHEDRAL.format(symmetry="_symmetry_space_group_name_H-M 'R -3 m'\n"), 2),
        (BI_HEXAGONAL.format(symmetry="_symmetry_Int_Tables_number 166\n"), 6),
    ],
    ids=["number-rhombohedral", "dotted-number", "symbol-rhombohedral", "number-hexagonal"],
)
def test_number_166_alone_reads_in_the_setting_of_its_cell(tmp_path, text, nsites) -> None:
    assert stored(tmp_path, text) == [
        {"source_id": "a", "reduced_formula": "Bi", "nsites": nsites, "spacegroup": 166}
    ]


# --- 5. special positions written with three digits --------------------------------------------------------------

GRAPHITE = (
    "data_graphite\n_cell_length_a 2.464\n_cell_length_b 2.464\n_cell_length_c 6.711\n_cell_angle_alpha 90\n"
    "_cell_angle_beta 90\n_cell_angle_gamma 120\n_symmetry_space_group_name_H-M 'P 63/m m c'\n"
    + SITE_HEAD
    + "C1 C 0 0 0.25\nC2 C {third} {two_thirds} 0.25\n"
)
WURTZITE = (
    "data_zno\n_cell_length_a 3.2498\n_cell_length_b 3.2498\n_cell_length_c 5.2066\n_cell_angle_alpha 90\n"
    "_cell_angle_beta 90\n_cell_angle_gamma 120\n_symmetry_space_group_name_H-M 'P 63 m c'\n"
    + SITE_HEAD
    + "Zn1 Zn {third} {two_thirds} 0\nO1 O {third} {two_thirds} 0.3819\n"
)


@pytest.mark.parametrize(
    ("third", "two_thirds"), [("0.333333", "0.666667"), ("0.3333", "0.6667"), ("0.333", "0.667")]
)
@pytest.mark.parametrize(
    ("template", "row"),
    [
        (GRAPHITE, {"source_id": "a", "reduced_formula": "C", "nsites": 4, "spacegroup": 194}),
        (WURTZITE, {"source_id": "a", "reduced_formula": "ZnO", "nsites": 4, "spacegroup": 186}),
    ],
    ids=["graphite", "wurtzite"],
)
def test_special_positions_written_with_three_digits_merge(
    tmp_path, template, row, third, two_thirds
) -> None:
    # 0.333/0.667 gave 8 graphite and 12 wurtzite sites, images 0.005 A apart
    assert stored(tmp_path, template.format(third=third, two_thirds=two_thirds)) == [row]


def test_positions_rounded_to_two_digits_are_still_refused(tmp_path) -> None:
    reason = only_reason(tmp_path, GRAPHITE.format(third="0.33", two_thirds="0.67"))
    assert "closer than" in reason, reason


# --- 6. upper-case type symbols ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("na", "cl"), [("NA", "CL"), ("NA+1", "CL-1"), ("Na1+", "Cl1-"), ("na", "cl")])
def test_upper_case_type_symbols_read_as_elements(tmp_path, na, cl) -> None:
    sites = NACL_SITES.replace(" Na ", f" {na} ").replace(" Cl ", f" {cl} ")
    assert stored(tmp_path, nacl(sites=sites)) == NACL_ROW  # NA and NA+1 were refused as no element


@pytest.mark.parametrize("symbol", ["OH", "OH-1", "XX", "H2O"])
def test_a_type_symbol_that_is_no_element_is_still_refused(tmp_path, symbol) -> None:
    sites = NACL_SITES.replace(" Cl ", f" {symbol} ")
    assert only_reason(tmp_path, nacl(sites=sites)) == (
        f"site Cl1: type symbol {symbol!r} is not an element (a group such as OH, or a typo); write one site per atom"
    )
