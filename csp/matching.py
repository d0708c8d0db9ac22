"""Ranking, deduplication, CIF export and matching against reference structures.

Symmetry is detected with spglib (through pymatgen's ``SpacegroupAnalyzer``) at :data:`SYMPREC` = 0.1 A,
loose enough for relaxed-looking model structures and tight enough to tell rock salt (225) from
zinc blende (216). Matching follows the paper: a pymatgen ``StructureMatcher`` match with ltol 0.2,
stol 0.3, angle_tol 5 degrees, AND the same space-group number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from csp.crystal import Crystal

if TYPE_CHECKING:
    from pymatgen.core import Structure

#: Symmetry tolerance (Angstrom) for space-group detection.
SYMPREC = 0.1
#: StructureMatcher tolerances used for success and for deduplication.
LTOL, STOL, ANGLE_TOL = 0.2, 0.3, 5.0


def _structure(item: Crystal | Structure) -> Structure:
    return item.to_pymatgen() if isinstance(item, Crystal) else item


def _matcher() -> Any:
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(ltol=LTOL, stol=STOL, angle_tol=ANGLE_TOL)


def spacegroup_number(item: Crystal | Structure, symprec: float = SYMPREC) -> int:
    """Space-group number detected by spglib at ``symprec``."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    return int(SpacegroupAnalyzer(_structure(item), symprec=symprec).get_space_group_number())


def matches(candidate: Crystal | Structure, reference: Crystal | Structure, symprec: float = SYMPREC) -> bool:
    """The paper's success test: a StructureMatcher(ltol 0.2, stol 0.3, angle_tol 5) match and the same
    space-group number (detected at ``symprec``)."""
    a, b = _structure(candidate), _structure(reference)
    if spacegroup_number(a, symprec) != spacegroup_number(b, symprec):
        return False
    return bool(_matcher().fit(a, b))


def row_crystal(row: dict[str, Any]) -> Crystal:
    """The crystal stored in a search row (see :mod:`csp.search`)."""
    return Crystal(
        np.reshape(row["lattice"], (3, 3)),
        np.asarray(row["numbers"]),
        np.reshape(row["frac_coords"], (-1, 3)),
    )


def rank(
    rows: Sequence[dict[str, Any]],
    k: int = 5,
    symprec: float = SYMPREC,
    key: Callable[[dict[str, Any]], Any] | None = None,
) -> list[dict[str, Any]]:
    """Top ``k`` distinct structures by fitness (lowest first) among valid rows with a fitness.

    ``key`` orders the rows instead of the fitness (lowest first; rows whose key is None are skipped),
    e.g. the potential's energy of refined rows (:func:`csp.refine.rank_refined`).

    Duplicates (StructureMatcher match) keep only the better row. Each returned dict has ``rank``,
    ``spacegroup`` (symmetrised, detected at ``symprec``), ``spacegroup_symbol``, ``a``, ``b``, ``c``
    (Angstrom), ``alpha``, ``beta``, ``gamma`` (degrees) of the conventional standard cell,
    ``dhf_pred_ev_per_atom``, ``p_syn``, ``p_syn_std``, ``fitness``, ``formula``, ``family_spacegroup``,
    ``wyckoff``, ``outer_step``, ``duplicates`` (rows merged into it), ``structure`` (the symmetrised
    pymatgen ``Structure``) and ``row`` (the source row).
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    order = key or (lambda r: r.get("fitness"))
    scored = sorted(
        (r for r in rows if r.get("valid") and r.get("fitness") is not None and order(r) is not None),
        key=order,
    )
    matcher = _matcher()
    kept: list[dict[str, Any]] = []
    for row in scored:
        structure = row_crystal(row).to_pymatgen()
        twin = next((e for e in kept if matcher.fit(e["raw"], structure)), None)
        if twin is not None:
            twin["duplicates"] += 1
            continue
        if len(kept) == k:
            continue  # still counted as a duplicate if it matches one of the top k
        analyzer = SpacegroupAnalyzer(structure, symprec=symprec)
        conventional = analyzer.get_refined_structure()
        lat = conventional.lattice
        kept.append(
            {
                "rank": len(kept) + 1,
                "formula": conventional.composition.reduced_formula,
                "spacegroup": analyzer.get_space_group_number(),
                "spacegroup_symbol": analyzer.get_space_group_symbol(),
                "a": lat.a,
                "b": lat.b,
                "c": lat.c,
                "alpha": lat.alpha,
                "beta": lat.beta,
                "gamma": lat.gamma,
                "dhf_pred_ev_per_atom": row.get("dhf_pred_ev_per_atom"),
                "p_syn": row.get("p_syn"),
                "p_syn_std": row.get("p_syn_std"),
                "fitness": row["fitness"],
                "family_spacegroup": row.get("spacegroup"),
                "wyckoff": row.get("wyckoff"),
                "outer_step": row.get("outer_step"),
                "duplicates": 0,
                "structure": conventional,
                "raw": structure,
                "row": row,
            }
        )
    for entry in kept:
        del entry["raw"]
    return kept


def write_cif(item: Crystal | Structure, path: str | Path, symprec: float | None = SYMPREC) -> Path:
    """Write a CIF (symmetrised at ``symprec``; ``None`` writes P1) and return its path."""
    from pymatgen.io.cif import CifWriter

    path = Path(path)
    CifWriter(_structure(item), symprec=symprec).write_file(path)
    return path
