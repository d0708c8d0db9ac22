"""CHGNet's crystal graphs built in torch on the batch's device, for a whole batch at once.

CHGNet (``chgnet`` 0.4.2, model 0.3.0) reads two graphs per structure, which its own
``CrystalGraphConverter`` builds on the CPU, one pymatgen structure at a time:

* the **atom graph**: every directed pair (centre ``i``, neighbour ``j`` in periodic image ``m``) with
  ``0 < |x_j + m L - x_i| <= atom_cutoff`` (6 A for CHGNet 0.3.0), the pairs of pymatgen's
  ``get_neighbor_list`` (an atom's own images included, only the zero-offset self left out). Each
  directed edge and its reverse (``j -> i`` in image ``-m``) form one undirected edge:
  ``directed2undirected`` maps a directed edge to its undirected one, ``undirected2directed`` an undirected
  edge to one of its two directed edges;
* the **bond graph**: the angles of CHGNet's three-body layers, every ordered pair ``(a, b)`` of distinct
  directed edges with the same centre atom, ``a`` at most and ``b`` less than ``bond_cutoff`` (3 A) long
  (CHGNet's own comparisons), as rows ``(centre, undirected a, directed a, undirected b, directed b)``.

This module builds the same graphs as a few tensor programs on any device (a CUDA GPU or the CPU): pair
differences, periodic images enumerated per crystal from its cell and the cutoff, distances, the pairing
of each directed edge with its reverse (a sorted search over integer keys) and the angle pairs. Edge and
angle order differ from CHGNet's converter; every CHGNet sum is order-free, so energies, forces and stresses
agree to float32 rounding (the parity test: ``tests/csp/potentials/test_chgnet_graphs.py``). A pair lying
within a rounding error (~1e-15 A) of a cutoff may fall on the other side of it than in pymatgen's
arithmetic; CHGNet's smooth cutoffs give such a pair zero weight, so no answer changes.

Two ways to use the graphs, both on CHGNet's own model code:

* :meth:`ChgnetGraphs.crystal_graphs`: CHGNet ``CrystalGraph`` objects, one per structure, for
  ``model(graphs, task="efs")`` (what the converter would give, up to edge order);
* :func:`energies_forces_stresses`: the batch assembled directly into CHGNet's ``BatchedGraph`` (the
  vectorised twin of ``BatchedGraph.from_graphs``, which loops over structures in Python), CHGNet's
  ``_compute`` and composition model, then one backward pass for forces and stress. This is the relaxer's
  hot path (:class:`csp.potentials.relaxer.CHGNetPotential`): nothing leaves the device but a few sizes.
  Its one departure from CHGNet: the stress of a left-handed cell is divided by the cell's volume, not by
  CHGNet's negative triple product (which flips its sign).

Shapes: B crystals, N atoms of the batch (atoms grouped by crystal), E directed edges, U = E / 2
undirected edges, A angles, M image offsets of a chunk. Lengths in Angstrom, energies in eV.

Host synchronisations per batch: the cells (B x 9 numbers, to choose the image ranges), and one size per
chunk and per step of the bond graph (``nonzero``); CHGNet's model adds its own (``torch.bincount``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from csp.models.device_graphs import DEFAULT_MAX_CANDIDATES, _chunks
from csp.models.graphs import _image_offsets, _interplanar_spacings
from csp.structures.validity import GeometryError

__all__ = [
    "ATOM_CUTOFF",
    "BOND_CUTOFF",
    "ChgnetGraphs",
    "batched_graph",
    "build_chgnet_graphs",
    "energies_forces_stresses",
]

#: CHGNet 0.3.0's atom-graph and bond-graph cutoffs, Angstrom (its checkpoint's, in chgnet 0.4.2; a loaded
#: model's ``graph_converter`` holds them, and :func:`energies_forces_stresses` checks the graphs against it).
ATOM_CUTOFF = 6.0
BOND_CUTOFF = 3.0
#: pymatgen's ``numerical_tol``: an atom's pair with itself closer than this is not an edge (A)
_SELF_TOLERANCE = 1e-8
_FLOAT = torch.float32  # CHGNet's dtype


@dataclass(frozen=True, slots=True)
class ChgnetGraphs:
    """CHGNet atom and bond graphs of B crystals, as tensors on one device (global indices).

    Every index is global to the batch: atoms count over all crystals (grouped by crystal, in input
    order), directed edges are grouped by centre atom, undirected edges numbered in the order of their
    first directed edge, so each crystal's atoms, edges, undirected edges and angles are contiguous.

    Attributes:
        lattices: (B, 3, 3) float64 cells, rows a, b, c, Angstrom.
        frac_coords: (N, 3) float64 fractional coordinates, wrapped into [0, 1) (the images refer to these).
        numbers: (N,) int64 atomic numbers.
        owner: (N,) int64 crystal of each atom.
        sizes: atoms per crystal (host).
        atom_graph: (E, 2) int64 (centre atom, neighbour atom).
        image: (E, 3) int64 lattice image of the neighbour: it sits at ``frac[j] + image``.
        distance: (E,) float64 edge lengths, Angstrom.
        directed2undirected: (E,) int64 undirected edge of each directed edge.
        undirected2directed: (U,) int64 one directed edge of each undirected edge.
        bond_graph: (A, 5) int64 rows (centre atom, undirected a, directed a, undirected b, directed b).
        atom_cutoff: the atom graph's cutoff, Angstrom.
        bond_cutoff: the bond graph's cutoff, Angstrom.
    """

    lattices: torch.Tensor
    frac_coords: torch.Tensor
    numbers: torch.Tensor
    owner: torch.Tensor
    sizes: tuple[int, ...]
    atom_graph: torch.Tensor
    image: torch.Tensor
    distance: torch.Tensor
    directed2undirected: torch.Tensor
    undirected2directed: torch.Tensor
    bond_graph: torch.Tensor
    atom_cutoff: float
    bond_cutoff: float

    @property
    def device(self) -> torch.device:
        return self.numbers.device

    def edge_counts(self) -> np.ndarray:
        """(B,) directed atom-graph edges per crystal (host)."""
        return self._per_crystal(self.owner[self.atom_graph[:, 0]])

    def angle_counts(self) -> np.ndarray:
        """(B,) bond-graph rows (angles) per crystal (host)."""
        return self._per_crystal(self.owner[self.bond_graph[:, 0]])

    def _per_crystal(self, crystal: torch.Tensor) -> np.ndarray:
        return torch.bincount(crystal, minlength=len(self.sizes)).cpu().numpy()

    def crystal_graphs(self, dtype: torch.dtype = _FLOAT) -> list[Any]:
        """CHGNet ``CrystalGraph`` objects, one per crystal in input order, on this device.

        Local indices and dtypes as CHGNet's converter writes them (int32 indices, float32 coordinates,
        lattice and images; the fractional coordinates and lattice require gradients), so
        ``model(graphs, task="efs")`` runs on them unchanged.

        Args:
            dtype: of the coordinates, lattice and images (float64 only for a model cast to float64).
        """
        from chgnet.graph.crystalgraph import CrystalGraph

        edges = np.concatenate([[0], np.cumsum(self.edge_counts())])
        angles = np.concatenate([[0], np.cumsum(self.angle_counts())])
        atoms = np.concatenate([[0], np.cumsum(self.sizes)])
        out = []
        for b in range(len(self.sizes)):
            a0, a1, e0, e1, u0 = atoms[b], atoms[b + 1], edges[b], edges[b + 1], edges[b] // 2
            u1 = edges[b + 1] // 2
            bond = self.bond_graph[angles[b] : angles[b + 1]]
            shift = torch.tensor([a0, u0, e0, u0, e0], device=self.device)
            out.append(
                CrystalGraph(
                    atomic_number=self.numbers[a0:a1].to(torch.int32),
                    atom_frac_coord=self.frac_coords[a0:a1].to(dtype).requires_grad_(True),
                    atom_graph=(self.atom_graph[e0:e1] - a0).to(torch.int32),
                    atom_graph_cutoff=self.atom_cutoff,
                    neighbor_image=self.image[e0:e1].to(dtype),
                    directed2undirected=(self.directed2undirected[e0:e1] - u0).to(torch.int32),
                    undirected2directed=(self.undirected2directed[u0:u1] - e0).to(torch.int32),
                    bond_graph=(bond - shift).to(torch.int32),
                    bond_graph_cutoff=self.bond_cutoff,
                    lattice=self.lattices[b].to(dtype).requires_grad_(True),
                )
            )
        return out


def build_chgnet_graphs(
    lattices: torch.Tensor,
    frac_coords: torch.Tensor,
    numbers: torch.Tensor,
    sizes: Sequence[int],
    *,
    atom_cutoff: float = ATOM_CUTOFF,
    bond_cutoff: float = BOND_CUTOFF,
    max_candidates: int | None = None,
) -> ChgnetGraphs:
    """CHGNet's atom and bond graphs of a batch, built on the device of ``lattices``.

    Periodic images are enumerated per crystal: along lattice axis c, offsets up to
    ``ceil(atom_cutoff / d_c - 1/2)`` with ``d_c`` the spacing of the lattice planes normal to the
    reciprocal vector c, which holds every neighbour within the cutoff once pair differences are wrapped
    into [-1/2, 1/2) (a tiny or skewed cell gets many images, a large one a single shell). Crystals of
    similar size and image count share one padded chunk of at most ``max_candidates`` (atom, neighbour
    image) pairs (:func:`csp.models.device_graphs._chunks`).

    Args:
        lattices: (B, 3, 3) cells, rows a, b, c, Angstrom (any float dtype; the work is float64).
        frac_coords: (N, 3) fractional coordinates, atoms grouped by crystal (wrapped into [0, 1) here).
        numbers: (N,) atomic numbers.
        sizes: atoms per crystal (B numbers, on the host), each at least 1.
        atom_cutoff: atom-graph cutoff, Angstrom (CHGNet 0.3.0: 6).
        bond_cutoff: bond-graph cutoff, Angstrom (CHGNet 0.3.0: 3).
        max_candidates: candidate pairs per chunk (default ``DEFAULT_MAX_CANDIDATES`` of the device type).

    Returns:
        The graphs (:class:`ChgnetGraphs`) on the device of ``lattices``.

    Raises:
        ValueError: shapes that disagree, NaN or infinite inputs, a singular cell, or an empty crystal.
        GeometryError: an atom without any neighbour within ``atom_cutoff`` (CHGNet's converter refuses
            the same structure: it cannot compute it); ``index`` is the earliest such crystal's position.
    """
    device = lattices.device
    sizes = tuple(int(n) for n in sizes)
    B, N = len(sizes), sum(sizes)
    if lattices.shape != (B, 3, 3) or frac_coords.shape != (N, 3) or numbers.shape != (N,):
        raise ValueError(
            f"Shapes disagree: lattices {tuple(lattices.shape)}, frac_coords {tuple(frac_coords.shape)}, "
            f"numbers {tuple(numbers.shape)} for {B} crystals of {N} atoms in all."
        )
    if B == 0 or min(sizes) < 1:
        raise ValueError("Every crystal needs at least one atom (and the batch at least one crystal).")
    lat = lattices.to(torch.float64)
    lat_h = lat.cpu().numpy()  # the one host copy of the cells: image ranges and chunks are host decisions
    if not np.isfinite(lat_h).all() or (np.abs(np.linalg.det(lat_h)) < 1e-6).any():
        raise ValueError("A cell is singular (zero volume) or holds NaN or infinity.")
    frac = torch.remainder(frac_coords.to(device, torch.float64), 1.0)
    if not bool(torch.isfinite(frac).all()):
        raise ValueError("Fractional coordinates contain NaN or infinity.")
    natoms = np.asarray(sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(natoms)[:-1]])
    start_d = torch.as_tensor(starts, device=device)
    nat_d = torch.as_tensor(natoms, device=device)
    cap = max_candidates or DEFAULT_MAX_CANDIDATES.get(device.type, DEFAULT_MAX_CANDIDATES["cpu"])
    spacing = _interplanar_spacings(lat_h)
    radius = np.full(B, float(atom_cutoff))

    parts = []
    base = 0
    for idx in _chunks(np.arange(B), natoms, radius, spacing, cap):
        axes = np.ceil(atom_cutoff / spacing[idx] - 0.5).astype(np.int64).clip(min=0).max(axis=0)
        centre, nbr, image, dist, rev = _radius_chunk(
            lat, frac, idx, start_d, nat_d, int(natoms[idx].max()), axes, float(atom_cutoff)
        )
        parts.append((centre, nbr, image, dist, rev + base))
        base += len(centre)
    centre, nbr, image, dist, rev = (torch.cat(p) for p in zip(*parts, strict=True))
    # edges grouped by centre atom (so by crystal, in input order); the reverse pointers follow
    centre, perm = torch.sort(centre, stable=True)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm), device=device)
    nbr, image, dist, rev = nbr[perm], image[perm], dist[perm], inverse[rev[perm]]

    owner = torch.repeat_interleave(torch.arange(B, device=device), nat_d, output_size=N)
    degree = torch.bincount(centre, minlength=N)
    isolated = degree == 0
    if bool(isolated.any()):
        _refuse_isolated(isolated, owner, numbers, starts, atom_cutoff)

    E = len(centre)
    positions = torch.arange(E, device=device)
    first = positions < rev  # the first directed edge of each undirected edge
    number = torch.cumsum(first, 0) - 1
    d2u = torch.where(first, number, number[rev])
    u2d = torch.zeros(E // 2 + 1, dtype=torch.int64, device=device)
    u2d.scatter_(0, torch.where(first, d2u, E // 2), positions)  # the extra slot takes the second edges
    bond_graph = _angles(centre, dist, d2u, N, float(bond_cutoff))
    return ChgnetGraphs(
        lattices=lat,
        frac_coords=frac,
        numbers=numbers.to(device, torch.int64),
        owner=owner,
        sizes=sizes,
        atom_graph=torch.stack([centre, nbr], dim=1),
        image=image,
        distance=dist,
        directed2undirected=d2u,
        undirected2directed=u2d[: E // 2],
        bond_graph=bond_graph,
        atom_cutoff=float(atom_cutoff),
        bond_cutoff=float(bond_cutoff),
    )


def _radius_chunk(
    lat: torch.Tensor,
    frac: torch.Tensor,
    idx: np.ndarray,
    start: torch.Tensor,
    natoms: torch.Tensor,
    n: int,
    axes: np.ndarray,
    cutoff: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Directed edges of the crystals ``idx`` (one padded chunk), images ``|m_c| <= axes[c]`` enumerated.

    Args:
        lat: (B, 3, 3) float64 cells; frac: (N, 3) float64 wrapped fractional coordinates (the batch's);
        idx: the chunk's crystals (host); start, natoms: (B,) first atom and atom count of every crystal;
        n: the chunk's largest crystal; axes: (3,) image range per axis; cutoff: Angstrom.

    Returns:
        Global centre atom (E_c,), global neighbour atom (E_c,), image (E_c, 3) int64, length (E_c,)
        float64, and the position of each edge's reverse among the chunk's edges (E_c,).
    """
    device = lat.device
    idx_d = torch.as_tensor(idx, device=device)
    local = torch.arange(n, device=device)
    real = local[None, :] < natoms[idx_d, None]  # (b, n)
    rows = torch.where(real, start[idx_d, None] + local[None, :], 0)
    f = frac[rows]  # (b, n, 3), padding rows repeat atom 0 and are masked out
    cell = lat[idx_d]
    offsets_h = _image_offsets(axes)  # (M, 3), x-major lexicographic
    zero = int(np.flatnonzero((offsets_h == 0).all(axis=1))[0])
    offsets = torch.as_tensor(offsets_h, dtype=torch.float64, device=device)
    # pair differences f_j - f_i wrapped into [-0.5, 0.5): the neighbour j in image `shift + m`
    diff = f[:, None, :, :] - f[:, :, None, :]  # (b, i, j, 3)
    shift = -torch.floor(diff + 0.5)
    cart = torch.matmul(diff + shift, cell[:, None])  # (b, i, j, 3)
    cart_off = torch.matmul(offsets, cell)  # (b, M, 3)
    d2 = sum(
        torch.square(cart[:, :, :, None, c] + cart_off[:, None, None, :, c]) for c in range(3)
    )  # (b, i, j, M)
    dist = torch.sqrt(d2)
    keep = (dist <= cutoff) & (real[:, :, None, None] & real[:, None, :, None])
    keep[:, local, local, zero] &= dist[:, local, local, zero] > _SELF_TOLERANCE
    bi, i, j, m = keep.nonzero(as_tuple=True)
    image = shift[bi, i, j].to(torch.int64) + offsets[m].to(torch.int64)
    edge_dist = dist[bi, i, j, m]
    # every edge's reverse (j -> i in image -image): integer keys sorted in nonzero's (b, i, j, m) order
    half = int(axes.max()) + 1  # |image_c| <= axes_c + 1
    width = 2 * half + 1
    packed = ((image[:, 0] + half) * width + image[:, 1] + half) * width + image[:, 2] + half
    flipped = ((half - image[:, 0]) * width + half - image[:, 1]) * width + half - image[:, 2]
    cube = width**3
    key = ((bi * n + i) * n + j) * cube + packed
    rev_key = ((bi * n + j) * n + i) * cube + flipped
    rev = torch.searchsorted(key, rev_key).clamp_(max=max(len(key) - 1, 0))
    found = key[rev] == rev_key if len(key) else torch.ones(0, dtype=torch.bool, device=device)
    if not bool(found.all()):
        # a pair exactly at the cutoff whose two directions rounded differently: CHGNet keeps pairs
        # only with both directions, so drop the lone one and search again
        bi, i, j, image, edge_dist, key, rev_key = (
            t[found] for t in (bi, i, j, image, edge_dist, key, rev_key)
        )
        rev = torch.searchsorted(key, rev_key)
    start_e = start[idx_d[bi]]
    return start_e + i, start_e + j, image, edge_dist, rev


