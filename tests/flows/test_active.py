"""Active rounds end to end (issue 20, item 2): ``csp learn run|status|train`` on CPU at a tiny budget, CHGNet
relaxations of a few steps; the resume after injected crashes; the exclusion list; refused requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.flows.cli_process import invoke_csp, one_line_error, run_csp

TINY = [
    "--outer-steps", "2", "--inner-steps", "8", "--batch-size", "8", "--outer-optimizer", "rs",
    "--inner-optimizer", "rs", "--formula-units-max", "2", "--top-k", "2", "--relax-steps", "3",
]  # fmt: skip
ROUND = ["--composition", "NaCl", "--composition", "KBr", "--fresh-composition", "LiF", *TINY]


def _folders(tmp: Path) -> list[str]:
    return ["--labels-dir", str(tmp / "labels"), "--results", str(tmp / "active_rounds.json")]


@pytest.fixture(scope="module")
def round_one(tmp_path_factory):
    """One round labelled (not trained) by the command line in a subprocess, as a user runs it, with two
    worker processes (the resume test runs its campaigns in one process: the labels agree)."""
    tmp = tmp_path_factory.mktemp("active")
    args = [*ROUND, "--no-train", "--workers", "2", *_folders(tmp)]
    result = run_csp(tmp / "home", "learn", "run", *args, timeout=600)
    assert result.returncode == 0, result.stderr
    return tmp, result


@pytest.mark.slow
def test_one_round_labels_the_top_structures_writes_parquet_that_ingest_accepts_and_records(round_one):
    from storage.label_parts import read_label_parts

    tmp, result = round_one
    assert "round 1: 9 rows labelled (8 training rows) over 2 compositions" in result.stdout
    folder = tmp / "labels" / "round-001"
    parts = sorted(folder.glob("part-*.parquet"))
    assert [p.name for p in parts] == ["part-000.parquet"] and not (folder / "staging").exists()
    columns, natoms = read_label_parts(parts)
    ids = columns["id"].tolist()
    assert len(ids) == len(set(ids)) == 9 and len(natoms) == 9
    # per training campaign: 2 distinct structures x (single point at the found geometry + relaxed end)
    assert sum(i.startswith("active-r001-NaCl-train-s0|top") for i in ids) == 4
    assert {i.rsplit("|", 1)[1] for i in ids} == {"initial", "relaxed"}
    assert sorted(set(columns["kind"].tolist())) == ["reference", "search"]  # the fresh one: evaluation only
    assert set(columns["potential"].tolist()) == {"chgnet-0.3.0-active"}
    relaxed = columns["relaxation"][columns["action"] == "relax"]
    assert set(relaxed.tolist()) <= {"relaxed", "partially_relaxed"}
    assert (columns["steps"][columns["action"] == "relax"] <= 3).all()

    ingest = invoke_csp(tmp / "lake-b", "augment", "ingest", *map(str, parts))
    assert ingest.returncode == 0, ingest.stderr
    assert "8 rows written to structures (sources ['chgnet-0.3.0-active'])" in ingest.stdout
    assert "1 evaluation/elemental rows kept out" in ingest.stdout

    (entry,) = json.loads((tmp / "active_rounds.json").read_text())["rounds"]
    assert entry["round"] == 1 and entry["compositions"] == ["NaCl", "KBr"]
    assert entry["fresh_compositions"] == ["LiF"] and entry["rows_added"] == 8
    assert entry["model_before"].startswith("ALIGNN-DFT-2026.11-Eform:") and entry["model_after"] is None
    assert entry["training"] == {"status": "skipped"} and entry["gap_campaigns"] == 1
    assert isinstance(entry["gap_ev_per_atom"], float)
    assert (
        entry["command"].startswith("csp learn run --composition NaCl") and "--no-train" in entry["command"]
    )

    status = invoke_csp(tmp / "home", "learn", "status", "--labels-dir", str(tmp / "labels"))
    assert status.returncode == 0 and "NaCl KBr" in status.stdout and "skipped" in status.stdout


@pytest.mark.slow
def test_a_round_labelled_without_training_trains_later_and_the_next_round_starts_from_it(
    round_one, monkeypatch
):
    tmp, _ = round_one
    refused = invoke_csp(tmp / "home", "learn", "train", "--round", "1", *_folders(tmp))
    assert "holds no DFT row to train on" in one_line_error(refused)  # this lake has no DFT source
    labels_only = ["--train-source", "chgnet-0.3.0-active", "--train-epochs", "1"]  # asked for explicitly
    trained = run_csp(
        tmp / "home", "learn", "train", "--round", "1", *labels_only, *_folders(tmp), timeout=600
    )
    assert trained.returncode == 0, trained.stderr
    (entry,) = json.loads((tmp / "active_rounds.json").read_text())["rounds"]  # replaced, not appended
    name = "ALIGNN-DFT-active-r001-s0-Eform"
    assert entry["model_after"].startswith(f"{name}:") and entry["training"]["status"] == "done"
    assert entry["training"]["per_source"] == {"chgnet-0.3.0-active": 8}  # this lake holds no DFT source
    assert entry["training_command"].startswith("csp learn train --round 1")
    meta = json.loads((tmp / "home" / "models" / name / "model.json").read_text())
    assert meta["task"] == "regression" and set(meta["training_elements"]) == {"Na", "Cl", "K", "Br"}

    from flows.active import ActiveParameters, _start
    from flows.settings import settings

    monkeypatch.setenv("CSP_HOME", str(tmp / "home"))
    params = ActiveParameters(composition=["KCl"], fresh_composition=["NaBr"], labels_dir=tmp / "labels")
    nxt = _start(params, 2, settings(), tmp / "labels", "csp learn run")
    assert nxt.model_before == name and nxt.model_before_id == entry["model_after"]
    monkeypatch.setenv("CSP_DFT_MODEL", "ALIGNN-DFT-2026.11-Eform")  # a model the user names wins
    named = _start(params, 2, settings(), tmp / "labels", "csp learn run")
    assert named.model_before == "ALIGNN-DFT-2026.11-Eform"


@pytest.mark.slow
def test_a_round_resumes_after_injected_crashes_and_labels_nothing_twice(tmp_path, monkeypatch, round_one):
    import flows.active as active
    import flows.active_steps as steps
    from storage.label_parts import read_label_parts

    monkeypatch.setenv("CSP_HOME", str(tmp_path / "home"))
    real = steps._label_job
    calls: list[str] = []

    def counted(job, config):
        if len(calls) == 1 and crash["label"]:
            raise RuntimeError("killed after the first campaign")
        calls.append(job.campaign_id)
        return real(job, config)

    crash = {"label": True}
    monkeypatch.setattr(steps, "_label_job", counted)
    values = {
        "composition": ["NaCl", "KBr"], "fresh_composition": ["LiF"], "outer_steps": 2, "inner_steps": 8,
        "batch_size": 8, "outer_optimizer": "rs", "inner_optimizer": "rs", "formula_units_max": 2, "top_k": 2,
        "relax_steps": 3, "train": False, "labels_dir": tmp_path / "labels", "results": tmp_path / "r.json",
    }  # fmt: skip
    with pytest.raises(RuntimeError, match="killed after the first"):
        active.run_rounds(values, command="csp learn run (test)")
    manifest = json.loads((tmp_path / "labels" / "round-001" / "manifest.json").read_text())
    assert list(manifest["campaigns"]) == ["active-r001-NaCl-train-s0"] and len(manifest["labelled_ids"]) == 4

    crash["label"] = False

    def killed_recording(results, state, entry):
        raise RuntimeError("killed while recording")

    monkeypatch.setattr(active, "record", killed_recording)
    with pytest.raises(RuntimeError, match="while recording"):
        active.run_rounds(values, command="csp learn run (test)")
    assert calls == ["active-r001-NaCl-train-s0", "active-r001-KBr-train-s0", "active-r001-LiF-fresh-s0"]
    assert not (tmp_path / "r.json").exists()

    monkeypatch.undo()
    monkeypatch.setenv("CSP_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(steps, "_label_job", counted)
    (state,) = active.run_rounds(values, command="csp learn run (test)")
    assert len(calls) == 3  # nothing labelled again
    columns, _ = read_label_parts(sorted((tmp_path / "labels" / "round-001").glob("part-*.parquet")))
    assert len(columns["id"]) == len(set(columns["id"].tolist())) == len(state.labelled_ids) == 9
    assert [r["round"] for r in json.loads((tmp_path / "r.json").read_text())["rounds"]] == [1]
    # the same round run whole by two worker processes labelled the same rows with the same gaps
    whole = json.loads((round_one[0] / "labels" / "round-001" / "manifest.json").read_text())
    assert sorted(whole["labelled_ids"]) == sorted(state.labelled_ids)
    for cid, done in whole["campaigns"].items():
        assert state.campaigns[cid]["gap_ev_per_atom"] == pytest.approx(done["gap_ev_per_atom"], abs=1e-6)
    # a round that started with other arguments is not resumed with these
    with pytest.raises(active.ActiveError, match="started with other arguments"):
        active.run_rounds({**values, "top_k": 3, "round": 1}, command="csp learn run (test)")


@pytest.mark.mirror
def test_excluded_formulas_are_never_chosen_from_the_lake(tmp_path, monkeypatch, data_mirror):
    from csp.potentials.active import plan_round
    from flows.active import pools
    from flows.settings import lake, settings
    from storage.augmentation import candidate_formulas
    from storage.ingest import ingest_source, new_run_id
    from storage.training_sets import DFT_SOURCES

    monkeypatch.setenv("CSP_HOME", str(tmp_path))
    ingest_source(lake(init=True), "qmpy_ssub", data_mirror, run_id=new_run_id())
    train_pool, fresh_pool, exclude = pools(settings(), "chgnet-0.3.0")
    assert len(exclude) == 17
    in_lake = set(candidate_formulas(lake(), dft_sources=DFT_SOURCES)[0])
    assert len(in_lake & set(exclude)) >= 5  # the lake holds validation compounds: the test means something
    train, fresh = plan_round(
        1,
        seed=0,
        train_pool=train_pool,
        fresh_pool=fresh_pool,
        n_train=10_000,
        n_fresh=10_000,
        exclude=exclude,
    )
    assert len(train) > 500 and len(fresh) > 50
    assert not (set(train) | set(fresh)) & set(exclude)
    assert not set(train) & set(fresh)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--compositions", "0"], "--compositions must be an integer from 1 to 10000, not 0."),
        (["run", "--rounds", "-1"], "--rounds must be an integer from 1 to 1000, not -1."),
        (["run", "--composition", "MgO"], "MgO is on the exclusion list"),
        (["run", "--composition", "NaCl", "--fresh-composition", "Ga2As2"], "GaAs is on the exclusion list"),
        (["run", "--composition", "NaCl", "--rounds", "2"], "one round"),
        (["run", "--composition", "Xx2"], "Xx"),
        (["run", "--seed", "-3"], "--seed must be an integer from 0 to 2147483647, not -3."),
        (["run", "--device", "gpu"], "Invalid device"),
        (["train"], "--round N"),
        (["train", "--round", "4"], "Round 4 is not labelled yet"),
    ],
)
def test_bad_requests_are_refused_in_one_line_and_write_nothing(tmp_path, args, message):
    result = invoke_csp(tmp_path / "home", "learn", *args, *_folders(tmp_path))
    assert message in one_line_error(result)
    assert not (tmp_path / "labels").exists() and not (tmp_path / "home").exists()
    assert not (tmp_path / "active_rounds.json").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_round_worker_dies_with_its_killed_parent(tmp_path):
    """A killed ``csp learn run`` leaves no campaign running on as an orphan (a resumed round found such a
    campaign "already running" and recorded it failed)."""
    pid_file = tmp_path / "worker.pid"
    parent = textwrap.dedent(
        f"""
        import os, time
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing as mp
        from flows.active_steps import _one_thread

        def work(path):
            open(path, "w").write(str(os.getpid()))
            time.sleep(120)

        if __name__ == "__main__":
            pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_one_thread)
            pool.submit(work, {str(pid_file)!r})
            while not os.path.exists({str(pid_file)!r}) or not open({str(pid_file)!r}).read():
                time.sleep(0.1)
            os.kill(os.getpid(), 9)
        """
    )
    script = tmp_path / "parent.py"
    script.write_text(parent)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    subprocess.run([sys.executable, str(script)], env=env, timeout=120, check=False)
    worker = int(pid_file.read_text())
    deadline = time.time() + 20
    while time.time() < deadline and Path(f"/proc/{worker}").exists():
        state = (
            Path(f"/proc/{worker}/stat").read_text().split()[2]
            if Path(f"/proc/{worker}/stat").exists()
            else "X"
        )
        if state == "Z":
            break
        time.sleep(0.2)
    alive = (
        Path(f"/proc/{worker}/stat").exists() and Path(f"/proc/{worker}/stat").read_text().split()[2] != "Z"
    )
    if alive:
        os.kill(worker, 9)
    assert not alive, "the worker outlived its killed parent"
