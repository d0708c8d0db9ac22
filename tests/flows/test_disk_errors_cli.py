"""``csp campaign run``, ``csp ingest`` and ``csp candidates export`` on a full or read-only disk: one
``error:`` line, an honest campaign state, nothing lost (resume finishes once the disk has room).

The disk's refusal is simulated at the writers (tests run as root, where chmod stops no write); the real
thing (a 420 kB tmpfs, a read-only bind mount) is in docs/service-reliability.md.
"""

from __future__ import annotations

import errno
import os

import pytest

import storage.lake
from storage.lake import Lake
from tests.flows.cli_process import invoke_csp, one_line_error
from tests.storage.test_disk_errors import refusing_writer

SMALL = ["--outer-steps", "3", "--inner-steps", "20", "--z-max", "1", "--no-refine", "--gap-probes", "0"]


def write_folder(folder):
    from pymatgen.core import Lattice, Structure

    folder.mkdir()
    Structure(Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(folder / "a.cif")
    )
    (folder / "id_prop.csv").write_text("a.cif,-3.0\n")
    return folder


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_ingest_on_a_refusing_disk_is_one_line_and_a_rerun_lands(tmp_path, monkeypatch, code):
    home, folder = tmp_path / "home", write_folder(tmp_path / "in")
    Lake(home).init()
    monkeypatch.setattr(storage.lake, "pq", refusing_writer(code))
    text = one_line_error(invoke_csp(home, "ingest", "folder", str(folder), "--source", "mine"))
    assert f"Cannot write {home / 'lake'}" in text and f"({errno.errorcode[code]})" in text
    monkeypatch.undo()
    assert invoke_csp(home, "ingest", "folder", str(folder), "--source", "mine").returncode == 0
    assert Lake(home).query("SELECT count(*) AS n FROM structures").to_pylist() == [{"n": 1}]


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS])
def test_a_refused_event_log_is_named_and_leaves_no_row(tmp_path, monkeypatch, code):
    """Issue 22: when the events folder refuses the first event of a campaign never recorded, the one line
    names that folder and the reason and says the campaign did not start (never "stale" or "resume"); no
    event, no candidate, and `campaign list` shows nothing."""
    home = tmp_path / "home"
    events = home / "lake" / "campaign_events"
    Lake(home).init()
    monkeypatch.setattr(storage.lake, "pq", refusing_writer(code, when=lambda p: str(events) in p))
    text = one_line_error(invoke_csp(home, "campaign", "run", "MgO", "--campaign-id", "ro", *SMALL))
    reason = {errno.EACCES: "permission is denied", errno.EROFS: "the file system is read-only"}[code]
    assert text.startswith(f"error: Cannot write {events}: {reason} ({errno.errorcode[code]});")
    assert text.endswith("Campaign ro did not start: nothing was scored or recorded.")
    assert "stale" not in text and "resume" not in text
    monkeypatch.undo()
    lake = Lake(home)
    assert lake.query("SELECT count(*) AS n FROM campaign_events").to_pylist() == [{"n": 0}]
    assert lake.count("candidates") == 0
    assert lake.parts("campaign_events") == [] and not list(events.glob(".tmp-*"))  # no half part either
    assert "No campaigns in this lake yet" in invoke_csp(home, "campaign", "list").stdout


@pytest.mark.slow  # two short campaigns on the shipped models (~10 s)
def test_a_campaign_that_fills_the_disk_fails_honestly_and_resumes(tmp_path, monkeypatch):
    home = tmp_path / "home"
    writes = {"candidates": 0}

    def full_after_two_batches(path: str) -> bool:
        if f"{os.sep}candidates{os.sep}" in path:
            writes["candidates"] += 1
            return writes["candidates"] > 2
        return False

    monkeypatch.setattr(storage.lake, "pq", refusing_writer(errno.ENOSPC, when=full_after_two_batches))
    result = invoke_csp(home, "campaign", "run", "MgO", "--campaign-id", "full", *SMALL)
    text = one_line_error(result)
    assert "no space is left on the device (ENOSPC)" in text and "Campaign full is recorded as failed" in text
    monkeypatch.undo()
    lake = Lake(home)
    (row,) = lake.query("SELECT status, reason FROM campaigns").to_pylist()
    assert row["status"] == "failed" and "ENOSPC" in row["reason"]
    kept = lake.query("SELECT count(*) AS n FROM candidates").to_pylist()[0]["n"]
    assert kept > 0  # the batches written before the disk filled

    resumed = invoke_csp(home, "campaign", "resume", "full")
    assert resumed.returncode == 0, resumed.stderr
    (row,) = lake.query("SELECT status FROM campaigns").to_pylist()
    assert row["status"] == "completed"
    dup = lake.query(
        "SELECT count(*) AS n FROM (SELECT outer_step, inner_step FROM candidates "
        "GROUP BY ALL HAVING count(*) > 1)"
    ).to_pylist()
    assert dup == [{"n": 0}]

    # export of the finished campaign to a folder and a file the disk refuses
    from pymatgen.io.cif import CifWriter

    def refused(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "ro" / "x.cif"))

    monkeypatch.setattr(CifWriter, "write_file", refused)
    text = one_line_error(invoke_csp(home, "candidates", "export", "full", "--out", str(tmp_path / "ro")))
    assert f"Cannot write {tmp_path / 'ro' / 'x.cif'}: the file system is read-only (EROFS)" in text

    def full(table, where, *args, **kwargs):
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr("pyarrow.parquet.write_table", full)
    out = tmp_path / "top.parquet"
    text = one_line_error(
        invoke_csp(home, "candidates", "export", "full", "--out", str(out), "--format", "parquet")
    )
    assert "(ENOSPC)" in text and str(out) in text


