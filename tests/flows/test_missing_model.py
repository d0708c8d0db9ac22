"""A model folder without model.json names the variable that chose it and the folders that exist (issue 22, trial
item 4c: a typo in CSP_EXP_MODEL, or a blank one, was told "set CSP_MODELS_DIR")."""

from __future__ import annotations

from flows.campaign_models import missing_model


def _models(tmp_path):
    for name in ("alignn-exp-a", "alignn-pu-b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.json").write_text("{}")
    return tmp_path


def test_a_typo_names_the_variable_and_lists_the_model_folders(tmp_path):
    root = _models(tmp_path)
    text = str(missing_model("exp", root / "ALIGNN-EXPTL-2026.11-EFORM"))
    assert text == (
        f"The exp model folder {root / 'ALIGNN-EXPTL-2026.11-EFORM'} has no model.json: CSP_EXP_MODEL names no "
        f"model; set it to one of the model folders in {root}: alignn-exp-a, alignn-pu-b (or a folder's path)."
    )


def test_a_blank_name_lists_the_same_folders(tmp_path):
    root = _models(tmp_path)
    text = str(missing_model("exp", root))
    assert "CSP_EXP_MODEL names no model" in text and f"in {root}: alignn-exp-a, alignn-pu-b" in text


def test_a_models_dir_without_models_says_so(tmp_path):
    assert "no model folder lies in" in str(missing_model("pu", tmp_path / "x"))
    assert "CSP_PU_MODEL" in str(missing_model("pu", tmp_path / "x"))
