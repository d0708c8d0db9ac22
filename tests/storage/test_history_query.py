"""The query API: campaigns, candidates in scoring order with best-so-far values, structures, Parquet."""

from __future__ import annotations

import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.candidates import LakeSink
from storage.query import (
    NoRowsError,
    QueryError,
    list_campaigns,
    load_campaign,
    load_candidates,
    query,
    to_atoms,
    to_structures,
    write_parquet,
)
from tests.storage.history_fixtures import MODEL_IDS, cscl, make_history_lake


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    return make_history_lake(tmp_path_factory.mktemp("history") / "home")


def test_load_campaign_and_list(history):
    campaign = load_campaign("hist-a", home=history)
    assert campaign["status"] == "completed"
    assert campaign["parameters"]["outer_optimizer"] == "bo"
    assert campaign["model_ids"] == MODEL_IDS
    assert list(list_campaigns(history)["campaign_id"]) == ["hist-b", "hist-a"]  # newest first


def test_unknown_campaign_is_one_line_naming_known_ids(history):
    with pytest.raises(QueryError) as info:
        load_campaign("nope", home=history)
    assert str(info.value).count("\n") == 0
    assert "'nope'" in str(info.value) and "hist-b" in str(info.value)
    with pytest.raises(QueryError, match="No campaign 'nope'"):
        load_candidates(campaign="nope", home=history)


def test_candidates_in_scoring_order_with_best_so_far(history):
    df = load_candidates(campaign="hist-a", stage="inner", home=history)
    assert list(df["evaluation"]) == [1, 2, 3, 4, 5, 6]
    assert list(zip(df["outer_step"], df["inner_step"], strict=True)) == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
        (1, 2),
    ]
    # the invalid row (no energy) never lowers the best-so-far enthalpy
    assert list(df["best_dhf_ev_per_atom"]) == pytest.approx([-2.90, -3.05, -3.05, -3.05, -3.05, -3.05])
    assert list(df["valid"]) == [True, True, False, True, True, True]
    assert list(df["reject_reason"])[2] == "atoms too close"
    for column in ("seed", "seconds", "model_ids", "fitness", "p_syn", "dhf_pred_ev_per_atom", "id"):
        assert column in df.columns
    outer = load_candidates(campaign="hist-a", stage="outer", home=history)
    assert list(outer["best_fitness"]) == pytest.approx([0.07, 0.07])


def test_filter_does_not_change_best_so_far(history):
    df = load_candidates("nsites = 2", campaign="hist-a", stage="inner", home=history)
    # CsCl rows come after the rock-salt rows: their best-so-far still counts rock salt
    assert list(df["best_dhf_ev_per_atom"]) == pytest.approx([-3.05, -3.05, -3.05])
    assert list(df["evaluation"]) == [4, 5, 6]


def test_arrow_and_empty_results(history):
    table = load_candidates("nsites > 100", as_arrow=True, home=history)
    assert isinstance(table, pa.Table) and table.num_rows == 0
    with pytest.raises(NoRowsError, match="matched nothing"):
        to_structures(table)
    with pytest.raises(NoRowsError, match="matched nothing"):
        write_parquet(table, history.root / "x.parquet")


def test_to_structures_and_atoms(history):
    rows = load_candidates('id = "hist-a/outer/1/-1"', home=history)
    (structure,) = to_structures(rows)
    assert structure.composition.reduced_formula == "MgO" and len(structure) == 2
    assert structure.lattice.a == pytest.approx(cscl().lattice.a)
    assert structure.properties["p_syn"] == pytest.approx(0.10)
    assert structure.properties["model_ids"] == MODEL_IDS
    (atoms,) = to_atoms(rows)
    assert atoms.get_chemical_formula() == "MgO"
    (perovskite,) = to_structures(query('_csp_source_id = "bazro3"', table="structures", home=history))
    assert perovskite.composition.reduced_formula == "BaZrO3"


def test_parquet_round_trip(history, tmp_path):
    df = load_candidates(campaign="hist-b", home=history)
    path = write_parquet(df, tmp_path / "out" / "hist-b.parquet")
    back = pq.read_table(path).to_pandas()
    assert list(back["id"]) == list(df["id"])
    assert to_structures(back)[0].composition == to_structures(df)[0].composition


@pytest.mark.slow
def test_reads_while_a_campaign_writes(tmp_path):
    lake = make_history_lake(tmp_path / "home")
    sink = LakeSink(lake, run_id="writer")
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        base = load_candidates('id = "hist-a/inner/1/0"', home=lake).to_dict("records")[0]
        step = 10
        while not stop.is_set():
            row = {
                k: base[k]
                for k in (
                    "campaign_id",
                    "stage",
                    "family_index",
                    "formula",
                    "formula_units",
                    "spacegroup",
                    "crystal_system",
                    "wyckoff",
                    "x",
                    "dhf_pred_ev_per_atom",
                    "p_syn",
                    "p_syn_std",
                    "fitness",
                    "valid",
                    "reject_reason",
                    "seed",
                    "seconds",
                )
            }
            row.update(
                outer_step=step,
                inner_step=0,
                lattice=list(base["lattice_angstrom"]),
                numbers=list(base["numbers"]),
                frac_coords=[v for triple in base["frac_coords"] for v in triple],
            )
            sink.append([row])
            step += 1

    def read() -> None:
        try:
            for _ in range(5):
                df = load_candidates(campaign="hist-a", stage="inner", home=lake)
                assert list(df["evaluation"]) == list(range(1, len(df) + 1))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        read()
    finally:
        stop.set()
        writer.join()
    assert not errors
    assert len(load_candidates(campaign="hist-a", stage="inner", home=lake)) > 6


def test_search_rows_of_one_group_and_the_light_trace(history):
    from storage.candidates import search_rows, search_trace

    rows = search_rows(history, "hist-a", ("inner",), spacegroup=221)
    assert [(r["outer_step"], r["inner_step"]) for r in rows] == [(1, 0), (1, 1), (1, 2)]
    lowest = search_rows(history, "hist-a", ("inner",), lowest_energy_first=True, limit=2)
    assert [r["dhf_pred_ev_per_atom"] for r in lowest] == [-3.05, -2.90]  # valid rows only, lowest first
    assert len(rows[0]["lattice"]) == 9
    trace = search_trace(history, "hist-a")
    assert trace.num_rows == 8 and "lattice_angstrom" not in trace.column_names
    assert trace.column("stage").to_pylist()[:4] == ["outer", "inner", "inner", "inner"]
