"""Issue 22 follow-up (fu22b): every CIF check runs on the block that holds the structure, on values read by
the CIF tokenizer, and nothing a CIF states is dropped, wrapped or guessed.

Each test ingests tiny files through ``id_prop.csv`` folders into a real lake and asserts the quarantine row
with its reason, or the crystal stored (formula, sites, space group).
"""

from __future__ import annotations

import inspect
import re

import pytest
from pymatgen.symmetry.groups import SpaceGroup

from storage.readers._structure import SYMOP_TAGS, SYMOP_TAGS_PYMATGEN_READS, cell_from_cif
from storage.validation import StructureError
from tests.storage.test_no_impossible_crystal import ingest_folder, only_reason

CUBE = """_cell_length_a {a}
_cell_length_b {a}
_cell_length_c {a}
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
"""
SITES = """loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
{rows}"""
LIH_ROWS = "Li1 Li 0 0 0 1\nH1 H 0.5 0.5 0.5 1\n"
FM3M = "_symmetry_space_group_name_H-M 'F m -3 m'\n"
P1 = "_symmetry_space_group_name_H-M 'P 1'\n"  # read without pymatgen's parser
GLOBAL = "data_global\n_publ_section_title 'LiD neutron study'\n_journal_name_full 'Acta Cryst.'\n\n"


def lih(
    *, symmetry: str = FM3M, rows: str = LIH_ROWS, extra: str = "", a: str = "4.083", name: str = "I"
) -> str:
    """Rock-salt LiH (a = 4.083 A) as one data block."""
    return f"data_{name}\n" + CUBE.format(a=a) + symmetry + extra + SITES.format(rows=rows)


def stored(tmp_path, text: str) -> list[dict]:
    rows, quarantined = ingest_folder(tmp_path, {"a.cif": text})
    assert quarantined == [], quarantined
    return rows


def operations(*ops: str, tag: str = "_symmetry_equiv_pos_as_xyz") -> str:
    return f"loop_\n{tag}\n" + "".join(f"'{op}'\n" for op in ops)


FCC_OPS = [op.as_xyz_str() for op in SpaceGroup("F m -3 m").symmetry_ops]


# --- 1. a multi-block CIF (data_global + data_I) is checked on its structure block ---------------------------


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        (
            lih(rows="Li1 Li 0 0 0 1\nD1 D 0.5 0.5 0.5 1\n"),
            "site D1: type symbol 'D' is deuterium, which the lake does not store as an element",
        ),  # was stored as LiH
        (
            lih(rows="Li1 Li 0 0 0 1\nO1 OH 0.5 0.5 0.5 1\n"),
            "site O1: type symbol 'OH' is not an element",
        ),  # the OH site was dropped: Li
        (
            lih(a="-4.083"),
            "cell length a = -4.083 A is not a positive finite length",
        ),  # was the flipped vector
        (
            lih(rows=LIH_ROWS + "Na1 Na 0.25 0.25 0.25 -1\n"),
            "site Na1: occupancy -1 is not a number in (0, 1]",
        ),  # the Na site was dropped
        (
            lih(symmetry=operations("x, y, z", "-y, x, z"), rows="Li1 Li 0.2 0.1 0 1\nH1 H 0.5 0.5 0.5 1\n"),
            "the symmetry operations (2 listed) do not form a group: '-y, x, z' after '-y, x, z'",
        ),  # stored as Li2H
    ],
    ids=["deuterium", "OH", "negative-length", "occupancy-1", "no-group"],
)
def test_a_multi_block_cif_is_checked_on_its_structure_block(tmp_path, block, reason) -> None:
    assert only_reason(tmp_path, GLOBAL + block).startswith(reason)


def test_a_two_block_cif_given_only_its_symbol_reads_as_one_block_does(tmp_path) -> None:
    extra = "_chemical_formula_sum 'H Li'\n_cell_formula_units_Z 4\n"
    expected = [{"source_id": "a", "reduced_formula": "LiH", "nsites": 8, "spacegroup": 225}]
    assert (
        stored(tmp_path / "two", GLOBAL + lih(extra=extra)) == expected
    )  # was refused: "lists no operations"
    assert stored(tmp_path / "one", lih(extra=extra)) == expected


