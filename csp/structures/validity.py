"""What geometry the shipped models can score: the bounds the graph builder and the scorer enforce.

The models see a crystal only through each atom's 12 nearest neighbours (bond vectors expanded on an
8 A radial basis). Two kinds of input lie outside anything they were trained on and are refused with
:class:`GeometryError` (an :class:`~csp.errors.InputError`) wherever graphs are built (scoring and
training alike):

- two atoms closer than ``MIN_DISTANCE_ANGSTROM`` (0.5 A, the same floor ``storage.validation`` applies
  at ingest; a test keeps them equal): the shortest distance in the training data is 0.74 A (H2);
- an atom whose 12th nearest neighbour lies farther than ``MAX_KTH_NEIGHBOUR_ANGSTROM`` (11.0 A): the
  largest 12th-neighbour distance in the three models' training sets is 10.95 A (``gnome:5b46cb31d1``, a
  337 A^3/atom outlier; the next is 8.59 A), measured with ``benchmarks/geometry_stats.py`` over the 800
  sparsest structures of each set (largest volume per atom and widest empty slab). The bound also stays
  below the 32.767 A where the graph builder's packed sort key saturates.

What is *flagged* (a :class:`GeometryWarning` from :meth:`csp.models.infer.Scorer.score`), because the graph
cannot tell it apart: an empty slab wider than ``MAX_VACUUM_ANGSTROM`` between planes of atoms. With 12
neighbours per atom, layers farther apart than the in-plane neighbour shells are invisible: graphite's
predictions are identical (to 6 decimals) for interlayer spacings of 3.35, 6.7, 10, 15, 20 and 30 A (see
the README's "Bad input" section), so the prediction is that of an isolated layer.
"""

from __future__ import annotations

import numpy as np

from csp.errors import InputError

__all__ = [
    "MAX_KTH_NEIGHBOUR_ANGSTROM",
    "MAX_VACUUM_ANGSTROM",
    "MIN_DISTANCE_ANGSTROM",
    "GeometryError",
    "GeometryWarning",
    "largest_vacuum",
]

MIN_DISTANCE_ANGSTROM = 0.5
"""No two atoms (periodic images included) closer than this, Angstrom (equal to storage's floor)."""

MAX_KTH_NEIGHBOUR_ANGSTROM = 11.0
"""No atom's k-th nearest neighbour farther than this, Angstrom (training data: at most 10.95 A)."""


MAX_VACUUM_ANGSTROM = 7.0
"""An empty slab wider than this (Angstrom) is flagged: the graph cannot see across it (storage refuses it)."""


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

    def named(self, name: str) -> GeometryError:
        """The same error naming the structure (an id) instead of its position."""
        return GeometryError(self.detail, index=self.index, name=name)
