"""Element data for the search constraints: symbols, radii and atomic volumes.

Two numbers per element enter the paper's constraints:

* **radius** ``r`` for the distance constraint ``d_ij >= 0.5 * (r_i + r_j)``. We use the *covalent*
  radius (Cordero et al. 2008, as tabulated in pyxtal's element table). It is defined for every element
  from H to Cm, it is the radius pyxtal itself uses for its distance tolerances, and because the paper's
  factor 0.5 already makes the constraint loose, the choice between covalent and atomic radii changes the
  threshold by only ~0.1 A for the validation compounds.
* **atomic volume** ``v`` for the volume constraint ``V in [0.5, 1.5] * sum(v)``. We use the mean of the
  covalent-radius sphere and the van der Waals-radius sphere, ``(4/3) pi (r_cov^3 + r_vdw^3) / 2``: the
  midpoint of the interval pyxtal draws its per-atom volumes from. Checked against the 16 validation
  structures with CIFs: the experimental volume lies inside [0.5, 1.5] x sum(v) for 15 of them (ratios 0.65
  to 1.32); AuCl (open chains) sits at 1.74. Elemental molar volumes fail badly for oxides and hydrides
  (MgO 0.36, LiH 0.42) and covalent spheres alone fail for open tetrahedral solids (GaAs 3.1).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from csp.errors import InputError

#: Highest atomic number with both radii tabulated (Cm).
MAX_SUPPORTED_Z = 96


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, int], list[str], np.ndarray, np.ndarray]:
    from pyxtal.database.element import Element

    symbol_to_z: dict[str, int] = {}
    symbols = [""] * (MAX_SUPPORTED_Z + 1)
    radius = np.full(MAX_SUPPORTED_Z + 1, np.nan)
    volume = np.full(MAX_SUPPORTED_Z + 1, np.nan)
    for z in range(1, MAX_SUPPORTED_Z + 1):
        element = Element(z)
        symbols[z] = element.short_name
        symbol_to_z[element.short_name] = z
        r_cov, r_vdw = float(element.covalent_radius), float(element.vdw_radius)
        radius[z] = r_cov
        volume[z] = 0.5 * (4.0 / 3.0) * np.pi * (r_cov**3 + r_vdw**3)
    return symbol_to_z, symbols, radius, volume


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol such as ``"Mg"``.

    Raises:
        KeyError: if the symbol is not a supported element (H..Cm).
    """
    return _table()[0][symbol]


def is_supported_symbol(symbol: str) -> bool:
    """Whether ``symbol`` is an element with radius and volume data (H..Cm)."""
    return symbol in _table()[0]


def symbol(z: int) -> str:
    """Element symbol of atomic number ``z`` (1..96)."""
    if not 1 <= int(z) <= MAX_SUPPORTED_Z:
        raise InputError(f"Atomic number {z} is outside the supported range 1..{MAX_SUPPORTED_Z}.")
    return _table()[1][int(z)]


def covalent_radius(numbers: np.ndarray) -> np.ndarray:
    """Covalent radii in Angstrom for an array of atomic numbers."""
    return _table()[2][np.asarray(numbers, dtype=np.int64)]


def atomic_volume(numbers: np.ndarray) -> np.ndarray:
    """Atomic volumes in cubic Angstrom (see the module docstring) for an array of atomic numbers."""
    return _table()[3][np.asarray(numbers, dtype=np.int64)]
