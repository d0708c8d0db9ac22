"""A molecular group written as an atom site's symbol (``NO3``, ``NH4``, ``CO3``, ``HO``) is refused, never read
as another element (nobelium, nihonium, cobalt, holmium); no element past einsteinium is stored by any reader;
a file reader's refusal names the file; no library warning leaks out of a reader."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest

from storage.readers import Record, Rejection, read_id_prop_folder, read_optimade
from storage.readers._structure import cell_from_cif, pymatgen_site_element
from storage.validation import StructureError

KW = {"source": "groups", "license": "test"}

HEAD = """data_x
_cell_length_a 4.4
_cell_length_b 4.4
_cell_length_c 4.4
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P m -3 m'
{formula}loop_
_atom_site_label
{typed}_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
"""


def typed_cif(symbol: str, first: str = "K", formula: str = "") -> str:
    """KNO3-like cubic cell: the first site's type symbol ``first`` at the origin, ``symbol`` at the centre."""
    return (
        HEAD.format(formula=formula, typed="_atom_site_type_symbol\n")
        + f"A1 {first} 0 0 0\nB1 {symbol} 0.5 0.5 0.5\n"
    )


def label_cif(label: str, first: str = "K1") -> str:
    """The same cell with labels only (pymatgen reads the element from the label)."""
    return HEAD.format(formula="", typed="") + f"{first} 0 0 0\n{label} 0.5 0.5 0.5\n"


