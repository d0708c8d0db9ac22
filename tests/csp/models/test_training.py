"""Dataset arrays and the three training modes through the CLI entry point (tiny, CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from csp.errors import InputError
from csp.models.dataset import from_crystals, load_arrays, save_arrays, to_crystals
from csp.models.infer import OnnxModel
from csp.models.onnx_export import export_checkpoint
from csp.models.training import TrainSettings, bag_masks, load_checkpoint
from csp.models.training.__main__ import main
from tests.csp.models.model_fixtures import mp_crystals, needs_data

pytestmark = needs_data
TINY = ["--hidden", "16", "--alignn-layers", "1", "--gcn-layers", "1"]
TINY += ["--embedding", "16", "--head-hidden", "16"]


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    crystals, energies, ids = mp_crystals()
    n = 48
    split = np.arange(n) % 6
    split = np.where(split == 0, 1, np.where(split == 1, 2, 0))
    sources = ["mp_a" if (i // 6) % 2 else "mp_b" for i in range(n)]
    arrays = from_crystals(crystals[:n], energies[:n], split=split, source=sources, ids=ids[:n])
    folder = tmp_path_factory.mktemp("data")
    arrays.save(folder / "dft.npz")
    labels = (np.arange(n) % 4 == 1).astype(np.float32)  # a quarter positive
    from_crystals(crystals[:n], labels, split=split, source=sources, ids=ids[:n]).save(folder / "pu.npz")
    return folder


def test_arrays_round_trip(npz):
    arrays = load_arrays(npz / "dft.npz")
    crystals, energies, ids = mp_crystals()
    assert len(arrays) == 48 and list(arrays.source_names) == ["mp_a", "mp_b"]
    assert arrays.numbers.dtype == np.int16 and arrays.split.dtype == np.int8
    back = to_crystals(arrays)
    np.testing.assert_allclose(back[5].frac_coords, crystals[5].frac_coords, atol=1e-6)
    np.testing.assert_array_equal(back[5].numbers, crystals[5].numbers)
    np.testing.assert_allclose(arrays.target, energies[:48])
    assert list(arrays.ids[:2]) == ids[:2]
    sub = arrays.subset(np.array([3, 1]))
    assert list(sub.ids) == [ids[3], ids[1]] and sub.natoms.sum() == len(sub.numbers)


def test_arrays_are_validated(tmp_path):
    crystals, energies, _ = mp_crystals()
    arrays = from_crystals(crystals[:3], energies[:3])
    fields = {name: getattr(arrays, name) for name in arrays.__dataclass_fields__}
    with pytest.raises(ValueError, match="NaN"):
        save_arrays(tmp_path / "x.npz", **{**fields, "target": np.array([0.0, np.nan, 1.0])})
    with pytest.raises(ValueError, match="rows"):
        save_arrays(tmp_path / "x.npz", **{**fields, "split": np.zeros(2)})
    with pytest.raises(ValueError, match="natoms sums"):
        save_arrays(tmp_path / "x.npz", **{**fields, "natoms": fields["natoms"] + 1})
    with pytest.raises(ValueError, match="split"):
        save_arrays(tmp_path / "x.npz", **{**fields, "split": np.array([0, 3, 1])})


def test_settings_are_validated():
    with pytest.raises(ValueError, match="device"):
        TrainSettings(device="tpu")
    with pytest.raises(ValueError, match="freeze"):
        TrainSettings(freeze="everything")


def test_bag_masks():
    labels = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    masks = bag_masks(labels, 7, np.random.default_rng(0))
    assert masks.shape == (10, 7)
    assert masks[labels == 1].all()  # all positives in every bag
    assert (masks[labels == 0].sum(axis=0) == 2).all()  # an equal-size unlabeled draw per bag


@pytest.mark.slow
def test_dft_transfer_pu_cli_and_export(npz, tmp_path):
    dft = tmp_path / "dft"
    common = ["--epochs", "2", "--batch-size", "16", "--device", "cpu"]
    assert main(["dft", "--data", str(npz / "dft.npz"), "--out", str(dft), *common, *TINY]) == 0
    info = json.loads((dft / "metrics.json").read_text())
    assert info["kind"] == "dft" and len(info["history"]) == 2
    assert set(info["metrics"]["test"]["per_source"]) == {"mp_a", "mp_b"}
    assert np.isfinite(info["metrics"]["test"]["mae_ev_per_atom"])

    tl = tmp_path / "transfer"
    args = ["transfer", "--data", str(npz / "dft.npz"), "--init", str(dft), "--out", str(tl)]
    args += ["--freeze", "alignn"]
    assert main([*args, *common]) == 0
    tl_info = json.loads((tl / "metrics.json").read_text())
    assert tl_info["settings"]["lr"] == 1e-4 and "before_fine_tuning" in tl_info["metrics"]

    pu = tmp_path / "pu"
    args = ["pu", "--data", str(npz / "pu.npz"), "--init", str(dft), "--out", str(pu), "--n-bags", "5"]
    assert main([*args, *common]) == 0
    pu_info = json.loads((pu / "metrics.json").read_text())
    assert pu_info["config"]["n_bags"] == 5 and pu_info["settings"]["backbone_lr_scale"] == 0.1
    assert 0 <= pu_info["metrics"]["test"]["tpr_at_0.5"] <= 1
    model, _ = load_checkpoint(pu / "checkpoint.pt")
    assert model.config.task == "pu" and model.config.hidden == 16

    export_checkpoint(pu, tmp_path / "onnx_pu")
    meta = json.loads((tmp_path / "onnx_pu" / "model.json").read_text())
    assert meta["training_data_hash"] == pu_info["training_data_hash"] and meta["metrics"]["test"]
    assert OnnxModel(tmp_path / "onnx_pu").task == "pu"


@pytest.mark.slow
def test_time_limit_stops_training(npz, tmp_path):
    out = tmp_path / "limited"
    args = ["dft", "--data", str(npz / "dft.npz"), "--out", str(out), "--epochs", "50"]
    args += ["--time-limit-s", "0.01"]
    assert main([*args, *TINY]) == 0
    info = json.loads((out / "metrics.json").read_text())
    assert info["stopped_by"] == "time_limit" and len(info["history"]) == 1


@pytest.mark.slow
def test_training_core_imports_without_cpu_only_packages(tmp_path, npz):
    """The GPU machine lacks pymatgen, pyxtal, spglib, duckdb, prefect, pydantic and onnxscript."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {{'pymatgen', 'pyxtal', 'spglib', 'duckdb', 'prefect', 'pydantic',
                                   'onnxscript', 'storage'}}:
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
try:
    import pymatgen
    raise SystemExit('the import blocker does not work')
