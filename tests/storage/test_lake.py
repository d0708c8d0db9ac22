"""The lake: atomic append-only parts, key dedupe, compaction, read-only queries, concurrency."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from storage.lake import STALE_TMP_S, Lake, LakeError, ReadOnlyError, check_read_only
from storage.splits import exclusion_set, load_exclusions, split_of


def structure_row(source_id: str, formula: str = "MgO", energy: float | None = -3.0) -> dict:
    return dict(
        source="test",
        source_id=source_id,
        license="CC0",
        raw_formula=formula,
        reduced_formula=formula,
        elements=["Mg", "O"],
        nelements=2,
        nsites=2,
        spacegroup=225,
        crystal_system="cubic",
        lattice_angstrom=[4.2, 0, 0, 0, 4.2, 0, 0, 0, 4.2],
        species=["Mg", "O"],
        frac_coords=[[0, 0, 0], [0.5, 0.5, 0.5]],
        volume_angstrom3=74.1,
        dhf_dft_ev_per_atom=energy,
        energy_kind="formation_energy_per_atom",
        e_above_hull_ev_per_atom=None,
        icsd_label=1,
        label_origin="test",
        split=split_of(formula),
        extra_json=None,
    )


def candidate_row(campaign: str, outer: int, inner: int) -> dict:
    return dict(
        campaign_id=campaign,
        stage="inner",
        outer_step=outer,
        inner_step=inner,
        family_index=0,
        formula="MgO",
        formula_units=4,
        spacegroup=225,
        crystal_system="cubic",
        wyckoff="Mg:4a O:4b",
        lattice_angstrom=[4.2, 0, 0, 0, 4.2, 0, 0, 0, 4.2],
        numbers=[12, 8],
        frac_coords=[[0, 0, 0], [0.5, 0.5, 0.5]],
        x=[0.5],
        dhf_pred_ev_per_atom=-3.0,
        p_syn=None,
        p_syn_std=None,
        fitness=None,
        valid=True,
        reject_reason="",
        seed=1,
        seconds=0.1,
        model_ids=["m"],
    )


def test_empty_lake_queries_return_zero_rows(lake):
    assert lake.query("SELECT count(*) AS n FROM structures").column("n").to_pylist() == [0]
    assert lake.query("SELECT count(*) AS n FROM candidates").column("n").to_pylist() == [0]


def test_append_is_idempotent_by_key(lake):
    rows = [structure_row("a"), structure_row("b"), structure_row("a")]
    assert lake.append("structures", rows, run_id="r1") == 2
    assert lake.append("structures", rows, run_id="r2") == 0
    assert lake.count("structures") == 2
    got = lake.query("SELECT source_id, run_id FROM structures ORDER BY source_id").to_pylist()
    assert got == [{"source_id": "a", "run_id": "r1"}, {"source_id": "b", "run_id": "r1"}]


def test_rows_outside_schema_are_refused_and_nothing_written(lake):
    bad = structure_row("x")
    bad["colour"] = "blue"
    with pytest.raises(LakeError, match="colour"):
        lake.append("structures", [structure_row("ok"), bad], run_id="r")
    assert lake.count("structures") == 0
    wrong_type = structure_row("y")
    wrong_type["nsites"] = "two"
    with pytest.raises(LakeError, match="schema"):
        lake.append("structures", [wrong_type], run_id="r")
    assert lake.parts("structures") == []


def test_candidates_are_partitioned_per_campaign(lake):
    lake.append("candidates", [candidate_row("c1", 0, i) for i in range(3)], run_id="c1")
    lake.append("candidates", [candidate_row("c2", 0, 0), candidate_row("c1", 0, 2)], run_id="c2")
    assert {p.parent.name for p in lake.parts("candidates")} == {"c1", "c2"}
    counts = lake.query("SELECT campaign_id, count(*) AS n FROM candidates GROUP BY 1 ORDER BY 1").to_pylist()
    assert counts == [{"campaign_id": "c1", "n": 3}, {"campaign_id": "c2", "n": 1}]


def test_half_written_part_is_invisible(lake):
    lake.append("structures", [structure_row("a")], run_id="r")
    folder = lake.table_dir("structures")
    (folder / ".tmp-deadbeef.parquet").write_bytes(b"PAR1 truncated")
    (folder / ".tmp-inflight.parquet").write_bytes(b"PAR1 being written")
    old = time.time() - 2 * STALE_TMP_S
    os.utime(folder / ".tmp-deadbeef.parquet", (old, old))
    assert lake.count("structures") == 1
    lake.compact("structures")
    # a killed writer's old temporary part is removed; a writer's part in flight is left alone
    assert [p.name for p in folder.glob(".tmp-*")] == [".tmp-inflight.parquet"]


def test_compaction_keeps_every_row_once(lake):
    for i in range(5):
        lake.append("structures", [structure_row(f"s{i}"), structure_row(f"t{i}")], run_id=f"r{i}")
    before = lake.query("SELECT source_id, run_id FROM structures ORDER BY 1").to_pylist()
    report = lake.compact("structures")
    assert (report.parts_before, report.parts_after, report.rows) == (5, 1, 10)
    assert lake.query("SELECT source_id, run_id FROM structures ORDER BY 1").to_pylist() == before
    # a duplicate part left behind by an interrupted compaction is not visible twice
    part = lake.parts("structures")[0]
    (part.parent / "part-99999999T999999-copy.parquet").write_bytes(part.read_bytes())
    assert lake.count("structures") == 10
    assert lake.compact("structures").rows == 10


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM structures",
        "DROP VIEW structures",
        "INSERT INTO structures SELECT * FROM structures",
        "COPY (SELECT 1) TO 'x.csv'",
        "CREATE TABLE t AS SELECT 1",
        "SELECT 1; DELETE FROM structures",
        "ATTACH 'x.duckdb'",
        "UPDATE structures SET license = 'x'",
        "SET threads = 1",
    ],
)
def test_writes_are_refused(lake, sql):
    with pytest.raises(ReadOnlyError, match="read-only"):
        check_read_only(sql)
    with pytest.raises(ReadOnlyError):
        lake.query(sql)


def test_queries_bind_parameters(lake):
    lake.append("structures", [structure_row("a", "MgO"), structure_row("b", "CaO")], run_id="r")
    got = lake.query("SELECT source_id FROM structures WHERE reduced_formula = ?", ["CaO"]).to_pylist()
    assert got == [{"source_id": "b"}]


def test_catalog_file_has_views(lake):
    import duckdb

    lake.append("structures", [structure_row("a")], run_id="r")
    path = lake.refresh_catalog()
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM structures").fetchall() == [(1,)]
    finally:
        con.close()


def _append_many(root: str, campaign: str) -> None:
    lake = Lake(root)
    for step in range(10):
        lake.append("candidates", [candidate_row(campaign, step, i) for i in range(5)], run_id=campaign)


@pytest.mark.slow
def test_concurrent_writers_lose_no_rows(tmp_path):
    root = str(tmp_path / "home")
    Lake(root).init()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(root, f"c{i}")) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert Lake(root).count("candidates") == 150


@pytest.mark.slow
def test_killed_writer_leaves_no_partial_part(tmp_path):
    root = tmp_path / "home"
    Lake(root).init()
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from tests.storage.test_lake import structure_row
        from storage.lake import Lake
        lake = Lake({str(root)!r})
        i = 0
        while True:
            lake.append("structures", [structure_row(f"k{{i}}-{{j}}") for j in range(2000)], run_id="k")
            i += 1
            print(i, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "1"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    lake = Lake(root)
    n = lake.count("structures")
    assert n > 0 and n % 2000 == 0  # whole batches only
    assert lake.compact("structures").rows == n


def test_split_is_stable_and_by_formula():
    assert split_of("MgO") == split_of("MgO")
    splits = [split_of(f"Fe{i}O{i + 1}") for i in range(1, 2000)]
    fractions = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert (
        0.75 < fractions["train"] < 0.85
        and 0.07 < fractions["val"] < 0.13
        and 0.07 < fractions["test"] < 0.13
    )


def test_exclusions_from_table1(data_mirror):
    excluded = load_exclusions(data_mirror / "validation" / "table1.json")
    assert len(excluded) == 17
    assert {"MgO", "GaAs", "BaZrO3", "K2Se", "SrCu"} <= set(excluded)
    assert exclusion_set(["Mg4O4", "Zr1Ba1O3"]) == {"MgO", "BaZrO3"}
    with pytest.raises(FileNotFoundError, match="exclusion list"):
        load_exclusions(data_mirror / "nope.json")


def _append_and_compact(root: str, rounds: int) -> None:
    lake = Lake(root)
    for r in range(rounds):
        lake.append("candidates", [candidate_row("cc", r, i) for i in range(3)], run_id="w", dedupe=False)
        lake.compact("candidates", partition="cc")


@pytest.mark.slow
def test_readers_survive_a_concurrent_compaction(tmp_path):
    root = str(tmp_path / "home")
    Lake(root).init()
    proc = mp.get_context("spawn").Process(target=_append_and_compact, args=(root, 60))
    proc.start()
    lake, seen = Lake(root), []
    try:
        while proc.is_alive():
            seen.append(lake.count("candidates"))
    finally:
        proc.join(120)
    assert proc.exitcode == 0
    assert seen == sorted(seen)  # no row ever vanished or showed twice
    assert lake.count("candidates") == 180


def test_a_seed_from_an_older_schema_is_upgraded(tmp_path):
    import pyarrow.parquet as pq

    from storage.schemas import SCHEMAS

    lake = Lake(tmp_path / "home").init()
    lake.append("structures", [structure_row("a")], run_id="r")
    seed = lake._seed_path("structures")
    old = SCHEMAS["structures"].remove(SCHEMAS["structures"].get_field_index("energy_method"))
    pq.write_table(old.empty_table(), seed)  # as a lake made before the column existed
    lake.init()
    assert pq.read_schema(seed).names == SCHEMAS["structures"].names
    assert lake.query("SELECT energy_method FROM structures").to_pylist() == [{"energy_method": None}]


def test_a_valid_candidate_has_a_null_reject_reason_and_old_parts_read_empty_as_null(lake):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from storage.candidates import search_rows
    from storage.optimade import translate
    from storage.schemas import SCHEMAS

    rejected = {**candidate_row("c", 0, 1), "valid": False, "reject_reason": "atoms too close"}
    lake.append("candidates", [candidate_row("c", 0, 0), rejected], run_id="new")
    (part,) = lake.parts("candidates")
    assert pq.read_table(part).column("reject_reason").to_pylist() == [
        None,
        "atoms too close",
    ]  # written null
    # a part written before: '' for the valid row, in a column that was declared non-null
    old_schema = SCHEMAS["candidates"].set(
        SCHEMAS["candidates"].get_field_index("reject_reason"), pa.field("reject_reason", pa.string(), False)
    )
    old = lake._typed_table("candidates", [candidate_row("c", 1, 0)], "old").cast(old_schema)
    assert old.column("reject_reason").to_pylist() == [""]
    pq.write_table(old, part.with_name("part-00000000T000001-old.parquet"))

    def known() -> list[tuple[int, str | None]]:
        sql = "SELECT outer_step, reject_reason FROM candidates WHERE reject_reason IS NOT NULL ORDER BY ALL"
        return [tuple(r.values()) for r in lake.query(sql).to_pylist()]

    assert known() == [(0, "atoms too close")]
    assert (
        lake.query("SELECT count(*) AS n FROM candidates WHERE reject_reason IS NULL").column("n")[0].as_py()
        == 2
    )
    optimade = translate("_csp_reject_reason IS KNOWN")
    assert optimade.where == '("reject_reason" IS NOT NULL)'
    assert (
        lake.query(f"SELECT count(*) AS n FROM candidates WHERE {optimade.where}").column("n")[0].as_py() == 1
    )
    assert lake.compact("candidates").parts_after == 1  # compaction writes the old '' as null
    (merged,) = lake.parts("candidates")
    assert pq.read_table(merged).column("reject_reason").null_count == 2
    assert known() == [(0, "atoms too close")]
    # the search's own row layout (resume) keeps "" for a valid row
    assert [r["reject_reason"] for r in search_rows(lake, "c")] == ["", "atoms too close", ""]


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        ("ATTACH 'x.duckdb'", "Refused an ATTACH statement"),
        ("INSTALL httpfs", "Refused an INSTALL statement"),  # DuckDB types it LOAD
        ("LOAD httpfs", "Refused a LOAD statement"),
        ("  delete from structures", "Refused a DELETE statement"),
    ],
)
def test_a_refusal_names_the_statement_as_written(sql, said):
    with pytest.raises(ReadOnlyError) as err:
        check_read_only(sql)
    assert str(err.value).startswith(said + ": the query interface is read-only")


def test_a_query_that_does_not_parse_is_one_line():
    with pytest.raises(LakeError) as err:
        check_read_only("SELEC 1 FROM")
    assert "\n" not in str(err.value) and str(err.value).startswith("The query could not be parsed: ")


def test_a_too_deep_query_is_one_line_without_advice_the_interface_refuses(lake):
    sql = "SELECT " + "(" * 1200 + "1" + ")" * 1200
    with pytest.raises(LakeError) as err:
        lake.query(sql)
    text = str(err.value)
    assert "\n" not in text and "SET max_expression_depth" not in text and "flatten it" in text


def test_a_failing_query_is_one_line(lake):
    with pytest.raises(LakeError) as err:
        lake.query("SELECT nosuchcolumn FROM structures")
    assert "\n" not in str(err.value) and str(err.value).startswith("The query failed: Binder Error")
