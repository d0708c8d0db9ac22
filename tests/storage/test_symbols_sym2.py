"""User trial sym2: a 1:1 alkali-oxygen cell is stored as ``KO`` (not pymatgen's peroxide ``K2O2``); a label
``H2O`` is a group, not hydrogen; a type symbol with an impossible charge (``O22-``) is a dimer group, not one
atom; refusal reasons that fit the fault."""

from __future__ import annotations

import json

import pytest

from storage.readers import Record, Rejection, read_id_prop_folder, read_optimade
from storage.readers._structure import cell_from_cif
from storage.splits import normalise_formula, reduced_formula_of, split_of
from storage.validation import StructureError
from tests.storage.test_group_symbols import label_cif, read_folder, typed_cif

KW = {"source": "sym2", "license": "test"}


def rock_salt_poscar(metal: str) -> str:
    return f"{metal}O\n1.0\n0 2.6 2.6\n2.6 0 2.6\n2.6 2.6 0\n{metal} O\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"


@pytest.mark.parametrize("metal", ["Li", "Na", "K", "Rb", "Cs"])
def test_a_one_to_one_alkali_oxygen_cell_is_stored_with_its_plain_formula(tmp_path, metal):
    for name, text in {"a.vasp": rock_salt_poscar(metal)}.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "id_prop.csv").write_text("a.vasp,-1.0\n")
    rows = [i.row for i in read_id_prop_folder(tmp_path, **KW) if isinstance(i, Record)]
    assert [(r["raw_formula"], r["reduced_formula"]) for r in rows] == [(f"{metal}O", f"{metal}O")]


def test_the_optimade_reader_agrees_with_itself_on_ko(tmp_path):
    entry = {
        "type": "structures",
        "id": "ko",
        "attributes": {
            "lattice_vectors": [[0, 2.6, 2.6], [2.6, 0, 2.6], [2.6, 2.6, 0]],
            "cartesian_site_positions": [[0, 0, 0], [2.6, 2.6, 2.6]],
            "species_at_sites": ["K", "O"],
            "species": [
                {"name": "K", "chemical_symbols": ["K"], "concentration": [1.0]},
                {"name": "O", "chemical_symbols": ["O"], "concentration": [1.0]},
            ],
            "chemical_formula_reduced": "KO",
            "nperiodic_dimensions": 3,
        },
    }
    path = tmp_path / "response.json"
    path.write_text(json.dumps({"data": [entry]}))
    rows = [i.row for i in read_optimade(path, **KW) if isinstance(i, Record)]
    assert [r["reduced_formula"] for r in rows] == ["KO"]


def test_no_special_name_of_pymatgen_leaks_and_no_split_moves():
    from pymatgen.core import Composition

    for written, plain in [("K2O2", "KO"), ("H2O2", "HO"), ("Li4O4", "LiO"), ("KO2", "KO2"), ("O2", "O")]:
        assert reduced_formula_of(Composition(written)) == plain
        assert normalise_formula(written) == plain
    assert split_of("KO") == split_of("K2O2")  # rows stored before keep their split
    assert split_of("HO") == split_of("H2O2")


def test_the_lake_views_read_a_stored_peroxide_name_as_the_plain_formula():
    import duckdb

    from storage.splits import MOLECULAR_NAMES_SQL

    got = duckdb.sql(
        f"SELECT {MOLECULAR_NAMES_SQL} FROM (VALUES ('K2O2'), ('Rb2O2'), ('H2O2'), ('O2'), ('KO2')) t(reduced_formula)"
    ).fetchall()
    assert [g[0] for g in got] == ["KO", "RbO", "HO", "O", "KO2"]


def nacl_labels(label: str) -> str:
    """The trial's NaCl template with labels only, ``label`` at the centre."""
    return label_cif(label, first="Na1")


@pytest.mark.parametrize("label", ["H2O", "H2O1", "H3O", "N1H4"])
def test_a_formula_as_a_label_is_refused_not_stored_as_its_first_element(tmp_path, label):
    stored, refused = read_folder(tmp_path, {"x.cif": nacl_labels(label)})
    assert stored == {}  # was NaH
    assert refused["x.cif"] == (
        f"x.cif: site {label}: the CIF has no _atom_site_type_symbol and the label is a chemical formula, not one "
        f"element's site name ({label[:2]} {label[2:]}, a group such as water that the CIF parser reads as "
        f"{label[0]} alone; a site name is an element, a site number and a suffix: O1W, Fe1, O2a); write one "
        "site per atom"
    )


@pytest.mark.parametrize(
    ("label", "species"),
    [("O1W", "O"), ("O2W", "O"), ("H1W", "H"), ("Fe1", "Fe"), ("O2a", "O"), ("H2A", "H"), ("Cl1", "Cl")],
)
def test_a_site_name_with_a_number_and_a_suffix_still_reads(label, species):
    """H1W is water's hydrogen 1 in SHELX naming, as O1W is its oxygen: both read (a decision of sym2)."""
    assert cell_from_cif(nacl_labels(label)).species == ["Na", species]


