"""The front hall's contracts: parameters declared once, thin flows, one settings object, old paths alive."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_campaign_fields_are_declared_once_and_reach_every_face():
    from csp.search.parameters import SearchParameters
    from csp.search.two_stage import SearchConfig
    from flows.campaigns import CampaignParameters
    from flows.deployments.campaign import campaign

    search_fields = set(SearchParameters.model_fields)
    assert search_fields <= set(SearchConfig.model_fields)
    campaign_only = {"composition", "top_k", "allow_unseen_elements"}
    assert set(CampaignParameters.model_fields) == search_fields | campaign_only
    # the flow (and so the Prefect form) has exactly the model's fields, with the model's defaults
    params = inspect.signature(campaign).parameters
    assert set(params) == set(CampaignParameters.model_fields) | {"campaign_id"}
    for name, info in CampaignParameters.model_fields.items():
        if name != "composition":
            assert params[name].default == info.default, name


def test_default_search_is_valid_and_agrees_everywhere():
    from csp.search.two_stage import SearchConfig
    from flows.campaigns import CampaignParameters

    cfg = SearchConfig()
    assert cfg.formula_units == (1, 4)
    assert CampaignParameters(composition="MgO").search_config() == cfg


def test_strategy_all_clears_the_crystal_system():
    from flows.campaigns import CampaignParameters

    assert CampaignParameters(composition="MgO", strategy="all").crystal_system is None


def test_cli_options_are_generated_from_the_fields_with_one_alias_table():
    import typer.main

    from flows.campaigns import CampaignParameters
    from flows.cli import app
    from flows.cli._options import EARLIER_NAMES

    group = typer.main.get_command(app)
    run = group.commands["campaign"].commands["run"]
    opts = {p.name: p.opts for p in run.params}
    for name in CampaignParameters.model_fields:
        assert name in opts, name
    assert "--optimizer" in opts["outer_optimizer"] and "--z-max" in opts["formula_units_max"]
    ctx = run.make_context("run", ["MgO", "--optimizer", "rs", "--z-max", "2"])
    assert ctx.params["outer_optimizer"] == "rs" and ctx.params["formula_units_max"] == 2
    assert set(EARLIER_NAMES) <= set(CampaignParameters.model_fields) | {"init_run", "sources"}


def test_train_command_reproduces_every_argument():
    import typer.main

    from flows.cli import app
    from flows.models import TrainParameters

    params = TrainParameters(
        mode="pu", name="x-pu", init_run="runs/dft", epochs=3, hidden=32, n_bags=7, time_limit_s=60.0,
        seed=4, sources=["gnome", "mp_flla2015"],
    )  # fmt: skip
    command = params.command()
    train = typer.main.get_command(app).commands["models"].commands["train"]
    ctx = train.make_context("train", command.split()[3:])
    values = {k: v for k, v in ctx.params.items() if k != "export_model"}
    assert TrainParameters(**values) == params


@pytest.mark.slow
def test_train_defaults_are_the_config_classes():
    from csp.models import ALIGNNConfig
    from csp.models.training import TrainSettings
    from flows.models import TrainParameters

    fields, model, train = TrainParameters.model_fields, ALIGNNConfig(), TrainSettings()
    for name in ("hidden", "alignn_layers", "gcn_layers", "n_bags"):
        assert fields[name].default == getattr(model, name), name
    for name in ("batch_size", "seed"):
        assert fields[name].default == getattr(train, name), name


def test_flows_hold_no_sql_and_no_long_file():
    for path in sorted((REPO / "flows").rglob("*.py")):
        text = path.read_text()
        assert len(text.splitlines()) <= 400, path
        assert not re.search(r"\b(SELECT|INSERT|UPDATE)\s+[\w*(]", text), f"SQL in {path}"
        assert "storage.readers._" not in text, f"private reader module used in {path}"


def test_settings_are_built_once_per_environment(monkeypatch, tmp_path):
    from flows.settings import lake, settings

    monkeypatch.setenv("CSP_HOME", str(tmp_path / "a"))
    first = settings()
    assert settings() is first and lake(missing_ok=True) is lake(missing_ok=True)
    monkeypatch.setenv("CSP_HOME", str(tmp_path / "b"))
    assert settings() is not first and settings().home == tmp_path / "b"
    assert lake(missing_ok=True).root == (tmp_path / "b").resolve()
    assert not (tmp_path / "b").exists()  # a reader's lake is not created (tests/flows/test_no_lake.py)


def test_mirror_honours_the_environment(monkeypatch, tmp_path):
    from flows.settings import settings

    monkeypatch.setenv("CSP_DATA_MIRROR", str(tmp_path))
    assert settings().mirror() == tmp_path and settings().require_mirror() == tmp_path.resolve()


def test_earlier_module_paths_still_import():
    import flows.campaign
    import flows.datasets
    import flows.training

    import flows.deployments.campaign
    import flows.models

    assert flows.campaign.campaign is flows.deployments.campaign.campaign
    assert flows.datasets.export_training_set is flows.models.export_training_set
    assert flows.training.export is flows.models.export_model


def test_one_licence_table():
    from storage.licences import LICENCES, licence_of
    from storage.readers import SOURCES

    assert licence_of("mp_flla2015") == SOURCES["mp_flla2015"].license
    assert licence_of("chgnet-0.3.0") == LICENCES["chgnet"]
    assert licence_of("nobody") == "see the source"


def test_front_door_is_cheap_and_complete():
    import subprocess
    import sys

    code = (
        "import sys, csp; assert 'torch' not in sys.modules and 'pymatgen' not in sys.modules; "
        "[getattr(csp, n) for n in csp.__all__]; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "ok"


def test_model_names_resolve_both_ways(tmp_path):
    from csp.models.names import ALIASES, resolve_model

    old, new = next(iter(ALIASES.items()))
    (tmp_path / new).mkdir()
    assert resolve_model(tmp_path, old) == tmp_path / new
    assert resolve_model(tmp_path, new) == tmp_path / new
    assert resolve_model(tmp_path, "other") == tmp_path / "other"


def test_load_scorer_opens_the_shipped_models_by_any_name():
    import csp

    scorer = csp.load_scorer()
    assert set(scorer.scorer.models) == {"exp", "pu"} and scorer.dhf_source == "exp"
    dft = csp.load_scorer(dhf_source="dft", dft="alignn-dft", threads=1)
    assert set(dft.scorer.models) == {"dft", "pu"}
    with pytest.raises(csp.InputError, match="dhf_source"):
        csp.load_scorer(dhf_source="nope")
    with pytest.raises(csp.CSPError):
        csp.load_scorer(dhf_source="dft", dft="no-such-model")


@pytest.mark.slow
def test_a_test_that_needs_the_mirror_fails_without_it(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, CSP_DATA_MIRROR=str(tmp_path / "nowhere"))
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/csp/structures/test_matching.py",
        "-x",
    ]
    out = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=env)
    assert out.returncode != 0 and "skipped" not in out.stdout
    assert "needs the data mirror" in out.stdout and "set CSP_DATA_MIRROR" in out.stdout


def test_model_settings_accept_earlier_folder_names(monkeypatch):
    from flows.settings import settings

    new = settings().model_dir("exp")
    assert new.name == "ALIGNN-ExpTL-2026.11-Eform" and (new / "model.onnx").is_file()
    monkeypatch.setenv("CSP_EXP_MODEL", "alignn-exp")
    assert settings().model_dir("exp") == new


def test_model_card_starts_with_a_summary_and_counts_are_integers():
    import json

    from flows.model_card import model_card

    meta = json.loads((REPO / "onnx_models" / "ALIGNN-DFT-2026.11-Eform" / "model.json").read_text())
    card = model_card("X", meta, {"stopped_by": "epochs", "seconds": 1.0}, "csp models train dft --name X")
    head = card.split("## Model")[0]
    assert "| split train / val / test | 33235 / 4332 / 4089 |" in head and "test MAE" in head
    assert "| test / count | 4089 |" in card and "e+0" not in card
    assert "## References" in card


def test_model_card_says_which_fidelity_heads_were_trained_and_which_is_exported():
    import json

    from flows.model_card import model_card

    meta = json.loads((REPO / "onnx_models" / "ALIGNN-DFT-2026.11-Eform" / "model.json").read_text())
    assert "fidelities:" not in model_card("X", meta, {}, "")  # a model of one fidelity: no line
    rows = {"test": {"dft": 40, "mlip": 60}}
    for mode, says in (("heads", "one head per fidelity (dft, mlip)"), ("mix", "one head for every row")):
        fidelity = {"mode": mode, "heads": ["dft", "mlip"], "mlip_weight": 0.5, "rows": rows}
        card = model_card("X", {**meta, "fidelity": fidelity}, {}, "")
        line = next(x for x in card.splitlines() if x.startswith("- fidelities:"))
        assert says in line and "weighted 0.5" in line and "{'dft': 40, 'mlip': 60}" in line
