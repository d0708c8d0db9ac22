"""Ranking, deduplication, CIF export and matching against reference structures.

Symmetry is detected by :mod:`csp.structures.symmetry` (spglib at :data:`SYMPREC` = 0.1 A and 5 degrees), loose
enough for relaxed-looking model structures and tight enough to tell rock salt (225) from zinc blende
(216). Matching follows the paper: a pymatgen ``StructureMatcher`` match with ltol 0.2, stol 0.3,
angle_tol 5 degrees, AND the same space-group number. Ranking never merges structures of different
space groups (see :func:`rank`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from csp.structures.composition import reduced_formula
from csp.structures.crystal import Crystal
from csp.structures.symmetry import (
    SYMPREC,
    analyze,
    as_structure,
    detect_structure,
    quiet_spglib,
    spacegroup_number,
    write_symmetrised_cif,
)

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = ["SYMPREC", "TIGHT_SYMPREC", "matches", "rank", "row_crystal", "spacegroup_number", "write_cif"]

#: Distance tolerance (Angstrom) at which :func:`rank` tells an exact member of a group from a distorted twin.
TIGHT_SYMPREC = 1e-3
#: StructureMatcher tolerances used for success and for deduplication.
LTOL, STOL, ANGLE_TOL = 0.2, 0.3, 5.0


def _matcher() -> Any:
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(ltol=LTOL, stol=STOL, angle_tol=ANGLE_TOL)


def matches(candidate: Crystal | Structure, reference: Crystal | Structure, symprec: float = SYMPREC) -> bool:
    """The paper's success test: a StructureMatcher(ltol 0.2, stol 0.3, angle_tol 5) match and the same
    space-group number (detected at ``symprec``)."""
    a, b = as_structure(candidate), as_structure(reference)
    if spacegroup_number(a, symprec) != spacegroup_number(b, symprec):
        return False
    return bool(_matcher().fit(a, b))


def row_crystal(row: dict[str, Any]) -> Crystal:
    """The crystal stored in a search row (see :mod:`csp.search.two_stage`)."""
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

    Each row is re-symmetrised at ``symprec`` (:func:`csp.structures.symmetry.analyze`) and grouped by its detected
    space group first; within one space group, rows whose symmetrised structures match (StructureMatcher,
    ltol 0.2, stol 0.3, 5 degrees) are one group. Rows of different space groups are never merged, so an
    exact rock salt is not folded into a slightly better tetragonal twin. A group is ranked by its best
    fitness; it is shown as the symmetrised structure of its most symmetric member (the most point-group
    operations at :data:`TIGHT_SYMPREC`, then the best fitness), so a distorted twin never represents a
    group that holds an exact structure.

    Each returned dict has ``rank``, ``spacegroup`` (symmetrised, detected at ``symprec``),
    ``spacegroup_symbol``, ``a``, ``b``, ``c`` (Angstrom), ``alpha``, ``beta``, ``gamma`` (degrees) of the
    conventional standard cell, ``dhf_pred_ev_per_atom``, ``p_syn``, ``p_syn_std``, ``fitness`` (all of the
    best member), ``formula``, ``family_spacegroup`` and ``family_wyckoff`` (the search template of the best
    member), ``wyckoff`` (of the detected group, on the shown structure), ``outer_step``, ``duplicates`` (rows
    merged into it), ``structure`` (the symmetrised pymatgen ``Structure`` of the most symmetric member),
    ``row`` (the best member's row), ``structure_row`` (the row whose structure is shown),
    ``family_spacegroups`` (sorted family space groups of all members) and ``resymmetrised`` (True when the
    shown structure's space group differs from its row's family space group).
    ``key`` orders the rows instead of the fitness (lowest first; rows whose key is None are skipped),
    e.g. the potential's energy of refined rows (:func:`csp.potentials.refine.rank_refined`); a group is then ranked
    by its best key.
    """
    sort_key = key or (lambda r: r.get("fitness"))
    scored = sorted(
        (r for r in rows if r.get("valid") and r.get("fitness") is not None and sort_key(r) is not None),
        key=sort_key,
    )
    matcher = _matcher()
    kept: list[dict[str, Any]] = []
    by_group: dict[int, list[dict[str, Any]]] = {}
    for row in scored:
        structure = row_crystal(row).to_pymatgen()
        analyzer = analyze(structure, symprec)
        spacegroup = int(analyzer.get_space_group_number())
        with quiet_spglib():
            refined = analyzer.get_refined_structure()
        twin = next((e for e in by_group.get(spacegroup, []) if matcher.fit(e["structure"], refined)), None)
        if twin is None and len(kept) == k:
            continue
        order = len(analyze(structure, TIGHT_SYMPREC).get_point_group_operations())
        if twin is not None:
            twin["duplicates"] += 1
            twin["family_spacegroups"] = sorted({*twin["family_spacegroups"], _family_group(row)})
            if order > twin["order"]:
                twin.update(_shown(refined, row, order))
            continue
        entry = {
            "rank": len(kept) + 1,
            "formula": reduced_formula(refined.composition),
            "spacegroup": spacegroup,
            "spacegroup_symbol": analyzer.get_space_group_symbol(),
            "dhf_pred_ev_per_atom": row.get("dhf_pred_ev_per_atom"),
            "p_syn": row.get("p_syn"),
            "p_syn_std": row.get("p_syn_std"),
            "fitness": row["fitness"],
            "family_spacegroup": _family_group(row),
            "family_wyckoff": row.get("family_wyckoff") or row.get("wyckoff"),
            "outer_step": row.get("outer_step"),
            "duplicates": 0,
            "row": row,
            "family_spacegroups": [_family_group(row)],
            **_shown(refined, row, order),
        }
        kept.append(entry)
        by_group.setdefault(spacegroup, []).append(entry)
    for entry in kept:
        del entry["order"]
        entry["resymmetrised"] = _family_group(entry["structure_row"]) != entry["spacegroup"]
        found = detect_structure(entry["structure"], symprec)
        entry["wyckoff"] = found[1] if found is not None else None
    return kept


