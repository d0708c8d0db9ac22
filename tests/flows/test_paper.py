"""The paper report (issue 24): every preset makes valid campaigns, and the tiny preset, run as a user runs
it, writes a report of the right structure (sections, JSON keys, real PNGs) and resumes from the lake.
The numbers are not checked: the tiny preset is far too small to mean anything."""

from __future__ import annotations

import json

import pytest

from tests.flows.cli_process import run_csp

REPORT_KEYS = {
    "schema", "command", "preset", "parts", "machine", "models", "wall_s", "started_at", "finished_at",
    "plan", "paper", "table1", "fig2", "fig3", "fig4", "campaigns", "campaign_seconds", "figures", "failed",
}  # fmt: skip


def _check_preset(preset, data_mirror, check):
    from csp.evaluation.plan import PRESETS, baseline_job, fig3_jobs, fig4_jobs, table1_jobs
    from csp.evaluation.table1 import load_entries

    plan = PRESETS[preset]
    entries = load_entries(data_mirror)
    jobs = table1_jobs(plan, entries) + fig4_jobs(plan, entries) + fig3_jobs(plan)
    jobs.append(baseline_job(plan, entries[0], plan.strategies[0], 0, 5))
    by_id = {}
    for job in jobs:
        check(job["params"])  # raises for a request a campaign would refuse
        assert len(job["campaign_id"]) <= 96
        assert by_id.setdefault(job["campaign_id"], job["params"]) == job["params"]  # one id, one request
    n = len(plan.formulas or entries)
    assert len({j["campaign_id"] for j in jobs if j["part"] == "table1"}) == (
        n * len(plan.strategies) * len(plan.alphas) * len(plan.seeds)
    )
    if preset == "full":  # the issue's grid
        assert (plan.outer_steps, plan.inner_steps, plan.seeds) == (200, 300, [0, 1, 2])
        assert plan.alphas == [0.0, 0.5, 1.0] and set(plan.strategies) == {"all", "fixed"}
        assert len(plan.fig3_seeds) >= 5


# validate() lists every campaign's symmetry families (the budget check): the full preset's 448 campaigns
# hold 104 distinct listings, ~14 s on 2 cores, so that preset's complete check runs in the full suite and
# the fast subset checks its grid, ids and parameters without the listings
@pytest.mark.parametrize(
    "preset",
    ["tiny", pytest.param("reduced", marks=pytest.mark.slow), pytest.param("full", marks=pytest.mark.slow)],
)
def test_every_preset_makes_valid_distinct_campaigns(preset, data_mirror):
    from flows.campaigns import validate

    _check_preset(preset, data_mirror, validate)


def test_the_full_preset_is_the_issues_grid_of_distinct_well_formed_campaigns(data_mirror):
    from flows.campaigns import CampaignParameters

    _check_preset("full", data_mirror, lambda params: CampaignParameters(**params))


def test_the_report_names_the_command_that_makes_it(tmp_path):
    import typer.main

    from flows.cli import app
    from flows.paper import PaperParameters

    params = PaperParameters(preset="reduced", parts=["table1", "fig3"], workers=3, out=tmp_path / "r")
    command = params.command()
    assert command.startswith("csp benchmark paper --preset reduced --parts table1 --parts fig3 --workers 3")
    paper = typer.main.get_command(app).commands["benchmark"].commands["paper"]
    ctx = paper.make_context("paper", command.split()[3:])
    assert PaperParameters(**ctx.params) == params


@pytest.mark.slow
def test_tiny_report_has_every_section_key_and_figure_and_resumes(tmp_path, data_mirror):
    from matplotlib.image import imread

    from csp.evaluation.report import SECTIONS
    from storage.lake import Lake

    home, out = tmp_path / "home", tmp_path / "report"
    env = {"CSP_DATA_MIRROR": str(data_mirror)}
    first = run_csp(home, "benchmark", "paper", "--preset", "tiny", "--out", str(out), env=env, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    data = json.loads((out / "report.json").read_text())
    assert set(data) >= REPORT_KEYS and data["preset"] == "tiny" and data["failed"] == []
    assert data["command"].startswith("csp benchmark paper --preset tiny")
    assert data["machine"]["cpus"] >= 1 and "gpu" in data["machine"]
    assert set(data["models"]) == {"dft", "exp", "pu", "potential"}
    t1 = data["table1"]
    assert {"accuracy", "records", "baseline", "misses", "judged_by", "budget"} <= set(t1)
    assert t1["judged_by"]["SrCu"] == "crystal system"
    assert {(r["formula"], r["refine"]) for r in t1["records"]} == {
        (f, m) for f in ("MgO", "SrCu") for m in (True, False)
    }
    assert all(isinstance(r["found"], bool) and isinstance(r["paper"], bool) for r in t1["records"])
    assert all(r["failure"]["reason"] for r in t1["records"] if not r["found"])
    assert {r["formula"] for r in t1["baseline"]["records"]} == {"MgO", "SrCu"} and t1["baseline"][
        "wall_time"
    ]
    assert set(data["fig2"]["panels"]) == {
        "dft_model_vs_dft",
        "dft_vs_exp",
        "dft_model_vs_exp",
        "tl_model_vs_exp",
    }
    assert {"bands", "energies", "first_hit", "final", "runs"} <= set(data["fig3"])
    assert set(data["fig3"]["first_hit"]["outer"]) == {"rs", "pso", "ga", "bo"}
    assert {"per_compound", "means", "rows"} <= set(data["fig4"])
    assert data["paper"]["table1_pct"]["fixed_a0.5"] == 82.4
    text = (out / "report.md").read_text()
    for title in SECTIONS.values():
        assert title in text, title
    assert data["command"] in text and "**paper**" in text
    assert len(data["figures"]) == 5
    for name in data["figures"]:
        assert f"]({name})" in text
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert imread(out / name).ndim == 3
    # a second run reads every campaign back from the lake: no campaign starts again
    events = Lake(home).count("campaign_events")
    second = run_csp(home, "benchmark", "paper", "--preset", "tiny", "--parts", "table1", "--out", str(out),
                     env=env, timeout=600)  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    assert Lake(home).count("campaign_events") == events
    again = json.loads((out / "report.json").read_text())
    assert again["fig2"] is None and again["parts"] == ["table1"]
    assert [r["found"] for r in again["table1"]["records"]] == [r["found"] for r in t1["records"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--preset", "huge"), "preset"), (("--workers", "0"), "workers"), (("--parts", "fig9"), "parts")],
)
def test_a_bad_request_is_one_line_and_writes_nothing(tmp_path, args, message):
    from tests.flows.cli_process import invoke_csp, one_line_error

    home = tmp_path / "home"
    result = invoke_csp(home, "benchmark", "paper", *args, "--out", str(tmp_path / "out"))
    assert message in one_line_error(result)
    assert not home.exists() and not (tmp_path / "out" / "report.md").exists()