def _angles(centre: torch.Tensor, dist: torch.Tensor, d2u: torch.Tensor, n_atoms: int, cutoff: float):
    """(A, 5) bond-graph rows: ordered pairs (a, b), a != b, of edges of one centre, ``|a| <= cutoff``
    and ``|b| < cutoff`` (CHGNet's comparisons); edges must be grouped by centre."""
    device = centre.device
    short = torch.nonzero(dist <= cutoff).flatten()  # (S,), grouped by centre
    c = centre[short]
    count = torch.bincount(c, minlength=n_atoms)
    first = torch.cumsum(count, 0) - count  # position in `short` of each atom's first short edge
    per_edge = count[c]  # partners (itself included) of each short edge
    total = int(per_edge.sum())
    a = torch.repeat_interleave(torch.arange(len(short), device=device), per_edge, output_size=total)
    within = torch.arange(total, device=device) - (torch.cumsum(per_edge, 0) - per_edge)[a]
    b = first[c[a]] + within
    ea, eb = short[a], short[b]
    keep = (a != b) & (dist[eb] < cutoff)
    ea, eb = ea[keep], eb[keep]
    return torch.stack([centre[ea], d2u[ea], ea, d2u[eb], eb], dim=1)


def _refuse_isolated(
    isolated: torch.Tensor, owner: torch.Tensor, numbers: torch.Tensor, starts: np.ndarray, cutoff: float
) -> None:
    """Raise the :class:`GeometryError` of the earliest crystal with an atom that has no neighbour."""
    atom = int(torch.nonzero(isolated)[0, 0])
    crystal = int(owner[atom])
    lonely = int(isolated[owner == crystal].sum())
    z = int(numbers[atom])
    raise GeometryError(
        f"{lonely} atom(s) (the first: atom {atom - int(starts[crystal])}, Z = {z}) have no neighbour within "
        f"{cutoff:g} A, CHGNet's atom-graph cutoff, and CHGNet cannot compute an isolated atom (its own "
        "converter refuses it too): a molecule or slab in vacuum, or a wrong lattice.",
        index=crystal,
    )


