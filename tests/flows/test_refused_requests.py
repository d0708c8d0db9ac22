"""A refused request writes nothing (issue 22): every way `csp campaign run` refuses a request ends in one
``error:`` line, before the lake is opened, so no ``failed`` campaign row is left behind.

In process (:func:`tests.flows.cli_process.invoke_csp`): each request is refused before any model runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.lake import Lake
from tests.flows.cli_process import invoke_csp, one_line_error

REFUSED = [
    (["XxO"], "element symbol 'Xx'"),
    ([""], "empty"),
    (["Mg0O"], "count"),
    (["C60H60"], "atoms"),
    (["MgO", "--alpha", "2"], "--alpha must be a finite number from 0 to 1, not 2."),
    (["MgO", "--outer-steps", "0"], "--outer-steps must be an integer from 1 to 10000, not 0."),
    (["MgO", "--strategy", "fixed", "--crystal-system", "hexagonalish"], "--crystal-system must be one of"),
    (
        ["MgO", "--strategy", "all", "--crystal-system", "hexagonal"],
        "The 'all' strategy searches every crystal system, so --crystal-system 'hexagonal' "
        "would be ignored; leave it out, or choose the 'fixed' strategy (--strategy fixed) to search hexagonal "
        "only.",
    ),
    # trial 22: the command line's option names, not the Python ones (formula_units_min, max_atoms)
    (
        ["MgO", "--formula-units-min", "3", "--z-max", "2"],
        "--formula-units-min/--formula-units-max must be (min, max) with 1 <= min <= max, got (3, 2); "
        "--formula-units-min must not exceed --formula-units-max.",
    ),
    (
        ["LiAlH4", "--max-atoms", "5"],
        "Formula 'LiAlH4' has 6 atoms per formula unit, more than --max-atoms (5 atoms per cell) allows; "
        "raise --max-atoms, or choose a smaller formula.",
    ),
    (["H64"], "more than --max-atoms (40 atoms per cell, the default) allows; raise --max-atoms"),
    (["MgO", "--spread-penalty", "nan"], "--spread-penalty must be a finite number"),
    (["MgO", "--spread-penalty", "-1"], "--spread-penalty must be a finite number"),
    (["MgO", "--seed", "-1"], "--seed must be an integer from 0 to 9223372036854775807, not -1."),
    (["MgO", "--outer-steps", "10000", "--inner-steps", "100000"], "above the bound"),
    (
        ["LiNaKRbCs", "--crystal-system", "cubic", "--z-max", "1"],
        "No space group in the cubic crystal system admits LiNaKRbCs",
    ),
]


def written(home: Path) -> list[str]:
    """Every file under ``home`` (the lake and the campaign's run files would be there)."""
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")) if home.exists() else []


@pytest.mark.parametrize(("args", "message"), REFUSED, ids=[" ".join(a)[:40] for a, _ in REFUSED])
def test_a_refused_request_is_one_line_and_writes_nothing(tmp_path, args, message):
    home = tmp_path / "home"
    text = one_line_error(invoke_csp(home, "campaign", "run", *args, "--campaign-id", "bad"))
    assert message in text
    assert written(home) == []  # no lake, no failed row, no runs/ file


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ArO"], "no training rows containing Ar"),
        (["MgO", "--spread-penalty", "0.5"], "set --spread-penalty to 0"),
        (["LiH", "--no-refine", "--gap-probes", "0", "--spread-penalty", "1"], "needs an enthalpy ensemble"),
    ],
    ids=["element the models lack", "spread penalty", "spread penalty, no potential"],
)
def test_refusals_by_the_models_write_no_lake(tmp_path, args, message):
    """Refused once the models are opened (their training rows are read; the shipped enthalpy models have one
    member, so kappa > 0 would do nothing), still before a lake is made: the home holds no lake file, no
    event, no runs/ file (issue 22 follow-up: these two used to leave the lake's seed parts behind)."""
    home = tmp_path / "home"
    text = one_line_error(invoke_csp(home, "campaign", "run", *args, "--campaign-id", "refused"))
    assert message in text
    assert written(home) == []


def test_a_refusal_by_the_models_leaves_an_existing_lake_as_it_was(tmp_path):
    home = tmp_path / "home"
    lake = Lake(home).init()
    before = written(home)
    text = one_line_error(invoke_csp(home, "campaign", "run", "ArO", "--campaign-id", "argon"))
    assert "no training rows containing Ar" in text
    assert written(home) == before
    assert lake.query("SELECT count(*) AS n FROM campaign_events").to_pylist() == [{"n": 0}]