def test_a_riding_hydrogen_named_after_its_oxygen_site_reads():
    text = nacl_labels("H2O") + "O2 0.25 0.25 0.25\n"
    assert sorted(set(cell_from_cif(text).species)) == ["H", "Na", "O"]


@pytest.mark.parametrize(
    ("symbol", "group"),
    [
        ("O22-", "O2 with charge 2-"),
        ("C22-", "C2 with charge 2-"),
        ("S22-", "S2 with charge 2-"),
        ("Hg22+", "Hg2 with charge 2+"),
    ],
)
def test_a_charge_above_eight_is_a_dimer_not_one_atom(tmp_path, symbol, group):
    stored, refused = read_folder(tmp_path, {"x.cif": typed_cif(symbol, first="Ba")})
    assert stored == {}  # was BaO, BaC, BaS, BaHg
    charge = symbol[len(group.split()[0]) - 1 :]
    assert refused["x.cif"] == (
        f"x.cif: site B1: type symbol {symbol!r} is not one atom: the charge {charge} is above any ion's (at most 8, "
        f"Os8+), so it reads as a dimer group, {group} (such as peroxide O2 2-, acetylide C2 2-, Hg2 2+); write "
        "one site per atom"
    )


def test_os8_plus_reads():
    assert cell_from_cif(typed_cif("O2-", first="Os8+")).species == ["Os", "O"]


def test_a_charge_written_twice_is_refused():
    with pytest.raises(StructureError) as caught:
        cell_from_cif(typed_cif("Fe3+2"))
    assert str(caught.value) == (
        "site B1: type symbol 'Fe3+2' is not one ion: it gives a number on both sides of its sign (Fe3+2); a "
        "charge is written once, with one sign (Fe3+ or Fe+3)"
    )
    with pytest.raises(StructureError, match=r"type symbol 'Fe\+3\+' is not one ion: it gives two charges"):
        cell_from_cif(typed_cif("Fe+3+"))


def test_a_mixed_valence_state_reads_as_its_element():
    """Fe2.5+ (magnetite's octahedral iron, from bond valences) is one iron site: read as Fe (a decision)."""
    assert cell_from_cif(typed_cif("O2-", first="Fe2.5+")).species == ["Fe", "O"]
    assert cell_from_cif(typed_cif("O2-", first="Mn+3.5")).species == ["Mn", "O"]


@pytest.mark.parametrize(("symbol", "group", "charge"), [("PO4-3", "PO4", "-3"), ("SO4-2", "SO4", "-2")])
def test_a_group_with_a_signed_charge_is_told_so(symbol, group, charge):
    with pytest.raises(StructureError) as caught:
        cell_from_cif(typed_cif(symbol))
    assert str(caught.value) == (
        f"site B1: type symbol {symbol!r} is not an element: a molecular group with a charge ({group} with "
        f"charge {charge}); a type symbol is one element with an optional charge (Fe3+); write one site per atom"
    )


def test_an_unknown_type_symbol_is_told_unknown():
    with pytest.raises(StructureError) as caught:
        cell_from_cif(typed_cif("?"))
    assert str(caught.value) == (
        "site B1: type symbol '?' is unknown ('?'): the CIF does not say which element the site holds; write its "
        "element"
    )


def test_a_poscar_element_line_no_is_told_it_is_no_measured_element(tmp_path):
    poscar = "KNO\n1.0\n4.4 0 0\n0 4.4 0\n0 0 4.4\nK NO\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"
    _, refused = read_folder(tmp_path, {"a.vasp": poscar})
    assert refused["a.vasp"] == (
        "a.vasp: POSCAR element line names the unknown element symbol 'NO' (No, Z = 102, is no element of a "
        "measured crystal; 'NO' reads as a group: name each element of it, one per site)"
    )
    poscar = poscar.replace("K NO", "K CL")
    _, refused = read_folder(tmp_path, {"b.vasp": poscar})
    assert "(element symbols are capitalised: 'Cl')" in refused["b.vasp"]


def test_an_optimade_vacancy_is_no_atom(tmp_path):
    entry = {
        "type": "structures",
        "id": "kv",
        "attributes": {
            "lattice_vectors": [[4.4, 0, 0], [0, 4.4, 0], [0, 0, 4.4]],
            "cartesian_site_positions": [[0, 0, 0], [2.2, 2.2, 2.2]],
            "species_at_sites": ["K", "vac"],
            "species": [
                {"name": "K", "chemical_symbols": ["K"], "concentration": [1.0]},
                {"name": "vac", "chemical_symbols": ["vacancy"], "concentration": [1.0]},
            ],
            "nperiodic_dimensions": 3,
        },
    }
    path = tmp_path / "response.json"
    path.write_text(json.dumps({"data": [entry]}))
    items = list(read_optimade(path, **KW))
    assert [type(i) for i in items] == [Rejection]
    assert items[0].reason == (
        "OPTIMADE species 'vac' is a vacancy, which is no atom: leave the empty site out of species_at_sites"
    )
