"""The one in-memory crystal representation shared by graphs, models, search and storage faces.

A :class:`Crystal` is three arrays: a row-vector lattice matrix (Angstrom), atomic numbers and
fractional coordinates. It deliberately depends on numpy alone so that the training core runs on
machines without pymatgen; conversion to and from pymatgen happens lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from csp.errors import InputError

if TYPE_CHECKING:
    from pymatgen.core import Structure


@dataclass(frozen=True, slots=True)
class Crystal:
    """A periodic crystal: ``lattice`` (3, 3) rows a, b, c in Angstrom; ``numbers`` (n,) atomic
    numbers; ``frac_coords`` (n, 3) fractional coordinates."""

    lattice: np.ndarray
    numbers: np.ndarray
    frac_coords: np.ndarray

    def __post_init__(self) -> None:
        lattice = np.asarray(self.lattice, dtype=np.float64).reshape(3, 3)
        numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        frac = np.asarray(self.frac_coords, dtype=np.float64).reshape(-1, 3)
        if len(numbers) != len(frac):
            raise InputError(f"Crystal has {len(numbers)} atomic numbers but {len(frac)} coordinates.")
        if len(numbers) == 0:
            raise InputError("Crystal has no sites.")
        if not (np.isfinite(lattice).all() and np.isfinite(frac).all()):
            raise InputError("Crystal lattice or coordinates contain NaN or infinity.")
        if abs(np.linalg.det(lattice)) < 1e-6:
            raise InputError("Crystal lattice is singular (zero volume).")
        if numbers.min() < 1 or numbers.max() > 118:
            raise InputError("Crystal atomic numbers must lie in 1..118.")
        object.__setattr__(self, "lattice", lattice)
        object.__setattr__(self, "numbers", numbers)
        object.__setattr__(self, "frac_coords", frac)

    @property
    def num_sites(self) -> int:
        return len(self.numbers)

    @property
    def volume(self) -> float:
        return float(abs(np.linalg.det(self.lattice)))

    @property
    def cart_coords(self) -> np.ndarray:
        return self.frac_coords @ self.lattice

    @classmethod
    def from_pymatgen(cls, structure: Structure) -> Crystal:
        """Build from an ordered pymatgen ``Structure`` (disordered sites are refused)."""
        if not structure.is_ordered:
            raise InputError("Disordered structures (partial occupancies) are not supported.")
        return cls(
            lattice=structure.lattice.matrix.copy(),
            numbers=np.array([site.specie.Z for site in structure], dtype=np.int64),
            frac_coords=structure.frac_coords.copy(),
        )

    def to_pymatgen(self) -> Structure:
        from pymatgen.core import Lattice, Structure

        return Structure(Lattice(self.lattice), [int(z) for z in self.numbers], self.frac_coords)
