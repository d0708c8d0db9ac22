"""The physical checks every structure passes before it enters the lake (one place for every reader).

Every reader (CIF through the fast P1 parser or pymatgen, POSCAR, OPTIMADE JSON, the mirror's CSV and
JSON sources) turns its input into a :class:`~storage.readers._structure.Cell` and hands it to
:func:`check_geometry` through ``structure_fields``; a failure is a :class:`StructureError` whose message
becomes the quarantine reason. The bounds were set against the whole data mirror (77,209 structures
ingested before these checks existed; ``benchmarks/geometry_stats.py``, numbers in the README's "Bad
input" section):

- **the distance rule** of :func:`csp.structures.validity.distance_limits`, the same one the search and the
  scorer apply: no two atoms (periodic images included) closer than ``max(0.5 (r_i + r_j), 0.5 A)``
  (covalent radii), so a Bi-Bi pair 0.78 A apart (limit 1.48 A) is refused, not only pairs under 0.5 A.
  ``MIN_DISTANCE_ANGSTROM`` (0.5 A) is its floor: the shortest bond in nature is H2's 0.74 A; in the
  mirror 99.99 % of structures have no distance under 0.75 A and only 2 fall under 0.5 A (a COD CIF with
  a duplicated site at 0.002 A among them). A test keeps it equal to ``csp.structures.validity``'s.
- **a per-pair floor at ingest only** (:func:`pair_floor_problem`, issue 22 W3): no element pair closer than
  ``PAIR_FLOOR_FACTOR`` (0.6) x its shortest distance in the trusted sources of the mirror (the committed
  table ``pair_min_distances.json``, made by ``benchmarks/pair_min_distance.py``; pairs held by at least
  ``PAIR_FLOOR_MIN_ROWS`` rows). Fractional coordinates read as Cartesian put rock-salt LiH's Li-H at 0.866 A,
  which the shared rule passes and 0.51 x the Li-H minimum (1.702 A) does not. Left one source out, no DFT row
  of the mirror falls under 0.6 x the other sources' minima (docs/reliability.md); the search's own label
  structures (``pair_floor=False``) keep the shared rule alone.
- **a ceiling on the tightest bond for the files a user hands us** (:func:`stretched_cell_problem`, issue 22 F1;
  ``check_geometry(..., units_check=True)``, set by the user-file readers alone): a cell none of whose element
  pairs comes as close as ``STRETCH_CEILING`` (1.85) x the pair's usual shortest distance (percentile 1 over the
  trusted rows) is uniformly too large: a lattice in Bohr (1.8897 x: MgO's Mg-O at 3.98 A). The mirror's
  databases and the lake's training sets are not checked by it (one MP row, an H cell with no H-H under 3.5 A,
  lies above it).
- ``MAX_DENSITY_G_PER_CM3`` (30 g/cm^3): the densest element at ambient pressure is osmium (22.6 g/cm^3);
  a CIF read in the wrong setting (36 Bi atoms where 2 were declared: 176.5 g/cm^3) fails it. A density the
  file declares (``_exptl_crystal_density_diffrn``) must agree within ``DENSITY_TOLERANCE`` (5 %).
- ``MIN_VOLUME_PER_ATOM`` / ``MAX_VOLUME_PER_ATOM`` (1.5 / 150 A^3): the mirror spans 3.17 A^3 per atom
  (the densest) to 105 A^3 at the 99.99th percentile; only one row (a GNoME entry with an isolated atom,
  337 A^3 per atom) lies outside. A cell with a = 0.1 A or one atom in a 25 A box fails.
- ``MAX_VACUUM_ANGSTROM`` (7.0 A): the widest empty slab between planes of atoms parallel to a cell face.
  99 % of the mirror stays under 3.3 A; the 265 rows above 7 A (253 OQMD, 9 MP, 2 prototypes, 1 GNoME)
  mostly cluster at 12-15 A, the vacuum of slab and 2-D entries, and are quarantined.
- ``MAX_NEAREST_NEIGHBOUR_ANGSTROM`` (7.0 A): an atom whose nearest neighbour (its own images included)
  is farther away is isolated; 99.99 % of the mirror stays under 5.2 A, one row (the GNoME entry above,
  7.9 A) exceeds it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from csp.structures.validity import DISTANCE_TOLERANCE_ANGSTROM, distance_limits
from storage.errors import StorageError

__all__ = [
    "DENSITY_TOLERANCE",
    "MAX_DENSITY_G_PER_CM3",
    "MAX_NEAREST_NEIGHBOUR_ANGSTROM",
    "MAX_VACUUM_ANGSTROM",
    "MAX_VOLUME_PER_ATOM",
    "MIN_DISTANCE_ANGSTROM",
    "MIN_VOLUME_PER_ATOM",
    "OCCUPANCY_TOLERANCE",
    "PAIR_FLOOR_FACTOR",
    "PAIR_FLOOR_MIN_ROWS",
    "PAIR_MINIMA_FILE",
    "STRETCH_CEILING",
    "StructureError",
    "cell_parameters_problem",
    "check_geometry",
    "compare_density",
    "compare_formulas",
    "density_g_per_cm3",
    "density_problem",
    "formula_units_problem",
    "full_occupancy",
    "interplanar_spacings",
    "largest_vacuum",
    "neighbour_distances",
    "pair_floor_problem",
    "pair_shortest_distances",
    "reference_pair_minima",
    "reference_pair_typical",
    "stretched_cell_problem",
    "structure_problem",
    "tightest_bond",
]

MIN_DISTANCE_ANGSTROM = 0.5
"""No two atoms (periodic images included) closer than this, Angstrom."""

MAX_DENSITY_G_PER_CM3 = 30.0
"""Densest cell accepted, g/cm^3 (osmium, the densest element, is 22.6 g/cm^3)."""

DENSITY_TOLERANCE = 0.05
"""Largest relative difference between a declared density and the parsed cell's."""

