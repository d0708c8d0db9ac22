"""Issue 22 follow-up (ing22d): whole kinds of user input the ingest got wrong, each stored right or quarantined
with a one-line reason: numbers beyond a float's range, reserved source names, CIF dummy sites, formulas
declared only as moiety or structural, POSCAR counts and per-axis scales, OPTIMADE formula order, the
reduced formula of an element, and a summary that counts rows already in the lake."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from storage.ingest import ingest_records
from storage.lake import Lake
from storage.readers import Record, Rejection, read_optimade
from storage.readers._common import check_energy, parse_float, short_token
from storage.readers._rows import check_finite, label_from_flag
from storage.splits import split_of
from tests.storage.test_cif_checks import CUBE, stored
from tests.storage.test_cif_kinds import NACL_ROW, SITE_HEAD, nacl
from tests.storage.test_no_impossible_crystal import only_reason
from tests.storage.test_optimade_entries import KW, lih

BIG = 10**400


# --- 1. a number beyond a float's range is one record's reason, never the end of the ingest --------------------


@pytest.mark.parametrize("value", [BIG, -(10**499)])
def test_a_400_digit_energy_is_one_quarantine_row_and_the_rest_is_stored(tmp_path, value):
    path = tmp_path / "response.json"
    big = lih("big", _oqmd_delta_e=value)
    path.write_text(
        json.dumps({"data": [lih("before", _oqmd_delta_e=-0.5), big, lih("after", _oqmd_delta_e=-0.4)]})
    )
    items = list(read_optimade(path, **KW, energy_field="_oqmd_delta_e"))
    assert [i.row["source_id"] for i in items if isinstance(i, Record)] == ["before", "after"]
    [rejected] = [i for i in items if isinstance(i, Rejection)]
    digits = len(str(abs(value)))
    sign = "-" if value < 0 else ""
    assert rejected.reason == (
        f"formation energy (_oqmd_delta_e) {sign}{str(abs(value))[: 20 - len(sign)]}... ({digits} digits) "
        "is out of range (beyond +-1.8e308)"
    )
    lake = Lake(tmp_path / "home")
    summary = ingest_records(lake, iter(items), source="opt", run_id="r")
    assert (summary.n_written, summary.n_rejected, summary.n_already_present) == (2, 1, 0)
    again = ingest_records(lake, iter(items), source="opt", run_id="r2")
    assert (again.n_read, again.n_written, again.n_rejected, again.n_already_present) == (3, 0, 1, 2)


def test_every_numeric_parse_turns_overflow_into_a_reason():
    with pytest.raises(ValueError, match=r"\(401 digits\) is out of range"):
        parse_float(BIG)
    assert check_energy(BIG)[1].endswith("(401 digits) is out of range (beyond +-1.8e308)")
    assert check_finite(BIG, "band gap")[1].startswith("band gap 10000000000000000000... (401 digits)")
    with pytest.raises(ValueError, match="is neither 0 nor 1"):
        label_from_flag(BIG)
    with pytest.raises(ValueError, match="is neither 0 nor 1"):
        label_from_flag("inf")


def test_reasons_abbreviate_long_numbers(tmp_path):
    assert short_token(BIG) == "10000000000000000000... (401 digits)"
    assert short_token("x" * 100) == "xxxxxxxxxxxxxxxxxxxx... (100 characters)"
    assert short_token(12345) == "12345"
    path = tmp_path / "response.json"
    path.write_text(json.dumps({"data": [lih("n", nsites=BIG)]}))
    [rejected] = [i for i in read_optimade(path, **KW) if isinstance(i, Rejection)]
    assert (
        rejected.reason
        == "OPTIMADE entry declares nsites = 10000000000000000000... (401 digits) but lists 2 sites"
    )


# --- 2. registered source names are reserved for their own commands --------------------------------------------


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("gnome", "reserved for the registered mirror source that `csp ingest run` writes"),
        ("oqmd_composition_deltae", "reserved for the registered mirror source"),
        ("chgnet-0.3.0", "reserved for chgnet labels that `csp augment ingest` writes"),
        ("sevennet-0", "reserved for sevennet labels"),
    ],
)
def test_user_data_cannot_take_a_reserved_source_name(tmp_path, name, says):
    from storage.ingest import SourceNameError
    from storage.readers import read_id_prop_folder
    from tests.flows.cli_process import invoke_csp, one_line_error

    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.vasp").write_text(
        "NaCl\n1.0\n0 2.8 2.8\n2.8 0 2.8\n2.8 2.8 0\nNa Cl\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"
    )
    (folder / "id_prop.csv").write_text("a.vasp,-2.0\n")
    lake = Lake(tmp_path / "home")
    with pytest.raises(SourceNameError, match=says):
        ingest_records(lake, read_id_prop_folder(folder, source=name, license="x"), source=name, run_id="r")
    assert says in one_line_error(
        invoke_csp(tmp_path / "cli", "ingest", "folder", str(folder), "--source", name)
    )
    assert not (tmp_path / "cli" / "lake").exists()
    report = ingest_records(
        lake, read_id_prop_folder(folder, source="my-gnome", license="x"), source="my-gnome", run_id="r"
    )
    assert report.n_written == 1  # a name of the user's own is stored


@pytest.mark.parametrize(
    ("name", "reserved", "owner"),
    [
        ("Castelli_CDVAE", "castelli_cdvae", "the registered mirror source that `csp ingest run` writes"),
        ("castelli-cdvae", "castelli_cdvae", "the registered mirror source that `csp ingest run` writes"),
        ("GNOME", "gnome", "the registered mirror source that `csp ingest run` writes"),
        ("gnorne", "gnome", "the registered mirror source that `csp ingest run` writes"),
    ],
)
def test_a_look_alike_of_a_reserved_source_name_is_refused_as_reserved(tmp_path, name, reserved, owner):
    """A name differing from a reserved one only by case, separators or look-alike characters is told the name
    is reserved and offered a usable one, never told to add to the reserved source (issue 22)."""
    from storage.ingest import SourceNameError, check_user_source_name

    lake = Lake(tmp_path / "home")
    with pytest.raises(SourceNameError) as refused:
        check_user_source_name(name, lake)
    assert str(refused.value) == (
        f"The source name {name!r} differs only in case, separators or look-alike characters from {reserved!r}, "
        f"which is reserved for {owner}; give your data its own name (e.g. --source my-{name})."
    )
    assert check_user_source_name(f"my-{name}", lake) == f"my-{name}"  # the suggestion is usable
    assert not lake.exists


# --- 3. a CIF dummy site is no atom -----------------------------------------------------------------------------

DUMMY_HEAD = SITE_HEAD + "_atom_site_calc_flag\n"


@pytest.mark.parametrize("flag", ["dum", "DUM", "'dum'"])
def test_a_dummy_site_is_refused_by_name_not_stored_as_an_atom(tmp_path, flag):
    sites = DUMMY_HEAD + f"Na1 Na 0 0 0 d\nCl1 Cl 0.5 0.5 0.5 d\nCl2 Cl 0.25 0.25 0.25 {flag}\n"
    assert only_reason(tmp_path, nacl(sites=sites)) == (
        "site Cl2 is a dummy site (_atom_site_calc_flag dum: a point with no atom on it), which would be stored "
        "as an atom; delete the dummy row(s) from the atom-site loop to store the crystal"
    )


def test_calc_flags_of_real_sites_are_read(tmp_path):
    sites = DUMMY_HEAD + "Na1 Na 0 0 0 d\nCl1 Cl 0.5 0.5 0.5 calc\n"
    assert stored(tmp_path, nacl(sites=sites)) == NACL_ROW


# --- 4. a moiety or structural formula is compared with the sites like a sum formula ----------------------------

P1_CUBE = "data_w\n" + CUBE.format(a="4.5") + "_symmetry_space_group_name_H-M 'P 1'\n"
O_SITE = SITE_HEAD + "O1 O 0 0 0\n"


@pytest.mark.parametrize(
    ("declared", "reason"),
    [
        (
            "_chemical_formula_moiety 'H2 O'",
            "the declared formula (_chemical_formula_moiety 'H2 O') names the elements H, O but no site holds H "
            "(missing, extra or mislabelled sites)",
        ),
        (
            "_chemical_formula_structural 'H2O'",
            "the declared formula (_chemical_formula_structural 'H2O') names the elements H, O but no site holds H "
            "(missing, extra or mislabelled sites)",
        ),
        (
            "_chemical_formula_moiety '2(C6 H6), H2 O'",
            "the declared formula (_chemical_formula_moiety '2(C6 H6), H2 O') names the elements C, H, O but no "
            "site holds C, H (missing, extra or mislabelled sites)",
        ),
        (
            "_chemical_formula_moiety 'O2 Q'",  # no sum can be made of it; its elements still count
            "the declared formula (_chemical_formula_moiety 'O2 Q') names the elements O but the sites hold "
            "Na, which it does not name (missing, extra or mislabelled sites)",
        ),
    ],
)
def test_a_moiety_or_structural_formula_catches_missing_atoms(tmp_path, declared, reason):
    sites = O_SITE if "Q" not in declared else SITE_HEAD + "O1 O 0 0 0\nNa1 Na 0.5 0.5 0.5\n"
    assert only_reason(tmp_path, P1_CUBE + declared + "\n" + sites) == reason


def test_moiety_counts_are_compared_up_to_z(tmp_path):
    from storage.readers._structure import moiety_sum

    assert moiety_sum("2(C6 H6), H2 O") == "C12 H14 O1"
    assert moiety_sum("2(C2 H3 O2 -), Ca 2+") == "C4 H6 O4 Ca1"
    assert moiety_sum("C6 H6 X") is None
    sites = SITE_HEAD + "Na1 Na 0 0 0\nCl1 Cl 0.5 0.5 0.5\nCl2 Cl 0 0.5 0\n"
    reason = only_reason(tmp_path / "a", P1_CUBE + "_chemical_formula_moiety 'Na+, Cl-'\n" + sites)
    assert reason.startswith("declared formula NaCl (Na1 Cl1) disagrees with the sites' formula NaCl2")
    rows = stored(
        tmp_path / "b",
        nacl(symmetry="_symmetry_space_group_name_H-M 'F m -3 m'\n_chemical_formula_moiety 'Na+, Cl-'\n"),
    )
    assert rows == NACL_ROW
    rows = stored(
        tmp_path / "c",
        nacl(
            symmetry="_symmetry_space_group_name_H-M 'F m -3 m'\n_chemical_formula_structural 'NaCl'\n_cell_formula_units_Z 4\n"
        ),
    )
    assert rows == NACL_ROW


@pytest.mark.parametrize("kind", ["iupac", "analytical"])
def test_an_iupac_or_analytical_formula_is_compared_with_the_sites(tmp_path, kind):
    tag = f"_chemical_formula_{kind}"
    assert only_reason(tmp_path / "a", P1_CUBE + f"{tag} 'H2 O'\n" + O_SITE) == (
        f"the declared formula ({tag} 'H2 O') names the elements H, O but no site holds H "
        "(missing, extra or mislabelled sites)"
    )
    sites = SITE_HEAD + "Na1 Na 0 0 0\nCl1 Cl 0.5 0.5 0.5\n"
    reason = only_reason(tmp_path / "b", P1_CUBE + f"{tag} 'Na Cl2'\n" + sites)
    assert reason == (
        "declared formula NaCl2 (Na Cl2) disagrees with the sites' formula NaCl (missing, extra or mislabelled sites)"
    )
    z4 = "_cell_formula_units_Z 4\n"
    agreeing = nacl(symmetry=f"_symmetry_space_group_name_H-M 'F m -3 m'\n{tag} 'Na Cl'\n{z4}")
    assert stored(tmp_path / "c", agreeing) == NACL_ROW


# --- 5. POSCAR counts and per-axis scales; a space-group symbol in any letter case ------------------------------


def poscar(
    scale: str = "1.0", counts: str = "1 1", mode: str = "Direct", coords: str = "0 0 0\n0.5 0.5 0.5\n"
) -> str:
    return f"NaCl\n{scale}\n0 2.82 2.82\n2.82 0 2.82\n2.82 2.82 0\nNa Cl\n{counts}\n{mode}\n{coords}"


def folder_rows(tmp_path: Path, text: str):
    from tests.storage.test_no_impossible_crystal import ingest_folder

    return ingest_folder(tmp_path, {"a.vasp": text})


@pytest.mark.parametrize(
    ("counts", "coords", "reason"),
    [
        (
            "1 0",
            "0 0 0\n",
            "POSCAR counts line (1 0) gives 0 atoms of a species; every count must be 1 or more",
        ),
        (
            "1 -1",
            "0 0 0\n",
            "POSCAR counts line (1 -1) gives -1 atoms of a species; every count must be 1 or more",
        ),
        ("0 2", "0 0 0\n0.5 0.5 0.5\n", "POSCAR counts line (0 2) gives 0 atoms"),
    ],
)
def test_a_zero_or_negative_poscar_count_is_refused(tmp_path, counts, coords, reason):
    stored_rows, quarantined = folder_rows(tmp_path, poscar(counts=counts, coords=coords))
    assert stored_rows == [] and len(quarantined) == 1
    assert quarantined[0]["reason"].startswith(f"a.vasp: {reason}")


def test_per_axis_scale_factors_scale_the_cartesian_components(tmp_path):
    from storage.readers.user_formats import cell_from_poscar

    cell = cell_from_poscar(poscar(scale="1.0 1.0 2.0"))
    assert np.allclose(cell.lattice, [[0, 2.82, 5.64], [2.82, 0, 5.64], [2.82, 2.82, 0]])
    cart = cell_from_poscar(poscar(scale="1 1 2", mode="Cartesian", coords="0 0 0\n2.82 2.82 2.82\n"))
    assert np.allclose(cart.lattice, cell.lattice)
    assert np.allclose(np.sort(cart.frac_coords, axis=0), [[0, 0, 0], [0.5, 0.5, 0.5]], atol=1e-9)
    same = cell_from_poscar(poscar(scale="2 2 2"))
    assert np.allclose(same.lattice, cell_from_poscar(poscar(scale="2.0")).lattice)
    stored_rows, _ = folder_rows(tmp_path, poscar(scale="1.0 1.0 1.0"))
    assert stored_rows == [{"source_id": "a", "reduced_formula": "NaCl", "nsites": 2, "spacegroup": 225}]


def test_per_axis_scale_factors_must_be_positive(tmp_path):
    _, quarantined = folder_rows(tmp_path, poscar(scale="1.0 -1.0 1.0"))
    assert quarantined[0]["reason"] == (
        "a.vasp: POSCAR scale line gives the per-axis factors 1.0 -1.0 1.0; VASP requires all three positive "
        "(a negative single number is a volume, three numbers scale x, y and z)"
    )


SCALE_RULE = "the scale line holds 1 number (a scale factor, or a negative cell volume) or 3 (factors for x, y and z)"
COUNTS_RULE = "counts are positive integers, the number of atoms of each element (e.g. 1 1)"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"counts": "1 1.0"}, f"POSCAR line 7 (1 1.0), the counts line, holds '1.0'; {COUNTS_RULE}"),
        ({"counts": "1 x"}, f"POSCAR line 7 (1 x), the counts line, holds 'x'; {COUNTS_RULE}"),
        ({"scale": "1.0 1.0"}, f"POSCAR line 2 (1.0 1.0) holds 2 numbers; {SCALE_RULE}"),
        ({"scale": "1 1 1 1"}, f"POSCAR line 2 (1 1 1 1) holds 4 numbers; {SCALE_RULE}"),
        ({"scale": "big"}, f"POSCAR line 2 (big) holds 'big', which is no number; {SCALE_RULE}"),
    ],
    ids=["counts-float", "counts-word", "scale-2", "scale-4", "scale-word"],
)
def test_a_malformed_scale_or_counts_line_is_one_line_naming_it(tmp_path, changes, reason):
    """Issue 22: pymatgen's "invalid literal for int()" / "could not convert string to float" was the reason."""
    stored_rows, quarantined = folder_rows(tmp_path, poscar(**changes))
    assert stored_rows == [] and [q["reason"] for q in quarantined] == [f"a.vasp: {reason}"]


