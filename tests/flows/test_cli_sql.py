"""`csp sql` and the Python query API: group-by over sources, an experiment-structure join, refusals."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import storage
from flows.cli import app
from tests.storage.test_training_sets import _fill


@pytest.fixture
def filled(lake, monkeypatch):
    _fill(lake)
    monkeypatch.setenv("CSP_HOME", str(lake.root))
    monkeypatch.setenv("COLUMNS", "200")
    return lake


def test_group_by_source_from_cli_and_python(filled, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app, ["sql", "SELECT source, count(*) AS n FROM structures GROUP BY source ORDER BY 1"]
    )
    assert result.exit_code == 0, result.output
    assert "castelli_cdvae" in result.output and "mp_flla2015" in result.output
    out = tmp_path / "q.csv"
    result = runner.invoke(
        app, ["sql", "SELECT source, count(*) AS n FROM structures GROUP BY 1 ORDER BY 1", "--csv", str(out)]
    )
    assert result.exit_code == 0
    assert out.read_text().splitlines()[1:] == ['"castelli_cdvae",1', '"mp_flla2015",5']
    with storage.connect(filled.root) as con:
        df = con.df("SELECT source, count(*) AS n FROM structures GROUP BY 1 ORDER BY 1")
    assert df["n"].tolist() == [1, 5]


def test_join_of_experiment_to_structures(filled, tmp_path):
    sql = (
        "SELECT e.reduced_formula, e.dhf_exp_ev_per_atom, s.source_id, s.spacegroup FROM experimental_enthalpies e "
        "JOIN structures s ON s.reduced_formula = e.reduced_formula ORDER BY 1"
    )
    out = tmp_path / "join.parquet"
    result = CliRunner().invoke(app, ["sql", sql, "--parquet", str(out)])
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    assert pq.read_table(out).column("reduced_formula").to_pylist() == ["CaO", "MgO"]
    with storage.connect(filled.root) as con:
        assert con.arrow(sql).num_rows == 2


@pytest.mark.parametrize(
    "sql", ["DELETE FROM structures", "DROP VIEW candidates", "COPY structures TO 'x.csv'"]
)
def test_writes_through_csp_sql_are_refused(filled, sql):
    result = CliRunner().invoke(app, ["sql", sql])
    assert result.exit_code == 1
    assert "read-only" in result.output
    assert filled.count("structures") == 6


def test_python_connection_is_read_only(filled):
    with pytest.raises(storage.LakeError, match="read-only"):
        storage.connect(filled.root, read_only=False)


def test_nested_columns_are_written_to_csv_as_json_text(filled, tmp_path):
    import csv
    import json

    out = tmp_path / "nested.csv"
    sql = "SELECT [1, 2] AS l, {'a': 1, 'b': 'x'} AS s, MAP {'k': 2} AS m, 'p' AS plain"
    result = CliRunner().invoke(app, ["sql", sql, "--csv", str(out)])
    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(out.open()))
    assert json.loads(row["l"]) == [1, 2]
    assert json.loads(row["s"]) == {"a": 1, "b": "x"}
    assert json.loads(row["m"]) == [["k", 2]]
    assert row["plain"] == "p"
    out2 = tmp_path / "species.csv"
    result = CliRunner().invoke(app, ["sql", "SELECT species FROM structures LIMIT 1", "--csv", str(out2)])
    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(out2.open()))
    assert isinstance(json.loads(row["species"]), list)


def test_a_long_filter_is_abbreviated_in_the_query_title(tmp_path):
    """Trial 22: the title echoed a 4000-term filter in full (hundreds of lines); it shows the first 200
    characters and the length."""
    from storage.lake import Lake
    from tests.flows.cli_process import invoke_csp

    home = tmp_path / "home"
    Lake(home).init()
    filter_ = " OR ".join(["nsites = 1"] * 400)
    shown = invoke_csp(home, "structures", "query", filter_)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    text = " ".join(shown.stdout.split())
    assert f"No structures match '{filter_[:200]}... ({len(filter_)} characters)'." in text, text
    assert len(shown.stdout) < 600
