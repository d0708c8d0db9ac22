"""The enthalpy ensemble through the faces: ``csp models train --ensemble``, the campaign's check of the
spread penalty, and a campaign whose every candidate row in the lake carries the spread."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flows.campaigns import CampaignError, CampaignParameters, check, run_campaign
from flows.models import TrainParameters
from flows.settings import Settings
from storage.lake import Lake

TINY_CAMPAIGN = {
    "composition": "MgO",
    "outer_optimizer": "rs",
    "inner_optimizer": "rs",
    "outer_steps": 2,
    "inner_steps": 10,
    "batch_size": 10,
    "formula_units_max": 1,
    "refine": False,
    "gap_probes": 0,
}


def test_train_parameters_take_an_ensemble_for_enthalpy_models_only():
    import typer.main

    from flows.cli import app

    params = TrainParameters(
        mode="dft", name="x-ens", ensemble=5, epochs=2, sources=["gnome", "chgnet-0.3.0"]
    )
    command = params.command()
    assert "--ensemble 5" in command
    train = typer.main.get_command(app).commands["models"].commands["train"]
    ctx = train.make_context("train", command.split()[3:])
    assert TrainParameters(**{k: v for k, v in ctx.params.items() if k != "export_model"}) == params
    assert "--ensemble" not in TrainParameters(mode="transfer").command()  # None: as the init run
    with pytest.raises(ValidationError, match="n_bags"):
        TrainParameters(mode="pu", ensemble=3)
    with pytest.raises(ValidationError, match="ensemble"):
        TrainParameters(mode="dft", ensemble=0)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A random-init 3-member enthalpy ensemble and the small PU model, in one models folder."""
    import shutil

    import torch

    from csp.models import ALIGNNConfig, ALIGNNEnsemble
    from csp.models.onnx_export import export_model
    from tests.csp.models.model_fixtures import exported_small_models

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    config = ALIGNNConfig(hidden=8, alignn_layers=1, gcn_layers=0, embedding=8, head_hidden=8)
    export_model(ALIGNNEnsemble(config, 3).eval(), root / "t-ens")
    small = exported_small_models()
    shutil.copytree(small["dft"], root / "t-single")
    shutil.copytree(small["pu"], root / "t-pu")
    return root


def settings_for(home, models, exp: str) -> Settings:
    return Settings(home=home, models_dir=models, exp_model=exp, dft_model=exp, pu_model="t-pu")


@pytest.mark.slow
def test_check_refuses_a_spread_penalty_without_an_ensemble(models, tmp_path):
    params = CampaignParameters(**TINY_CAMPAIGN, spread_penalty=0.5)
    with pytest.raises(CampaignError, match="has 1 member"):
        check(params, settings_for(tmp_path, models, "t-single"))
    assert check(params, settings_for(tmp_path, models, "t-ens")).spread_penalty == 0.5
    assert check(CampaignParameters(**TINY_CAMPAIGN), settings_for(tmp_path, models, "t-single"))


@pytest.mark.slow
def test_every_candidate_row_of_an_ensemble_campaign_carries_the_spread(models, tmp_path):
    settings = settings_for(tmp_path / "home", models, "t-ens")
    params = CampaignParameters(**TINY_CAMPAIGN, spread_penalty=1.0)
    outcome = run_campaign(params, campaign_id="ens", settings=settings)
    assert outcome.status == "completed"
    rows = (
        Lake(settings.home)
        .query(
            "SELECT valid, dhf_pred_ev_per_atom, dhf_pred_std_ev_per_atom FROM candidates "
            "WHERE campaign_id = 'ens'"
        )
        .to_pylist()
    )
    assert len(rows) == 2 * 10 + 2
    scored = [r for r in rows if r["valid"]]
    assert scored and all(r["dhf_pred_std_ev_per_atom"] > 0 for r in scored)
    assert all(r["dhf_pred_std_ev_per_atom"] is None for r in rows if r["dhf_pred_ev_per_atom"] is None)


@pytest.mark.slow
def test_the_model_card_says_how_many_members_and_what_the_outputs_are(models):
    import json

    from flows.model_card import model_card

    meta = json.loads((models / "t-ens" / "model.json").read_text())
    card = model_card("t-ens", meta, {}, "csp models train dft --ensemble 3")
    assert "ensemble: 3 members" in card and "`dhf_std` (eV/atom)" in card
    single = json.loads((models / "t-single" / "model.json").read_text())
    assert "ensemble:" not in model_card("t-single", single, {}, "")