except ImportError:
    pass
import csp.models.graphs, csp.models.features, csp.models, csp.models.dataset, csp.models.training, csp.models.infer
from csp.models.training.__main__ import main
main(['dft', '--data', {str(npz / "dft.npz")!r}, '--out', {str(tmp_path / "run")!r}, '--epochs', '1',
      '--hidden', '8', '--alignn-layers', '1', '--gcn-layers', '0', '--embedding', '8', '--head-hidden', '8'])
"""
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


@pytest.mark.slow
def test_graph_cache_is_reused(npz, tmp_path):
    from csp.models.training import dataset_graphs

    arrays = load_arrays(npz / "dft.npz")
    cache = tmp_path / "graphs.npz"
    first = dataset_graphs(arrays, cache=cache)
    assert cache.is_file()
    second = dataset_graphs(arrays, cache=cache)
    np.testing.assert_array_equal(first.neighbours, second.neighbours)
    inputs = second.batch(np.array([4, 2]))
    assert inputs[4].tolist() == [arrays.natoms[4], arrays.natoms[2]]
    assert int(inputs[1].max()) < int(inputs[4].sum())


def test_a_time_annealed_rate_follows_the_cosine_over_the_time_limit():
    import math

    import torch

    from csp.models.training import _loops

    class Clock:
        limit, elapsed = 100.0, 0.0

    clock = Clock()
    weights = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([{"params": [weights], "lr": 2e-3}])
    settings = TrainSettings(time_limit_s=100.0, anneal="time", epochs=3)
    schedule = _loops._Schedule(optimizer, settings, clock)
    rates = []
    for elapsed in (0.0, 25.0, 50.0, 100.0, 150.0):
        clock.elapsed = elapsed
        schedule.before_step()
        schedule.after_epoch()  # the epoch count plays no part when annealing by time
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([2e-3, 1e-3 * (1 + math.cos(math.pi / 4)), 1e-3, 0.0, 0.0], abs=1e-12)


def test_annealing_by_time_needs_a_time_limit():
    with pytest.raises(InputError, match="time_limit_s"):
        TrainSettings(anneal="time")
    with pytest.raises(InputError, match="anneal must be one of"):
        TrainSettings(anneal="linear", time_limit_s=5.0)


@pytest.mark.slow
def test_a_continuation_that_only_gets_worse_returns_the_weights_it_started_from(npz, tmp_path):
    dft = tmp_path / "dft"
    common = ["--batch-size", "16", "--device", "cpu"]
    assert main(["dft", "--data", str(npz / "dft.npz"), "--out", str(dft), "--epochs", "2", *common, *TINY]) == 0
    start = json.loads((dft / "metrics.json").read_text())["metrics"]["validation"]["mae_ev_per_atom"]
    worse = tmp_path / "worse"  # a learning rate of 50 wrecks the weights at the first step
    args = ["transfer", "--data", str(npz / "dft.npz"), "--init", str(dft), "--out", str(worse), "--lr", "50"]
    assert main([*args, "--epochs", "2", *common]) == 0
    info = json.loads((worse / "metrics.json").read_text())
    assert info["history"][0]["epoch"] == 0
    assert info["history"][0]["val_mae_ev_per_atom"] == pytest.approx(start, rel=1e-5)
    assert min(h["val_mae_ev_per_atom"] for h in info["history"][1:]) > start  # training only got worse
    assert info["metrics"]["validation"]["mae_ev_per_atom"] == pytest.approx(start, rel=1e-5)
