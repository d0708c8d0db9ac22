"""Issue 22, items 2-4: each file a parser would misread is stored correctly or quarantined with its reason.

The fixtures (``tests/fixtures/issue22``) are the bad inputs of the issue, written small: Bi in the
rhombohedral setting (with and without ``:R``), Si in origin choice 2 of F d -3 m, brucite with an ``OH`` type
symbol and with deuterium, a POSCAR with more coordinate lines than its counts, an OPTIMADE entry with
assemblies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storage.lake import Lake
from storage.readers._structure import Cell, cell_from_cif, declared_cif_formula, reading_problem
from storage.readers.user_formats import cell_from_optimade, cell_from_poscar
from storage.validation import StructureError, check_geometry, compare_formulas, density_g_per_cm3
from tests.flows.cli_process import invoke_csp

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "issue22"


def read(name: str):
    text = (FIXTURES / name).read_text()
    cell = cell_from_cif(text)
    return cell, reading_problem(cell, declared=declared_cif_formula(text), cif=text)


@pytest.mark.parametrize("name", ["bi_r_setting.cif", "bi_no_setting.cif"])
def test_rhombohedral_bi_is_read_in_its_own_setting(name):
    cell, problem = read(name)
    assert problem is None
    assert cell.species == ["Bi", "Bi"]  # pymatgen alone: 36 Bi at 176.5 g/cm^3, atoms 0.78 A apart
    assert density_g_per_cm3(cell.lattice, cell.species) == pytest.approx(9.81, abs=0.01)  # Bi: 9.8 g/cm^3


@pytest.mark.slow
def test_si_in_origin_choice_2_is_read_as_its_8_declared_atoms():
    cell, problem = read("si_origin2.cif")
    assert problem is None and cell.species == ["Si"] * 8  # pymatgen alone: 16
    assert density_g_per_cm3(cell.lattice, cell.species) == pytest.approx(2.33, abs=0.01)


@pytest.mark.slow
def test_an_origin_choice_nothing_decides_is_refused():
    text = (FIXTURES / "si_origin2.cif").read_text().replace("_chemical_formula_sum 'Si8'\n", "")
    with pytest.raises(
        StructureError, match="names no origin choice and both origin choice 1 and origin choice 2"
    ):
        cell_from_cif(text)
    assert len(cell_from_cif(text.replace("'F d -3 m'", "'F d -3 m :2'")).species) == 8


def test_bi_expanded_with_the_wrong_operations_is_refused_by_its_declared_count():
    text = (FIXTURES / "bi_wrong_operations.cif").read_text()
    # hexagonal-setting operations on the rhombohedral cell are no isometries of it: refused before expansion
    with pytest.raises(StructureError, match=r"symmetry operation '[^']+' does not fit the cell"):
        cell_from_cif(text)
    # expanded anyway (as pymatgen alone does), the declared count, the distance rule and the density refuse it
    from pymatgen.io.cif import CifParser

    structure = CifParser.from_str(text).parse_structures(primitive=False)[0]
    cell = Cell(structure.lattice.matrix, [s.specie.symbol for s in structure], structure.frac_coords)
    problem = reading_problem(cell, declared=declared_cif_formula(text), cif=text)
    assert len(cell.species) == 36
    assert problem == (
        "declared formula Bi2 counts 2 atoms, the parsed cell holds 36, not 2 (missing or extra sites, or the "
        "cell read in another setting)"
    )
    # without the declared formula the distance rule and the density bound still refuse it
    with pytest.raises(
        StructureError, match=r"Bi site \d+ and Bi site \d+ are 0.78\d A apart, closer than 1.48 A"
    ):
        check_geometry(cell.lattice, cell.species, cell.frac_coords)


@pytest.mark.parametrize(
    ("declared", "n", "z", "ok"),
    [
        ("Na4 Cl4", 8, 4, True),  # pymatgen writes the cell's formula with Z
        ("Na Cl", 8, 4, True),  # the IUCr convention: the formula unit times Z
        ("Na Cl", 8, None, True),  # a formula in lowest terms may come any number of times
        ("Na Cl", 6, 4, False),
        ("Si8", 16, None, False),  # not in lowest terms: the cell's content
        ("Si8", 8, None, True),
        ("Bi2", 36, 1, False),
    ],
)
def test_the_declared_formula_is_compared_with_its_counts_and_z(declared, n, z, ok):
    species = ["Na", "Cl"] * (n // 2) if "Na" in declared else [declared[:2]] * n
    assert (compare_formulas(declared, species, formula_units=z) is None) is ok


def test_a_declared_density_must_match_and_no_cell_is_denser_than_30_g_cm3():
    text = (FIXTURES / "bi_r_setting.cif").read_text()
    cell = cell_from_cif(text)
    assert reading_problem(cell, cif=text + "_exptl_crystal_density_diffrn 9.80\n") is None
    assert "declared density 4.9 g/cm^3 disagrees with the parsed cell's 9.81" in reading_problem(
        cell, cif=text + "_exptl_crystal_density_diffrn 4.9\n"
    )
    # fcc Os squeezed to 1.457 A between neighbours: just above the distance rule's 1.44 A, 143 g/cm^3
    fcc = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    with pytest.raises(StructureError, match=r"density 14\d.\d g/cm\^3 is above 30 g/cm\^3"):
        check_geometry(np.eye(3) * 2.06, ["Os"] * 4, fcc)


def test_a_type_symbol_that_is_no_element_and_deuterium_are_refused_with_the_site():
    with pytest.raises(StructureError) as info:
        cell_from_cif((FIXTURES / "brucite_oh_symbol.cif").read_text())
    assert str(info.value).startswith("site O1: type symbol 'OH' is not an element")
    with pytest.raises(StructureError) as info:
        cell_from_cif((FIXTURES / "brucite_deuterium.cif").read_text())
    assert str(info.value).startswith("site H1: type symbol 'D' is deuterium")
    # oxidation-state symbols stay readable
    text = (
        (FIXTURES / "brucite_oh_symbol.cif")
        .read_text()
        .replace("O1 OH", "O1 O2-")
        .replace("Mg1 Mg", "Mg1 Mg2+")
    )
    assert sorted(cell_from_cif(text).species) == ["H", "H", "Mg", "O", "O"]
    assert sorted(cell_from_cif(text.replace("Mg1 Mg2+", "Mg1 Mg0")).species) == ["H", "H", "Mg", "O", "O"]


def test_extra_poscar_coordinate_lines_are_refused():
    with pytest.raises(
        StructureError, match="POSCAR lists 4 coordinate lines but its element counts add up to 2"
    ):
        cell_from_poscar((FIXTURES / "mgo_extra_lines.vasp").read_text())
    assert cell_from_poscar((FIXTURES / "mgo_good.vasp").read_text()).species == ["Mg", "O"]


def test_optimade_assemblies_are_refused():
    import json

    entries = json.loads((FIXTURES / "sige_assemblies.json").read_text())["data"]
    with pytest.raises(StructureError, match="OPTIMADE entry has assemblies"):
        cell_from_optimade(entries[0]["attributes"])
    assert cell_from_optimade(entries[1]["attributes"]).species == ["Si", "Si"]
    with pytest.raises(StructureError, match="declares nsites = 3 but lists 2 sites"):
        cell_from_optimade(entries[1]["attributes"] | {"nsites": 3})


@pytest.mark.slow  # two CLI ingests in process (~10 s)
def test_a_folder_of_bad_files_ingests_with_no_traceback_and_a_summary(tmp_path):
    home = tmp_path / "home"
    folder = invoke_csp(home, "ingest", "folder", str(FIXTURES), "--source", "issue22")
    optimade = invoke_csp(
        home, "ingest", "optimade", str(FIXTURES / "sige_assemblies.json"), "--source", "opt"
    )
    for result in (folder, optimade):
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stdout + result.stderr
    # the summary table: source, read (every record: stored and quarantined), written, quarantined
    assert "│ issue22 │    8 │       4 │           4 │" in folder.stdout
    assert "│ opt    │    2 │       1 │           1 │" in optimade.stdout
    lake = Lake(home)
    stored = {
        r["source_id"]: (r["reduced_formula"], r["nsites"])
        for r in lake.query("SELECT source_id, reduced_formula, nsites FROM structures").to_pylist()
    }
    assert stored == {
        "bi_r_setting": ("Bi", 2),
        "bi_no_setting": ("Bi", 2),
        "si_origin2": ("Si", 8),
        "mgo_good": ("MgO", 2),
        "si-ordered": ("Si", 2),
    }
    reasons = [r["reason"] for r in lake.query("SELECT reason FROM quarantine ORDER BY reason").to_pylist()]
    assert len(reasons) == 5
    for start in (
        "OPTIMADE entry has assemblies",
        "bi_wrong_operations.cif: symmetry operation '-x+y+1/3, y+2/3, z+2/3' does not fit the cell",
        "mgo_extra_lines.vasp: POSCAR lists 4 coordinate lines",
        "brucite_deuterium.cif: site H1: type symbol 'D' is deuterium",
        "brucite_oh_symbol.cif: site O1: type symbol 'OH' is not an element",
    ):
        assert any(reason.startswith(start) for reason in reasons), (start, reasons)
