"""`csp sql` and `storage.connect()` cannot change any file, whatever the statement (issue 13, fault 1).

Every statement below was tried against both faces; the lake folder and the working directory are hashed
before and after, and must be byte for byte the same. Reading files outside the lake by path is refused too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import storage
from flows.cli import app
from tests.storage.test_training_sets import _fill


def tree_hash(*roots: Path) -> dict[str, str]:
    """Path -> sha256 of every file (and every folder, as an empty marker) under the roots."""
    out = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return out


def statements(lake_dir: Path) -> list[str]:
    part = next(lake_dir.glob("structures/part-2*.parquet")).as_posix()
    cand = (lake_dir / "candidates" / "evil").as_posix()
    tables = (lake_dir / "structures").as_posix()
    return [
        # plain writes and their disguises
        "COPY (SELECT 42 AS a) TO 'x.csv'",
        f"COPY (SELECT 42 AS a) TO '{(lake_dir.parent.parent / 'outside.csv').as_posix()}'",
        f"COPY (SELECT 42 AS a) TO '{tables}/part-99999999T000000-evil.parquet' (FORMAT parquet)",
        f"COPY (SELECT * FROM structures) TO '{part}' (FORMAT parquet)",
        "EXPLAIN ANALYZE COPY (SELECT 42 AS a) TO 'x.csv'",
        f"EXPLAIN ANALYZE COPY (SELECT 'evil' AS campaign_id, 99.0 AS dhf) TO '{cand}/part-x.parquet'",
        f"explain   analyze\n copy (select 1) to '{part}'",
        "/* harmless */ EXPLAIN /* ANALYZE */ ANALYZE COPY (SELECT 1) TO 'x.csv'",
        "EXPLAIN (ANALYZE, FORMAT json) COPY (SELECT 1) TO 'x.csv'",
        "SELECT 1; COPY (SELECT 1) TO 'x.csv'",
        "SELECT 1; EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'",
        "WITH t AS (SELECT 1 AS a) SELECT * FROM t; COPY (SELECT 1) TO 'x.csv'",
        "COPY structures TO 'dump' (FORMAT parquet, PARTITION_BY (source))",
        "EXPORT DATABASE 'exported'",
        f"EXPORT DATABASE '{lake_dir.as_posix()}'",
        # attaching files (a new database file, or the lake's folder)
        "ATTACH 'new.duckdb' AS x",
        f"ATTACH '{lake_dir.as_posix()}/x.duckdb' AS x",
        "ATTACH 'new.duckdb' AS x; CREATE TABLE x.t AS SELECT 1",
        # catalog changes (in memory only, but refused with a friendly message)
        "CREATE TABLE t AS SELECT 1",
        "CREATE TABLE t AS SELECT 1; INSERT INTO t VALUES (2)",
        "INSERT INTO structures SELECT * FROM structures",
        "DELETE FROM structures",
        "UPDATE structures SET energy_kind = 'x'",
        "DROP VIEW candidates",
        "CREATE OR REPLACE VIEW structures AS SELECT 1",
        "CREATE MACRO m() AS 1",
        # settings that would turn file access back on
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "RESET enable_external_access",
        "RESET ALL",
        "SET disabled_filesystems = ''",
        "SET temp_directory = 'spill'",
        "PRAGMA enable_profiling = 'json'",
        "SET profiling_output = 'profile.json'",
        "PRAGMA enable_checkpoint_on_shutdown",
        "CALL enable_logging()",
        # extensions
        "INSTALL httpfs",
        "LOAD httpfs",
        "FORCE INSTALL json",
        # functions that touch files
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT * FROM glob('/**')",
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM read_parquet('{part}')",
        f"SELECT * FROM 'file://{part}'",
        f"SELECT * FROM '{part}'",
        "SELECT * FROM duckdb_extensions()",
        "CHECKPOINT",
        "VACUUM",
        # upper/lower case, comments, CTEs, transactions
        "cOpY (sElEcT 1) tO 'x.csv'",
        "-- comment\nCOPY (SELECT 1) TO 'x.csv'",
        "WITH w AS (SELECT 1) SELECT * FROM w UNION ALL SELECT 2; DELETE FROM structures",
        "BEGIN; CREATE TABLE t AS SELECT 1; COMMIT",
        "PREPARE p AS COPY (SELECT 1) TO 'x.csv'; EXECUTE p",
        "SELECT * FROM query('COPY (SELECT 1) TO ''x.csv''')",
    ]


@pytest.fixture
def filled(lake, monkeypatch, tmp_path):
    _fill(lake)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("CSP_HOME", str(lake.root))
    monkeypatch.setenv("COLUMNS", "200")
    return lake


@pytest.mark.slow
def test_no_statement_changes_any_file(filled, tmp_path):
    lake_dir = filled.lake_dir
    work = Path.cwd()
    before = tree_hash(tmp_path)  # the lake, the working folder and the folder above the lake
    runner = CliRunner()
    for sql in statements(lake_dir):
        result = runner.invoke(app, ["sql", sql])
        assert result.exit_code != 0, f"csp sql accepted: {sql}\n{result.output}"
        assert "Traceback" not in result.output, sql
        with storage.connect(filled.root) as con, pytest.raises(storage.LakeError):
            con.arrow(sql)
        assert tree_hash(tmp_path) == before, f"a file changed after: {sql}"
    assert not (work / "x.csv").exists()


def test_the_connection_itself_cannot_write(filled):
    """Past the friendly statement check: the DuckDB connection refuses files and settings."""
    part = next(filled.lake_dir.glob("structures/part-2*.parquet")).as_posix()
    before = tree_hash(filled.root, Path.cwd())
    with storage.connect(filled.root) as con:
        raw = con._con  # the DuckDB connection under the statement check
        for sql in (
            "COPY (SELECT 1) TO 'x.csv'",
            f"COPY (SELECT * FROM structures) TO '{part}' (FORMAT parquet)",
            "EXPORT DATABASE 'exported'",
            "ATTACH 'new.duckdb' AS x",
            "SELECT * FROM read_text('/etc/passwd')",
            "SELECT * FROM glob('/**')",
            "SET enable_external_access = true",
            "SET lock_configuration = false",
            "SET disabled_filesystems = ''",
            "LOAD httpfs",
        ):
            with pytest.raises(duckdb.Error, match=r"disabled|locked|Permission"):
                relation = raw.sql(sql)
                if relation is not None:
                    relation.fetchall()
        # the relation API writes through DuckDB too, so it is refused as well
        for write in ("write_csv", "write_parquet"):
            with pytest.raises(duckdb.Error, match=r"disabled|Permission"):
                getattr(con.execute("SELECT 1 AS a"), write)("relation-out")
    assert tree_hash(filled.root, Path.cwd()) == before


def test_reads_still_work_and_named_inputs(filled, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    extra = tmp_path / "mine.parquet"
    pq.write_table(pa.table({"reduced_formula": ["MgO", "ZnO"], "note": ["a", "b"]}), extra)
    with storage.connect(filled.root, inputs={"mine": extra}) as con:
        assert con.arrow("SELECT count(*) AS n FROM structures").column("n")[0].as_py() == 6
        joined = con.arrow(
            "SELECT m.note FROM mine m JOIN structures s USING (reduced_formula) ORDER BY 1"
        ).column("note")
        assert joined.to_pylist() == ["a", "b"]
        # the named input is read through Python; its path is not readable from SQL
        with pytest.raises(storage.ReadOnlyError):
            con.arrow(f"SELECT * FROM read_parquet('{extra.as_posix()}')")
    result = CliRunner().invoke(app, ["sql", "SELECT count(*) AS n FROM mine", "--input", f"mine={extra}"])
    assert result.exit_code == 0, result.output
    assert "2" in result.output
    with pytest.raises(storage.LakeError, match="identifier"):
        storage.connect(filled.root, inputs={"structures": extra})


def test_outside_files_are_refused_with_one_line(filled):
    result = CliRunner().invoke(app, ["sql", "SELECT * FROM read_text('/etc/passwd')"])
    assert result.exit_code == 1
    assert "by path" in result.output
    assert "root:" not in result.output
