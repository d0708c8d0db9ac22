"""An ensemble trained in stages: members trained apart (``--member K``), continued, and joined (``combine``).

The data: the synthetic two-fidelity set of ``test_fidelity.py`` (60 DFT rows and their 60 mlip twins), a tiny
delta-head architecture, 2 epochs, base seed 3, one torch thread and no time limit, so that a member trained
alone repeats the ensemble loop's member exactly (CPU, seconds).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from csp.models import ALIGNNEnsemble
from csp.models.dataset import DFT
from csp.models.graphs import build_graphs
from csp.models.infer import OnnxModel
from csp.models.onnx_export import export_checkpoint
from csp.models.training import PREDICTIONS, load_checkpoint
from csp.models.training.__main__ import main
from tests.csp.models.model_fixtures import mp_crystals, needs_data
from tests.csp.models.test_fidelity import TINY, synthetic_arrays

pytestmark = needs_data
TRAIN = ["--epochs", "2", "--batch-size", "16", "--patience", "100", "--device", "cpu", "--seed", "3"]
HEADS = ["--fidelity", "delta", "--mlip-weight", "0.5"]
MORE = ["--epochs", "1", "--batch-size", "16", "--patience", "100", "--device", "cpu", "--lr", "1e-3"]
MORE += ["--mlip-weight", "0.5"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-member ensemble; its members trained apart and joined; both continued one epoch; odd members."""
    root = tmp_path_factory.mktemp("members")
    arrays = synthetic_arrays(count=60)
    arrays.save(root / "mf.npz")
    arrays.subset(arrays.fidelity == DFT).save(root / "dft.npz")
    data = ["--data", str(root / "mf.npz")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same sums in the loop and apart

    def dft(out: str, *extra: str, on: list[str] = data) -> None:
        assert main(["dft", *on, "--out", str(root / out), *TRAIN, *TINY, *HEADS, *extra]) == 0

    def transfer(out: str, init: str, *extra: str) -> None:
        assert (
            main(["transfer", *data, "--init", str(root / init), "--out", str(root / out), *MORE, *extra])
            == 0
        )

    try:
        dft("ens", "--ensemble", "2")
        dft("m0", "--ensemble", "2", "--member", "0")
        dft("m1", "--ensemble", "2", "--member", "1")
        assert (
            main(
                [
                    "combine",
                    *data,
                    "--runs",
                    str(root / "m1"),
                    str(root / "m0"),
                    "--out",
                    str(root / "joined"),
                ]
            )
            == 0
        )
        # a later session: every member continued one epoch on the same rows, in the loop and apart
        transfer("ens-more", "ens", "--seed", "3")
        transfer("m0-more", "m0", "--seed", "3")
        transfer("m1-more", "m1", "--seed", "3")
        runs_more = [str(root / "m0-more"), str(root / "m1-more")]
        assert main(["combine", *data, "--runs", *runs_more, "--out", str(root / "joined-more")]) == 0
        # members that belong to no ensemble with m0 (1 epoch each)
        odd = ["--ensemble", "2", "--member", "1", "--epochs", "1"]
        dft("other-data", *odd, on=["--data", str(root / "dft.npz")])
        dft("other-heads", *odd, "--fidelity", "heads")
        dft("other-width", *odd, "--head-hidden", "16")
        dft("other-seed", *odd, "--seed", "4")
    finally:
        torch.set_num_threads(threads)
    export_checkpoint(root / "joined", root / "onnx-joined")
    return root


def info(runs, name: str) -> dict:
    return json.loads((runs / name / "metrics.json").read_text())


def assert_same_metrics(got: dict, want: dict) -> None:
    """Every number of two metrics trees equal to 1e-6 (relative), every key the same."""
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, dict):
            assert_same_metrics(got[key], value)
        else:
            assert got[key] == pytest.approx(value, rel=1e-6, nan_ok=True), key


