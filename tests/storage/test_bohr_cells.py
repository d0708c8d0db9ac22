"""Issue 22 F1: a user's file whose lengths are in Bohr (1.8897 x too long) is quarantined, naming the cause.

Volume per atom and the lower distance bounds let such a cell through (MgO in Bohr: 62.9 A^3 per atom); the ceiling
on the tightest bond ratio (``storage.validation.stretched_cell_problem``) does not. It applies to the files a user
hands us (``csp ingest folder``, ``csp ingest optimade``), not to the mirror's databases, which define the training
sets.
"""

from __future__ import annotations

import gzip
import json
import re
from functools import lru_cache

import numpy as np
import pytest

from storage.readers import Record, Rejection, read_gnome, read_id_prop_folder, read_optimade
from storage.validation import (
    STRETCH_CEILING,
    StructureError,
    check_geometry,
    reference_pair_typical,
    stretched_cell_problem,
)
from tests.conftest import mirror_path

BOHR = 1.8897261  # Bohr radii per Angstrom
MGO_HALF = 2.105  # rock-salt MgO, a = 4.21 A
DIAMOND_HALF = 1.7835  # diamond, a = 3.567 A
KW = {"source": "f1", "license": "test"}
FIX = (
    "the lengths may be in Bohr (then convert them to Angstrom: multiply by 0.5292), or the atoms are not bonded as "
    "in any known crystal of these elements"
)
HEAD = "no bond as short as in known crystals: the shortest distance of every element pair is >= 1.85 x the shortest usual one"


def why(pair: str, d: str, ratio: str, ref: str, rows: str) -> str:
    """The reason of a cell with no bond as short as in known crystals (issue 22, trial item 2: true for a file in
    Bohr and for a campaign's own structure in Angstrom whose atoms sit apart as in no known crystal)."""
    return (
        f"{HEAD} (the tightest, {pair} {d} A, is {ratio} x the {ref} A of known crystals, percentile 1 over {rows} "
        f"trusted rows); {FIX}"
    )


def fcc(half: float) -> np.ndarray:
    return np.array([[0.0, half, half], [half, 0.0, half], [half, half, 0.0]])


@lru_cache(maxsize=4)
def mirror_cifs(rel: str) -> dict[str, str]:
    with gzip.open(mirror_path() / rel, "rt") as fh:
        return {row["id"]: row["cif"] for row in map(json.loads, fh) if row.get("cif")}


def in_bohr(cif: str) -> str:
    """The CIF with its three cell lengths written in Bohr (the coordinates are fractional)."""
    return re.sub(
        r"^(_cell_length_[abc]\s+)([0-9.]+)",
        lambda m: f"{m.group(1)}{float(m.group(2)) * BOHR:.6f}",
        cif,
        flags=re.M,
    )


def ingest(tmp_path, files: dict[str, str]) -> dict[str, Record | Rejection]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "id_prop.csv").write_text("".join(f"{name},-1.0\n" for name in files))
    return {item.row["source_id"] if isinstance(item, Record) else item.source_id: item
            for item in read_id_prop_folder(tmp_path, **KW)}  # fmt: skip


def test_the_reference_is_a_low_percentile_not_one_odd_row():
    table = reference_pair_typical()
    assert table[("Mg", "Mg")] == (2.9631, 2513)  # the minimum is 1.455 A (one prototype); hcp Mg's is 3.18 A
    assert table[("Mg", "O")] == (1.8608, 1163)


def test_mgo_and_diamond_in_bohr_are_refused_only_when_the_units_are_checked():
    frac_mgo = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    check_geometry(fcc(MGO_HALF), ["Mg", "O"], frac_mgo, units_check=True)  # in Angstrom: stored
    check_geometry(fcc(MGO_HALF * BOHR), ["Mg", "O"], frac_mgo)  # the mirror's readers do not check units
    with pytest.raises(StructureError) as info:
        check_geometry(fcc(MGO_HALF * BOHR), ["Mg", "O"], frac_mgo, units_check=True)
    # Mg-O lies at 3.978 A = 2.14 x 1.861 A; the fcc Mg-Mg contact, 5.626 A = 1.90 x 2.963 A, is the tightest
    assert str(info.value) == why("Mg-Mg", "5.626", "1.90", "2.963", "2,513")
    frac_c = np.array([[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]])
    check_geometry(fcc(DIAMOND_HALF), ["C", "C"], frac_c, units_check=True)
    with pytest.raises(
        StructureError,
        match=r"^no bond as short as in known crystals: .*\(the tightest, C-C 2\.919 A, is 2\.25 x",
    ):
        check_geometry(fcc(DIAMOND_HALF * BOHR), ["C", "C"], frac_c, units_check=True)


