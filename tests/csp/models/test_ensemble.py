"""The enthalpy ensemble: training through the CLI entry point, one ONNX graph, mean and spread on scoring.

A 5-member ensemble of a tiny architecture is trained on CPU from 24 real structures (1 epoch) through
``python -m csp.models.training dft --ensemble 5``, fine-tuned member by member, and exported. Parity is
measured as in ``test_onnx_parity.py``: onnxruntime on 2 threads against torch on 256 real crystals.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from csp.errors import InputError, ModelError
from csp.models import ALIGNN, ALIGNNConfig, ALIGNNEnsemble
from csp.models.check import check_model_folder
from csp.models.dataset import from_crystals
from csp.models.graphs import build_graphs
from csp.models.infer import OnnxModel, OnnxModels
from csp.models.onnx_export import export_checkpoint
from csp.models.scoring import ModelScorer
from csp.models.training import bootstrap_rows, load_checkpoint, spread_metrics
from csp.models.training.__main__ import main
from tests.csp.models.model_fixtures import exported_small_models, mp_crystals, needs_data, table1_crystal

TINY = ["--hidden", "8", "--alignn-layers", "1", "--gcn-layers", "0"]
TINY += ["--embedding", "8", "--head-hidden", "8"]
COMMON = ["--epochs", "1", "--batch-size", "8", "--device", "cpu"]
N_PARITY = 256


def test_bootstrap_rows_draw_with_replacement_from_the_split_only():
    rows = np.arange(100, 160)
    a = bootstrap_rows(rows, np.random.default_rng([3, 1]))
    b = bootstrap_rows(rows, np.random.default_rng([3, 1]))
    c = bootstrap_rows(rows, np.random.default_rng([4, 1]))
    assert len(a) == len(rows) and set(a) <= set(rows)
    assert len(np.unique(a)) < len(rows)  # with replacement: some rows twice, some never (60 draws)
    np.testing.assert_array_equal(a, b)  # seeded
    assert not np.array_equal(a, c)  # another member, another resample
    assert len(bootstrap_rows(np.array([], dtype=np.int64), np.random.default_rng(0))) == 0


def test_spread_metrics_see_where_the_members_disagree():
    target = np.zeros(4)
    members = np.array([[0.0, 0.0], [0.1, -0.1], [0.5, 0.3], [1.0, 3.0]])  # errors grow with the spread
    m = spread_metrics(members, target)
    np.testing.assert_allclose(m["mean_std_ev_per_atom"], np.mean([0.0, 0.1, 0.1, 1.0]))
    assert m["spearman_abs_error_vs_std"] > 0.5
    assert spread_metrics(np.zeros((0, 2)), np.zeros(0)) == {}


def test_an_ensemble_needs_regression_members_and_two_of_them():
    with pytest.raises(InputError, match="regression"):
        ALIGNNEnsemble(ALIGNNConfig(task="pu", n_bags=3), 3)
    with pytest.raises(InputError, match="at least 2"):
        ALIGNNEnsemble(ALIGNNConfig(), 1)
    small, other = ALIGNNConfig(hidden=8), ALIGNNConfig(hidden=16)
    with pytest.raises(InputError, match="one config"):
        ALIGNNEnsemble.from_members([ALIGNN(small), ALIGNN(other)])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 5-member DFT ensemble, its member-by-member fine-tuning, and both exported (CPU, seconds)."""
    crystals, energies, ids = mp_crystals()
    n = 24
    split = np.where(np.arange(n) % 6 == 0, 1, np.where(np.arange(n) % 6 == 1, 2, 0))
    root = tmp_path_factory.mktemp("ensemble")
    from_crystals(crystals[:n], energies[:n], split=split, source="mp", ids=ids[:n]).save(root / "dft.npz")
    data = ["--data", str(root / "dft.npz")]
    assert main(["dft", *data, "--out", str(root / "dft"), "--ensemble", "5", *COMMON, *TINY]) == 0
    assert main(["transfer", *data, "--init", str(root / "dft"), "--out", str(root / "exp"), *COMMON]) == 0
    export_checkpoint(root / "dft", root / "onnx-dft")
    export_checkpoint(root / "exp", root / "onnx-exp")
    return root


@needs_data
@pytest.mark.slow
def test_training_records_five_members_with_their_own_seeds_and_resamples(runs):
    info = json.loads((runs / "dft" / "metrics.json").read_text())
    assert info["n_members"] == 5
    members = info["ensemble"]["members"]
    assert [m["seed"] for m in members] == [0, 1, 2, 3, 4]
    train_rows = info["split_sizes"]["train"]
    assert all(m["bootstrap_rows"] == train_rows and m["distinct_rows"] < train_rows for m in members)
    assert {h["member"] for h in info["history"]} == set(range(5))
    assert info["metrics"]["test"]["spread"]["mean_std_ev_per_atom"] > 0

    model, _ = load_checkpoint(runs / "dft")
    assert isinstance(model, ALIGNNEnsemble) and model.n_members == 5
    first, second = (m.head.mlp[0].weight for m in model.members[:2])
    assert not torch.equal(first, second)  # different seeds: different members

    tl = json.loads((runs / "exp" / "metrics.json").read_text())
    assert tl["kind"] == "transfer" and tl["n_members"] == 5 and tl["init"]["n_members"] == 5
    assert "before_fine_tuning" in tl["metrics"]