def test_a_cif_with_two_structure_blocks_is_refused_naming_them(tmp_path) -> None:
    reason = only_reason(tmp_path, lih(name="a") + "\n" + lih(name="b"))
    assert reason == (
        "the CIF holds 2 structures (data blocks data_a, data_b), one was expected; split it into one file per "
        "structure"
    )


def test_the_global_block_lends_the_structure_nothing(tmp_path) -> None:
    # a formula in data_global says nothing about data_I's sites (CIF blocks are independent)
    glob = GLOBAL.replace("\n\n", "\n_chemical_formula_sum 'Mg O'\n\n")
    assert stored(tmp_path, glob + lih())[0]["reduced_formula"] == "LiH"


# --- 2. an occupancy that is no number in (0, 1] -------------------------------------------------------------


@pytest.mark.parametrize("symmetry", [P1, FM3M], ids=["p1-path", "pymatgen-path"])
@pytest.mark.parametrize(
    ("occupancy", "shown"), [("?", "'?'"), (".", "'.'"), ("-1", "-1"), ("0", "0"), ("full", "'full'")]
)
def test_an_occupancy_that_is_no_number_in_0_1_is_refused(tmp_path, symmetry, occupancy, shown) -> None:
    reason = only_reason(
        tmp_path, lih(symmetry=symmetry, rows=f"Li1 Li 0 0 0 {occupancy}\nH1 H 0.5 0.5 0.5 1\n")
    )
    assert reason == (
        f"site Li1: occupancy {shown} is not a number in (0, 1] (read as written, the site would be dropped); "
        "give the site's occupancy, 1 for a full site"
    )


# --- 3. declared formula, Z and density read by the CIF tokenizer ----------------------------------------------

BRUCITE = """data_brucite
{formula}_cell_length_a 3.147
_cell_length_b 3.147
_cell_length_c 4.769
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 120
_symmetry_space_group_name_H-M 'P -3 m 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Mg1 Mg 0 0 0
O1 O 0.3333 0.6667 0.22
"""


@pytest.mark.parametrize(
    "formula",
    [
        "_chemical_formula_sum 'H2 Mg O2'\n",
        "_chemical_formula_sum\n'H2 Mg O2'\n",  # the value on the next line
        "_chemical_formula_sum\n;\nH2 Mg O2\n;\n",  # a text field
        "_chemical_formula_sum 'H2 Mg O2' # from the paper\n",  # a trailing comment
        "_chemical_formula_sum_note 'see text'\n_chemical_formula_sum 'H2 Mg O2'\n",  # a tag that starts alike
    ],
    ids=["same-line", "next-line", "text-field", "comment", "prefix-tag"],
)
def test_the_declared_formula_is_read_wherever_the_cif_puts_it(tmp_path, formula) -> None:
    # brucite without its H: stored as MgO2 with brucite's energy unless the declared formula is read
    assert only_reason(tmp_path, BRUCITE.format(formula=formula)) == (
        "declared formula Mg(HO)2 (H2 Mg O2) disagrees with the sites' formula MgO2 (missing, extra or "
        "mislabelled sites)"
    )


@pytest.mark.parametrize("symmetry", [P1, FM3M], ids=["p1-path", "pymatgen-path"])
@pytest.mark.parametrize(
    ("z", "ok"),
    [
        ("_cell_formula_units_Z\n2\n", False),
        ("_cell_formula_units_Z 2 # from the paper\n", False),
        ("_cell_formula_units_Z\n;\n2\n;\n", False),
        ("_cell_formula_units_Z\n4\n", True),
        ("_cell_formula_units_Z 4 # conventional cell\n", True),
    ],
    ids=["next-line-2", "comment-2", "text-field-2", "next-line-4", "comment-4"],
)
def test_a_declared_z_is_read_wherever_the_cif_puts_it(tmp_path, symmetry, z, ok) -> None:
    rows = LIH_ROWS
    if symmetry == P1:  # the conventional cell's 8 sites written out
        rows = "".join(
            f"Li{i} Li {x} {y} {zz} 1\nH{i} H {(x + 0.5) % 1} {y} {zz} 1\n"
            for i, (x, y, zz) in enumerate([(0, 0, 0), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)])
        )
    text = lih(symmetry=symmetry, rows=rows, extra="_chemical_formula_sum 'H Li'\n" + z)
    if ok:
        assert stored(tmp_path, text)[0]["nsites"] == 8
    else:
        assert only_reason(tmp_path, text) == (
            "declared formula H Li counts 2 atoms, the parsed cell holds 8, not 2 or 4 (Z = 2) (missing or extra "
            "sites, or the cell read in another setting)"
        )


