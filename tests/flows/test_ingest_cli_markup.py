"""Text from files, the lake and the user prints as written, never as rich markup (issue 22 leftovers).

A source name, a site label in a quarantine reason, an SQL cell or column name holding ``[red]x[/red]``,
``[bold`` or ``:x:`` is printed literally by the ingest summary and by ``csp sql``.
"""

from __future__ import annotations

from tests.flows.cli_process import invoke_csp

CIF = """data_a
_symmetry_space_group_name_H-M 'P 1'
_cell_length_a 4.212
_cell_length_b 4.212
_cell_length_c 4.212
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
[red]Mg1[/red] [bold]Xx 0 0 0
O1 O 0.5 0.5 0.5
"""


def test_the_ingest_summary_prints_names_and_reasons_as_written(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.cif").write_text(CIF)
    (folder / "id_prop.csv").write_text("a.cif,-1.0\n")
    # a source name is a plain identifier (no brackets since cif22c): its refusal prints it as written
    refused = invoke_csp(tmp_path / "home", "ingest", "folder", str(folder), "--source", "[bold]x")
    assert refused.returncode != 0
    assert "The source name '[bold]x' holds '[', ']'" in refused.stdout + refused.stderr
    result = invoke_csp(tmp_path / "home", "ingest", "folder", str(folder), "--source", "bold.x")
    assert result.returncode == 0, result.stderr
    assert "│ bold.x │" in result.stdout  # the summary table's cell
    assert (
        "bold.x: 1 quarantined: a.cif: site [red]Mg1[/red]: type symbol '[bold]Xx' is not an element"
        in result.stdout
    )


def test_sql_cells_and_column_names_print_as_written(tmp_path):
    from storage.lake import Lake

    sql = "SELECT '[red]x[/red]' AS \"[blue]c\", '[bold' AS b, 'a :x: \\[u]' AS e"
    Lake(tmp_path / "home").init()  # `csp sql` reads only a lake that exists
    result = invoke_csp(tmp_path / "home", "sql", sql)
    assert result.returncode == 0, result.stderr
    for text in ("[blue]c", "[red]x[/red]", "[bold", "a :x: \\[u]"):
        assert text in result.stdout, result.stdout


def test_control_characters_in_cells_print_as_escapes(tmp_path):
    """An ESC sequence or a right-to-left override in a value (a lake written before ids were checked, or any
    SQL result) reaches the terminal as visible escapes, in a cell, a column name and an error line alike."""
    from storage.lake import Lake

    Lake(tmp_path / "home").init()  # `csp sql` reads only a lake that exists
    sql = "SELECT 'id' || chr(27) || '[31mred' || chr(7) AS c, 'a' || chr(8238) || 'b' AS \"r\u202e\""
    result = invoke_csp(tmp_path / "home", "sql", sql)
    assert result.returncode == 0, result.stderr
    assert (
        "id\\x1b[31mred\\x07" in result.stdout
        and "a\\u202eb" in result.stdout
        and "r\\u202e" in result.stdout
    )
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\u202e" not in result.stdout
    shown = invoke_csp(tmp_path / "home", "campaign", "show", "x\x1b]0;title\x07")
    assert shown.returncode == 1 and "\x1b" not in shown.stderr and "x\\x1b]0;title\\x07" in shown.stderr


def test_an_optimade_id_with_an_escape_sequence_is_quarantined_not_stored(tmp_path):
    import json

    from storage.lake import Lake

    entry = {
        "type": "structures",
        "id": "lih\x1b[2J",
        "attributes": {
            "lattice_vectors": [[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]],
            "cartesian_site_positions": [[0, 0, 0], [2, 2, 2]],
            "species_at_sites": ["Li", "H"],
        },
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"data": [entry]}))
    home = tmp_path / "home"
    result = invoke_csp(home, "ingest", "optimade", str(path), "--source", "esc")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "entry id 'lih\\x1b[2J' holds the control or invisible character(s) U+001B" in result.stdout
    lake = Lake(home)
    assert lake.count("structures") == 0
    assert lake.query("SELECT source_id FROM quarantine").to_pylist() == [{"source_id": None}]
