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
    result = invoke_csp(tmp_path / "home", "ingest", "folder", str(folder), "--source", "[red]x[/red]:x:")
    assert result.returncode == 0, result.stderr
    assert "│ [red]x[/red]:x: │" in result.stdout  # the summary table's cell
    assert (
        "[red]x[/red]:x:: 1 quarantined: site [red]Mg1[/red]: type symbol '[bold]Xx' is not an element"
        in result.stdout
    )


def test_sql_cells_and_column_names_print_as_written(tmp_path):
    sql = "SELECT '[red]x[/red]' AS \"[blue]c\", '[bold' AS b, 'a :x: \\[u]' AS e"
    result = invoke_csp(tmp_path / "home", "sql", sql)
    assert result.returncode == 0, result.stderr
    for text in ("[blue]c", "[red]x[/red]", "[bold", "a :x: \\[u]"):
        assert text in result.stdout, result.stdout