def read_folder(tmp_path: Path, files: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``{source_id: reduced_formula}`` stored and ``{file: reason}`` refused by a folder ingest of ``files``."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "id_prop.csv").write_text("".join(f"{name},-1.0\n" for name in files))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = list(read_id_prop_folder(tmp_path, **KW))
    assert [str(w.message) for w in caught] == []  # nothing reaches the user's terminal
    stored = {i.row["source_id"]: i.row["reduced_formula"] for i in items if isinstance(i, Record)}
    refused = {i.file: i.reason for i in items if isinstance(i, Rejection)}
    return stored, refused


def test_the_trial_kno3_is_refused_not_stored_as_kn(tmp_path):
    stored, refused = read_folder(
        tmp_path, {"kno3.cif": typed_cif("NO3"), "kno3_label.cif": label_cif("NO3")}
    )
    assert stored == {}
    assert refused["kno3.cif"] == (
        "kno3.cif: site B1: type symbol 'NO3' is not an element (a molecular group? an unsigned number after a "
        "type symbol is no charge: a charge needs its sign, Fe3+; a site number follows an element written as "
        "one, Fe1); write one site per atom"
    )
    assert refused["kno3_label.cif"] == (
        "kno3_label.cif: site NO3: the CIF has no _atom_site_type_symbol and the label is not one element (its "
        "letters 'NO' read as No, but the CIF parser builds N); write one site per atom"
    )


GROUPS = ["NO3", "NH4", "NH4+", "NH3", "BH4", "CN", "PO4", "CO3", "HO", "CO", "NO3-", "PO43-"]


@pytest.mark.parametrize("symbol", GROUPS)
def test_a_group_as_a_type_symbol_is_refused(symbol):
    reason = rf"site B1: type symbol '{re.escape(symbol)}' is (not an element|not one element|ambiguous)"
    with pytest.raises(StructureError, match=reason):
        cell_from_cif(typed_cif(symbol))


@pytest.mark.parametrize("label", ["NO3", "NH4", "CO3a", "CN1", "HO1", "PO4"])
def test_a_group_as_a_label_is_refused(label):
    with pytest.raises(
        StructureError, match=rf"site {label}: the CIF has no _atom_site_type_symbol and the label is"
    ):
        cell_from_cif(label_cif(label))


def test_element_symbols_charges_and_site_numbers_still_read():
    for first, symbol, species in [
        ("K", "Cl", ["K", "Cl"]),
        ("K+", "Cl-", ["K", "Cl"]),
        ("K1+", "Cl1-", ["K", "Cl"]),
        ("K+1", "CL-1", ["K", "Cl"]),  # FullProf
        ("NA", "CL", ["Na", "Cl"]),  # SHELX upper case: A and L are no element symbols
        ("Ti0", "O0", ["Ti", "O"]),  # the neutral state, in the mirror
        ("Co", "O2-", ["Co", "O"]),
        ("Fe1", "O2", ["Fe", "O"]),  # an element in its own letter case with a site number
        ("Co3", "O1", ["Co", "O"]),  # cobalt site 3; CO3 (carbonate's letters) is refused above
    ]:
        assert cell_from_cif(typed_cif(symbol, first=first)).species == species, (first, symbol)
    for first, label, species in [
        ("K1", "Cl1", ["K", "Cl"]),
        ("Fe1", "O2a", ["Fe", "O"]),
        ("NA1", "CL1", ["Na", "Cl"]),
    ]:
        assert cell_from_cif(label_cif(label, first=first)).species == species, (first, label)


def test_an_upper_case_pair_is_read_as_the_element_when_the_declared_formula_names_it():
    declared = "_chemical_formula_sum 'Co O'\n"
    assert cell_from_cif(typed_cif("O", first="CO", formula=declared)).species == ["Co", "O"]
    with pytest.raises(
        StructureError,
        match="type symbol 'CO' is ambiguous: upper-case 'CO' is the element Co or the group C",
    ):
        cell_from_cif(typed_cif("O", first="CO"))


def test_the_check_reads_a_symbol_as_the_parser_builds_it():
    assert pymatgen_site_element("NO3") == "N"  # the disagreement the trial found: nobelium by its letters
    assert pymatgen_site_element("NH4") == "Nh"
    assert pymatgen_site_element("Fe3+") == "Fe"


@pytest.mark.parametrize("symbol", ["No", "Nh", "Bh", "Cn", "Fm", "Og"])
def test_no_element_past_einsteinium_is_stored_by_any_reader(tmp_path, symbol):
    poscar = f"KX\n1.0\n4.4 0 0\n0 4.4 0\n0 0 4.4\nK {symbol}\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"
    stored, refused = read_folder(tmp_path, {"a.cif": typed_cif(symbol), "b.vasp": poscar})
    assert stored == {}
    for name in ("a.cif", "b.vasp"):
        assert refused[name].startswith(f"{name}: element {symbol} (Z = ")
        assert "has no measured crystal structure (nothing past Z = 99, einsteinium" in refused[name]
    entry = {
        "type": "structures",
        "id": "knh",
        "attributes": {
            "lattice_vectors": [[4.4, 0, 0], [0, 4.4, 0], [0, 0, 4.4]],
            "cartesian_site_positions": [[0, 0, 0], [2.2, 2.2, 2.2]],
            "species_at_sites": ["K", symbol],
            "species": [
                {"name": "K", "chemical_symbols": ["K"], "concentration": [1.0]},
                {"name": symbol, "chemical_symbols": [symbol], "concentration": [1.0]},
            ],
            "nperiodic_dimensions": 3,
        },
    }
    path = tmp_path / "response.json"
    path.write_text(json.dumps({"data": [entry]}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = list(read_optimade(path, **KW))
    assert [str(w.message) for w in caught] == []  # was: No Pauling electronegativity for Nh
    assert [type(i) for i in items] == [Rejection]
    assert items[0].reason.startswith(f"element {symbol} (Z = ")


def test_einsteinium_and_lighter_still_read():
    assert cell_from_cif(typed_cif("Cl", first="Es")).species == ["Es", "Cl"]


def test_a_cif_refusal_names_its_file_like_a_poscar_one(tmp_path):
    brucite_like = typed_cif("OH")
    dense = typed_cif("Cl").replace("4.4", "1.0")
    _, refused = read_folder(tmp_path, {"oh.cif": brucite_like, "dense.cif": dense})
    assert refused["oh.cif"].startswith("oh.cif: site B1: type symbol 'OH' is not an element")
    assert refused["dense.cif"].startswith("dense.cif: ")
    assert not refused["dense.cif"].startswith("dense.cif: dense.cif")


def test_no_library_warning_leaks_from_a_reader(tmp_path, monkeypatch):
    import storage.readers._structure as structure

    checked = structure.check_cell

    def warning_check(cell):  # a library that warns while a structure is finished (pymatgen did for Nh)
        warnings.warn("No Pauling electronegativity for Xx. Setting to NaN.", UserWarning, stacklevel=1)
        checked(cell)

    monkeypatch.setattr(structure, "check_cell", warning_check)
    stored, refused = read_folder(tmp_path, {"kcl.cif": typed_cif("Cl")})  # asserts that nothing was caught
    assert (stored, refused) == ({"kcl": "KCl"}, {})


def test_spglib_prints_nothing_while_ingest_finds_a_space_group():
    """spglib's C library printed ``spglib: ssm_get_exact_positions failed.`` to the terminal during ``csp ingest
    run`` (storage's own space-group call ran outside ``quiet_spglib``); a fresh interpreter, as the switch is
    process-wide."""
    import os
    import subprocess
    import sys

    code = (
        "from storage.readers._structure import spacegroup_number\n"
        "print(spacegroup_number([[4.2927, -1.4466, 1.1768], [2.8782, 3.9691, -1.8632], [-0.5993, -0.0153, 2.4875]],"
        " [[0.3504, 0.6874, 0.7584], [0.3502, 0.6772, 0.7407], [0.3494, 0.7049, 0.7469]], [12, 8, 8]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SPGLIB_WARNING"}
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    assert (done.stdout, done.stderr) == ("3\n", "")


def test_one_fault_of_many_files_is_one_kind_of_reason_naming_the_first_file(tmp_path):
    from storage.ingest import ingest_records
    from storage.lake import Lake

    folder = tmp_path / "in"
    folder.mkdir()
    files = {"a.cif": typed_cif("NO3"), "b.cif": typed_cif("NO3"), "c.cif": typed_cif("HO")}
    for name, text in files.items():
        (folder / name).write_text(text)
    (folder / "id_prop.csv").write_text("".join(f"{name},-1.0\n" for name in files))
    report = ingest_records(
        Lake(tmp_path / "home"), read_id_prop_folder(folder, **KW), source="groups", run_id="r"
    )
    kinds = report.reasons()
    assert [n for _, n in kinds] == [2, 1]
    assert kinds[0][0].startswith("a.cif: site B1: type symbol 'NO3' is not an element")
    assert kinds[1][0].startswith("c.cif: site B1: type symbol 'HO' is ambiguous")


@pytest.mark.parametrize("symbol", ["NH4+", "NH", "CN"])
def test_a_pair_whose_element_has_no_crystal_is_told_it_is_a_group_never_to_write_that_element(symbol):
    """NH4+ was told 'write Nh for the element', advice whose result ingest then refuses (no measured crystal)."""
    with pytest.raises(StructureError) as err:
        cell_from_cif(typed_cif(symbol))
    assert "no measured crystal structure" in str(err.value) and "write one site per atom" in str(err.value)
    assert "write Nh" not in str(err.value) and "write Cn" not in str(err.value)
