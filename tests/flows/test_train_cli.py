"""Each shipped model kind retrains from the lake with one command (tiny settings on CPU) and exports.

The commands run in-process (typer's runner); ``tests/csp/models/test_training.py`` runs the GPU entry point
``python -m csp.models.training`` as a subprocess."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from storage.ingest import ingest_source
from storage.lake import Lake
from tests.flows.cli_process import invoke_csp

pytestmark = pytest.mark.slow  # every test here runs campaigns, servers or training

MP_ROWS = 500  # the first rows of the MP file (was 800); at 300 the PU run has too few labels to report
TINY = ["--epochs", "1", "--hidden", "16", "--alignn-layers", "1", "--gcn-layers", "1", "--batch-size", "128"]


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory, data_mirror):
    """A lake from a slice of the real mirror: MP_ROWS MP structures, the Jang labels, the Jha enthalpies."""
    root = tmp_path_factory.mktemp("train")
    mirror = root / "mirror"
    mirror.mkdir()
    for folder in ("synth", "experimental", "validation"):
        (mirror / folder).symlink_to(data_mirror / folder)
    (mirror / "dft").mkdir(parents=True)
    with (
        gzip.open(data_mirror / "dft" / "mp_flla2015.jsonl.gz", "rt") as fin,
        gzip.open(mirror / "dft" / "mp_flla2015.jsonl.gz", "wt") as fout,
    ):
        fout.writelines(line for _, line in zip(range(MP_ROWS), fin, strict=False))
    lake = Lake(root / "home").init()
    for name in ("jang2020_mp_icsd", "jang2020_mp_virtual", "mp_flla2015", "expt_deltae_jha2019"):
        ingest_source(lake, name, mirror, workers=2)
    return root / "home"


def csp(home: Path, models: Path, *args: str) -> subprocess.CompletedProcess:
    """``csp ARGS`` in this process, so the torch and ONNX-exporter imports are paid once, not per command;
    the models trained here are the campaign's models of this folder (``models verify`` checks those)."""
    env = {
        "CSP_MODELS_DIR": str(models),
        "CSP_DFT_MODEL": "t-dft",
        "CSP_EXP_MODEL": "t-exp",
        "CSP_PU_MODEL": "t-pu",
    }
    return invoke_csp(home, *args, env=env)


def test_dft_transfer_pu_retrain_and_export(small_lake, tmp_path):
    from csp.models.infer import OnnxModel

    models = tmp_path / "models"
    dft = csp(small_lake, models, "models", "train", "dft", "--name", "t-dft", *TINY, "--time-limit-s", "60")
    assert dft.returncode == 0, dft.stderr
    run = small_lake / "runs" / "t-dft"
    exp = csp(
        small_lake,
        models,
        "models",
        "train",
        "transfer",
        "--name",
        "t-exp",
        "--init",
        str(run),
        "--epochs",
        "2",
        "--time-limit-s",
        "30",
    )
    assert exp.returncode == 0, exp.stderr
    pu = csp(
        small_lake,
        models,
        "models",
        "train",
        "pu",
        "--name",
        "t-pu",
        "--init",
        str(run),
        "--n-bags",
        "4",
        "--epochs",
        "1",
        "--batch-size",
        "128",
        "--time-limit-s",
        "60",
    )
    assert pu.returncode == 0, pu.stderr
    for name, task in (("t-dft", "regression"), ("t-exp", "regression"), ("t-pu", "pu")):
        meta = json.loads((models / name / "model.json").read_text())
        assert meta["task"] == task and meta["dataset"]["rows"] > 0
        assert "MgO" not in json.dumps(meta["dataset"])  # summaries carry counts, never excluded rows
        assert (models / name / "README.md").read_text().startswith(f"# {name}")
        OnnxModel(models / name)  # sha256 checked on load
    registered = Lake(small_lake).query("SELECT name FROM models ORDER BY name").column("name").to_pylist()
    assert registered == ["t-dft", "t-exp", "t-pu"]
    verify = csp(small_lake, models, "models", "verify")
    assert verify.returncode == 0, verify.stderr
    (models / "t-dft" / "model.onnx").write_bytes(
        (models / "t-dft" / "model.onnx").read_bytes()[:-10] + b"0" * 10
    )
    tampered = csp(small_lake, models, "models", "verify")
    assert tampered.returncode == 1 and "t-dft" in tampered.stderr


def test_an_enthalpy_ensemble_retrains_from_the_lake_and_fine_tunes_member_by_member(small_lake, tmp_path):
    from csp.models.infer import OnnxModel

    models = tmp_path / "models"
    dft = csp(
        small_lake, models, "models", "train", "dft", "--name", "t-dft-ens", "--ensemble", "2", *TINY,
        "--time-limit-s", "20",
    )  # fmt: skip
    assert dft.returncode == 0, dft.stderr
    run = small_lake / "runs" / "t-dft-ens"
    exp = csp(
        small_lake, models, "models", "train", "transfer", "--name", "t-exp-ens", "--init", str(run),
        "--epochs", "1", "--time-limit-s", "20",
    )  # fmt: skip
    assert exp.returncode == 0, exp.stderr  # the members follow the init run's: 2
    for name in ("t-dft-ens", "t-exp-ens"):
        meta = json.loads((models / name / "model.json").read_text())
        assert meta["n_members"] == 2 and set(meta["outputs"]) == {"dhf", "dhf_std", "dhf_members"}
        assert "ensemble: 2 members" in (models / name / "README.md").read_text()
        assert OnnxModel(models / name, role="exp").n_members == 2
    assert "--ensemble 2" in (models / "t-dft-ens" / "README.md").read_text()  # the card reproduces it
