"""A full or read-only disk: every lake write fails with one line, leaves no half part, and a campaign that
hit it records ``failed`` with the reason where the disk still allows it (and says so where it does not).

Tests run as root, where ``chmod`` stops no write, so the disk's refusal is simulated at the writer:
pyarrow's ``write_table`` (the lake's one Parquet writer) or ``os.open`` raise the ``OSError`` the kernel
gives (``ENOSPC``, ``EROFS``, ``EACCES``).
"""

from __future__ import annotations

import errno
import os
import types

import pyarrow.parquet as pq
import pytest

import storage.lake
from storage import campaign_state
from storage.campaign_state import RESERVE_BYTES, recorded_run, runs_dir, shown_status
from storage.candidates import record_event
from storage.errors import DiskWriteError, describe_write_failure
from storage.lake import Lake

REFUSALS = [
    (errno.ENOSPC, "no space is left on the device (ENOSPC)"),
    (errno.EROFS, "the file system is read-only (EROFS)"),
    (errno.EACCES, "permission is denied (EACCES)"),
]


def refusing_writer(code: int, *, when=lambda path: True) -> types.SimpleNamespace:
    """``pyarrow.parquet`` whose ``write_table`` raises ``OSError(code)`` for the paths ``when`` picks, after
    writing a few bytes (as a disk that fills up mid-file does)."""

    def write_table(table, where, *args, **kwargs):
        if when(str(where)):
            with open(where, "wb") as handle:
                handle.write(b"PAR1")
            raise OSError(code, f"Error writing bytes to file. Detail: [errno {code}] {os.strerror(code)}")
        return pq.write_table(table, where, *args, **kwargs)

    return types.SimpleNamespace(**{**vars(pq), "write_table": write_table})


def event_for(lake: Lake, campaign_id: str):
    def event(**kwargs):
        return record_event(
            lake, campaign_id, composition="MgO", parameters={"seed": 0}, run_id="r1", **kwargs
        )

    return event


@pytest.mark.parametrize(("code", "reason"), REFUSALS)
def test_a_refused_part_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, code, reason):
    lake = Lake(tmp_path / "home").init()
    event_for(lake, "c1")(status="running")
    before = sorted(p.name for p in (lake.table_dir("campaign_events")).iterdir())
    monkeypatch.setattr(storage.lake, "pq", refusing_writer(code))

    with pytest.raises(DiskWriteError) as caught:
        event_for(lake, "c1")(status="completed")

    message = str(caught.value)
    assert "\n" not in message and caught.value.errno == code
    assert message.startswith(f"Cannot write {lake.table_dir('campaign_events')}: {reason}")
    assert "CSP_HOME" in message
    # no half-written temporary part, no new part; the stored event is untouched
    assert sorted(p.name for p in lake.table_dir("campaign_events").iterdir()) == before
    monkeypatch.undo()
    assert lake.query("SELECT status FROM campaign_events").to_pylist() == [{"status": "running"}]


def test_a_read_only_lake_cannot_be_created_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(storage.lake, "pq", refusing_writer(errno.EROFS))
    with pytest.raises(DiskWriteError, match=r"read-only \(EROFS\); remount it read-write"):
        Lake(tmp_path / "home").init()
    assert not list((tmp_path / "home").rglob("*.parquet"))


def test_a_running_campaign_holds_a_reserve_and_frees_it(tmp_path):
    lake = Lake(tmp_path / "home").init()
    reserve = runs_dir(lake) / "c1.reserve"
    with recorded_run(lake, "c1", "r1", event_for(lake, "c1")):
        assert reserve.stat().st_size == RESERVE_BYTES
    assert not reserve.exists()


def test_a_campaign_that_fills_the_disk_is_recorded_failed_with_the_reason(tmp_path, monkeypatch):
    lake = Lake(tmp_path / "home").init()
    candidates = lake.table_dir("candidates")
    freed = []

    def full_unless_reserve_freed(path: str) -> bool:
        # the disk is full: only the space of the freed reserve can take the failed event
        return str(candidates) in path or not freed

    with (
        pytest.raises(DiskWriteError) as caught,
        recorded_run(lake, "c1", "r1", event_for(lake, "c1")) as claim,
    ):
        monkeypatch.setattr(storage.lake, "pq", refusing_writer(errno.ENOSPC, when=full_unless_reserve_freed))
        real_release = claim.release_reserve

        def release():
            freed.append(claim.reserve is not None)
            real_release()

        claim.release_reserve = release
        storage.lake._write_atomic(pq.read_table(lake._seed_path("campaign_events")), candidates / "c1")
    message = str(caught.value)
    assert "\n" not in message and caught.value.errno == errno.ENOSPC
    assert "no space is left on the device (ENOSPC)" in message and "recorded as failed" in message
    assert freed[0] is True  # the reserve was still held, and freed before the failed event
    monkeypatch.undo()
    rows = lake.query("SELECT status, reason FROM campaigns WHERE campaign_id = 'c1'").to_pylist()
    assert rows[0]["status"] == "failed" and "ENOSPC" in rows[0]["reason"]
    assert shown_status(lake, "c1", "failed") == ("failed", None)


def test_a_read_only_lake_mid_run_says_the_state_could_not_be_recorded(tmp_path, monkeypatch):
    lake = Lake(tmp_path / "home").init()
    with (
        pytest.raises(DiskWriteError) as caught,
        recorded_run(lake, "c1", "r1", event_for(lake, "c1")),
    ):
        monkeypatch.setattr(storage.lake, "pq", refusing_writer(errno.EROFS))
        event_for(lake, "c1")(status="completed")
    message = str(caught.value)
    assert "\n" not in message and "read-only (EROFS)" in message
    assert "could not be recorded as failed either" in message and "stale" in message
    monkeypatch.undo()
    (row,) = lake.query("SELECT status FROM campaigns WHERE campaign_id = 'c1'").to_pylist()
    assert row["status"] == "running"
    assert shown_status(lake, "c1", "running")[0] == "stale"  # what the message promised


def test_a_read_only_runs_folder_refuses_the_start_and_records_nothing(tmp_path, monkeypatch):
    lake = Lake(tmp_path / "home").init()
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(campaign_state.os, "open", refusing_open)
    with (
        pytest.raises(DiskWriteError, match="did not start and nothing was recorded"),
        recorded_run(lake, "c1", "r1", event_for(lake, "c1")),
    ):
        pytest.fail("the run must not start")
    monkeypatch.undo()
    assert lake.query("SELECT count(*) AS n FROM campaign_events").to_pylist() == [{"n": 0}]


def test_pyarrow_errors_name_their_file():
    exc = OSError(errno.EROFS, "Failed to open local file '/x/y.parquet'. Detail: [errno 30] Read-only")
    assert describe_write_failure(exc, advice="or choose another --out").startswith(
        "Cannot write /x/y.parquet: the file system is read-only (EROFS); remount it read-write, or choose"
    )