def test_a_vasp4_counts_line_of_no_integers_is_named(tmp_path):
    text = "NaCl\n1.0\n0 2.82 2.82\n2.82 0 2.82\n2.82 2.82 0\n1 1.0\nDirect\n0 0 0\n0.5 0.5 0.5\n"
    _, quarantined = folder_rows(tmp_path, text)
    assert quarantined[0]["reason"] == f"a.vasp: POSCAR line 6 (1 1.0), the counts line, holds '1.0'; {COUNTS_RULE}"


FINITE = "which is no finite number (beyond +-1.8e308, inf or nan)"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            poscar().replace("0 2.82 2.82\n", "1e999 2.82 2.82\n", 1),
            f"POSCAR line 3 (1e999 2.82 2.82) holds '1e999', {FINITE}; a lattice line holds the 3 Cartesian "
            "components of a cell vector",
        ),
        (poscar(scale="1e999"), f"POSCAR line 2 (1e999) holds '1e999', {FINITE}; {SCALE_RULE}"),
        (
            poscar(coords="0 0 0\n0.5 0.5 -1e999\n"),
            f"POSCAR line 10 (0.5 0.5 -1e999) holds '-1e999', {FINITE}; a coordinate line begins with 3 numbers",
        ),
        (
            poscar().replace("2.82 2.82 0\n", "2.82 2.82\n", 1),
            "POSCAR line 5 (2.82 2.82) holds 2 numbers; a lattice line holds the 3 Cartesian components of a "
            "cell vector",
        ),
    ],
    ids=["lattice-inf", "scale-inf", "position-inf", "lattice-2"],
)
def test_a_non_finite_poscar_number_is_refused_up_front_without_a_warning(tmp_path, text, reason):
    """Issue 22: ``1e999`` (infinity) made numpy warn "invalid value encountered" before the refusal."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stored_rows, quarantined = folder_rows(tmp_path, text)
    assert stored_rows == [] and [q["reason"] for q in quarantined] == [f"a.vasp: {reason}"]


def test_a_non_finite_optimade_number_is_refused_without_a_warning(tmp_path):
    path = tmp_path / "response.json"
    entries = [
        lih("inf-position", cartesian_site_positions=[[0, 0, 0], [2, 2, float("inf")]]),
        lih("inf-lattice", lattice_vectors=[[float("inf"), 0, 0], [0, 4.0, 0], [0, 0, 4.0]]),
        lih("good"),
    ]
    path.write_text(json.dumps({"data": entries}).replace("Infinity", "1e999"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        items = list(read_optimade(path, **KW))
    assert [i.row["source_id"] for i in items if isinstance(i, Record)] == ["good"]
    assert {i.source_id: i.reason for i in items if isinstance(i, Rejection)} == {
        "inf-position": "lattice or coordinates contain NaN or infinity",
        "inf-lattice": "lattice or coordinates contain NaN or infinity",
    }


@pytest.mark.parametrize("symbol", ["f m -3 m", "F M -3 M", "fm-3m"])
def test_a_space_group_symbol_reads_in_any_letter_case(tmp_path, symbol):
    assert stored(tmp_path, nacl(symmetry=f"_symmetry_space_group_name_H-M '{symbol}'\n")) == NACL_ROW


def test_a_rhombohedral_symbol_in_lower_case_keeps_its_setting():
    from storage.readers._structure import _symbol_case

    assert _symbol_case("r-3mh") == "R-3mH"
    assert _symbol_case("P21/n") == "P21/n"
    assert _symbol_case("Fd-3m:2") == "Fd-3m:2"


# --- 6. OPTIMADE's reduced formula lists its elements in alphabetical order -------------------------------------


@pytest.mark.parametrize(
    ("reduced", "reason"),
    [
        (
            "LiH",
            "OPTIMADE entry declares chemical_formula_reduced 'LiH', whose elements are not in alphabetical order "
            "as OPTIMADE requires (write 'HLi')",
        ),
        (None, None),
        ("HLi", None),
    ],
)
def test_a_reduced_formula_out_of_alphabetical_order_is_refused(tmp_path, reduced, reason):
    path = tmp_path / "response.json"
    entry = lih("x") if reduced is None else lih("x", chemical_formula_reduced=reduced)
    path.write_text(json.dumps({"data": [entry]}))
    [item] = read_optimade(path, **KW)
    if reason is None:
        assert isinstance(item, Record) and item.row["reduced_formula"] == "LiH"
    else:
        assert isinstance(item, Rejection) and item.reason == reason


# --- 7. an element's reduced formula is its symbol, and its split is the one it always had ----------------------


def test_an_elemental_cell_is_stored_as_its_symbol(tmp_path):
    # molecular crystals, as a user's file holds them: an O2 (O-O 1.21 A) and an H2 molecule (H-H 0.74 A) per cell,
    # neighbours 2.2-3.4 A away (atoms 4.5 A from any other, as before, are a cell in Bohr to the user-file check)
    o2 = "O\n1.0\n4.0 0 0\n0 3.3 0\n0 0 3.3\nO\n2\nDirect\n0 0 0\n0.3025 0 0\n"
    h2 = "H\n1.0\n3.4 0 0\n0 3.4 0\n0 0 3.4\nH\n2\nDirect\n0 0 0\n0.21765 0 0\n"
    from tests.storage.test_no_impossible_crystal import ingest_folder

    stored_rows, quarantined = ingest_folder(tmp_path, {"o.vasp": o2, "h.vasp": h2})
    assert quarantined == []
    assert sorted((r["source_id"], r["reduced_formula"]) for r in stored_rows) == [("h", "H"), ("o", "O")]
    lake = Lake(tmp_path / "home")
    assert lake.query("SELECT count(*) AS n FROM structures WHERE reduced_formula = 'H'").to_pylist() == [
        {"n": 1}
    ]


def test_an_older_lakes_molecular_names_read_as_symbols(tmp_path):
    lake = Lake(tmp_path / "home")
    ingest_records(lake, iter([_elemental_record("old-o", "O2")]), source="t", run_id="r")  # as before ing22d
    assert lake.query("SELECT reduced_formula, split FROM structures").to_pylist() == [
        {"reduced_formula": "O", "split": split_of("O2")}
    ]


def test_element_splits_are_computed_as_before():
    from storage.splits import normalise_formula

    for symbol, molecule in (("H", "H2"), ("N", "N2"), ("O", "O2"), ("F", "F2"), ("Cl", "Cl2")):
        assert normalise_formula(molecule) == normalise_formula(f"{symbol}4") == symbol
        assert split_of(symbol) == split_of(molecule)  # the hash of pymatgen's name, as rows were split
    assert normalise_formula("Mg2O2") == "MgO" and split_of("MgO") == "train"


def _elemental_record(source_id: str, formula: str) -> Record:
    from storage.readers._rows import structure_scalars
    from storage.readers._structure import structure_fields
    from storage.readers.user_formats import cell_from_poscar

    cell = cell_from_poscar("O\n1.0\n4.5 0 0\n0 4.5 0\n0 0 4.5\nO\n1\nDirect\n0 0 0\n")
    row = structure_scalars(
        source="t",
        source_id=source_id,
        license="x",
        raw_formula=formula,
        dhf=-0.1,
        energy_kind=None,
        extra={},
    )
    return Record("structures", {**row, **structure_fields(cell), "reduced_formula": formula})


def test_a_400_digit_integer_in_a_filter_is_one_line():
    from storage.optimade import FilterError, translate

    with pytest.raises(FilterError, match=r"Number out of range: 1000.*\(401 characters\)") as refused:
        translate(f"nsites<{BIG}")
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300
    assert translate(f"nsites<{2**62}").params == (2**62,)


def test_control_bytes_like_an_escape_in_a_cif_do_not_raise():
    from storage.readers._cif_blocks import _escape, _unescape

    assert _unescape("a\x01ffffffffffff\x02b") == "a\x01ffffffffffff\x02b"
    assert _unescape(_escape("Müller")) == "Müller"


def test_the_lake_and_the_campaigns_spell_reduced_formulas_alike():
    from pymatgen.core import Composition, Element

    from csp.structures.composition import reduced_formula
    from storage.splits import reduced_formula_of

    formulas = [f"{el.symbol}{n}" for el in Element if el.Z <= 103 for n in (1, 2)] + ["H2O", "O2Li4", "HO"]
    for formula in formulas:
        assert reduced_formula_of(Composition(formula)) == reduced_formula(Composition(formula)), formula


def test_an_integer_beyond_pythons_digit_limit_is_one_entry_not_the_file(tmp_path):
    """5,000 digits: past the 4,300 Python's int() takes, so json.loads once refused the whole file."""
    path = tmp_path / "response.json"
    text = json.dumps({"data": [lih("good", _oqmd_delta_e=-0.3), lih("huge", _oqmd_delta_e=0)]})
    path.write_text(text.replace('"_oqmd_delta_e": 0', '"_oqmd_delta_e": ' + "9" * 5000))
    items = list(read_optimade(path, **KW, energy_field="_oqmd_delta_e"))
    assert [i.row["source_id"] for i in items if isinstance(i, Record)] == ["good"]
    [rejected] = [i for i in items if isinstance(i, Rejection)]
    assert rejected.source_id == "huge" and len(rejected.reason) < 200
