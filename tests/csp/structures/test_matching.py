"""Matching against the Table 1 reference CIFs, ranking with deduplication, and CIF export."""

import warnings

import numpy as np
import pytest
from pymatgen.core import Structure

from csp.search.generate import Family, build_template
from csp.structures.crystal import Crystal
from csp.structures.matching import matches, rank, row_crystal, spacegroup_number, write_cif
from tests.conftest import mirror_path

TABLE1 = mirror_path() / "validation" / "table1"
pytestmark = pytest.mark.mirror
warnings.filterwarnings("ignore", message=".*fractional coordinates.*")


def reference(name):
    return Structure.from_file(TABLE1 / f"{name}.cif")


def generated(family, a):
    tpl = build_template(family)
    # volume variable u such that the cubic cell edge is a
    u = ((a**3 / tpl.reference_volume) - 0.5) / 1.0
    batch = tpl.build(np.array([[u]]))
    assert batch.lattices[0, 0, 0] == pytest.approx(a)
    return Crystal(batch.lattices[0], batch.numbers, batch.frac_coords[0])


ROCKSALT_MGO = Family(4, 225, (("Mg", "4a"), ("O", "4b")))
ZINCBLENDE_GAAS = Family(4, 216, (("Ga", "4a"), ("As", "4c")))
ROCKSALT_GAAS = Family(4, 225, (("Ga", "4a"), ("As", "4b")))
PEROVSKITE = Family(1, 221, (("Ba", "1a"), ("Zr", "1b"), ("O", "3c")))


def test_generated_prototypes_match_their_references():
    assert matches(generated(ROCKSALT_MGO, 4.3), reference("MgO"))
    assert matches(generated(ZINCBLENDE_GAAS, 5.5), reference("GaAs"))
    assert matches(generated(PEROVSKITE, 4.1), reference("BaZrO3"))
    assert spacegroup_number(reference("GaAs")) == 216


def test_wrong_prototype_or_composition_does_not_match():
    assert not matches(generated(ROCKSALT_GAAS, 5.5), reference("GaAs"))
    assert not matches(generated(ROCKSALT_MGO, 4.3), reference("CaS"))


def _row(crystal, fitness, step):
    return {
        "lattice": crystal.lattice.reshape(-1).tolist(),
        "numbers": crystal.numbers.tolist(),
        "frac_coords": crystal.frac_coords.reshape(-1).tolist(),
        "fitness": fitness,
        "valid": True,
        "dhf_pred_ev_per_atom": -1.0,
        "p_syn": 0.5,
        "p_syn_std": 0.1,
        "spacegroup": 225,
        "wyckoff": "x",
        "outer_step": step,
    }


def test_rank_deduplicates_and_orders_by_fitness():
    rows = [
        _row(generated(ROCKSALT_MGO, 4.3), 0.30, 0),
        _row(generated(ROCKSALT_MGO, 4.1), 0.20, 1),  # same structure, better fitness
        _row(generated(Family(1, 221, (("Mg", "1a"), ("O", "1b"))), 2.7), 0.40, 2),  # CsCl type
        {**_row(generated(ROCKSALT_MGO, 4.0), 0.01, 3), "valid": False},  # invalid rows are ignored
    ]
    top = rank(rows, k=5)
    assert [t["outer_step"] for t in top] == [1, 2]
    assert top[0]["duplicates"] == 1 and top[0]["spacegroup"] == 225
    assert top[0]["a"] == pytest.approx(4.1, abs=1e-3)
    assert top[1]["spacegroup"] == 221
    assert rank(rows, k=1)[0]["outer_step"] == 1


def test_cif_round_trip(tmp_path):
    crystal = generated(ZINCBLENDE_GAAS, 5.6)
    path = write_cif(crystal, tmp_path / "GaAs.cif")
    back = Structure.from_file(path)
    assert spacegroup_number(back) == 216 and matches(back, crystal)
    assert row_crystal(_row(crystal, 0.1, 0)).num_sites == 8
