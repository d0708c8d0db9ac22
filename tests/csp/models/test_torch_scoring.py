"""The torch scorer (graphs and models on a torch device; here the CPU) against the ONNX scorer.

Tolerances: 1e-4 eV/atom and 1e-4 in P_syn against the ONNX graph with an exact sigmoid (what the torch
models compute); against the shipped onnxruntime session, whose approximate Sigmoid moves enthalpies by up
to ~6e-3 eV/atom and P_syn by up to ~1.4e-2 on these structures (csp.models.torch_scoring), within the
bounds below. A campaign scored by torch equals, row for row, the one scored by the exact-sigmoid ONNX graph.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from csp.errors import InputError, ModelError
from csp.models.check import sha256_of
from csp.models.graphs import build_graphs
from csp.models.infer import OnnxModels, UnsupportedElementError
from csp.models.names import DEFAULT_MODELS
from csp.models.onnx_export import INPUT_NAMES
from csp.models.scoring import load_scorer, resolve_score_device
from csp.models.torch_scoring import TorchModel, TorchModels, exact_sigmoid_session
from csp.structures.crystal import Crystal
from csp.structures.validity import GeometryError
from tests.csp.models.model_fixtures import mp_crystals, needs_data, table1_crystal

pytestmark = [needs_data, pytest.mark.slow]  # loads the three shipped models

MODELS = Path(__file__).resolve().parents[3] / "onnx_models"
FOLDERS = {kind: MODELS / name for kind, name in DEFAULT_MODELS.items()}
TOL = 1e-4  # eV/atom, and probability
SHIPPED_ORT_TOL = {"dhf": 1.5e-2, "p_syn": 3e-2}  # the measured sigmoid error (6.3e-3, 1.4e-2) with room


@pytest.fixture(scope="module")
def torch_models() -> TorchModels:
    return TorchModels(**FOLDERS, device="cpu", allow_unseen_elements=True)


@pytest.fixture(scope="module")
def onnx_models() -> OnnxModels:
    return OnnxModels(**FOLDERS, allow_unseen_elements=True)


@pytest.fixture(scope="module")
def crystals() -> list[Crystal]:
    return list(mp_crystals()[0][:50])


def _exact_reference(crystals: list[Crystal]) -> dict[str, dict[str, np.ndarray]]:
    """Every shipped model's outputs from its ONNX graph with an exact sigmoid, on numpy graphs."""
    graphs = build_graphs(crystals)
    feeds = {name: getattr(graphs, name) for name in INPUT_NAMES}
    out = {}
    for kind, folder in FOLDERS.items():
        session = exact_sigmoid_session(folder / "model.onnx")
        names = [o.name for o in session.get_outputs()]
        out[kind] = dict(zip(names, session.run(names, feeds), strict=True))
    return out


def test_torch_scores_equal_the_onnx_graph_of_the_three_shipped_models(torch_models, onnx_models, crystals):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few MP structures hold elements with few training rows
        got = torch_models.score(crystals, batch_size=20)
        shipped = onnx_models.score(crystals, batch_size=20)
    want = _exact_reference(crystals)
    assert got.dhf_dft.shape == got.dhf_exp.shape == got.p_syn.shape == got.p_syn_std.shape == (50,)
    np.testing.assert_allclose(got.dhf_dft, want["dft"]["dhf"], atol=TOL, rtol=0)
    np.testing.assert_allclose(got.dhf_exp, want["exp"]["dhf"], atol=TOL, rtol=0)
    np.testing.assert_allclose(got.p_syn, want["pu"]["p_syn_mean"], atol=TOL, rtol=0)
    np.testing.assert_allclose(got.p_syn_std, want["pu"]["p_syn_std"], atol=TOL, rtol=0)
    np.testing.assert_array_equal(got.dhf_dft_std, 0.0)  # single models: no spread
    # the shipped onnxruntime session differs by its approximate Sigmoid only
    np.testing.assert_allclose(got.dhf_dft, shipped.dhf_dft, atol=SHIPPED_ORT_TOL["dhf"], rtol=0)
    np.testing.assert_allclose(got.dhf_exp, shipped.dhf_exp, atol=SHIPPED_ORT_TOL["dhf"], rtol=0)
    np.testing.assert_allclose(got.p_syn, shipped.p_syn, atol=SHIPPED_ORT_TOL["p_syn"], rtol=0)
    assert np.median(np.abs(got.dhf_dft - shipped.dhf_dft)) < 2e-3


