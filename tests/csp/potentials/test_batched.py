"""The batched relaxer (csp.potentials.batched): toy potentials (fast) and CHGNet against the ASE path (slow)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csp.potentials.batched import relax_batched, symmetry_operations
from csp.potentials.relaxer import RelaxJob, relax
from csp.structures.crystal import Crystal
from tests.csp.potentials.toy_potentials import VolumeSpring as ToySpring

#: The batched relaxer's final energies may differ from the ASE path's by at most this (eV/atom).
ENERGY_TOLERANCE = 0.005
FIX_SYMPREC = 0.01


class VolumeSpring(ToySpring):
    """E = k (V - V0)^2 per structure, no forces (``toy_potentials.VolumeSpring`` on the CPU, NaN off unless
    ``nan_below`` is given)."""

    def __init__(self, v0_per_atom: float = 12.0, k: float = 0.01, nan_below: float = 0.0) -> None:
        super().__init__("cpu", v0_per_atom, k, nan_below)


def cubic(a: float, numbers=(12, 8), frac=((0, 0, 0), (0.5, 0.5, 0.5))) -> Crystal:
    return Crystal(np.eye(3) * a, list(numbers), list(frac))


def test_cell_relaxes_to_the_target_volume_keeping_its_shape():
    start = Crystal(np.diag([3.0, 3.0, 3.6]), [12, 8], [[0, 0, 0], [0.5, 0.5, 0.5]])
    (item,) = relax_batched(VolumeSpring(), [RelaxJob(start, 300, "a")], fmax=1e-3, symprec=FIX_SYMPREC)
    assert item.state == "relaxed"
    assert item.crystal.volume == pytest.approx(24.0, rel=1e-3)
    lengths = np.linalg.norm(item.crystal.lattice, axis=1)
    assert lengths[2] / lengths[0] == pytest.approx(1.2, rel=1e-6)  # tetragonal stays tetragonal


def test_continuous_batching_and_single_points_and_failures():
    jobs = [RelaxJob(cubic(a), 200, f"r{a}") for a in (2.6, 2.8, 3.1, 3.3)]
    jobs += [RelaxJob(cubic(2.9), 0, "single"), RelaxJob(cubic(1.5), 50, "nan")]
    pot = VolumeSpring(nan_below=2.0)
    extra = []

    def on_result(item):
        if item.job.payload == "r2.6":  # a job that joins while others run
            extra.append(item)
            return [RelaxJob(item.crystal, 10, "again")]
        return None

    together = {r.job.payload: r for r in relax_batched(pot, jobs, fmax=1e-3, pool=2, on_result=on_result)}
    alone = {r.job.payload: r for j in jobs for r in relax_batched(pot, [j], fmax=1e-3)}
    assert set(together) == {*alone, "again"}
    for key, r in alone.items():
        assert together[key].state == r.state
        assert together[key].steps == r.steps
        np.testing.assert_allclose(together[key].crystal.lattice, r.crystal.lattice, atol=1e-9)
    assert together["single"].state == "unrelaxed" and together["single"].steps == 0
    assert together["nan"].state == "failed"
    assert together["again"].state == "relaxed" and together["again"].steps == 0


def test_collapse_and_explosion_stop_a_relaxation():
    squeezed = Crystal(np.eye(3) * 3.0, [12, 8], [[0, 0, 0], [0.08, 0, 0]])
    tiny = cubic(1.6, numbers=(1, 1))  # the spring pulls it to 24 A^3: far beyond twice its volume
    done = relax_batched(
        VolumeSpring(),
        [RelaxJob(squeezed, 40, "bad"), RelaxJob(tiny, 200, "big")],
        collapse_ratio=0.6,
        explode_ratio=2.0,
    )
    by = {d.job.payload: d for d in done}
    assert by["bad"].state == "collapsed" and by["bad"].steps == 1
    assert by["big"].state == "exploded" and by["big"].crystal.volume > 2 * tiny.volume


def test_symmetry_operations_map_atoms_onto_atoms():
    from tests.csp.potentials.relax_set import structures

    crystal = structures()["GaAs-zincblende"]
    rot, perm = symmetry_operations(crystal, FIX_SYMPREC)
    assert len(rot) == 24 * 4  # F-43m in the conventional cell: 24 rotations x 4 centring translations
    assert all(sorted(p) == list(range(crystal.num_sites)) for p in perm)
    np.testing.assert_allclose(
        rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12
    )


def test_unknown_engine_is_refused():
    from csp.errors import InputError

    with pytest.raises(InputError, match="engine"):
        relax(VolumeSpring(), [], engine="lbfgs")


# ------------------------------------------------------------------------- CHGNet, against ASE
@pytest.fixture(scope="module")
def chgnet_runs():
    from csp.potentials.relaxer import load_potential
    from tests.csp.potentials.relax_set import structures

    torch.set_num_threads(1)
    pot = load_potential("chgnet", "cpu")
    crystals = structures()
    jobs = [RelaxJob(c, 150, name) for name, c in crystals.items()]
    kw = dict(fmax=0.05, symprec=FIX_SYMPREC, collapse_ratio=0.6, explode_ratio=2.0)
    runs = {
        engine: {r.job.payload: r for r in relax(pot, jobs, engine=engine, **kw)}
        for engine in ("ase", "batched")
    }
    runs["pool3"] = {r.job.payload: r for r in relax(pot, jobs, engine="batched", pool=3, **kw)}
    return crystals, runs


@pytest.mark.slow
def test_batched_relaxer_gives_the_ase_answers(chgnet_runs):
    from csp.structures.symmetry import spacegroup_number

    crystals, runs = chgnet_runs
    assert len(crystals) == 10
    for name in crystals:
        ase, new = runs["ase"][name], runs["batched"][name]
        assert new.state == ase.state == "relaxed", name
        assert abs(new.energy - ase.energy) < ENERGY_TOLERANCE, name
        assert spacegroup_number(new.crystal, FIX_SYMPREC) == spacegroup_number(ase.crystal, FIX_SYMPREC), (
            name
        )


@pytest.mark.slow
def test_batched_relaxer_keeps_the_space_group(chgnet_runs):
    from csp.structures.symmetry import spacegroup_number

    crystals, runs = chgnet_runs
    for name, start in crystals.items():
        before = spacegroup_number(start, FIX_SYMPREC)
        after = spacegroup_number(runs["batched"][name].crystal, FIX_SYMPREC)
        # a P1 cell may relax into a higher group (the triclinic MgO cell becomes I4/mmm on both paths)
        assert after == before or before == 1, name
        assert runs["batched"][name].energy < runs["batched"][name].energy_initial


@pytest.mark.slow
def test_continuous_batching_gives_the_same_relaxations(chgnet_runs):
    crystals, runs = chgnet_runs
    for name in crystals:
        full, small = runs["batched"][name], runs["pool3"][name]
        assert small.state == full.state
        assert abs(small.energy - full.energy) < 1e-4, name
