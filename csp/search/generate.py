"""Candidate crystals under symmetry constraints, generated in vectorised batches.

A *family* is (formula units Z, space group, Wyckoff assignment). :func:`enumerate_families` lists
feasible families for a composition with pyxtal's group data. :func:`build_template` turns a family into
a :class:`FamilyTemplate` once (the symmetry operations of every Wyckoff orbit as numpy arrays); the
template then maps a ``(B, d)`` array of unit-cube variables to ``B`` candidate cells with no per-candidate
pyxtal call. :func:`check_validity` applies the paper's constraints to a whole batch:

* every interatomic distance (periodic, minimum image) >= max(0.5 * (r_i + r_j), 0.5 A) (covalent radii,
  see :mod:`csp.structures.elements`): the one rule of :func:`csp.structures.validity.distance_limits`, which
  the scorer applies too, so no candidate accepted here is refused there;
* cell angles in [20, 160] degrees;
* cell volume in [0.5, 1.5] x the sum of atomic volumes.

Unit-cube variables of a family, in order: the volume (mapped linearly onto [0.5, 1.5] x the sum of
atomic volumes, so the volume constraint holds by construction), the free length ratios ``b/a`` and
``c/a`` (log-uniform in [1/3, 3]), the free cell angles (uniform in [45, 135] degrees, inside the
constraint), then the free coordinates (x, y and/or z) of each Wyckoff site in [0, 1).

Lattices follow pyxtal's standard settings: monoclinic with unique axis b; trigonal groups, rhombohedral
ones included, in the hexagonal setting (a = b, gamma = 120); the cell is conventional.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import numpy as np

from csp.errors import InputError
from csp.structures import elements
from csp.structures.validity import distance_limits, too_close_reason

if TYPE_CHECKING:
    from pyxtal.symmetry import Group

    from csp.structures.composition import Composition

CrystalSystem = Literal[
    "triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic"
]

#: First and last space-group number of each crystal system.
CRYSTAL_SYSTEMS: dict[str, tuple[int, int]] = {
    "triclinic": (1, 2),
    "monoclinic": (3, 15),
    "orthorhombic": (16, 74),
    "tetragonal": (75, 142),
    "trigonal": (143, 167),
    "hexagonal": (168, 194),
    "cubic": (195, 230),
}

#: The paper's constraints.
ANGLE_LIMITS_DEG = (20.0, 160.0)
VOLUME_LIMITS = (0.5, 1.5)
# the distance constraint (factor 0.5 and its 0.5 A floor) lives in csp.structures.validity
#: How the unit cube maps onto cell shapes (choices of this module, all inside the constraints).
RATIO_MAX = 3.0
ANGLE_SAMPLING_DEG = (45.0, 135.0)

# free cell variables after the volume, per lattice type
_LATTICE_VARS: dict[str, tuple[str, ...]] = {
    "cubic": (),
    "tetragonal": ("c/a",),
    "hexagonal": ("c/a",),
    "trigonal": ("c/a",),
    "orthorhombic": ("b/a", "c/a"),
    "monoclinic": ("b/a", "c/a", "beta"),
    "triclinic": ("b/a", "c/a", "alpha", "beta", "gamma"),
}


def crystal_system_of(spacegroup: int) -> str:
    """The crystal system of a space-group number (1..230)."""
    for name, (lo, hi) in CRYSTAL_SYSTEMS.items():
        if lo <= spacegroup <= hi:
            return name
    raise InputError(f"Space group {spacegroup} is outside 1..230.")


def space_groups(strategy: Literal["all", "fixed"] = "all", crystal_system: str | None = None) -> list[int]:
    """Space-group numbers searched by a strategy.

    Args:
        strategy: ``"all"`` for 1..230, ``"fixed"`` for the groups of ``crystal_system`` only.
        crystal_system: one of :data:`CRYSTAL_SYSTEMS` (required for ``"fixed"``).
    """
    if strategy == "all":
        return list(range(1, 231))
    if strategy == "fixed":
        if crystal_system not in CRYSTAL_SYSTEMS:
            raise InputError(
                f"Strategy 'fixed' needs a crystal system among {sorted(CRYSTAL_SYSTEMS)}, "
                f"got {crystal_system!r}."
            )
        lo, hi = CRYSTAL_SYSTEMS[crystal_system]
        return list(range(lo, hi + 1))
    raise InputError(f"Unknown strategy {strategy!r}; use 'all' or 'fixed'.")


@lru_cache(maxsize=256)
def _group(spacegroup: int) -> Group:
    from pyxtal.symmetry import Group

    return Group(spacegroup)


@dataclass(frozen=True, slots=True)
class Family:
    """A symmetry family: ``formula_units`` Z, a space group and one Wyckoff label per occupied site.

    ``sites`` holds ``(element symbol, Wyckoff label)`` pairs such as ``("Mg", "4a")``, grouped by element
    in the composition's order.
    """

    formula_units: int
    spacegroup: int
    sites: tuple[tuple[str, str], ...]

    @property
    def wyckoff(self) -> str:
        """Readable assignment, e.g. ``"Mg:4a O:4b"``."""
        return " ".join(f"{s}:{label}" for s, label in self.sites)

    @property
    def crystal_system(self) -> str:
        return crystal_system_of(self.spacegroup)

    @property
    def num_atoms(self) -> int:
        return sum(int(label[:-1]) for _, label in self.sites)


def enumerate_families(
    composition: Composition,
    formula_units: Sequence[int],
    spacegroups: Sequence[int],
    rng: np.random.Generator,
    *,
    max_per_group: int = 8,
    max_nodes: int = 20000,
    max_orbits_per_line: int = 2,
    max_orbits_per_plane: int = 4,
    on_group: Callable[[int, int], None] | None = None,
) -> list[Family]:
    """Feasible Wyckoff assignments of a composition over formula units and space groups.

    For each (Z, space group) compatible with the atom counts (``Group.check_compatible``) up to
    ``max_per_group`` distinct assignments are kept: per element a multiset of Wyckoff positions whose
    multiplicities add up to its count, each position without free coordinates used at most once in the
    cell. A position with one free coordinate puts each of its orbits on the same lines, and one with two
    on the same planes, so random coordinates collide: such a position holds at most
    ``max_orbits_per_line`` (``max_orbits_per_plane``) orbits, which keeps every Table 1 prototype and drops
    families that almost never meet the distance constraint.

    The kept assignments are drawn from ``rng`` across the choices of *every* element, so no element's
    sites are frozen at the first ones found (see :func:`wyckoff_assignments`): when all assignments of a
    (Z, group) can be listed within ``max_nodes`` search nodes, ``max_per_group`` of them are drawn
    uniformly without replacement (each assignment is kept with probability ``max_per_group / N``);
    otherwise each kept assignment comes from a fresh randomised depth-first descent. A seed fixes the list.

    ``on_group(z, spacegroup)`` is called before each (Z, space group) is looked at (progress, or a
    deadline: an exception it raises ends the listing).

    Returns:
        Families ordered by (Z, space group) as given, then by the canonical listing order.
    """
    return list(
        iter_families(
            composition,
            formula_units,
            spacegroups,
            rng,
            max_per_group=max_per_group,
            max_nodes=max_nodes,
            max_orbits_per_line=max_orbits_per_line,
            max_orbits_per_plane=max_orbits_per_plane,
            on_group=on_group,
        )
    )


def iter_families(
    composition: Composition,
    formula_units: Sequence[int],
    spacegroups: Sequence[int],
    rng: np.random.Generator,
    *,
    max_per_group: int = 8,
    max_nodes: int = 20000,
    max_orbits_per_line: int = 2,
    max_orbits_per_plane: int = 4,
    on_group: Callable[[int, int], None] | None = None,
) -> Iterator[Family]:
    """The families of :func:`enumerate_families` one (Z, space group) at a time, in the same order and with
    the same draws from ``rng``: ``next(iter_families(...), None)`` says whether any family exists after
    searching only up to the first group that holds one. ``on_group`` as in :func:`enumerate_families`."""
    symbols = composition.symbols
    for z in formula_units:
        counts = [n * z for _, n in composition.counts]
        for sg in spacegroups:
            if on_group is not None:
                on_group(z, sg)
            if not _compatible(sg, tuple(counts)):
                continue
            wps = _wyckoff_table(sg)
            caps = _orbit_caps(sg, max_orbits_per_line, max_orbits_per_plane)
            for assignment in _search_assignments(counts, wps, caps, rng, max_per_group, max_nodes):
                sites = tuple((symbols[k], wps[i][0]) for k, idx in enumerate(assignment) for i in idx)
                yield Family(z, sg, sites)


def wyckoff_assignments(
    counts: Sequence[int],
    spacegroup: int,
    *,
    max_nodes: int = 20000,
    max_orbits_per_line: int = 2,
    max_orbits_per_plane: int = 4,
) -> list[tuple[tuple[str, ...], ...]] | None:
    """Every Wyckoff assignment of atom ``counts`` (one count per element, in the cell) in a space group.

    The rules are those of :func:`enumerate_families`. Returns one tuple of Wyckoff labels per element for
    each assignment, in canonical order, or ``None`` when the listing needs more than ``max_nodes`` search
    nodes (the search then samples assignments instead of listing them).
    """
    wps = _wyckoff_table(spacegroup)
    caps = _orbit_caps(spacegroup, max_orbits_per_line, max_orbits_per_plane)
    listed = _all_assignments(tuple(int(c) for c in counts), wps, caps, max_nodes)
    if listed is None:
        return None
    return [tuple(tuple(wps[i][0] for i in idx) for idx in assignment) for assignment in listed]


@lru_cache(maxsize=8192)
def _compatible(spacegroup: int, counts: tuple[int, ...]) -> bool:
    """Whether a group's Wyckoff positions can hold these atom counts (pyxtal's check, cached)."""
    return bool(_group(spacegroup).check_compatible(list(counts))[0])


@lru_cache(maxsize=512)
def _wyckoff_table(spacegroup: int) -> tuple[tuple[str, int, int], ...]:
    """(label, multiplicity, free coordinates) of each Wyckoff position of a group, pyxtal's order."""
    return tuple((w.get_label(), w.multiplicity, w.get_dof()) for w in _group(spacegroup).Wyckoff_positions)


