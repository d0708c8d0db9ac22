"""Training sets out of the lake: DuckDB queries -> the array format that ``csp.training`` reads.

This is the seam between ``storage`` (rows) and ``csp`` (arrays): the training core runs on machines
without DuckDB or pymatgen, so what it needs is written once to an ``.npz`` file and hashed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pymatgen.core.periodic_table import Element

from storage.lake import Lake

#: DFT sources on the Materials Project / OQMD formation-energy scale (Castelli heats use other references)
DFT_SOURCES = ("oqmd_intermetallics", "gnome", "mp_flla2015")
#: the transfer-learning set with its own train/test split (Jha et al. 2019)
EXPERIMENT_SOURCE = "expt_deltae_jha2019"
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}

Kind = Literal["dft", "exp", "pu"]


@dataclass(frozen=True)
class ExportSummary:
    kind: str
    path: Path
    rows: int
    per_split: dict[str, int]
    per_source: dict[str, int]
    excluded_rows: int
    sha256: str


def _symbol_numbers() -> dict[str, int]:
    return {el.symbol: el.Z for el in Element}


def _query(kind: Kind, sources: tuple[str, ...]) -> tuple[str, list]:
    if kind == "dft":
        return (
            "SELECT source, source_id AS id, reduced_formula, lattice_angstrom, species, frac_coords, "
            "dhf_dft_ev_per_atom AS target, split FROM structures "
            "WHERE dhf_dft_ev_per_atom IS NOT NULL AND list_contains(?, source) ORDER BY source, source_id",
            [list(sources)],
        )
    if kind == "exp":
        # each experimental value on the structure it is linked to; the file's own train/test split,
        # with a validation slice carved from train by the formula hash
        return (
            "SELECT e.source, e.source_id AS id, e.reduced_formula, s.lattice_angstrom, s.species, "
            "s.frac_coords, e.dhf_exp_ev_per_atom AS target, "
            "CASE WHEN e.split = 'test' THEN 'test' WHEN s.split = 'val' THEN 'val' ELSE 'train' END AS split "
            "FROM experimental_linked e JOIN structures s "
            "ON s.source = e.linked_source AND s.source_id = e.linked_source_id "
            "WHERE list_contains(?, e.source) ORDER BY e.source, e.source_id",
            [list(sources)],
        )
    return (
        "SELECT source, source_id AS id, reduced_formula, lattice_angstrom, species, frac_coords, "
        "CAST(icsd_label AS DOUBLE) AS target, split FROM structures "
        "WHERE icsd_label IS NOT NULL ORDER BY source, source_id",
        [],
    )


def export_training_set(
    lake: Lake,
    out: Path,
    *,
    kind: Kind,
    exclude: Iterable[str],
    sources: Iterable[str] | None = None,
    max_sites: int = 64,
    compress: bool = False,
) -> ExportSummary:
    """Write the ``kind`` training set to ``out`` (.npz), leaving out excluded reduced formulas.

    ``dft``: formation enthalpies of the DFT sources (default: the MP/OQMD-scale ones);
    ``exp``: experimental enthalpies on their linked structures; ``pu``: ICSD labels (1 positive,
    0 unlabeled). Structures with more than ``max_sites`` sites are left out (stated in the summary).
    """
    from csp.dataset import save_arrays

    chosen = (
        tuple(sources) if sources is not None else (DFT_SOURCES if kind == "dft" else (EXPERIMENT_SOURCE,))
    )
    sql, params = _query(kind, chosen)
    table = lake.query(sql, params)
    excluded = set(exclude)
    rows = table.to_pylist()
    kept = [r for r in rows if r["reduced_formula"] not in excluded and len(r["species"]) <= max_sites]
    numbers_of = _symbol_numbers()
    source_names = sorted({r["source"] for r in kept})
    natoms = np.array([len(r["species"]) for r in kept], dtype=np.int32)
    arrays = {
        "natoms": natoms,
        "lattice": np.array([r["lattice_angstrom"] for r in kept], dtype=np.float32).reshape(-1, 3, 3),
        "numbers": np.array([numbers_of[s] for r in kept for s in r["species"]], dtype=np.int16),
        "frac_coords": np.array([c for r in kept for c in r["frac_coords"]], dtype=np.float32).reshape(-1, 3),
        "target": np.array([r["target"] for r in kept], dtype=np.float32),
        "split": np.array([SPLIT_CODES[r["split"]] for r in kept], dtype=np.int8),
        "source": np.array([source_names.index(r["source"]) for r in kept], dtype=np.int16),
        "source_names": np.array(source_names),
        "ids": np.array([f"{r['source']}:{r['id']}" for r in kept]),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_arrays(out, **arrays, compress=compress)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    per_split = {name: int((arrays["split"] == code).sum()) for name, code in SPLIT_CODES.items()}
    per_source = {name: int((arrays["source"] == i).sum()) for i, name in enumerate(source_names)}
    return ExportSummary(
        kind=kind,
        path=out,
        rows=len(kept),
        per_split=per_split,
        per_source=per_source,
        excluded_rows=len(rows) - len(kept),
        sha256=digest,
    )
