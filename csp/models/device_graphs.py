"""The fixed-degree crystal graphs of :mod:`csp.models.graphs`, built in torch on any device for a whole batch.

The same graphs, by the same rules, as the numpy builder: every atom gets exactly ``k`` bonds to its ``k``
nearest periodic neighbours (images of every atom, itself included, except the zero-offset self), ordered by
the module's tie rule (distance rounded to ``TIE_TOLERANCE``, then the bond vector's x, y, z rounded
likewise, packed into one int64 key); periodic images are enumerated adaptively until they provably hold
the k nearest plus the tie tolerance; the same distance rule and k-th-neighbour limit refuse the same
crystals (:class:`csp.structures.validity.GeometryError`). What differs is where the work runs: the pair
differences, image offsets, distances, keys, top-k selection and bond-length checks of a batch run as a few
tensor programs on ``device`` (a CUDA GPU, or the CPU), so the graphs of the torch scorer
(:mod:`csp.models.torch_scoring`) never leave the GPU before the model reads them.

Shapes (B crystals, n atoms of a crystal, N atoms of the batch, k bonds per atom, M image offsets):

* positions are float64 throughout the search (as in numpy), bond vectors are returned as float32;
* crystals of different sizes share one padded chunk (atoms beyond a crystal's ``n`` are masked out), so
  a batch of 8- to 32-atom cells costs a few chunks, not one pass per size;
* a chunk holds at most ``max_candidates`` (atom, neighbour image) pairs: B_chunk * n_pad^2 * M.

Equality with numpy. The selection is exact integer arithmetic on keys made from float64 values computed in
the same order (difference, wrap into [-0.5, 0.5), Cartesian product, offset sum); a candidate can only be
ordered differently where a float64 distance or component lies within one unit in the last place of a
rounding boundary of the 1e-3 A grid, which never happens in the structures of the tests. The bond
vectors agree to float32 rounding. The bond angles of the line graph are not stored (as in numpy): the
line-graph partners of bond (i, a) are the other ``k - 1`` bonds of atom i, and :func:`angle_cosines`
gives their cosines on the device (the model computes the same inside its forward pass).

When several crystals of a batch break the distance rule or the k-th-neighbour limit, the error names the
one earliest in the batch (the numpy builder names the first it meets in its own processing order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from csp.models.graphs import (
    _KEY_EXACT_LIMIT,
    K_NEIGHBOURS,
    TIE_TOLERANCE,
    CrystalGraphs,
    _image_offsets,
    _interplanar_spacings,
    _name,
    line_graph_partners,
)
from csp.structures.crystal import Crystal
from csp.structures.validity import (
    DISTANCE_TOLERANCE_ANGSTROM,
    MAX_KTH_NEIGHBOUR_ANGSTROM,
    GeometryError,
    distance_limits,
    too_close_reason,
)

__all__ = [
    "DEFAULT_MAX_CANDIDATES",
    "DeviceGraphs",
    "angle_cosines",
    "build_device_graphs",
    "build_device_graphs_same_species",
]

#: candidate (atom, neighbour image) pairs per chunk by device type, ~60 bytes each at the peak (three
#: float64 coordinate planes, the distances and their temporaries): 1 M (~60 MB) on a CPU, where smaller
#: arrays are reused by the allocator instead of mapped afresh, and 32 M (~2 GB) on a GPU, where a batch of
#: 1,024 cells of 8 to 32 atoms is one or two chunks
DEFAULT_MAX_CANDIDATES = {"cpu": 1_000_000, "cuda": 32_000_000}
_NO_BOND = torch.iinfo(torch.int64).max


@dataclass(frozen=True, slots=True)
class DeviceGraphs:
    """A batch of fixed-degree crystal graphs held as torch tensors on one device (atoms concatenated).

    The torch twin of :class:`csp.models.graphs.CrystalGraphs`, field for field.

    Attributes:
        numbers: (N,) int64 atomic numbers.
        neighbours: (N, k) int64 global index of each bond's end atom (into ``numbers``).
        bond_vectors: (N, k, 3) float32 Cartesian vector from the atom to the neighbour image, Angstrom.
        crystal_index: (N,) int64 crystal of each atom, 0..B-1, non-decreasing.
        natoms: (B,) int64 atoms per crystal.
    """

    numbers: torch.Tensor
    neighbours: torch.Tensor
    bond_vectors: torch.Tensor
    crystal_index: torch.Tensor
    natoms: torch.Tensor

    @property
    def num_crystals(self) -> int:
        return int(self.natoms.shape[0])

    @property
    def k(self) -> int:
        return int(self.neighbours.shape[1])

    @property
    def device(self) -> torch.device:
        return self.numbers.device

    def inputs(self) -> tuple[torch.Tensor, ...]:
        """The five model inputs, in the order of ``csp.models.onnx_export.INPUT_NAMES``."""
        return (self.numbers, self.neighbours, self.bond_vectors, self.crystal_index, self.natoms)

    def to(self, device: torch.device | str) -> DeviceGraphs:
        """The same graphs on ``device``."""
        return DeviceGraphs(*(t.to(device) for t in self.inputs()))

    def numpy(self) -> CrystalGraphs:
        """The same graphs as numpy arrays (:class:`csp.models.graphs.CrystalGraphs`)."""
        return CrystalGraphs(*(t.cpu().numpy() for t in self.inputs()))

    @classmethod
    def from_numpy(cls, graphs: CrystalGraphs, device: torch.device | str = "cpu") -> DeviceGraphs:
        """Numpy graphs moved to ``device``."""
        return cls(
            torch.as_tensor(graphs.numbers, dtype=torch.int64, device=device),
            torch.as_tensor(graphs.neighbours, dtype=torch.int64, device=device),
            torch.as_tensor(graphs.bond_vectors, dtype=torch.float32, device=device),
            torch.as_tensor(graphs.crystal_index, dtype=torch.int64, device=device),
            torch.as_tensor(graphs.natoms, dtype=torch.int64, device=device),
        )


def angle_cosines(bond_vectors: torch.Tensor) -> torch.Tensor:
    """(N, k, k - 1) cosines of the angle at atom i between bond a and each partner bond b != a.

    The line graph of these graphs joins bond (i, a) to the other bonds (i, b) of the same atom; this is the
    device twin of :func:`csp.models.graphs.angle_cosines` (same partner order, computed in the input's
    dtype on its device).

    Args:
        bond_vectors: (N, k, 3) bond vectors, Angstrom (any float dtype, any device).
    """
    k = bond_vectors.shape[1]
    unit = bond_vectors / torch.linalg.vector_norm(bond_vectors, dim=-1, keepdim=True)
    cos = torch.matmul(unit, unit.transpose(1, 2))  # (N, k, k)
    partners = torch.as_tensor(line_graph_partners(k), device=bond_vectors.device)
    return torch.gather(cos, 2, partners.expand(cos.shape[0], k, k - 1))


@lru_cache(maxsize=8)
def _limit_table(device: torch.device) -> torch.Tensor:
    """(119, 119) float64 shortest allowed distances (Angstrom) of every pair of atomic numbers."""
    return torch.as_tensor(distance_limits(np.arange(119)), dtype=torch.float64, device=device)


def _pack(crystals: Sequence[Crystal]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lattices (B, 3, 3), zero-padded fractional coordinates (B, n_max, 3) and numbers (B, n_max), natoms."""
    natoms = np.array([c.num_sites for c in crystals], dtype=np.int64)
    n_max = int(natoms.max())
    frac = np.zeros((len(crystals), n_max, 3))
    numbers = np.zeros((len(crystals), n_max), dtype=np.int64)
    for b, crystal in enumerate(crystals):
        frac[b, : natoms[b]] = crystal.frac_coords
        numbers[b, : natoms[b]] = crystal.numbers
    return np.stack([c.lattice for c in crystals]), frac, numbers, natoms