@pytest.mark.slow
def test_a_member_run_is_one_model_that_records_which_member_it_is(runs):
    record = info(runs, "m1")
    assert record["n_members"] == 1 and record["kind"] == "dft"
    member = record["member"]
    assert (member["index"], member["of"], member["seed"], member["base_seed"]) == (1, 2, 4, 3)
    assert len(member["bootstrap_hash"]) == 64 and member["bootstrap_rows"] == record["split_sizes"]["train"]
    assert len(record["training_data_hash"]) == 64
    assert [s["epochs"] for s in member["stages"]] == [2]
    with np.load(runs / "m1" / PREDICTIONS) as saved:
        assert saved["prediction"].shape == (120,) and np.isfinite(saved["prediction"]).all()
    ensemble = info(runs, "ens")["ensemble"]["members"]
    assert ensemble[1]["bootstrap_hash"] == member["bootstrap_hash"]  # the loop's member 1 drew the same rows
    assert ensemble[0]["bootstrap_hash"] != member["bootstrap_hash"]


@pytest.mark.slow
def test_members_trained_apart_and_joined_equal_the_ensemble(runs):
    ensemble, _ = load_checkpoint(runs / "ens")
    joined, _ = load_checkpoint(runs / "joined")
    assert isinstance(joined, ALIGNNEnsemble) and joined.n_members == 2
    assert joined.state_dict().keys() == ensemble.state_dict().keys()
    graphs = build_graphs(mp_crystals(64, max_sites=6)[0])
    with torch.no_grad():
        want, got = ensemble.forward_graphs(graphs).numpy(), joined.forward_graphs(graphs).numpy()
    assert got.shape == (64, 2)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert np.abs(want[:, 0] - want[:, 1]).max() > 1e-3  # two different members, in the same order

    made, loop = info(runs, "joined"), info(runs, "ens")
    assert made["n_members"] == 2 and made["kind"] == "dft" and made["config"] == loop["config"]
    assert [m["seed"] for m in made["ensemble"]["members"]] == [3, 4]
    assert [m["run"].rsplit("/", 1)[-1] for m in made["ensemble"]["members"]] == ["m0", "m1"]
    assert made["fidelity"] == loop["fidelity"] and made["settings"] == loop["settings"]
    assert {h["member"] for h in made["history"]} == {0, 1}
    assert_same_metrics(made["metrics"], loop["metrics"])  # per split, source, fidelity and the spread
    assert "spread" in made["metrics"]["test"] and "mlip" in made["metrics"]["test"]["per_fidelity"]


@pytest.mark.slow
def test_a_member_continued_in_a_later_session_stays_that_member(runs):
    member = info(runs, "m1-more")["member"]
    assert (member["index"], member["of"], member["seed"]) == (1, 2, 4)
    assert member["bootstrap_hash"] == info(runs, "m1")["member"]["bootstrap_hash"]  # the same rows
    assert [(s["kind"], s["epochs"]) for s in member["stages"]] == [("dft", 2), ("transfer", 1)]
    # continued apart and joined = the ensemble continued in one loop, before and after
    loop, _ = load_checkpoint(runs / "ens-more")
    joined, _ = load_checkpoint(runs / "joined-more")
    for key, value in loop.state_dict().items():
        torch.testing.assert_close(joined.state_dict()[key], value, rtol=0, atol=1e-6)
    made, want = info(runs, "joined-more"), info(runs, "ens-more")
    assert made["kind"] == "transfer" and made["init"]["n_members"] == 2
    assert_same_metrics(made["metrics"], want["metrics"])  # before_fine_tuning included