def test_a_cell_with_an_unreferenced_bonded_element_has_no_ceiling():
    """Pm3CoS-like: the only referenced contact may be an unbonded one, so a cell with an element whose pairs have
    no reference (Kr: no Kr pair reaches 20 trusted rows) has no ceiling; the same Mg-O contact alone is refused."""
    table = reference_pair_typical()
    assert all(table.get(p, (0, 0))[1] < 20 for p in [("Kr", "Mg"), ("Kr", "O"), ("Kr", "Kr")])
    d = 2.2 * table[("Mg", "O")][0]
    inf = np.inf
    lattice, frac = np.eye(3) * 30.0, np.zeros((3, 3))  # not used: the distances are given
    assert (
        stretched_cell_problem(lattice, ["Mg", "O"], frac[:2], dist=np.array([[inf, d], [d, inf]]))
        is not None
    )
    dist3 = np.array([[inf, d, 3.0], [d, inf, 3.0], [3.0, 3.0, inf]])
    assert stretched_cell_problem(lattice, ["Mg", "O", "Kr"], frac, dist=dist3) is None


def test_a_metal_whose_neighbours_leave_the_radius_in_bohr_is_still_caught():
    """hcp La (La-La 3.739 A) in Bohr has no neighbour within 7 A: the wider look (13.2 A) finds La-La 7.065 A."""
    a, c = 3.77, 12.16
    lattice = np.array([[a, 0, 0], [-a / 2, a * 3**0.5 / 2, 0], [0, 0, c]]) * BOHR
    frac = np.array([[0, 0, 0], [0, 0, 0.5], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    with pytest.raises(StructureError) as info:
        check_geometry(lattice, ["La"] * 4, frac, units_check=True)
    # the La-La contact between the hexagonal layers: 3.739 A x 1.8897
    assert str(info.value) == why("La-La", "7.065", "2.22", "3.185", "3,118")
    check_geometry(lattice / BOHR, ["La"] * 4, frac, units_check=True)


@pytest.mark.mirror
def test_a_real_mirror_cif_in_bohr_is_quarantined_with_the_cause_and_as_written_is_stored(tmp_path):
    nacl = mirror_cifs("dft/mp_chemeleon_mp40.jsonl.gz")["mp-22862"]
    ca = mirror_cifs("synth/experimental_prototypes.jsonl.gz")["httk_cod:CaTiO3/Ca.cif"]  # COD, F m -3 m
    items = ingest(
        tmp_path, {"nacl.cif": nacl, "nacl_bohr.cif": in_bohr(nacl), "ca.cif": ca, "ca_bohr.cif": in_bohr(ca)}
    )
    assert items["nacl"].row["reduced_formula"] == "NaCl" and items["ca"].row["reduced_formula"] == "Ca"
    assert items["nacl_bohr"].reason == "nacl_bohr.cif: " + why("Cl-Na", "5.280", "2.11", "2.506", "85")
    # fcc Ca's Ca-Ca 3.91 A becomes 7.38 A, beyond the 7 A of the other checks
    assert re.fullmatch(
        rf"ca_bohr\.cif: {re.escape(HEAD)} \(the tightest, Ca-Ca 7\.3\d\d A, is 2\.\d\d x the 3\.\d+ A of known "
        rf"crystals, .*\); {re.escape(FIX)}",
        items["ca_bohr"].reason,
    ), items["ca_bohr"].reason


@pytest.mark.mirror
def test_molecular_and_layered_mirror_crystals_are_stored_and_refused_in_bohr(tmp_path):
    """Alpha sulphur (S8 rings, 32 sites), solid chlorine (Cl2 molecules) and 2H-MoS2 (vdW layers): their covalent
    bonds keep the tightest bond ratio near 1, however open the packing."""
    minerals = mirror_cifs("synth/experimental_prototypes.jsonl.gz")
    files = {
        "s8.cif": minerals["robocrys_mineral:A_oF128_70_4h"],
        "mos2.cif": minerals["robocrys_mineral:AB2_hP6_194_c_f"],
        "cl2.cif": mirror_cifs("dft/mp_flla2015.jsonl.gz")["mp-570778"],
    }
    files |= {
        name.replace(".cif", "_bohr.cif"): in_bohr(text) for name, text in files.items() if "cl2" not in name
    }
    items = ingest(tmp_path, files)
    assert {k: v.row["reduced_formula"] for k, v in items.items() if isinstance(v, Record)} == {
        "s8": "S",
        "mos2": "MoS2",
        "cl2": "Cl",
    }
    assert items["s8_bohr"].reason.startswith(f"s8_bohr.cif: {HEAD} (the tightest, S-S")
    assert items["mos2_bohr"].reason.startswith(f"mos2_bohr.cif: {HEAD}")


def test_an_optimade_entry_in_bohr_is_quarantined(tmp_path):
    def entry(sid: str, half: float) -> dict:
        lattice = fcc(half)
        return {
            "type": "structures",
            "id": sid,
            "attributes": {
                "lattice_vectors": lattice.tolist(),
                "cartesian_site_positions": [[0, 0, 0], (0.5 * lattice.sum(axis=0)).tolist()],
                "species_at_sites": ["Mg", "O"],
                "chemical_formula_reduced": "MgO",
            },
        }

    path = tmp_path / "r.json"
    path.write_text(json.dumps({"data": [entry("mgo", MGO_HALF), entry("mgo_bohr", MGO_HALF * BOHR)]}))
    items = list(read_optimade(path, **KW))
    assert isinstance(items[0], Record) and items[0].row["reduced_formula"] == "MgO"
    assert isinstance(items[1], Rejection) and items[1].reason.startswith(
        f"{HEAD} (the tightest, Mg-Mg 5.626 A, is 1.90 x"
    )


def test_the_mirror_readers_do_not_check_units(tmp_path):
    """A trusted database's row is not refused by the units check (one MP row, an H cell with no H-H under
    3.5 A, lies above the ceiling; the training sets stay as they were): diamond in Bohr through the GNoME reader."""
    a = 2 * DIAMOND_HALF * BOHR
    cif = (
        "data_c\n_symmetry_space_group_name_H-M 'P 1'\n"
        f"_cell_length_a {a / 2**0.5:.6f}\n_cell_length_b {a / 2**0.5:.6f}\n_cell_length_c {a / 2**0.5:.6f}\n"
        "_cell_angle_alpha 60\n_cell_angle_beta 60\n_cell_angle_gamma 60\n"
        "loop_\n_symmetry_equiv_pos_as_xyz\n'x, y, z'\n"
        "loop_\n_atom_site_type_symbol\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n"
        "_atom_site_fract_z\n_atom_site_occupancy\nC C0 0 0 0 1\nC C1 0.25 0.25 0.25 1\n"
    )
    path = tmp_path / "g.jsonl"
    path.write_text(
        json.dumps({"id": "g1", "formula": "C", "formation_energy_per_atom_eV": 0.0, "cif": cif}) + "\n"
    )
    items = list(read_gnome(path, **KW))
    assert [type(i).__name__ for i in items] == ["Record"]
    (tmp_path / "u").mkdir()
    refused = ingest(tmp_path / "u", {"c.cif": cif})["c"]
    assert isinstance(refused, Rejection) and "the tightest, C-C 2.919 A, is 2.25 x" in refused.reason
    assert STRETCH_CEILING == 1.85


def test_a_campaign_structure_in_angstrom_is_refused_without_blaming_bohr():
    """CH4 as a campaign exported it (rank 1, written in Angstrom by `csp campaign export`): C-H 1.486 A, H-H far
    apart. Still refused, but the reason must not claim the lengths are in Bohr: it names both possible causes."""
    lattice = np.eye(3) * 4.0
    frac = np.array([[0, 0, 0], [0.3715, 0, 0], [0, 0.3715, 0], [0, 0, 0.3715], [0.5, 0.5, 0.5]])
    with pytest.raises(StructureError) as info:
        check_geometry(lattice, ["C", "H", "H", "H", "H"], frac, units_check=True)
    text = str(info.value)
    assert text.startswith(HEAD) and "C-H 1.486 A" in text
    assert "look like Bohr" not in text and text.endswith(FIX)
