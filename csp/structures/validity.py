"""What geometry the shipped models can score: the bounds the search, the graph builder and ingest enforce.

**One distance rule** (:func:`distance_limits`): two atoms ``i`` and ``j`` (periodic images included) may
not be closer than ``max(DISTANCE_FACTOR * (r_i + r_j), MIN_DISTANCE_ANGSTROM)``, ``r`` the covalent radii
of :mod:`csp.structures.elements` (Cordero et al. 2008) and ``DISTANCE_FACTOR`` the paper's 0.5. The
search's generator (:func:`csp.search.generate.check_validity`) checks every pair against it, the graph
builder (:mod:`csp.models.graphs`) checks every bond of the graph against it (with
``DISTANCE_TOLERANCE_ANGSTROM`` of slack, so the generator is the stricter of the two) and
``storage.validation`` refuses an ingested cell that breaks it. So the search never proposes a candidate
that the scorer refuses: before the floor was part of the rule, the paper's 0.5 (r_i + r_j) allowed two
hydrogens 0.31 A apart, which the scorer then refused and which ended every hydride campaign (issue 22).

The models see a crystal only through each atom's 12 nearest neighbours (bond vectors expanded on an
8 A radial basis). Two kinds of input lie outside anything they were trained on and are refused with
:class:`GeometryError` (an :class:`~csp.errors.InputError`) wherever graphs are built (scoring and
training alike):

- two atoms closer than their limit under the distance rule above (whose floor ``MIN_DISTANCE_ANGSTROM``,
  0.5 A, stays below the shortest distance in the training data, 0.74 A in H2);
- an atom whose 12th nearest neighbour lies farther than ``MAX_KTH_NEIGHBOUR_ANGSTROM`` (11.0 A): the
  largest 12th-neighbour distance in the three models' training sets is 10.95 A (``gnome:5b46cb31d1``, a
  337 A^3/atom outlier; the next is 8.59 A), measured with ``benchmarks/geometry_stats.py`` over the 800
  sparsest structures of each set (largest volume per atom and widest empty slab). The bound also stays
  below the 32.767 A where the graph builder's packed sort key saturates.

What is *flagged* (a :class:`GeometryWarning` from :meth:`csp.models.infer.Scorer.score`), because the graph
cannot tell it apart: an empty slab wider than ``MAX_VACUUM_ANGSTROM`` between planes of atoms. With 12
neighbours per atom, layers farther apart than the in-plane neighbour shells are invisible: graphite's
predictions are identical (to 6 decimals) for interlayer spacings of 3.35, 6.7, 10, 15, 20 and 30 A (see
docs/bad-input.md), so the prediction is that of an isolated layer.
"""

from __future__ import annotations

import numpy as np

from csp.errors import InputError

__all__ = [
    "DISTANCE_FACTOR",
    "DISTANCE_TOLERANCE_ANGSTROM",
    "MAX_KTH_NEIGHBOUR_ANGSTROM",
    "MAX_VACUUM_ANGSTROM",
    "MIN_DISTANCE_ANGSTROM",
    "GeometryError",
    "GeometryWarning",
    "distance_limits",
    "largest_vacuum",
    "too_close_reason",
]

MIN_DISTANCE_ANGSTROM = 0.5
"""No two atoms (periodic images included) closer than this, Angstrom (equal to storage's floor)."""

DISTANCE_FACTOR = 0.5
"""The paper's distance constraint: ``d_ij >= DISTANCE_FACTOR * (r_i + r_j)`` (covalent radii)."""

DISTANCE_TOLERANCE_ANGSTROM = 1e-6
"""Slack of the scorer's and ingest's distance check, Angstrom: the generator's check has none, so a
candidate the search accepts is never refused by the scorer over rounding."""

MAX_KTH_NEIGHBOUR_ANGSTROM = 11.0
"""No atom's k-th nearest neighbour farther than this, Angstrom (training data: at most 10.95 A)."""


MAX_VACUUM_ANGSTROM = 7.0
"""An empty slab wider than this (Angstrom) is flagged: the graph cannot see across it (storage refuses it)."""


