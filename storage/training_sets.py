"""Training sets out of the lake: DuckDB queries -> the arrays that ``csp.models.training`` reads.

This is the seam between ``storage`` (rows) and ``csp`` (arrays). :func:`training_arrays` returns plain
numpy arrays in the layout of ``csp.models.dataset.CrystalArrays`` (the faces write them with
``csp.models.dataset.save_arrays`` and hash the file); ``storage`` itself never imports ``csp``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from storage.errors import StorageError
from storage.label_parts import read_label_parts
from storage.lake import Lake
from storage.licences import licence_of
from storage.readers.mlip_labels import MAX_ABS_DHF_EV_PER_ATOM
from storage.splits import normalise_formula, split_of
from storage.validation import StructureError, check_geometry

#: DFT sources on the Materials Project / OQMD formation-energy scale (Castelli heats use other references)
DFT_SOURCES = ("oqmd_intermetallics", "gnome", "mp_flla2015")
#: the transfer-learning set with its own train/test split (Jha et al. 2019)
EXPERIMENT_SOURCE = "expt_deltae_jha2019"
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
#: the fidelity of a row's target from its ``energy_method`` (the codes of ``csp.models.dataset.FIDELITIES``):
#: DFT (and experiment) 0, a universal interatomic potential's label 1
FIDELITY_CODES = {"dft": 0, "mlip": 1}

Kind = Literal["dft", "exp", "pu"]

#: label-part rows that stand for a hypothetical polymorph: a prototype decoration's last relaxation frame
POLYMORPH_KIND = "prototype"
FINAL_FRAMES = ("relaxed", "partially_relaxed")
#: the label-part kinds that join a PU set as hypothetical structures, and the relaxation states taken of
#: each: a prototype decoration's last frame; the search generator's own symmetric random structures (single
#: points: what a campaign scores before anything relaxes it); an active round's campaign top structures
#: (``search``: at the geometry the search found and after a symmetry-kept relaxation)
HYPOTHETICAL_KINDS = {
    POLYMORPH_KIND: FINAL_FRAMES,
    "random": ("unrelaxed",),
    "search": ("unrelaxed", *FINAL_FRAMES),
}


@dataclass(frozen=True)
class TrainingArrays:
    """One training set: the arrays (``natoms``, ``lattice``, ``numbers``, ``frac_coords``, ``target``,
    ``split``, ``source``, ``source_names``, ``ids``, ``fidelity``) and what went into it.

    Attributes:
        kind: ``dft``, ``exp`` or ``pu``.
        arrays: keyword arguments of ``csp.models.dataset.save_arrays``; lattices in Angstrom, targets in
            eV/atom (``dft``, ``exp``) or 1/0 labels (``pu``).
        per_split: rows per split name.
        per_source: rows per lake source.
        per_fidelity: rows per fidelity (``dft``, ``mlip``: :data:`FIDELITY_CODES`), those present only.
        licences: the licence stored on the rows of each source (read from the lake, not from a table).
        excluded_rows: rows left out for the exclusion list or the size limit.
        geometry_refused: rows the lake holds that today's :func:`storage.validation.check_geometry`
            refuses (stored under an older ingest rule); left out, so that every row the set holds is one
            the models' graph builder accepts.
    """

    kind: str
    arrays: dict[str, np.ndarray]
    per_split: dict[str, int]
    per_source: dict[str, int]
    licences: dict[str, str] = field(default_factory=dict)
    per_fidelity: dict[str, int] = field(default_factory=dict)
    excluded_rows: int = 0
    geometry_refused: int = 0

    @property
    def rows(self) -> int:
        return len(self.arrays["natoms"])


def _fidelity_code(energy_method: str) -> int:
    if energy_method not in FIDELITY_CODES:
        raise StorageError(
            f"A structures row has energy_method {energy_method!r}; training sets know {sorted(FIDELITY_CODES)}."
        )
    return FIDELITY_CODES[energy_method]


def _symbol_numbers() -> dict[str, int]:
    from pymatgen.core.periodic_table import Element

    return {el.symbol: el.Z for el in Element}


def _query(kind: Kind, sources: tuple[str, ...]) -> tuple[str, list]:
    if kind == "dft":
        return (
            "SELECT source, source_id AS id, reduced_formula, lattice_angstrom, species, frac_coords, "
            "dhf_dft_ev_per_atom AS target, split, license, coalesce(energy_method, 'dft') AS energy_method "
            "FROM structures "
            "WHERE dhf_dft_ev_per_atom IS NOT NULL AND list_contains(?, source) ORDER BY source, source_id",
            [list(sources)],
        )
    if kind == "exp":
        # each experimental value on the structure it is linked to; the file's own train/test split,
        # with a validation slice carved from train by the formula hash
        return (
            "SELECT e.source, e.source_id AS id, e.reduced_formula, s.lattice_angstrom, s.species, "
            "s.frac_coords, e.dhf_exp_ev_per_atom AS target, "
            "CASE WHEN e.split = 'test' THEN 'test' WHEN s.split = 'val' THEN 'val' ELSE 'train' END AS split, "
            "e.license FROM experimental_linked e JOIN structures s "
            "ON s.source = e.linked_source AND s.source_id = e.linked_source_id "
            "WHERE list_contains(?, e.source) ORDER BY e.source, e.source_id",
            [list(sources)],
        )
    return (
        "SELECT source, source_id AS id, reduced_formula, lattice_angstrom, species, frac_coords, "
        "CAST(icsd_label AS DOUBLE) AS target, split, license FROM structures "
        "WHERE icsd_label IS NOT NULL ORDER BY source, source_id",
        [],
    )


def _geometry_holds(row: dict) -> bool:
    """Whether today's ingest rule accepts a stored row (a lake keeps rows written under older rules); a
    universal-potential label row (``energy_method`` mlip: the search's own structures) is held to the shared
    distance rule only, as at its ingest."""
    try:
        check_geometry(np.asarray(row["lattice_angstrom"], dtype=float).reshape(3, 3), row["species"],
                       np.asarray(row["frac_coords"], dtype=float).reshape(-1, 3),
                       pair_floor=row.get("energy_method") != "mlip")  # fmt: skip
    except StructureError:
        return False
    return True


def training_arrays(
    lake: Lake,
    *,
    kind: Kind,
    exclude: Iterable[str],
    sources: Iterable[str] | None = None,
    max_sites: int = 64,
) -> TrainingArrays:
    """The ``kind`` training set of the lake, leaving out excluded reduced formulas.

    Args:
        lake: the lake to read.
        kind: ``dft``: formation enthalpies of the DFT sources (default: the MP/OQMD-scale ones), and of
            universal-potential sources when named (``energy_method`` mlip: ``fidelity`` 1, every other
            row 0); ``exp``: experimental enthalpies on their linked structures; ``pu``: ICSD labels
            (1 positive, 0 unlabeled).
        exclude: reduced formulas never to train on (the validation compounds).
        sources: lake sources to use (default: :data:`DFT_SOURCES` or :data:`EXPERIMENT_SOURCE`).
        max_sites: structures with more sites are left out (counted in ``excluded_rows``).

    Returns:
        The arrays and their per-split, per-source and licence summary.
    """
    chosen = (
        tuple(sources) if sources is not None else (DFT_SOURCES if kind == "dft" else (EXPERIMENT_SOURCE,))
    )
    sql, params = _query(kind, chosen)
    rows = lake.query(sql, params).to_pylist()
    excluded = set(exclude)
    kept = [r for r in rows if r["reduced_formula"] not in excluded and len(r["species"]) <= max_sites]
    sane = [r for r in kept if _geometry_holds(r)]
    refused, kept = len(kept) - len(sane), sane
    numbers_of = _symbol_numbers()
    source_names = sorted({r["source"] for r in kept})
    arrays = {
        "natoms": np.array([len(r["species"]) for r in kept], dtype=np.int32),
        "lattice": np.array([r["lattice_angstrom"] for r in kept], dtype=np.float32).reshape(-1, 3, 3),
        "numbers": np.array([numbers_of[s] for r in kept for s in r["species"]], dtype=np.int16),
        "frac_coords": np.array([c for r in kept for c in r["frac_coords"]], dtype=np.float32).reshape(-1, 3),
        "target": np.array([r["target"] for r in kept], dtype=np.float32),
        "split": np.array([SPLIT_CODES[r["split"]] for r in kept], dtype=np.int8),
        "source": np.array([source_names.index(r["source"]) for r in kept], dtype=np.int16),
        "source_names": np.array(source_names),
        "ids": np.array([f"{r['source']}:{r['id']}" for r in kept]),
        "fidelity": np.array([_fidelity_code(r.get("energy_method", "dft")) for r in kept], dtype=np.int8),
    }
    licences: dict[str, str] = {}
    for r in kept:
        licences.setdefault(r["source"], r["license"])
    return TrainingArrays(
        kind=kind,
        arrays=arrays,
        per_split={name: int((arrays["split"] == code).sum()) for name, code in SPLIT_CODES.items()},
        per_source={name: int((arrays["source"] == i).sum()) for i, name in enumerate(source_names)},
        licences=dict(sorted(licences.items())),
        excluded_rows=len(rows) - len(kept) - refused,
        geometry_refused=refused,
        per_fidelity={
            name: int((arrays["fidelity"] == code).sum())
            for name, code in FIDELITY_CODES.items()
            if (arrays["fidelity"] == code).any()
        },
    )


def linked_dft_enthalpies(lake: Lake, source: str = EXPERIMENT_SOURCE) -> dict[str, float | None]:
    """The DFT formation enthalpy (eV/atom) of the structure each experimental row of ``source`` is linked
    to (the ``experimental_linked`` view; None where the linked structure has none), keyed as the ``ids``
    of :func:`training_arrays` (``<source>:<source_id>``): the raw DFT-vs-experiment comparison."""
    rows = lake.query(
        "SELECT source, source_id, linked_dhf_dft_ev_per_atom AS dhf FROM experimental_linked "
        "WHERE source = ? ORDER BY source_id",
        [source],
    ).to_pylist()
    return {f"{r['source']}:{r['source_id']}": r["dhf"] for r in rows}


@dataclass(frozen=True)
class HypotheticalPolymorphs:
    """Hypothetical polymorphs of known compositions, as unlabeled PU rows (target 0).

    Attributes:
        rows: the arrays (layout of :class:`TrainingArrays`; ``source`` is the potential that relaxed them,
            ``ids`` are ``<potential>:<label id>``, ``split`` the formula hash of :func:`storage.splits.split_of`).
        prototype: (S,) str, the AFLOW prototype label each row decorates (``AB_cF8_225_a_b``); a random or
            search row's own ``<kind>:<id>`` (no two of them are taken for twins by their Wyckoff string alone).
        kinds: (S,) str, each row's kind (:data:`HYPOTHETICAL_KINDS`).
        read: rows of those kinds read (every frame).
        skipped: final frames left out, per reason.
    """

    rows: TrainingArrays
    prototype: np.ndarray
    read: int
    skipped: dict[str, int]
    kinds: np.ndarray


def hypothetical_polymorphs(
    paths: Sequence[Path], *, exclude: Iterable[str], max_sites: int = 64
) -> HypotheticalPolymorphs:
    """The hypothetical structures of committed label parts (:mod:`storage.label_parts`) as unlabeled rows.

    Per kind (:data:`HYPOTHETICAL_KINDS`): one row per prototype decoration, its last relaxation frame
    (``relaxation`` relaxed or partially_relaxed; the first and intermediate frames are left out); every
    symmetric random structure of the search's generator (single points); and every ``search`` row of an
    active round (a campaign's top structure at its found geometry and relaxed). Reference rows (held-out DFT
    structures) and elemental rows never join. Each row passes what ingest checks for machine-labelled rows: a
    finite formation enthalpy within 10 eV/atom and :func:`storage.validation.check_geometry`. The rows are
    not deduplicated here: equivalent decorations of one prototype, and decorations that are the
    experimental structure itself, are the science's to find (``csp.models.pu_polymorphs``).

    Args:
        paths: the Parquet parts (:func:`storage.label_parts.label_part_paths` expands globs and folders).
        exclude: reduced formulas never to train on (the validation compounds).
        max_sites: decorations with more sites are left out.

    Returns:
        The rows, their prototype labels and the counts of what was left out and why.

    Raises:
        StorageError: if a path is not a labelled Parquet part.
    """
    columns, natoms = read_label_parts(paths)
    offsets = np.concatenate([[0], np.cumsum(natoms)]).astype(np.int64)
    excluded = {normalise_formula(f) for f in exclude}
    numbers_of = _symbol_numbers()
    symbol_of = {z: s for s, z in numbers_of.items()}
    candidate_rows = np.flatnonzero(np.isin(columns["kind"], list(HYPOTHETICAL_KINDS)))
    skipped = {"not the last frame": 0, "validation compound": 0, "size": 0, "formation enthalpy": 0}
    kept: list[tuple[int, str]] = []
    for i in candidate_rows:
        if columns["relaxation"][i] not in HYPOTHETICAL_KINDS[str(columns["kind"][i])]:
            skipped["not the last frame"] += 1
            continue
        formula = normalise_formula(str(columns["formula"][i]))
        dhf = float(columns["dhf_ev_per_atom"][i])
        if formula in excluded:
            skipped["validation compound"] += 1
        elif natoms[i] > max_sites:
            skipped["size"] += 1
        elif not (np.isfinite(dhf) and abs(dhf) <= MAX_ABS_DHF_EV_PER_ATOM):
            skipped["formation enthalpy"] += 1
        else:
            atoms = slice(offsets[i], offsets[i + 1])
            species = [symbol_of[int(z)] for z in columns["numbers"][atoms]]
            try:
                check_geometry(  # generated label structures: the shared distance rule, no pair floor
                    columns["lattice"][i], species, columns["frac_coords"][atoms], pair_floor=False
                )
            except StructureError:
                skipped["geometry"] = skipped.get("geometry", 0) + 1
                continue
            kept.append((int(i), formula))
    index = np.array([i for i, _ in kept], dtype=np.int64)
    atoms = (
        np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in index])
        if len(index)
        else np.zeros(0, dtype=np.int64)
    )
    potentials = [str(columns["potential"][i]) for i in index]
    source_names = sorted(set(potentials))
    arrays = {
        "natoms": natoms[index].astype(np.int32),
        "lattice": columns["lattice"][index].astype(np.float32).reshape(-1, 3, 3),
        "numbers": columns["numbers"][atoms].astype(np.int16),
        "frac_coords": columns["frac_coords"][atoms].astype(np.float32).reshape(-1, 3),
        "target": np.zeros(len(index), dtype=np.float32),
        "split": np.array([SPLIT_CODES[split_of(f)] for _, f in kept], dtype=np.int8),
        "source": np.array([source_names.index(p) for p in potentials], dtype=np.int16),
        "source_names": np.array(source_names),
        "ids": np.array([f"{p}:{columns['id'][i]}" for p, i in zip(potentials, index, strict=True)]),
    }
    rows = TrainingArrays(
        kind="pu",
        arrays=arrays,
        per_split={name: int((arrays["split"] == code).sum()) for name, code in SPLIT_CODES.items()},
        per_source={name: potentials.count(name) for name in source_names},
        licences={name: licence_of(name) for name in source_names},
        excluded_rows=skipped["validation compound"] + skipped["size"],
    )
    prototype = np.array(  # a random or search structure is its own group: its id
        [
            str(columns["tag"][i]).split(":")[0]
            if columns["kind"][i] == POLYMORPH_KIND
            else f"{columns['kind'][i]}:{columns['id'][i]}"
            for i in index
        ]
    )
    return HypotheticalPolymorphs(
        rows=rows,
        prototype=prototype,
        kinds=np.array([str(columns["kind"][i]) for i in index]),
        read=len(candidate_rows),
        skipped={k: v for k, v in skipped.items() if v},
    )
