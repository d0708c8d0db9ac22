"""Reader of structures labelled by a universal interatomic potential (the polymorph augmentation).

The labeller (``python -m csp.potentials.relaxer label``) writes ``.npz`` files; the faces turn each labelled row
into a :class:`LabelRow` of plain values (element symbols, Angstrom, eV/atom), and :func:`read_mlip_labels`
makes ``structures`` records of them: ``source`` is the potential's name and version, ``energy_method``
is ``mlip``, and evaluation rows (``kind`` reference) and elemental references (``kind`` element) are
not training data and are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from storage.readers._common import Record, Rejection
from storage.readers._rows import structure_scalars
from storage.readers._structure import PendingStructure, cell_from_arrays, finish_all

#: the largest formation enthalpy magnitude taken from a potential, eV/atom
MAX_ABS_DHF_EV_PER_ATOM = 10.0
#: kinds of labelled rows that are not training data
NOT_TRAINING = ("reference", "element")


@dataclass(frozen=True)
class LabelRow:
    """One labelled structure, as plain values.

    Attributes:
        source_id: the plan row id (unique per potential).
        formula: the composition's formula.
        kind: ``prototype``, ``random``, ``reference`` or ``element`` (plan kinds).
        tag: what the row is (prototype name, family).
        potential: the potential's name and version, e.g. ``chgnet-0.3.0`` (the lake source).
        relaxation: ``relaxed``, ``partially_relaxed`` or ``unrelaxed``.
        dhf_ev_per_atom: formation enthalpy against the potential's own elemental references, eV/atom.
        energy_ev_per_atom: the potential's total energy, eV/atom.
        fmax_ev_per_angstrom: the largest remaining force, eV/Angstrom.
        steps: relaxation steps taken (NaN when not relaxed).
        lattice: (3, 3) row lattice vectors, Angstrom.
        species: element symbols of the n sites.
        frac_coords: (n, 3) fractional coordinates.
    """

    source_id: str
    formula: str
    kind: str
    tag: str
    potential: str
    relaxation: str
    dhf_ev_per_atom: float
    energy_ev_per_atom: float
    fmax_ev_per_angstrom: float
    steps: float
    lattice: np.ndarray
    species: Sequence[str]
    frac_coords: np.ndarray


def _pending(rows: Iterable[LabelRow], license: str) -> Iterator[PendingStructure | Rejection]:
    for i, r in enumerate(rows):
        if r.kind in NOT_TRAINING:
            continue
        dhf = r.dhf_ev_per_atom
        if not math.isfinite(dhf) or abs(dhf) > MAX_ABS_DHF_EV_PER_ATOM:
            yield Rejection(
                "labels",
                i,
                r.source_id,
                f"formation enthalpy {dhf} from {r.potential} is NaN or beyond 10 eV/atom",
                r.source_id,
            )
            continue
        row = structure_scalars(
            source=r.potential,
            source_id=r.source_id,
            license=license,
            raw_formula=r.formula,
            dhf=float(dhf),
            energy_kind=f"{r.potential}:formation_energy_vs_own_elemental_references",
            extra={
                "kind": r.kind,
                "tag": r.tag,
                "energy_ev_per_atom": float(r.energy_ev_per_atom),
                "fmax_ev_per_angstrom": float(r.fmax_ev_per_angstrom),
            },
        )
        row |= {
            "energy_method": "mlip",
            "relaxation": r.relaxation,
            "relax_steps": int(r.steps) if math.isfinite(r.steps) else None,
        }
        cell = cell_from_arrays(r.lattice, list(r.species), r.frac_coords)
        # the search's own random and rattled structures: the shared distance rule only, no pair floor
        yield PendingStructure("labels", i, r.source_id, row, cell=cell, pair_floor=False)


def read_mlip_labels(
    rows: Iterable[LabelRow], *, license: str, workers: int = 1
) -> Iterator[Record | Rejection]:
    """``structures`` records for the labelled rows (evaluation and elemental rows are skipped).

    Args:
        rows: the labelled rows of one potential.
        license: the licence stamped on every row (:func:`storage.licences.licence_of` of the potential).
        workers: processes that finish the structures (symmetry, formula).

    Yields:
        A record per usable row; a :class:`Rejection` (quarantined with its reason) for a formation
        enthalpy that is NaN or beyond 10 eV/atom.
    """
    yield from finish_all(_pending(rows, license), workers=workers)