def _orbit_caps(spacegroup: int, per_line: int, per_plane: int) -> tuple[int, ...]:
    reuse = {0: 1, 1: per_line, 2: per_plane, 3: 10**6}
    return tuple(reuse[dof] for _, _, dof in _wyckoff_table(spacegroup))


Assignment = tuple[tuple[int, ...], ...]


def _search_assignments(
    counts: Sequence[int],
    wps: Sequence[tuple[str, int, int]],
    caps: Sequence[int],
    rng: np.random.Generator,
    limit: int,
    max_nodes: int,
) -> list[Assignment]:
    """Up to ``limit`` distinct assignments (Wyckoff indices per element), drawn from ``rng``."""
    listed = _all_assignments(tuple(int(c) for c in counts), tuple(wps), tuple(caps), max_nodes)
    if listed is not None:
        if len(listed) <= limit:
            return list(listed)
        picks = np.sort(rng.choice(len(listed), size=limit, replace=False))
        return [listed[int(i)] for i in picks]
    found: list[Assignment] = []
    for _ in range(4 * limit):  # fresh randomised descents; duplicates are skipped
        one = _random_descent(list(counts), list(wps), list(caps), rng, max_nodes)
        if one is not None and one not in found:
            found.append(one)
        if len(found) == limit:
            break
    return found


