"""The real service: prefect server + process work pool + deployments from prefect.yaml + a worker.

Starts everything on a free loopback port with a temporary PREFECT_HOME and lake, runs the campaign
deployment twice for the same scheduled slot (the second run must score nothing), and stops every
process it started, also when an assertion fails.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.flows.cli_process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(400)]

SMALL = dict(composition="MgO", outer_steps=3, inner_steps=12, batch_size=6, formula_units_max=2, top_k=3)
SMALL |= dict(refine=False, gap_probes=0)  # the service is under test, not the potential


def test_service_runs_a_campaign_deployment_once_per_slot(tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.service import Service, alive, down, read_pid, up
    from storage.lake import Lake

    csp_home = tmp_path / "csp_home"
    monkeypatch.setenv("CSP_HOME", str(csp_home))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    monkeypatch.setenv("PREFECT_WORKER_QUERY_SECONDS", "2")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    svc = Service(port=free_port(), home=tmp_path / "prefect_home")  # a first `up`: migrations included
    log: list[str] = []
    pids: list[int | None] = []
    try:
        up(svc, log=log.append)
        pids = [read_pid(svc.server_pid_file), read_pid(svc.worker_pid_file)]
        assert all(alive(p) for p in pids), log
        slot = datetime.now(UTC).replace(second=0, microsecond=0)
        with temporary_settings({PREFECT_API_URL: svc.api_url}):
            runs = [
                run_deployment("campaign/campaign", parameters=SMALL, scheduled_time=slot, timeout=180)
                for _ in range(2)
            ]
            with get_client(sync_client=True) as client:
                artifacts = [
                    client.read_artifacts(
                        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[r.id]))
                    )
                    for r in runs
                ]
        worker_log = svc.worker_log.read_text()[-3000:] if svc.worker_log.exists() else ""
        for r in runs:
            assert r.state is not None and r.state.is_completed(), (r.state, worker_log)

        lake = Lake(csp_home)
        campaigns = lake.query("SELECT campaign_id, status, n_candidates FROM campaigns").to_pylist()
        assert len(campaigns) == 1, campaigns  # one slot, one campaign
        (c,) = campaigns
        assert c["status"] == "completed" and c["n_candidates"] == 3 * 12
        assert c["campaign_id"].startswith(f"campaign-MgO-{slot:%Y%m%dT%H%M}Z-")
        # search rows (inner + outer); the exploitation gap's single points (inner_step < -1) come on top
        n = lake.query("SELECT count(*) AS n FROM candidates WHERE inner_step >= -1").to_pylist()[0]["n"]
        assert n == 3 * 12 + 3
        events = lake.query("SELECT status FROM campaign_events ORDER BY seq").to_pylist()
        assert [e["status"] for e in events] == ["running", "completed"]  # the 2nd run wrote nothing

        first, second = ({a.type: a for a in arts} for arts in artifacts)
        assert {"progress", "table", "markdown"} <= set(first)
        assert c["campaign_id"] in first["markdown"].data
        assert "nothing was scored this run" in second["markdown"].data
    finally:
        down(svc, log=log.append)
        # shown by pytest only when the test fails: what the service did, and the worker's last words
        print("\n".join(log))
        print(svc.worker_log.read_text()[-6000:] if svc.worker_log.exists() else "no worker log")
    assert not any(alive(p) for p in pids), log
    assert not svc.worker_pid_file.exists() and not svc.server_pid_file.exists()
