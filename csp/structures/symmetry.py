"""The science package's one space-group detection: spglib at one distance and one angle tolerance.

Every space group that ``csp`` reports (ranking, matching against references, CIF export) comes from
:func:`analyze` at :data:`SYMPREC` = 0.1 Angstrom and :data:`ANGLE_TOLERANCE_DEG` = 5 degrees: loose enough
for model-optimised structures (a cubic cell strained by a few tenths of a degree stays cubic) and tight
enough to tell rock salt (225) from zinc blende (216). The data lake (``storage.readers``) detects the space
groups of ingested structures with the same two numbers; ``tests/test_symmetry_consistency.py`` checks that
both give the same group on strained and rattled cells.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