def _element_multisets(
    count: int, wps: tuple[tuple[str, int, int], ...], caps: tuple[int, ...], budget: list[int]
) -> list[tuple[int, ...]] | None:
    """Multisets of position indices (non-decreasing) whose multiplicities sum to ``count``."""
    out: list[tuple[int, ...]] = []

    def fill(remaining: int, start: int, chosen: list[int], used: dict[int, int]) -> bool:
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if remaining == 0:
            out.append(tuple(chosen))
            return True
        for i in range(start, len(wps)):
            if wps[i][1] > remaining or used.get(i, 0) >= caps[i]:
                continue
            used[i] = used.get(i, 0) + 1
            chosen.append(i)
            ok = fill(remaining - wps[i][1], i, chosen, used)
            chosen.pop()
            used[i] -= 1
            if not ok:
                return False
        return True

    return out if fill(count, 0, [], {}) else None


@lru_cache(maxsize=4096)
def _all_assignments(
    counts: tuple[int, ...],
    wps: tuple[tuple[str, int, int], ...],
    caps: tuple[int, ...],
    max_nodes: int,
) -> tuple[Assignment, ...] | None:
    """All assignments in canonical order (element by element, multisets in index order), or ``None``
    when listing them takes more than ``max_nodes`` nodes."""
    budget = [max_nodes]
    per_count: dict[int, list[tuple[int, ...]]] = {}
    for c in set(counts):
        listed = _element_multisets(c, wps, caps, budget)
        if listed is None:
            return None
        per_count[c] = listed
    options = [
        [(m, np.bincount(np.array(m, dtype=np.int64), minlength=len(wps))) for m in per_count[c]]
        for c in counts
    ]
    cap = np.array(caps)
    out: list[Assignment] = []

    def combine(k: int, used: np.ndarray, chosen: list[tuple[int, ...]]) -> bool:
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if k == len(counts):
            out.append(tuple(chosen))
            return True
        for multiset, use in options[k]:
            now = used + use
            if (now > cap).any():
                continue
            if not combine(k + 1, now, [*chosen, multiset]):
                return False
        return True

    if not combine(0, np.zeros(len(wps), dtype=np.int64), []):
        return None
    return tuple(out)


