"""OPTIMADE filters -> DuckDB SQL: snapshots of the SQL and its bound parameters, run on a small lake.

Every snapshot row is (table, filter, SQL condition, bound parameters, rows matched in the fixture lake of
``history_fixtures``). A change in the translation shows here as a diff; the counts check the SQL means
what the filter says.
"""

from __future__ import annotations

import pytest

from storage.optimade import FIELDS, FilterError, source_sql, translate
from storage.query import query
from tests.storage.history_fixtures import make_history_lake

SNAPSHOTS = [
    (
        "candidates",
        'elements HAS ALL "Mg","O" AND nsites<=8 AND _csp_p_syn>0.8',
        '(list_has_all("elements", ?) AND "nsites" <= ? AND "p_syn" > ?)',
        (["Mg", "O"], 8, 0.8),
        2,
    ),
    ("candidates", "nsites = 2", '"nsites" = ?', (2,), 4),
    (
        "candidates",
        "_csp_reject_reason IS KNOWN",
        '("reject_reason" IS NOT NULL)',
        (),
        1,
    ),  # the one invalid row
    ("candidates", "nsites != 8", '"nsites" <> ?', (8,), 4),
    ("candidates", "8 > nsites", '"nsites" < ?', (8,), 4),
    (
        "candidates",
        "nelements >= 2 AND nperiodic_dimensions = 3",
        '("nelements" >= ? AND "nperiodic_dimensions" = ?)',
        (2, 3),
        11,
    ),
    ("candidates", 'chemical_formula_reduced = "MgO"', '"chemical_formula_reduced" = ?', ("MgO",), 11),
    ("candidates", 'chemical_formula_anonymous = "AB"', '"chemical_formula_anonymous" = ?', ("AB",), 11),
    (
        "candidates",
        'chemical_formula_reduced STARTS WITH "Mg"',
        'starts_with("chemical_formula_reduced", ?)',
        ("Mg",),
        11,
    ),
    (
        "candidates",
        'chemical_formula_reduced ENDS "O"',
        'ends_with("chemical_formula_reduced", ?)',
        ("O",),
        11,
    ),
    ("candidates", '_csp_wyckoff CONTAINS "22"', 'contains("wyckoff", ?)', ("22",), 8),
    ("candidates", 'elements HAS "Mg"', 'list_contains("elements", ?)', ("Mg",), 11),
    ("candidates", 'elements HAS ANY "Ba","O"', 'list_has_any("elements", ?)', (["Ba", "O"],), 11),
    ("candidates", 'elements HAS ONLY "Mg","O"', 'list_has_all(?, "elements")', (["Mg", "O"],), 11),
    ("candidates", 'elements HAS ONLY "Mg"', 'list_has_all(?, "elements")', (["Mg"],), 0),
    ("candidates", "species_at_sites LENGTH 2", 'len("species_at_sites") = ?', (2,), 4),
    ("candidates", "species_at_sites LENGTH >= 8", 'len("species_at_sites") >= ?', (8,), 7),
    (
        "candidates",
        'species_at_sites HAS > "N"',
        'len(list_filter("species_at_sites", lambda v: v > ?)) > 0',
        ("N",),
        11,
    ),
    ("candidates", "lattice_vectors IS KNOWN", '("lattice_vectors" IS NOT NULL)', (), 11),
    ("candidates", "_csp_p_syn IS UNKNOWN", '("p_syn" IS NULL)', (), 8),
    ("candidates", "_csp_valid = FALSE", '"valid" = ?', (False,), 1),
    ("candidates", "NOT _csp_valid = TRUE", '(NOT "valid" = ?)', (True,), 1),
    (
        "candidates",
        "_csp_spacegroup = 225 OR _csp_spacegroup = 216",
        '("spacegroup" = ? OR "spacegroup" = ?)',
        (225, 216),
        7,
    ),
    (
        "candidates",
        '(_csp_stage = "outer" AND _csp_fitness < 0.5) OR _csp_dhf <= -3.0',
        '(("stage" = ? AND "fitness" < ?) OR "dhf_pred_ev_per_atom" <= ?)',
        ("outer", 0.5, -3.0),
        3,
    ),
    (
        "candidates",
        'NOT (_csp_stage = "inner" OR _csp_p_syn < 0.9)',
        '(NOT ("stage" = ? OR "p_syn" < ?))',
        ("inner", 0.9),
        1,
    ),
    (
        "candidates",
        '_csp_campaign_id = "hist-b" AND _csp_best_dhf < -2.8',
        '("campaign_id" = ? AND "best_dhf_ev_per_atom" < ?)',
        ("hist-b", -2.8),
        2,
    ),
    ("candidates", 'id = "hist-a/outer/0/-1"', '"id" = ?', ("hist-a/outer/0/-1",), 1),
    (
        "candidates",
        'last_modified > "2000-01-01T00:00:00Z"',
        '"last_modified" > CAST(? AS TIMESTAMPTZ)',
        ("2000-01-01T00:00:00Z",),
        11,
    ),
    (
        "candidates",
        '_csp_model_ids HAS "alignn-exp:0123456789ab"',
        'list_contains("model_ids", ?)',
        ("alignn-exp:0123456789ab",),
        11,
    ),
    (
        "candidates",
        "_csp_seconds > 1.55 AND _csp_seconds < 2.55",
        '("seconds" > ? AND "seconds" < ?)',
        (1.55, 2.55),
        4,
    ),
    ("candidates", "_csp_dhf < _csp_best_dhf", '"dhf_pred_ev_per_atom" < "best_dhf_ev_per_atom"', (), 0),
    (
        "candidates",
        '_csp_reject_reason = "it\\"s \'quoted\'; DROP TABLE x"',
        '"reject_reason" = ?',
        ("it\"s 'quoted'; DROP TABLE x",),
        0,
    ),
    ("structures", 'chemical_formula_reduced = "BaO3Zr"', '"chemical_formula_reduced" = ?', ("BaO3Zr",), 1),
    ("structures", 'chemical_formula_anonymous = "A3BC"', '"chemical_formula_anonymous" = ?', ("A3BC",), 1),
    (
        "structures",
        'elements HAS ALL "Ba","O" AND _csp_dhf < -3.2',
        '(list_has_all("elements", ?) AND "dhf_dft_ev_per_atom" < ?)',
        (["Ba", "O"], -3.2),
        1,
    ),
    (
        "structures",
        '_csp_source = "fixture" AND nsites <= 5',
        '("source" = ? AND "nsites" <= ?)',
        ("fixture", 5),
        1,
    ),
]


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    return make_history_lake(tmp_path_factory.mktemp("history") / "home")