def test_the_inner_loop_fast_path_equals_onnx(torch_models):
    mgo = table1_crystal("MgO")
    rng = np.random.default_rng(0)
    lattices = np.stack([mgo.lattice * s for s in np.linspace(0.9, 1.2, 24)])
    frac = np.stack([mgo.frac_coords + rng.normal(0, 0.01, mgo.frac_coords.shape) for _ in range(24)])
    fast = torch_models.score_same_species(lattices, frac, mgo.numbers, batch_size=10, include=["exp"])
    assert fast.p_syn is None and fast.dhf_exp.shape == (24,)
    want = _exact_reference([Crystal(lat, mgo.numbers, f) for lat, f in zip(lattices, frac, strict=True)])
    np.testing.assert_allclose(fast.dhf_exp, want["exp"]["dhf"], atol=TOL, rtol=0)


def test_refusals_are_the_onnx_scorers(torch_models):
    overlap = Crystal(np.eye(3) * 4.0, [12, 8], [[0, 0, 0], [0.05, 0, 0]])
    with pytest.raises(GeometryError, match="structure bad-one: atoms too close: Mg-O"):
        torch_models.score([table1_crystal("MgO"), overlap], ids=["mgo", "bad-one"])
    fermium = Crystal(np.eye(3) * 4.0, [100, 8], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(UnsupportedElementError, match=r"\[100\]"):
        torch_models.score([fermium])
    empty = torch_models.score([], include=["pu"])
    assert empty.p_syn.shape == (0,) and empty.dhf_dft is None


def test_weights_rebuilt_from_onnx_leave_only_unread_parameters_unset(torch_models):
    module = torch_models.models["dft"].module
    unset = sorted(
        name for name, v in module.state_dict().items() if v.is_floating_point() and v.isnan().any()
    )
    # the edge norms of the last line-graph layer and the last edge-gated layer: nothing reads their output
    assert unset == sorted(
        f"model.backbone.{layer}.norm_edges.norm.{p}"
        for layer in ("alignn_layers.1.line_graph", "gcn_layers.1")
        for p in ("bias", "running_mean", "running_var", "weight")
    )


def test_a_graph_laid_out_otherwise_is_refused_at_load(tmp_path):
    import onnx

    folder = tmp_path / "renamed"
    shutil.copytree(FOLDERS["dft"], folder)
    proto = onnx.load(str(folder / "model.onnx"))
    old = "model.backbone.edge_embedding.1.linear.bias"
    for tensor in proto.graph.initializer:
        if tensor.name == old:
            tensor.name = "edge_bias"
    for node in proto.graph.node:
        node.input[:] = ["edge_bias" if name == old else name for name in node.input]
    onnx.save_model(proto, str(folder / "model.onnx"))
    meta = json.loads((folder / "model.json").read_text())
    meta["sha256"] = sha256_of(folder / "model.onnx")
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="feeds no linear layer"):
        TorchModel(folder, role="dft")


def test_score_device_is_checked_up_front():
    from pydantic import ValidationError

    from csp.search.parameters import SearchParameters

    assert resolve_score_device("cpu") == "cpu"
    assert resolve_score_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="auto, cpu or cuda"):
        resolve_score_device("gpu")
    with pytest.raises(InputError, match="onnx or torch"):
        load_scorer(backend="tensorrt")
    if torch.cuda.is_available():
        assert resolve_score_device("cuda") == "cuda"
        with pytest.raises(InputError, match="onnxruntime scores on the CPU only"):
            load_scorer(score_device="cuda", backend="onnx")
    else:
        with pytest.raises(InputError, match=r"cuda is not available on this machine.*use auto or cpu"):
            resolve_score_device("cuda")
        with pytest.raises(ValidationError, match="score_device cuda is not available on this machine"):
            SearchParameters(score_device="cuda")
        with pytest.raises(InputError, match="not available"):
            load_scorer(score_device="cuda")
    assert SearchParameters().score_device == "auto"