def _random_descent(
    counts: list[int],
    wps: list[tuple[str, int, int]],
    caps: list[int],
    rng: np.random.Generator,
    max_nodes: int,
) -> Assignment | None:
    """The first assignment of a depth-first search whose every choice (all elements) is shuffled."""
    nodes = 0

    def fill(
        species: int,
        remaining: int,
        start: int,
        chosen: list[int],
        done: list[tuple[int, ...]],
        used: list[int],
    ) -> Assignment | None:
        nonlocal nodes
        nodes += 1
        if nodes > max_nodes:
            return None
        if remaining == 0:
            done = [*done, tuple(sorted(chosen))]
            if species + 1 == len(counts):
                return tuple(done)
            return fill(species + 1, counts[species + 1], 0, [], done, used)
        for i in start + rng.permutation(len(wps) - start):
            if wps[i][1] > remaining or used[i] >= caps[i]:
                continue
            used[i] += 1
            got = fill(species, remaining - wps[i][1], int(i), [*chosen, int(i)], done, used)
            used[i] -= 1
            if got is not None:
                return got
        return None

    return fill(0, counts[0], 0, [], [], [0] * len(wps))


@dataclass(frozen=True)
class CandidateBatch:
    """``B`` candidates of one family: lattices (B, 3, 3) row vectors in Angstrom, fractional coordinates
    (B, n, 3) in [0, 1), and the atomic numbers (n,) they share."""

    lattices: np.ndarray
    frac_coords: np.ndarray
    numbers: np.ndarray


