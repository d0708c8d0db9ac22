"""Model folders by their old names and old paths (``onnx_models/alignn-exp``) resolve to the current ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from csp.models.names import ALIASES, resolve_model

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def models(tmp_path):
    root = tmp_path / "onnx_models"
    for new in ALIASES.values():
        (root / new).mkdir(parents=True)
    return root


@pytest.mark.parametrize(("old", "new"), list(ALIASES.items()))
def test_old_paths_resolve_from_the_project_folder_and_absolute(models, monkeypatch, old, new):
    monkeypatch.chdir(models.parent)
    assert resolve_model(models, f"onnx_models/{old}") == Path("onnx_models") / new
    assert resolve_model(models, str(models / old)) == models / new
    assert resolve_model(models, old) == models / new


def test_an_old_path_resolves_from_another_folder_through_the_models_dir(models, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert resolve_model(models, "onnx_models/alignn-exp") == models / ALIASES["alignn-exp"]


def test_an_unknown_path_is_returned_as_asked_for_the_error_to_name(models):
    assert resolve_model(models, "onnx_models/nope") == models / "onnx_models" / "nope"


def test_settings_resolve_the_shipped_models_by_their_old_paths(monkeypatch):
    from flows.settings import settings

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("CSP_EXP_MODEL", "onnx_models/alignn-exp")
    monkeypatch.setenv("CSP_PU_MODEL", str(REPO / "onnx_models" / "alignn-pu"))
    assert settings().model_dir("exp") == Path("onnx_models") / ALIASES["alignn-exp"]
    assert (settings().model_dir("exp") / "model.json").is_file()
    assert (settings().model_dir("pu") / "model.json").is_file()
