"""Fixed-degree periodic neighbour graphs for ALIGNN, built with numpy alone.

Every atom gets exactly ``k`` outgoing bonds to its ``k`` nearest periodic neighbours (images of
every atom, itself included, except the zero-offset self). This is ALIGNN's "12 nearest neighbours
within 8 A, widening the cutoff for a site with fewer than 12" rule: the cutoff only ever widens, so
the selection equals the plain k nearest neighbours, and the periodic images are enumerated
adaptively until they provably contain them.

Fixed degree (instead of keeping every neighbour tied with the k-th, as ALIGNN's reference code
does) lets the model aggregate by reshape-and-sum, which exports to ONNX exactly (no scatter).

Tie rule (used identically in training and inference): candidates are ordered by

1. distance rounded to ``TIE_TOLERANCE`` (1e-3 A),
2. then the bond vector's Cartesian x, y, z components, each rounded to 1e-3 A.

The second key depends on geometry only, never on atom order or on which periodic image a
neighbour came from, so the graph of a crystal is unchanged by permuting atoms, translating the
origin or choosing another cell of the same lattice. When a shell is cut (rock-salt MgO: 6
neighbours at a/2 plus 6 of the 12 at a/sqrt(2)), the kept part is chosen by direction; this choice
is not rotation invariant, which is the price of a fixed degree.

Bond angles are not stored: in this layout the line-graph partners of bond (i -> j_a) are the other
``k - 1`` bonds of atom i, so the model computes the dense (N, k, k - 1) cosines from the bond
vectors (see :func:`angle_cosines`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from csp.structures.crystal import Crystal
from csp.structures.elements import MAX_SUPPORTED_Z, symbol
from csp.structures.validity import (
    DISTANCE_TOLERANCE_ANGSTROM,
    MAX_KTH_NEIGHBOUR_ANGSTROM,
    GeometryError,
    distance_limits,
    too_close_reason,
)

K_NEIGHBOURS = 12
CUTOFF = 8.0
TIE_TOLERANCE = 1e-3
_KEY_EXACT_LIMIT = 32.0  # Angstrom; the packed sort key orders candidates exactly up to 32.767 A
_CHUNK_ELEMENTS = 4_000_000  # candidate distances per vectorised chunk (bounds memory)

__all__ = [
    "CUTOFF",
    "K_NEIGHBOURS",
    "TIE_TOLERANCE",
    "CrystalGraphs",
    "angle_cosines",
    "batch_graphs",
    "build_graphs",
    "build_graphs_same_species",
    "empty_graphs",
    "line_graph_partners",
    "rbf_expand",
]


@dataclass(frozen=True, slots=True)
class CrystalGraphs:
    """A batch of fixed-degree crystal graphs, atoms of all crystals concatenated.

    Attributes:
        numbers: (N,) int64 atomic numbers.
        neighbours: (N, k) int64 global index of each bond's end atom (into ``numbers``).
        bond_vectors: (N, k, 3) float32 Cartesian vector from the atom to the neighbour image, Angstrom.
        crystal_index: (N,) int64 crystal of each atom, 0..num_crystals-1, non-decreasing.
        natoms: (num_crystals,) int64 atoms per crystal.
    """

    numbers: np.ndarray
    neighbours: np.ndarray
    bond_vectors: np.ndarray
    crystal_index: np.ndarray
    natoms: np.ndarray

    @property
    def num_crystals(self) -> int:
        return len(self.natoms)

    @property
    def k(self) -> int:
        return self.neighbours.shape[1]


def _interplanar_spacings(lattices: np.ndarray) -> np.ndarray:
    """(B, 3) spacing of the lattice planes normal to each reciprocal vector, Angstrom."""
    recip = np.linalg.inv(lattices).transpose(0, 2, 1)  # rows are reciprocal vectors (no 2 pi)
    return 1.0 / np.linalg.norm(recip, axis=-1)


def _image_offsets(n_max: np.ndarray) -> np.ndarray:
    """All integer offsets with |n_c| <= n_max[c], shape (M, 3)."""
    axes = [np.arange(-m, m + 1) for m in n_max]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def _tie_keys(dist: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Composite int64 sort key implementing the module's tie rule (distance, then x, y, z)."""
    scale = 1.0 / TIE_TOLERANCE
    half = 1 << 15
    d_q = np.minimum(np.rint(dist * scale), half - 1).astype(np.int64)
    v_q = np.clip(np.rint(vec * scale) + half, 0, 2 * half - 1).astype(np.int64)
    return (d_q << 48) | (v_q[..., 0] << 32) | (v_q[..., 1] << 16) | v_q[..., 2]


