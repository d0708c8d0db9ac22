"""Committed labelled data: Parquet parts round-trip every column, refuse what is not such a part."""

from __future__ import annotations

import numpy as np
import pytest

from storage.errors import StorageError
from storage.label_parts import (
    ALL_COLUMNS,
    FLOAT_COLUMNS,
    STRING_COLUMNS,
    read_label_parts,
    write_label_parts,
)


def _columns(natoms):
    rng = np.random.default_rng(0)
    s, a = len(natoms), int(sum(natoms))
    cols = {name: np.array([f"{name}-{i}" for i in range(s)]) for name in STRING_COLUMNS}
    cols |= {name: rng.normal(size=s) for name in FLOAT_COLUMNS}
    cols["lattice"] = rng.normal(size=(s, 3, 3))
    cols["numbers"] = rng.integers(1, 95, size=a)
    cols["frac_coords"] = rng.random((a, 3))
    return cols


def test_parts_round_trip_in_several_files(tmp_path):
    natoms = np.array([2, 5, 1, 8, 3])
    cols = _columns(natoms)
    paths = write_label_parts(cols, natoms, tmp_path / "labels", rows_per_part=2)
    assert [p.name for p in paths] == ["part-000.parquet", "part-001.parquet", "part-002.parquet"]
    back, n = read_label_parts(paths)
    assert n.tolist() == natoms.tolist()
    for name in STRING_COLUMNS:
        assert back[name].tolist() == cols[name].tolist()
    for name in FLOAT_COLUMNS:
        np.testing.assert_array_equal(back[name], cols[name])  # labels keep float64
    np.testing.assert_allclose(back["lattice"], cols["lattice"], rtol=1e-6)  # structures as float32
    np.testing.assert_allclose(back["frac_coords"], cols["frac_coords"], atol=1e-7)
    assert back["numbers"].tolist() == cols["numbers"].tolist()
    # writing again replaces the parts, never leaves stale ones beside them
    assert len(write_label_parts(cols, natoms, tmp_path / "labels", rows_per_part=10)) == 1
    assert len(list((tmp_path / "labels").glob("*.parquet"))) == 1


def test_a_further_run_appends_parts_and_never_the_same_row_twice(tmp_path):
    natoms = np.array([2, 5, 1])
    cols = _columns(natoms)
    first = write_label_parts(cols, natoms, tmp_path, rows_per_part=2)
    more = {k: (np.char.add(v, "-r2") if k == "id" else v) for k, v in cols.items()}
    added = write_label_parts(more, natoms, tmp_path, rows_per_part=2, append=True)
    assert [p.name for p in added] == ["part-002.parquet", "part-003.parquet"]
    back, n = read_label_parts(first + added)
    assert len(n) == 6 and len(set(back["id"].tolist())) == 6
    with pytest.raises(StorageError, match="3 of these rows are already in"):
        write_label_parts(more, natoms, tmp_path, append=True)
    assert len(list(tmp_path.glob("part-*.parquet"))) == 4


def test_missing_columns_and_foreign_files_are_refused(tmp_path):
    natoms = np.array([1])
    cols = _columns(natoms)
    del cols["dhf_ev_per_atom"]
    with pytest.raises(StorageError, match="dhf_ev_per_atom"):
        write_label_parts(cols, natoms, tmp_path)
    bad = tmp_path / "x.parquet"
    bad.write_text("not parquet")
    with pytest.raises(StorageError, match="Not a labelled Parquet part"):
        read_label_parts([bad])
    with pytest.raises(StorageError, match="No labelled"):
        read_label_parts([])
    assert set(ALL_COLUMNS) >= {"lattice", "numbers", "frac_coords"}