def _family_group(row: dict[str, Any]) -> Any:
    """The search template's space group of a row (``family_spacegroup``; rows written before that column
    existed held it in ``spacegroup``)."""
    family = row.get("family_spacegroup")
    return family if family is not None else row.get("spacegroup")


def _shown(refined: Structure, row: dict[str, Any], order: int) -> dict[str, Any]:
    """The keys of a ranked group that come from the member it is shown as."""
    lat = refined.lattice
    return {
        "a": lat.a,
        "b": lat.b,
        "c": lat.c,
        "alpha": lat.alpha,
        "beta": lat.beta,
        "gamma": lat.gamma,
        "structure": refined,
        "structure_row": row,
        "order": order,
    }


def write_cif(item: Crystal | Structure, path: str | Path, symprec: float | None = SYMPREC) -> Path:
    """Write a CIF (symmetrised at ``symprec``; ``None`` writes P1) and return its path."""
    return write_symmetrised_cif(item, path, symprec)


#: the keys of a ranked entry (see :func:`rank`) that are plain values: a campaign summary stores them
PUBLIC_KEYS = (
    "rank",
    "formula",
    "spacegroup",
    "spacegroup_symbol",
    "a",
    "b",
    "c",
    "alpha",
    "beta",
    "gamma",
    "dhf_pred_ev_per_atom",
    "p_syn",
    "p_syn_std",
    "fitness",
    "wyckoff",
    "family_spacegroup",
    "family_wyckoff",
    "outer_step",
    "duplicates",
    "energy_potential_ev_per_atom",
    "dhf_potential_ev_per_atom",
    "dhf_potential_initial_ev_per_atom",
    "exploitation_gap_ev_per_atom",
)


def public_row(item: dict[str, Any]) -> dict[str, Any]:
    """A ranked entry without its pymatgen objects (JSON-ready)."""
    return {k: item.get(k) for k in PUBLIC_KEYS}