@dataclass(frozen=True)
class FamilyTemplate:
    """A family prepared for vectorised generation (see :func:`build_template`)."""

    family: Family
    lattice_type: str
    numbers: np.ndarray  # (n,)
    rotations: np.ndarray  # (n, 3, 3): atom position = R @ v_site + t
    translations: np.ndarray  # (n, 3)
    atom_site: np.ndarray  # (n,) site index of each atom
    site_free: tuple[tuple[int, ...], ...]  # free axes (0=x, 1=y, 2=z) of each site
    reference_volume: float  # sum of atomic volumes, cubic Angstrom
    lattice_vars: tuple[str, ...] = field(default=())

    @property
    def dim(self) -> int:
        """Number of unit-cube variables: 1 (volume) + free cell shape + free coordinates."""
        return 1 + len(self.lattice_vars) + sum(len(f) for f in self.site_free)

    @property
    def variable_names(self) -> list[str]:
        names = ["volume", *self.lattice_vars]
        for (sym, label), free in zip(self.family.sites, self.site_free, strict=True):
            names += [f"{sym}{label}.{'xyz'[a]}" for a in free]
        return names

    def lattices(self, u: np.ndarray) -> np.ndarray:
        """Cell matrices (B, 3, 3) from the cell part of unit-cube variables ``u`` (B, d)."""
        u = np.asarray(u, dtype=np.float64)
        B = u.shape[0]
        volume = self.reference_volume * (VOLUME_LIMITS[0] + (VOLUME_LIMITS[1] - VOLUME_LIMITS[0]) * u[:, 0])
        ratio = {"b/a": np.ones(B), "c/a": np.ones(B)}
        angle = {"alpha": np.full(B, 90.0), "beta": np.full(B, 90.0), "gamma": np.full(B, 90.0)}
        if self.lattice_type in ("hexagonal", "trigonal"):
            angle["gamma"] = np.full(B, 120.0)
        lo, hi = ANGLE_SAMPLING_DEG
        for k, name in enumerate(self.lattice_vars, start=1):
            if name in ratio:
                ratio[name] = np.exp(np.log(RATIO_MAX) * (2.0 * u[:, k] - 1.0))
            else:
                angle[name] = lo + (hi - lo) * u[:, k]
        if self.lattice_type in ("tetragonal", "hexagonal", "trigonal"):
            ratio["b/a"] = np.ones(B)
        return lattice_from_parameters(
            volume, ratio["b/a"], ratio["c/a"], angle["alpha"], angle["beta"], angle["gamma"]
        )

    def frac_coords(self, u: np.ndarray) -> np.ndarray:
        """Fractional coordinates (B, n, 3) in [0, 1) from the coordinate part of ``u`` (B, d)."""
        u = np.asarray(u, dtype=np.float64)
        B = u.shape[0]
        v = np.zeros((B, len(self.site_free), 3))
        k = 1 + len(self.lattice_vars)
        for s, free in enumerate(self.site_free):
            for axis in free:
                v[:, s, axis] = u[:, k]
                k += 1
        frac = np.einsum("nij,bnj->bni", self.rotations, v[:, self.atom_site]) + self.translations
        return np.mod(frac, 1.0)

    def build(self, u: np.ndarray) -> CandidateBatch:
        """Candidates from unit-cube variables ``u`` of shape (B, d) (values are clipped into [0, 1])."""
        u = np.clip(np.atleast_2d(np.asarray(u, dtype=np.float64)), 0.0, 1.0)
        if u.shape[1] != self.dim:
            raise ValueError(f"Family {self.family.wyckoff} has {self.dim} variables, got {u.shape[1]}.")
        return CandidateBatch(self.lattices(u), self.frac_coords(u), self.numbers)


def build_template(family: Family) -> FamilyTemplate:
    """Prepare a family once: the orbit of every Wyckoff site as arrays of affine operations."""
    return _build_template(family)


@lru_cache(maxsize=4096)
def _build_template(family: Family) -> FamilyTemplate:
    group = _group(family.spacegroup)
    rotations, translations, atom_site, numbers, site_free = [], [], [], [], []
    for s, (sym, label) in enumerate(family.sites):
        wp = group.get_wyckoff_position(label)
        ops = np.array([op.affine_matrix for op in wp.ops])
        rot, trans = ops[:, :3, :3], ops[:, :3, 3]
        free = tuple(int(a) for a in np.flatnonzero(np.abs(rot).sum(axis=(0, 1)) > 0))
        if len(free) != wp.get_dof():
            raise ValueError(
                f"Wyckoff position {label} of group {family.spacegroup} has unexpected operations."
            )
        rotations.append(rot)
        translations.append(trans)
        atom_site += [s] * len(ops)
        numbers += [elements.atomic_number(sym)] * len(ops)
        site_free.append(free)
    numbers_arr = np.array(numbers, dtype=np.int64)
    lattice_type = group.lattice_type
    return FamilyTemplate(
        family=family,
        lattice_type=lattice_type,
        numbers=numbers_arr,
        rotations=np.concatenate(rotations),
        translations=np.concatenate(translations),
        atom_site=np.array(atom_site, dtype=np.int64),
        site_free=tuple(site_free),
        reference_volume=float(elements.atomic_volume(numbers_arr).sum()),
        lattice_vars=_LATTICE_VARS[lattice_type],
    )


