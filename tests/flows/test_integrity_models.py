"""Issue 12, model files: every broken folder is a one-line ModelError naming the file, before any scoring."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from csp.errors import ModelError
from csp.models.check import ModelIntegrityError, check_model_folder
from csp.models.infer import OnnxModel, Scorer
from flows.campaigns import CampaignError, run_campaign
from flows.settings import Settings
from storage.lake import Lake

MODELS = Path(__file__).resolve().parents[2] / "onnx_models"
TINY = {"outer_steps": 2, "inner_steps": 10, "formula_units_max": 1, "refine": False, "gap_probes": 0}


def copy_model(src: str, dest: Path) -> Path:
    shutil.copytree(MODELS / src, dest)
    return dest


def rewrite_meta(folder: Path, **changes) -> None:
    meta = json.loads((folder / "model.json").read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    (folder / "model.json").write_text(json.dumps(meta))


def flip_byte(path: Path, offset: int = 4096) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def broken(kind: str, tmp_path: Path) -> tuple[Path, str, str]:
    """A broken copy of a shipped model: (folder, role it is used in, expected message fragment)."""
    if kind == "flipped-byte-no-sha":
        folder = copy_model("ALIGNN-DFT-2026.11-Eform", tmp_path / "m")
        flip_byte(folder / "model.onnx")
        rewrite_meta(folder, sha256=None)
        return folder, "dft", "model.json records no sha256 for model.onnx"
    if kind == "no-sha":
        folder = copy_model("ALIGNN-DFT-2026.11-Eform", tmp_path / "m")
        rewrite_meta(folder, sha256=None)
        return folder, "dft", "model.json records no sha256 for model.onnx"
    if kind == "flipped-byte":
        folder = copy_model("ALIGNN-DFT-2026.11-Eform", tmp_path / "m")
        flip_byte(folder / "model.onnx")
        return folder, "dft", "model.onnx has sha256"
    if kind == "truncated-onnx":
        folder = copy_model("ALIGNN-DFT-2026.11-Eform", tmp_path / "m")
        onnx = folder / "model.onnx"
        onnx.write_bytes(onnx.read_bytes()[:50_000])
        rewrite_meta(folder, sha256=hashlib.sha256(onnx.read_bytes()).hexdigest())
        return folder, "dft", "model.onnx cannot be loaded by onnxruntime"
    if kind == "truncated-json":
        folder = copy_model("ALIGNN-DFT-2026.11-Eform", tmp_path / "m")
        text = (folder / "model.json").read_text()
        (folder / "model.json").write_text(text[: len(text) // 2])
        return folder, "dft", "model.json is not valid JSON"
    if kind == "pu-in-enthalpy-slot":
        folder = copy_model("ALIGNN-PU-2026.11-Psyn", tmp_path / "m")
        return (
            folder,
            "dft",
            "describes a 'pu' model with outputs ['p_syn_bags', 'p_syn_mean', 'p_syn_std'], but the dft slot needs a 'regression' model with outputs ['dhf']",
        )
    if kind == "enthalpy-in-pu-slot":
        folder = copy_model("ALIGNN-ExpTL-2026.11-Eform", tmp_path / "m")
        return (
            folder,
            "pu",
            "describes a 'regression' model with outputs ['dhf'], but the pu slot needs a 'pu' model",
        )
    if kind == "no-onnx":
        folder = copy_model("ALIGNN-DFT-2026.11-Eform", tmp_path / "m")
        (folder / "model.onnx").unlink()
        return folder, "dft", "needs both model.onnx and model.json (model.onnx missing)"
    if kind == "bad-element-counts":
        folder = copy_model("ALIGNN-DFT-2026.11-Eform", tmp_path / "m")
        rewrite_meta(folder, training_elements=["Mg", "O"])
        return folder, "dft", "model.json has a malformed 'training_elements'"
    raise AssertionError(kind)


KINDS = [
    "flipped-byte-no-sha",
    "no-sha",
    "flipped-byte",
    "truncated-onnx",
    "truncated-json",
    "pu-in-enthalpy-slot",
    "enthalpy-in-pu-slot",
    "no-onnx",
    "bad-element-counts",
]


@pytest.mark.parametrize("kind", KINDS)
def test_every_broken_folder_is_one_model_error_naming_the_file(kind: str, tmp_path: Path) -> None:
    folder, role, fragment = broken(kind, tmp_path)
    with pytest.raises(ModelError) as info:
        OnnxModel(folder, threads=1, role=role)
    message = str(info.value)
    assert fragment in message
    assert str(folder) in message
    assert "\n" not in message


def test_the_shipped_models_pass_for_their_roles() -> None:
    for name, role in (
        ("ALIGNN-DFT-2026.11-Eform", "dft"),
        ("ALIGNN-ExpTL-2026.11-Eform", "exp"),
        ("ALIGNN-PU-2026.11-Psyn", "pu"),
    ):
        meta = check_model_folder(MODELS / name, role)
        assert meta["training_elements"]["O"] > 5_000
        assert "Fr" not in meta["training_elements"] and "Ra" not in meta["training_elements"]
        assert meta["training_elements_from"]["command"].startswith("python -m flows.model_elements")


def test_shipped_element_counts_come_from_the_recorded_training_sets() -> None:
    for name in ("ALIGNN-DFT-2026.11-Eform", "ALIGNN-ExpTL-2026.11-Eform", "ALIGNN-PU-2026.11-Psyn"):
        meta = json.loads((MODELS / name / "model.json").read_text())
        recorded = {d["sha256"] for d in meta["training_elements_from"]["datasets"]}
        assert meta["dataset"]["sha256"] in recorded
    dft = json.loads((MODELS / "ALIGNN-DFT-2026.11-Eform" / "model.json").read_text())
    assert dft["training_elements"]["He"] == 1 and dft["training_elements"]["Pu"] == 48


def test_scorer_refuses_a_pu_model_in_the_enthalpy_slot(tmp_path: Path) -> None:
    folder, _, _ = broken("pu-in-enthalpy-slot", tmp_path)
    with pytest.raises(ModelError, match="the dft slot needs a 'regression' model"):
        Scorer(dft=folder, pu=MODELS / "ALIGNN-PU-2026.11-Psyn", threads=1)


def models_dir_with(tmp_path: Path, kind: str) -> Path:
    """A models folder whose exp model is broken in the given way; the other two are intact."""
    root = tmp_path / "models"
    root.mkdir()
    folder, _, _ = broken(kind, tmp_path / "work")
    shutil.move(str(folder), root / "ALIGNN-ExpTL-2026.11-Eform")
    for name in ("ALIGNN-DFT-2026.11-Eform", "ALIGNN-PU-2026.11-Psyn"):
        copy_model(name, root / name)
    return root


@pytest.mark.parametrize(
    "kind", ["flipped-byte-no-sha", "truncated-json", "pu-in-enthalpy-slot", "truncated-onnx"]
)
def test_campaign_fails_before_scoring_with_a_failed_row(kind: str, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    settings = Settings(home=tmp_path / "home", models_dir=models_dir_with(tmp_path, kind))
    with pytest.raises(CampaignError) as info:
        run_campaign({"composition": "MgO", **TINY}, campaign_id="broken", settings=settings)
    assert "ALIGNN-ExpTL-2026.11-Eform" in str(info.value)
    lake = Lake(settings.home)
    rows = lake.query("SELECT status, reason FROM campaign_events WHERE campaign_id = 'broken'").to_pylist()
    assert [r["status"] for r in rows] == ["failed"] and "ALIGNN-ExpTL-2026.11-Eform" in rows[0]["reason"]
    assert (
        lake.query("SELECT count(*) AS n FROM candidates WHERE campaign_id = 'broken'").to_pylist()[0]["n"]
        == 0
    )


@pytest.mark.parametrize("kind", ["pu-in-enthalpy-slot", "flipped-byte-no-sha", "truncated-json"])
def test_models_verify_checks_what_a_campaign_checks(kind: str, tmp_path: Path, monkeypatch) -> None:
    from flows.cli import app

    (tmp_path / "work").mkdir()
    monkeypatch.setenv("CSP_MODELS_DIR", str(models_dir_with(tmp_path, kind)))
    monkeypatch.setenv("CSP_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["models", "verify"])
    flat = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "BAD ALIGNN-ExpTL-2026.11-Eform (exp):" in flat
    assert "ok ALIGNN-DFT-2026.11-Eform (dft)" in flat and "ok ALIGNN-PU-2026.11-Psyn (pu)" in flat


def test_models_verify_passes_the_shipped_models(monkeypatch, tmp_path: Path) -> None:
    from flows.cli import app

    monkeypatch.setenv("CSP_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["models", "verify"])
    assert result.exit_code == 0, result.output
    assert "88 elements with training rows" in " ".join(result.output.split())


def test_integrity_error_is_a_model_error() -> None:
    assert issubclass(ModelIntegrityError, ModelError)


# --- elements in campaigns ------------------------------------------------------------------------------


@pytest.mark.slow
def test_campaign_report_names_thinly_covered_elements(tmp_path: Path) -> None:
    from flows.coverage import THIN_ELEMENT_ROWS
    from flows.deployments.artifacts import summary_markdown

    settings = Settings(home=tmp_path / "home")
    params = {"composition": "XeF2", **TINY, "strategy": "all", "crystal_system": None}
    outcome = run_campaign(params, campaign_id="thin", settings=settings)
    # Xe: 8 rows in the exp model's training sets (6 DFT + 2 experimental), 248 in the PU model's
    assert THIN_ELEMENT_ROWS == 100 and outcome.thin_elements == {"Xe": 8}
    row = (
        Lake(settings.home)
        .query("SELECT summary_json FROM campaigns WHERE campaign_id = 'thin'")
        .to_pylist()[0]
    )
    summary = json.loads(row["summary_json"])
    assert summary["element_coverage"]["Xe"] == {
        "ALIGNN-ExpTL-2026.11-Eform": 8,
        "ALIGNN-PU-2026.11-Psyn": 248,
    }
    report = {
        "campaign_id": "thin",
        "composition": "XeF2",
        "status": "completed",
        "n_candidates": 0,
        "elapsed_s": 0.0,
        "invalid_share": None,
        "top": [],
        "best_curve": [],
        "parameters": _params(),
        "thin_elements": summary["thin_elements"],
    }
    assert (
        "Thinly covered elements (fewer than 100 training rows in a model used): Xe (8 rows)"
        in summary_markdown(report)
    )


def _params() -> dict:
    return {
        "alpha": 0.5,
        "strategy": "fixed",
        "crystal_system": "cubic",
        "outer_optimizer": "bo",
        "inner_optimizer": "pso",
        "outer_steps": 2,
        "inner_steps": 10,
        "seed": 0,
        "dhf_source": "exp",
    }


def test_unseen_element_campaign_fails_unless_allowed(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(CampaignError, match=r"no training rows containing Fr \(87\)"):
        run_campaign({"composition": "FrCl", **TINY}, campaign_id="fr", settings=settings)
    with pytest.warns(UserWarning, match="no training rows containing Fr"):
        outcome = run_campaign(
            {"composition": "FrCl", **TINY, "allow_unseen_elements": True},
            campaign_id="fr2",
            settings=settings,
        )
    assert outcome.status == "completed"
    statuses = (
        Lake(settings.home)
        .query(
            "SELECT campaign_id, status FROM campaigns WHERE campaign_id IN ('fr', 'fr2') ORDER BY campaign_id"
        )
        .to_pylist()
    )
    assert statuses == [{"campaign_id": "fr2", "status": "completed"}]  # a refused request leaves no row


def test_allow_unseen_elements_is_a_campaign_flag() -> None:
    import typer.main

    from flows.cli import app

    run = typer.main.get_command(app).commands["campaign"].commands["run"]
    ctx = run.make_context("run", ["FrCl", "--allow-unseen-elements", "--outer-steps", "3"])
    assert ctx.params["allow_unseen_elements"] is True and ctx.params["outer_steps"] == 3
    assert run.make_context("run", ["FrCl"]).params["allow_unseen_elements"] is False


def test_model_elements_counts_structures_per_element_and_resolves_old_names(tmp_path: Path) -> None:
    import numpy as np

    from csp.models.dataset import from_crystals
    from csp.structures.crystal import Crystal
    from flows.model_elements import main

    lattice = np.eye(3) * 4.2
    crystals = [
        Crystal(lattice, [12, 12, 8, 8], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0], [0, 0.5, 0]]),  # Mg2O2
        Crystal(lattice, [11, 17], [[0, 0, 0], [0.5, 0.5, 0.5]]),  # NaCl
        Crystal(lattice, [12, 17], [[0, 0, 0], [0.5, 0.5, 0.5]]),  # MgCl
    ]
    npz = from_crystals(crystals, [-3.0, -2.0, -1.0], ids=["a", "b", "c"]).save(tmp_path / "set.npz")
    folder = tmp_path / "models" / "ALIGNN-DFT-2026.11-Eform"
    folder.mkdir(parents=True)
    shutil.copy(MODELS / "ALIGNN-DFT-2026.11-Eform" / "model.json", folder / "model.json")
    assert main([str(tmp_path / "models" / "alignn-dft"), "--data", str(npz)]) == 0
    meta = json.loads((folder / "model.json").read_text())
    assert meta["training_elements"] == {"Mg": 2, "Cl": 2, "Na": 1, "O": 1}
    assert meta["training_elements_from"]["datasets"] == [
        {"file": "set.npz", "sha256": hashlib.sha256(npz.read_bytes()).hexdigest()}
    ]