@pytest.mark.parametrize(("table", "filter_", "where", "params", "count"), SNAPSHOTS)
def test_filter_translates_to_bound_sql(history, table, filter_, where, params, count):
    translation = translate(filter_, table)
    assert translation.where == where
    assert translation.params == params
    # no value of the filter is spliced into the SQL text: strings are only ever parameters
    for value in params:
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                assert text not in translation.where
    assert query(filter_, table=table, home=history).num_rows == count


def test_there_are_at_least_twenty_snapshots():
    assert len(SNAPSHOTS) >= 20


def test_full_sql_orders_by_scoring_order_and_binds_the_limit():
    translation = translate("nsites = 2")
    assert translation.sql(limit=3).endswith(
        'WHERE "nsites" = ? ORDER BY campaign_id, stage, outer_step, inner_step LIMIT ?'
    )
    assert translation.all_params(limit=3) == [2, 3]


def test_derived_fields_match_optimade_conventions(history):
    rows = query('id = "hist-a/outer/0/-1"', home=history).to_pylist()
    (row,) = rows
    assert row["elements"] == ["Mg", "O"]
    assert row["nelements"] == 2 and row["nsites"] == 8 and row["nperiodic_dimensions"] == 3
    assert row["chemical_formula_reduced"] == "MgO" and row["chemical_formula_anonymous"] == "AB"
    assert row["species_at_sites"] == ["Mg"] * 4 + ["O"] * 4
    assert len(row["lattice_vectors"]) == 3 and row["lattice_vectors"][0] == pytest.approx([4.21, 0, 0])
    (perovskite,) = query('id = "fixture:bazro3"', table="structures", home=history).to_pylist()
    assert perovskite["chemical_formula_reduced"] == "BaO3Zr"
    assert perovskite["chemical_formula_anonymous"] == "A3BC"


