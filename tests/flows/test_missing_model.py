"""A model folder without model.json names the variable that chose it and the folders that exist (issue 22, trial
item 4c: a typo in CSP_EXP_MODEL, or a blank one, was told "set CSP_MODELS_DIR")."""

from __future__ import annotations

from flows.campaign_models import missing_model


def _models(tmp_path):
    for name, task in (("alignn-dft-c", "regression"), ("alignn-exp-a", "regression"), ("alignn-pu-b", "pu")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.json").write_text(f'{{"task": "{task}"}}')
    return tmp_path


def test_a_typo_names_the_variable_and_lists_the_model_folders(tmp_path):
    root = _models(tmp_path)
    text = str(missing_model("exp", root / "ALIGNN-EXPTL-2026.11-EFORM"))
    assert text == (
        f"The exp model folder {root / 'ALIGNN-EXPTL-2026.11-EFORM'} has no model.json: CSP_EXP_MODEL names no "
        f"model; set it to one of the regression model folders in {root}: alignn-dft-c, alignn-exp-a (or a "
        "folder's path)."
    )


def test_a_blank_name_lists_the_same_folders(tmp_path):
    root = _models(tmp_path)
    text = str(missing_model("exp", root))
    assert "CSP_EXP_MODEL names no model" in text and f"in {root}: alignn-dft-c, alignn-exp-a (" in text
    assert f"pu model folders in {root}: alignn-pu-b (" in str(
        missing_model("pu", root / "typo")
    )  # only its kind


def test_a_models_dir_without_models_says_so(tmp_path):
    assert "no pu model folder lies in" in str(missing_model("pu", tmp_path / "x"))
    assert "CSP_PU_MODEL" in str(missing_model("pu", tmp_path / "x"))


def test_a_model_of_the_wrong_kind_is_never_told_to_be_overwritten(tmp_path):
    """The re-trial: CSP_EXP_MODEL set to the PU folder was told to 'put the right model in' that folder, which
    would overwrite a working model; it names the variable to change instead."""
    import shutil

    import pytest

    from csp.errors import ModelError
    from csp.models.check import check_model_folder
    from flows.settings import DEFAULT_MODELS, Settings

    pu = Settings().models_dir / DEFAULT_MODELS["pu"]
    copy = tmp_path / "pu"
    shutil.copytree(pu, copy)
    with pytest.raises(ModelError) as err:
        check_model_folder(copy, role="exp")
    assert "name a regression model folder for it (CSP_EXP_MODEL), and leave this one where it is" in str(
        err.value
    )
    assert "put the right model in" not in str(err.value)
