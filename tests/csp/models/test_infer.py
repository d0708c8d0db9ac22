"""onnxruntime inference: integrity check, element check, batching, the combined Scorer."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from csp.models.infer import ModelIntegrityError, OnnxModel, Scorer, UnsupportedElementError
from csp.structures.crystal import Crystal
from tests.csp.models.model_fixtures import exported_small_models, mp_crystals, needs_data, table1_crystal

pytestmark = [needs_data, pytest.mark.slow]  # builds and exports torch models


@pytest.fixture(scope="module")
def models():
    return exported_small_models()


def test_tampered_model_is_refused(models, tmp_path):
    folder = tmp_path / "tampered"
    shutil.copytree(models["dft"], folder)
    data = bytearray((folder / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"model\.onnx"):
        OnnxModel(folder)
    with pytest.raises(ModelIntegrityError):
        Scorer(dft=folder)


def test_missing_files_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model\.onnx and model\.json"):
        OnnxModel(tmp_path)


def test_unknown_element_is_refused(models):
    scorer = Scorer(dft=models["dft"], pu=models["pu"])
    fermium = Crystal(np.eye(3) * 4.0, [100, 8], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(UnsupportedElementError, match=r"\[100\]"):
        scorer.score([table1_crystal("MgO"), fermium])
    with pytest.raises(UnsupportedElementError):
        scorer.score_same_species(np.eye(3)[None] * 4, np.zeros((1, 1, 3)), [100])


def test_batch_equals_single_and_fast_path(models):
    crystals, _, _ = mp_crystals()
    chosen = crystals[:40]
    scorer = Scorer(dft=models["dft"], pu=models["pu"])
    batch = scorer.score(chosen, batch_size=16)
    assert batch.dhf_exp is None  # not configured
    assert batch.dhf_dft.shape == (40,) and batch.p_syn.shape == (40,) and batch.p_syn_std.shape == (40,)
    assert ((batch.p_syn >= 0) & (batch.p_syn <= 1)).all()
    for i in (0, 13, 39):
        single = scorer.score([chosen[i]], batch_size=1)
        np.testing.assert_allclose(single.dhf_dft[0], batch.dhf_dft[i], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(single.p_syn[0], batch.p_syn[i], rtol=1e-4, atol=1e-6)

    mgo = table1_crystal("MgO")
    rng = np.random.default_rng(0)
    lattices = np.stack([mgo.lattice * s for s in np.linspace(0.9, 1.2, 10)])
    frac = np.stack([mgo.frac_coords + rng.normal(0, 0.01, mgo.frac_coords.shape) for _ in range(10)])
    fast = scorer.score_same_species(lattices, frac, mgo.numbers, batch_size=4, include=["dft"])
    assert fast.p_syn is None  # not requested
    slow = scorer.score([Crystal(lat, mgo.numbers, f) for lat, f in zip(lattices, frac, strict=True)])
    np.testing.assert_allclose(fast.dhf_dft, slow.dhf_dft, rtol=1e-4, atol=1e-6)


def test_scorer_needs_a_model_and_valid_kinds(models):
    with pytest.raises(ValueError, match="at least one model"):
        Scorer()
    with pytest.raises(ValueError, match="Unknown model kind"):
        Scorer(dft=models["dft"]).score([table1_crystal("MgO")], include=["enthalpy"])


def test_one_atom_cell_and_overlapping_atoms(models):
    import torch

    from csp.models.graphs import build_graphs
    from csp.structures.validity import GeometryError

    model = OnnxModel(models["dft"])
    # two atoms on one site: refused before any model runs (issue 12), no longer scored
    with pytest.raises(GeometryError, match=r"atoms too close: Mg-O 0\.000 A < 1\.0\d\d A"):
        build_graphs([Crystal(np.eye(3) * 4.0, [12, 8], [[0, 0, 0], [0, 0, 0]])])
    for crystals in (
        [Crystal(np.eye(3) * 3.3, [84], [[0, 0, 0]])],  # one atom in the whole batch
    ):
        graphs = build_graphs(crystals)
        got = model.run_graphs(graphs)["dhf"]
        with torch.no_grad():
            ref = models["dft_model"].forward_graphs(graphs).numpy()
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