_AVOGADRO = 6.02214076e23

MIN_VOLUME_PER_ATOM = 1.5
"""Smallest cell volume per atom accepted, Angstrom^3."""

MAX_VOLUME_PER_ATOM = 150.0
"""Largest cell volume per atom accepted, Angstrom^3."""

MAX_VACUUM_ANGSTROM = 7.0
"""Widest empty slab between atom planes parallel to a cell face accepted as bulk, Angstrom."""

MAX_NEAREST_NEIGHBOUR_ANGSTROM = 7.0
"""An atom whose nearest neighbour is farther than this is isolated, Angstrom."""

OCCUPANCY_TOLERANCE = 0.01
"""A site whose occupancy lies within this of 1 is fully occupied (databases round: 0.999, 0.9999, 1.005);
further from 1 (0.9, 0.98) it is a partly occupied site, which the lake does not store."""

HEAVIEST_MEASURED_Z = 99
"""Atomic number of the heaviest element a crystal structure has been measured for (einsteinium). Fermium
(100) and everything past it (No, Nh, Bh, Cn, ...) have never been made in weighable amounts: a site naming one
is a misread symbol (``NO3`` as nobelium, ``NH4`` as nihonium, ``CN`` as copernicium), refused at ingest."""


def unmeasured_element_problem(species: Sequence[str]) -> str | None:
    """Why a structure naming an element past :data:`HEAVIEST_MEASURED_Z` must not be stored, or None."""
    heavy = sorted({s for s in species if _element_table().get(s, (0, 0.0))[0] > HEAVIEST_MEASURED_Z})
    if not heavy:
        return None
    return (
        f"element {heavy[0]} (Z = {_element_table()[heavy[0]][0]}) has no measured crystal structure (nothing "
        f"past Z = {HEAVIEST_MEASURED_Z}, einsteinium, has been); a group or a misread symbol such as NO3 "
        "(nobelium), NH4 (nihonium) or CN (copernicium)?"
    )


PAIR_FLOOR_FACTOR = 0.6
"""Ingest refuses an element pair closer than this times the shortest distance of that pair in the reference
data (:func:`pair_floor_problem`)."""

PAIR_FLOOR_MIN_ROWS = 20
"""Reference rows a pair needs before it gets a floor; a rarer pair has only the shared distance rule."""

STRETCH_CEILING = 1.85
"""User files: a cell whose tightest bond ratio (:func:`stretched_cell_problem`) lies above this is refused. A
cell in Bohr is 1.8897 x too large (MgO lies at 1.90, diamond at 2.25); left one source out, 1 of the 76,930
trusted rows of the mirror lies above it (docs/reliability.md)."""

STRETCH_PERCENTILE = 1.0
"""The percentile of a pair's shortest distance over the trusted rows that is the ceiling's reference (the third
number of each pair in :data:`PAIR_MINIMA_FILE`)."""

BOHR_ANGSTROM = 0.529177210903
"""One Bohr radius in Angstrom (CODATA 2018): a length written in Bohr is 1 / 0.529 = 1.8897 x too long."""

