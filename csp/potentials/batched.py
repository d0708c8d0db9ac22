"""Batched, symmetry-kept relaxation: FIRE and a Frechet cell filter on a whole batch in one tensor program.

Every structure in the active pool is a slice of flat tensors (atoms grouped by structure), so one step of
the whole pool is a fixed number of tensor operations whatever its size, on the CPU or a GPU:

* **Degrees of freedom** (as ASE's ``FrechetCellFilter``): the positions in the starting cell
  ``z = x F^-T`` and the cell variables ``c = N log F``, where ``F`` is the deformation gradient
  (``cell = cell0 F^T``, row-vector cells) and ``N`` the structure's number of atoms.
* **Generalised forces**: ``f F`` on the atoms; on the cell ``D exp_{X^T}[virial F^-T] / N`` with
  ``X = c / N`` and ``virial = -V S`` (the exact gradient through the matrix exponential, the adjoint of
  its Frechet derivative, read off the upper-right block of ``exp([[X^T, M], [0, X^T]])``).
* **Symmetry** (as ASE's ``FixSymmetry``): each structure's spglib operations at ``symprec`` are found
  once, when it joins; every step its forces are averaged over the operations (``F_sym[p_k(i)] = mean_k
  R_k F[i]`` with ``p_k`` the atom permutation of operation ``k`` and ``R_k`` its Cartesian rotation) and
  its stress as ``mean_k R_k^T S R_k``. Symmetric forces and stress make symmetric FIRE steps.
* **FIRE** (Bitzek et al., Phys. Rev. Lett. 97, 170201 (2006)) with ASE's defaults and update order,
  per structure: ``dt``, ``alpha`` and the count of downhill steps are tensors of the batch; the step
  length cap (0.2) applies to each structure's whole generalised step.
* **Stops** per structure: ``fmax`` over atoms and cell rows, out of steps, non-finite output,
  collapse (two atoms, periodic images included, closer than ``collapse_ratio`` times their
  covalent-radius sum; images within one cell of the minimum image are searched), explosion (volume
  above ``explode_ratio`` times the start). A finished structure leaves the pool at once and a queued one
  joins (continuous batching).

The potential sits behind :class:`BatchedPotential`. The host sees one small array per step (which
structures stopped and why); structures are copied to the host only when they finish.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from csp.structures.crystal import Crystal

#: eV/A^3 per GPa.
GPA_TO_EV_PER_A3 = 1.0 / 160.21766208
#: FIRE parameters (ASE's defaults): start step, largest step, steps downhill before growing, growth,
#: shrink, start mixing, mixing decay, largest generalised step (A).
DT_START, DT_MAX, N_MIN, F_INC, F_DEC, A_START, F_A, MAX_STEP = 0.1, 1.0, 5, 1.1, 0.5, 0.1, 0.99, 0.2

_DTYPE = torch.float64
_IMAGES = torch.tensor([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=_DTYPE)


@dataclass(frozen=True)
class Batch:
    """Structures of different sizes as flat tensors, atoms grouped by structure in order.

    Attributes:
        positions: (n_atoms, 3) Cartesian positions, Angstrom.
        cell: (n_struct, 3, 3) cells, rows a, b, c, Angstrom.
        numbers: (n_atoms,) atomic numbers (int64).
        owner: (n_atoms,) the structure of each atom (int64, non-decreasing).
        sizes: atoms per structure, on the host.
    """

    positions: torch.Tensor
    cell: torch.Tensor
    numbers: torch.Tensor
    owner: torch.Tensor
    sizes: tuple[int, ...]

    def take(self, k: int) -> Batch:
        """The one-structure batch of structure ``k``."""
        return self.slice(k, k + 1)

    def slice(self, first: int, stop: int) -> Batch:
        """The batch of structures ``first`` to ``stop - 1`` (views of the tensors; owners counted from 0)."""
        start = sum(self.sizes[:first])
        end = start + sum(self.sizes[first:stop])
        return Batch(
            self.positions[start:end],
            self.cell[first:stop],
            self.numbers[start:end],
            self.owner[start:end] - first,
            self.sizes[first:stop],
        )


class BatchedPotential(Protocol):
    """A potential that evaluates a whole :class:`Batch` in one call."""

    name: str

    def energies_forces_stresses(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Energies (n_struct,) in eV (total, not per atom), forces (n_atoms, 3) in eV/A and stresses
        (n_struct, 3, 3) in eV/A^3 (ASE's sign: positive when the cell pulls inwards), on the batch's device."""
        ...


