"""Polymorph augmentation, lake side: which compositions, the plan, and labelled rows back into the lake.

``csp augment plan`` writes a plan (:mod:`csp.potentials.augment`) for the default compositions: the binaries and
ternaries of the experimental-enthalpy tables, then those of the DFT sources, minus the exclusion list
(the validation compounds are never generated or labelled). The plan also carries evaluation rows
(``kind = reference``): a held-out sample of MP-scale DFT test-split structures and the structures
linked to the experimental test split, relaxed by the same potential so that its formation-energy
error can be measured. ``python -m csp.potentials.relaxer label`` labels the plan (on a GPU machine, or here);
``csp augment ingest`` turns the labelled files into ``structures`` rows whose source names the
potential and whose ``energy_method`` is ``mlip``. Training flows never take these rows unless asked
(``--sources``); evaluation rows are not ingested.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from csp.errors import CSPError
from csp.potentials.augment import (
    PlanRow,
    StructureSet,
    decoration_row,
    element_rows,
    from_rows,
    merge_labelled,
    plan_composition,
    plan_symbols,
    with_formation_enthalpies,
)
from csp.structures import elements
from csp.structures.composition import parse_composition
from csp.structures.crystal import Crystal
from storage.augmentation import (
    EXPERIMENT_TABLES,
    MP_SCALE_SOURCES,
    candidate_formulas,
    evaluation_structures,
    source_ids,
)
from storage.lake import Lake
from storage.licences import POTENTIAL_LICENCES, licence_of
from storage.readers import Record, Rejection
from storage.readers.mlip_labels import LabelRow, read_mlip_labels
from storage.training_sets import DFT_SOURCES

#: the earlier name of the potentials' licence table (one table: :data:`storage.licences.LICENCES`)
LICENSES = POTENTIAL_LICENCES
__all__ = [
    "EXPERIMENT_TABLES",
    "MP_SCALE_SOURCES",
    "POLYMORPH_CASES",
    "build_plan",
    "default_compositions",
    "done_ids",
    "evaluation_rows",
    "ingest_labels",
    "label_plan",
    "plan_compositions",
    "polymorph_plan",
    "read_labels",
]
#: well-known polymorph orderings outside the exclusion list: composition, observed ground state
#: (Strukturbericht type at ambient conditions) and competing types
POLYMORPH_CASES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ZnS", "B3", ("B4", "B1")),
    ("NaCl", "B1", ("B2", "B3")),
    ("KCl", "B1", ("B2", "B3")),
    ("KBr", "B1", ("B2", "B3")),
    ("NaBr", "B1", ("B2", "B3")),
    ("LiF", "B1", ("B2", "B3")),
    ("NaF", "B1", ("B2", "B3")),
    ("RbCl", "B1", ("B2", "B3")),
    ("CsCl", "B2", ("B1", "B3")),
    ("CsBr", "B2", ("B1", "B3")),
    ("GaN", "B4", ("B3", "B1")),
    ("AlN", "B4", ("B3", "B1")),
    ("ZnO", "B4", ("B3", "B1")),
    ("BeO", "B4", ("B3", "B1")),
    ("CdSe", "B4", ("B3", "B1")),
    ("CuCl", "B3", ("B4", "B1")),
    ("CuBr", "B3", ("B4", "B1")),
    ("AgCl", "B1", ("B3", "B2")),
    ("PbS", "B1", ("B3", "B2")),
    ("CaO", "B1", ("B2", "B3")),
    ("SrO", "B1", ("B2", "B3")),
    ("CaF2", "C1", ("C4", "C6")),
    ("SrF2", "C1", ("C4", "C6")),
    ("BaF2", "C1", ("C4", "C6")),
    ("MgF2", "C4", ("C1", "C6")),
    ("SnO2", "C4", ("C1", "C5")),
    ("TiO2", "C4", ("C5", "C1")),
    ("SrTiO3", "E2_1", ()),
)


def default_compositions(
    lake: Lake, exclude: Iterable[str], *, max_compositions: int = 3000, max_elements: int = 3
) -> list[str]:
    """Binaries and ternaries: the polymorph cases, then the experimental tables' compositions, then the
    DFT sources' (binaries before ternaries, each group in a stable hash order), minus ``exclude``."""
    excluded = {_reduced(f) for f in exclude}
    exp, dft = candidate_formulas(lake, dft_sources=DFT_SOURCES, max_elements=max_elements)
    out: list[str] = []
    seen: set[str] = set()
    for formula in [c for c, _, _ in POLYMORPH_CASES] + exp + dft:
        name = _reduced(formula)
        if name is None or name in seen or name in excluded:
            continue
        seen.add(name)
        out.append(name)
        if len(out) >= max_compositions:
            break
    return out