def test_a_request_under_an_id_that_ran_with_other_parameters_changes_nothing(tmp_path):
    """The id's one set of parameters is kept: another request under it is refused, and the stored
    campaign is neither marked failed nor changed."""
    from storage.campaigns import record_event

    home = tmp_path / "home"
    lake = Lake(home).init()
    stored = {"composition": "MgO", "alpha": 0.5}
    for status in ("running", "completed"):  # the id's parameters are those of its first running event
        record_event(lake, "kept", composition="MgO", status=status, parameters=stored, run_id="r")
    query = "SELECT seq, status FROM campaign_events WHERE campaign_id = 'kept' ORDER BY seq"
    for args in (["--alpha", "0.3"], ["--alpha", "nan"]):
        text = one_line_error(invoke_csp(home, "campaign", "run", "MgO", *args, "--campaign-id", "kept"))
        assert "alpha" in text
        assert lake.query(query).to_pylist() == [
            {"seq": 0, "status": "running"},
            {"seq": 1, "status": "completed"},
        ]


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["campaign", "run", "Mg[red]O", "--campaign-id", "m"], "formula 'Mg[red]O'"),
        (["campaign", "show", "[bold]x"], "No campaign '[bold]x'"),
        (["campaign", "show", "a:x:b"], "No campaign 'a:x:b'"),  # an emoji code prints as written
    ],
)
def test_an_error_prints_the_users_text_as_written(tmp_path, args, shown):
    """Brackets and emoji codes in a formula, an id or a stored reason are not read as rich markup."""
    Lake(tmp_path / "home").init()  # `campaign show` reads only a lake that exists
    assert shown in one_line_error(invoke_csp(tmp_path / "home", *args))


@pytest.mark.parametrize(
    "formula", ["ＭｇＯ", "MgΟ", "МgO"], ids=["full-width", "greek-omicron", "cyrillic-em"]
)
def test_a_unicode_formula_is_blamed_not_the_generated_campaign_id(tmp_path, formula):
    """Issue 22: with no --campaign-id the id is made from the formula; a full-width or look-alike letter
    is refused by the formula's check (naming the character and the plain spelling), never as a bad id."""
    home = tmp_path / "home"
    text = one_line_error(invoke_csp(home, "campaign", "run", formula))
    assert text.startswith(f"error: Formula '{formula}' holds ") and text.endswith("did you mean 'MgO'?")
    assert "Campaign id" not in text
    assert written(home) == []


def test_an_id_made_from_any_formula_is_a_valid_id():
    from flows.campaign_ids import new_campaign_id
    from storage.campaign_state import check_campaign_id

    for formula in ("ＭｇＯ", "MgΟ", "ΟΟ", "", "Ca(OH)2"):
        check_campaign_id(new_campaign_id(formula))