class EfsAdapter:
    """A :class:`BatchedPotential` over a potential with ``efs(crystals)`` (energies eV/atom, forces per
    structure, stresses GPa), e.g. :class:`csp.potentials.relaxer.SevenNetPotential`: the batch goes through
    the host each call."""

    def __init__(self, potential: Any) -> None:
        self.potential = potential
        self.name = potential.name

    def energies_forces_stresses(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        device = batch.positions.device
        crystals = batch_crystals(batch)
        energy, forces, stress = self.potential.efs(crystals)
        sizes = np.array(batch.sizes, dtype=np.float64)
        return (
            torch.as_tensor(np.asarray(energy, dtype=np.float64) * sizes, device=device),
            torch.as_tensor(np.concatenate(forces).astype(np.float64), device=device),
            torch.as_tensor(np.asarray(stress, dtype=np.float64) * GPA_TO_EV_PER_A3, device=device),
        )


def batch_crystals(batch: Batch) -> list[Crystal]:
    """The batch's structures as :class:`Crystal` (fractional coordinates wrapped into [0, 1))."""
    pos = batch.positions.detach().to("cpu", _DTYPE).numpy()
    cell = batch.cell.detach().to("cpu", _DTYPE).numpy()
    numbers = batch.numbers.detach().cpu().numpy()
    out, start = [], 0
    for k, n in enumerate(batch.sizes):
        frac = np.mod(np.linalg.solve(cell[k].T, pos[start : start + n].T).T, 1.0)
        out.append(Crystal(cell[k], numbers[start : start + n], frac))
        start += n
    return out


def as_batched(potential: Any) -> BatchedPotential:
    """``potential`` itself when it has ``energies_forces_stresses``, else an :class:`EfsAdapter`."""
    return potential if hasattr(potential, "energies_forces_stresses") else EfsAdapter(potential)


def symmetry_operations(crystal: Crystal, symprec: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The space-group operations of ``crystal`` as Cartesian rotations (k, 3, 3) (column convention,
    ``x' = R x``) and atom permutations (k, n) (operation ``k`` takes atom ``i`` to ``perm[k, i]``), from
    spglib at ``symprec`` (Angstrom); the identity alone when ``symprec`` is None or spglib finds nothing."""
    n = crystal.num_sites
    identity = (np.eye(3)[None], np.arange(n)[None])
    if symprec is None:
        return identity
    import spglib

    from csp.structures.symmetry import quiet_spglib

    lattice, frac = crystal.lattice, crystal.frac_coords
    try:
        with quiet_spglib():
            found = spglib.get_symmetry((lattice, frac, crystal.numbers), symprec=symprec)
    except spglib.SpglibError:  # atoms too close for spglib: relax without symmetry constraints
        found = None
    if not found:
        return identity
    rot = np.asarray(found["rotations"], dtype=np.float64)
    moved = np.einsum("kab,nb->kna", rot, frac) + np.asarray(found["translations"])[:, None, :]
    diff = moved[:, :, None, :] - frac[None, None, :, :]
    diff -= np.round(diff)
    perm = np.linalg.norm(diff @ lattice, axis=-1).argmin(axis=-1)
    # Cartesian x = L^T f (L rows a, b, c): R_cart = L^T R_frac L^-T
    cart = lattice.T @ rot @ np.linalg.inv(lattice.T)
    return cart, perm


def _segment_sum(values: torch.Tensor, owner: torch.Tensor, n: int) -> torch.Tensor:
    return torch.zeros((n, *values.shape[1:]), dtype=values.dtype, device=values.device).index_add_(
        0, owner, values
    )


def _segment_max(values: torch.Tensor, owner: torch.Tensor, n: int) -> torch.Tensor:
    out = torch.full((n,), -torch.inf, dtype=values.dtype, device=values.device)
    return out.scatter_reduce(0, owner, values, reduce="amax", include_self=True)


def _expm_adjoint_derivative(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``D exp_{X^T}[M]`` for (b, 3, 3) ``x`` and ``m``: the gradient with respect to ``X`` of
    ``<exp(X), G>`` contracted with ``M`` (Higham, Functions of Matrices, 2008, eq. 3.16's block form)."""
    block = torch.zeros((len(x), 6, 6), dtype=x.dtype, device=x.device)
    xt = x.transpose(1, 2)
    block[:, :3, :3] = xt
    block[:, 3:, 3:] = xt
    block[:, :3, 3:] = m
    return torch.linalg.matrix_exp(block)[:, :3, 3:]


#: State codes of the host's per-step array.
_RUNNING, _FAILED, _SINGLE, _COLLAPSED, _EXPLODED, _RELAXED, _OUT_OF_STEPS = range(7)


class _Pool:
    """The structures being relaxed: per-structure, per-atom, per-operation, per-mapped-atom and per-pair
    tensors, each row owned by one structure; structures leave and join between steps."""

    def __init__(self, device: torch.device, symprec: float | None, collapse: bool) -> None:
        self.device = device
        self.symprec = symprec
        self.collapse = collapse
        self.images = _IMAGES.to(device)
        self.jobs: list[Any] = []
        self.sizes: list[int] = []
        self.groups: dict[str, dict[str, torch.Tensor]] = {
            "struct": {},
            "atom": {},
            "op": {},
            "map": {},
            "pair": {},
        }

    def __len__(self) -> int:
        return len(self.jobs)

    # ------------------------------------------------------------------------------- join and leave
    def add(self, jobs: list[Any]) -> None:
        from csp.structures.elements import covalent_radius

        if not jobs:
            return
        new: dict[str, dict[str, list[np.ndarray]]] = {g: {} for g in self.groups}

        def put(group: str, **arrays: Any) -> None:
            for key, value in arrays.items():
                new[group].setdefault(key, []).append(np.asarray(value))

        base = len(self.jobs)
        for k, job in enumerate(jobs):
            c = job.crystal
            n = c.num_sites
            rot, perm = symmetry_operations(c, self.symprec if job.steps > 0 else None)
            owner = base + k
            put(
                "struct",
                cell0=c.lattice[None],
                cvar=np.zeros((1, 3, 3)),
                vcell=np.zeros((1, 3, 3)),
                dt=[DT_START],
                alpha=[A_START],
                downhill=[0],
                started=[False],
                taken=[0],
                steps=[job.steps],
                volume0=[c.volume],
                e0=[np.nan],
                f0=[np.nan],
                nops=[len(rot)],
            )
            put(
                "atom",
                z=c.cart_coords,
                v=np.zeros((n, 3)),
                numbers=c.numbers,
                radius=covalent_radius(c.numbers),
                owner=np.full(n, owner),
            )
            put("op", rot=rot, owner=np.full(len(rot), owner))
            if len(rot) > 1:
                ops = np.repeat(np.arange(len(rot)), n)
                put("map", src=np.tile(np.arange(n), len(rot)), dst=perm.reshape(-1), op=ops)
                put("map", owner=np.full(len(ops), owner))
            if self.collapse and job.steps > 0:
                i, j = np.triu_indices(n)
                put("pair", i=i, j=j, owner=np.full(len(i), owner))
            self.jobs.append(job)
            self.sizes.append(n)
        for group, arrays in new.items():
            for key, parts in arrays.items():
                value = np.concatenate(parts)
                dtype = (
                    _DTYPE
                    if value.dtype.kind == "f"
                    else (torch.bool if value.dtype.kind == "b" else torch.int64)
                )
                tensor = torch.as_tensor(value, dtype=dtype, device=self.device)
                old = self.groups[group].get(key)
                self.groups[group][key] = tensor if old is None else torch.cat([old, tensor])
        self._index()

    def remove(self, gone: list[int]) -> None:
        if not gone:
            return
        keep = torch.ones(len(self.jobs), dtype=torch.bool)
        keep[gone] = False
        remap = torch.cumsum(keep.long(), 0) - 1
        keep_d, remap_d = keep.to(self.device), remap.to(self.device)
        for name, group in self.groups.items():
            if not group:
                continue
            rows = keep_d if name == "struct" else keep_d[group["owner"]]
            for key in list(group):
                group[key] = group[key][rows]
            if name != "struct":
                group["owner"] = remap_d[group["owner"]]
        self.jobs = [j for j, k in zip(self.jobs, keep.tolist(), strict=True) if k]
        self.sizes = [s for s, k in zip(self.sizes, keep.tolist(), strict=True) if k]
        self._index()

    def _index(self) -> None:
        """Global indices (atoms and operations of the pool) from each row's local index and owner."""
        s, a = self.groups["struct"], self.groups["atom"]
        if not self.jobs:
            return
        counts = torch.as_tensor(self.sizes, dtype=torch.int64, device=self.device)
        atom_start = torch.cumsum(counts, 0) - counts
        op_start = torch.cumsum(s["nops"], 0) - s["nops"]
        self.n_atoms = torch.as_tensor(self.sizes, dtype=_DTYPE, device=self.device)
        self.owner = a["owner"]
        m = self.groups["map"]
        self.symmetric = bool(m) and len(m["owner"]) > 0
        if self.symmetric:
            self.map_src = atom_start[m["owner"]] + m["src"]
            self.map_dst = atom_start[m["owner"]] + m["dst"]
            self.map_op = op_start[m["owner"]] + m["op"]
        p = self.groups["pair"]
        self.has_pairs = bool(p) and len(p["owner"]) > 0
        if self.has_pairs:
            self.pair_i = atom_start[p["owner"]] + p["i"]
            self.pair_j = atom_start[p["owner"]] + p["j"]

    # --------------------------------------------------------------------------------------- geometry
    def geometry(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Deformation gradients (b, 3, 3), cells (b, 3, 3) and Cartesian positions (n, 3)."""
        s, a = self.groups["struct"], self.groups["atom"]
        deform = torch.linalg.matrix_exp(s["cvar"] / self.n_atoms[:, None, None])
        cell = s["cell0"] @ deform.transpose(1, 2)
        pos = torch.einsum("ni,nji->nj", a["z"], deform[self.owner])
        return deform, cell, pos

    def batch(self, cell: torch.Tensor, pos: torch.Tensor) -> Batch:
        return Batch(pos, cell, self.groups["atom"]["numbers"], self.owner, tuple(self.sizes))

    def frac(self) -> torch.Tensor:
        # x = z F^T and cell = cell0 F^T, so f = x cell^-1 = z cell0^-1
        inv0 = torch.linalg.inv(self.groups["struct"]["cell0"])
        return torch.einsum("ni,nij->nj", self.groups["atom"]["z"], inv0[self.owner])

    # --------------------------------------------------------------------------------------- symmetry
    def symmetrise(self, forces: torch.Tensor, stress: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.symmetric:
            return forces, stress
        s, op = self.groups["struct"], self.groups["op"]
        nops = s["nops"].to(_DTYPE)
        rotated = torch.einsum("mij,mj->mi", op["rot"][self.map_op], forces[self.map_src])
        # atoms of structures with the identity only have no map rows: keep their forces
        lone = (s["nops"] == 1)[self.owner]
        sym_f = _segment_sum(rotated, self.map_dst, len(forces)) / nops[self.owner][:, None]
        forces = torch.where(lone[:, None], forces, sym_f)
        rot = op["rot"]
        turned = rot.transpose(1, 2) @ stress[op["owner"]] @ rot
        stress = _segment_sum(turned, op["owner"], len(stress)) / nops[:, None, None]
        return forces, stress

    # ---------------------------------------------------------------------------------------- checks
    def collapsed(self, ratio: float, cell: torch.Tensor) -> torch.Tensor:
        """Per structure: two atoms (periodic images included) closer than ``ratio`` x radius sum."""
        if not self.has_pairs:
            return torch.zeros(len(self.jobs), dtype=torch.bool, device=self.device)
        frac = self.frac()
        a = self.groups["atom"]
        d = frac[self.pair_j] - frac[self.pair_i]
        d = d - torch.round(d)
        images = self.images
        shifted = d[:, None, :] + images[None]  # (pairs, 27, 3)
        owner = self.groups["pair"]["owner"]
        dist = torch.linalg.norm(torch.einsum("pki,pij->pkj", shifted, cell[owner]), dim=-1)
        same = (self.pair_i == self.pair_j)[:, None] & (images.abs().sum(1) == 0)[None]
        dist = torch.where(same, torch.inf, dist).amin(dim=1)
        close = dist < ratio * (a["radius"][self.pair_i] + a["radius"][self.pair_j])
        return _segment_sum(close.to(_DTYPE), owner, len(self.jobs)) > 0

    # ----------------------------------------------------------------------------------------- FIRE
    def fire_step(self, g_atom: torch.Tensor, g_cell: torch.Tensor) -> None:
        s, a = self.groups["struct"], self.groups["atom"]
        b, owner = len(self.jobs), self.owner

        def total(per_atom: torch.Tensor, per_cell: torch.Tensor) -> torch.Tensor:
            return _segment_sum(per_atom.sum(1), owner, b) + per_cell.sum((1, 2))

        v, vc = a["v"], s["vcell"]
        vf = total(g_atom * v, g_cell * vc)
        g2 = total(g_atom * g_atom, g_cell * g_cell)
        v2 = total(v * v, vc * vc)
        up = s["started"] & (vf > 0)
        down = s["started"] & ~(vf > 0)
        mix = s["alpha"] * torch.sqrt(v2) / torch.sqrt(g2).clamp_min(1e-300)
        v = torch.where(up[owner, None], (1 - s["alpha"])[owner, None] * v + mix[owner, None] * g_atom, v)
        vc = torch.where(
            up[:, None, None], (1 - s["alpha"])[:, None, None] * vc + mix[:, None, None] * g_cell, vc
        )
        v = torch.where(down[owner, None], torch.zeros_like(v), v)
        vc = torch.where(down[:, None, None], torch.zeros_like(vc), vc)
        grow = up & (s["downhill"] > N_MIN)
        dt = torch.where(grow, torch.clamp(s["dt"] * F_INC, max=DT_MAX), s["dt"])
        alpha = torch.where(grow, s["alpha"] * F_A, s["alpha"])
        s["downhill"] = torch.where(up, s["downhill"] + 1, torch.where(down, 0, s["downhill"]))
        s["alpha"] = torch.where(down, torch.full_like(alpha, A_START), alpha)
        s["dt"] = dt = torch.where(down, dt * F_DEC, dt)
        s["started"] = torch.ones_like(s["started"])
        v = v + dt[owner, None] * g_atom
        vc = vc + dt[:, None, None] * g_cell
        a["v"], s["vcell"] = v, vc
        dr, drc = dt[owner, None] * v, dt[:, None, None] * vc
        length = torch.sqrt(total(dr * dr, drc * drc))
        scale = torch.clamp(MAX_STEP / length, max=1.0)
        a["z"] = a["z"] + scale[owner, None] * dr
        s["cvar"] = s["cvar"] + scale[:, None, None] * drc
        s["taken"] = s["taken"] + 1


def _evaluate(potential: BatchedPotential, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The potential on the batch; if the batched call fails, structure by structure (NaN where one fails)."""
    try:
        e, f, s = potential.energies_forces_stresses(batch)
        return e.to(_DTYPE), f.to(_DTYPE), s.to(_DTYPE)
    except Exception:  # noqa: BLE001 - one bad structure must not sink the batch: evaluate one by one
        dev = batch.positions.device
        es, fs, ss = [], [], []
        for k, n in enumerate(batch.sizes):
            try:
                e, f, s = potential.energies_forces_stresses(batch.take(k))
                es.append(e.to(_DTYPE)), fs.append(f.to(_DTYPE)), ss.append(s.to(_DTYPE))
            except Exception:  # noqa: BLE001 - the structure is recorded as failed
                es.append(torch.full((1,), torch.nan, dtype=_DTYPE, device=dev))
                fs.append(torch.full((n, 3), torch.nan, dtype=_DTYPE, device=dev))
                ss.append(torch.full((1, 3, 3), torch.nan, dtype=_DTYPE, device=dev))
        return torch.cat(es), torch.cat(fs), torch.cat(ss)


def relax_batched(
    potential: Any,
    jobs: Iterable[Any],
    *,
    fmax: float = 0.05,
    pool: int = 256,
    symprec: float | None = None,
    collapse_ratio: float | None = None,
    explode_ratio: float | None = None,
    deadline: float | None = None,
    on_result: Callable[[Any], Iterable[Any] | None] | None = None,
    on_frame: Callable[[Any, Crystal, float, float, int], None] | None = None,
    frame_every: int = 0,
    device: str | torch.device | None = None,
    step_hook: Callable[[float, float], None] | None = None,
    feed: Callable[[int], Iterable[Any]] | None = None,
) -> list[Any]:
    """Relax (FIRE over Frechet cell variables, the whole pool in one tensor program) or single-point a
    stream of :class:`csp.potentials.relaxer.RelaxJob`; the arguments and results are those of
    :func:`csp.potentials.relaxer.relax`.

    Args:
        potential: a :class:`BatchedPotential`, or a potential with ``efs`` (wrapped by :class:`EfsAdapter`).
        jobs: the jobs; ``on_result(item)`` may return more, which join the pool as places free up.
        fmax: convergence threshold on the largest generalised force (atoms and cell rows), eV/A.
        pool: most structures relaxed at once.
        symprec: spglib tolerance (Angstrom) of the kept symmetry; None relaxes without symmetry.
        collapse_ratio: stop as ``collapsed`` below this fraction of a pair's covalent-radius sum (None: off).
        explode_ratio: stop as ``exploded`` above this multiple of the start volume (None: off).
        deadline: ``time.monotonic()`` after which no job joins and running ones end ``partially_relaxed``.
        on_frame: called as ``on_frame(job, crystal, energy eV/atom, fmax eV/A, step)`` for every
            ``frame_every``-th intermediate frame of a running relaxation.
        frame_every: the frame interval (0: no frames).
        device: where the pool's tensors live (default the potential's ``device`` attribute, else CPU).
        step_hook: called after each step with (seconds in the potential, seconds in the whole step).
        feed: called before each step as ``feed(room)`` with the number of free places (pool minus active
            and queued jobs); the jobs it returns join the queue, so a caller can add work while the pool
            runs (the relaxation server, :mod:`csp.potentials.relax_server`). The run ends when the queue
            and the pool are empty.

    A job with a ``deadline`` attribute (``time.monotonic()``, or None) ends ``partially_relaxed`` at its
    own deadline, as the whole pool does at ``deadline``.

    Returns:
        The finished jobs as :class:`csp.potentials.relaxer.Relaxed`, in the order they finished.
    """
    from csp.potentials.relaxer import Relaxed

    model = as_batched(potential)
    dev = torch.device(device if device is not None else getattr(potential, "device", "cpu"))
    queue = deque(jobs)
    done: list[Relaxed] = []
    active = _Pool(dev, symprec, collapse_ratio is not None)

    while True:
        if feed is not None:
            queue.extend(feed(max(0, pool - len(active) - len(queue))))
        if not (queue or len(active)):
            break
        out_of_time = deadline is not None and time.monotonic() > deadline
        if not out_of_time and queue and len(active) < pool:
            joining = []
            while queue and len(active) + len(joining) < pool:
                joining.append(queue.popleft())
            active.add(joining)
        if not len(active):
            break
        t0 = _clock(dev, step_hook is not None)
        deform, cell, pos = active.geometry()
        batch = active.batch(cell, pos)
        t1 = _clock(dev, step_hook is not None)
        energy, forces, stress = _evaluate(model, batch)
        t2 = _clock(dev, step_hook is not None)
        s, owner, b = active.groups["struct"], active.owner, len(active)
        finite = torch.isfinite(energy) & (
            _segment_sum((~torch.isfinite(forces)).any(1).to(_DTYPE), owner, b) == 0
        )
        finite = finite & torch.isfinite(stress).all(2).all(1)
        forces = torch.nan_to_num(forces)
        stress = torch.nan_to_num(stress)
        plain_fmax = torch.sqrt(_segment_max((forces * forces).sum(1), owner, b))
        forces, stress = active.symmetrise(forces, stress)
        # generalised forces: f F on the atoms, the exact log-deformation gradient on the cell
        n = active.n_atoms[:, None, None]
        volume = torch.abs(torch.linalg.det(cell))
        virial = -volume[:, None, None] * stress
        g_atom = torch.einsum("ni,nij->nj", forces, deform[owner])
        g_cell = (
            _expm_adjoint_derivative(s["cvar"] / n, virial @ torch.linalg.inv(deform).transpose(1, 2)) / n
        )
        gen_fmax = torch.sqrt(
            torch.maximum(_segment_max((g_atom * g_atom).sum(1), owner, b), (g_cell * g_cell).sum(2).amax(1))
        )
        single = s["steps"] == 0
        fm = torch.where(single, plain_fmax, gen_fmax)
        e_atom = energy / active.n_atoms
        first = s["taken"] == 0
        s["e0"] = torch.where(first, e_atom, s["e0"])
        s["f0"] = torch.where(first, torch.where(finite, fm, torch.nan), s["f0"])
        code = torch.full((b,), _RUNNING, dtype=torch.int64, device=dev)
        code = torch.where((s["taken"] >= s["steps"]) & ~single, _OUT_OF_STEPS, code)
        code = torch.where(fm < fmax, _RELAXED, code)
        if explode_ratio is not None:
            code = torch.where(volume > explode_ratio * s["volume0"], _EXPLODED, code)
        if collapse_ratio is not None:
            code = torch.where(active.collapsed(collapse_ratio, cell) & ~first, _COLLAPSED, code)
        code = torch.where(single, _SINGLE, code)
        code = torch.where(finite, code, _FAILED)
        report = (
            torch.stack([code.to(_DTYPE), e_atom, fm, s["e0"], s["f0"], s["taken"].to(_DTYPE)], 1)
            .cpu()
            .numpy()
        )
        if out_of_time:
            report[report[:, 0] == _RUNNING, 0] = _OUT_OF_STEPS
        own = [getattr(job, "deadline", None) for job in active.jobs]
        if any(d is not None for d in own):
            now = time.monotonic()
            late = [k for k, d in enumerate(own) if d is not None and now > d and report[k, 0] == _RUNNING]
            report[late, 0] = _OUT_OF_STEPS
        gone = [k for k in range(b) if report[k, 0] != _RUNNING]
        framed = []
        if on_frame is not None and frame_every > 0:
            framed = [
                k for k in range(b)
                if report[k, 0] == _RUNNING and report[k, 5] > 0 and int(report[k, 5]) % frame_every == 0
            ]  # fmt: skip
        # one copy to the host for the frames and the finished structures of this step
        host = (
            dict(zip(framed + gone, _crystals(active, framed + gone), strict=True)) if framed or gone else {}
        )
        for k in framed:
            on_frame(active.jobs[k], host[k], float(report[k, 1]), float(report[k, 2]), int(report[k, 5]))
        if gone:
            for k in gone:
                crystal = host[k]
                state = int(report[k, 0])
                e, f, e0, f0, taken = (float(x) for x in report[k, 1:])
                job = active.jobs[k]
                if state == _FAILED:
                    item = Relaxed(job, crystal, float("nan"), e0, float("nan"), f0, int(taken), "failed")
                elif state == _SINGLE:
                    item = Relaxed(job, crystal, e, e, f, f, 0, "unrelaxed")
                else:
                    name = {
                        _COLLAPSED: "collapsed",
                        _EXPLODED: "exploded",
                        _RELAXED: "relaxed",
                        _OUT_OF_STEPS: "partially_relaxed",
                    }[state]
                    item = Relaxed(job, crystal, e, e0, f, f0, int(taken), name)
                done.append(item)
                if on_result is not None:
                    queue.extend(on_result(item) or ())
            keep = torch.ones(b, dtype=torch.bool, device=dev)
            keep[gone] = False
            g_atom, g_cell = g_atom[keep[owner]], g_cell[keep]
            active.remove(gone)
        if len(active):
            active.fire_step(g_atom, g_cell)
        if step_hook is not None:
            t3 = _clock(dev, True)
            step_hook(t2 - t1, t3 - t0)
        if out_of_time and not len(active):
            break
    return done


def _clock(device: torch.device, timed: bool) -> float:
    """``time.perf_counter()``, after the device's queued work when timing is asked for."""
    if timed and device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _crystals(active: _Pool, ks: list[int]) -> list[Crystal]:
    """The current structures ``ks`` of the pool, on the host (fractional coordinates wrapped)."""
    _deform, cell, _pos = active.geometry()
    frac = torch.remainder(active.frac(), 1.0).cpu().numpy()
    cell = cell.cpu().numpy()
    numbers = active.groups["atom"]["numbers"].cpu().numpy()
    starts = np.concatenate([[0], np.cumsum(active.sizes)])
    return [Crystal(cell[k], numbers[starts[k] : starts[k + 1]], frac[starts[k] : starts[k + 1]]) for k in ks]
