"""The science package's one space-group detection: spglib at one distance and one angle tolerance.

Every space group that ``csp`` reports (ranking, matching against references, CIF export) comes from
:func:`analyze` at :data:`SYMPREC` = 0.1 Angstrom and :data:`ANGLE_TOLERANCE_DEG` = 5 degrees: loose enough
for model-optimised structures (a cubic cell strained by a few tenths of a degree stays cubic) and tight
enough to tell rock salt (225) from zinc blende (216). The data lake (``storage.readers``) detects the space
groups of ingested structures with the same two numbers; ``tests/test_symmetry_consistency.py`` checks that
both give the same group on strained and rattled cells.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from csp.structures.crystal import Crystal

if TYPE_CHECKING:
    from pymatgen.core import Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

#: Distance tolerance (Angstrom) of every space-group detection in ``csp``.
SYMPREC = 0.1
#: Angle tolerance (degrees) of every space-group detection in ``csp``.
ANGLE_TOLERANCE_DEG = 5.0


def as_structure(item: Crystal | Structure) -> Structure:
    """A pymatgen ``Structure`` of a :class:`Crystal` (a ``Structure`` is returned as is)."""
    return item.to_pymatgen() if isinstance(item, Crystal) else item


def analyze(item: Crystal | Structure, symprec: float = SYMPREC) -> SpacegroupAnalyzer:
    """pymatgen's ``SpacegroupAnalyzer`` (spglib) at ``symprec`` Angstrom and :data:`ANGLE_TOLERANCE_DEG`."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    return SpacegroupAnalyzer(as_structure(item), symprec=symprec, angle_tolerance=ANGLE_TOLERANCE_DEG)


def spacegroup_number(item: Crystal | Structure, symprec: float = SYMPREC) -> int:
    """International space-group number (1..230) detected at ``symprec`` (see :func:`analyze`)."""
    return int(analyze(item, symprec).get_space_group_number())


def wyckoff_string(dataset: Any, symbols: list[str]) -> str:
    """``"Mg:4a O:4b"`` of an spglib dataset: one ``element:multiplicity+letter`` per orbit of the input
    cell, multiplicities in the conventional standard cell, sorted by element then letter."""
    n_input = len(dataset.wyckoffs)
    per_input = len(dataset.std_types) / max(1, n_input)
    orbits: dict[int, list[int]] = {}
    for i, rep in enumerate(dataset.equivalent_atoms):
        orbits.setdefault(int(rep), []).append(i)
    labels = sorted(
        (symbols[rep], f"{round(len(members) * per_input)}{dataset.wyckoffs[rep]}")
        for rep, members in orbits.items()
    )
    return " ".join(f"{s}:{label}" for s, label in sorted(labels, key=lambda t: (t[0], t[1][-1], t[1])))


def detect(lattice: Any, numbers: Any, frac_coords: Any, symprec: float = SYMPREC) -> tuple[int, str] | None:
    """Space-group number and Wyckoff string (:func:`wyckoff_string`) of one cell, detected by spglib at
    ``symprec`` Angstrom and :data:`ANGLE_TOLERANCE_DEG` (the same call :func:`analyze` makes, without
    building a pymatgen object); ``None`` when spglib finds no symmetry (a non-finite or degenerate cell).

    Args:
        lattice: (3, 3) row vectors, Angstrom (or 9 floats).
        numbers: (n,) atomic numbers.
        frac_coords: (n, 3) fractional coordinates (or 3n floats).
    """
    import numpy as np
    import spglib

    from csp.structures.elements import symbol

    lat = np.asarray(lattice, dtype=np.float64).reshape(3, 3)
    frac = np.asarray(frac_coords, dtype=np.float64).reshape(-1, 3)
    z = np.asarray(numbers, dtype=np.int64).reshape(-1)
    if not (np.isfinite(lat).all() and np.isfinite(frac).all()) or len(z) == 0:
        return None
    try:
        with warnings.catch_warnings():  # spglib 2 warns that it returns None on failure, which we handle
            warnings.simplefilter("ignore", DeprecationWarning)
            dataset = spglib.get_symmetry_dataset(
                (lat, frac, z), symprec=symprec, angle_tolerance=ANGLE_TOLERANCE_DEG
            )
    except (TypeError, ValueError, RuntimeError, spglib.SpglibError):  # spglib refuses a degenerate cell
        return None
    if dataset is None:
        return None
    return int(dataset.number), wyckoff_string(dataset, [symbol(int(v)) for v in z])


def detect_structure(item: Crystal | Structure, symprec: float = SYMPREC) -> tuple[int, str] | None:
    """:func:`detect` of a :class:`Crystal` or pymatgen ``Structure``."""
    s = as_structure(item)
    return detect(s.lattice.matrix, [site.specie.Z for site in s], s.frac_coords, symprec)


def spacegroup_symbol(number: int) -> str:
    """Hermann-Mauguin symbol of a space-group number (1..230), e.g. 225 -> ``Fm-3m``."""
    from pymatgen.symmetry.groups import SpaceGroup

    return SpaceGroup.from_int_number(int(number)).symbol