def _reduced(formula: str) -> str | None:
    """The canonical reduced formula of the plan (elements supported by the models), else ``None``."""
    try:
        comp, _ = parse_composition(formula).reduced()
    except (CSPError, ValueError):
        return None
    if not all(elements.is_supported_symbol(s) for s in comp.symbols):
        return None
    from pymatgen.core import Composition

    from storage.splits import reduced_formula_of

    return reduced_formula_of(Composition(comp.formula))  # the lake's spelling (an element: its symbol)


def _plan_one(args: tuple[str, int, dict]) -> list[PlanRow]:
    formula, seed, options = args
    try:
        return plan_composition(formula, seed=seed, **options)
    except Exception:  # noqa: BLE001 - one composition that cannot be planned is skipped, not fatal
        return []


@dataclass(frozen=True)
class PlanSummary:
    path: Path
    rows: int
    compositions: int
    by_kind: dict[str, int]
    seconds: float


def build_plan(
    lake: Lake,
    out: Path,
    *,
    compositions: Sequence[str],
    exclude: Iterable[str],
    seed: int = 0,
    max_prototypes: int = 12,
    random_structures: int = 8,
    reference_sample: int = 600,
    element_max_sites: int = 8,
    workers: int = 2,
) -> PlanSummary:
    """Write the plan for ``compositions`` (+ elemental references + evaluation rows) to ``out``."""
    t0 = time.time()
    excluded = {_reduced(f) for f in exclude}
    names = [n for n in (_reduced(f) for f in compositions) if n and n not in excluded]
    if not names:
        raise ValueError(
            "No composition left to augment: every one given is on the exclusion list (the validation "
            "compounds are never generated or labelled), unreadable, or has an element the models do not support."
        )
    options = {"max_prototypes": max_prototypes, "random_structures": random_structures}
    jobs = [(n, seed, options) for n in names]
    if workers > 1:
        from csp.pool_workers import ignore_sigint  # Ctrl-C: the parent alone handles it

        with mp.get_context("fork").Pool(workers, initializer=ignore_sigint) as pool:
            planned = pool.map(_plan_one, jobs, chunksize=8)
    else:
        planned = [_plan_one(j) for j in jobs]
    rows = [r for rs in planned for r in rs]
    references = evaluation_rows(lake, exclude=excluded, sample=reference_sample, seed=seed)
    symbols = plan_symbols(names) | {elements.symbol(int(z)) for r in references for z in r.crystal.numbers}
    plan = from_rows(element_rows(symbols, max_sites=element_max_sites) + rows + references)
    plan.save(out)
    kinds = {k: int((plan.kind == k).sum()) for k in sorted(set(plan.kind.tolist()))}
    return PlanSummary(Path(out), len(plan), len(set(names)), kinds, time.time() - t0)


def plan_compositions(
    lake: Lake,
    out: Path,
    *,
    compositions: Sequence[str] | None,
    max_compositions: int,
    exclusions_file: Path,
    **options: int,
) -> PlanSummary:
    """:func:`build_plan` for ``compositions`` (default: :func:`default_compositions` of the lake), minus
    the exclusion list read from ``exclusions_file``; ``options`` are :func:`build_plan`'s."""
    from storage.splits import load_exclusions

    exclude = load_exclusions(exclusions_file)
    names = compositions or default_compositions(lake, exclude, max_compositions=max_compositions)
    return build_plan(lake, out, compositions=names, exclude=exclude, **options)