def _empty(k: int, device: torch.device) -> DeviceGraphs:
    long = {"dtype": torch.int64, "device": device}
    return DeviceGraphs(
        torch.zeros(0, **long),
        torch.zeros((0, k), **long),
        torch.zeros((0, k, 3), dtype=torch.float32, device=device),
        torch.zeros(0, **long),
        torch.zeros(0, **long),
    )


def build_device_graphs(
    crystals: Sequence[Crystal],
    k: int = K_NEIGHBOURS,
    *,
    device: torch.device | str = "cpu",
    max_candidates: int | None = None,
) -> DeviceGraphs:
    """Graphs for any crystals (any mix of sizes), built on ``device``; equal to :func:`csp.models.graphs.build_graphs`.

    Args:
        crystals: the crystals.
        k: neighbours per atom.
        device: torch device of the work and of the returned tensors ("cuda", "cuda:1", "cpu").
        max_candidates: (atom, neighbour image) pairs per chunk (default :data:`DEFAULT_MAX_CANDIDATES`).

    Returns:
        The batched graphs, crystals in input order (no crystals give empty tensors).

    Raises:
        GeometryError: a bond shorter than the distance rule of :func:`csp.structures.validity.distance_limits`,
            or a k-th neighbour beyond ``MAX_KTH_NEIGHBOUR_ANGSTROM``; ``index`` is the position in
            ``crystals`` of the earliest such crystal.
    """
    device = torch.device(device)
    if len(crystals) == 0:
        return _empty(k, device)
    lattices, frac, numbers, natoms = _pack(crystals)
    return _build(lattices, frac, numbers, natoms, k, device, max_candidates)