def test_every_declared_field_is_a_column_of_its_source(history):
    for table, fields in FIELDS.items():
        columns = set(query(None, table=table, limit=1, home=history).column_names)
        missing = {name for name, field in fields.items() if field.column not in columns}
        assert not missing, (table, missing)
    assert "?" not in source_sql("candidates")


@pytest.mark.parametrize(
    ("filter_", "column", "words"),
    [
        ("nsites >< 3", 9, ["Malformed filter at column 9", "'<'"]),
        ('nsites > "a', 10, ["column 10", "'\"'"]),
        ('elements HAS ALL "Mg",', 23, ["ends too early"]),
        ("(nsites > 3", 12, ["ends too early"]),
        ("Nsites = 3", 1, ["column 1", "'Nsites'", "lowercase"]),
        ("nsites = 3 AND AND nelements = 2", 16, ["column 16", "'AND'"]),
        ("_csp_psyn > 0.8", 1, ["Unknown field '_csp_psyn' at column 1", "did you mean '_csp_p_syn'"]),
        ("nsites = 2 AND foo.bar = 1", 16, ["Unknown field 'foo.bar' at column 16"]),
        ('nsites = "8"', 10, ["'nsites' takes a number", "column 10"]),
        ('_csp_dhf < "low"', 12, ["takes a number"]),
        ("chemical_formula_reduced = 3", 28, ['takes a "string"']),
        ('elements = "Mg"', 10, ["'elements' is a list", "HAS"]),
        ("_csp_valid > TRUE", 12, ["compare it with = or !="]),
        ("nsites = TRUE", 8, ["TRUE/FALSE only compare with a boolean field"]),
        ("nsites HAS 3", 8, ["HAS applies to list fields"]),
        ("nsites CONTAINS 3", 8, ["CONTAINS applies to string fields"]),
        ("_csp_dhf LENGTH 3", 10, ["LENGTH applies to list fields"]),
        ('elements:species_at_sites HAS "Mg":"O"', 1, ["Zipped set comparisons"]),
        ('elements HAS ALL >"Mg"', 18, ["Operators inside a value list"]),
        ("nsites = _csp_stage", 10, ["Cannot compare a number field with a string field"]),
        # trial 22: a 400-digit number reached DuckDB ("Python integer too large for 128-bit integer type")
        ("nsites > 1" + "0" * 400, 10, ["Number out of range: 1000000000", "(401 characters)"]),
        ("nsites > -1" + "0" * 5000, 10, ["Number out of range", "(5002 characters)"]),
        ("_csp_dhf < 1e400", 12, ["Number out of range: 1e400"]),
        ("nsites < 9223372036854775808", 10, ["Number out of range"]),
    ],
)
def test_bad_filters_get_one_line_errors_pointing_at_the_token(filter_, column, words):
    with pytest.raises(FilterError) as info:
        translate(filter_)
    message = str(info.value)
    assert "\n" not in message
    assert info.value.column == column
    for word in words:
        assert word in message


def test_empty_filter_and_unknown_table_are_refused():
    with pytest.raises(FilterError, match="empty"):
        translate("   ")
    with pytest.raises(FilterError, match="not 'models'"):
        translate("nsites = 1", "models")  # type: ignore[arg-type]


def test_the_widest_number_a_filter_takes_runs():
    params = translate("nsites < 9223372036854775807 AND _csp_dhf > -1e300").params
    assert 9223372036854775807 in params and -1e300 in params


def test_long_filters_are_abbreviated_in_titles():
    from storage.optimade import abbreviate

    assert abbreviate("nsites = 1") == "nsites = 1"
    long = " OR ".join(["nsites = 1"] * 400)
    assert abbreviate(long) == f"{long[:200]}... ({len(long)} characters)"
