"""Prefect flows against a temporary Prefect API (prefect_test_harness) and a temporary lake."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.slow  # every test here runs campaigns, servers or training

pytest.importorskip("prefect")

TINY = dict(composition="MgO", outer_steps=3, inner_steps=12, batch_size=6, formula_units_max=2, top_k=3)


def _artifacts(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


def _log_lines(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # the run logger sends its records in batches
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def test_campaign_flow_writes_candidates_and_artifacts(prefect_api, csp_home):
    from flows.deployments.campaign import campaign
    from storage.lake import Lake

    state = campaign(**TINY, campaign_id="flowtest-mgo", return_state=True)
    assert state.is_completed(), state.message
    out = state.result()
    assert out["campaign_id"] == "flowtest-mgo" and not out["skipped"]
    lake = Lake(csp_home)
    n = lake.query(
        "SELECT count(*) AS n FROM candidates WHERE campaign_id = 'flowtest-mgo' AND inner_step >= -1"
    ).to_pylist()[0]
    assert n["n"] == 3 * 12 + 3  # inner candidates + one outer row per step
    status = lake.query("SELECT status FROM campaigns WHERE campaign_id = 'flowtest-mgo'").to_pylist()
    assert status == [{"status": "completed"}]

    arts = _artifacts(state.state_details.flow_run_id)
    by_type = {a.type: a for a in arts}
    assert {"progress", "table", "markdown"} <= set(by_type)
    assert float(by_type["progress"].data) == pytest.approx(100.0)
    assert by_type["table"].key == "campaign-mgo-top"
    md = by_type["markdown"].data
    assert "csp sql" in md and "flowtest-mgo" in md and "Convergence" in md
    # the table and the summary's rank 1 are the one campaign result, and the run is named by composition
    from prefect.client.orchestration import get_client

    from flows.results import result_of

    result = result_of(lake, "flowtest-mgo")
    table = by_type["table"].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert [r["structure"] for r in rows] == [f"{e.spacegroup_symbol} ({e.spacegroup})" for e in result.top]
    assert f"(ranked by {result.rank_rule}): {rows[0]['structure']}" in md
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.name == "MgO-3x12-seed0"
    assert "](data:image/png;base64," in md and "```text" not in md  # the plot, not the text chart
    # a progress line a person reads, in the run's logs (what `prefect deployment run --watch` prints)
    logs = _log_lines(state.state_details.flow_run_id)
    last = [m for m in logs if m.startswith("campaign flowtest-mgo: family 3/3, best FV ")]
    assert len(last) == 1 and "structures scored" in last[0] and "elapsed" in last[0], logs
    # each entry's cell and powder pattern: a card and its strongest lines per entry of the one result
    assert "## What an experimentalist checks first" in md
    assert md.count("| 2θ (°) | hkl | intensity |") == len(result.top)
    assert md.count("](data:image/png;base64,") == 1 + len(result.top)

    # the same id again: nothing is scored (search, refined or single-point rows), the report comes from the lake
    every = "SELECT count(*) AS n FROM candidates WHERE campaign_id = 'flowtest-mgo'"
    before = lake.query(every).to_pylist()[0]
    again = campaign(**TINY, campaign_id="flowtest-mgo", return_state=True)
    assert again.result()["skipped"] is True
    assert lake.query(every).to_pylist()[0] == before


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"alpha": 2.0}, "alpha"),
        ({"composition": "Xx"}, "'Xx'"),
        ({"composition": ""}, "empty"),
    ],
)
def test_invalid_parameters_fail_fast_and_write_nothing(prefect_api, csp_home, override, message):
    from flows.deployments.campaign import campaign

    state = campaign(**{**TINY, **override}, return_state=True)
    assert state.is_failed()
    assert message in state.message, state.message
    assert "CampaignError" in state.message
    # the lake was never touched: no campaign event, no candidate, not even the folders
    assert not (csp_home / "lake").exists()


def test_unknown_literal_is_refused_by_prefect(prefect_api, csp_home):
    from flows.deployments.campaign import campaign

    state = campaign(**{**TINY, "outer_optimizer": "sgd"}, return_state=True)
    assert state.is_failed()
    assert "outer_optimizer" in state.message
    assert not (csp_home / "lake").exists()


def test_derived_campaign_id_is_deterministic():
    from flows.campaigns import derived_campaign_id

    t = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    a = derived_campaign_id("nightly-MgO", t, {"composition": "MgO", "seed": 0})
    assert a == derived_campaign_id("nightly-MgO", t, {"seed": 0, "composition": "MgO"})
    assert a.startswith("nightly-mgo-MgO-20260301T0200Z-")
    assert a != derived_campaign_id("nightly-MgO", t, {"composition": "MgO", "seed": 1})


def test_benchmark_flow_writes_the_paper_report_under_the_lake(
    prefect_api, csp_home, data_mirror, monkeypatch
):
    from flows.deployments.benchmark import benchmark

    monkeypatch.setenv("CSP_DATA_MIRROR", str(data_mirror))
    state = benchmark(preset="tiny", parts=["fig3"], return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    report = csp_home / "reports" / "paper-tiny" / "report.md"
    assert summary["report"] == str(report) and report.is_file() and summary["failed"] == []
    assert summary["campaigns"] == 14  # rs, pso, ga, bo outside and inside (bo/pso once), two seeds
    artifacts = {a.key: a for a in _artifacts(state.state_details.flow_run_id)}
    assert "data:image/png;base64," in artifacts["benchmark-paper-tiny"].data  # figures inlined


def test_benchmark_flow_refuses_an_unknown_preset(prefect_api, csp_home):
    from flows.deployments.benchmark import benchmark

    state = benchmark(preset="huge", return_state=True)
    assert state.is_failed() and "preset" in state.message
    assert not (csp_home / "lake").exists()


def test_ingest_flow_one_source(prefect_api, csp_home, data_mirror, monkeypatch):
    from flows.deployments.ingest import ingest
    from storage.lake import Lake

    monkeypatch.setenv("CSP_DATA_MIRROR", str(data_mirror))
    state = ingest(sources=["expt_deltae_jha2019"], return_state=True)
    assert state.is_completed(), state.message
    (report,) = state.result()
    assert report["source"] == "expt_deltae_jha2019" and report["written"] > 0
    assert Lake(csp_home).count("experimental_enthalpies") > 0


def test_export_flow_refuses_a_folder_without_a_run(prefect_api, csp_home, tmp_path):
    from flows.deployments.export import export

    state = export(run_dir=str(tmp_path / "nothing"), name="x", return_state=True)
    assert state.is_failed() and "not a run folder" in state.message


def test_campaigns_flow_on_a_local_dask_cluster(prefect_api, csp_home):
    pytest.importorskip("prefect_dask")
    from flows.deployments.campaigns import campaigns
    from storage.lake import Lake

    state = campaigns(
        compositions=["MgO", "GaAs"],
        outer_steps=2,
        inner_steps=6,
        batch_size=6,
        formula_units_max=2,
        refine=False,
        gap_probes=0,
        task_runner="dask",
        workers=2,
        return_state=True,
    )
    assert state.is_completed(), state.message
    rows = state.result()
    assert [r["composition"] for r in rows] == ["MgO", "GaAs"]
    assert all(r["status"] == "completed" and r["candidates"] == 12 for r in rows)
    got = Lake(csp_home).query("SELECT DISTINCT composition FROM campaigns ORDER BY 1").to_pylist()
    assert got == [{"composition": "GaAs"}, {"composition": "MgO"}]


def test_campaigns_flow_checks_every_formula_first(prefect_api, csp_home):
    from flows.deployments.campaigns import campaigns

    state = campaigns(compositions=["MgO", "Xx"], outer_steps=1, inner_steps=2, return_state=True)
    assert state.is_failed() and "'Xx'" in state.message
    assert not (csp_home / "lake").exists()


def test_augment_flow_plans_labels_ingests_and_resumes(prefect_api, csp_home):
    pytest.importorskip("chgnet")
    from flows.deployments.augment import augment
    from storage.lake import Lake

    params = dict(
        compositions=["KCl"],
        max_prototypes=2,
        random_structures=1,
        element_max_sites=1,
        relax_steps=3,
        distortions=1,
        time_limit_s=600,
    )
    state = augment(**params, return_state=True)
    assert state.is_completed(), state.message
    out = state.result()
    assert out["plan"]["compositions"] == 1 and out["ingested"]["written"] > 0
    lake = Lake(csp_home)
    n = lake.query("SELECT count(*) AS n FROM structures WHERE energy_method = 'mlip'").to_pylist()[0]["n"]
    assert n == out["ingested"]["written"]
    # a second run finds the rows in the lake and labels only what is missing (elemental references)
    again = augment(**params, return_state=True).result()
    assert again["ingested"]["written"] == 0
    assert again["labelled"]["skipped_done"] > 0


def test_augment_flow_refuses_the_validation_compounds(prefect_api, csp_home):
    from flows.deployments.augment import augment
    from storage.lake import Lake

    state = augment(compositions=["MgO", "Mg2O2"], max_prototypes=1, random_structures=0, return_state=True)
    assert state.is_failed()
    with pytest.raises(ValueError, match="exclusion list"):
        state.result()
    assert Lake(csp_home).count("structures") == 0  # nothing was written


def test_active_flow_runs_a_round_and_shows_it(prefect_api, csp_home, tmp_path):
    from flows.deployments.active import active

    state = active(
        composition=["KBr"], fresh=0, outer_steps=2, inner_steps=6, batch_size=6, outer_optimizer="rs",
        inner_optimizer="rs", formula_units_max=1, top_k=1, relax_steps=2, train=False,
        labels_dir=tmp_path / "labels", results=tmp_path / "rounds.json", return_state=True,
    )  # fmt: skip
    assert state.is_completed(), state.message
    (entry,) = state.result()
    assert entry["round"] == 1 and entry["compositions"] == ["KBr"] and entry["rows_labelled"] == 2
    assert entry["command"].startswith("prefect deployment run active/active")
    assert (tmp_path / "labels" / "round-001" / "part-000.parquet").is_file()
    (table,) = [a for a in _artifacts(state.state_details.flow_run_id) if a.key == "active-rounds"]
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert rows[0]["rows_added"] == 2 and rows[0]["gap_ev_per_atom"] is None
