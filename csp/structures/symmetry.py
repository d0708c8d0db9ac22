"""The science package's one space-group detection: spglib at one distance and one angle tolerance.

Every space group that ``csp`` reports (ranking, matching against references, CIF export) comes from
:func:`analyze` at :data:`SYMPREC` = 0.1 Angstrom and :data:`ANGLE_TOLERANCE_DEG` = 5 degrees: loose enough
for model-optimised structures (a cubic cell strained by a few tenths of a degree stays cubic) and tight
enough to tell rock salt (225) from zinc blende (216). The data lake (``storage.readers``) detects the space
groups of ingested structures with the same two numbers; ``tests/test_symmetry_consistency.py`` checks that
both give the same group on strained and rattled cells.

Every spglib call of ``csp`` runs inside :func:`quiet_spglib`, the one place that keeps spglib's own
diagnostics from the user: the C library's ``spglib: ...`` lines on stderr (``No centring was found.``,
``ssm_get_exact_positions failed.`` on degenerate cells) and its Python warnings. What spglib could not
find, ``csp`` says in its own words: :func:`detect` returns ``None`` (a row's ``spacegroup`` is null) and
:func:`analyze` and :func:`write_symmetrised_cif` raise :class:`SymmetryError`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csp.errors import InputError
from csp.structures.crystal import Crystal

if TYPE_CHECKING:
    from pymatgen.core import Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

#: Distance tolerance (Angstrom) of every space-group detection in ``csp``.
SYMPREC = 0.1
#: Angle tolerance (degrees) of every space-group detection in ``csp``.
ANGLE_TOLERANCE_DEG = 5.0


#: The environment variable that switches spglib's C diagnostics (stderr) off when ``OFF``.
SPGLIB_WARNING_ENV = "SPGLIB_WARNING"


class SymmetryError(InputError):
    """spglib finds no space group for a cell (a degenerate cell); one sentence naming the cell's formula."""


@contextlib.contextmanager
def quiet_spglib() -> Iterator[None]:
    """Run spglib (directly, or through pymatgen or ASE) without its diagnostics reaching the user.

    The C library writes ``spglib: ...`` lines to the process's stderr unless ``SPGLIB_WARNING=OFF``; that
    default is set for the whole process the first time (later calls on the same objects, e.g. a
    ``SpacegroupAnalyzer``'s refined cell, stay quiet too). A person who sets ``SPGLIB_WARNING`` to debug
    spglib keeps their value. Inside the block spglib's Python warnings are dropped: the deprecation notices
    of its error handling, repeated on every cell it fails on, and of its dict interface.
    """
    os.environ.setdefault(SPGLIB_WARNING_ENV, "OFF")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"spglib(\.|$)")
        warnings.filterwarnings("ignore", message=r".*(OLD_ERROR_HANDLING|dict interface is deprecated)")
        yield


def as_structure(item: Crystal | Structure) -> Structure:
    """A pymatgen ``Structure`` of a :class:`Crystal` (a ``Structure`` is returned as is)."""
    return item.to_pymatgen() if isinstance(item, Crystal) else item


def analyze(item: Crystal | Structure, symprec: float = SYMPREC) -> SpacegroupAnalyzer:
    """pymatgen's ``SpacegroupAnalyzer`` (spglib) at ``symprec`` Angstrom and :data:`ANGLE_TOLERANCE_DEG`.

    Raises:
        SymmetryError: spglib finds no space group (atoms on top of each other, a flat or non-finite cell).
    """
    import spglib
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    structure = as_structure(item)
    with quiet_spglib():
        try:
            return SpacegroupAnalyzer(structure, symprec=symprec, angle_tolerance=ANGLE_TOLERANCE_DEG)
        except (ValueError, TypeError, spglib.SpglibError) as exc:
            raise _no_group(structure, symprec) from exc


def _no_group(structure: Structure, symprec: float | None) -> SymmetryError:
    return SymmetryError(
        f"No space group is found for {structure.composition.reduced_formula} at {symprec} A and "
        f"{ANGLE_TOLERANCE_DEG:g} degrees: the cell is degenerate (atoms on top of each other, or a "
        "flat or non-finite lattice)."
    )


def write_symmetrised_cif(
    item: Crystal | Structure, path: str | Path, symprec: float | None = SYMPREC
) -> Path:
    """Write a CIF symmetrised at ``symprec`` (pymatgen's ``CifWriter``, spglib; ``None`` writes P1).

    Raises:
        SymmetryError: spglib cannot symmetrise the cell (a degenerate cell); nothing is written.
    """
    import spglib
    from pymatgen.io.cif import CifWriter

    structure = as_structure(item)
    with quiet_spglib():
        try:
            writer = CifWriter(structure, symprec=symprec)
        except (ValueError, TypeError, spglib.SpglibError) as exc:
            raise _no_group(structure, symprec) from exc
    writer.write_file(path)
    return Path(path)


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
        with quiet_spglib():  # spglib returns None (or raises) on a degenerate cell, which we handle
            dataset = spglib.get_symmetry_dataset(
                (lat, frac, z), symprec=symprec, angle_tolerance=ANGLE_TOLERANCE_DEG
            )
    except (TypeError, ValueError, RuntimeError, spglib.SpglibError):  # spglib refuses a degenerate cell
        return None
    if dataset is None:
        return None
    return int(dataset.number), wyckoff_string(dataset, [symbol(int(v)) for v in z])


def detect_many(lattices: Any, numbers: Any, frac_coords: Any) -> list[tuple[int, str] | None]:
    """:func:`detect` of B cells sharing one species list: lattices (B, 3, 3), numbers (n,), frac_coords
    (B, n, 3); one result per cell, in order (the search sends its batches here from a worker process)."""
    import numpy as np

    lats = np.asarray(lattices, dtype=np.float64).reshape(-1, 3, 3)
    frac = np.asarray(frac_coords, dtype=np.float64).reshape(len(lats), -1, 3)
    return [detect(lat, numbers, f) for lat, f in zip(lats, frac, strict=True)]


def detect_structure(item: Crystal | Structure, symprec: float = SYMPREC) -> tuple[int, str] | None:
    """:func:`detect` of a :class:`Crystal` or pymatgen ``Structure``."""
    s = as_structure(item)
    return detect(s.lattice.matrix, [site.specie.Z for site in s], s.frac_coords, symprec)


@lru_cache(maxsize=256)
def spacegroup_symbol(number: int) -> str:
    """Hermann-Mauguin symbol of a space-group number (1..230), e.g. 225 -> ``Fm-3m``.

    Cached: pymatgen builds all the group's operations for it (up to half a second for a cubic group).

    Raises:
        ValueError: for a number outside 1..230.
    """
    from pymatgen.symmetry.groups import SpaceGroup

    return SpaceGroup.from_int_number(int(number)).symbol