@pytest.mark.slow
def test_a_member_continues_only_as_itself(runs):
    args = ["transfer", "--data", str(runs / "mf.npz"), "--init", str(runs / "m1"), *MORE]
    with pytest.raises(
        SystemExit, match=r"continue it with --seed 3 \(--seed 0 draws other bootstrap rows\)"
    ):
        main([*args, "--out", str(runs / "bad"), "--seed", "0"])
    with pytest.raises(SystemExit, match="is member 1 of 2; it continues as that member"):
        main([*args, "--out", str(runs / "bad"), "--seed", "3", "--member", "0"])
    with pytest.raises(SystemExit, match=r"continue it with --mlip-weight 0\.5"):
        main([*args, "--out", str(runs / "bad"), "--seed", "3", "--mlip-weight", "1.0"])
    assert not (runs / "bad").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["m0"], "at least 2 member runs into an ensemble, got 1"),
        (["m0", "m0"], "are both member 0; give each member once"),
        (["m0", "ens"], "ens is not a member run"),
        (["m0", "other-data"], "in its training data .*; combine members of one training set"),
        (["m0", "other-heads"], r"in its fidelity mode \(heads \(mlip weight 0.5\) against delta"),
        (["m0", "other-width"], r"in its architecture \(head_hidden 16 against 8\)"),
        (["m0", "other-seed"], r"in its --seed \(4 against 3\)"),
        (["m0", "missing"], "needs checkpoint.pt and metrics.json"),
    ],
)
def test_combine_refuses_runs_that_are_not_one_ensemble(runs, names, message):
    args = ["combine", "--data", str(runs / "mf.npz"), "--out", str(runs / "bad"), "--runs"]
    with pytest.raises(SystemExit, match=message):
        main([*args, *[str(runs / name) for name in names]])
    assert not (runs / "bad").exists()


@pytest.mark.slow
def test_combine_refuses_data_the_members_were_not_trained_on(runs):
    args = ["combine", "--data", str(runs / "dft.npz"), "--out", str(runs / "bad")]
    with pytest.raises(SystemExit, match=r"--data has hash .* pass the members' training set"):
        main([*args, "--runs", str(runs / "m0"), str(runs / "m1")])
    assert not (runs / "bad").exists()


@pytest.mark.slow
def test_the_command_line_checks_member_arguments(runs, tmp_path):
    data, out = ["--data", str(runs / "mf.npz")], ["--out", str(tmp_path / "bad")]
    for argv, message in (
        (["dft", *data, *out, "--member", "0"], "--member K needs --ensemble N"),
        (["dft", *data, *out, "--ensemble", "2", "--member", "2", *TINY], "member 0 to N - 1"),
        (["dft", *data, *out, "--runs", str(runs / "m0")], "--runs names the member runs of combine"),
        (["combine", *data, *out], "combine needs it"),
        (["pu", *data, *out, "--member", "0"], "pu has --n-bags"),
        (["transfer", *data, *out, "--init", str(runs / "ens"), "--member", "2"], "member 0 to N - 1"),
    ):
        with pytest.raises(SystemExit, match=message):
            main(argv)
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_a_joined_run_exports_one_graph_with_mean_spread_and_members(runs):
    meta = json.loads((runs / "onnx-joined" / "model.json").read_text())
    assert meta["n_members"] == 2
    assert meta["outputs"] == {"dhf": "eV/atom", "dhf_std": "eV/atom", "dhf_members": "eV/atom"}
    assert meta["training_data_hash"] == info(runs, "ens")["training_data_hash"]
    crystals = mp_crystals(64, max_sites=6)[0]
    out = OnnxModel(runs / "onnx-joined", threads=2, role="dft").run_graphs(build_graphs(crystals))
    model, _ = load_checkpoint(runs / "joined")
    with torch.no_grad():
        ref = model.forward_graphs(build_graphs(crystals)).numpy().astype(np.float64)  # DFT heads
    scale = np.abs(ref).max()
    assert out["dhf_members"].shape == (64, 2)
    assert np.abs(out["dhf_members"] - ref).max() <= 1e-5 * scale
    assert np.abs(out["dhf"] - ref.mean(axis=1)).max() <= 1e-5 * scale
    assert np.abs(out["dhf_std"] - ref.std(axis=1)).max() <= 1e-5 * scale
