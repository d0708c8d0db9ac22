"""The enthalpy spread column of candidate rows: written, read back, and absent (null) in older lakes."""

from __future__ import annotations

import pyarrow.parquet as pq

from storage.candidates import LakeSink, search_rows
from storage.lake import Lake
from storage.schemas import SCHEMAS
from tests.storage.history_fixtures import _row, rocksalt

COLUMN = "dhf_pred_std_ev_per_atom"


def _rows(cid: str, spreads: list[float | None]) -> list[dict]:
    rows = []
    for i, spread in enumerate(spreads):
        row = _row(cid, rocksalt(), outer=0, inner=i, sg=225, dhf=-3.0 + 0.1 * i)
        if spread is not None or i % 2:  # some rows carry the key with None, some lack it
            row[COLUMN] = spread
        rows.append(row)
    return rows


def test_candidate_rows_carry_the_spread(lake):
    LakeSink(lake, run_id="r").append(_rows("new", [0.02, 0.0, 0.05, None]))
    stored = lake.query(f"SELECT inner_step, {COLUMN} FROM candidates ORDER BY inner_step").to_pylist()
    assert [r[COLUMN] for r in stored] == [0.02, 0.0, 0.05, None]
    assert [r[COLUMN] for r in search_rows(lake, "new")] == [0.02, 0.0, 0.05, None]
    doc = SCHEMAS["candidates"].field(COLUMN).metadata[b"doc"].decode()
    assert "population std" in doc and "single model" in doc


def test_a_lake_written_before_the_column_opens_and_reads_it_as_null(tmp_path):
    home = tmp_path / "home"
    lake = Lake(home).init()
    LakeSink(lake, run_id="old").append(_rows("old", [None, None]))
    # make the lake as an earlier release wrote it: no spread column in the seed or in the part
    schema = SCHEMAS["candidates"]
    old_schema = schema.remove(schema.get_field_index(COLUMN))
    pq.write_table(old_schema.empty_table(), lake._seed_path("candidates"))
    for part in lake.parts("candidates"):
        pq.write_table(pq.read_table(part).drop_columns([COLUMN]), part)
    assert all(COLUMN not in pq.read_schema(p).names for p in lake.parts("candidates"))

    reopened = Lake(home).init()  # upgrades the seed; the old part stays as it is
    assert COLUMN in pq.read_schema(reopened._seed_path("candidates")).names
    assert [r[COLUMN] for r in search_rows(reopened, "old")] == [None, None]
    LakeSink(reopened, run_id="new").append(_rows("fresh", [0.03]))
    both = reopened.query(f"SELECT campaign_id, {COLUMN} FROM candidates ORDER BY campaign_id").to_pylist()
    assert both == [
        {"campaign_id": "fresh", COLUMN: 0.03},
        {"campaign_id": "old", COLUMN: None},
        {"campaign_id": "old", COLUMN: None},
    ]
    reopened.compact("candidates", partition="old")  # merging old parts keeps the rows, the column null
    assert [r[COLUMN] for r in search_rows(reopened, "old")] == [None, None]
