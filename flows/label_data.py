"""Labelled data kept in the repository: the labeller's files as Parquet parts with their enthalpies.

``csp augment export LABELS... --out data/labels/<potential>/`` writes the parts (:mod:`storage.label_parts`);
``csp augment ingest data/labels/<potential>/*.parquet`` puts them in a lake as the potential's own source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from csp.potentials.augment import TRAINING_KINDS, StructureSet, training_rows, with_formation_enthalpies
from csp.structures import elements
from flows.augmentation import load_labelled, shipped_reference_numbers


def _counts(values: np.ndarray) -> dict[str, int]:
    """Rows per distinct value."""
    keys, n = np.unique(values, return_counts=True)
    return {str(k): int(v) for k, v in zip(keys, n, strict=True)}


def from_parts(paths: Sequence[Path]) -> StructureSet:
    """Committed Parquet parts as one labelled :class:`StructureSet` (enthalpies included)."""
    from storage.label_parts import FLOAT_COLUMNS, read_label_parts

    columns, natoms = read_label_parts(paths)
    return StructureSet(
        natoms=natoms, lattice=columns["lattice"], numbers=columns["numbers"],
        frac_coords=columns["frac_coords"], ids=columns["id"], formula=columns["formula"],
        kind=columns["kind"], action=columns["action"], tag=columns["tag"],
        values={name: columns[name] for name in FLOAT_COLUMNS},
        labels={"relaxation": columns["relaxation"], "potential": columns["potential"]},
    )  # fmt: skip


def label_columns(labelled: StructureSet) -> dict[str, np.ndarray]:
    """A labelled set (with ``dhf_ev_per_atom``) as the columns of :func:`storage.label_parts.write_label_parts`;
    value columns beyond the part's are left out."""
    from storage.label_parts import FLOAT_COLUMNS

    columns = {
        "id": labelled.ids, "formula": labelled.formula, "kind": labelled.kind, "action": labelled.action,
        "tag": labelled.tag, "potential": labelled.labels["potential"],
        "relaxation": labelled.labels["relaxation"], "lattice": labelled.lattice,
        "numbers": labelled.numbers, "frac_coords": labelled.frac_coords,
    }  # fmt: skip
    return columns | {name: labelled.values[name] for name in FLOAT_COLUMNS}


@dataclass(frozen=True)
class LabelExport:
    """What :func:`export_label_parts` wrote."""

    paths: list[Path]
    rows: int
    training_rows: int
    compositions: int
    by_kind: dict[str, int]
    by_relaxation: dict[str, int]
    references_ev_per_atom: dict[str, float]


def export_label_parts(
    paths: Sequence[Path], out_dir: Path, *, rows_per_part: int = 40_000, append: bool = False
) -> LabelExport:
    """The labeller's files as committed Parquet parts (:mod:`storage.label_parts`) of one potential, with
    formation enthalpies against its references (the files' own elemental rows, else the shipped ones).
    ``append`` keeps the folder's parts and numbers the new ones after them (a further labelling run).

    Raises:
        ValueError: no rows, or rows of more than one potential.
    """
    from storage.label_parts import write_label_parts

    labelled = load_labelled(paths)
    if not len(labelled):
        raise ValueError("The labelled files hold no rows.")
    names = sorted(set(labelled.labels["potential"].tolist()))
    if len(names) != 1:
        raise ValueError(f"Export one potential's labels at a time, not {names}.")
    labelled, refs = with_formation_enthalpies(labelled, fallback=shipped_reference_numbers(names[0]))
    written = write_label_parts(
        label_columns(labelled), labelled.natoms, out_dir, rows_per_part=rows_per_part, append=append
    )

    return LabelExport(
        paths=written,
        rows=len(labelled),
        training_rows=len(training_rows(labelled)),
        compositions=len(set(labelled.formula[np.isin(labelled.kind, TRAINING_KINDS)].tolist())),
        by_kind=_counts(labelled.kind),
        by_relaxation=_counts(labelled.labels["relaxation"]),
        references_ev_per_atom={elements.symbol(z): round(e, 4) for z, e in sorted(refs.items())},
    )


def summarise_parts(paths: Sequence[Path]) -> dict:
    """The figures of a data card for committed Parquet parts (:mod:`storage.label_parts`).

    Returns:
        ``rows``, ``training_rows`` (:func:`csp.potentials.augment.training_rows`), ``compositions`` (all
        rows) and ``training_compositions``, ``elements``, ``by_kind``, ``by_relaxation``, ``sites_mean`` and
        ``sites_max`` (training rows), ``dhf_quantiles_ev_per_atom`` (5/25/50/75/95 %, training rows) and the
        median formation enthalpy per kind and per relaxation state of the training rows (eV/atom).

    Raises:
        storage.errors.StorageError: a file is not such a part.
    """
    labelled = from_parts(paths)
    train = training_rows(labelled)
    dhf = labelled.values["dhf_ev_per_atom"]
    relaxation = labelled.labels["relaxation"]

    def medians(values: np.ndarray) -> dict[str, float]:
        return {
            str(k): round(float(np.median(dhf[train][values[train] == k])), 3)
            for k in np.unique(values[train])
        }

    return {
        "rows": len(labelled),
        "training_rows": len(train),
        "compositions": len(set(labelled.formula.tolist())),
        "training_compositions": len(set(labelled.formula[train].tolist())),
        "elements": len({int(z) for z in labelled.numbers.tolist()}),
        "by_kind": _counts(labelled.kind),
        "by_relaxation": _counts(relaxation),
        "sites_mean": round(float(labelled.natoms[train].mean()), 2) if len(train) else 0.0,
        "sites_max": int(labelled.natoms[train].max()) if len(train) else 0,
        "dhf_quantiles_ev_per_atom": [
            round(float(q), 2) for q in np.percentile(dhf[train], [5, 25, 50, 75, 95])
        ]
        if len(train)
        else [],
        "dhf_median_by_kind_ev_per_atom": medians(labelled.kind),
        "dhf_median_by_relaxation_ev_per_atom": medians(relaxation),
        "parts": [Path(p).name for p in paths],
    }