def test_an_export_that_fails_half_way_leaves_no_partial_folder_or_file(tmp_path, monkeypatch):
    """Issue 22: `candidates export` (and every export to a folder) writes into a staging folder published
    only when every file is written; a Parquet or `csp sql --csv` file is renamed into place. A disk that
    fills after the first file leaves no folder, no file and no hidden staging copy."""
    from csp.structures import symmetry
    from tests.storage.history_fixtures import make_history_lake

    home = make_history_lake(tmp_path / "home").root
    real, calls = symmetry.write_symmetrised_cif, []

    def full_on_second(item, path, symprec=None):
        calls.append(path)
        if len(calls) == 2:
            path.write_text("data_half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(item, path, symprec)

    monkeypatch.setattr(symmetry, "write_symmetrised_cif", full_on_second)
    out = tmp_path / "exports" / "top"
    out.parent.mkdir()
    text = one_line_error(invoke_csp(home, "candidates", "export", "hist-a", "--out", str(out)))
    assert text.startswith(f"error: Cannot write {out / 'hist-a-rank2.cif'}: no space is left on the device")
    assert len(calls) == 2 and list(out.parent.iterdir()) == []

    def full(table, where, *args, **kwargs):
        with open(where, "wb") as handle:
            handle.write(b"PAR1")
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")

    monkeypatch.setattr("pyarrow.parquet.write_table", full)
    for args in (
        ["candidates", "export", "hist-a", "--format", "parquet", "--out", str(out.parent / "top.parquet")],
        ["sql", "SELECT * FROM candidates", "--parquet", str(out.parent / "all.parquet")],
    ):
        assert "(ENOSPC)" in one_line_error(invoke_csp(home, *args))
        assert list(out.parent.iterdir()) == []


def test_an_export_into_a_folder_with_a_folder_in_the_way_publishes_nothing(tmp_path):
    """Issue 22 follow-up: `mkdir -p ex/hist-a-rank2.cif; csp campaign export hist-a --out ex` used to publish
    rank 1 and then fail. Every target is checked before any file is published: one line naming the folder in
    the way, and the folder keeps exactly what it held (an earlier rank-1 file unchanged)."""
    from tests.storage.history_fixtures import make_history_lake

    home = make_history_lake(tmp_path / "home").root
    out = tmp_path / "ex"
    (out / "hist-a-rank2.cif").mkdir(parents=True)
    (out / "hist-a-rank1.cif").write_text("an earlier export")
    for command in ("campaign", "candidates"):
        text = one_line_error(invoke_csp(home, command, "export", "hist-a", "--out", str(out)))
        assert text == (
            f"error: Cannot write {out / 'hist-a-rank2.cif'}: a folder of that name is in the way (EISDIR); "
            "remove or rename that folder, or choose another --out."
        )
        assert sorted(p.name for p in out.iterdir()) == ["hist-a-rank1.cif", "hist-a-rank2.cif"]
        assert (out / "hist-a-rank1.cif").read_text() == "an earlier export"
    (out / "hist-a-rank2.cif").rmdir()
    result = invoke_csp(home, "campaign", "export", "hist-a", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["hist-a-rank1.cif", "hist-a-rank2.cif"]
    assert (out / "hist-a-rank1.cif").read_text().startswith("# generated using pymatgen")


@pytest.mark.parametrize(
    ("wording", "reason"),
    [
        ("Read-only file system", "the file system is read-only (EROFS); remount it read-write"),
        ("No space left on device", "no space is left on the device (ENOSPC); free space there"),
        ("something else", "something else; check that the folder is writable and has free space"),
    ],
)
def test_lake_init_names_the_reason_duckdb_gives(tmp_path, monkeypatch, wording, reason):
    """Trial 22: `csp lake init` on a read-only lake said "free space or make the folder writable" for
    DuckDB's "Read-only file system". The one line names the reason DuckDB quotes, with its errno symbol."""
    import duckdb

    def refusing_connect(path, *args, **kwargs):
        if ".tmp-catalog-" in str(path):
            raise duckdb.IOException(f'IO Error: Cannot open file "{path}": {wording}')
        return duckdb.connect(path, *args, **kwargs)

    monkeypatch.setattr(storage.lake.duckdb, "connect", refusing_connect)
    home = tmp_path / "home"
    text = one_line_error(invoke_csp(home, "lake", "init"))
    assert f"Cannot write {home / 'catalog.duckdb'}: " in text and text.endswith(
        f"{reason}, or set CSP_HOME to a writable folder."
    ), text
    if wording != "No space left on device":
        assert "free space there" not in text
