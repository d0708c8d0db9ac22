"""The paper report with one relaxation server (issue 21 item 5): two worker processes relax through one
server process (on the CPU here, on the GPU with ``--device cuda``), and a campaign whose server is gone
fails with one line, its search rows kept."""

from __future__ import annotations

import pytest


def test_the_server_is_on_with_cuda_and_several_workers_and_named_in_the_command():
    from flows.paper import PaperParameters

    assert PaperParameters(device="cuda", workers=15).uses_server()
    assert not PaperParameters(device="cuda", workers=1).uses_server()
    assert not PaperParameters(device="cpu", workers=4).uses_server()
    assert PaperParameters(workers=2, relax_server="on").uses_server()
    assert not PaperParameters(device="cuda", workers=15, relax_server="off").uses_server()
    params = PaperParameters(parts=["table1"], device="cuda", workers=15, relax_server="off")
    command = params.command()
    assert command.endswith("--workers 15 --device cuda --relax-server off")
    import typer.main

    from flows.cli import app

    paper = typer.main.get_command(app).commands["benchmark"].commands["paper"]
    assert PaperParameters(**paper.make_context("paper", command.split()[3:]).params) == params


def _tiny(monkeypatch):
    from csp.evaluation.plan import PRESETS

    plan = PRESETS["tiny"].model_copy(update={"baseline": False, "refine_steps": 5})
    monkeypatch.setitem(PRESETS, "tiny", plan)


@pytest.mark.slow
def test_two_workers_relax_through_one_server(tmp_path, data_mirror, monkeypatch):
    from flows.paper import PaperParameters, run_paper
    from flows.settings import Settings
    from storage.campaigns import result_rows
    from storage.lake import Lake

    _tiny(monkeypatch)
    settings = Settings(home=tmp_path / "home", data_mirror=data_mirror)
    lines: list[str] = []
    params = PaperParameters(
        preset="tiny", parts=["table1"], workers=2, relax_server="on", out=tmp_path / "r"
    )
    data = run_paper(params, settings, say=lines.append)
    assert data["failed"] == [], data["failed"]
    assert any(line.startswith("relaxation server: chgnet on cpu") for line in lines), lines
    stopped = next(line for line in lines if line.startswith("relaxation server stopped"))
    assert "0 requests" not in stopped, stopped  # the campaigns' relaxations went through it
    campaigns = data["campaigns"]
    assert len(campaigns) == 2
    lake = Lake(settings.home)
    for cid in campaigns:
        refined = [r for r in result_rows(lake, cid) if r["stage"] == "refined"]
        assert refined and all(r["potential"].startswith("chgnet") for r in refined), cid


@pytest.mark.slow
def test_a_campaign_whose_server_died_fails_with_one_line_and_keeps_its_rows(
    tmp_path, data_mirror, monkeypatch
):
    from csp.evaluation.plan import PRESETS, table1_jobs
    from csp.evaluation.table1 import load_entries
    from csp.potentials.relax_server import RelaxServer
    from flows.paper import _run_all
    from storage.campaigns import campaign_status, result_rows
    from storage.lake import Lake

    monkeypatch.setenv("CSP_DATA_MIRROR", str(data_mirror))
    _tiny(monkeypatch)
    jobs = table1_jobs(PRESETS["tiny"], load_entries(data_mirror))[:1]
    server = RelaxServer("tests.csp.potentials.toy_potentials:spring", "cpu")
    address = server.start()
    server.stop()  # gone before any campaign asks
    home = tmp_path / "home"
    lines: list[str] = []
    outputs, failed = _run_all(jobs, home, 2, lines.append, address)
    assert outputs == {} and len(failed) == 1
    assert failed[0]["error"].startswith("RelaxServerError: No relaxation server answers at 127.0.0.1:")
    assert len([line for line in lines if line.startswith("FAILED")]) == 1
    assert "\n" not in failed[0]["error"]
    lake = Lake(home)
    cid = jobs[0]["campaign_id"]
    assert campaign_status(lake, cid) == "failed"
    assert any(r["stage"] == "outer" for r in result_rows(lake, cid))  # the search's rows are kept


@pytest.mark.slow
def test_active_labelling_on_a_gpu_starts_one_server_and_on_a_cpu_none():
    from csp.potentials.relax_server import RelaxServerError
    from flows.active_steps import _relax_server

    with _relax_server({"device": "cpu", "potential": "chgnet"}) as server:
        assert server is None
    try:
        import torch

        gpu = torch.cuda.is_available()
    except ImportError:
        gpu = False
    if gpu:
        with _relax_server({"device": "cuda", "potential": "chgnet"}) as server:
            assert server is not None and server.host == "127.0.0.1"
    else:  # the server process tried the GPU, and says why it could not start
        with (
            pytest.raises(RelaxServerError, match=r"chgnet on cuda\) did not start"),
            _relax_server({"device": "cuda", "potential": "chgnet"}),
        ):
            pass