PAIR_MINIMA_FILE = Path(__file__).with_name("pair_min_distances.json")
"""The reference table: per element pair the shortest distance in the trusted sources, their row count and the
percentile ``STRETCH_PERCENTILE`` of the pair's shortest distance over those rows, with its provenance (made by ``benchmarks/pair_min_distance.py``)."""

_MAX_IMAGE_CANDIDATES = 20_000_000  # pair-image distances computed at once (bounds memory)
_THIN_SPACING_ANGSTROM = 1.0  # a plane spacing below this (no bonded layer fits) makes a cell thin


class StructureError(StorageError, ValueError):
    """The input does not describe one ordered, physically sensible 3-D crystal of known elements."""


def interplanar_spacings(lattice: np.ndarray) -> np.ndarray:
    """(3,) spacing of the lattice planes spanned by the other two vectors, Angstrom."""
    recip = np.linalg.inv(lattice).T  # rows are reciprocal vectors (no 2 pi)
    return 1.0 / np.linalg.norm(recip, axis=-1)


def largest_vacuum(lattice: np.ndarray, frac_coords: np.ndarray) -> tuple[float, int]:
    """The widest empty slab between atom planes parallel to a cell face, Angstrom, and its axis (0-2).

    Along each axis the fractional coordinates are sorted round the circle; the largest gap times the
    plane spacing is the thickness of the slab holding no atom centre.
    """
    spacing = interplanar_spacings(lattice)
    frac = np.mod(np.asarray(frac_coords, dtype=float), 1.0)
    widest, axis = 0.0, 0
    for c in range(3):
        f = np.sort(frac[:, c])
        gaps = np.diff(np.concatenate([f, [f[0] + 1.0]]))
        gap = float(gaps.max() * spacing[c])
        if gap > widest:
            widest, axis = gap, c
    return widest, axis


def neighbour_distances(lattice: np.ndarray, frac_coords: np.ndarray, radius: float) -> np.ndarray:
    """(n, n) shortest distance from atom i to any periodic image of atom j within ``radius`` (else inf).

    The diagonal holds each atom's distance to its own nearest image. Angstrom.

    Raises:
        StructureError: if the cell is so thin that enumerating the images would not fit in memory.
    """
    lattice = np.asarray(lattice, dtype=float)
    frac = np.asarray(frac_coords, dtype=float)
    n = len(frac)
    spacing = interplanar_spacings(lattice)
    n_max = np.ceil(radius / spacing - 0.5).astype(np.int64).clip(min=0)
    if n_max.min() == 0:
        n_max = np.maximum(n_max, (spacing < 2 * radius).astype(np.int64))
    n_images = int(np.prod(2 * n_max + 1))
    if n_images * n * n > _MAX_IMAGE_CANDIDATES:
        most = math.isqrt(_MAX_IMAGE_CANDIDATES // n_images)  # atoms that fit for this cell's images
        if n > most and spacing.min() >= _THIN_SPACING_ANGSTROM:
            raise StructureError(
                f"too many atoms: {n} sites need {n * n * n_images:,} pair distances over {n_images} periodic "
                f"images, more than the {_MAX_IMAGE_CANDIDATES:,} the geometry check computes; a cell of "
                f"this shape may hold at most {most:,} atoms"
            )
        raise StructureError(
            f"cell is degenerate: a lattice plane spacing of {spacing.min():.3g} A (a thin or needle cell) "
            f"needs {n_images:,} periodic images for {n} atoms"
        )
    axes = [np.arange(-m, m + 1) for m in n_max]
    offsets = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3).astype(float)
    diff = frac[None, :, :] - frac[:, None, :]
    diff -= np.floor(diff + 0.5)
    vec = (diff[:, :, None, :] + offsets[None, None, :, :]) @ lattice  # (i, j, M, 3)
    dist = np.linalg.norm(vec, axis=-1)
    zero = int(np.flatnonzero((offsets == 0).all(axis=1))[0])
    idx = np.arange(n)
    dist[idx, idx, zero] = np.inf
    best = dist.min(axis=-1)
    best[best > radius] = np.inf
    return best


