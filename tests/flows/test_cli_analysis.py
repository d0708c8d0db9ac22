"""`csp candidates`, `csp structures` and `csp plot` on a small history lake (in-process CLI runner)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from csp.structures.io import read_structure
from flows.cli import app
from tests.storage.history_fixtures import make_history_lake


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    return make_history_lake(tmp_path_factory.mktemp("history") / "home")


@pytest.fixture
def csp(history, monkeypatch):
    monkeypatch.setenv("CSP_HOME", str(history.root))
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args))

    return run


def test_candidates_query_prints_matches_in_order(csp):
    result = csp("candidates", "query", 'elements HAS ALL "Mg","O" AND nsites<=8 AND _csp_p_syn>0.8')
    assert result.exit_code == 0, result.output
    assert "2 candidates matching" in result.output
    assert result.output.index("hist-a/outer/0/-1") < result.output.index("hist-b/outer/0/-1")


def test_candidates_query_with_campaign_and_stage(csp):
    result = csp("candidates", "query", "nsites = 2", "--campaign", "hist-a", "--stage", "inner")
    assert result.exit_code == 0, result.output
    assert "3 candidates matching" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("candidates", "query", "nsites >< 2"), "Malformed filter at column 9"),
        (("candidates", "query", "_csp_psyn > 0.5"), "Unknown field '_csp_psyn' at column 1"),
        (("candidates", "query", "nsites = 2", "--campaign", "nope"), "No campaign 'nope'"),
        (("structures", "query", "_csp_fitness < 1"), "Unknown field '_csp_fitness'"),
        (("candidates", "export", "nope", "--out", "x"), "No campaign 'nope'"),
        (("plot", "convergence", "nope", "--out", "x.png"), "No campaign 'nope'"),
        (("plot", "convergence", "hist-a", "--out", "x.jpg"), "must end in .png or .svg"),
        (("plot", "refined", "hist-a", "--out", "x.png"), "No refined rows"),
        (("plot", "structures", "nope", "--out", "x"), "No campaign 'nope'"),
        (("candidates", "query", "nsites = 2", "--format", "cif"), "needs --out"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(csp, args, message):
    result = csp(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.strip().count("\n") == 0


def test_empty_result_is_a_clear_answer(csp):
    result = csp("candidates", "query", "nsites > 100")
    assert result.exit_code == 0
    assert result.output.strip() == "No candidates match 'nsites > 100'."


def test_structures_query(csp):
    result = csp("structures", "query", 'chemical_formula_reduced = "BaO3Zr"')
    assert result.exit_code == 0, result.output
    assert "fixture:bazro3" in result.output


@pytest.mark.parametrize("fmt", ["cif", "poscar", "extxyz", "json", "entry"])
def test_export_top_k_in_every_structure_format(csp, tmp_path, fmt):
    result = csp("candidates", "export", "hist-a", "--format", fmt, "--top-k", "1", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    (path,) = sorted(tmp_path.iterdir())
    assert path.name.startswith("hist-a-rank1")  # the campaign result's rank 1 (no refinement: lowest FV)
    assert "ranked by fitness FV of the search" in result.output
    assert read_structure(path).composition.reduced_formula == "MgO"


def test_query_to_parquet(csp, tmp_path):
    out = tmp_path / "rows.parquet"
    result = csp("candidates", "query", "_csp_valid = FALSE", "--format", "parquet", "--out", str(out))
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == ["hist-a/inner/0/2"]


@pytest.mark.parametrize(
    "args",
    [
        ("convergence", "hist-a"),
        ("energies", "hist-a"),
        ("spacegroups", "hist-a"),
        ("psyn-dhf", "hist-a", "--top-k", "2"),
        ("optimizers", "hist-a", "hist-b"),
    ],
)
def test_plot_commands_write_images(csp, tmp_path, args):
    out = tmp_path / f"{args[0]}.png"
    result = csp("plot", *args, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG")


def test_plot_structures_writes_one_card_per_result_entry(csp, tmp_path, history):
    from flows.results import result_of

    result = csp("plot", "structures", "hist-a", "--out", str(tmp_path / "cards"))
    assert result.exit_code == 0, result.output
    top = result_of(history, "hist-a").top
    names = sorted(p.name for p in (tmp_path / "cards").iterdir())
    assert names == [f"hist-a-rank{e.rank}.png" for e in top] and len(names) == 2
    assert all((tmp_path / "cards" / n).read_bytes().startswith(b"\x89PNG") for n in names)
    assert "ranked by fitness FV of the search" in result.output
    svg = csp(
        "plot", "structures", "hist-a", "--out", str(tmp_path / "svg"), "--top-k", "1", "--format", "svg"
    )
    assert svg.exit_code == 0, svg.output
    assert [p.name for p in (tmp_path / "svg").iterdir()] == ["hist-a-rank1.svg"]


def test_fields_lists_standard_and_csp_fields(csp):
    result = csp("candidates", "fields")
    assert result.exit_code == 0
    for name in ("chemical_formula_anonymous", "_csp_p_syn", "_csp_best_fitness"):
        assert name in result.output
