"""User trial sym2: a 1:1 alkali-oxygen cell is stored as ``KO`` (not pymatgen's peroxide ``K2O2``); a label
``H2O`` is a group, not hydrogen; a type symbol with an impossible charge (``O22-``) is a dimer group, not one
atom; refusal reasons that fit the fault."""

from __future__ import annotations

import json

import pytest

from storage.readers import Record, read_id_prop_folder, read_optimade
from storage.splits import normalise_formula, reduced_formula_of, split_of

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