# ------------------------------------------------------------------------------------ CHGNet's model
def batched_graph(model: Any, graphs: ChgnetGraphs, strain: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """CHGNet's ``BatchedGraph`` of the whole batch, assembled without a loop over structures.

    The vectorised twin of ``chgnet.model.model.BatchedGraph.from_graphs``: the same float32 positions
    (``frac @ (lattice (1 + strain))``), neighbour offsets (``image @ lattice``), bond and angle bases from
    the model's own ``bond_basis_expansion`` and ``angle_basis_expansion`` and index tensors shifted to
    the batch. The offsets are passed to the bond encoder as Cartesian images with an identity lattice.

    Args:
        model: a loaded ``chgnet.model.CHGNet`` on the graphs' device.
        graphs: the batch's graphs.
        strain: (B, 3, 3) zeros that require gradients (the stress is the energy's gradient), of the
            model's dtype (float32; float64 for a model cast to float64).

    Returns:
        The ``BatchedGraph`` and the (N, 3) Cartesian positions it was built from, in the strain's dtype
        (the forces are minus the energy's gradient with respect to them).
    """
    from chgnet.model.model import BatchedGraph

    device, dtype = graphs.device, strain.dtype
    eye = torch.eye(3, dtype=dtype, device=device)
    lattice = graphs.lattices.to(dtype) @ (eye + strain)  # (B, 3, 3)
    volumes = (lattice[:, 0] * torch.linalg.cross(lattice[:, 1], lattice[:, 2])).sum(
        -1
    )  # signed, as CHGNet's
    owner = graphs.owner
    cart = torch.einsum("ni,nij->nj", graphs.frac_coords.to(dtype), lattice[owner])
    centre, nbr = graphs.atom_graph[:, 0], graphs.atom_graph[:, 1]
    offset = torch.einsum("ei,eij->ej", graphs.image.to(dtype), lattice[owner[centre]])
    bases_ag, bases_bg, bond_vectors = model.bond_basis_expansion(
        center=cart[centre],
        neighbor=cart[nbr],
        undirected2directed=graphs.undirected2directed,
        image=offset,
        lattice=eye,
    )
    rows = graphs.bond_graph
    if len(rows):
        angle_bases = model.angle_basis_expansion(bond_vectors[rows[:, 2]], bond_vectors[rows[:, 4]])
        bond_graph = rows[:, [0, 1, 3]]
    else:  # no angles in the whole batch: CHGNet's own empty placeholders
        angle_bases = torch.tensor([], dtype=dtype, device=device)
        bond_graph = torch.tensor([], device=device)
    batched = BatchedGraph(
        atomic_numbers=graphs.numbers.to(torch.int32),
        bond_bases_ag=bases_ag,
        bond_bases_bg=bases_bg,
        angle_bases=angle_bases,
        batched_atom_graph=graphs.atom_graph,
        batched_bond_graph=bond_graph,
        atom_owners=owner.to(torch.int32),
        directed2undirected=graphs.directed2undirected,
        atom_positions=[cart],
        strains=[strain],
        volumes=volumes,
    )
    return batched, cart


def energies_forces_stresses(
    model: Any, graphs: ChgnetGraphs, dtype: torch.dtype = _FLOAT
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CHGNet's energies, forces and stresses of a batch from its device-built graphs.

    CHGNet's own layers (``model._compute`` on :func:`batched_graph`) and composition model (its
    ``_get_energy`` on per-crystal element counts, as ``AtomRef`` assembles them), then one backward pass:
    forces ``-dE/dx`` and stress ``(1 / V) dE/d(strain)``, as CHGNet's ``forward(task="efs")`` computes them
    (without the double-backward graph it keeps for training), with one correction: ``V`` is the cell's
    volume, where CHGNet divides by the signed triple product, so that a left-handed cell (det < 0) gets
    the stress of its right-handed twin instead of its negative (chgnet 0.4.2 flips it: a relaxation of such
    a cell would be pushed the wrong way).

    Args:
        model: a loaded ``chgnet.model.CHGNet`` (eval mode) on the graphs' device.
        graphs: the batch's graphs, built with the model's cutoffs.
        dtype: the model's float dtype (CHGNet's float32; float64 only for a model cast with ``.double()``,
            as the parity test does to see past float32 rounding).

    Returns:
        Energies (B,) in eV per crystal (total, not per atom), forces (N, 3) in eV/A and stresses
        (B, 3, 3) in eV/A^3 (ASE's sign: CHGNet's GPa stress over 160.2), in ``dtype`` on the graphs' device.

    Raises:
        ValueError: graphs built with other cutoffs than the model's converter uses, or an element
            beyond the model's composition model (Z > 94).
    """
    converter = model.graph_converter
    if (graphs.atom_cutoff, graphs.bond_cutoff) != (converter.atom_graph_cutoff, converter.bond_graph_cutoff):
        raise ValueError(
            f"The graphs were built with cutoffs {graphs.atom_cutoff} / {graphs.bond_cutoff} A, the model "
            f"needs {converter.atom_graph_cutoff} / {converter.bond_graph_cutoff} A: rebuild them."
        )
    device = graphs.device
    B = len(graphs.sizes)
    sizes = torch.as_tensor(graphs.sizes, dtype=dtype, device=device)
    with torch.enable_grad():
        strain = torch.zeros((B, 3, 3), dtype=dtype, device=device, requires_grad=True)
        batched, cart = batched_graph(model, graphs, strain)
        energy = model._compute(batched)["e"]  # (B,) eV/atom when the model is intensive
        composition = model.composition_model
        if composition is not None:
            energy = energy + composition._get_energy(_composition_features(composition, graphs, dtype))
        total = energy * sizes if model.is_intensive else energy
        grad_x, grad_strain = torch.autograd.grad(total.sum(), [cart, strain])
    return total.detach(), -grad_x, grad_strain / batched.volumes.detach().abs()[:, None, None]


def _composition_features(composition: Any, graphs: ChgnetGraphs, dtype: torch.dtype) -> torch.Tensor:
    """(B, max_num_elements) element counts per crystal (over the atom count where the composition model is
    intensive), as CHGNet's ``AtomRef._assemble_graphs`` makes them one crystal at a time."""
    if not composition.fitted:
        raise ValueError("CHGNet's composition model is not fitted: load a pretrained CHGNet.")
    width = composition.max_num_elements
    z_max = int(graphs.numbers.max())
    if z_max > width or int(graphs.numbers.min()) < 1:
        raise ValueError(f"CHGNet knows elements 1 to {width}; the batch holds Z = {z_max}.")
    counts = torch.zeros((len(graphs.sizes), width), dtype=dtype, device=graphs.device)
    counts.index_put_(
        (graphs.owner, graphs.numbers - 1), torch.ones_like(graphs.owner, dtype=dtype), accumulate=True
    )
    if composition.is_intensive:
        counts = counts / torch.as_tensor(graphs.sizes, dtype=dtype, device=graphs.device)[:, None]
    return counts