def lattice_from_parameters(
    volume: np.ndarray,
    b_over_a: np.ndarray,
    c_over_a: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
) -> np.ndarray:
    """Row-vector cell matrices (B, 3, 3) with a given volume, length ratios and angles in degrees.

    ``a`` lies along x and ``b`` in the xy plane. A parameter set with no real cell (the angles cannot
    close) gives NaN rows, which :func:`check_validity` rejects as a degenerate cell.
    """
    ca, cb, cg = (np.cos(np.radians(x)) for x in (alpha, beta, gamma))
    sg = np.sin(np.radians(gamma))
    shape = 1.0 - ca**2 - cb**2 - cg**2 + 2.0 * ca * cb * cg
    with np.errstate(invalid="ignore"):
        root = np.sqrt(shape)
        a = np.cbrt(volume / (b_over_a * c_over_a * root))
    b, c = a * b_over_a, a * c_over_a
    cx = c * cb
    cy = c * (ca - cb * cg) / sg
    with np.errstate(invalid="ignore"):
        cz = np.sqrt(c**2 - cx**2 - cy**2)
    zeros = np.zeros_like(a)
    return np.stack(
        [np.stack([a, zeros, zeros], -1), np.stack([b * cg, b * sg, zeros], -1), np.stack([cx, cy, cz], -1)],
        axis=1,
    )


def cell_angles(lattices: np.ndarray) -> np.ndarray:
    """Angles (alpha, beta, gamma) in degrees of cells (B, 3, 3)."""
    a, b, c = lattices[:, 0], lattices[:, 1], lattices[:, 2]

    def angle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        cos = np.einsum("bi,bi->b", x, y) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))

    return np.stack([angle(b, c), angle(a, c), angle(a, b)], axis=1)


