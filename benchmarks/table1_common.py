"""What the Table 1 benchmarks share: the compounds, their reference structures and the success test.

These live in :mod:`csp.evaluation.table1` (one place, used by the paper report ``csp benchmark paper`` too);
this module keeps the names the scripts import. Success follows the paper: a top-5 structure matches the
reference (StructureMatcher ltol 0.2, stol 0.3, angle_tol 5, AND the same space group); SrCu, without
reference coordinates, is judged by crystal system (a hexagonal top-5 cell). Lattice error: the matched
structure's conventional cell against the experimental room-temperature constants.
"""

from __future__ import annotations

from csp.evaluation.table1 import judge, load_entries, reference_structure

__all__ = ["judge", "load_entries", "reference_structure"]
