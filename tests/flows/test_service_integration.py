"""The real service: prefect server + process work pool + deployments from prefect.yaml + a worker.

One service (user A's) starts for the module on a free loopback port with a temporary PREFECT_HOME and
lake (a first `up`: migrations included) and serves both tests, in file order: the first runs the campaign
deployment twice for the same scheduled slot (the second run must score nothing); the second, on A's port,
is user B, whose `up` is refused and whose worker cannot write A's runs (it stops A's worker). The fixture
stops every process it started, also when an assertion fails, and checks that none is left.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from tests.flows.cli_process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(400)]

SMALL = dict(composition="MgO", outer_steps=3, inner_steps=12, batch_size=6, formula_units_max=2, top_k=3)
SMALL |= dict(refine=False, gap_probes=0)  # the service is under test, not the potential

# How long a test waits out a server that answers 503 Service Unavailable. The server says 503 for an
# error a client may retry (SQLite busy: the worker, the flow run and the server's own loop services all
# write to one database file); Prefect's client already retries it 5 times (~1 min of back-off), which a
# loaded 2-core machine has outlasted. A bounded wait here, never an unbounded one: a server that stays
# busy past it fails the test with the 503.
BUSY_S = 240.0


def when_ready(call, deadline: float):
    """``call()``, tried again every 2 s while the server answers 503, until ``deadline`` (monotonic)."""
    import httpx

    while True:
        try:
            return call()
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 503 or time.monotonic() > deadline:
                raise
        time.sleep(2.0)


def run_deployment(name: str, **kwargs):
    """Prefect's ``run_deployment``, tried again while the server is busy (:func:`when_ready`). Every try
    carries one idempotency key, so a try whose flow run was created before the 503 (or during its wait)
    finds that run again instead of creating a second one."""
    from prefect.deployments import run_deployment as prefect_run_deployment

    kwargs.setdefault("idempotency_key", uuid.uuid4().hex)
    deadline = time.monotonic() + BUSY_S
    return when_ready(lambda: prefect_run_deployment(name, **kwargs), deadline)


@pytest.fixture(scope="module")
def service_a(tmp_path_factory):
    """User A's service, up once for the module (``up`` costs a server start with its migrations, the
    deployments and a worker): (service, its lake, the service's log). Brought down at the end, which must
    leave no process and no pid file."""
    from flows.service import Service, alive, down, read_pid, up

    root = tmp_path_factory.mktemp("service")
    lake_a = root / "a" / "csp_home"
    log: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CSP_HOME", str(lake_a))
        mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        mp.setenv("DO_NOT_TRACK", "1")
        mp.setenv("PREFECT_WORKER_QUERY_SECONDS", "2")
        mp.delenv("PREFECT_API_URL", raising=False)
        svc = Service(port=free_port(), home=root / "a" / "prefect_home")
        pids: list[int | None] = []
        try:
            up(svc, log=log.append)
            pids = [read_pid(svc.server_pid_file), read_pid(svc.worker_pid_file)]
            assert all(alive(p) for p in pids), log
            yield svc, lake_a, log
        finally:
            down(svc, log=log.append)
            # shown by pytest only when the teardown fails: what the service did
            print("\n".join(log))
        assert not any(alive(p) for p in pids), log
        assert not svc.worker_pid_file.exists() and not svc.server_pid_file.exists()


def test_service_runs_a_campaign_deployment_once_per_slot(service_a, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from storage.lake import Lake

    svc, csp_home, log = service_a
    monkeypatch.setenv("CSP_HOME", str(csp_home))
    try:
        slot = datetime.now(UTC).replace(second=0, microsecond=0)
        with temporary_settings({PREFECT_API_URL: svc.api_url}):
            runs = [
                run_deployment("campaign/campaign", parameters=SMALL, scheduled_time=slot, timeout=180)
                for _ in range(2)
            ]
            deadline = time.monotonic() + BUSY_S
            with get_client(sync_client=True) as client:
                artifacts = [
                    when_ready(
                        lambda r=r: client.read_artifacts(
                            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[r.id]))
                        ),
                        deadline,
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
        # shown by pytest only when the test fails: what the service did, and the worker's last words
        print("\n".join(log))
        print(svc.worker_log.read_text()[-6000:] if svc.worker_log.exists() else "no worker log")


def test_two_homes_on_one_port_cannot_cross_lakes(service_a, tmp_path, monkeypatch):
    """User A's service owns the port; user B's `up` there is refused with one line and starts nothing;
    a worker with B's lake that polls A's pool refuses A's run, and neither lake gets a row (A's lake
    keeps the rows of the test before, if it ran, and gets none more). Stops A's worker: the last test."""
    import subprocess
    import sys

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.service import Service, read_pid, status, stop_pid, up, work_pool_for
    from storage.lake import Lake
    from tests.flows.cli_process import invoke_csp, one_line_error

    svc_a, lake_a, log = service_a
    lake_b = tmp_path / "b" / "csp_home"
    monkeypatch.setenv("CSP_HOME", str(lake_a))
    port = svc_a.port

    def events(lake) -> int:
        if not (lake / "lake").exists():
            return 0
        return Lake(lake).query("SELECT count(*) AS n FROM campaign_events").to_pylist()[0]["n"]

    before = {lake_a: events(lake_a), lake_b: 0}
    rogue = None
    try:
        assert svc_a.work_pool == work_pool_for(lake_a) != work_pool_for(lake_b)

        # trial 22: a submitter points A's worker at another lake through the job variables (both CSP_HOME
        # and CSP_SERVICE_LAKE): the run compares with the lake A's worker was started for and fails
        lake_x = tmp_path / "x" / "csp_home"
        moved = {"env": {"CSP_HOME": str(lake_x), "CSP_SERVICE_LAKE": str(lake_x)}}
        with temporary_settings({PREFECT_API_URL: svc_a.api_url}):
            run = run_deployment("campaign/campaign", parameters=SMALL, job_variables=moved, timeout=180)
        assert run.state is not None and run.state.is_failed(), (run.state, svc_a.worker_log.read_text()[-3000:])
        assert f"asks for the lake {lake_x.resolve()}, but its worker was started for {lake_a.resolve()}" in (
            run.state.message or ""
        ), run.state.message
        assert not lake_x.exists()

        # user B: another PREFECT_HOME and CSP_HOME, the same port
        monkeypatch.setenv("CSP_HOME", str(lake_b))
        svc_b = Service(port=port, home=tmp_path / "b" / "prefect_home")
        with pytest.raises(
            RuntimeError, match=rf"Port {port} already serves a Prefect server that this service"
        ):
            up(svc_b, log=log.append)
        assert not svc_b.worker_pid_file.exists() and not svc_b.server_pid_file.exists()
        result = invoke_csp(
            lake_b, "service", "up", "--port", str(port), env={"PREFECT_HOME": str(svc_b.home)}
        )
        assert f"choose another --port, or stop that server with `csp service down --port {port}`" in (
            one_line_error(result)
        )
        seen = status(svc_b)
        assert seen["server"]["healthy"] and not seen["server"]["ours"]
        assert seen["server"]["home"] == str(svc_a.home)
        shown = invoke_csp(
            lake_b, "service", "status", "--port", str(port), env={"PREFECT_HOME": str(svc_b.home)}
        )
        assert shown.returncode == 1 and "another home's server" in shown.stdout and "lake None" not in shown.stdout

        # a worker with B's lake on A's pool (started by hand): A's run refuses to start there
        stop_pid(read_pid(svc_a.worker_pid_file), signals=2)
        env = svc_a.env() | {"CSP_HOME": str(lake_b)}
        with temporary_settings({PREFECT_API_URL: svc_a.api_url}):
            run = run_deployment("campaign/campaign", parameters=SMALL, timeout=0)
            with (tmp_path / "rogue.log").open("wb") as out:
                rogue = subprocess.Popen(
                    [sys.executable, "-m", "prefect", "worker", "start", "--pool", svc_a.work_pool],
                    cwd=svc_a.project,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            with get_client(sync_client=True) as client:
                deadline = time.monotonic() + 180

                def read_state():
                    return when_ready(lambda: client.read_flow_run(run.id).state, deadline + BUSY_S)

                state = read_state()
                while not state.is_final() and time.monotonic() < deadline:
                    time.sleep(1)
                    state = read_state()
        print((tmp_path / "rogue.log").read_text()[-4000:])
        assert state.is_failed(), state
        assert f"deployed for the lake {lake_a.resolve()}, but its worker writes to {lake_b.resolve()}" in (
            state.message or ""
        )
        for lake in (lake_a, lake_b):
            assert events(lake) == before[lake], lake
    finally:
        if rogue is not None and rogue.poll() is None:
            stop_pid(rogue.pid, signals=2)
        print("\n".join(log))