def build_device_graphs_same_species(
    lattices: np.ndarray,
    frac_coords: np.ndarray,
    numbers: np.ndarray,
    k: int = K_NEIGHBOURS,
    *,
    device: torch.device | str = "cpu",
    max_candidates: int | None = None,
) -> DeviceGraphs:
    """Graphs for B crystals sharing one species list (the search's inner loop), built on ``device``.

    Equal to :func:`csp.models.graphs.build_graphs_same_species`.

    Args:
        lattices: (B, 3, 3) row lattice vectors, Angstrom.
        frac_coords: (B, n, 3) fractional coordinates.
        numbers: (n,) atomic numbers, the same for every crystal.
        k: neighbours per atom.
        device: torch device of the work and of the returned tensors.
        max_candidates: (atom, neighbour image) pairs per chunk (default :data:`DEFAULT_MAX_CANDIDATES`).

    Raises:
        ValueError: NaN or infinite inputs, or a singular lattice.
        GeometryError: see :func:`build_device_graphs`; ``index`` is the position in the batch.
    """
    device = torch.device(device)
    lattices = np.asarray(lattices, dtype=np.float64).reshape(-1, 3, 3)
    numbers = np.asarray(numbers, dtype=np.int64).reshape(-1)
    B, n = len(lattices), len(numbers)
    if B == 0:
        return _empty(k, device)
    frac = np.asarray(frac_coords, dtype=np.float64).reshape(B, n, 3)
    natoms = np.full(B, n, dtype=np.int64)
    return _build(lattices, frac, np.broadcast_to(numbers, (B, n)), natoms, k, device, max_candidates)


