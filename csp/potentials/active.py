"""The active loop: campaigns over training compositions label their own top structures with a universal potential.

A surrogate that only ever saw near-equilibrium ground states is fooled by a long search: it finds cells it
scores far below what physics gives them. One *round* of the loop teaches it where it was fooled:

(a) :func:`plan_round` chooses ``N`` training compositions (a seeded permutation of the pool for each round,
    never one an earlier round took) and ``M`` fresh compositions to measure on (a permutation by the seed
    alone, so every round measures on the same ones and the rounds compare); the exclusion list (the paper's
    validation compounds) is taken out of both, and the fresh ones never train in the round;
(b) the faces run one campaign per composition (:mod:`csp.search` and the lake; ``flows.active``);
(c) :func:`label_top` labels each campaign's top-k distinct structures (best fitness first, deduplicated as
    :func:`csp.structures.matching.rank`) with the potential: a single point at the found geometry (row id
    suffix ``|initial``, relaxation ``unrelaxed``) and, for training compositions, a relaxation that keeps
    the space group (suffix ``|relaxed``; the batched relaxer with refinement's tolerances,
    :data:`csp.potentials.refine.FIX_SYMPREC`, collapse and explosion guards). Formation enthalpies come from
    the potential's elemental references (:func:`csp.potentials.refine.references`: the shipped
    ``potential_references.json``), as every other label of the project;
(d) the faces write the round's rows as committed Parquet (``storage.label_parts``), source
    :func:`source_name` (e.g. ``chgnet-0.3.0-active``);
(e) an optional hook fine-tunes the enthalpy model on DFT + labelled sources;
(f) :meth:`RoundState.record` is the round's entry in the results file, with the exploitation gap of
    :func:`campaign_gap` (the potential's dHf of the top-1 structure at its found geometry minus the model's,
    eV/atom, the sign every campaign report uses: positive, the model was fooled) as the median over the
    fresh campaigns.

:class:`RoundState` is the round's manifest and :func:`run_round` the step machine that resumes it: a campaign
whose labels are staged is never labelled again, the Parquet parts are rewritten whole, training and
recording happen once. Nothing here touches the lake or a file; the faces supply a :class:`RoundStore`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from csp.errors import InputError, ModelError
from csp.potentials.augment import PlanRow, StructureSet, empty_set, from_rows
from csp.potentials.augment import training_rows as usable_rows
from csp.structures.crystal import Crystal

#: what a campaign of the round is for: its labels train (``train``) or it measures the gap (``fresh``)
Role = Literal["train", "fresh"]
#: plan kind of a labelled top structure of a training campaign (training data)
SEARCH_KIND = "search"
#: plan kind of a fresh campaign's top structure (evaluation only: never ingested, never trained on)
FRESH_KIND = "reference"
#: suffix of the lake source of the active loop's labels (after the potential's name and version)
SOURCE_SUFFIX = "active"


def source_name(potential_name: str) -> str:
    """The lake source of the active loop's labels of a potential: ``chgnet-0.3.0`` -> ``chgnet-0.3.0-active``
    (the potential's family stays first, so its licence and the ``mlip`` source rules apply)."""
    return f"{potential_name}-{SOURCE_SUFFIX}"


def _reduced(formula: str) -> str:
    from pymatgen.core import Composition

    from csp.structures.composition import reduced_formula

    try:  # the lake's spelling: an element is its symbol (pymatgen writes O2)
        return reduced_formula(Composition(formula))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise InputError(f"Cannot read the formula {formula!r}: {exc}") from exc


# ------------------------------------------------------------------------------------------ (a) plan
def choose_compositions(
    pool: Iterable[str],
    n: int,
    *,
    seed: int,
    round_number: int | None = None,
    exclude: Iterable[str] = (),
    used: Iterable[str] = (),
) -> list[str]:
    """``n`` compositions of ``pool``, deterministic by ``seed`` (and ``round_number`` when given).

    The pool is reduced (pymatgen's reduced formula), deduplicated and sorted, so its order does not matter;
    ``exclude`` and ``used`` are taken out; then a permutation by ``numpy.random.default_rng([seed, round])``
    (or ``[seed]``) picks the first ``n``. Without a round number the picks of a larger ``n`` start with
    those of a smaller one.

    Args:
        pool: candidate formulas (e.g. the lake's DFT and experimental compositions).
        n: how many to choose (at least 1); fewer come back when the pool runs short.
        seed: the loop's seed (a non-negative integer).
        round_number: the round (1, 2, ...), or None for a choice that is the same every round.
        exclude: formulas never chosen (the exclusion list: the paper's validation compounds).
        used: formulas already taken (earlier rounds' training compositions).

    Returns:
        The chosen reduced formulas, in the permutation's order.

    Raises:
        InputError: ``n`` < 1, a negative seed or a round number below 1, or nothing left to choose.
    """
    if n < 1:
        raise InputError(f"Choose at least 1 composition, not {n}.")
    if seed < 0:
        raise InputError(f"The seed must be a non-negative integer, not {seed}.")
    if round_number is not None and round_number < 1:
        raise InputError(f"Rounds are numbered from 1, not {round_number}.")
    gone = {_reduced(f) for f in exclude} | {_reduced(f) for f in used}
    candidates = sorted({_reduced(f) for f in pool} - gone)
    if not candidates:
        raise InputError(
            "No composition is left to choose: the pool is empty, excluded (the validation compounds are never "
            "labelled) or taken by earlier rounds."
        )
    rng = np.random.default_rng([seed] if round_number is None else [seed, round_number])
    order = rng.permutation(len(candidates))
    return [candidates[int(i)] for i in order[:n]]


@dataclass(frozen=True)
class ActiveJob:
    """One campaign of a round: its id (letters, digits, ``.``, ``_``, ``-``), composition, role and seed."""

    campaign_id: str
    composition: str
    role: Role
    seed: int


def campaign_seed(formula: str, seed: int, round_number: int) -> int:
    """A 63-bit campaign seed of one composition in one round (sha256 of the three)."""
    digest = hashlib.sha256(f"active:{seed}:{round_number}:{formula}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def campaign_id(round_number: int, formula: str, role: Role, seed: int) -> str:
    """``active-r001-NaCl-train-s0``: the campaign's id in the lake, the same every time the round runs."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "", formula)
    return f"active-r{round_number:03d}-{safe}-{role}-s{seed}"


def plan_round(
    round_number: int,
    *,
    seed: int,
    train_pool: Iterable[str],
    fresh_pool: Iterable[str],
    n_train: int,
    n_fresh: int,
    exclude: Iterable[str] = (),
    used: Iterable[str] = (),
    train: Sequence[str] | None = None,
    fresh: Sequence[str] | None = None,
) -> tuple[list[str], list[str]]:
    """The round's training and fresh compositions (reduced formulas, disjoint).

    Training ones: ``train`` when given (checked against ``exclude``), else :func:`choose_compositions` of
    ``train_pool`` for this round, leaving out ``used``. Fresh ones: ``fresh`` when given, else the same choice
    every round (by ``seed`` alone) from ``fresh_pool``; none when ``n_fresh`` is 0.

    Raises:
        InputError: a requested composition is on the exclusion list, one is both training and fresh, a
            count or round number out of range, or a pool without a composition left.
    """
    if round_number < 1:
        raise InputError(f"Rounds are numbered from 1, not {round_number}.")
    if n_fresh < 0:
        raise InputError(f"The number of fresh compositions must be 0 or more, not {n_fresh}.")
    check_requested(train or (), fresh or (), exclude)
    excluded = {_reduced(f) for f in exclude}
    if train:
        chosen = list(dict.fromkeys(_reduced(f) for f in train))
    else:
        chosen = choose_compositions(
            train_pool, n_train, seed=seed, round_number=round_number, exclude=excluded, used=used
        )
    if fresh:
        measured = list(dict.fromkeys(_reduced(f) for f in fresh))
    elif n_fresh:
        measured = choose_compositions(fresh_pool, n_fresh, seed=seed, exclude=excluded | set(chosen))
    else:
        measured = []
    check_requested(chosen, measured, ())
    return chosen, measured


def check_requested(train: Iterable[str], fresh: Iterable[str], exclude: Iterable[str]) -> None:
    """Refuse requested compositions that cannot be: unreadable, on the exclusion list, or both training
    and fresh.

    Raises:
        InputError: the first such composition, in one sentence.
    """
    excluded = {_reduced(f) for f in exclude}
    train, fresh = [_reduced(f) for f in train], [_reduced(f) for f in fresh]
    for formula in [*train, *fresh]:
        if formula in excluded:
            raise InputError(
                f"{formula} is on the exclusion list (the paper's validation compounds): it is never labelled "
                "or trained on; choose another composition."
            )
    both = sorted(set(train) & set(fresh))
    if both:
        raise InputError(f"{', '.join(both)} cannot be both a training and a fresh composition of one round.")


# ----------------------------------------------------------------------------------------- (c) labels
def label_top(
    rows: Sequence[dict[str, Any]],
    potential: Any,
    *,
    campaign: str,
    top_k: int,
    relax_steps: int,
    fmax: float = 0.05,
    kind: str = SEARCH_KIND,
    source: str | None = None,
) -> StructureSet:
    """Label a campaign's top ``top_k`` distinct structures with ``potential``.

    Each structure gets a single point at its found geometry (id ``<campaign>|top<rank>|initial``, action
    ``single``, relaxation ``unrelaxed``) and, when ``relax_steps`` > 0, the end of a relaxation that keeps
    its space group (``|relaxed``, action ``relax``, relaxation ``relaxed`` or ``partially_relaxed``; one
    that collapses, explodes or fails gives no row). Both come from one relaxation job: its first energy is
    the single point.

    Args:
        rows: the campaign's search rows (outer rows are ranked; the layout of :mod:`csp.search.two_stage`).
        potential: a loaded potential (:func:`csp.potentials.refine.get_potential`).
        campaign: the campaign id, the prefix of every row id.
        top_k: distinct structures labelled (best fitness first).
        relax_steps: most FIRE steps per relaxation (0: single points only).
        fmax: relaxation threshold on the largest generalised force, eV/A.
        kind: the rows' plan kind (:data:`SEARCH_KIND` trains; :data:`FRESH_KIND` only measures).
        source: the ``potential`` label of the rows (default :func:`source_name` of the potential).

    Returns:
        A :class:`csp.potentials.augment.StructureSet` (rank order) with values ``energy_ev_per_atom``,
        ``energy_initial_ev_per_atom``, ``fmax_ev_per_angstrom``, ``steps``, ``dhf_ev_per_atom`` (against
        the potential's elemental references; NaN where an element has none), ``dhf_model_ev_per_atom`` (the
        model's dHf of the source row; NaN on relaxed rows) and ``rank``; labels ``relaxation`` and
        ``potential``. Empty when the campaign has no valid outer row.

    Raises:
        InputError: ``top_k`` < 1 or negative ``relax_steps``.
    """
    from csp.potentials.augment import formation_enthalpies
    from csp.potentials.refine import (
        COLLAPSE_RATIO,
        EXPLODE_RATIO,
        FIX_SYMPREC,
        references,
        select_sources,
    )
    from csp.potentials.relaxer import RelaxJob, relax

    if top_k < 1 or relax_steps < 0:
        raise InputError(
            f"Label at least 1 structure with 0 or more steps, not top_k={top_k}, steps={relax_steps}."
        )
    sources = select_sources(rows, top_k)
    if not sources:
        return _empty_labels()
    try:
        refs: dict[int, float] = references(potential, sources[0]["numbers"])
    except ModelError:  # an element without a stable elemental cell (Hg, Xe with CHGNet): energies, no dHf
        refs = {}
    jobs = [RelaxJob(_crystal(s), relax_steps, (rank, s)) for rank, s in enumerate(sources, start=1)]
    done = relax(
        potential, jobs, fmax=fmax, pool=len(jobs), symprec=FIX_SYMPREC,
        collapse_ratio=COLLAPSE_RATIO, explode_ratio=EXPLODE_RATIO,
    )  # fmt: skip
    label = source or source_name(potential.name)
    out: list[tuple[PlanRow, dict[str, float], str]] = []
    for item in sorted(done, key=lambda r: r.job.payload[0]):
        rank, src = item.job.payload
        formula = str(src.get("formula") or "")
        tag = f"SG{src.get('family_spacegroup') or src.get('spacegroup')} {src.get('family_wyckoff') or ''}".strip()
        prefix = f"{campaign}|top{rank}"
        model = src.get("dhf_pred_ev_per_atom")
        if np.isfinite(item.energy_initial):
            out.append((
                PlanRow(f"{prefix}|initial", formula, kind, "single", tag, _crystal(src)),
                {"energy_ev_per_atom": item.energy_initial, "energy_initial_ev_per_atom": item.energy_initial,
                 "fmax_ev_per_angstrom": item.fmax_initial, "steps": 0.0, "rank": float(rank),
                 "dhf_model_ev_per_atom": float(model) if model is not None else np.nan},
                "unrelaxed",
            ))  # fmt: skip
        if relax_steps > 0 and item.state in ("relaxed", "partially_relaxed"):
            out.append((
                PlanRow(f"{prefix}|relaxed", formula, kind, "relax", tag, item.crystal),
                {"energy_ev_per_atom": item.energy, "energy_initial_ev_per_atom": item.energy_initial,
                 "fmax_ev_per_angstrom": item.fmax, "steps": float(item.steps), "rank": float(rank),
                 "dhf_model_ev_per_atom": np.nan},
                item.state,
            ))  # fmt: skip
    if not out:
        return _empty_labels()
    labelled = from_rows([row for row, _, _ in out])
    for name in out[0][1]:
        labelled.values[name] = np.array([v[name] for _, v, _ in out], dtype=np.float64)
    labelled.values["dhf_ev_per_atom"] = formation_enthalpies(
        labelled.numbers, labelled.offsets, labelled.values["energy_ev_per_atom"], refs
    )
    labelled.labels = {
        "relaxation": np.array([state for _, _, state in out], dtype=str),
        "potential": np.array([label] * len(out), dtype=str),
    }
    return labelled


#: the float columns of a labelled set of the loop
VALUE_COLUMNS = (
    "energy_ev_per_atom",
    "energy_initial_ev_per_atom",
    "fmax_ev_per_angstrom",
    "steps",
    "rank",
    "dhf_model_ev_per_atom",
    "dhf_ev_per_atom",
)


def _empty_labels() -> StructureSet:
    empty = empty_set()
    empty.values = {name: np.zeros(0) for name in VALUE_COLUMNS}
    empty.labels = {"relaxation": np.zeros(0, dtype=str), "potential": np.zeros(0, dtype=str)}
    return empty


def _crystal(row: dict[str, Any]) -> Crystal:
    from csp.structures.matching import row_crystal

    return row_crystal(row)


def campaign_gap(labelled: StructureSet) -> float | None:
    """The exploitation gap of the top-1 structure: the potential's dHf at its found geometry minus the
    model's (eV/atom; positive: the model was fooled, as in :func:`flows.coverage.gap_line`): the rank-1
    ``|initial`` row of :func:`label_top`; None when it is missing or either value is not finite."""
    if not len(labelled) or "rank" not in labelled.values:
        return None
    first = np.flatnonzero((labelled.values["rank"] == 1) & (labelled.action == "single"))
    if not len(first):
        return None
    i = int(first[0])
    gap = labelled.values["dhf_ev_per_atom"][i] - labelled.values["dhf_model_ev_per_atom"][i]
    return float(gap) if np.isfinite(gap) else None


def median_gap(gaps: Iterable[float | None]) -> float | None:
    """The median of the finite gaps (eV/atom), or None when there is none."""
    found = [g for g in gaps if g is not None and np.isfinite(g)]
    return float(np.median(found)) if found else None


# ----------------------------------------------------------------------------------- the round's state
@dataclass
class RoundState:
    """One round's manifest: what it is, what is done. Every field is plain JSON.

    Attributes:
        round: the round number (1, 2, ...).
        seed: the loop's seed.
        train: training compositions (reduced formulas).
        fresh: fresh compositions the gap is measured on.
        parameters: the arguments that fix the round's results (budget, top_k, relaxation, potential); a
            resumed round must be asked with the same ones.
        model_before: the enthalpy model the campaigns ran with (folder name) and ``model_before_id`` its
            ``name:sha256[:12]``.
        source: the labels' lake source (:func:`source_name`).
        command: the command line that started the round.
        campaigns: ``{campaign id: {composition, role, status (labelled | failed), rows, gap_ev_per_atom,
            reason}}`` of the campaigns done.
        labelled_ids: every row id labelled so far (never labelled again).
        written: whether the round's rows are written as committed Parquet; ``parts`` their file names and
            ``training_rows`` how many of them a training set takes (:func:`csp.potentials.augment.training_rows`).
        training: ``{status: pending | skipped | done, model_after, model_after_id, ...}``.
        recorded: whether the round's entry is in the results file.
    """

    round: int
    seed: int
    train: list[str]
    fresh: list[str]
    parameters: dict[str, Any]
    model_before: str
    model_before_id: str
    source: str
    command: str = ""
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    labelled_ids: list[str] = field(default_factory=list)
    written: bool = False
    parts: list[str] = field(default_factory=list)
    training_rows: int = 0
    training: dict[str, Any] = field(default_factory=lambda: {"status": "pending"})
    recorded: bool = False

    def jobs(self) -> list[ActiveJob]:
        """Every campaign of the round, training ones first."""
        return [
            ActiveJob(
                campaign_id(self.round, f, role, self.seed), f, role, campaign_seed(f, self.seed, self.round)
            )
            for role, names in (("train", self.train), ("fresh", self.fresh))
            for f in names
        ]

    def pending(self) -> list[ActiveJob]:
        """The campaigns not yet labelled (nor failed)."""
        return [job for job in self.jobs() if job.campaign_id not in self.campaigns]

    def add(self, job: ActiveJob, labelled: StructureSet | None, reason: str = "") -> None:
        """Mark ``job`` done: its labelled rows (None with the ``reason`` of a failed campaign)."""
        entry: dict[str, Any] = {"composition": job.composition, "role": job.role}
        if labelled is None:
            entry.update(status="failed", rows=0, gap_ev_per_atom=None, reason=reason)
        else:
            entry.update(status="labelled", rows=len(labelled), gap_ev_per_atom=campaign_gap(labelled))
            known = set(self.labelled_ids)
            self.labelled_ids += [i for i in labelled.ids.tolist() if i not in known]
        self.campaigns[job.campaign_id] = entry

    @property
    def model_after(self) -> str:
        """The model the next round runs with: the fine-tuned one, else the one this round ran with."""
        return self.training.get("model_after") or self.model_before

    def gap(self, role: Role = "fresh") -> float | None:
        """Median over the ``role`` campaigns of :func:`campaign_gap`, eV/atom."""
        return median_gap(c["gap_ev_per_atom"] for c in self.campaigns.values() if c["role"] == role)

    def record(self) -> dict[str, Any]:
        """The round's entry in the results file."""
        fresh = [c for c in self.campaigns.values() if c["role"] == "fresh"]
        return {
            "round": self.round,
            "seed": self.seed,
            "compositions": self.train,
            "fresh_compositions": self.fresh,
            "rows_labelled": len(self.labelled_ids),
            "rows_added": self.training_rows,
            "source": self.source,
            "model_before": self.model_before_id,
            "model_after": self.training.get("model_after_id"),
            "training": {
                k: v for k, v in self.training.items() if k not in ("model_after", "model_after_id")
            },
            "gap_ev_per_atom": self.gap("fresh"),
            "gap_campaigns": sum(c["gap_ev_per_atom"] is not None for c in fresh),
            "gap_training_compositions_ev_per_atom": self.gap("train"),
            "failed": {cid: c["reason"] for cid, c in self.campaigns.items() if c["status"] == "failed"},
            "parameters": self.parameters,
            "command": self.command,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoundState:
        """The state saved by :meth:`to_dict`.

        Raises:
            InputError: a field is missing (not a manifest of this loop).
        """
        try:
            return cls(**data)
        except TypeError as exc:
            raise InputError(f"Not a manifest of an active round: {exc}") from exc


class RoundStore(Protocol):
    """Where a round's files live (the faces implement it over a round folder)."""

    def save(self, state: RoundState) -> None:
        """Write the manifest (whole or not at all)."""
        ...

    def staged(self) -> dict[str, StructureSet]:
        """The labelled rows already staged, by campaign id (written by the label step, before the manifest)."""
        ...

    def write_parts(self, labelled: StructureSet) -> list[str]:
        """Write the round's rows as committed parts (replacing earlier ones); returns their file names."""
        ...

    def clear_staging(self) -> None:
        """Remove the staged rows (they are in the parts)."""
        ...


#: ``label_jobs(jobs)`` yields ``(job, labelled rows or a failure reason)``, each set already staged
LabelJobs = Callable[[list[ActiveJob]], Iterable[tuple[ActiveJob, "StructureSet | str"]]]


def run_round(
    state: RoundState,
    store: RoundStore,
    *,
    label_jobs: LabelJobs,
    train: Callable[[RoundState], dict[str, Any]] | None,
    record: Callable[[RoundState, dict[str, Any]], None],
) -> RoundState:
    """Run or resume one round; every step is saved before the next starts, so a crash anywhere loses at most
    the campaigns in flight and labels nothing twice.

    1. Staged labels the manifest does not know (a crash between staging and saving) are taken in.
    2. The pending campaigns run and are labelled (``label_jobs``; each yielded set is already staged); a
       failed campaign (a reason instead of rows) is recorded and not retried.
    3. All labelled rows are written as Parquet parts (rewritten whole on resume), then staging is cleared.
    4. ``train(state)`` (skipped when None) returns ``{model_after, model_after_id, ...}``.
    5. ``record(state, entry)`` writes :meth:`RoundState.record`.

    Raises:
        InputError: a staged set holds an id already labelled under another campaign (a corrupt round).
    """
    staged = store.staged()
    by_id = {job.campaign_id: job for job in state.jobs()}
    for cid, labelled in staged.items():
        if cid in by_id and cid not in state.campaigns:
            state.add(by_id[cid], labelled)
            store.save(state)
    if not state.written:
        for job, result in label_jobs(state.pending()):
            if isinstance(result, str):
                state.add(job, None, result)
            else:
                staged[job.campaign_id] = result
                state.add(job, result)
            store.save(state)
        ordered = [staged[j.campaign_id] for j in state.jobs() if j.campaign_id in staged]
        rows = StructureSet.concatenate(ordered) if ordered else _empty_labels()
        if len(set(rows.ids.tolist())) != len(rows):
            raise InputError(
                f"Round {state.round} has a row id labelled twice; its staging folder is corrupt."
            )
        state.parts = store.write_parts(rows) if len(rows) else []
        state.training_rows = len(usable_rows(rows)) if len(rows) else 0
        state.written = True
        store.save(state)
    store.clear_staging()
    status = state.training.get("status")
    if train is not None and status != "done":
        state.training = {"status": "done", **train(state)}
        state.recorded = False
        store.save(state)
    elif train is None and status == "pending":
        state.training = {"status": "skipped"}
        store.save(state)
    if not state.recorded:
        record(state, state.record())
        state.recorded = True
        store.save(state)
    return state