def min_distance_ratio(
    lattices: np.ndarray, frac_coords: np.ndarray, numbers: np.ndarray, *, max_images: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smallest ``d_ij / limit_ij`` over all atom pairs and periodic images, per candidate.

    ``limit_ij`` is :func:`csp.structures.validity.distance_limits`: ``max(0.5 (r_i + r_j), 0.5 A)``.

    Images are searched along each axis up to ``floor(0.5 + d_max / spacing)`` (``d_max`` the largest
    pair threshold, ``spacing`` the interplanar distance), enough to find every pair closer than its
    threshold; at most ``max_images`` per side.

    Returns:
        (ratio (B,), i (B,), j (B,)): the smallest ratio and the atom pair where it occurs.
    """
    B, n, _ = frac_coords.shape
    threshold = distance_limits(numbers)
    inv_spacing = np.linalg.norm(np.linalg.inv(lattices), axis=1)  # (B, 3): |b*_i|
    reach = np.floor(0.5 + threshold.max() * inv_spacing.max(axis=0))
    reach = np.minimum(reach, max_images).astype(int)
    diff = frac_coords[:, None, :, :] - frac_coords[:, :, None, :]
    diff -= np.round(diff)
    best = np.full((B, n, n), np.inf)
    ranges = [np.arange(-r, r + 1) for r in reach]
    for shift in np.stack(np.meshgrid(*ranges, indexing="ij"), -1).reshape(-1, 3):
        cart = np.einsum("bijk,bkl->bijl", diff + shift, lattices)
        d2 = np.einsum("bijl,bijl->bij", cart, cart)
        if not shift.any():
            d2[:, np.arange(n), np.arange(n)] = np.inf
        np.minimum(best, d2, out=best)
    ratio = np.sqrt(best) / threshold
    flat = ratio.reshape(B, -1).argmin(axis=1)
    i, j = np.divmod(flat, n)
    return ratio.reshape(B, -1)[np.arange(B), flat], i, j


def check_validity(
    lattices: np.ndarray,
    frac_coords: np.ndarray,
    numbers: np.ndarray,
    *,
    reference_volume: float | None = None,
    chunk: int = 64,
) -> tuple[np.ndarray, list[str]]:
    """Apply the paper's constraints to a batch of candidates.

    Args:
        lattices: (B, 3, 3) row-vector cells in Angstrom.
        frac_coords: (B, n, 3) fractional coordinates.
        numbers: (n,) atomic numbers shared by the batch.
        reference_volume: the sum of atomic volumes; computed from ``numbers`` when omitted.
        chunk: candidates per vectorised distance computation (bounds memory).

    Returns:
        ``valid`` (B,) booleans and one reason per candidate (``""`` when valid).
    """
    lattices = np.asarray(lattices, dtype=np.float64)
    frac_coords = np.asarray(frac_coords, dtype=np.float64)
    numbers = np.asarray(numbers, dtype=np.int64)
    B = lattices.shape[0]
    if reference_volume is None:
        reference_volume = float(elements.atomic_volume(numbers).sum())
    reasons = [""] * B
    finite = np.isfinite(lattices).all(axis=(1, 2))
    volume = np.full(B, np.nan)
    volume[finite] = np.abs(np.linalg.det(lattices[finite]))
    ok = finite & (volume > 1e-6)
    for b in np.flatnonzero(~ok):
        reasons[b] = "degenerate cell: the cell angles do not close"
    angles = np.full((B, 3), 90.0)
    angles[ok] = cell_angles(lattices[ok])
    bad_angle = ok & ((angles < ANGLE_LIMITS_DEG[0]) | (angles > ANGLE_LIMITS_DEG[1])).any(axis=1)
    for b in np.flatnonzero(bad_angle):
        reasons[b] = f"cell angle outside [20, 160] deg: {np.round(angles[b], 1).tolist()}"
    ok &= ~bad_angle
    rel = volume / reference_volume
    tol = 1e-9
    bad_volume = ok & ((rel < VOLUME_LIMITS[0] - tol) | (rel > VOLUME_LIMITS[1] + tol))
    for b in np.flatnonzero(bad_volume):
        reasons[b] = f"volume {rel[b]:.2f} x the sum of atomic volumes, outside [0.5, 1.5]"
    ok &= ~bad_volume
    idx = np.flatnonzero(ok)
    for start in range(0, len(idx), chunk):
        part = idx[start : start + chunk]
        ratio, i, j = min_distance_ratio(lattices[part], frac_coords[part], numbers)
        for b, r, ii, jj in zip(part, ratio, i, j, strict=True):
            if r < 1.0:
                ok[b] = False
                zi, zj = int(numbers[ii]), int(numbers[jj])
                limit = float(distance_limits(np.array(zi), np.array(zj)))
                reasons[b] = too_close_reason(elements.symbol(zi), elements.symbol(zj), r * limit, limit)
    return ok, reasons


def sample_valid(
    template: FamilyTemplate,
    n: int,
    rng: np.random.Generator,
    *,
    max_draws: int = 4096,
    chunk: int = 256,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Draw ``n`` unit-cube points of a family, keeping those that meet the constraints (rejection sampling).

    Uniform draws are generated and checked in vectorised chunks until ``n`` valid points are found or
    ``max_draws`` points have been tried; the shortfall is then filled with (invalid) uniform draws so
    that ``n`` points always come back. This is the random proposal that the optimizers use for their
    initial and random points, so that random search scores almost only valid candidates.

    Returns:
        ``u`` (n, d), ``valid`` (n,) booleans, and the number of draws tried.
    """
    kept: list[np.ndarray] = []
    found, tried = 0, 0
    spare = None
    while found < n and tried < max_draws:
        m = min(chunk, max_draws - tried)
        u = rng.random((m, template.dim))
        batch = template.build(u)
        ok, _ = check_validity(
            batch.lattices, batch.frac_coords, batch.numbers, reference_volume=template.reference_volume
        )
        tried += m
        kept.append(u[ok])
        found += int(ok.sum())
        spare = u[~ok]
    good = np.concatenate(kept)[:n] if kept else np.zeros((0, template.dim))
    missing = n - len(good)
    if missing > 0:
        filler = (
            spare[:missing]
            if spare is not None and len(spare) >= missing
            else rng.random((missing, template.dim))
        )
        good = np.concatenate([good, filler])
    valid = np.arange(n) < n - missing
    return good, valid, tried