@pytest.mark.parametrize(
    "density",
    ["_exptl_crystal_density_diffrn\n1.50\n", "_exptl_crystal_density_diffrn 1.50 # g/cm3\n"],
    ids=["next-line", "comment"],
)
def test_a_declared_density_is_read_wherever_the_cif_puts_it(tmp_path, density) -> None:
    assert only_reason(tmp_path, lih(extra=density)) == (
        "declared density 1.5 g/cm^3 disagrees with the parsed cell's 0.776 g/cm^3 (missing or extra atoms, or "
        "the cell read in another setting)"
    )


# --- 4. every tag pymatgen reads operations from is checked -----------------------------------------------------


def test_the_operation_tags_checked_are_the_ones_pymatgen_reads() -> None:
    from pymatgen.io.cif import CifParser

    source = inspect.getsource(CifParser.get_symops)
    listed = source[: source.index("if data.data.get(symmetry_label)")]
    assert tuple(re.findall(r'"(_[a-z_]+xyz_?)"', listed)) == SYMOP_TAGS_PYMATGEN_READS
    assert set(SYMOP_TAGS_PYMATGEN_READS) < set(SYMOP_TAGS)


@pytest.mark.parametrize("tag", SYMOP_TAGS)
def test_operations_that_form_no_group_are_refused_under_every_tag(tmp_path, tag) -> None:
    text = lih(
        symmetry=operations("x, y, z", "-y, x, z", tag=tag), rows="Li1 Li 0.2 0.1 0 1\nH1 H 0.5 0.5 0.5 1\n"
    )
    assert only_reason(tmp_path, text).startswith(
        "the symmetry operations (2 listed) do not form a group: '-y, x, z' after '-y, x, z' is none of them"
    )  # under '_symmetry_equiv_pos_as_xyz_' (pymatgen reads it) Li2H was stored


@pytest.mark.parametrize("tag", SYMOP_TAGS)
def test_a_whole_group_reads_under_every_tag(tmp_path, tag) -> None:
    # the CIF2 spelling (pymatgen ignores it and read P1: LiH with 2 sites) is handed to pymatgen too
    text = lih(symmetry=operations(*FCC_OPS, tag=tag))
    assert stored(tmp_path, text) == [
        {"source_id": "a", "reduced_formula": "LiH", "nsites": 8, "spacegroup": 225}
    ]


def test_two_tags_listing_different_groups_are_refused(tmp_path) -> None:
    ops = operations(*FCC_OPS) + operations("x, y, z", "-x, -y, -z", tag="_space_group_symop_operation_xyz")
    assert only_reason(tmp_path, lih(symmetry=ops)) == (
        "the CIF lists two different sets of symmetry operations, under _symmetry_equiv_pos_as_xyz (192) and "
        "_space_group_symop_operation_xyz (2); only one would be applied: keep the one that belongs to this cell"
    )


# --- 5. disorder groups --------------------------------------------------------------------------------------------

DISORDER = """loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
_atom_site_disorder_assembly
_atom_site_disorder_group
{rows}"""


def test_alternative_sites_of_a_disorder_group_are_refused(tmp_path) -> None:
    rows = "Li1 Li 0 0 0 1 . .\nH1 H 0.5 0.5 0.5 1 A 1\nH2 H 0.5 0.5 0.0 1 A 2\n"
    text = lih(symmetry=P1, rows="").replace(SITES.format(rows=""), DISORDER.format(rows=rows))
    assert only_reason(tmp_path, text) == (
        "site H1 is in disorder group '1': the CIF lists alternative positions of a disordered part of the "
        "crystal, which the lake does not store (it would keep every alternative); give one ordered structure"
    )  # was stored as LiH2


def test_disorder_columns_without_disorder_still_read(tmp_path) -> None:
    rows = "Li1 Li 0 0 0 1 . .\nH1 H 0.5 0.5 0.5 1 ? 0\n"  # SHELX's part 0 is the ordered part
    text = lih(symmetry=P1, rows="").replace(SITES.format(rows=""), DISORDER.format(rows=rows))
    assert stored(tmp_path, text) == [
        {"source_id": "a", "reduced_formula": "LiH", "nsites": 2, "spacegroup": 221}
    ]


