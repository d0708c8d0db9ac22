"""Campaign ids and states (issue 13, faults 2, 4, 5, 7): one id one set of parameters, honest states,
checks before scoring, and the small ones (seed bound, Ctrl-C hint, long formula, service port/status)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from storage import campaign_state
from storage.lake import Lake
from tests.flows.cli_process import csp, free_port, invoke_csp, one_line_error, run_csp

TINY = ["--outer-steps", "2", "--inner-steps", "12", "--batch-size", "6", "--z-max", "2"]


def events(lake: Lake, cid: str) -> list[dict]:
    return lake.query(
        "SELECT seq, status, reason FROM campaign_events WHERE campaign_id = ? ORDER BY seq", [cid]
    ).to_pylist()


def status(lake: Lake, cid: str) -> str:
    return lake.query("SELECT status FROM campaigns WHERE campaign_id = ?", [cid]).column(0)[0].as_py()


def candidates(lake: Lake, cid: str) -> int:
    """Search rows of a campaign (inner and outer; refined and single-point rows come on top)."""
    return (
        lake.query("SELECT count(*) FROM candidates WHERE campaign_id = ? AND inner_step >= -1", [cid])
        .column(0)[0]
        .as_py()
    )


# ------------------------------------------------------------------------- fast, no model is opened


@pytest.mark.parametrize(
    "cid", ["a/b", "../x", ".hidden", "", "x" * 97, "has space", "semi;colon", "ünï", "-dash-first"]
)
def test_bad_campaign_ids_are_refused(cid):
    with pytest.raises(campaign_state.CampaignStateError, match="not usable"):
        campaign_state.check_campaign_id(cid)


@pytest.mark.parametrize("cid", ["x", "MgO-20261130T195406-d107c1", "bench-mgo-bo.1_a", "9" * 96])
def test_good_campaign_ids_pass(cid):
    assert campaign_state.check_campaign_id(cid) == cid


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--campaign-id", "a/b"], "is not usable"),
        (["--campaign-id", "x" * 10_000], "10000 characters"),
        (["--export-cif", "FILE"], "is not a folder"),
        (
            ["--seed", str(2**63)],
            "--seed must be an integer from 0 to 9223372036854775807, not 9223372036854775808.",
        ),
        (["--outer-steps", "10000", "--inner-steps", "100000"], "above the bound"),
    ],
)
def test_checks_come_before_scoring(tmp_path, args, message):
    target = tmp_path / "exists.cif"
    target.write_text("keep me")
    args = [str(target) if a == "FILE" else a for a in args]
    result = invoke_csp(tmp_path / "home", "campaign", "run", "MgO", *args)
    text = one_line_error(result)
    assert message in text
    assert len(text) < 400
    assert target.read_text() == "keep me"
    lake = Lake(tmp_path / "home").init()
    assert lake.count("candidates") == 0
    assert (
        lake.query("SELECT count(*) FROM campaign_events WHERE status = 'running'").column(0)[0].as_py() == 0
    )


@pytest.mark.slow  # a CLI subprocess
def test_a_huge_formula_is_not_echoed_whole(tmp_path):
    result = run_csp(tmp_path, "campaign", "run", "MgO" * 3334, "--campaign-id", "long")
    text = one_line_error(result)
    assert "10,002 characters" in text and len(text) < 300


def test_claim_lock_heartbeat_and_stale(tmp_path):
    lake = Lake(tmp_path).init()
    with campaign_state.claim_run(lake, "c1", "r1", heartbeat_s=0.1) as claim:
        info = campaign_state.read_run_info(lake, "c1")
        assert info["pid"] == os.getpid() and info["host"] == claim.info["host"]
        assert campaign_state.liveness(lake, "c1")[0] is True
        assert campaign_state.shown_status(lake, "c1", "running") == ("running", None)
        with (
            pytest.raises(campaign_state.CampaignStateError, match="already running"),
            campaign_state.claim_run(lake, "c1", "r2"),
        ):
            pass
        time.sleep(0.35)
        assert campaign_state.read_run_info(lake, "c1")["heartbeat_at"] >= info["started_at"]
    alive, why = campaign_state.liveness(lake, "c1")
    assert alive is False and "gone" in why
    shown, note = campaign_state.shown_status(lake, "c1", "running")
    assert shown == "stale" and "csp campaign resume c1" in note
    assert campaign_state.shown_status(lake, "c1", "completed") == ("completed", None)


def test_a_remote_run_is_stale_when_its_heartbeat_stops(tmp_path):
    lake = Lake(tmp_path).init()
    folder = campaign_state.runs_dir(lake)
    folder.mkdir()
    info = {"pid": 1, "host": "elsewhere", "heartbeat_at": "2020-01-01T00:00:00+00:00", "started_at": "x"}
    (folder / "r.json").write_text(json.dumps(info))
    alive, why = campaign_state.liveness(lake, "r")
    assert alive is False and "no heartbeat" in why


def test_sigterm_becomes_an_interrupt_and_exit_status_names_it():
    with pytest.raises(campaign_state.Terminated), campaign_state.sigterm_raises():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert campaign_state.exit_status(campaign_state.Terminated(), "c")[0] == "interrupted"
    assert campaign_state.exit_status(KeyboardInterrupt(), "c")[0] == "interrupted"
    state, reason = campaign_state.exit_status(RuntimeError("disk full\nmore"), "c")
    assert state == "failed" and reason == "RuntimeError: disk full"


def test_fingerprint_ignores_top_k_only(tmp_path):
    from storage.candidates import record_event

    lake = Lake(tmp_path).init()
    params = {"composition": "MgO", "seed": 0, "outer_steps": 3, "top_k": 5}
    record_event(lake, "f", composition="MgO", status="running", parameters=params, run_id="r")
    assert campaign_state.check_same_parameters(lake, "f", {**params, "top_k": 9}) is True
    assert campaign_state.check_same_parameters(lake, "new", params) is False
    with pytest.raises(
        campaign_state.CampaignStateError, match=r"outer_steps=3 \(this request: outer_steps=4\)"
    ):
        campaign_state.check_same_parameters(lake, "f", {**params, "outer_steps": 4})


def test_the_fingerprint_holds_the_models_onnx_sha256(tmp_path):
    """Issue 22: a campaign's models are part of its fingerprint by their ONNX sha256 (the prefix after the
    folder name): another model is refused, the same file under a renamed folder is the same model, and
    a campaign that recorded no model ids (or a request whose ids cannot be read) is not compared."""
    from storage.candidates import record_event

    lake = Lake(tmp_path).init()
    params = {"composition": "MgO", "seed": 0}
    started = ["ALIGNN-ExpTL-2026.11-Eform:428d43bc554d", "ALIGNN-PU-2026.11-Psyn:4b5de498f5e0"]
    record_event(
        lake, "m", composition="MgO", status="running", parameters=params, run_id="r", model_ids=started
    )
    check = campaign_state.check_same_parameters
    assert check(lake, "m", params, model_ids=started) is True
    assert check(lake, "m", params, model_ids=["renamed:428d43bc554d", "PU:4b5de498f5e0"]) is True
    assert check(lake, "m", params, model_ids=None) is True
    other = ["ALIGNN-DFT-2026.11-Eform:c4bc8fd9c6e7", started[1]]
    with pytest.raises(campaign_state.CampaignStateError) as caught:
        check(lake, "m", params, model_ids=other)
    assert str(caught.value) == (
        f"Campaign m was started with the models {', '.join(started)} (this request: {', '.join(other)}); "
        "resume it with those model folders (CSP_MODELS_DIR, CSP_DFT_MODEL, CSP_EXP_MODEL, CSP_PU_MODEL) or "
        "start a new campaign under another --campaign-id."
    )
    record_event(lake, "legacy", composition="MgO", status="running", parameters=params, run_id="r")
    assert check(lake, "legacy", params, model_ids=other) is True


def test_a_field_added_later_at_its_default_still_resumes(tmp_path):
    from flows.campaigns import CampaignParameters
    from storage.candidates import record_event

    lake = Lake(tmp_path).init()
    now = CampaignParameters(composition="MgO", outer_steps=3).model_dump()
    older = {k: v for k, v in now.items() if k != "gap_probes"}  # stored before gap_probes existed
    record_event(lake, "old", composition="MgO", status="running", parameters=older, run_id="r")
    defaults = CampaignParameters.field_defaults()
    assert "composition" not in defaults and defaults["gap_probes"] == 5
    assert campaign_state.check_same_parameters(lake, "old", now, defaults) is True
    with pytest.raises(
        campaign_state.CampaignStateError, match=r"gap_probes=5 \(this request: gap_probes=0\)"
    ):
        campaign_state.check_same_parameters(lake, "old", {**now, "gap_probes": 0}, defaults)
    with pytest.raises(campaign_state.CampaignStateError, match="gap_probes=null"):  # no defaults given
        campaign_state.check_same_parameters(lake, "old", now)


def test_service_port_and_status(tmp_path):
    env = {"PREFECT_HOME": str(tmp_path / "ph")}
    start = time.monotonic()
    result = invoke_csp(tmp_path, "service", "up", "--port", "99999", env=env)
    assert time.monotonic() - start < 30
    assert "--port must be an integer from 1 to 65535, not 99999." in one_line_error(result)
    assert not (tmp_path / "ph" / "server.pid").exists()
    status_result = invoke_csp(tmp_path, "service", "status", env=env)
    assert status_result.returncode == 1
    assert "not running" in status_result.stdout


# ------------------------------------------------------------------------- campaigns on the shipped models


@pytest.mark.slow
def test_an_id_belongs_to_one_set_of_parameters(tmp_path):
    first = run_csp(tmp_path, "campaign", "run", "MgO", *TINY, "--campaign-id", "x")
    assert first.returncode == 0, first.stderr
    # the default campaign refines and reports the search's exploitation gap beside the search's own top k
    assert "gap: the potential's dHf at the found geometry minus the model's" in first.stdout
    assert "gap (eV/atom)" in first.stdout
    refined = "SELECT count(*) AS n FROM candidates WHERE campaign_id = 'x' AND stage = 'refined'"
    assert Lake(tmp_path).query(refined).to_pylist()[0]["n"] > 0
    lake = Lake(tmp_path)
    before_events, before_rows = events(lake, "x"), candidates(lake, "x")
    # four other requests for the same id (in this process: each is refused before any model is opened)
    for other, stored in (
        (["GaAs", *TINY], 'composition="MgO"'),
        (["MgO", *TINY, "--seed", "1"], "seed=0"),
        (["MgO", *TINY[:-2], "--z-max", "1"], "--formula-units-max=2"),
        (["MgO", *TINY, "--inner-optimizer", "rs"], '--inner-optimizer="pso"'),
    ):
        text = one_line_error(invoke_csp(tmp_path, "campaign", "run", *other, "--campaign-id", "x"))
        assert stored in text and "csp campaign resume x" in text
    assert events(lake, "x") == before_events
    assert candidates(lake, "x") == before_rows
    assert status(lake, "x") == "completed"
    # the same parameters (top_k may differ) resume: nothing new is scored
    again = invoke_csp(tmp_path, "campaign", "run", "MgO", *TINY, "--campaign-id", "x", "--top-k", "2")
    assert again.returncode == 0, again.stderr
    assert candidates(lake, "x") == before_rows


@pytest.mark.slow
def test_sigterm_and_kill_leave_honest_states(tmp_path):
    lake = Lake(tmp_path).init()
    outer, inner_steps = 6, 30  # 186 search rows: the signals land at 12, the resumes score the rest
    longer = ["--outer-steps", str(outer), "--inner-steps", str(inner_steps), "--batch-size", "6"]
    longer += ["--z-max", "2"]
    longer += ["--no-refine", "--gap-probes", "0"]  # the search is what is interrupted here
    signals = {"t": signal.SIGTERM, "i": signal.SIGINT, "k": signal.SIGKILL}
    # the three campaigns run at once; each gets its signal once it has stored 12 candidates. Ctrl-C as a
    # terminal sends it (fault F3): SIGINT to the whole process group, so "i" runs in a session of its own
    # with two symmetry-detection workers (a pool it would not start for so few candidates), which must
    # not print their own KeyboardInterrupt tracebacks
    procs = {
        cid: csp(
            tmp_path, "campaign", "run", "MgO", *longer, "--campaign-id", cid,
            **({"env": {"CSP_SYMMETRY_WORKERS": "2"}, "start_new_session": True} if cid == "i" else {}),
        )
        for cid in signals
    }  # fmt: skip
    waiting, deadline, seen = set(signals), time.time() + 180, {}
    stored = "SELECT campaign_id, count(*) AS n FROM candidates WHERE inner_step >= -1 GROUP BY 1"
    while waiting and time.time() < deadline:
        counts = {r["campaign_id"]: r["n"] for r in lake.query(stored).to_pylist()}  # one query for all
        for cid in sorted(waiting):
            if counts.get(cid, 0) >= 12:
                seen[cid] = counts[cid]
                # Popen.send_signal does nothing to a process that has exited: say so instead
                assert procs[cid].poll() is None, f"{cid} ended before its signal ({counts[cid]} rows seen)"
                if cid == "i":
                    os.killpg(procs[cid].pid, signals[cid])  # the process group, as Ctrl-C at a terminal
                else:
                    procs[cid].send_signal(signals[cid])
                waiting.discard(cid)
        time.sleep(0.2)
    assert not waiting, f"no 12 candidates within 180 s: {sorted(waiting)}"
    for cid, sig in signals.items():
        proc = procs[cid]
        _out, err = proc.communicate(timeout=60)
        if sig != signal.SIGKILL:
            assert proc.returncode == 130, f"{cid}: exit {proc.returncode} after {seen[cid]} rows; {err}"
            assert f"csp campaign resume {cid}" in err and "Traceback" not in err
            if cid == "i":  # the one line, nothing from the pool's workers
                assert (
                    err.strip() == "error: campaign i interrupted; resume it with: csp campaign resume i"
                ), err
            assert status(lake, cid) == "interrupted"
        else:
            assert status(lake, "k") == "running"
            listing = invoke_csp(tmp_path, "campaign", "list")
            row = next(line for line in listing.stdout.splitlines() if line.strip("│ ").startswith("k "))
            assert "stale" in row
    # Ctrl-C and kill -9 resume (both at once) to exactly the rows of an uninterrupted run
    inner = "SELECT count(*) AS n FROM candidates WHERE campaign_id = 'i' AND stage = 'inner'"
    before = lake.query(inner).to_pylist()[0]["n"]
    resumes = {cid: csp(tmp_path, "campaign", "resume", cid) for cid in ("i", "k")}
    outs = {}
    for cid, proc in resumes.items():
        outs[cid], err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        assert status(lake, cid) == "completed"
        assert candidates(lake, cid) == outer * (inner_steps + 1)
    # fault F6: the resume says what it replayed and what it scored; the estimate counts only timed families
    out = outs["i"]
    total = outer * inner_steps
    now = total - before
    assert f"{total} candidates: {before} replayed from earlier runs, {now} scored by this run in" in out
    assert "for 0 structures" not in out and f"{now} structures scored now, {before} replayed" in out
    # `campaign list` adds up the seconds of both runs (each run's last event records its own)
    runs = "SELECT status, elapsed_s FROM campaign_events WHERE campaign_id = 'i' AND status <> 'running'"
    ended = {r["status"]: r["elapsed_s"] for r in lake.query(runs).to_pylist()}
    assert set(ended) == {"interrupted", "completed"} and all(s > 0 for s in ended.values()), ended
    listing = invoke_csp(tmp_path, "campaign", "list").stdout
    assert "seconds (all runs)" in listing
    row = next(line for line in listing.splitlines() if line.strip("│ ").startswith("i "))
    assert f"{round(sum(ended.values()), 1):g}" in row, (row, ended)


@pytest.mark.slow
def test_an_error_after_the_search_is_recorded_as_failed(tmp_path, monkeypatch):
    import csp.structures.matching
    from flows.campaigns import CampaignParameters, run_campaign
    from flows.settings import Settings

    def broken_rank(*args, **kwargs):
        raise RuntimeError("ranking exploded")

    monkeypatch.setattr(csp.structures.matching, "rank", broken_rank)
    params = CampaignParameters(
        composition="MgO", outer_steps=1, inner_steps=6, batch_size=6, formula_units_max=1
    )
    with pytest.raises(RuntimeError, match="exploded"):
        run_campaign(params, campaign_id="boom", settings=Settings(home=tmp_path))
    lake = Lake(tmp_path)
    last = events(lake, "boom")[-1]
    assert last["status"] == "failed" and "ranking exploded" in last["reason"]
    assert campaign_state.liveness(lake, "boom")[0] is False


@pytest.mark.slow  # a CLI subprocess
def test_service_up_on_a_taken_port_fails_fast(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {"PREFECT_HOME": str(tmp_path / "ph")}
        result = run_csp(tmp_path, "service", "up", "--port", str(port), timeout=60, env=env)
    assert "is taken" in one_line_error(result)
    assert not (tmp_path / "ph" / "server.pid").exists()


def test_export_and_sql_targets_are_checked_first(tmp_path):
    existing = tmp_path / "exists.cif"
    existing.write_text("keep me")
    result = invoke_csp(tmp_path / "home", "campaign", "export", "nope", "--out", str(existing))
    assert "is not a folder" in one_line_error(result)
    result = invoke_csp(tmp_path / "home", "sql", "SELECT 1", "--csv", str(tmp_path))
    assert "is a folder" in one_line_error(result)
    assert existing.read_text() == "keep me"


def test_a_work_pool_for_a_server_that_is_gone_is_one_error_line(tmp_path):
    """`service up` whose server stops answering between start and work pool: one line, no traceback."""
    from flows.service import Service, create_work_pool

    port = free_port()  # nobody listens there
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=rf"127\.0\.0\.1:{port}/api did not take the work pool"):
        create_work_pool(Service(port=port, home=tmp_path / "ph"))
    assert time.monotonic() - start < 60