def _knn_chunk(lattices: np.ndarray, frac: np.ndarray, radius: np.ndarray, k: int):
    """k nearest neighbours for B crystals of n atoms each, enumerating images up to ``radius``.

    Returns neighbour atom index (B, n, k), bond vectors (B, n, k, 3) and a (B,) flag saying whether
    the enumerated images provably contained the k nearest (plus the tie tolerance) for every atom.
    """
    B, n, _ = frac.shape
    spacing = _interplanar_spacings(lattices)  # (B, 3)
    # pair differences wrapped into [-0.5, 0.5): an image offset |m| > N_c then lies >= (N_c + 0.5) d_c away
    diff = frac[:, None, :, :] - frac[:, :, None, :]  # (B, i, j, 3) = f_j - f_i
    diff -= np.floor(diff + 0.5)
    n_max = np.ceil(radius[:, None] / spacing - 0.5).astype(np.int64).clip(min=0).max(axis=0)
    offsets = _image_offsets(n_max).astype(np.float64)  # (M, 3)
    covered = ((n_max[None, :] + 0.5) * spacing).min(axis=1)  # (B,) radius provably enumerated
    M = len(offsets)
    cart_diff = diff @ lattices[:, None, :, :]  # (B, i, j, 3)
    cart_off = offsets @ lattices  # (B, M, 3)
    vec = cart_diff[:, :, :, None, :] + cart_off[:, None, None, :, :]  # (B, i, j, M, 3)
    vec = vec.reshape(B, n, n * M, 3)
    dist = np.sqrt(np.einsum("bicx,bicx->bic", vec, vec))
    keys = _tie_keys(dist, vec)
    # the zero-offset self pair is not a bond (self-images at other offsets are)
    zero = int(np.flatnonzero((offsets == 0).all(axis=1))[0])
    atoms = np.arange(n)
    keys[:, atoms, atoms * M + zero] = np.iinfo(np.int64).max
    if n * M < k + 1:
        raise ValueError("Too few periodic images enumerated; this is a bug in the graph builder.")
    part = np.argpartition(keys, k - 1, axis=-1)[..., :k]
    order = np.argsort(np.take_along_axis(keys, part, axis=-1), axis=-1, kind="stable")
    sel = np.take_along_axis(part, order, axis=-1)  # (B, n, k) flat candidate index j * M + m
    sel_vec = np.take_along_axis(vec, sel[..., None], axis=2)
    sel_dist = np.take_along_axis(dist, sel, axis=-1)
    d_k = sel_dist[..., -1].max(axis=1)
    far = d_k >= _KEY_EXACT_LIMIT
    if far.any():
        # the packed key saturates beyond 32.767 A: take the true k-th distance from the distances
        d_far = dist[far].copy()
        d_far[:, atoms, atoms * M + zero] = np.inf
        d_k[far] = np.partition(d_far, k - 1, axis=-1)[..., k - 1].max(axis=1)
    ok = d_k + TIE_TOLERANCE < covered
    return sel // M, sel_vec, ok, d_k, sel_dist


def _check_bond_lengths(numbers: np.ndarray, nbr: np.ndarray, dist: np.ndarray) -> tuple[int, str] | None:
    """The first crystal (and the reason) with a bond shorter than the distance rule allows, else None.

    Args:
        numbers: (B, n) atomic numbers; nbr: (B, n, k) local neighbour indices; dist: (B, n, k) Angstrom.
    """
    rows = np.arange(len(numbers))[:, None, None]
    ends = numbers[rows, nbr]
    limits = distance_limits(numbers[:, :, None], ends)
    short = dist < limits - DISTANCE_TOLERANCE_ANGSTROM
    if not short.any():
        return None
    b = int(np.flatnonzero(short.any(axis=(1, 2)))[0])
    ratio = np.where(short[b], dist[b] / limits[b], np.inf)
    i, j = np.unravel_index(int(np.argmin(ratio)), ratio.shape)
    reason = too_close_reason(
        _name(int(numbers[b, i])), _name(int(ends[b, i, j])), float(dist[b, i, j]), float(limits[b, i, j])
    )
    return b, reason


def _name(z: int) -> str:
    return symbol(z) if 1 <= z <= MAX_SUPPORTED_Z else f"Z={z}"