def polymorph_plan(out: Path) -> PlanSummary:
    """The decorations of the :data:`POLYMORPH_CASES` types only (every species assignment), to relax
    fully for the polymorph-ordering benchmark:
    ``python -m csp.potentials.relaxer label --plan OUT --out DIR --relax-steps 100 --distortions 0 --prefix poly``."""
    from csp.structures.prototypes import decorations

    t0 = time.time()
    rows = []
    for formula, ground, competitors in POLYMORPH_CASES:
        wanted = {ground, *competitors}
        for d in decorations(parse_composition(formula)):
            if d.prototype.strukturbericht in wanted:
                rows.append(decoration_row(formula, d))
    plan = from_rows(rows)
    plan.save(out)
    return PlanSummary(Path(out), len(plan), len(POLYMORPH_CASES), {"prototype": len(plan)}, time.time() - t0)


def evaluation_rows(lake: Lake, *, exclude: set[str | None], sample: int, seed: int = 0) -> list[PlanRow]:
    """Held-out MP-scale DFT test-split structures (``sample`` per source, at most 24 sites) and the
    structures linked to the experimental test split, as ``reference`` rows to relax."""
    rows: list[PlanRow] = []
    seen: set[str] = set()
    for r in evaluation_structures(lake, sample=sample, seed=seed):
        rid = f"ref|{r['source']}|{r['source_id']}"
        if rid in seen or r["reduced_formula"] in exclude:
            continue
        if not all(elements.is_supported_symbol(s) for s in r["species"]):
            continue
        seen.add(rid)
        crystal = Crystal(
            np.asarray(r["lattice_angstrom"]).reshape(3, 3),
            [elements.atomic_number(s) for s in r["species"]],
            np.asarray(r["frac_coords"]),
        )
        rows.append(PlanRow(rid, r["reduced_formula"], "reference", "relax", r["source"], crystal))
    return rows


# ------------------------------------------------------------------------------------------- ingest
def load_labelled(paths: Sequence[Path]) -> StructureSet:
    """Labelled rows from the labeller's ``.npz`` files and/or committed Parquet parts, one row per id."""
    npz = [StructureSet.load(Path(p)) for p in paths if Path(p).suffix != ".parquet"]
    parquet = [Path(p) for p in paths if Path(p).suffix == ".parquet"]
    if not parquet:
        return merge_labelled(npz)
    from flows.label_data import from_parts

    return merge_labelled([*npz, from_parts(parquet)])


def _label_rows(labelled: StructureSet) -> Iterator[LabelRow]:
    off = labelled.offsets
    for i in range(len(labelled)):
        yield LabelRow(
            source_id=str(labelled.ids[i]),
            formula=str(labelled.formula[i]),
            kind=str(labelled.kind[i]),
            tag=str(labelled.tag[i]),
            potential=str(labelled.labels["potential"][i]),
            relaxation=str(labelled.labels["relaxation"][i]),
            dhf_ev_per_atom=float(labelled.values["dhf_ev_per_atom"][i]),
            energy_ev_per_atom=float(labelled.values["energy_ev_per_atom"][i]),
            fmax_ev_per_angstrom=float(labelled.values["fmax_ev_per_angstrom"][i]),
            steps=float(labelled.values["steps"][i]),
            lattice=labelled.lattice[i],
            species=[elements.symbol(int(z)) for z in labelled.numbers[off[i] : off[i + 1]]],
            frac_coords=labelled.frac_coords[off[i] : off[i + 1]],
        )