def test_a_resume_with_other_models_is_refused_and_writes_nothing(tmp_path):
    """Issue 22: the models are part of a campaign's fingerprint. A resume whose configured enthalpy model is
    another ONNX file (here CSP_EXP_MODEL names the DFT folder; a replaced folder is the same case) is one
    line naming both sets of model ids, before any event or row is written."""
    from csp.models.check import folder_model_id
    from flows.campaigns import CampaignParameters
    from flows.settings import Settings
    from storage.campaigns import record_event

    home, shipped = tmp_path / "home", Settings(home=tmp_path / "home")
    lake = Lake(home).init()
    params = CampaignParameters(composition="MgO", outer_steps=2, inner_steps=5, refine=False, gap_probes=0)
    started = [folder_model_id(shipped.model_dir("exp")), folder_model_id(shipped.model_dir("pu"))]
    for status in ("running", "interrupted"):
        record_event(lake, "mine", composition="MgO", status=status, parameters=params.model_dump(),
                     run_id="r", model_ids=started)  # fmt: skip
    dft = folder_model_id(shipped.model_dir("dft"))
    env = {"CSP_EXP_MODEL": shipped.model_dir("dft").name}
    text = one_line_error(invoke_csp(home, "campaign", "resume", "mine", env=env))
    assert text == (
        f"error: Campaign mine was started with the models {started[0]}, {started[1]} (this request: {dft}, "
        f"{started[1]}); resume it with those model folders (CSP_MODELS_DIR, CSP_DFT_MODEL, CSP_EXP_MODEL, "
        "CSP_PU_MODEL) or start a new campaign under another --campaign-id."
    )
    assert lake.query("SELECT count(*) AS n FROM campaign_events").to_pylist() == [{"n": 2}]
    assert lake.count("candidates") == 0
    assert not (home / "runs").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--refine-potential", "sevennet"],
        ["--no-refine", "--refine-potential", "sevennet"],  # the gap probes load the potential too
        [
            "--outer-optimizer",
            "rs-relax",
            "--no-refine",
            "--gap-probes",
            "0",
            "--refine-potential",
            "sevennet",
        ],
    ],
    ids=["refine", "gap probes", "rs-relax"],
)
def test_a_refine_potential_that_is_not_installed_is_refused_before_the_search(tmp_path, monkeypatch, args):
    """Issue 22: a refinement that could only fail after the search (its potential's package missing) is
    refused up front, wherever the potential would run (refinement, gap probes, the rs-relax baseline):
    one line naming the package and the extra, and nothing written."""
    import csp.potentials.relaxer

    packages = {**csp.potentials.relaxer.POTENTIAL_PACKAGES, "sevennet": ("sevenn_absent_here", "sevennet")}
    monkeypatch.setattr(csp.potentials.relaxer, "POTENTIAL_PACKAGES", packages)
    home = tmp_path / "home"
    text = one_line_error(invoke_csp(home, "campaign", "run", "MgO", *args, "--campaign-id", "r7"))
    assert text == (
        "error: The potential sevennet needs the sevenn_absent_here package, which is not installed: "
        "pip install '.[sevennet]', or choose another potential."
    )
    assert written(home) == []


@pytest.mark.parametrize(
    ("args", "chosen"),
    [
        (["--refine-potential", "sevennet"], "--refine-potential sevennet"),
        (["--refine-device", "cuda:0"], "--refine-device cuda:0"),
    ],
)
def test_a_potential_that_would_never_run_is_refused_not_ignored(tmp_path, args, chosen):
    """--no-refine --gap-probes 0 loads no potential: choosing one (or its device) is refused in one line
    rather than silently dropped (sevenn need not be installed for this refusal)."""
    home = tmp_path / "home"
    text = one_line_error(
        invoke_csp(home, "campaign", "run", "MgO", "--no-refine", "--gap-probes", "0", *args, "--campaign-id", "u")
    )
    assert text == (
        f"error: {chosen} would be ignored: with --no-refine and --gap-probes 0 no universal potential runs; "
        "leave it out, or give --gap-probes N (single points with it) or --refine."
    )
    assert written(home) == []


def test_a_refine_device_this_machine_lacks_is_refused_before_the_search_even_for_rs_relax(tmp_path):
    """rs-relax refines whatever --refine says: its device is checked as the campaign will run."""
    home = tmp_path / "home"
    args = ["--outer-optimizer", "rs-relax", "--no-refine", "--gap-probes", "0", "--refine-device", "gpu"]
    text = one_line_error(invoke_csp(home, "campaign", "run", "MgO", *args, "--campaign-id", "dev"))
    assert text == "error: --refine-device must be cpu or cuda[:N], not 'gpu'."
    assert written(home) == []


def test_a_family_listing_past_its_bound_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """Issue 22: the families are listed by the campaign's checks, bounded by MAX_LISTING_S (here lowered
    to 0.5 s; H over all crystal systems up to 24 atoms takes seconds): one line that says what to narrow,
    and no lake, no event, no runs/ file."""
    import csp.search.budget
    import csp.search.families

    monkeypatch.setattr(csp.search.budget, "MAX_LISTING_S", 0.5)
    monkeypatch.setattr(csp.search.families, "_PLANS", {})
    home = tmp_path / "home"
    args = ["--strategy", "all", "--z-max", "24", "--max-atoms", "24", "--campaign-id", "h24"]
    text = one_line_error(invoke_csp(home, "campaign", "run", "H", *args))
    assert text.startswith(
        "error: Listing the symmetry families of H in all crystal systems for Z 1..24 (cells of up to 24 "
        "atoms) takes more than 0.5 s: stopped at Z = "
    )
    assert text.endswith(
        "fix the crystal system, lower --z-max or --max-atoms, or pass --force to list them all."
    )
    assert written(home) == []
