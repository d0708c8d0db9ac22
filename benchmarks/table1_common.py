"""What the Table 1 benchmarks share: the compounds, their reference structures and the success test.

Success follows the paper: a top-5 structure matches the reference (``csp.structures.matching.matches``:
StructureMatcher ltol 0.2, stol 0.3, angle_tol 5, AND the same space group). SrCu has no reference
coordinates in the data mirror, so it is judged by crystal system only (a hexagonal top-5 cell).
Lattice error: the matched structure's conventional a against the experimental room-temperature value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from csp.structures.matching import matches


def load_entries(mirror: Path) -> list[dict[str, Any]]:
    """The 17 Table 1 entries of the data mirror (``validation/table1.json``)."""
    return json.loads((mirror / "validation" / "table1.json").read_text())


def reference_structure(mirror: Path, entry: dict[str, Any]) -> Structure | None:
    """The entry's experimental structure, or None when the mirror has no coordinates (SrCu)."""
    return Structure.from_file(mirror / "validation" / entry["cif"]) if entry.get("cif") else None


def judge(
    top: list[dict[str, Any]], entry: dict[str, Any], reference: Structure | None
) -> tuple[dict[str, Any] | None, float | None]:
    """The first top entry that matches the reference (see the module docstring) and its relative
    lattice error (None when unknown)."""
    found = None
    for item in top:
        ok = (
            matches(item["structure"], reference)
            if reference is not None
            else item["structure"].lattice.is_hexagonal()
        )
        if ok:
            found = item
            break
    lattice_error = None
    if found is not None and entry.get("lattice_exp_angstrom") and reference is not None:
        exp_a = entry["lattice_exp_angstrom"]
        exp_a = exp_a[0] if isinstance(exp_a, list) else exp_a
        lattice_error = abs(found["a"] - exp_a) / exp_a
    return found, lattice_error