def pair_shortest_distances(dist: np.ndarray, species: Sequence[str]) -> dict[tuple[str, str], float]:
    """The shortest distance of each element pair of a cell, Angstrom: ``{("H", "Li"): 2.04, ...}``.

    Args:
        dist: (n, n) distances from :func:`neighbour_distances` (inf beyond its radius).
        species: element symbols, one per site.

    Returns:
        One entry per unordered pair of elements present (keys in alphabetical order, a same-element pair
        included: its diagonal is an atom's distance to its own image); pairs with no distance within the
        radius are left out.
    """
    symbols = np.asarray(species)
    members = {el: np.flatnonzero(symbols == el) for el in sorted(set(species))}
    out: dict[tuple[str, str], float] = {}
    names = list(members)
    for k, a in enumerate(names):
        for b in names[k:]:
            d = float(dist[np.ix_(members[a], members[b])].min())
            if math.isfinite(d):
                out[(a, b)] = d
    return out


@lru_cache(maxsize=1)
def reference_pair_minima() -> dict[tuple[str, str], tuple[float, int]]:
    """Per element pair (alphabetical, ``("H", "Li")``) the shortest distance in Angstrom observed in the
    trusted sources of the data mirror and the number of rows holding the pair, read once from
    :data:`PAIR_MINIMA_FILE` (its ``provenance`` names the command, lake, sources and date).

    Raises:
        OSError: if the packaged table is missing; ValueError: if it is not the expected JSON.
    """
    return {pair: (v[0], int(v[1])) for pair, v in _pair_table().items()}


@lru_cache(maxsize=1)
def _pair_table() -> dict[tuple[str, str], tuple[float, ...]]:
    """:data:`PAIR_MINIMA_FILE` read once: per element pair (minimum, rows, percentile), numbers as floats."""
    doc = json.loads(PAIR_MINIMA_FILE.read_text())
    return {tuple(key.split("-")): tuple(map(float, v)) for key, v in doc["pairs"].items()}  # type: ignore[misc]


@lru_cache(maxsize=1)
def reference_pair_typical() -> dict[tuple[str, str], tuple[float, int]]:
    """Per element pair the percentile ``STRETCH_PERCENTILE`` (1) of its shortest distance over the trusted rows
    holding it and the number of those rows (the third and second numbers of :data:`PAIR_MINIMA_FILE`): the
    reference of :func:`stretched_cell_problem`, which one odd row cannot set (the Mg-Mg minimum is 1.455 A, from
    a prototype; its percentile 1 is 2.963 A, hcp Mg's shortest Mg-Mg 3.18 A)."""
    return {pair: (v[2], int(v[1])) for pair, v in _pair_table().items()}


def tightest_bond(
    dist: np.ndarray, species: Sequence[str]
) -> tuple[float, tuple[str, str], float, float, int] | None:
    """A cell's tightest bond ratio and where it lies: ``(ratio, pair, distance, reference, rows)``, else None.

    Over the element pairs of the cell with a reference (:func:`reference_pair_typical`, held by at least
    ``PAIR_FLOOR_MIN_ROWS`` rows), the pair's shortest distance (:func:`pair_shortest_distances`) over its
    reference; the smallest ratio. A genuine crystal holds at least one bond near its usual length (median ratio
    1.04 over the mirror), a molecular crystal or a vdW layer too (its covalent bonds). None when no pair has a
    reference, or when an element with a neighbour within the radius is in no referenced pair (noble gases, rare
    pairs: Pm in the Pm3XY anti-perovskites, whose tightest referenced pair is then an unbonded X-Y contact).

    Args:
        dist: (n, n) distances from :func:`neighbour_distances`, Angstrom.
        species: element symbols, one per site.
    """
    table = reference_pair_typical()
    best: tuple[float, tuple[str, str], float, float, int] | None = None
    seen: set[str] = set()
    covered: set[str] = set()
    for pair, d in pair_shortest_distances(dist, species).items():
        seen.update(pair)
        ref = table.get(pair)
        if ref is None or ref[1] < PAIR_FLOOR_MIN_ROWS:
            continue
        covered.update(pair)
        if best is None or d / ref[0] < best[0]:
            best = (d / ref[0], pair, d, ref[0], ref[1])
    return best if best is not None and seen <= covered else None