# --- 6. absurd fractional coordinates ----------------------------------------------------------------------------


@pytest.mark.parametrize("symmetry", [P1, FM3M], ids=["p1-path", "pymatgen-path"])
@pytest.mark.parametrize(
    ("value", "shown"), [("1e300", "1e+300"), ("12345678901.5", "1.23457e+10"), ("-10.5", "-10.5")]
)
def test_a_coordinate_far_outside_the_cell_is_refused(tmp_path, symmetry, value, shown) -> None:
    reason = only_reason(tmp_path, lih(symmetry=symmetry, rows=f"Li1 Li {value} 0 0 1\nH1 H 0.5 0.5 0.5 1\n"))
    assert reason == (
        f"site Li1: fractional coordinate x = {shown} lies outside -10 to 10 (a fractional coordinate lies in "
        "[0, 1); one this large is no position, or has lost its digits)"
    )  # was wrapped modulo 1 into an arbitrary site


@pytest.mark.parametrize("value", ["?", ".", "1/2"])
def test_a_coordinate_that_is_no_number_is_refused(tmp_path, value) -> None:
    reason = only_reason(tmp_path, lih(rows=f"Li1 Li 0 0 0 1\nH1 H {value} 0.5 0.5 1\n"))
    assert reason == f"site H1: fractional coordinate x {value!r} is not a number; give the site's position"


def test_coordinates_just_outside_the_cell_still_read(tmp_path) -> None:
    assert stored(tmp_path, lih(rows="Li1 Li -1 1 2 1\nH1 H 1.5 -0.5 9.5 1\n"))[0]["nsites"] == 8


# --- 7. ICSD's setting suffixes -------------------------------------------------------------------------------------

BI_HEXAGONAL = """data_Bi
_chemical_formula_sum 'Bi'
_cell_formula_units_Z 6
_cell_length_a 4.546
_cell_length_b 4.546
_cell_length_c 11.862
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 120
_symmetry_space_group_name_H-M '{symbol}'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Bi1 Bi 0 0 0.2339
"""
SI = """data_Si
_chemical_formula_sum 'Si'
_cell_formula_units_Z 8
{cell}_symmetry_space_group_name_H-M '{symbol}'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Si1 Si {xyz}
"""


@pytest.mark.parametrize("symbol", ["R -3 m H", "R -3 m :H", "R -3 m"])
def test_an_icsd_hexagonal_suffix_reads(tmp_path, symbol) -> None:
    expected = [{"source_id": "a", "reduced_formula": "Bi", "nsites": 6, "spacegroup": 166}]
    assert stored(tmp_path, BI_HEXAGONAL.format(symbol=symbol)) == expected  # was "Bad international symbol"


@pytest.mark.slow
@pytest.mark.parametrize(("symbol", "xyz"), [("F d -3 m Z", "0.125 0.125 0.125"), ("F d -3 m S", "0 0 0")])
def test_icsd_origin_choice_suffixes_read(tmp_path, symbol, xyz) -> None:
    text = SI.format(cell=CUBE.format(a=5.431), symbol=symbol, xyz=xyz)
    expected = [{"source_id": "a", "reduced_formula": "Si", "nsites": 8, "spacegroup": 227}]
    assert stored(tmp_path, text) == expected  # 'Z' was refused: "the parsed cell holds 16"


def test_a_setting_suffix_the_cell_contradicts_is_refused(tmp_path) -> None:
    assert only_reason(tmp_path, BI_HEXAGONAL.format(symbol="R -3 m R")) == (
        "the space-group symbol 'R -3 m R' names the rhombohedral setting but the cell (a, b, c = 4.546, 4.546, "
        "11.862 A; alpha, beta, gamma = 90, 90, 120 degrees) has hexagonal axes; fix the symbol or the cell"
    )


# --- 8. operations that are no isometry of the cell ------------------------------------------------------------------


def test_hexagonal_operations_on_a_cubic_cell_are_refused(tmp_path) -> None:
    ops = operations("x, y, z", "-y, x-y, z", "-x+y, -x, z")
    text = lih(symmetry=ops, rows="Li1 Li 0.3 0.1 0 1\nH1 H 0.3 0.1 0.5 1\n")
    assert only_reason(tmp_path, text) == (
        "symmetry operation '-y, x-y, z' does not fit the cell: it turns a, b, c, alpha, beta, gamma = 4.083, "
        "4.083, 4.083 A, 90, 90, 90 degrees into 4.083, 5.774, 4.083 A, 90, 90, 135 degrees (no isometry of this "
        "cell: an operation of another crystal system or setting); list the operations of this cell's space group"
    )  # was stored as a 6-site LiH


