"""Element features for the atom embedding, read from a committed JSON table (numpy + stdlib only).

The table ``element_features.json`` beside this module holds raw element properties for H..Pu
(Z = 1..94). It was generated once from pymatgen by :func:`generate_element_table`; the training
machine, which has no pymatgen, only reads it.

Feature vector per element (see :func:`element_feature_matrix`):

* numeric, standardised over the supported elements (missing values, e.g. the electronegativity of
  He, Ne and Ar, become the mean, 0): Pauling electronegativity, covalent radius, empirical atomic
  radius, atomic mass, first ionisation energy, electron affinity, electrons beyond the previous
  noble-gas core, molar volume;
* one-hot: group 1..18, period 1..7, block s/p/d/f.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

ELEMENT_TABLE_PATH = Path(__file__).with_name("element_features.json")
MAX_Z = 94
NUMERIC_FEATURES = (
    "electronegativity",
    "covalent_radius",
    "atomic_radius",
    "atomic_mass",
    "ionization_energy",
    "electron_affinity",
    "valence_electrons",
    "molar_volume",
)
_NOBLE_GASES = (0, 2, 10, 18, 36, 54, 86)
_BLOCKS = ("s", "p", "d", "f")

__all__ = [
    "ELEMENT_TABLE_PATH",
    "MAX_Z",
    "element_feature_matrix",
    "generate_element_table",
    "supported_numbers",
]


def _finite_or_none(value: object) -> float | None:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def generate_element_table(path: Path = ELEMENT_TABLE_PATH) -> None:
    """Regenerate the committed element table from pymatgen (needs pymatgen; run rarely).

    Args:
        path: where to write the JSON table.
    """
    import warnings

    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius
    from pymatgen.core import Element

    rows = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for z in range(1, MAX_Z + 1):
            el = Element.from_Z(z)
            core = max(g for g in _NOBLE_GASES if g < z)
            try:
                affinity = el.electron_affinity
            except (ValueError, KeyError, TypeError):
                affinity = None
            rows[el.symbol] = {
                "Z": z,
                "group": int(el.group),
                "period": int(el.row),
                "block": str(el.block),
                "electronegativity": _finite_or_none(el.X),
                "covalent_radius": _finite_or_none(CovalentRadius.radius.get(el.symbol)),
                "atomic_radius": _finite_or_none(el.atomic_radius),
                "atomic_mass": _finite_or_none(el.atomic_mass),
                "ionization_energy": _finite_or_none(el.ionization_energy),
                "electron_affinity": _finite_or_none(affinity),
                "valence_electrons": float(z - core),
                "molar_volume": _finite_or_none(el.molar_volume),
            }
    doc = {
        "source": "pymatgen Element data; covalent radii from pymatgen CovalentRadius",
        "units": {
            "electronegativity": "Pauling",
            "covalent_radius": "Angstrom",
            "atomic_radius": "Angstrom",
            "atomic_mass": "amu",
            "ionization_energy": "eV",
            "electron_affinity": "eV",
            "valence_electrons": "count",
            "molar_volume": "cm^3/mol",
        },
        "elements": rows,
    }
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")


@lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(ELEMENT_TABLE_PATH.read_text())["elements"]


def supported_numbers() -> tuple[int, ...]:
    """Atomic numbers the element table (and so every model) supports."""
    return tuple(sorted(row["Z"] for row in _table().values()))


@lru_cache(maxsize=1)
def _matrix() -> np.ndarray:
    rows = sorted(_table().values(), key=lambda r: r["Z"])
    numeric = np.array(
        [[np.nan if r[f] is None else r[f] for f in NUMERIC_FEATURES] for r in rows], dtype=np.float64
    )
    mean = np.nanmean(numeric, axis=0)
    std = np.nanstd(numeric, axis=0)
    numeric = np.nan_to_num((numeric - mean) / std, nan=0.0)
    group = np.zeros((len(rows), 18))
    period = np.zeros((len(rows), 7))
    block = np.zeros((len(rows), len(_BLOCKS)))
    for i, r in enumerate(rows):
        group[i, r["group"] - 1] = 1.0
        period[i, r["period"] - 1] = 1.0
        block[i, _BLOCKS.index(r["block"])] = 1.0
    feats = np.concatenate([numeric, group, period, block], axis=1)
    table = np.zeros((119, feats.shape[1]), dtype=np.float32)  # row Z; unsupported rows stay zero
    table[[r["Z"] for r in rows]] = feats
    return table


def element_feature_matrix() -> np.ndarray:
    """(119, F) float32 feature matrix indexed by atomic number (rows of unsupported Z are zero)."""
    return _matrix().copy()