def stretched_cell_problem(
    lattice: np.ndarray, species: Sequence[str], frac_coords: np.ndarray, *, dist: np.ndarray | None = None
) -> str | None:
    """Why a cell has no bond as short as in known crystals (lengths in Bohr, or atoms bonded as in no known
    crystal), else None.

    Refused when the tightest bond ratio (:func:`tightest_bond`) lies above ``STRETCH_CEILING``: no bond of the cell
    is as short as in known crystals. A lattice written in Bohr is 1.8897 x too large (MgO's Mg-O at 3.98 A,
    62.9 A^3 per atom, inside the volume bounds). When no pair within ``MAX_NEAREST_NEIGHBOUR_ANGSTROM`` gives a
    ratio (a Bohr cell pushes a metal's neighbours beyond it: hcp La's La-La 3.73 A becomes 7.05 A), the pairs
    within that radius over ``BOHR_ANGSTROM`` (13.2 A) are taken. For the files a user hands us
    (``check_geometry(..., units_check=True)``), not the mirror's databases: measured by
    ``benchmarks/bohr_user_files.py`` and ``benchmarks/pair_min_distance.py --ceiling`` (docs/reliability.md).

    Args:
        lattice: (3, 3) rows a, b, c, Angstrom.
        species: element symbols, one per site.
        frac_coords: (n, 3) fractional coordinates.
        dist: the cell's :func:`neighbour_distances` within ``MAX_NEAREST_NEIGHBOUR_ANGSTROM``, when known.
    """
    lattice = np.asarray(lattice, dtype=float)
    frac = np.asarray(frac_coords, dtype=float)
    if dist is None:
        dist = neighbour_distances(lattice, frac, MAX_NEAREST_NEIGHBOUR_ANGSTROM)
    found = tightest_bond(dist, species)
    if found is None:
        try:
            wide = neighbour_distances(lattice, frac, MAX_NEAREST_NEIGHBOUR_ANGSTROM / BOHR_ANGSTROM)
        except StructureError:  # too many images for a wide look: the later checks judge the cell
            return None
        found = tightest_bond(wide, species)
    if found is None or found[0] <= STRETCH_CEILING:
        return None
    ratio, pair, d, ref_d, rows = found
    name = "-".join(pair)
    bohr = 1.0 / BOHR_ANGSTROM
    # the same numbers come from a file in Bohr and from a cell whose atoms sit apart as in no known crystal
    # (a campaign's surrogate artefact, written in Angstrom): the reason says both (issue 22, trial item 2)
    cause = (
        f"the lengths may be in Bohr (then convert them to Angstrom: multiply by {BOHR_ANGSTROM:.4f})"
        if ratio / bohr < 1.35
        else "the lengths may be in a unit other than Angstrom or a lattice constant wrong"
    )
    return (
        f"no bond as short as in known crystals: the shortest distance of every element pair is >= "
        f"{STRETCH_CEILING:g} x the shortest usual one (the tightest, {name} {d:.3f} A, is {ratio:.2f} x the "
        f"{ref_d:.3f} A of known crystals, percentile {STRETCH_PERCENTILE:g} over {rows:,} trusted rows); "
        f"{cause}, or the atoms are not bonded as in any known crystal of these elements"
    )


def pair_floor_problem(dist: np.ndarray, species: Sequence[str]) -> str | None:
    """Why a cell's shortest distance of some element pair is impossibly short, else None.

    The floor of a pair is ``PAIR_FLOOR_FACTOR`` x its shortest distance in :func:`reference_pair_minima`, for
    pairs held by at least ``PAIR_FLOOR_MIN_ROWS`` reference rows (rarer pairs: None, the shared distance rule
    alone applies). It catches what the shared rule ``d >= max(0.5 (r_i + r_j), 0.5 A)`` must let through
    (the search keeps that rule, and genuine prototypes lie at 0.51 of the radius sum): fractional coordinates
    read as Cartesian Angstrom put rock-salt LiH's Li-H at 0.866 A, 0.54 of its radius sum, where no known
    crystal has Li-H under 1.6 A.

    Args:
        dist: (n, n) distances from :func:`neighbour_distances`, Angstrom.
        species: element symbols, one per site.
    """
    table = reference_pair_minima()
    worst: tuple[float, tuple[str, str], float, float, int] | None = None
    for pair, d in pair_shortest_distances(dist, species).items():
        ref = table.get(pair)
        if ref is None or ref[1] < PAIR_FLOOR_MIN_ROWS:
            continue
        ratio = d / ref[0]
        if ratio < PAIR_FLOOR_FACTOR and (worst is None or ratio < worst[0]):
            worst = (ratio, pair, d, ref[0], ref[1])
    if worst is None:
        return None
    ratio, pair, d, ref_d, rows = worst
    name = "-".join(pair)
    return (
        f"{name} distance {d:.3f} A is {ratio:.2f} x the shortest {name} distance in the reference data "
        f"({ref_d:.3f} A over {rows:,} rows), below the floor of {PAIR_FLOOR_FACTOR:g} x (fractional "
        "coordinates read as Cartesian, wrong length units or a misread setting)"
    )