def _build(
    lattices: np.ndarray,
    frac: np.ndarray,
    numbers: np.ndarray,
    natoms: np.ndarray,
    k: int,
    device: torch.device,
    max_candidates: int | None,
) -> DeviceGraphs:
    """Graphs of B padded crystals: lattices (B, 3, 3), frac (B, n_max, 3), numbers (B, n_max), natoms (B,)."""
    if not (np.isfinite(lattices).all() and np.isfinite(frac).all()):
        raise ValueError("Lattices or fractional coordinates contain NaN or infinity.")
    volume = np.abs(np.linalg.det(lattices))
    if (volume < 1e-6).any():
        raise ValueError("A lattice is singular (zero volume).")
    cap = max_candidates or DEFAULT_MAX_CANDIDATES.get(device.type, DEFAULT_MAX_CANDIDATES["cpu"])
    B = len(lattices)
    starts = np.concatenate([[0], np.cumsum(natoms)[:-1]])
    N = int(natoms.sum())
    lat_d = torch.as_tensor(lattices, dtype=torch.float64, device=device)
    frac_d = torch.as_tensor(frac, dtype=torch.float64, device=device)
    num_d = torch.as_tensor(np.ascontiguousarray(numbers), dtype=torch.int64, device=device)
    nat_d = torch.as_tensor(natoms, device=device)
    start_d = torch.as_tensor(starts, device=device)
    nbr_out = torch.empty((N, k), dtype=torch.int64, device=device)
    vec_out = torch.empty((N, k, 3), dtype=torch.float32, device=device)

    spacing = _interplanar_spacings(lattices)  # (B, 3), Angstrom
    # a sphere holding ~ (k + 2) atoms at the mean density, padded: usually right at the first try
    radius = 1.2 * np.cbrt(3.0 * (k + 2) * volume / (4.0 * np.pi * natoms)) + 0.5
    refused: dict[int, str] = {}
    todo = np.arange(B)
    while len(todo):
        retry = []
        for idx in _chunks(todo, natoms, radius, spacing, cap):
            axes = np.ceil(radius[idx, None] / spacing[idx] - 0.5).astype(np.int64).clip(min=0).max(axis=0)
            covered = ((axes + 0.5) * spacing[idx]).min(axis=1)  # (b,) radius provably enumerated
            idx_d = torch.as_tensor(idx, device=device)
            n_pad = int(natoms[idx].max())
            chunk_numbers = num_d[idx_d, :n_pad]
            nbr, vec, dist, d_k, short = _knn_chunk(
                lat_d[idx_d],
                frac_d[idx_d, :n_pad],
                chunk_numbers,
                nat_d[idx_d],
                axes,
                k,
                int(natoms[idx].min()),
            )
            # global rows of the chunk's real atoms; neighbours shifted to global atom indices
            atom_pos = torch.arange(n_pad, device=device)[None, :]
            real = atom_pos < nat_d[idx_d, None]
            rows = (start_d[idx_d, None] + atom_pos)[real]
            nbr_out[rows] = (nbr + start_d[idx_d, None, None])[real]
            vec_out[rows] = vec.to(torch.float32)[real]
            d_k_h, short_h = d_k.cpu().numpy(), short.cpu().numpy()  # the chunk's one synchronisation
            ok = d_k_h + TIE_TOLERANCE < covered
            for b in np.flatnonzero(short_h):
                n_b = int(natoms[idx[b]])
                refused[int(idx[b])] = _short_reason(nbr[b, :n_b], dist[b, :n_b], chunk_numbers[b, :n_b])
            for b in np.flatnonzero(~short_h & ok & (d_k_h > MAX_KTH_NEIGHBOUR_ANGSTROM)):
                refused[int(idx[b])] = (
                    f"the {k}th nearest neighbour lies {d_k_h[b]:.1f} A away, beyond the "
                    f"{MAX_KTH_NEIGHBOUR_ANGSTROM} A the models saw in training (an isolated atom, a "
                    "molecule or slab in vacuum, or a wrong lattice)."
                )
            for b in np.flatnonzero(~short_h & ~ok):
                bad = idx[b]
                radius[bad] = max(radius[bad] * 1.5, d_k_h[b] + 2 * TIE_TOLERANCE)
                retry.append(bad)
        todo = np.asarray(retry, dtype=np.int64)
    if refused:
        first = min(refused)
        raise GeometryError(refused[first], index=first)
    return DeviceGraphs(
        numbers=num_d[torch.arange(num_d.shape[1], device=device)[None, :] < nat_d[:, None]],
        neighbours=nbr_out,
        bond_vectors=vec_out,
        crystal_index=torch.repeat_interleave(torch.arange(B, device=device), nat_d, output_size=N),
        natoms=nat_d,
    )


