"""Issue 22: a read creates no lake. Every read-only entry point (``csp sql``, ``csp candidates``/``structures``
queries and exports, ``csp campaign list|show|export|resume``, ``csp lake stats|compact|catalog``, ``csp plot``,
:mod:`storage` and :mod:`storage.query`) shares one rule, :func:`storage.lake.open_read_only`: no lake at
``CSP_HOME`` (or at the default folder when it is unset) is one line and exit 1, and no file or folder appears.
Writers (``csp ingest``, ``csp lake init``, campaigns) still create the lake."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.lake import Lake, NoLakeError, no_lake_message, open_read_only
from tests.flows.cli_process import invoke_csp, one_line_error

READERS = [
    ("sql", "SELECT 1"),
    ("sql", "SELECT count(*) FROM candidates"),
    ("candidates", "query"),
    ("candidates", "query", 'elements HAS "Mg"', "--campaign", "c1"),
    ("structures", "query"),
    ("candidates", "export", "c1", "--out", "{out}/c1.cif"),
    ("campaign", "list"),
    ("campaign", "show", "c1"),
    ("campaign", "export", "c1", "--out", "{out}/files"),
    ("campaign", "resume", "c1"),
    ("lake", "stats"),
    ("lake", "compact"),
    ("lake", "catalog"),
    ("plot", "convergence", "c1", "--out", "{out}/c.png"),
]


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


@pytest.mark.parametrize("args", READERS, ids=lambda a: " ".join(a[:2]))
def test_a_reader_of_a_missing_lake_says_so_and_creates_nothing(tmp_path, args):
    home, out = tmp_path / "home", tmp_path / "out"
    out.mkdir()
    result = invoke_csp(home, *(a.format(out=out) for a in args))
    assert one_line_error(result) == f"error: no lake at {home}: run `csp ingest run` or set CSP_HOME"
    assert result.returncode == 1
    assert _files(tmp_path) == [out]  # no lake, no catalog, no output file


def test_with_csp_home_unset_the_default_folder_is_not_created(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    monkeypatch.delenv("CSP_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    result = CliRunner().invoke(app, ["sql", "SELECT 1"])
    assert result.exit_code == 1
    assert " ".join(result.stderr.split()) == (
        f"error: no lake at {tmp_path / 'xdg' / 'csp'}: run `csp ingest run` or set CSP_HOME"
    )
    assert _files(tmp_path) == []


def test_the_storage_readers_share_the_rule(tmp_path):
    import storage
    from storage.query import list_campaigns, load_campaign, load_candidates, query

    home = tmp_path / "home"
    message = no_lake_message(home.resolve())
    assert message == f"no lake at {home}: run `csp ingest run` or set CSP_HOME"
    readers = [
        lambda: open_read_only(home),
        lambda: storage.connect(home),
        lambda: Lake(home).connect(),
        lambda: Lake(home).query("SELECT 1"),
        lambda: Lake(home).count("structures"),
        lambda: list_campaigns(home),
        lambda: load_campaign("c1", home=home),
        lambda: load_candidates(home=home),
        lambda: query(None, home=Lake(home)),
    ]
    for read in readers:
        with pytest.raises(NoLakeError) as caught:
            read()
        assert str(caught.value) == message
    assert _files(tmp_path) == []


def test_writers_still_create_the_lake_and_readers_then_read_it(tmp_path):
    home = tmp_path / "home"
    made = invoke_csp(home, "lake", "init")
    assert made.returncode == 0, made.stderr
    assert Lake(home).exists and (home / "catalog.duckdb").is_file()
    shown = invoke_csp(home, "sql", "SELECT count(*) AS n FROM candidates")
    assert shown.returncode == 0, shown.stderr
    assert open_read_only(home).query("SELECT count(*) AS n FROM structures").to_pylist() == [{"n": 0}]


def test_a_reader_of_an_existing_lake_writes_nothing(tmp_path):
    """A lake whose folder exists but whose seeds were never written (or are older): reads see empty, typed
    tables and leave the folder as it was."""
    home = tmp_path / "home"
    (home / "lake").mkdir(parents=True)
    assert Lake(home).query("SELECT count(*) AS n FROM candidates").to_pylist() == [{"n": 0}]
    assert _files(tmp_path) == [home, home / "lake"]


def test_ingest_checks_its_source_name_against_a_missing_lake_without_creating_it(tmp_path):
    """A writer that reads before it writes (the source names in use) sees an empty lake; a name it refuses
    leaves nothing behind."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "id_prop.csv").write_text("a.cif,-1.0\n")
    result = invoke_csp(tmp_path / "home", "ingest", "folder", str(folder), "--source", "a/b")
    assert "no lake" not in one_line_error(result)
    assert not (tmp_path / "home").exists()
