"""Labelling structures with a universal interatomic potential (CHGNet; SevenNet as a second opinion).

The potentials' weights ship inside their PyPI wheels (``pip install .[augment]``), so nothing is
downloaded. :func:`relax` runs by default on the batched relaxer (:mod:`csp.potentials.batched`: FIRE and a
Frechet cell filter on the whole pool in one tensor program, symmetry kept by symmetrised forces and
stress); ``engine="ase"`` keeps the older lock-step path (one ASE FIRE optimiser over a
``FrechetCellFilter`` per structure, one batched potential call per step). Either way a finished
relaxation is replaced from the queue at once (continuous batching).

Run it as ``python -m csp.potentials.relaxer label --plan PLAN.npz --out DIR`` (see ``--help``); workers share
one GPU (the batched engine builds CHGNet's graphs on it, :mod:`csp.potentials.chgnet_graphs`; the ASE
engine converts them per structure on each worker's CPU core) and stop cleanly at a deadline so that what
was labelled comes back. Output rows keep the plan's metadata and add

* ``values``: ``energy_ev_per_atom``, ``energy_initial_ev_per_atom``, ``fmax_ev_per_angstrom``, ``steps``;
* ``labels``: ``relaxation`` (``relaxed`` when FIRE met ``fmax``, ``partially_relaxed`` when it ran
  out of steps, ``unrelaxed`` for single points and the first frame of each relaxation),
  ``potential`` (name and model version).

Formation enthalpies are computed afterwards from the relaxed elemental rows of the same run
(:func:`csp.potentials.augment.formation_enthalpies`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import multiprocessing as mp
import os
import sys
import time
import warnings
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from csp.errors import InputError, ModelError
from csp.potentials.augment import PlanRow, StructureSet, distort, from_rows
from csp.structures.crystal import Crystal

GPA_TO_EV_PER_A3 = 1.0 / 160.21766208
#: Which relaxer :func:`relax` runs: the batched tensor program or one ASE optimiser per structure.
Engine = Literal["batched", "ase"]
#: How CHGNet's graphs are built for the batched relaxer: on the model's device, or by CHGNet's converter.
GraphBuilder = Literal["device", "converter"]


LOG = logging.getLogger("csp.potentials")


@contextmanager
def quiet(package: str) -> Iterator[None]:
    """Run a third-party call with its prints and Python warnings sent to the ``csp.potentials`` log (INFO)
    instead of the user's terminal: CHGNet prints a banner on load and torch warns on every batch."""
    buffer = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, redirect_stdout(buffer):
        warnings.simplefilter("always")
        yield
    for line in buffer.getvalue().splitlines():
        if line.strip():
            LOG.info("%s: %s", package, line.strip())
    seen = set()
    for w in caught:
        text = f"{w.category.__name__}: {str(w.message).splitlines()[0]}"
        if text not in seen:
            seen.add(text)
            LOG.info("%s: %s", package, text)