_COVALENT_RADII = np.concatenate(
    [
        [np.nan],
        np.fromstring(
            "0.31 0.28 1.28 0.96 0.84 0.78 0.78 0.7 0.57 0.58 1.66 1.41 1.21 1.11 1.07 1.25 1.02 1.06 2.03 "
            "1.76 1.7 1.6 1.53 1.39 1.39 1.32 1.26 1.24 1.32 1.22 1.22 1.2 1.19 1.2 1.2 1.16 2.2 1.95 1.9 "
            "1.75 1.64 1.54 1.47 1.46 1.42 1.39 1.45 1.44 1.42 1.39 1.39 1.38 1.39 1.4 2.44 2.15 2.07 2.04 "
            "2.03 2.01 1.99 1.98 1.98 1.96 1.94 1.92 1.92 1.89 1.9 1.87 1.87 1.75 1.7 1.62 1.51 1.44 1.41 "
            "1.36 1.36 1.32 1.45 1.46 1.48 1.4 1.5 1.5 2.6 2.21 2.15 2.06 2.0 1.96 1.9 1.87 1.8 1.69",
            sep=" ",
        ),
    ]
)
"""Covalent radii (Angstrom) of Z = 0..96, Z = 0 undefined: :func:`csp.structures.elements.covalent_radius`'s
values (pyxtal's table, Cordero et al. 2008), written out so that graph building needs no pyxtal (the training
machine has none); ``tests/csp/search/test_one_validity_rule.py`` keeps the two equal."""


def _radii(numbers: np.ndarray) -> np.ndarray:
    """Covalent radii (Angstrom) of atomic numbers; NaN where none is tabulated (Z < 1 or Z > 96)."""
    z = np.asarray(numbers, dtype=np.int64)
    known = (z >= 1) & (z < len(_COVALENT_RADII))
    return np.where(known, _COVALENT_RADII[np.where(known, z, 0)], np.nan)


def distance_limits(numbers_i: np.ndarray, numbers_j: np.ndarray | None = None) -> np.ndarray:
    """The shortest allowed distance between atoms, Angstrom: ``max(0.5 (r_i + r_j), 0.5 A)``.

    Args:
        numbers_i: atomic numbers, any shape.
        numbers_j: atomic numbers broadcastable against ``numbers_i``; when omitted, the (n, n) table of
            every pair of ``numbers_i`` (which must then be 1-D) is returned.

    Returns:
        Limits with the broadcast shape of the inputs (``(n, n)`` for one list). An element with no
        tabulated radius (beyond Cm) gets the floor ``MIN_DISTANCE_ANGSTROM``.
    """
    r_i = _radii(numbers_i)
    if numbers_j is None:
        r_i, r_j = r_i[:, None], r_i[None, :]
    else:
        r_j = _radii(numbers_j)
    pair = DISTANCE_FACTOR * (r_i + r_j)
    return np.fmax(np.nan_to_num(pair, nan=0.0), MIN_DISTANCE_ANGSTROM)


def too_close_reason(symbol_i: str, symbol_j: str, distance: float, limit: float) -> str:
    """The one wording of a broken distance rule (search rows, scorer errors and quarantine rows)."""
    return f"atoms too close: {symbol_i}-{symbol_j} {distance:.3f} A < {limit:.3f} A"


class GeometryWarning(UserWarning):
    """A crystal is scored, but part of its geometry is invisible to the 12-neighbour graph."""


def largest_vacuum(lattice: np.ndarray, frac_coords: np.ndarray) -> float:
    """Thickness (Angstrom) of the widest slab between atom planes parallel to a cell face with no atom."""
    lattice = np.asarray(lattice, dtype=float)
    spacing = 1.0 / np.linalg.norm(np.linalg.inv(lattice).T, axis=-1)
    f = np.sort(np.mod(np.asarray(frac_coords, dtype=float), 1.0), axis=0)
    gaps = np.diff(np.vstack([f, f[:1] + 1.0]), axis=0).max(axis=0)
    return float((gaps * spacing).max())


class GeometryError(InputError):
    """A crystal whose geometry the models never saw; ``index`` is its position in the batch.

    Attributes:
        detail: what is wrong, without the crystal's position.
        index: 0-based position of the offending crystal in the batch that was being built.
    """

    def __init__(self, detail: str, *, index: int, name: str | None = None) -> None:
        self.detail = detail
        self.index = index
        self.name = name
        where = f"structure {name}" if name is not None else f"crystal {index} of the batch"
        super().__init__(f"{where}: {detail}")

    def __reduce__(self):  # keyword-only fields: pickle (process pools) rebuilds through them
        return (_rebuild_geometry_error, (self.detail, self.index, self.name))

    def named(self, name: str) -> GeometryError:
        """The same error naming the structure (an id) instead of its position."""
        return GeometryError(self.detail, index=self.index, name=name)


def _rebuild_geometry_error(detail: str, index: int, name: str | None) -> GeometryError:
    return GeometryError(detail, index=index, name=name)