def check_geometry(
    lattice: np.ndarray,
    species: list[str],
    frac_coords: np.ndarray,
    *,
    pair_floor: bool = True,
    units_check: bool = False,
) -> None:
    """Refuse a cell that is not a physically sensible bulk crystal.

    Args:
        lattice: (3, 3) rows a, b, c, Angstrom.
        species: element symbols, one per site.
        frac_coords: (n, 3) fractional coordinates.
        pair_floor: also apply :func:`pair_floor_problem` (files and databases read by ingest); False for
            the project's own generated structures (universal-potential labels of random and rattled
            candidates), which the search makes under the shared distance rule alone.
        units_check: also apply :func:`stretched_cell_problem` (a cell in Bohr): True for the files a user hands
            us (``csp ingest folder``, ``csp ingest optimade``), False for the mirror's databases, which define
            the training sets, and for the re-check of stored rows.

    Raises:
        StructureError: for a volume per atom outside [MIN_VOLUME_PER_ATOM, MAX_VOLUME_PER_ATOM], two
            atoms closer than the shared distance rule allows, an element pair closer than
            PAIR_FLOOR_FACTOR x its reference minimum (:func:`pair_floor_problem`), with ``units_check`` a
            tightest bond ratio above STRETCH_CEILING (:func:`stretched_cell_problem`), an empty slab wider than MAX_VACUUM_ANGSTROM or an
            atom with no neighbour within MAX_NEAREST_NEIGHBOUR_ANGSTROM; the message gives the numbers.
    """
    lattice = np.asarray(lattice, dtype=float)
    frac = np.asarray(frac_coords, dtype=float)
    n = len(species)
    per_atom = float(abs(np.linalg.det(lattice))) / n
    if per_atom < MIN_VOLUME_PER_ATOM:
        raise StructureError(
            f"volume per atom {per_atom:.3g} A^3 is below {MIN_VOLUME_PER_ATOM} A^3 (atoms cannot be packed "
            "this densely; check the lattice lengths and units)"
        )
    dist = neighbour_distances(lattice, frac, MAX_NEAREST_NEIGHBOUR_ANGSTROM)
    limits = distance_limits(np.array([_atomic_number(s) for s in species]))
    ratio = dist / limits
    i, j = np.unravel_index(int(np.argmin(ratio)), ratio.shape)
    if dist[i, j] < limits[i, j] - DISTANCE_TOLERANCE_ANGSTROM:
        what = (
            f"{species[i]} site {i} and its own periodic image"
            if i == j
            else (f"{species[i]} site {i} and {species[j]} site {j}")
        )
        why = (
            "overlapping or duplicated sites"
            if dist[i, j] < MIN_DISTANCE_ANGSTROM
            else "half their covalent-radius sum: a misread setting, duplicated or wrong sites"
        )
        raise StructureError(f"{what} are {dist[i, j]:.3f} A apart, closer than {limits[i, j]:.3g} A ({why})")
    too_short = pair_floor_problem(dist, species) if pair_floor else None
    if too_short is not None:
        raise StructureError(too_short)
    # before the volume, vacuum and isolation checks, which a Bohr cell may fail for its units alone
    too_long = stretched_cell_problem(lattice, species, frac, dist=dist) if units_check else None
    if too_long is not None:
        raise StructureError(too_long)
    density = density_g_per_cm3(lattice, species)
    if density > MAX_DENSITY_G_PER_CM3:
        raise StructureError(
            f"density {density:.1f} g/cm^3 is above {MAX_DENSITY_G_PER_CM3:g} g/cm^3 (denser than any solid: "
            "too many atoms for the cell, e.g. a CIF expanded in the wrong setting)"
        )
    if per_atom > MAX_VOLUME_PER_ATOM:
        raise StructureError(
            f"volume per atom {per_atom:.4g} A^3 is above {MAX_VOLUME_PER_ATOM} A^3 (mostly empty space: an "
            "isolated atom, molecule or slab, not a bulk crystal)"
        )
    gap, axis = largest_vacuum(lattice, frac)
    if gap > MAX_VACUUM_ANGSTROM:
        raise StructureError(
            f"an empty slab {gap:.1f} A thick runs parallel to the cell face opposite axis {'abc'[axis]} "
            f"(more than {MAX_VACUUM_ANGSTROM} A of vacuum: a slab, 2-D sheet or molecule, not a bulk crystal)"
        )
    nearest = dist.min(axis=1)
    far = int(np.argmax(nearest))
    if not np.isfinite(nearest[far]):
        raise StructureError(
            f"{species[far]} site {far} has no neighbour within {MAX_NEAREST_NEIGHBOUR_ANGSTROM} A "
            "(an isolated atom, not part of a bulk crystal)"
        )


