"""Readers against the real data mirror: the first records of every file, fields, units and labels."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from storage.readers import (
    SOURCES,
    Record,
    Rejection,
    read_kingsbury2022,
    read_materials_project,
    sources_in_order,
)
from storage.readers._structure import _pymatgen_cif, cell_from_cif
from storage.schemas import SCHEMAS
from tests.conftest import mirror_path

MIRROR = mirror_path()
pytestmark = pytest.mark.mirror
EXCLUDED = {"split", "run_id", "written_at"}
N = 50


def head(name: str, n: int = N, **options: object) -> list[Record | Rejection]:
    return list(itertools.islice(SOURCES[name].read(MIRROR, **options), n))


def test_registry_is_complete_and_ordered() -> None:
    assert set(SOURCES) >= {
        "oqmd_intermetallics",
        "gnome",
        "mp_flla2015",
        "mp_chemeleon_mp40",
        "castelli_cdvae",
        "castelli_alt",
        "gu2022_perovskite_pu",
        "jang2020_mp_icsd",
        "jang2020_mp_virtual",
        "experimental_prototypes",
        "expt_deltae_jha2019",
        "qmpy_ssub",
        "qmpy_iit",
        "kingsbury2022",
        "oqmd_composition_deltae",
    }
    order = [s.name for s in sources_in_order()]
    for spec in SOURCES.values():
        assert spec.table in SCHEMAS
        for f in spec.files:
            assert (MIRROR / f.path).is_file(), f.path
            assert not Path(f.path).is_absolute()
        for label_source in spec.label_sources:
            assert order.index(label_source) < order.index(spec.name)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_first_records_fit_the_schema(name: str) -> None:
    items = head(name)
    records = [i for i in items if isinstance(i, Record)]
    assert len(records) >= 40, [i for i in items if isinstance(i, Rejection)][:3]
    spec = SOURCES[name]
    expected = {f.name for f in SCHEMAS[spec.table]} - EXCLUDED
    if spec.table == "experimental_enthalpies":
        expected |= {"split"}
    ids = set()
    for rec in records:
        assert rec.table == spec.table
        assert set(rec.row) == expected
        for field in SCHEMAS[spec.table]:
            if field.name in rec.row and not field.nullable and field.name != "split":
                assert rec.row[field.name] is not None, (name, field.name)
        key = rec.row.get("source_id", rec.row.get("material_id"))
        assert key not in ids
        ids.add(key)


@pytest.mark.parametrize("name", [n for n, s in SOURCES.items() if s.table == "structures"])
def test_structure_rows_are_consistent(name: str) -> None:
    for rec in (i for i in head(name, 30) if isinstance(i, Record)):
        row = rec.row
        assert len(row["lattice_angstrom"]) == 9
        lattice = np.array(row["lattice_angstrom"]).reshape(3, 3)
        assert abs(abs(np.linalg.det(lattice)) - row["volume_angstrom3"]) < 1e-6
        assert row["nsites"] == len(row["species"]) == len(row["frac_coords"])
        assert row["elements"] == sorted(set(row["species"]))
        assert row["nelements"] == len(row["elements"])
        assert all(0.0 <= x < 1.0 for xyz in row["frac_coords"] for x in xyz)
        assert 1 <= row["spacegroup"] <= 230
        assert row["crystal_system"] in {
            "triclinic",
            "monoclinic",
            "orthorhombic",
            "tetragonal",
            "trigonal",
            "hexagonal",
            "cubic",
        }
        dhf = row["dhf_dft_ev_per_atom"]
        assert dhf is None or (math.isfinite(dhf) and abs(dhf) <= 10)
        assert (dhf is None) == (row["energy_kind"] is None)


def test_energy_kinds_and_labels_per_source() -> None:
    first = {name: next(i for i in head(name, 5) if isinstance(i, Record)).row for name in SOURCES}
    assert first["castelli_cdvae"]["energy_kind"] == "castelli_gpaw:heat_all"
    assert "heat_ref" in first["castelli_cdvae"]["extra_json"]
    assert first["castelli_alt"]["energy_kind"] == "castelli_gpaw:e_form"
    assert first["oqmd_intermetallics"]["energy_kind"] == "oqmd_delta_e"
    assert first["oqmd_intermetallics"]["icsd_label"] in (0, 1)
    assert first["mp_chemeleon_mp40"]["dhf_dft_ev_per_atom"] is None
    assert first["mp_chemeleon_mp40"]["e_above_hull_ev_per_atom"] is not None
    assert first["experimental_prototypes"]["icsd_label"] == 1
    assert first["gu2022_perovskite_pu"]["icsd_label"] in (0, 1)
    assert first["jang2020_mp_icsd"]["icsd_label"] == 1
    assert first["jang2020_mp_virtual"]["icsd_label"] == 0
    assert first["expt_deltae_jha2019"]["split"] == "train"
    assert "NOT experimental" in first["oqmd_composition_deltae"]["reference"]


def test_first_oqmd_entry_matches_the_file() -> None:
    row = head("oqmd_intermetallics", 1)[0].row
    assert row["source_id"] == "1722"
    assert row["reduced_formula"] == "La2Ni3"
    assert row["nsites"] == 10
    assert row["dhf_dft_ev_per_atom"] == pytest.approx(-0.336691517)
    assert row["icsd_label"] == 1


def test_gnome_rows_without_energy_still_land() -> None:
    items = head("gnome", 200)
    no_energy = [i for i in items if isinstance(i, Record) and i.row["dhf_dft_ev_per_atom"] is None]
    assert no_energy and all(i.row["raw_formula"] for i in no_energy)
    assert not [i for i in items if isinstance(i, Rejection)]


def test_mp_labels_join_on_ids() -> None:
    labels = {"mp-10": 1, "mp-10000": 0}
    path = MIRROR / SOURCES["mp_flla2015"].files[0].path
    rows = [
        i.row
        for i in itertools.islice(read_materials_project(path, source="x", license="y", labels=labels), 3)
    ]
    assert (rows[0]["icsd_label"], rows[0]["label_origin"]) == (1, "jang2020_mp_ids")
    assert rows[1]["icsd_label"] == 0
    assert rows[2]["icsd_label"] is None and rows[2]["label_origin"] is None


def test_kingsbury_is_converted_to_ev_per_atom() -> None:
    path = MIRROR / SOURCES["kingsbury2022"].files[0].path
    rows = {i.row["source_id"]: i.row for i in read_kingsbury2022(path, source="k", license="l")}
    ag2co3 = rows["Ag2CO3"]  # -5.2422 eV per formula unit, 6 atoms
    assert ag2co3["dhf_exp_ev_per_atom"] == pytest.approx(-5.242247592137407 / 6)
    assert ag2co3["uncertainty_ev_per_atom"] == pytest.approx(0.025910674140655433 / 6)
    assert rows["Ag2O3"]["uncertainty_ev_per_atom"] is None  # NaN in the file
    assert "mp-4691" in ag2co3["reference"]


def test_qmpy_repeated_formulas_get_unique_ids() -> None:
    rows = [i.row for i in head("qmpy_ssub", 5)]
    assert rows[1]["raw_formula"] == rows[2]["raw_formula"] == "Al2H4O9Si2"
    assert rows[1]["source_id"] != rows[2]["source_id"]
    assert rows[1]["dhf_exp_ev_per_atom"] != rows[2]["dhf_exp_ev_per_atom"]


@pytest.mark.parametrize("name", ["oqmd_intermetallics", "gnome", "castelli_alt", "gu2022_perovskite_pu"])
def test_fast_cif_path_matches_pymatgen(name: str) -> None:
    import csv
    import gzip
    import json

    path = MIRROR / SOURCES[name].files[0].path
    with gzip.open(path, "rt") as fh:
        if path.name.endswith(".jsonl.gz"):
            cifs = [json.loads(line)["cif"] for line in itertools.islice(fh, 20)]
        else:
            cifs = [row["cif"] for row in itertools.islice(csv.DictReader(fh), 20)]
    for cif in cifs:
        fast, slow = cell_from_cif(cif), _pymatgen_cif(cif)
        np.testing.assert_allclose(fast.lattice, slow.lattice, atol=1e-6)
        order_f = np.lexsort(np.round(fast.frac_coords, 3).T)
        order_s = np.lexsort(np.round(slow.frac_coords, 3).T)
        # pymatgen snaps coordinates within 1e-4 of simple fractions (0.666646 -> 2/3); the fast path
        # keeps them as written
        np.testing.assert_allclose(fast.frac_coords[order_f], slow.frac_coords[order_s], atol=1e-4)
        assert [fast.species[i] for i in order_f] == [slow.species[i] for i in order_s]


@pytest.mark.slow
def test_workers_give_the_same_rows_in_order() -> None:
    spec = SOURCES["castelli_cdvae"]
    serial = list(itertools.islice(spec.read(MIRROR), 40))
    pooled = list(itertools.islice(spec.read(MIRROR, workers=2), 40))
    assert serial == pooled


def test_a_pooled_read_stopped_early_closes_its_pool():
    """A consumer that stops after a few rows (``islice``) must get the pool closed, not hang on a task the
    pool's feeder thread still holds (``Pool.imap`` straight from a generator did, now and then)."""
    import threading

    from storage.readers._structure import _pooled_in_order

    done = []

    def take_three():
        rows = _pooled_in_order(abs, (-i for i in range(100_000)), workers=2)
        done.append(list(itertools.islice(rows, 3)))
        rows.close()
        done.append("closed")

    reader = threading.Thread(target=take_three, daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert done == [[0, 1, 2], "closed"]


def _ignores_sigint(_item: object) -> bool:
    import signal

    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_ingest_workers_leave_ctrl_c_to_the_parent():
    """Fault F3: Ctrl-C reaches the whole process group; the parsing workers ignore it (no traceback of
    their own), the parent gets the KeyboardInterrupt and terminates the pool."""
    from storage.readers._structure import _pooled_in_order

    assert list(_pooled_in_order(_ignores_sigint, range(4), workers=2)) == [True] * 4