def _chunks(
    todo: np.ndarray, natoms: np.ndarray, radius: np.ndarray, spacing: np.ndarray, cap: int
) -> list[np.ndarray]:
    """Crystals in chunks of similar size and image count, each within ``cap`` candidate pairs.

    A chunk shares one padded atom count (its largest crystal's) and one set of image offsets (the
    widest of its crystals' per-axis ranges), so crystals are sorted by atoms, then image count.
    """
    per_axis = np.ceil(radius[todo, None] / spacing[todo] - 0.5).astype(np.int64).clip(min=0)  # (T, 3)
    images = np.prod(2 * per_axis + 1, axis=1)
    order = np.lexsort((images, natoms[todo]))
    todo, per_axis, atoms = todo[order], per_axis[order], natoms[todo][order]
    chunks = []
    start = 0
    while start < len(todo):
        # cost of the chunk todo[start:stop] for every stop: count * n_pad^2 * M of the running maxima
        n_pad = np.maximum.accumulate(atoms[start:])
        widest = np.maximum.accumulate(per_axis[start:], axis=0)
        cost = np.arange(1, len(n_pad) + 1) * n_pad**2 * np.prod(2 * widest + 1, axis=1)
        stop = start + max(1, int(np.searchsorted(cost, cap, side="right")))
        chunks.append(todo[start:stop])
        start = stop
    return chunks