def structure_problem(structure) -> str | None:
    """Why ``csp ingest`` would refuse a pymatgen ``Structure`` as a user file (:func:`check_geometry` with the
    per-pair floor and the stretched-cell check), else None: the lake's physical check, which a campaign's
    result marks its entries with (``flows.results.result_of``; issue 22)."""
    try:
        check_geometry(
            np.asarray(structure.lattice.matrix),
            [site.specie.symbol for site in structure],
            np.asarray(structure.frac_coords),
            units_check=True,
        )
    except StructureError as exc:
        return str(exc)
    return None


@lru_cache(maxsize=1)
def _element_table() -> dict[str, tuple[int, float]]:
    """Element symbol -> (atomic number, atomic mass in g/mol), from pymatgen, read once."""
    from pymatgen.core import Element

    return {el.symbol: (int(el.Z), float(el.atomic_mass)) for el in Element}


def _atomic_number(symbol: str) -> int:
    """Atomic number of a symbol; 0 (no radius: the distance rule's floor applies) when unknown."""
    return _element_table().get(symbol, (0, 0.0))[0]


def density_g_per_cm3(lattice: np.ndarray, species: list[str]) -> float:
    """Mass density of a cell, g/cm^3 (atomic masses from pymatgen).

    Raises:
        KeyError: for a symbol that is not an element.
    """
    table = _element_table()
    mass = sum(table[s][1] for s in species)
    volume_cm3 = float(abs(np.linalg.det(np.asarray(lattice, dtype=float)))) * 1e-24
    return mass / _AVOGADRO / volume_cm3


def full_occupancy(occupancy: float) -> bool:
    """Whether a site's occupancy counts as full: within :data:`OCCUPANCY_TOLERANCE` of 1 (NaN is not)."""
    return bool(abs(float(occupancy) - 1.0) <= OCCUPANCY_TOLERANCE)


def cell_parameters_problem(lengths: Sequence[float | None], angles: Sequence[float | None]) -> str | None:
    """Why declared cell lengths (a, b, c in Angstrom) and angles (alpha, beta, gamma in degrees) describe no
    cell, else None. ``None`` entries (not declared) are skipped.

    Each length must be finite and positive; each angle finite and strictly between 0 and 180 degrees; and
    the three angles must close a cell (a positive volume: ``1 - cos^2 a - cos^2 b - cos^2 g + 2 cos a cos b
    cos g > 0``, e.g. 90, 90, 180 or 10, 10, 100 do not). A negative length would otherwise be read as the
    flipped vector and stored as if nothing were wrong.
    """
    for name, value in zip("abc", lengths, strict=True):
        if value is not None and not (math.isfinite(value) and value > 0):
            return f"cell length {name} = {value:g} A is not a positive finite length"
    for name, value in zip(("alpha", "beta", "gamma"), angles, strict=True):
        if value is not None and not (math.isfinite(value) and 0.0 < value < 180.0):
            return f"cell angle {name} = {value:g} degrees is not between 0 and 180 degrees"
    if all(v is not None for v in angles):
        ca, cb, cg = (math.cos(math.radians(float(v))) for v in angles)  # type: ignore[arg-type]
        if 1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg <= 1e-9:
            return (
                f"cell angles {', '.join(f'{float(v):g}' for v in angles)} degrees close no cell (zero or "
                "imaginary volume: one angle is at least the sum of the other two)"
            )
    return None


def formula_units_problem(z: float | None) -> str | None:
    """Why a declared number of formula units per cell (CIF ``_cell_formula_units_Z``) is impossible, else
    None (also for ``None``, not declared): it must be a whole number of at least 1."""
    if z is None:
        return None
    if not (math.isfinite(z) and z >= 1 and z == int(z)):
        return (
            f"declared Z (_cell_formula_units_Z) = {z:g} is not a whole number of formula units of at least 1"
        )
    return None


def density_problem(declared: float | None, tag: str = "density") -> str | None:
    """Why a declared density (g/cm^3) is impossible (zero, negative, NaN, infinite), else None (also for
    ``None``, not declared)."""
    if declared is None or (math.isfinite(declared) and declared > 0):
        return None
    return f"declared {tag} = {declared:g} g/cm^3 is not a positive finite density"