def read_labels(labelled: StructureSet, *, license: str, workers: int = 1) -> Iterator[Record | Rejection]:
    """``structures`` records for the labelled rows (evaluation and elemental rows are skipped)."""
    yield from read_mlip_labels(_label_rows(labelled), license=license, workers=workers)


def done_ids(lake: Lake, potential: str) -> set[str]:
    """Plan ids whose labels are already in the lake (``source`` = the potential's name)."""
    return source_ids(lake, potential)


def potential_source_name(potential: str) -> str:
    """The lake source name of a potential as the labeller writes it (name and model version)."""
    from csp.potentials.relaxer import load_potential

    return load_potential(potential).name


def label_plan(
    plan: Path,
    out: Path,
    *,
    potential: str = "chgnet",
    device: str = "cpu",
    workers: int = 1,
    relax_steps: int = 40,
    distortions: int = 3,
    time_limit_s: float = 3600.0,
    skip_ids: Iterable[str] = (),
    seed: int = 0,
) -> dict:
    """Label ``plan`` in a child process (``python -m csp.potentials.relaxer label``); rows whose ids are in
    ``skip_ids`` are left out, so an interrupted run resumes where its ingested rows stop."""
    import json
    import subprocess
    import sys

    out.mkdir(parents=True, exist_ok=True)
    skip_file = out / "skip-ids.txt"
    skip_file.write_text("\n".join(sorted(skip_ids)))
    command = [
        sys.executable, "-m", "csp.potentials.relaxer", "label",
        "--plan", str(plan), "--out", str(out), "--potential", potential, "--device", device,
        "--workers", str(workers), "--relax-steps", str(relax_steps), "--distortions", str(distortions),
        "--time-limit-s", str(time_limit_s), "--skip-ids", str(skip_file), "--seed", str(seed),
    ]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "labels-summary.json").read_text())


@dataclass(frozen=True)
class LabelIngestReport:
    written: int
    quarantined: int
    skipped: int
    references_ev_per_atom: dict[str, float]
    sources: list[str]


def shipped_reference_numbers(potential_name: str) -> dict[int, float]:
    """The shipped elemental references of a potential (eV/atom by atomic number; empty if none)."""
    from csp.potentials.refine import shipped_references

    refs = shipped_references().get(potential_name, {})
    return {elements.atomic_number(sym): float(e) for sym, e in refs.items()}


def ingest_labels(lake: Lake, paths: Sequence[Path], *, run_id: str, workers: int = 1) -> LabelIngestReport:
    """Formation enthalpies from the files' own elemental references (the potential's shipped references
    for elements the files hold none of), then ``structures`` rows (source = potential name; evaluation and
    elemental rows stay out). Idempotent by id."""
    from storage.ingest import ingest_records

    labelled = load_labelled(paths)
    if not len(labelled):
        raise ValueError("The labelled files hold no rows.")
    names = sorted(set(labelled.labels["potential"].tolist()))
    written = quarantined = 0
    used: dict[str, float] = {}
    for name in names:  # each potential's rows against its own references only
        part = labelled.take(np.flatnonzero(labelled.labels["potential"] == name))
        if "dhf_ev_per_atom" in part.values:  # committed parts carry the enthalpies they were made with
            refs = {}
        else:
            part, refs = with_formation_enthalpies(part, fallback=shipped_reference_numbers(name))
        prefix = f"{name}:" if len(names) > 1 else ""
        used.update({f"{prefix}{elements.symbol(z)}": round(e, 4) for z, e in sorted(refs.items())})
        report = ingest_records(
            lake,
            read_labels(part, license=licence_of(name), workers=workers),
            source=name,
            run_id=run_id,
            registered=True,  # a potential's labels: the name `csp ingest folder` may not take
        )
        written += report.written.get("structures", 0)
        quarantined += report.n_rejected
    skipped = int(np.isin(labelled.kind, ("reference", "element")).sum())
    return LabelIngestReport(
        written=written,
        quarantined=quarantined,
        skipped=skipped,
        references_ev_per_atom=used,
        sources=names,
    )
