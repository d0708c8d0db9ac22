"""The active loop's science (csp.potentials.active): choices, labels of the top structures, the resumable round.

A fake potential (a fixed energy per element, no force, no stress) keeps these fast; the real round with CHGNet
is tests/flows/test_active.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from csp.errors import InputError
from csp.potentials.active import (
    ActiveJob,
    RoundState,
    campaign_gap,
    choose_compositions,
    label_top,
    median_gap,
    plan_round,
    run_round,
)
from csp.potentials.augment import StructureSet, empty_set
from csp.structures.crystal import Crystal

VALIDATION = ["LiH", "ThO2", "CdF2", "CeS", "ZrN", "BaTe", "GaAs", "MgO", "AuCl", "CsI", "RbI", "LaTe"]
VALIDATION += ["K2Se", "BaZrO3", "InP", "SrCu", "CaS"]
OTHERS = ["NaCl", "KBr", "LiF", "CaO", "ZnS", "SrTiO3", "AlN", "GaN", "CuCl", "BeO", "KCl", "NaF"]


def test_choice_is_deterministic_by_seed_and_round_and_never_excluded():
    pool = VALIDATION + OTHERS + ["Mg2O2", "NaCl"]  # another spelling of MgO, a duplicate
    first = choose_compositions(pool, 5, seed=3, round_number=1, exclude=VALIDATION)
    assert first == choose_compositions(list(reversed(pool)), 5, seed=3, round_number=1, exclude=VALIDATION)
    assert first != choose_compositions(pool, 5, seed=3, round_number=2, exclude=VALIDATION)
    assert first != choose_compositions(pool, 5, seed=4, round_number=1, exclude=VALIDATION)
    everything = choose_compositions(pool, 100, seed=0, round_number=1, exclude=VALIDATION)
    assert sorted(everything) == sorted(OTHERS)  # the whole pool but the exclusion list, once each
    later = choose_compositions(pool, 100, seed=3, round_number=2, exclude=VALIDATION, used=first)
    assert sorted(later) == sorted(set(OTHERS) - set(first))
    # without a round, a larger choice starts with the smaller one (the fresh compositions of every round)
    assert choose_compositions(pool, 6, seed=1)[:3] == choose_compositions(pool, 3, seed=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "at least 1"),
        ({"round_number": 0}, "numbered from 1"),
        ({"round_number": -2}, "numbered from 1"),
        ({"seed": -1}, "non-negative"),
        ({"exclude": OTHERS}, "No composition is left"),
    ],
)
def test_a_choice_that_cannot_be_made_is_refused(kwargs, message):
    args = {"n": 2, "seed": 0, "round_number": 1, **kwargs}
    with pytest.raises(InputError, match=message):
        choose_compositions(OTHERS, args.pop("n"), **args)


def test_a_round_never_trains_on_a_validation_compound_nor_on_its_fresh_compositions():
    train, fresh = plan_round(
        2, seed=0, train_pool=VALIDATION + OTHERS[:8], fresh_pool=VALIDATION + OTHERS[8:],
        n_train=100, n_fresh=100, exclude=VALIDATION,
    )  # fmt: skip
    assert sorted(train) == sorted(OTHERS[:8]) and sorted(fresh) == sorted(OTHERS[8:])
    again = plan_round(
        5, seed=0, train_pool=OTHERS[:8], fresh_pool=OTHERS[8:], n_train=2, n_fresh=3, exclude=VALIDATION
    )
    assert (
        again[1]
        == plan_round(
            1, seed=0, train_pool=OTHERS[:8], fresh_pool=OTHERS[8:], n_train=2, n_fresh=3, exclude=VALIDATION
        )[1]
    )  # the same fresh compositions every round: the rounds' gaps compare
    with pytest.raises(InputError, match="MgO is on the exclusion list"):
        plan_round(
            1, seed=0, train_pool=[], fresh_pool=[], n_train=1, n_fresh=0, exclude=VALIDATION, train=["Mg2O2"]
        )
    with pytest.raises(InputError, match="GaAs is on the exclusion list"):
        plan_round(
            1,
            seed=0,
            train_pool=OTHERS,
            fresh_pool=[],
            n_train=1,
            n_fresh=1,
            exclude=VALIDATION,
            fresh=["GaAs"],
        )
    with pytest.raises(InputError, match="both a training and a fresh"):
        plan_round(
            1, seed=0, train_pool=[], fresh_pool=[], n_train=1, n_fresh=1, train=["NaCl"], fresh=["NaCl"]
        )


# ------------------------------------------------------------------------------------------- labels
class FlatPotential:
    """Energy per atom = the mean of fixed per-element values; no force, no stress (relaxed at once)."""

    name = "flat-test"
    device = "cpu"

    def efs(self, crystals):
        per_element = {11: -2.0, 17: -3.0}
        energy = np.array([np.mean([per_element[int(z)] for z in c.numbers]) for c in crystals])
        return energy, [np.zeros((c.num_sites, 3)) for c in crystals], np.zeros((len(crystals), 3, 3))


def _row(step: int, a: float, fitness: float, dhf: float) -> dict:
    if a < 3.5:  # CsCl-type NaCl
        crystal = Crystal(np.eye(3) * a, [11, 17], [[0, 0, 0], [0.5, 0.5, 0.5]])
    else:  # rock-salt NaCl (primitive cell): another space group, so another distinct structure
        lattice = 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
        crystal = Crystal(lattice, [11, 17], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return {
        "stage": "outer", "outer_step": step, "inner_step": -1, "formula": "NaCl", "formula_units": 1,
        "spacegroup": 221, "family_spacegroup": 221, "family_wyckoff": "a b",
        "lattice": crystal.lattice.reshape(-1).tolist(), "numbers": [11, 17],
        "frac_coords": crystal.frac_coords.reshape(-1).tolist(), "dhf_pred_ev_per_atom": dhf,
        "p_syn": 0.5, "p_syn_std": 0.0, "fitness": fitness, "valid": True, "reject_reason": "",
    }  # fmt: skip


@pytest.fixture
def flat(monkeypatch):
    from csp.potentials import refine

    potential = FlatPotential()
    monkeypatch.setitem(refine._REFERENCE_CACHE, potential.name, {11: -1.0, 17: -1.5})
    return potential


def test_top_structures_get_a_single_point_and_a_relaxation_with_formation_enthalpies(flat):
    rows = [_row(0, 3.2, 0.1, -2.0), _row(1, 5.6, 0.2, -1.0), _row(2, 3.3, 0.3, -2.0)]  # 2 repeats 0
    labelled = label_top(rows, flat, campaign="c1", top_k=5, relax_steps=3)
    assert labelled.ids.tolist() == [
        "c1|top1|initial",
        "c1|top1|relaxed",
        "c1|top2|initial",
        "c1|top2|relaxed",
    ]
    assert set(labelled.kind) == {"search"} and labelled.action.tolist() == ["single", "relax"] * 2
    assert labelled.labels["relaxation"].tolist() == ["unrelaxed", "relaxed"] * 2
    assert set(labelled.labels["potential"]) == {"flat-test-active"}
    # dHf = E/atom - mean of the references = -2.5 - (-1.25)
    np.testing.assert_allclose(labelled.values["dhf_ev_per_atom"], -1.25)
    np.testing.assert_allclose(labelled.values["dhf_model_ev_per_atom"][[0, 2]], [-2.0, -1.0])
    assert np.isnan(labelled.values["dhf_model_ev_per_atom"][[1, 3]]).all()
    assert campaign_gap(labelled) == pytest.approx(-1.25 - -2.0)  # the model's top-1 is 0.75 eV/atom too low
    fresh = label_top(rows, flat, campaign="f", top_k=1, relax_steps=0, kind="reference")
    assert fresh.ids.tolist() == ["f|top1|initial"] and fresh.kind.tolist() == ["reference"]
    assert len(label_top([], flat, campaign="e", top_k=1, relax_steps=0)) == 0
    with pytest.raises(InputError, match="top_k=0"):
        label_top(rows, flat, campaign="c", top_k=0, relax_steps=0)


def test_the_round_gap_is_a_median_of_finite_gaps():
    assert median_gap([None, -0.3, 0.1, float("nan"), -0.1]) == pytest.approx(-0.1)
    assert median_gap([None]) is None
    assert campaign_gap(empty_set()) is None


# ------------------------------------------------------------------------------------ the round
def _labelled(job: ActiveJob) -> StructureSet:
    train = job.role == "train"
    kind = "search" if train else "reference"
    return label_top([_row(0, 3.2, 0.1, -2.0)], FlatPotential(), campaign=job.campaign_id, top_k=1,
                     relax_steps=int(train), kind=kind)  # fmt: skip


class MemoryStore:
    def __init__(self):
        self.manifest, self.staging, self.parts, self.cleared = None, {}, [], 0

    def save(self, state):
        self.manifest = state.to_dict()

    def staged(self):
        return dict(self.staging)

    def write_parts(self, labelled):
        self.parts.append(labelled.ids.tolist())
        return ["part-000.parquet"]

    def clear_staging(self):
        self.staging.clear()
        self.cleared += 1


class CrashError(RuntimeError):
    pass


def test_a_round_resumes_after_crashes_between_steps_and_labels_nothing_twice(flat):
    store = MemoryStore()
    labelled_jobs: list[str] = []
    crash_at = {"label": 2, "train": True, "record": True}

    def label_jobs(jobs):
        for job in jobs:
            if len(labelled_jobs) == crash_at["label"]:
                raise CrashError("killed after two campaigns")
            labelled_jobs.append(job.campaign_id)
            result = _labelled(job)
            store.staging[job.campaign_id] = result  # staged before the manifest knows
            yield job, result

    def train(state):
        if crash_at.pop("train", False):
            raise CrashError("killed while training")
        return {"model_after": "m1", "model_after_id": "m1:abc"}

    records = []

    def record(state, entry):
        if crash_at.pop("record", False):
            raise CrashError("killed while recording")
        records.append(entry)

    state = RoundState(1, 0, ["NaCl", "KBr", "LiF"], ["KCl"], {}, "m0", "m0:123", "flat-test-active")
    for _ in range(3):  # crash in labelling, in training, in recording
        with pytest.raises(CrashError):
            run_round(state, store, label_jobs=label_jobs, train=train, record=record)
        state = RoundState.from_dict(store.manifest)  # the next process reads the manifest back
        crash_at["label"] = 99
    run_round(state, store, label_jobs=label_jobs, train=train, record=record)

    jobs = [j.campaign_id for j in state.jobs()]
    assert sorted(labelled_jobs) == sorted(jobs)  # each campaign labelled exactly once
    assert len(store.parts) == 1 and len(store.parts[0]) == len(set(store.parts[0])) == 7  # 3 x 2 + 1
    final = RoundState.from_dict(store.manifest)
    assert final.recorded and final.training["status"] == "done" and final.model_after == "m1"
    assert len(final.labelled_ids) == 7 and store.staging == {}
    (entry,) = records
    assert entry["rows_labelled"] == 7 and entry["rows_added"] == 6  # the fresh row never trains
    assert entry["model_before"] == "m0:123" and entry["model_after"] == "m1:abc"
    assert entry["gap_ev_per_atom"] == pytest.approx(0.75) and entry["gap_campaigns"] == 1
    # done is done: running it again changes nothing
    run_round(final, store, label_jobs=label_jobs, train=train, record=record)
    assert len(records) == 1 and len(store.parts) == 1


def test_a_campaign_that_cannot_run_is_recorded_and_not_retried(flat):
    store = MemoryStore()
    calls = []

    def label_jobs(jobs):
        for job in jobs:
            calls.append(job.composition)
            yield (
                job,
                "No space group can hold the composition." if job.composition == "KBr" else _labelled(job),
            )

    state = RoundState(3, 1, ["NaCl", "KBr"], [], {}, "m0", "m0:1", "flat-test-active")
    run_round(state, store, label_jobs=label_jobs, train=None, record=lambda s, e: None)
    run_round(state, store, label_jobs=label_jobs, train=None, record=lambda s, e: None)
    assert calls == ["NaCl", "KBr"] and state.training == {"status": "skipped"}
    entry = state.record()
    assert list(entry["failed"].values()) == ["No space group can hold the composition."]
    assert entry["gap_ev_per_atom"] is None  # no fresh composition, no gap
    with pytest.raises(InputError, match="Not a manifest"):
        RoundState.from_dict({"round": 1})
