"""The lake queries of the polymorph augmentation: which compositions, which evaluation structures, and
which plan rows are already labelled. Rows come back as plain values; the faces build crystals of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage.lake import Lake

#: experimental-enthalpy tables whose compositions come first (measured values exist for them)
EXPERIMENT_TABLES = ("kingsbury2022", "qmpy_ssub", "qmpy_iit", "expt_deltae_jha2019")
#: DFT sources on the MP formation-energy scale: the held-out evaluation sample is drawn from these
MP_SCALE_SOURCES = ("gnome", "mp_flla2015")


def candidate_formulas(
    lake: Lake, *, dft_sources: Sequence[str], max_elements: int = 3
) -> tuple[list[str], list[str]]:
    """Reduced formulas with 2..``max_elements`` elements: those of the experimental tables (in a stable
    hash order), then those of ``dft_sources`` with a DFT enthalpy (binaries first, each in hash order)."""
    exp_sql = (
        "SELECT DISTINCT reduced_formula FROM experimental_enthalpies "
        "WHERE list_contains(?, source) AND len(elements) BETWEEN 2 AND ? ORDER BY hash(reduced_formula)"
    )
    dft_sql = (
        "SELECT DISTINCT reduced_formula, nelements FROM structures WHERE list_contains(?, source) "
        "AND dhf_dft_ev_per_atom IS NOT NULL AND nelements BETWEEN 2 AND ? "
        "ORDER BY nelements, hash(reduced_formula)"
    )
    with lake.connect() as con:
        exp = con.arrow(exp_sql, [list(EXPERIMENT_TABLES), max_elements]).column(0).to_pylist()
        dft = con.arrow(dft_sql, [list(dft_sources), max_elements]).column(0).to_pylist()
    return exp, dft


def evaluation_structures(
    lake: Lake, *, sample: int, seed: int = 0, max_sites: int = 24
) -> list[dict[str, Any]]:
    """Held-out MP-scale DFT test-split structures (``sample`` per source, at most ``max_sites`` sites,
    drawn by a seeded hash) and the structures linked to the experimental test split.

    Returns:
        Rows with ``source``, ``source_id``, ``reduced_formula``, ``lattice_angstrom`` (3 x 3), ``species``
        and ``frac_coords``; the DFT sample first.
    """
    with lake.connect() as con:
        dft = con.arrow(
            "SELECT source, source_id, reduced_formula, lattice_angstrom, species, frac_coords FROM ("
            "SELECT *, row_number() OVER (PARTITION BY source ORDER BY hash(source_id || ?)) AS k "
            "FROM structures WHERE list_contains(?, source) AND split = 'test' AND nsites <= ? "
            "AND dhf_dft_ev_per_atom IS NOT NULL) WHERE k <= ? ORDER BY source, source_id",
            [str(seed), list(MP_SCALE_SOURCES), max_sites, sample],
        ).to_pylist()
        exp = con.arrow(
            "SELECT DISTINCT s.source, s.source_id, s.reduced_formula, s.lattice_angstrom, s.species, "
            "s.frac_coords FROM experimental_linked e JOIN structures s "
            "ON s.source = e.linked_source AND s.source_id = e.linked_source_id "
            "WHERE e.source = 'expt_deltae_jha2019' AND e.split = 'test' AND s.nsites <= ? "
            "ORDER BY s.source, s.source_id",
            [max_sites],
        ).to_pylist()
    return dft + exp


def source_ids(lake: Lake, source: str) -> set[str]:
    """The ``source_id`` of every ``structures`` row of ``source`` (labelled plan rows, for resume); none
    while the lake does not exist yet (it is not created)."""
    if not lake.exists:
        return set()
    with lake.connect() as con:
        table = con.arrow("SELECT source_id FROM structures WHERE source = ?", [source])
    return set(table.column(0).to_pylist())