def test_load_scorer_picks_the_path_by_device():
    assert type(load_scorer().scorer) is OnnxModels
    torch_path = load_scorer(backend="torch", batch_size=64)
    assert isinstance(torch_path.scorer, TorchModels) and torch_path.scorer.device == torch.device("cpu")
    assert torch_path.enthalpy_members == 1


def test_a_campaign_scored_by_torch_equals_the_onnx_ones():
    from csp.search.two_stage import InMemorySink, SearchConfig, run_search

    config = SearchConfig(
        outer_steps=3,
        inner_steps=30,
        batch_size=15,
        formula_units_max=2,
        refine=False,
        gap_probes=0,
        seed=1,
        outer_optimizer="rs",
        inner_optimizer="pso",
    )
    exact = load_scorer()
    for model in exact.scorer.models.values():  # the shipped graphs with an exact sigmoid
        model.session = exact_sigmoid_session(model.folder / "model.onnx")
    runs = {}
    for name, scorer in (
        ("torch", load_scorer(backend="torch")),
        ("exact", exact),
        ("shipped", load_scorer()),
    ):
        sink = InMemorySink()
        found = run_search("MgO", config, scorer, sink)
        runs[name] = (sorted(found.outer_rows, key=lambda r: r["fitness"]), sink.rows)
    top, rows = runs["torch"]
    # against the exact-sigmoid graph: the same candidates, row for row, and the same ranking
    exact_top, exact_rows = runs["exact"]
    assert [r["x"] for r in rows] == [r["x"] for r in exact_rows]
    assert [r["outer_step"] for r in top] == [r["outer_step"] for r in exact_top]
    np.testing.assert_allclose([r["fitness"] for r in top], [r["fitness"] for r in exact_top], atol=TOL)
    # against the shipped session: the same families, found at the same symmetry, fitness within its error
    shipped_top, _ = runs["shipped"]
    by_step = {r["outer_step"]: r for r in shipped_top}
    assert {r["outer_step"] for r in top} == set(by_step)
    for row in top:
        other = by_step[row["outer_step"]]
        assert row["family_wyckoff"] == other["family_wyckoff"] and row["spacegroup"] == other["spacegroup"]
        assert abs(row["fitness"] - other["fitness"]) < 2e-3
    assert top[0]["spacegroup"] == shipped_top[0]["spacegroup"] == 221  # CsCl-type MgO wins this tiny search


def test_an_enthalpy_ensemble_runs_on_torch_with_its_spread(tmp_path):
    from csp.models import ALIGNNConfig, ALIGNNEnsemble
    from csp.models.onnx_export import export_model

    torch.manual_seed(0)
    config = ALIGNNConfig(hidden=16, embedding=16, head_hidden=16, alignn_layers=1, gcn_layers=1)
    ensemble = ALIGNNEnsemble(config, 3).eval()
    with torch.no_grad():  # as after training: own norms and statistics, one target mean and std for all
        for name, value in ensemble.named_buffers():
            if "norm" in name and value.is_floating_point():
                value.uniform_(0.5, 1.5)
        for member in ensemble.members:
            member.head.target_mean.fill_(-0.7)
            member.head.target_std.fill_(0.9)
            for name, value in member.named_parameters():
                if "norm" in name:
                    value.uniform_(0.5, 1.5)
    export_model(ensemble, tmp_path / "ens")
    model = TorchModel(tmp_path / "ens", role="dft")
    assert model.n_members == 3 and model.outputs == ["dhf", "dhf_std", "dhf_members"]
    crystals = list(mp_crystals()[0][:20])
    graphs = build_graphs(crystals)
    got = model.run_graphs(graphs)
    session = exact_sigmoid_session(tmp_path / "ens" / "model.onnx")
    want = dict(
        zip(
            model.outputs,
            session.run(model.outputs, {n: getattr(graphs, n) for n in INPUT_NAMES}),
            strict=True,
        )
    )
    for name in model.outputs:
        np.testing.assert_allclose(got[name], want[name], atol=TOL, rtol=0)
    assert got["dhf_members"].shape == (20, 3) and (got["dhf_std"] > 0).all()