def test_a_four_fold_axis_on_a_cell_rounded_to_a_percent_still_reads(tmp_path) -> None:
    ops = operations("x, y, z", "-y, x, z", "-x, -y, z", "y, -x, z")
    text = lih(symmetry=ops, rows=LIH_ROWS).replace("_cell_length_b 4.083", "_cell_length_b 4.085")
    assert stored(tmp_path, text)[0]["reduced_formula"] == "LiH"


# --- 9. characters outside ASCII --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (
            "Li1 \uff2c\uff49 0 0 0 1",
            "site Li1: _atom_site_type_symbol value '\uff2c\uff49' holds '\uff2c' (FULLWIDTH LATIN CAPITAL "
            "LETTER L), a character outside ASCII, which no CIF value of this kind has; write 'Li'",
        ),  # was "malformed CIF: zip() argument 2 is longer than argument 1"
        (
            "Li1 Li \u22120.0 0 0 1",
            "site Li1: _atom_site_fract_x value '\u22120.0' holds '\u2212' (MINUS SIGN), a character outside "
            "ASCII, which no CIF value of this kind has; write '-0.0'",
        ),  # pymatgen deleted the sign
    ],
    ids=["full-width-symbol", "minus-sign"],
)
def test_a_value_outside_ascii_is_refused_with_its_ascii_spelling(tmp_path, row, reason) -> None:
    assert only_reason(tmp_path, lih(rows=row + "\nH1 H 0.5 0.5 0.5 1\n")) == reason


def test_text_outside_ascii_elsewhere_still_reads(tmp_path) -> None:
    extra = "_publ_author_name 'M\u00fcller, J\u00f6rg'\n_publ_section_title\n;\nLiH \u2014 \uff2c\uff49\uff28\n;\n"
    rows = "Li1\u2032 Li 0 0 0 1\nH1 H 0.5 0.5 0.5 1\n"  # a primed label beside a type symbol
    assert stored(tmp_path, lih(extra=extra, rows=rows))[0]["reduced_formula"] == "LiH"


# --- 10. huge cells: a reason, no numpy warnings ---------------------------------------------------------------------


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("symmetry", [P1, FM3M], ids=["p1-path", "pymatgen-path"])
@pytest.mark.parametrize(
    ("a", "reason"),
    [
        ("1e200", "cell length a = 1e+200 A is longer than 10000 A, longer than any crystal's unit cell"),
        ("12000", "cell length a = 12000 A is longer than 10000 A"),
        ("1e-200", "cell length a = 1e-200 A is shorter than 0.5 A"),
        ("0.3", "cell length a = 0.3 A is shorter than 0.5 A"),
    ],
)
def test_a_huge_or_vanishing_cell_is_refused_without_numpy_warnings(tmp_path, symmetry, a, reason) -> None:
    text = lih(symmetry=symmetry).replace(f"_cell_length_a {4.083}", f"_cell_length_a {a}")
    assert only_reason(tmp_path, text).startswith(reason)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_huge_explicit_lattice_is_refused_without_numpy_warnings() -> None:
    from storage.readers._structure import cell_from_arrays, check_cell

    cell = cell_from_arrays([[1e200, 0, 0], [0, 4, 0], [0, 0, 4]], ["Li", "H"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(StructureError, match=r"cell vector a = 1e\+200 A is longer than 10000 A"):
        check_cell(cell)


def test_cell_from_cif_names_the_block_a_tokenizer_cannot_read() -> None:
    with pytest.raises(StructureError, match=r"malformed CIF: data block 'x': a loop_'s values do not fill"):
        cell_from_cif("data_x\n" + CUBE.format(a=4) + SITES.format(rows="Li1 Li 0 0 0\n"))


def test_a_byte_order_mark_hides_no_declared_value() -> None:
    from storage.readers._structure import declared_cif_formula, declared_cif_number

    text = "\ufeff" + lih(extra="_chemical_formula_sum\n'H Li'\n_cell_formula_units_Z 4 # conventional\n")
    assert declared_cif_formula(text) == "H Li"
    assert declared_cif_number(text, "_cell_formula_units_Z") == 4.0