def _knn_same_size(
    lattices: np.ndarray, frac: np.ndarray, numbers: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """k-NN for B crystals with the same number of atoms; neighbour index is local (0..n-1).

    Args:
        lattices: (B, 3, 3) Angstrom; frac: (B, n, 3); numbers: (B, n) or (n,) atomic numbers; k: degree.

    Raises:
        GeometryError: (``index`` = position in the batch) for a bond shorter than the distance rule of
            :func:`csp.structures.validity.distance_limits` or a k-th neighbour farther than
            ``MAX_KTH_NEIGHBOUR_ANGSTROM``.
    """
    B, n, _ = frac.shape
    numbers = np.broadcast_to(np.asarray(numbers, dtype=np.int64), (B, n))
    volume = np.abs(np.linalg.det(lattices))
    # a sphere holding ~ (k + 2) atoms at the mean density, padded: usually right at the first try
    radius = 1.2 * np.cbrt(3.0 * (k + 2) * volume / (4.0 * np.pi * n)) + 0.5
    nbr = np.empty((B, n, k), dtype=np.int64)
    vec = np.empty((B, n, k, 3), dtype=np.float64)
    todo = np.arange(B)
    while len(todo):
        # chunks of crystals whose image counts are similar keep the vectorised work bounded
        spacing = _interplanar_spacings(lattices[todo])
        n_img = np.prod(2 * np.ceil(radius[todo, None] / spacing - 0.5).clip(min=0) + 1, axis=1)
        order = todo[np.argsort(n_img, kind="stable")]
        n_img = np.sort(n_img)
        retry = []
        start = 0
        while start < len(order):
            per_crystal = n * n * n_img[start]
            stop = start + max(1, int(_CHUNK_ELEMENTS // max(per_crystal, 1)))
            idx = order[start:stop]
            c_nbr, c_vec, ok, d_k, c_dist = _knn_chunk(lattices[idx], frac[idx], radius[idx], k)
            nbr[idx], vec[idx] = c_nbr, c_vec
            close = _check_bond_lengths(numbers[idx], c_nbr, c_dist)
            if close is not None:
                raise GeometryError(
                    f"{close[1]} (overlapping sites, or closer than the distance rule the search and ingest apply)",
                    index=int(idx[close[0]]),
                )
            sparse = np.flatnonzero(ok & (d_k > MAX_KTH_NEIGHBOUR_ANGSTROM))
            if len(sparse):
                raise GeometryError(
                    f"the {k}th nearest neighbour lies {d_k[sparse[0]]:.1f} A away, beyond the "
                    f"{MAX_KTH_NEIGHBOUR_ANGSTROM} A the models saw in training (an isolated atom, a "
                    "molecule or slab in vacuum, or a wrong lattice).",
                    index=int(idx[sparse[0]]),
                )
            for bad, dk in zip(idx[~ok], d_k[~ok], strict=True):
                radius[bad] = max(radius[bad] * 1.5, dk + 2 * TIE_TOLERANCE)
                retry.append(bad)
            start = stop
        todo = np.asarray(retry, dtype=np.int64)
    return nbr, vec


def build_graphs_same_species(
    lattices: np.ndarray, frac_coords: np.ndarray, numbers: np.ndarray, k: int = K_NEIGHBOURS
) -> CrystalGraphs:
    """Graphs for B crystals that share one species list (the search's inner loop).

    Args:
        lattices: (B, 3, 3) row lattice vectors, Angstrom.
        frac_coords: (B, n, 3) fractional coordinates.
        numbers: (n,) atomic numbers, the same for every crystal.
        k: neighbours per atom.

    Returns:
        The batched graphs, crystals in input order (B = 0 gives empty arrays).

    Raises:
        GeometryError: see :func:`_knn_same_size`; ``index`` is the crystal's position in the batch.
    """
    lattices = np.asarray(lattices, dtype=np.float64).reshape(-1, 3, 3)
    B = len(lattices)
    numbers = np.asarray(numbers, dtype=np.int64).reshape(-1)
    n = len(numbers)
    if B == 0:
        return empty_graphs(k)
    frac = np.asarray(frac_coords, dtype=np.float64).reshape(B, n, 3)
    if not (np.isfinite(lattices).all() and np.isfinite(frac).all()):
        raise ValueError("Lattices or fractional coordinates contain NaN or infinity.")
    if (np.abs(np.linalg.det(lattices)) < 1e-6).any():
        raise ValueError("A lattice is singular (zero volume).")
    nbr, vec = _knn_same_size(lattices, frac, numbers, k)
    offsets = (np.arange(B, dtype=np.int64) * n)[:, None, None]
    return CrystalGraphs(
        numbers=np.tile(numbers, B),
        neighbours=(nbr + offsets).reshape(B * n, k),
        bond_vectors=vec.reshape(B * n, k, 3).astype(np.float32),
        crystal_index=np.repeat(np.arange(B, dtype=np.int64), n),
        natoms=np.full(B, n, dtype=np.int64),
    )


def build_graphs(crystals: Sequence[Crystal], k: int = K_NEIGHBOURS) -> CrystalGraphs:
    """Graphs for any crystals; those with equal atom counts are processed together, vectorised.

    Args:
        crystals: the crystals, in any mix of sizes.
        k: neighbours per atom.

    Returns:
        The batched graphs, crystals in input order (no crystals give empty arrays).

    Raises:
        GeometryError: see :func:`_knn_same_size`; ``index`` is the crystal's position in ``crystals``.
    """
    if len(crystals) == 0:
        return empty_graphs(k)
    natoms = np.array([c.num_sites for c in crystals], dtype=np.int64)
    lattices = np.stack([c.lattice for c in crystals])
    starts = np.concatenate([[0], np.cumsum(natoms)[:-1]])
    N = int(natoms.sum())
    nbr = np.empty((N, k), dtype=np.int64)
    vec = np.empty((N, k, 3), dtype=np.float32)
    for n in np.unique(natoms):
        members = np.flatnonzero(natoms == n)
        frac = np.stack([crystals[i].frac_coords for i in members])
        member_numbers = np.stack([crystals[i].numbers for i in members])
        try:
            g_nbr, g_vec = _knn_same_size(lattices[members], frac, member_numbers, k)
        except GeometryError as exc:
            raise GeometryError(exc.detail, index=int(members[exc.index])) from None
        rows = (starts[members][:, None] + np.arange(n)[None, :]).reshape(-1)
        nbr[rows] = (g_nbr + starts[members][:, None, None]).reshape(-1, k)
        vec[rows] = g_vec.reshape(-1, k, 3)
    return CrystalGraphs(
        numbers=np.concatenate([c.numbers for c in crystals]).astype(np.int64),
        neighbours=nbr,
        bond_vectors=vec,
        crystal_index=np.repeat(np.arange(len(crystals), dtype=np.int64), natoms),
        natoms=natoms,
    )


def empty_graphs(k: int = K_NEIGHBOURS) -> CrystalGraphs:
    """A batch of no crystals: every array has length 0 and the right trailing shape."""
    return CrystalGraphs(
        numbers=np.zeros(0, dtype=np.int64),
        neighbours=np.zeros((0, k), dtype=np.int64),
        bond_vectors=np.zeros((0, k, 3), dtype=np.float32),
        crystal_index=np.zeros(0, dtype=np.int64),
        natoms=np.zeros(0, dtype=np.int64),
    )


def batch_graphs(graphs: Sequence[CrystalGraphs]) -> CrystalGraphs:
    """Concatenate graph batches into one (neighbour and crystal indices are shifted)."""
    atom_shift = np.cumsum([0] + [len(g.numbers) for g in graphs[:-1]])
    crystal_shift = np.cumsum([0] + [g.num_crystals for g in graphs[:-1]])
    return CrystalGraphs(
        numbers=np.concatenate([g.numbers for g in graphs]),
        neighbours=np.concatenate([g.neighbours + s for g, s in zip(graphs, atom_shift, strict=True)]),
        bond_vectors=np.concatenate([g.bond_vectors for g in graphs]),
        crystal_index=np.concatenate(
            [g.crystal_index + s for g, s in zip(graphs, crystal_shift, strict=True)]
        ),
        natoms=np.concatenate([g.natoms for g in graphs]),
    )


def line_graph_partners(k: int) -> np.ndarray:
    """(k, k - 1) index table: row a lists the other bonds b != a of the same atom, ascending."""
    idx = np.arange(k)
    return np.stack([np.delete(idx, a) for a in range(k)])


def angle_cosines(bond_vectors: np.ndarray) -> np.ndarray:
    """(N, k, k - 1) cosines of the angle at atom i between bond a and each partner bond b != a.

    This numpy version is the reference for tests; the model computes the same inside torch.
    """
    v = np.asarray(bond_vectors, dtype=np.float64)
    u = v / np.linalg.norm(v, axis=-1, keepdims=True)
    cos = np.einsum("nax,nbx->nab", u, u)
    k = v.shape[1]
    return np.take_along_axis(cos, np.broadcast_to(line_graph_partners(k), (cos.shape[0], k, k - 1)), 2)


def rbf_expand(values: np.ndarray, vmin: float, vmax: float, bins: int) -> np.ndarray:
    """Gaussian radial basis expansion, numpy reference of the model's torch version."""
    centers = np.linspace(vmin, vmax, bins)
    gamma = 1.0 / (centers[1] - centers[0]) ** 2
    return np.exp(-gamma * (np.asarray(values)[..., None] - centers) ** 2)