def _tie_keys(dist: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    """The module's int64 sort key (distance, then x, y, z, each rounded to ``TIE_TOLERANCE``), as in numpy."""
    scale = 1.0 / TIE_TOLERANCE
    half = 1 << 15
    d_q = torch.clamp(torch.round(dist * scale), max=half - 1).to(torch.int64)
    v_q = torch.clamp(torch.round(vec * scale) + half, 0, 2 * half - 1).to(torch.int64)
    return (d_q << 48) | (v_q[..., 0] << 32) | (v_q[..., 1] << 16) | v_q[..., 2]


def _knn_chunk(
    lattices: torch.Tensor,
    frac: torch.Tensor,
    numbers: torch.Tensor,
    natoms: torch.Tensor,
    axes: np.ndarray,
    k: int,
    min_atoms: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """k nearest neighbours of b padded crystals, images |m_c| <= axes[c] enumerated.

    The tie keys are made only for each atom's ``2 k + 8`` nearest candidates by distance (a candidate
    beyond them cannot be among the k smallest keys once the last of them lies more than two tie
    tolerances beyond the k-th distance: keys order by rounded distance first); where a shell is wider
    than that, the keys of every candidate of the chunk are made, as numpy does.

    Args:
        lattices: (b, 3, 3) float64; frac: (b, n, 3) float64; numbers: (b, n) int64; natoms: (b,) int64
            (atoms beyond a crystal's count are padding); axes: (3,) image range per lattice axis; k: degree;
            min_atoms: the smallest crystal's atom count (known on the host).

    Returns:
        Local neighbour index (b, n, k), bond vectors (b, n, k, 3) float64, bond lengths (b, n, k) float64,
        the k-th neighbour distance of each crystal's farthest-reaching atom (b,) and whether a bond breaks
        the distance rule (b,).
    """
    device = lattices.device
    b, n, _ = frac.shape
    offsets_h = _image_offsets(axes)  # (M, 3), on the host: its size and zero row need no device round trip
    M = len(offsets_h)
    if min_atoms * M < k + 1:
        raise ValueError("Too few periodic images enumerated; this is a bug in the graph builder.")
    zero = int(np.flatnonzero((offsets_h == 0).all(axis=1))[0])
    offsets = torch.as_tensor(offsets_h, dtype=torch.float64, device=device)
    # pair differences f_j - f_i wrapped into [-0.5, 0.5), then Cartesian: (b, i, j, 3)
    diff = frac[:, None, :, :] - frac[:, :, None, :]
    diff = diff - torch.floor(diff + 0.5)
    cart_diff = torch.matmul(diff, lattices[:, None, :, :])
    cart_off = torch.matmul(offsets, lattices)  # (b, M, 3)
    # bond vector r = cart_diff_ij + cart_off_m, one contiguous (b, i, j * M + m) plane per component
    xyz = [
        (cart_diff[:, :, :, None, c] + cart_off[:, None, None, :, c]).reshape(b, n, n * M) for c in range(3)
    ]
    dist = torch.sqrt(xyz[0] * xyz[0] + xyz[1] * xyz[1] + xyz[2] * xyz[2])
    # no bond to the zero-offset self, nor to padding atoms
    atoms = torch.arange(n, device=device)
    dist[:, atoms, atoms * M + zero] = torch.inf
    real = atoms[None, :] < natoms[:, None]  # (b, n)
    dist.masked_fill_(~real.repeat_interleave(M, dim=1)[:, None, :], torch.inf)
    for width in (min(2 * k + 8, n * M), n * M):
        near_dist, near = torch.topk(dist, width, dim=-1, largest=False, sorted=True)  # (b, n, width)
        kth = near_dist[..., k - 1]  # the true k-th distance of every atom
        enough = (near_dist[..., -1] > kth + 2 * TIE_TOLERANCE) | ~real
        if width == n * M or bool(enough.all()):
            break
    near_vec = torch.stack([torch.gather(plane, 2, near) for plane in xyz], dim=-1)  # (b, n, width, 3)
    keys = _tie_keys(near_dist, near_vec).masked_fill_(~torch.isfinite(near_dist), _NO_BOND)
    order = torch.topk(keys, k, dim=-1, largest=False, sorted=True).indices  # (b, n, k) into the width
    sel = torch.gather(near, 2, order)  # candidate j * M + m
    sel_vec = torch.gather(near_vec, 2, order[..., None].expand(b, n, k, 3))
    sel_dist = torch.gather(near_dist, 2, order)
    nbr = torch.div(sel, M, rounding_mode="floor")
    d_k = sel_dist[..., -1].masked_fill(~real, -1.0).amax(dim=1)
    # the packed key saturates beyond 32.767 A: there the true k-th distance counts
    d_true = kth.masked_fill(~real, -1.0).amax(dim=1)
    d_k = torch.where(d_k >= _KEY_EXACT_LIMIT, d_true, d_k)
    ends = torch.gather(numbers, 1, nbr.reshape(b, n * k)).reshape(b, n, k)
    limits = _limit_table(device)[numbers[:, :, None], ends]
    short = ((sel_dist < limits - DISTANCE_TOLERANCE_ANGSTROM) & real[:, :, None]).any(dim=2).any(dim=1)
    return nbr, sel_vec, sel_dist, d_k, short


def _short_reason(nbr: torch.Tensor, dist: torch.Tensor, numbers: torch.Tensor) -> str:
    """The distance-rule message of one crystal (its neighbours (n, k), bond lengths (n, k), numbers (n,)):
    the pair with the smallest distance / limit ratio, worded as the numpy builder words it."""
    nbr, dist, numbers = nbr.cpu().numpy(), dist.cpu().numpy(), numbers.cpu().numpy()
    ends = numbers[nbr]
    limits = distance_limits(numbers[:, None], ends)
    short = dist < limits - DISTANCE_TOLERANCE_ANGSTROM
    ratio = np.where(short, dist / limits, np.inf)
    i, j = np.unravel_index(int(np.argmin(ratio)), ratio.shape)
    reason = too_close_reason(
        _name(int(numbers[i])), _name(int(ends[i, j])), float(dist[i, j]), float(limits[i, j])
    )
    return f"{reason} (overlapping sites, or closer than the distance rule the search and ingest apply)"
