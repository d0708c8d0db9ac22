"""A cell written in Bohr (1.8897 x too large) is refused at ingest: no bond is as short as in trusted crystals.

Volume per atom (MgO in Bohr: 62.9 A^3) and the lower distance bounds let such a cell through; the ceiling on
the tightest bond ratio (``storage.validation.pair_ceiling_problem``) does not.
"""

from __future__ import annotations

import numpy as np
import pytest

from storage.lake import Lake
from storage.validation import (
    PAIR_CEILING,
    StructureError,
    check_geometry,
    pair_ceiling_problem,
    reference_pair_typical,
)
from tests.flows.cli_process import invoke_csp

BOHR = 1.8897261  # Bohr radii per Angstrom
MGO_HALF = 2.105  # rock-salt MgO, a = 4.21 A
DIAMOND_HALF = 1.7835  # diamond, a = 3.567 A


def fcc(half: float) -> np.ndarray:
    return np.array([[0.0, half, half], [half, 0.0, half], [half, half, 0.0]])


def poscar(name: str, half: float, species: str, second: str) -> str:
    rows = "\n".join(" ".join(f"{x:.6f}" for x in row) for row in fcc(half))
    return f"{name}\n1.0\n{rows}\n{species}\n{'1 1' if ' ' in species else '2'}\nDirect\n0 0 0\n{second}\n"


def test_the_reference_is_a_low_percentile_not_one_odd_row():
    table = reference_pair_typical()
    assert table[("Mg", "Mg")][0] > 2.9  # the minimum is 1.455 A (one prototype); hcp Mg's is 3.18 A
    assert table[("Mg", "O")][1] >= 20


def test_mgo_in_bohr_is_refused_naming_the_pair():
    frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    check_geometry(fcc(MGO_HALF), ["Mg", "O"], frac)  # in Angstrom: stored
    with pytest.raises(StructureError) as info:
        check_geometry(fcc(MGO_HALF * BOHR), ["Mg", "O"], frac)
    ref = reference_pair_typical()[("Mg", "Mg")][0]  # Mg-O lies at 2.14 x, Mg-Mg (fcc cations) at 1.90 x
    assert str(info.value) == (
        f"every bond is stretched: the tightest, Mg-Mg at 5.626 A, is {5.626 / ref:.2f} x the usual shortest "
        f"Mg-Mg distance in the reference data ({ref:.3f} A), above the ceiling of {PAIR_CEILING:g} x "
        "(a cell in Bohr or a wrong lattice constant?)"
    )


def test_diamond_in_bohr_is_refused_and_in_angstrom_passes():
    frac = np.array([[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]])
    check_geometry(fcc(DIAMOND_HALF), ["C", "C"], frac)
    with pytest.raises(
        StructureError,
        match=r"C-C at 2\.919 A, is 2\.25 x .* \(a cell in Bohr or a wrong lattice constant\?\)",
    ):
        check_geometry(fcc(DIAMOND_HALF * BOHR), ["C", "C"], frac)


def test_a_cell_with_no_referenced_pair_has_no_ceiling():
    far = np.array([[np.inf, 6.0], [6.0, np.inf]])
    assert ("He", "Xe") not in reference_pair_typical()
    assert pair_ceiling_problem(far, ["He", "Xe"]) is None


@pytest.mark.slow  # one CLI ingest in process (~5 s)
def test_ingest_quarantines_mgo_in_bohr_and_stores_it_in_angstrom(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "MgO.vasp").write_text(poscar("MgO", MGO_HALF, "Mg O", "0.5 0.5 0.5"))
    (folder / "MgO_bohr.vasp").write_text(poscar("MgO_bohr", MGO_HALF * BOHR, "Mg O", "0.5 0.5 0.5"))
    (folder / "C_bohr.vasp").write_text(poscar("C_bohr", DIAMOND_HALF * BOHR, "C", "0.25 0.25 0.25"))
    (folder / "id_prop.csv").write_text("MgO.vasp,-1.0\nMgO_bohr.vasp,-1.0\nC_bohr.vasp,0.0\n")
    home = tmp_path / "home"
    result = invoke_csp(home, "ingest", "folder", str(folder), "--source", "t")
    assert result.returncode == 0, result.stderr
    lake = Lake(home)
    stored = lake.query("SELECT source_id, reduced_formula FROM structures").to_pylist()
    assert stored == [{"source_id": "MgO", "reduced_formula": "MgO"}]
    reasons = sorted(r["reason"] for r in lake.query("SELECT reason FROM quarantine").to_pylist())
    assert len(reasons) == 2
    assert reasons[0].startswith("C_bohr.vasp: every bond is stretched: the tightest, C-C at 2.919 A")
    assert reasons[1].startswith(
        "MgO_bohr.vasp: every bond is stretched: the tightest, Mg-Mg at 5.626 A, is 1.90 x"
    )
    assert all(r.endswith("(a cell in Bohr or a wrong lattice constant?)") for r in reasons)


def test_an_element_in_no_referenced_pair_lifts_the_ceiling():
    """Pm3CoS-like: the only referenced contact may be an unbonded one, so a cell with an element whose pairs
    have no reference (Kr here: no Kr pair reaches 20 trusted rows) has no ceiling, while the same
    stretched Mg-O contact alone is refused."""
    table = reference_pair_typical()
    assert all(table.get(p, (0, 0))[1] < 20 for p in [("Kr", "Mg"), ("Kr", "O"), ("Kr", "Kr")])
    d = 2.2 * table[("Mg", "O")][0]
    inf = np.inf  # the diagonal: no image within the radius, so no same-element pair
    dist = np.array([[inf, d], [d, inf]])
    assert pair_ceiling_problem(dist, ["Mg", "O"]) is not None
    dist3 = np.array([[inf, d, 3.0], [d, inf, 3.0], [3.0, 3.0, inf]])
    assert pair_ceiling_problem(dist3, ["Mg", "O", "Kr"]) is None
