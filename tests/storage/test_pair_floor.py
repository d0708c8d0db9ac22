"""Issue 22, W3: ingest refuses an element pair far closer than any trusted crystal holds it.

Rock-salt LiH (a = 4.08 A) with its fractional coordinates written under ``Cartesian`` puts Li and H 0.866 A
apart: 0.54 of their covalent-radius sum, so the shared distance rule (0.5 of the sum, which the search keeps)
lets it through, but the shortest Li-H distance in the trusted sources is far longer.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from storage.lake import Lake
from storage.validation import (
    PAIR_FLOOR_FACTOR,
    PAIR_FLOOR_MIN_ROWS,
    PAIR_MINIMA_FILE,
    StructureError,
    check_geometry,
    neighbour_distances,
    pair_floor_problem,
    pair_shortest_distances,
    reference_pair_minima,
)
from tests.flows.cli_process import invoke_csp

A_PRIM = 4.08 / np.sqrt(2.0)  # primitive fcc vector length, Angstrom
# the committed table: the shortest Li-H distance of the trusted sources and the rows holding Li-H
LI_H_MIN, LI_H_ROWS = 1.7024, 74
SI_O_MIN = 1.5647
LIH_LATTICE = np.array([[0.0, 2.04, 2.04], [2.04, 0.0, 2.04], [2.04, 2.04, 0.0]])


def lih_poscar(mode: str) -> str:
    """Primitive rock-salt LiH; ``mode`` is the coordinate line (the coordinates are fractional either way)."""
    assert PAIR_FLOOR_FACTOR == 0.6
    rows = "\n".join(" ".join(f"{x:.4f}" for x in row) for row in LIH_LATTICE)
    return f"LiH rock salt\n1.0\n{rows}\nLi H\n1 1\n{mode}\n0 0 0\n0.5 0.5 0.5\n"


def test_the_table_loads_with_its_provenance():
    doc = json.loads(PAIR_MINIMA_FILE.read_text())
    assert {"command", "lake", "sources", "date", "radius_angstrom"} <= set(doc["provenance"])
    assert "gnome" in doc["provenance"]["sources"] and "chgnet-0.3.0" not in doc["provenance"]["sources"]
    table = reference_pair_minima()
    assert reference_pair_minima() is table  # read once
    d, rows = table[("H", "Li")]
    assert d == pytest.approx(LI_H_MIN, abs=1e-3)
    assert rows == LI_H_ROWS
    assert table[("O", "Si")][0] == pytest.approx(SI_O_MIN, abs=1e-3)


def test_lih_with_fractional_coordinates_as_cartesian_is_refused_with_the_pair():
    frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]) @ np.linalg.inv(LIH_LATTICE)  # 0.5 A read as Angstrom
    with pytest.raises(StructureError) as info:
        check_geometry(LIH_LATTICE, ["Li", "H"], frac)
    assert str(info.value).startswith(
        f"H-Li distance 0.866 A is {0.866 / LI_H_MIN:.2f} x the shortest H-Li distance in the reference data "
        f"({LI_H_MIN:.3f} A over {LI_H_ROWS:,} rows), below the floor of {PAIR_FLOOR_FACTOR:g} x"
    )


def test_a_pair_with_too_few_reference_rows_has_only_the_shared_rule():
    table = reference_pair_minima()
    rare = min((p for p, (_, n) in table.items() if n < PAIR_FLOOR_MIN_ROWS and p[0] != p[1]), key=str)
    ref, rows = table[rare]
    assert rows < PAIR_FLOOR_MIN_ROWS
    assert pair_floor_problem(pair_at(0.5 * ref), list(rare)) is None  # half its minimum: no floor
    assert ("He", "Xe") not in table
    assert pair_floor_problem(pair_at(0.6), ["He", "Xe"]) is None  # no entry at all
    assert pair_floor_problem(pair_at(0.5 * LI_H_MIN), ["H", "Li"]).startswith(
        "H-Li distance 0.851 A is 0.50 x"
    )
    assert pair_floor_problem(pair_at(0.61 * LI_H_MIN), ["H", "Li"]) is None  # above the floor of 0.6


def pair_at(d: float) -> np.ndarray:
    """(2, 2) distances of two atoms ``d`` Angstrom apart whose own images lie beyond the radius."""
    return np.array([[np.inf, d], [d, np.inf]])


def test_pair_shortest_distances_of_rock_salt():
    frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    pairs = pair_shortest_distances(neighbour_distances(LIH_LATTICE, frac, 7.0), ["Li", "H"])
    assert pairs == pytest.approx({("H", "H"): A_PRIM, ("H", "Li"): 2.04, ("Li", "Li"): A_PRIM})


@pytest.mark.mirror
def test_the_validation_compounds_pass(data_mirror):
    from storage.readers._structure import cell_from_cif

    paths = sorted((data_mirror / "validation" / "table1").glob("*.cif"))
    assert len(paths) == 16  # the 17 compounds but SrCu
    for path in paths:
        cell = cell_from_cif(path.read_text())
        check_geometry(cell.lattice, cell.species, cell.frac_coords)


@pytest.mark.slow  # one CLI ingest in process (~5 s)
def test_ingest_quarantines_the_mixup_and_stores_the_right_lih(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "lih_good.vasp").write_text(lih_poscar("Direct"))
    (folder / "lih_cartesian.vasp").write_text(lih_poscar("Cartesian"))
    (folder / "id_prop.csv").write_text("lih_good.vasp,-0.47\nlih_cartesian.vasp,-0.47\n")
    home = tmp_path / "home"
    result = invoke_csp(home, "ingest", "folder", str(folder), "--source", "w3")
    assert result.returncode == 0, result.stderr
    lake = Lake(home)
    stored = lake.query("SELECT source_id, reduced_formula, spacegroup FROM structures").to_pylist()
    assert stored == [{"source_id": "lih_good", "reduced_formula": "LiH", "spacegroup": 225}]
    (row,) = lake.query("SELECT source, file, reason FROM quarantine").to_pylist()
    assert row["source"] == "w3" and row["file"].endswith("lih_cartesian.vasp")
    assert row["reason"] == (
        "lih_cartesian.vasp: H-Li distance 0.866 A is 0.51 x the shortest H-Li distance in the reference data (1.702 A over 74 "
        "rows), below the floor of 0.6 x (fractional coordinates read as Cartesian, wrong length units or a "
        "misread setting)"
    )


def test_generated_label_structures_keep_the_shared_rule_only():
    from storage.readers import Record
    from storage.readers.mlip_labels import LabelRow, read_mlip_labels

    frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]) @ np.linalg.inv(LIH_LATTICE)  # Li-H 0.866 A
    row = LabelRow(
        source_id="LiH|random|0", formula="LiH", kind="random", tag="t", potential="chgnet-0.3.0",
        relaxation="none", dhf_ev_per_atom=-0.2, energy_ev_per_atom=-3.0, fmax_ev_per_angstrom=0.5,
        steps=0.0, lattice=LIH_LATTICE, species=["Li", "H"], frac_coords=frac,
    )  # fmt: skip
    (out,) = read_mlip_labels([row], license="BSD")
    assert isinstance(out, Record) and out.row["nsites"] == 2  # the search's own structure: no pair floor
    with pytest.raises(StructureError, match=r"H-Li distance 0\.866 A"):
        check_geometry(LIH_LATTICE, ["Li", "H"], frac)  # the same cell read from a file


def test_the_training_set_holds_stored_rows_to_the_floor_but_label_rows_to_the_shared_rule(lake, tmp_path):
    from flows.models import export_training_set
    from tests.storage.test_lake import structure_row

    frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]) @ np.linalg.inv(LIH_LATTICE)  # Li-H 0.866 A
    rows = []
    for sid, source, method in [("file", "mp_flla2015", None), ("label", "chgnet-0.3.0", "mlip")]:
        row = structure_row(sid, "LiH", energy=-0.4)
        row.update(source=source, energy_method=method, elements=["H", "Li"], species=["Li", "H"],
                   lattice_angstrom=LIH_LATTICE.reshape(9).tolist(), frac_coords=frac.tolist())  # fmt: skip
        rows.append(row)
    lake.append("structures", rows, run_id="t")
    summary = export_training_set(
        lake, tmp_path / "dft.npz", kind="dft", exclude=(), sources=["mp_flla2015", "chgnet-0.3.0"]
    )
    assert summary.geometry_refused == 1  # the row stored from a file before the floor existed
    assert summary.per_source == {"chgnet-0.3.0": 1}  # the search's own label structure is kept