class Potential(Protocol):
    name: str

    def efs(self, crystals: list[Crystal]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Energies (eV/atom), forces (eV/A, one (n, 3) array each) and stresses (B, 3, 3) in GPa
        (ASE's sign convention) of a batch."""
        ...


class CHGNetPotential:
    """CHGNet (its pretrained weights, shipped in the ``chgnet`` wheel).

    Args:
        device: torch device of the model ("cpu", "cuda", "cuda:1").
        batch_size: structures per model call.
        graphs: how :meth:`energies_forces_stresses` builds CHGNet's graphs: ``device`` (default; the
            whole batch as tensors on the model's device, :mod:`csp.potentials.chgnet_graphs`) or
            ``converter`` (CHGNet's ``CrystalGraphConverter``, one pymatgen structure at a time on the CPU:
            the reference the device graphs are compared with).

    Attributes:
        profile: when True, :meth:`energies_forces_stresses` adds its seconds to ``timings`` (graph building
            and the model, each after the device's queued work): for benchmarks.
        timings: ``graph_s``, ``model_s`` and ``calls`` accumulated while ``profile`` is on.
    """

    def __init__(self, device: str = "cpu", batch_size: int = 256, graphs: GraphBuilder = "device") -> None:
        if graphs not in ("device", "converter"):
            raise InputError(f"Unknown CHGNet graph builder {graphs!r}: choose device or converter.")
        try:
            from chgnet.model import CHGNet
        except ImportError as exc:  # pragma: no cover - depends on the optional extra
            raise ModelError("CHGNet is not installed: pip install '.[augment]'") from exc
        import chgnet

        with quiet("chgnet"):  # its banner ("CHGNet v0.3.0 initialized ...") goes to the log, not stdout
            self.model = CHGNet.load(use_device=device, verbose=False)
        self.model.eval()
        self.device = device
        self.batch_size = batch_size
        self.graphs = graphs
        self.profile = False
        self.timings = {"graph_s": 0.0, "model_s": 0.0, "calls": 0}
        self.name = f"chgnet-{self.model.version}"
        self.package = f"chgnet {chgnet.__version__}"

    def efs(self, crystals: list[Crystal]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        import torch

        structures = [c.to_pymatgen() for c in crystals]
        try:
            with quiet("chgnet"):
                out = self.model.predict_structure(structures, task="efs", batch_size=self.batch_size)
        except torch.cuda.OutOfMemoryError:
            # several workers share one GPU: free the cache and label the batch in halves
            torch.cuda.empty_cache()
            if len(crystals) == 1:
                raise
            half = len(crystals) // 2
            a, b = self.efs(crystals[:half]), self.efs(crystals[half:])
            return np.concatenate([a[0], b[0]]), a[1] + b[1], np.concatenate([a[2], b[2]])
        if isinstance(out, dict):
            out = [out]
        energy = np.array([float(o["e"]) for o in out])
        forces = [np.asarray(o["f"], dtype=np.float64) for o in out]
        stress = np.stack([np.asarray(o["s"], dtype=np.float64).reshape(3, 3) for o in out])
        return energy, forces, stress

    def energies_forces_stresses(self, batch):
        """Energies (n_struct,) eV, forces (n_atoms, 3) eV/A and stresses (n_struct, 3, 3) eV/A^3 (ASE's sign)
        of a :class:`csp.potentials.batched.Batch`, as float64 tensors on the batch's device.

        CHGNet's own model in chunks of ``batch_size`` structures, on graphs built as ``graphs`` says:
        on the device (:func:`csp.potentials.chgnet_graphs.build_chgnet_graphs`, then
        :func:`csp.potentials.chgnet_graphs.energies_forces_stresses`), or per structure on the CPU by
        CHGNet's converter and batched by CHGNet's ``forward``.

        Raises:
            GeometryError: (device graphs) a structure with an atom that has no neighbour within CHGNet's
                atom cutoff (the converter raises ``ValueError`` for it); the batched relaxer then
                evaluates structure by structure and records that one as failed.
        """
        import torch

        sizes = list(batch.sizes)
        chunks = [(k, min(k + self.batch_size, len(sizes))) for k in range(0, len(sizes), self.batch_size)]
        parts = (
            self._efs_on_device(batch, chunks)
            if self.graphs == "device"
            else self._efs_converter(batch, chunks)
        )
        dev = batch.positions.device
        energy, forces, stress = (torch.cat(x).to(dev, torch.float64) for x in zip(*parts, strict=True))
        if self.profile:
            self.timings["calls"] += 1
        return energy, forces, stress

    def _efs_on_device(self, batch, chunks: list[tuple[int, int]]) -> list[tuple]:
        """Total energies (eV), forces (eV/A) and stresses (eV/A^3) per chunk, the graphs built on the
        model's device."""
        import torch

        from csp.potentials.chgnet_graphs import build_chgnet_graphs, energies_forces_stresses

        converter = self.model.graph_converter
        device = torch.device(self.device)
        parts = []
        for start, stop in chunks:
            t0 = self._clock()
            sub = batch.slice(start, stop)
            cell = sub.cell.to(device, torch.float64)
            inverse = torch.linalg.inv(cell)[sub.owner.to(device)]
            frac = torch.einsum("ni,nij->nj", sub.positions.to(device, torch.float64), inverse)
            graphs = build_chgnet_graphs(
                cell,
                frac,
                sub.numbers.to(device),
                sub.sizes,
                atom_cutoff=converter.atom_graph_cutoff,
                bond_cutoff=converter.bond_graph_cutoff,
            )
            t1 = self._clock()
            with quiet("chgnet"):
                parts.append(energies_forces_stresses(self.model, graphs))
            if self.profile:
                self.timings["graph_s"] += t1 - t0
                self.timings["model_s"] += self._clock() - t1
        return parts

    def _efs_converter(self, batch, chunks: list[tuple[int, int]]) -> list[tuple]:
        """The same from CHGNet's converter graphs (one pymatgen structure at a time, on the CPU) and CHGNet's
        own ``forward``."""
        import torch
        from pymatgen.core import Lattice, Structure

        from csp.potentials.batched import batch_crystals

        parts = []
        for start, stop in chunks:
            t0 = self._clock()
            graphs = [
                self.model.graph_converter(
                    Structure(Lattice(c.lattice), c.numbers.tolist(), c.frac_coords, validate_proximity=False)
                ).to(self.device)
                for c in batch_crystals(batch.slice(start, stop))
            ]
            t1 = self._clock()
            with quiet("chgnet"):  # torch warns on every batch inside CHGNet's forward: the log, not stdout
                out = self.model(graphs, task="efs")
            n = torch.as_tensor(batch.sizes[start:stop], dtype=out["e"].dtype, device=out["e"].device)
            parts.append(
                (
                    out["e"].detach() * n,  # CHGNet's energy is per atom, its stress in GPa
                    torch.cat([f.detach() for f in out["f"]]),
                    torch.stack([s.detach() for s in out["s"]]) * GPA_TO_EV_PER_A3,
                )
            )
            if self.profile:
                self.timings["graph_s"] += t1 - t0
                self.timings["model_s"] += self._clock() - t1
        return parts

    def _clock(self) -> float:
        """``time.perf_counter()``, after the device's queued work while profiling."""
        if self.profile and str(self.device).startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
        return time.perf_counter()


class SevenNetPotential:
    """SevenNet-0 (weights shipped in the ``sevenn`` wheel), through its ASE calculator, one
    structure per call: the independent second opinion on small evaluation sets."""

    def __init__(self, device: str = "cpu", model: str = "7net-0") -> None:
        try:
            from sevenn.calculator import SevenNetCalculator
        except ImportError as exc:  # pragma: no cover
            raise ModelError("SevenNet is not installed: pip install '.[sevennet]'") from exc
        import sevenn

        with quiet("sevenn"):
            self.calc = SevenNetCalculator(model, device=device)
        self.name = f"sevennet-{model}"
        self.package = f"sevenn {sevenn.__version__}"

    def efs(self, crystals: list[Crystal]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        energy, forces, stress = [], [], []
        for c in crystals:
            atoms = _atoms(c)
            atoms.calc = self.calc
            energy.append(atoms.get_potential_energy() / len(atoms))
            forces.append(np.asarray(atoms.get_forces(), dtype=np.float64))
            stress.append(atoms.get_stress(voigt=False) / GPA_TO_EV_PER_A3)
        return np.array(energy), forces, np.stack(stress)


#: potential name -> (the package its weights ship in, the extra that installs it)
POTENTIAL_PACKAGES: dict[str, tuple[str, str]] = {
    "chgnet": ("chgnet", "augment"),
    "sevennet": ("sevenn", "sevennet"),
}


def check_potential_installed(name: str) -> None:
    """Refuse a potential that cannot be loaded here, without loading it (a look-up of its package, no
    import: cheap enough to run before any search).

    Raises:
        InputError: an unknown name, or a potential whose package is not installed (the message names the
            extra that installs it).
    """
    import importlib.util

    if name not in POTENTIAL_PACKAGES:
        raise InputError(f"Unknown potential {name!r}: choose {' or '.join(POTENTIAL_PACKAGES)}.")
    package, extra = POTENTIAL_PACKAGES[name]
    if importlib.util.find_spec(package) is None:
        raise InputError(
            f"The potential {name} needs the {package} package, which is not installed: pip install "
            f"'.[{extra}]', or choose another potential."
        )


def load_potential(
    name: str, device: str = "cpu", batch_size: int = 256, chgnet_graphs: GraphBuilder = "device"
) -> Potential:
    """The named potential on ``device`` (its weights loaded from its wheel); ``chgnet_graphs`` picks how
    CHGNet's graphs are built (:class:`CHGNetPotential`).

    Raises:
        InputError: an unknown name or graph builder.
        csp.errors.ModelError: its package is not installed.
    """
    if name == "chgnet":
        return CHGNetPotential(device, batch_size, chgnet_graphs)
    if name == "sevennet":
        return SevenNetPotential(device)
    raise InputError(f"Unknown potential {name!r}: choose {' or '.join(POTENTIAL_PACKAGES)}.")


def _atoms(crystal: Crystal):
    from ase import Atoms

    return Atoms(
        numbers=crystal.numbers, cell=crystal.lattice, scaled_positions=crystal.frac_coords, pbc=True
    )


def _crystal(atoms) -> Crystal:
    return Crystal(
        np.array(atoms.cell[:]), atoms.numbers, np.mod(atoms.get_scaled_positions(wrap=False), 1.0)
    )


def _fix_symmetry(atoms, symprec: float) -> None:
    """ASE's ``FixSymmetry`` at ``symprec`` on ``atoms``, with spglib quiet; a cell spglib refuses (atoms
    too close) relaxes without the constraint, as on the batched engine."""
    import spglib
    from ase.constraints import FixSymmetry

    from csp.structures.symmetry import quiet_spglib

    with quiet_spglib(), contextlib.suppress(spglib.SpglibError, RuntimeError, ValueError):
        atoms.set_constraint(FixSymmetry(atoms, symprec=symprec))


@dataclass
class RelaxJob:
    """One structure to relax (``steps`` > 0) or to single-point (``steps`` = 0); ``payload`` is the
    caller's (returned untouched on the result)."""

    crystal: Crystal
    steps: int
    payload: object = None


@dataclass(frozen=True)
class Relaxed:
    """A finished job. ``state``: ``relaxed`` (met fmax), ``partially_relaxed`` (ran out of steps or
    time), ``unrelaxed`` (single point), ``failed`` (the potential returned NaN), ``collapsed`` (two atoms
    closer than the collapse ratio times their covalent-radius sum), ``exploded`` (volume above the
    explode ratio times the start). Energies in eV/atom, forces in eV/A (``fmax`` includes the cell's
    generalised forces once a relaxation started), ``min_distance`` in Angstrom."""

    job: RelaxJob
    crystal: Crystal
    energy: float
    energy_initial: float
    fmax: float
    fmax_initial: float
    steps: int
    state: str
    min_distance: float = float("nan")


@dataclass
class _Job:
    job: RelaxJob
    atoms: object = None
    filt: object = None
    opt: object = None
    taken: int = 0
    e0: float = float("nan")
    f0: float = float("nan")
    volume0: float = float("nan")


def shortest_distance(crystal: Crystal) -> tuple[float, float]:
    """The shortest interatomic distance (Angstrom, periodic images included) and its ratio to the
    pair's covalent-radius sum (the smallest such ratio over all pairs)."""
    from pymatgen.core import Lattice

    from csp.structures.elements import covalent_radius

    frac = crystal.frac_coords
    d = Lattice(crystal.lattice).get_all_distances(frac, frac)
    n = len(frac)
    if n == 1:
        d = np.array([[min(np.linalg.norm(crystal.lattice, axis=1))]])
    else:
        # self-distances: the shortest lattice vector (an atom and its own image)
        np.fill_diagonal(d, min(np.linalg.norm(crystal.lattice, axis=1)))
    r = covalent_radius(crystal.numbers)
    ratio = d / (r[:, None] + r[None, :])
    return float(d.min()), float(ratio.min())


def relax(
    potential: Potential,
    jobs,
    *,
    fmax: float = 0.05,
    pool: int = 256,
    symprec: float | None = None,
    collapse_ratio: float | None = None,
    explode_ratio: float | None = None,
    deadline: float | None = None,
    on_result=None,
    on_frame=None,
    frame_every: int = 0,
    engine: Engine = "batched",
) -> list[Relaxed]:
    """Relax (FIRE over positions and Frechet cell variables) or single-point a stream of jobs.

    One batched potential call per step covers the whole active pool (at most ``pool`` structures); a
    finished job is replaced from the queue at once. ``engine="batched"`` (default) steps the whole pool
    as tensors (:func:`csp.potentials.batched.relax_batched`, on the potential's device);
    ``engine="ase"`` runs one ASE ``FIRE`` over a ``FrechetCellFilter`` per structure. With ``symprec``
    every structure keeps its space group (symmetrised forces and stress at that tolerance, Angstrom;
    ASE ``FixSymmetry`` on the ASE path). With ``collapse_ratio`` a relaxation stops
    as ``collapsed`` as soon as two atoms come closer than that fraction of their covalent-radius sum;
    with ``explode_ratio`` as ``exploded`` once its volume exceeds that multiple of the start.
    ``on_result(item)`` is called for each finished job and may return further jobs to queue.
    Stops taking new work at ``deadline`` (``time.monotonic()``); active relaxations then end as
    ``partially_relaxed``. A client of a relaxation server (:class:`csp.potentials.relax_server.RemotePotential`)
    sends the jobs to the server, which relaxes them batched with other processes' jobs (``pool`` is then the
    server's). With ``frame_every`` = k > 0, ``on_frame(job, crystal, energy, fmax, step)``
    is called for every k-th intermediate frame of each relaxation (steps k, 2k, ... before the last;
    the first and last frames are the result's ``energy_initial`` and ``energy``).

    Args:
        potential: batched energies/forces/stresses (:class:`Potential`).
        jobs (Iterable[RelaxJob]): the structures to relax or single-point.
        fmax: convergence threshold on the largest (generalised) force, eV/A.
        engine: ``batched`` or ``ase``.

    Returns:
        The finished jobs as :class:`Relaxed`, in the order they finished.

    Raises:
        InputError: for an unknown ``engine``.
    """
    from threadpoolctl import threadpool_limits

    if hasattr(potential, "relax_remote"):  # a relaxation server's client: the server relaxes, batched
        if engine != "batched":
            raise InputError(f"The relaxation server runs the batched engine only, not {engine!r}.")
        return potential.relax_remote(
            jobs, fmax=fmax, symprec=symprec, collapse_ratio=collapse_ratio, explode_ratio=explode_ratio,
            deadline=deadline, on_result=on_result, on_frame=on_frame, frame_every=frame_every,
        )  # fmt: skip
    if engine == "batched":
        from csp.potentials.batched import relax_batched

        with threadpool_limits(limits=1, user_api="blas"):
            return relax_batched(
                potential,
                jobs,
                fmax=fmax,
                pool=pool,
                symprec=symprec,
                collapse_ratio=collapse_ratio,
                explode_ratio=explode_ratio,
                deadline=deadline,
                on_result=on_result,
                on_frame=on_frame,
                frame_every=frame_every,
            )
    if engine != "ase":
        raise InputError(f"Unknown relaxation engine {engine!r}: choose batched or ase.")

    queue = deque(jobs)
    done: list[Relaxed] = []

    def emit(item: Relaxed) -> None:
        done.append(item)
        if on_result is not None:
            queue.extend(on_result(item) or ())

    # the cell filter's 3x3 expm/logm/solves cost ~50 ms each with a multi-threaded BLAS on a busy
    # machine (thread wake-ups) and microseconds on one thread
    with threadpool_limits(limits=1, user_api="blas"):
        _relax_loop(
            potential, queue, emit, fmax, pool, symprec, collapse_ratio, explode_ratio, deadline,
            on_frame if frame_every > 0 else None, max(frame_every, 1),
        )  # fmt: skip
    return done


def _relax_loop(
    potential, queue, emit, fmax, pool, symprec, collapse_ratio, explode_ratio, deadline, on_frame, every
) -> None:
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    active: list[_Job] = []
    while queue or active:
        out_of_time = deadline is not None and time.monotonic() > deadline
        while queue and len(active) < pool and not out_of_time:
            job = queue.popleft()
            state = _Job(job, _atoms(job.crystal))
            state.volume0 = job.crystal.volume
            if symprec is not None and job.steps > 0:
                _fix_symmetry(state.atoms, symprec)
            active.append(state)
        if not active:
            break
        crystals = [_crystal(j.atoms) if j.taken else j.job.crystal for j in active]
        try:
            energy, forces, stress = potential.efs(crystals)
        except Exception as exc:  # noqa: BLE001 - one bad structure must not sink the batch: label one by one
            energy, forces, stress = _one_by_one(potential, crystals, exc)
        keep: list[_Job] = []
        for j, c, e, f, s in zip(active, crystals, energy, forces, stress, strict=True):
            if j.taken == 0:
                j.e0 = float(e)
            if not np.isfinite(e) or not np.isfinite(f).all():
                emit(Relaxed(j.job, c, float("nan"), j.e0, float("nan"), j.f0, j.taken, "failed"))
                continue
            n = len(c.numbers)
            j.atoms.calc = SinglePointCalculator(
                j.atoms, energy=float(e) * n, forces=f, stress=s * GPA_TO_EV_PER_A3
            )
            if j.job.steps == 0:
                fm = _fmax(f)
                emit(Relaxed(j.job, c, float(e), float(e), fm, fm, 0, "unrelaxed"))
                continue
            if j.filt is None:
                j.filt = FrechetCellFilter(j.atoms)
                j.opt = FIRE(j.filt, logfile=None)
            g = j.filt.get_forces()
            fm = float(np.sqrt((g**2).sum(axis=1).max()))
            if j.taken == 0:
                j.f0 = fm
            reason = ""
            if collapse_ratio is not None and j.taken and _collapsed(c, collapse_ratio):
                reason = "collapsed"
            elif explode_ratio is not None and c.volume > explode_ratio * j.volume0:
                reason = "exploded"
            if reason or fm < fmax or j.taken >= j.job.steps or out_of_time:
                state = reason or ("relaxed" if fm < fmax else "partially_relaxed")
                emit(Relaxed(j.job, c, float(e), j.e0, fm, j.f0, j.taken, state))
                continue
            if on_frame is not None and j.taken and j.taken % every == 0:
                on_frame(j.job, c, float(e), fm, j.taken)
            j.opt.step()
            j.taken += 1
            keep.append(j)
        active = keep
        if out_of_time and not active:
            break


def _collapsed(crystal: Crystal, ratio: float) -> bool:
    """Whether two atoms are closer than ``ratio`` times their covalent-radius sum (ASE neighbour list,
    periodic images included)."""
    from ase.neighborlist import neighbor_list

    from csp.structures.elements import covalent_radius

    r = covalent_radius(crystal.numbers)
    i, j, d = neighbor_list("ijd", _atoms(crystal), float(ratio * 2 * r.max()))
    return bool((d < ratio * (r[i] + r[j])).any())


@dataclass(frozen=True)
class Labelled:
    row: PlanRow
    crystal: Crystal
    energy: float
    energy_initial: float
    fmax: float
    steps: int
    relaxation: str


def label_rows(
    potential: Potential,
    rows: list[PlanRow],
    *,
    relax_steps: int = 40,
    fmax: float = 0.05,
    pool: int = 256,
    distortions: int = 0,
    frame_every: int = 0,
    seed: int = 0,
    deadline: float | None = None,
    on_result=None,
    engine: Engine = "batched",
) -> list[Labelled]:
    """Label ``rows``: relax those whose action is ``relax`` (lock-step FIRE, at most ``relax_steps``
    steps, converged at ``fmax`` eV/A including the cell's generalised forces), single-point the rest.

    Each relaxation also yields its first frame as an ``unrelaxed`` row (id suffix ``|initial``), and
    ``distortions`` strained/perturbed copies of the end point of each prototype decoration (kind
    ``distorted``, single points). With ``frame_every`` = k > 0 every k-th intermediate frame of a
    relaxation is a row too (id suffix ``|frame|<step>``, relaxation ``frame``): the off-equilibrium
    structures a search meets, labelled at no extra potential call. Elemental references get twice the
    steps (molecular crystals relax slowly). Runs on :func:`relax` (no symmetry constraint, no collapse guard).
    Stops taking new work at ``deadline`` (``time.monotonic()``) and returns what is finished.
    """
    rng = np.random.default_rng(seed)
    done: list[Labelled] = []

    def emit(item: Labelled) -> None:
        done.append(item)
        if on_result is not None:
            on_result(item)

    def finished(r: Relaxed) -> list[RelaxJob]:
        row = r.job.payload
        if r.job.steps > 0 and not (r.state == "failed" and r.steps == 0):
            first = PlanRow(row.id + "|initial", row.formula, row.kind, "single", row.tag, row.crystal)
            emit(
                Labelled(
                    first, row.crystal, r.energy_initial, r.energy_initial, r.fmax_initial, 0, "unrelaxed"
                )
            )
        emit(Labelled(row, r.crystal, r.energy, r.energy_initial, r.fmax, r.steps, r.state))
        if r.state not in ("relaxed", "partially_relaxed"):
            return []
        return [
            RelaxJob(d, 0, PlanRow(f"{row.id}|distorted|{k}", row.formula, "distorted", "single", row.id, d))
            for k, d in enumerate(distort(r.crystal, rng, distortions if row.kind == "prototype" else 0))
        ]

    def frame(job: RelaxJob, crystal: Crystal, energy: float, fm: float, step: int) -> None:
        row = job.payload
        if row.kind in ("element", "reference"):
            return
        framed = PlanRow(f"{row.id}|frame|{step}", row.formula, row.kind, "single", row.tag, crystal)
        emit(Labelled(framed, crystal, energy, energy, fm, step, "frame"))

    jobs = [
        RelaxJob(
            row.crystal,
            0 if row.action != "relax" else relax_steps * (2 if row.kind == "element" else 1),
            row,
        )
        for row in rows
    ]
    relax(
        potential, jobs, fmax=fmax, pool=pool, deadline=deadline, on_result=finished,
        on_frame=frame, frame_every=frame_every, engine=engine,
    )  # fmt: skip
    return done


def _fmax(forces: np.ndarray) -> float:
    return float(np.sqrt((np.asarray(forces) ** 2).sum(axis=1).max()))


def _one_by_one(potential: Potential, crystals: list[Crystal], first_error: Exception):
    energy, forces, stress = [], [], []
    for c in crystals:
        try:
            e, f, s = potential.efs([c])
            energy.append(e[0]), forces.append(f[0]), stress.append(s[0])
        except Exception:  # noqa: BLE001 - the structure is recorded as failed
            (
                energy.append(np.nan),
                forces.append(np.full((c.num_sites, 3), np.nan)),
                stress.append(np.full((3, 3), np.nan)),
            )
    sys.stderr.write(f"batch failed ({first_error}); labelled one by one\n")
    return np.array(energy), forces, np.stack(stress)


def to_structure_set(items: list[Labelled], potential_name: str) -> StructureSet:
    """Labelled rows as a :class:`StructureSet` (the labelled structure: relaxed where relaxed)."""
    rows = [PlanRow(i.row.id, i.row.formula, i.row.kind, i.row.action, i.row.tag, i.crystal) for i in items]
    out = from_rows(rows)
    out.values = {
        "energy_ev_per_atom": np.array([i.energy for i in items], dtype=np.float64),
        "energy_initial_ev_per_atom": np.array([i.energy_initial for i in items], dtype=np.float64),
        "fmax_ev_per_angstrom": np.array([i.fmax for i in items], dtype=np.float64),
        "steps": np.array([i.steps for i in items], dtype=np.float64),
    }
    out.labels = {
        "relaxation": np.array([i.relaxation for i in items], dtype=str),
        "potential": np.array([potential_name] * len(items), dtype=str),
    }
    return out


# ---------------------------------------------------------------------------------------------- workers
def _worker(
    k: int, args: argparse.Namespace, plan_path: str, index: np.ndarray, deadline_wall: float, tmp: str
) -> None:
    import torch

    torch.set_num_threads(1)
    if str(args.device).startswith("cuda") and args.workers > 1:
        # each process's caching allocator keeps what it once used; a cap per process makes it
        # release cached blocks instead of starving the other workers of memory
        torch.cuda.set_per_process_memory_fraction(0.9 / args.workers)
    plan = StructureSet.load(Path(plan_path))
    sub = plan.take(index)
    rows = [
        PlanRow(sub.ids[i], sub.formula[i], sub.kind[i], sub.action[i], sub.tag[i], sub.crystal(i))
        for i in range(len(sub))
    ]
    potential = load_potential(args.potential, args.device, args.batch_size, args.chgnet_graphs)
    deadline = time.monotonic() + (deadline_wall - time.time())
    buffer: list[Labelled] = []
    part = [0]
    last = [time.monotonic()]

    def flush() -> None:
        if buffer:
            to_structure_set(buffer, potential.name).save(Path(tmp) / f"w{k:02d}-{part[0]:04d}.npz")
            part[0] += 1
            buffer.clear()
        last[0] = time.monotonic()

    def on_result(item: Labelled) -> None:
        buffer.append(item)
        if len(buffer) >= 2000 or time.monotonic() - last[0] > 60:
            flush()

    label_rows(
        potential,
        rows,
        relax_steps=args.relax_steps,
        fmax=args.fmax,
        pool=args.pool,
        distortions=args.distortions,
        frame_every=args.frame_every,
        engine=args.engine,
        seed=args.seed + k,
        deadline=deadline,
        on_result=on_result,
    )
    flush()


def _merge(tmp: Path, out: Path, max_bytes: int, prefix: str) -> list[Path]:
    parts = sorted(tmp.glob("w*.npz"))
    merged = StructureSet.concatenate([StructureSet.load(p) for p in parts])
    if not len(merged):
        return []
    # float32 structures: the labels are float64; a file per ~max_bytes of compressed arrays
    per_row = max(1, sum(p.stat().st_size for p in parts) // max(1, len(merged)))
    rows_per_file = max(1, int(max_bytes / per_row))
    written = []
    for n, start in enumerate(range(0, len(merged), rows_per_file)):
        chunk = merged.take(np.arange(start, min(len(merged), start + rows_per_file)))
        written.append(chunk.save(out / f"{prefix}-{n:02d}.npz", precision=np.float32))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m csp.potentials.relaxer", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("label", help="label a plan with a potential")
    p.add_argument("--plan", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--potential", choices=("chgnet", "sevennet"), default="chgnet")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--pool", type=int, default=256, help="structures relaxed in lock step per worker")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--relax-steps", type=int, default=40)
    p.add_argument("--fmax", type=float, default=0.05)
    p.add_argument(
        "--distortions", type=int, default=3, help="strained/perturbed copies per relaxed prototype"
    )
    p.add_argument(
        "--frame-every", type=int, default=0, help="keep every k-th intermediate relaxation frame (0: none)"
    )
    p.add_argument("--engine", choices=("batched", "ase"), default="batched", help="relaxation engine")
    p.add_argument(
        "--chgnet-graphs",
        choices=("device", "converter"),
        default="device",
        help="CHGNet's graphs for the batched engine: built on the device, or by CHGNet's converter",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit-s", type=float, default=540.0)
    p.add_argument("--skip", type=Path, nargs="*", default=[], help="labelled sets whose ids are done")
    p.add_argument("--skip-ids", type=Path, help="a text file of plan ids that are done, one per line")
    p.add_argument("--max-file-mb", type=float, default=14.0)
    p.add_argument("--prefix", default="labels")
    args = parser.parse_args(argv)

    t0 = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    plan = StructureSet.load(args.plan)
    done_ids: set[str] = set()
    for path in args.skip:
        done_ids.update(StructureSet.load(path).ids.tolist())
    if args.skip_ids is not None:
        done_ids.update(line.strip() for line in args.skip_ids.read_text().splitlines() if line.strip())
    todo = np.array([i for i, x in enumerate(plan.ids) if x not in done_ids], dtype=np.int64)
    # element references first (everything else needs them), then the evaluation rows, then the
    # single points of random structures (one call each: every composition is covered early), then the
    # rest in plan order (compositions by priority), round-robin over the workers
    kind = plan.kind[todo]
    rank = np.select([kind == "element", kind == "reference", kind == "random"], [0, 1, 2], 3)
    order = todo[np.argsort(rank, kind="stable")]
    shards = [order[k :: args.workers] for k in range(args.workers)]
    tmp = args.out / "_parts"
    tmp.mkdir(exist_ok=True)
    deadline_wall = t0 + args.time_limit_s
    if args.workers == 1:
        _worker(0, args, str(args.plan), shards[0], deadline_wall, str(tmp))
    else:
        ctx = mp.get_context("spawn")
        procs = [
            ctx.Process(target=_worker, args=(k, args, str(args.plan), shards[k], deadline_wall, str(tmp)))
            for k in range(args.workers)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(max(1.0, deadline_wall + 120 - time.time()))
            if proc.is_alive():
                proc.terminate()
    written = _merge(tmp, args.out, int(args.max_file_mb * 2**20), args.prefix)
    merged = StructureSet.concatenate([StructureSet.load(p) for p in written])
    for part in tmp.glob("*.npz"):
        part.unlink()
    tmp.rmdir()
    elapsed = time.time() - t0
    summary = {
        "plan_rows": len(plan),
        "skipped_done": int(len(plan) - len(todo)),
        "labelled_rows": len(merged),
        "labelled_plan_rows": len(set(merged.ids.tolist()) & set(plan.ids.tolist())),
        "compositions": len(set(merged.formula.tolist())),
        "by_kind": {k: int((merged.kind == k).sum()) for k in sorted(set(merged.kind.tolist()))},
        "by_relaxation": {
            k: int((merged.labels["relaxation"] == k).sum())
            for k in sorted(set(merged.labels.get("relaxation", np.array([])).tolist()))
        },
        "elapsed_s": round(elapsed, 1),
        "rows_per_s": round(len(merged) / max(elapsed, 1e-9), 1),
        "potential": args.potential,
        "device": args.device,
        "workers": args.workers,
        "relax_steps": args.relax_steps,
        "frame_every": args.frame_every,
        "engine": args.engine,
        "fmax": args.fmax,
        "files": [p.name for p in written],
        "cpu_count": os.cpu_count(),
    }
    (args.out / f"{args.prefix}-summary.json").write_text(json.dumps(summary, indent=2))
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