@needs_data
@pytest.mark.slow
def test_fine_tuning_refuses_another_member_count_and_pu_refuses_the_flag(runs, capsys):
    args = ["transfer", "--data", str(runs / "dft.npz"), "--init", str(runs / "dft")]
    with pytest.raises(SystemExit, match="ensemble of 5 members"):
        main([*args, "--out", str(runs / "bad"), "--ensemble", "3", *COMMON])
    with pytest.raises(SystemExit, match="--n-bags"):
        main(["pu", "--data", str(runs / "dft.npz"), "--out", str(runs / "bad"), "--ensemble", "5"])
    with pytest.raises(SystemExit, match="at least 1"):
        main(["dft", "--data", str(runs / "dft.npz"), "--out", str(runs / "bad"), "--ensemble", "0"])
    assert not (runs / "bad").exists()


@needs_data
@pytest.mark.slow
def test_one_onnx_graph_gives_members_mean_and_std_equal_to_torch(runs):
    meta = json.loads((runs / "onnx-dft" / "model.json").read_text())
    assert meta["n_members"] == 5
    assert meta["outputs"] == {"dhf": "eV/atom", "dhf_std": "eV/atom", "dhf_members": "eV/atom"}
    assert meta["output_shapes"]["dhf_members"] == "(B, 5) one column per member"
    assert sorted(p.name for p in (runs / "onnx-dft").iterdir()) == ["model.json", "model.onnx"]

    crystals, _, _ = mp_crystals(N_PARITY)
    graphs = build_graphs(crystals)
    out = OnnxModel(runs / "onnx-dft", threads=2, role="dft").run_graphs(graphs)
    model, _ = load_checkpoint(runs / "dft")
    with torch.no_grad():
        ref = model.forward_graphs(graphs).numpy().astype(np.float64)  # (B, 5)
    assert out["dhf_members"].shape == (N_PARITY, 5)
    scale = np.abs(ref).max()
    assert np.abs(out["dhf_members"] - ref).max() <= 1e-5 * scale
    assert np.abs(out["dhf"] - ref.mean(axis=1)).max() <= 1e-5 * scale
    assert np.abs(out["dhf_std"] - ref.std(axis=1)).max() <= 1e-5 * scale  # population std (ddof 0)
    assert (out["dhf_std"] > 0).all()


@needs_data
@pytest.mark.slow
def test_scoring_returns_mean_and_spread_and_a_single_model_a_spread_of_zero(runs):
    mgo = table1_crystal("MgO")
    lattices = np.stack([mgo.lattice * s for s in (0.95, 1.0, 1.1)])
    frac = np.repeat(mgo.frac_coords[None], 3, axis=0)
    pu = exported_small_models()["pu"]

    ensemble = ModelScorer(OnnxModels(exp=runs / "onnx-exp", pu=pu), dhf_source="exp")
    assert ensemble.enthalpy_members == 5
    mean, std = ensemble.enthalpy_with_spread(mgo.numbers, lattices, frac)
    members = OnnxModel(runs / "onnx-exp").score([mgo])["dhf_members"][0]
    np.testing.assert_allclose(mean[1], members.mean(), rtol=1e-5)
    np.testing.assert_allclose(std[1], members.std(), rtol=1e-4)
    np.testing.assert_array_equal(ensemble.enthalpy(mgo.numbers, lattices, frac), mean)

    single = ModelScorer(OnnxModels(dft=exported_small_models()["dft"], pu=pu), dhf_source="dft")
    assert single.enthalpy_members == 1
    mean1, std1 = single.enthalpy_with_spread(mgo.numbers, lattices, frac)
    assert mean1.shape == std1.shape == (3,) and np.isfinite(mean1).all()
    np.testing.assert_array_equal(std1, np.zeros(3))
    scores = OnnxModels(dft=exported_small_models()["dft"]).score([mgo])
    assert scores.dhf_dft_std.tolist() == [0.0] and scores.dhf_exp_std is None


@needs_data
@pytest.mark.slow
def test_an_ensemble_folder_without_its_spread_outputs_is_refused(runs, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(runs / "onnx-dft", folder)
    meta = json.loads((folder / "model.json").read_text())
    for bad, message in (
        ({**meta, "outputs": {"dhf": "eV/atom"}}, "without the output"),
        ({**meta, "n_members": "five"}, "malformed 'n_members'"),
        ({**meta, "n_members": 0}, "malformed 'n_members'"),
    ):
        (folder / "model.json").write_text(json.dumps(bad))
        with pytest.raises(ModelError, match=message):
            check_model_folder(folder, "dft")