def compare_density(declared: float | None, lattice: np.ndarray, species: list[str]) -> str | None:
    """``None`` when a declared density (g/cm^3) agrees with the cell's within DENSITY_TOLERANCE (or none is
    declared), else why: also for a declared density that is zero, negative or not finite."""
    if declared is None:
        return None
    impossible = density_problem(declared)
    if impossible:
        return impossible
    parsed = density_g_per_cm3(lattice, species)
    if abs(parsed - declared) <= DENSITY_TOLERANCE * declared:
        return None
    cubed = BOHR_ANGSTROM**-3  # a cell in Bohr: 1.8897 x too long on each axis, 6.75 x too light
    if abs(declared / parsed - cubed) <= DENSITY_TOLERANCE * cubed:
        return (
            f"lengths look like Bohr (1 Bohr = {BOHR_ANGSTROM:.4f} A): the declared density {declared:g} g/cm^3 is "
            f"{declared / parsed:.2f} x the parsed cell's {parsed:.3g} g/cm^3, as for a cell 1.8897 x too long on "
            f"each axis; convert the lengths to Angstrom (multiply by {BOHR_ANGSTROM:.4f})"
        )
    return (
        f"declared density {declared:g} g/cm^3 disagrees with the parsed cell's {parsed:.3g} g/cm^3 "
        "(missing or extra atoms, or the cell read in another setting)"
    )


def _common_factor(composition) -> int:
    """The greatest common divisor of a formula's counts (1 when any count is fractional)."""
    import math

    amounts = [float(v) for v in composition.values()]
    if any(abs(a - round(a)) > 1e-6 for a in amounts):
        return 1
    return math.gcd(*(round(a) for a in amounts))


def compare_formulas(
    declared: str, species: list[str], *, formula_units: int | None = None, unit: bool = False
) -> str | None:
    """``None`` when a declared formula agrees with the sites' composition and count, else the reason.

    The compositions must agree once reduced (``Na4 Cl4`` and sites Na, Cl), and so must the counts: the
    cell holds the declared formula itself (``Na4 Cl4``, 8 sites) or ``formula_units`` times it (CIF's
    ``_cell_formula_units_Z``: ``Na Cl`` with Z = 4, 8 sites); with no Z declared, a formula in lowest
    terms (``Na Cl``) may come any whole number of times, one that is not (``Si8``, ``Bi2``) states the
    cell's content. So ``Si8`` declared and 16 Si sites, or ``Bi2`` and 36 sites, disagree. With ``unit``,
    the declared formula is a unit the cell holds a whole number of times, reduced or not (OPTIMADE's
    ``chemical_formula_hill`` is "the most chemically relevant unit": ``C6H6`` for a cell of four benzene
    molecules), so only a cell that is no whole multiple of it disagrees.
    A declared formula that cannot be read is not compared (the reason would be the parser's, not the
    data's).
    """
    import warnings

    from pymatgen.core import Composition

    text = (declared or "").strip().strip("'\"").strip()
    if not text or text == "?":
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            stated = Composition(text)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
    if stated.num_atoms <= 0:
        return None
    counts: dict[str, float] = {}
    for s in species:
        counts[s] = counts.get(s, 0.0) + 1.0
    parsed = Composition(counts)
    if not stated.reduced_composition.almost_equals(parsed.reduced_composition, rtol=1e-3, atol=1e-3):
        return (
            f"declared formula {stated.reduced_formula} ({text}) disagrees with the sites' formula "
            f"{parsed.reduced_formula} (missing, extra or mislabelled sites)"
        )
    n, per = len(species), float(stated.num_atoms)
    if formula_units is not None and formula_units > 0:
        if min(abs(n - per), abs(n - formula_units * per)) < 1e-3:
            return None
        expected = f"{per:g} or {formula_units * per:g} (Z = {formula_units})"
    elif _common_factor(stated) > 1 and not unit:  # not in lowest terms (Si8, Bi2): the cell's content
        if abs(n - per) < 1e-3:
            return None
        expected = f"{per:g}"
    else:
        multiple = n / per
        if multiple >= 1.0 - 1e-6 and abs(multiple - round(multiple)) < 1e-3:
            return None
        expected = f"a multiple of {per:g}"
    return (
        f"declared formula {text} counts {per:g} atoms, the parsed cell holds {n}, not {expected} "
        "(missing or extra sites, or the cell read in another setting)"
    )
