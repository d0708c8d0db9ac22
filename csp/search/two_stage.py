"""The two-stage search: an outer loop over symmetry families, an inner loop over cell and coordinates.

Outer stage: an optimizer over the finite set of families (formula units Z, space group, Wyckoff
assignment), one family per step; its fitness is the full FV = alpha (1 - P_syn) + (1 - alpha) sigmoid(dHf)
with P_syn scored on the family's best structure. Inner stage: an optimizer over the family's unit-cube
variables (volume, free cell shape, free coordinates), scored in batches on enthalpy alone. With an
enthalpy ensemble and ``spread_penalty`` kappa > 0, "enthalpy" is the pessimistic bound mean + kappa * std
(eV/atom) everywhere the search compares structures: the inner objective, each family's best structure and
the dHf inside FV (:mod:`csp.search.fitness`); the rows store the mean and the std apart.

The search is plain Python: no orchestration and no storage. It talks to a :class:`Scorer` (the models)
and a :class:`Sink` (where rows go); both are protocols that the callers implement. Every candidate is one
row, appended once: a family's scored batches are appended together at most every :data:`FLUSH_SECONDS`
and always with the family's outer row (one storage write per family instead of one per batch; a killed
campaign re-scores at most those seconds of work). A campaign resumes from ``sink.history``: the loop is replayed with the
stored evaluations told to the optimizers in place of scoring, so the optimizer state is rebuilt and no
(campaign_id, outer_step, inner_step) is written twice.

Row columns (one dict per candidate; ``stage`` is ``"inner"`` for a cell/coordinate candidate and
``"outer"`` for the family's result, which repeats the family's best structure with P_syn and FV and has
``inner_step = -1``):

| column | type | meaning |
| --- | --- | --- |
| campaign_id | str | campaign identifier |
| stage | str | "inner" or "outer" |
| outer_step | int | outer step (0-based) |
| inner_step | int | inner step (0-based); -1 on the outer row |
| family_index | int | index of the family in the campaign's family list |
| formula | str | reduced formula of the composition |
| formula_units | int | Z, formula units in the cell |
| spacegroup | int or None | space group of this structure, detected by spglib at the one tolerance (:func:`csp.structures.symmetry.detect`); None when nothing is detected |
| crystal_system | str or None | the crystal system of ``spacegroup`` |
| wyckoff | str or None | Wyckoff string of ``spacegroup`` for this structure, e.g. "Mg:4a O:4b" |
| family_spacegroup | int | the search template's (family's) space group number (1..230) |
| family_wyckoff | str | the family's Wyckoff assignment, e.g. "Mg:4a O:4b" |
| lattice | list[float] | 9 floats, row vectors a, b, c in Angstrom |
| numbers | list[int] | atomic numbers, n |
| frac_coords | list[float] | 3n floats, fractional coordinates row by row |
| x | list[float] | the candidate's unit-cube variables |
| dhf_pred_ev_per_atom | float or None | predicted formation enthalpy (None when not scored); an ensemble's mean |
| dhf_pred_std_ev_per_atom | float or None | its spread: population std over the enthalpy ensemble's members, eV/atom; 0.0 for a single model; None when not scored or the scorer gives no spread |
| p_syn | float or None | synthesizability, outer rows only |
| p_syn_std | float or None | its spread over the bagged models, outer rows only |
| fitness | float or None | FV on outer rows (FV_PENALTY when invalid); None on inner rows |
| valid | bool | met all constraints and was scored |
| reject_reason | str | "" when valid, else why not |
| seed | int | campaign seed |
| seconds | float | campaign wall time when the batch was scored (cumulative over resumes) |
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import Field

from csp.errors import InputError
from csp.search.detection import RowDetector, default_workers
from csp.search.fitness import FV_PENALTY, fitness_value, pessimistic_enthalpy
from csp.search.generate import (
    CRYSTAL_SYSTEMS,
    Family,
    FamilyTemplate,
    build_template,
    check_validity,
    enumerate_families,
    iter_families,
    sample_valid,
    space_groups,
)
from csp.search.optimizers import ContinuousSpace, FiniteSpace, Optimizer, make_optimizer
from csp.search.parameters import SearchParameters
from csp.structures.composition import Composition, parse_composition
from csp.structures.crystal import Crystal
from csp.structures.validity import GeometryError

#: Scored rows wait at most this long (seconds) before they are appended to the sink.
FLUSH_SECONDS = 10.0


@runtime_checkable
class Scorer(Protocol):
    """What the search needs from the models.

    A scorer may also offer ``enthalpy_with_spread(numbers, lattices, frac) -> (mean (B,), std (B,))`` in
    eV/atom (:meth:`csp.models.scoring.ModelScorer.enthalpy_with_spread`) and ``enthalpy_members`` (the
    enthalpy model's member count); the search then stores the spread on every row and can penalise it
    (``spread_penalty``). Without them the rows' spread is None and ``spread_penalty`` must be 0.
    """

    def enthalpy(self, numbers: np.ndarray, lattices: np.ndarray, frac: np.ndarray) -> np.ndarray:
        """Formation enthalpy (B,) in eV/atom of B cells sharing atomic numbers (n,); lattices (B, 3, 3)
        row vectors in Angstrom; frac (B, n, 3)."""
        ...

    def synthesizability(self, crystals: list[Crystal]) -> tuple[np.ndarray, np.ndarray]:
        """Synthesis probability: mean (B,) and spread (B,) over the bagged classifiers."""
        ...


@runtime_checkable
class Sink(Protocol):
    """Where scored candidates go, and where a campaign's history comes back from."""

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Store one scored batch of rows (see the module docstring for the columns)."""
        ...

    def history(self, campaign_id: str) -> list[dict[str, Any]]:
        """Every row stored for ``campaign_id``, in any order."""
        ...


class InMemorySink:
    """A :class:`Sink` in a list, for tests and notebooks; refuses a key written twice."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._keys: set[tuple[str, int, int]] = set()

    def append(self, rows: list[dict[str, Any]]) -> None:
        keys = [(r["campaign_id"], r["outer_step"], r["inner_step"]) for r in rows]
        clash = [k for k in keys if k in self._keys]
        if clash or len(set(keys)) != len(keys):
            raise ValueError(f"Rows with keys already stored: {clash[:3]}.")
        self._keys.update(keys)
        self.rows += [dict(r) for r in rows]

    def history(self, campaign_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rows if r["campaign_id"] == campaign_id]


class SearchConfig(SearchParameters):
    """Parameters of one campaign: the :class:`SearchParameters` a person chooses plus the expert knobs.

    ``SearchConfig()`` is valid (a fixed cubic search of Z = 1..4); ``formula_units=(min, max)`` is still
    accepted for ``formula_units_min``/``formula_units_max``.
    """

    max_assignments_per_group: int = Field(8, ge=1, description="Wyckoff assignments kept per (Z, group).")
    inner_penalty_ev_per_atom: float = Field(
        5.0, description="Inner objective of an invalid candidate; valid enthalpies are capped at it."
    )
    family_time_budget_s: float = Field(
        600.0, gt=0, description="Wall time allowed for one family's inner loop."
    )
    sample_max_draws: int = Field(
        2048, ge=1, description="Uniform draws tried per random batch when rejecting invalid candidates."
    )
    inner_options: dict[str, Any] = Field(default_factory=dict, description="Extra inner-optimizer options.")
    outer_options: dict[str, Any] = Field(default_factory=dict, description="Extra outer-optimizer options.")


def detected_columns(lattice: Any, numbers: Any, frac_coords: Any) -> dict[str, Any]:
    """``spacegroup``, ``crystal_system`` and ``wyckoff`` of one cell as detected at the one tolerance
    (:func:`csp.structures.symmetry.detect`); all None when spglib detects nothing."""
    from csp.search.detection import columns
    from csp.structures.symmetry import detect

    return columns(detect(lattice, numbers, frac_coords))


@dataclass
class SearchResult:
    """What a campaign produced: the campaign's families and one outer row per family tried."""

    campaign_id: str
    families: list[Family]
    outer_rows: list[dict[str, Any]]
    inner_evaluations: int
    invalid_inner: int
    reject_reasons: Counter = field(default_factory=Counter)
    excluded: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> dict[str, Any] | None:
        """The outer row with the lowest fitness among valid ones, if any."""
        valid = [r for r in self.outer_rows if r["valid"]]
        return min(valid, key=lambda r: r["fitness"]) if valid else None


def family_features(families: Sequence[Family]) -> np.ndarray:
    """Encode families for the outer optimizer: space group, crystal system one-hot, Z, share of
    occupied orbits and of free coordinates; every column scaled to [0, 1]."""
    systems = list(CRYSTAL_SYSTEMS)
    rows = []
    for fam in families:
        tpl = build_template(fam)
        n = fam.num_atoms
        onehot = [1.0 if fam.crystal_system == s else 0.0 for s in systems]
        dof = sum(len(f) for f in tpl.site_free)
        rows.append([fam.spacegroup / 230.0, *onehot, fam.formula_units, len(fam.sites) / n, dof / (3 * n)])
    f = np.asarray(rows, dtype=np.float64)
    span = np.ptp(f, axis=0)
    return np.where(span > 0, (f - f.min(axis=0)) / np.where(span > 0, span, 1.0), 0.0)


def campaign_families(composition: Composition, config: SearchConfig) -> list[Family]:
    """The campaign's families, fixed by the composition, strategy, Z range, atom cap and seed."""
    return list(_campaign_families(composition, config))


def _campaign_families(
    composition: Composition, config: SearchConfig, on_group: Callable[[int, int], None] | None = None
) -> Iterator[Family]:
    lo, hi = config.formula_units
    hi = min(hi, composition.max_formula_units(config.max_atoms))
    groups = space_groups(config.strategy, config.crystal_system)
    rng = np.random.default_rng([config.seed, 0])
    return iter_families(
        composition,
        range(lo, hi + 1),
        groups,
        rng,
        max_per_group=config.max_assignments_per_group,
        on_group=on_group,
    )


def check_search_space(composition: Composition, config: SearchConfig) -> None:
    """Refuse a search with no family to try (no space group of the strategy or crystal system holds the
    reduced composition with Z in the range and at most ``max_atoms`` atoms), before anything runs. Lists
    the campaign's families only up to the first one (:func:`csp.search.generate.iter_families`).

    Raises:
        InputError: one sentence naming the composition, the Z range and the atom cap.
    """
    reduced, _ = composition.reduced()
    if next(_campaign_families(reduced, config), None) is None:
        raise _no_family(reduced, config)


def _no_family(composition: Composition, config: SearchConfig) -> InputError:
    where = "the search" if config.strategy == "all" else f"the {config.crystal_system} crystal system"
    return InputError(
        f"No space group in {where} admits {composition.formula} with Z in {config.formula_units} and at "
        f"most {config.max_atoms} atoms per cell; widen the strategy, the Z range or max_atoms."
    )


def excluded_by_atom_cap(
    composition: Composition,
    config: SearchConfig,
    families: Sequence[Family] | None = None,
    *,
    on_group: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """What the atom cap (``config.max_atoms``) leaves out of the requested Z range.

    Args:
        composition: the reduced composition searched.
        config: the campaign parameters (Z range, strategy, cap, seed).
        families: the campaign's families (computed when omitted).
        on_group: called before each (Z, space group) beyond the cap is listed (see
            :func:`csp.search.generate.enumerate_families`).

    Returns:
        ``max_atoms``; ``formula_units`` (the Z values dropped); ``families`` (how many families those Z
        values would have added, with the same per-group cap); ``space_groups`` (how many space groups
        have families only above the cap, i.e. are not searched at all); ``spacegroup_numbers`` (them).
    """
    lo, hi = config.formula_units
    top = composition.max_formula_units(config.max_atoms)
    dropped = list(range(max(lo, top + 1), hi + 1))
    out: dict[str, Any] = {
        "max_atoms": config.max_atoms,
        "formula_units": dropped,
        "families": 0,
        "space_groups": 0,
        "spacegroup_numbers": [],
    }
    if not dropped:
        return out
    groups = space_groups(config.strategy, config.crystal_system)
    beyond = enumerate_families(
        composition,
        dropped,
        groups,
        np.random.default_rng([config.seed, 3]),
        max_per_group=config.max_assignments_per_group,
        on_group=on_group,
    )
    kept = {
        f.spacegroup for f in (families if families is not None else campaign_families(composition, config))
    }
    only_beyond = sorted({f.spacegroup for f in beyond} - kept)
    out.update(families=len(beyond), space_groups=len(only_beyond), spacegroup_numbers=only_beyond)
    return out


def run_search(
    composition: str | Composition,
    config: SearchConfig,
    scorer: Scorer,
    sink: Sink,
    *,
    campaign_id: str = "local",
    progress: Callable[[dict[str, Any]], None] | None = None,
    symmetry_workers: int | None = None,
) -> SearchResult:
    """Run (or resume) a two-stage search campaign.

    Args:
        composition: a formula such as ``"MgO"`` or a parsed :class:`Composition` (it is reduced; Z is
            searched like any other discrete choice).
        config: the campaign parameters, seed included.
        scorer: the enthalpy and synthesizability models.
        sink: receives every scored batch; its history for ``campaign_id`` is replayed to resume.
        campaign_id: the campaign's key in the sink.
        progress: called after each outer step with a dict (outer_step, outer_steps, planned_steps: the
            steps that will run, at most the number of families; family, fitness, best_fitness,
            inner_evaluations; scored_now and replayed: the inner rows this run scored and those it took
            from an earlier run of the campaign).
        symmetry_workers: processes that detect the rows' space groups while the search scores
            (:mod:`csp.search.detection`; the values are the same as inline); None: one per CPU (at most 4) on a
            machine with 2+ CPUs for a search of 2,000+ candidates (``CSP_SYMMETRY_WORKERS`` overrides), 0: inline.

    Returns:
        A :class:`SearchResult`; rank and deduplicate its outer rows with :mod:`csp.structures.matching`. Its
        ``excluded`` says what the atom cap left out (see :func:`excluded_by_atom_cap`).

    Raises:
        CompositionError: if the formula cannot be searched.
        ValueError: if no symmetry family fits the composition.
        InputError: ``spread_penalty`` > 0 with a scorer whose enthalpy has no spread (one member).
    """
    with_spread = hasattr(scorer, "enthalpy_with_spread")  # a scorer that gives a spread and no count: 2+
    check_spread_penalty(config.spread_penalty, getattr(scorer, "enthalpy_members", 2) if with_spread else 0)
    comp = (
        parse_composition(composition, max_atoms=config.max_atoms)
        if isinstance(composition, str)
        else composition
    )
    comp, _ = comp.reduced()
    from csp.search.families import plan_families  # listed once: the campaign's checks listed them already

    plan = plan_families(comp, config)
    families, excluded = list(plan.families), dict(plan.excluded)
    if not families:
        raise _no_family(comp, config)
    stored = {(r["outer_step"], r["inner_step"]): r for r in sink.history(campaign_id)}
    if symmetry_workers is None:
        symmetry_workers = default_workers(min(config.outer_steps, len(families)) * config.inner_steps)
    with RowDetector(symmetry_workers) as detector:
        run = _Campaign(comp, config, scorer, sink, campaign_id, families, stored, detector)
        result = _run_outer(run, config, families, stored, progress)
    result.excluded = excluded
    return result


def _run_outer(
    run: _Campaign,
    config: SearchConfig,
    families: list[Family],
    stored: dict[tuple[int, int], dict[str, Any]],
    progress: Callable[[dict[str, Any]], None] | None,
) -> SearchResult:
    outer = make_optimizer(
        config.outer_optimizer,
        FiniteSpace(family_features(families)),
        np.random.default_rng([config.seed, 1]),
        **config.outer_options,
    )
    best = np.inf
    stored_inner = Counter(step for step, inner in stored if inner >= 0)
    for step in range(config.outer_steps):
        asked = outer.ask(1)
        if len(asked) == 0:
            break
        row = stored.get((step, -1))
        if row is None:
            row = run.family(step, int(asked[0]))
        else:  # the whole family was scored by an earlier run: its rows are replayed, not scored
            run.replayed += stored_inner[step]
        run.outer_rows.append(row)
        outer.tell(np.array([row["family_index"]]), np.array([row["fitness"]]))
        best = min(best, row["fitness"])
        if progress is not None:
            progress(
                {
                    "outer_step": step,
                    "outer_steps": config.outer_steps,
                    "planned_steps": min(config.outer_steps, len(families)),
                    # the template (rows resumed from a lake older than family_* held it in wyckoff/spacegroup)
                    "family": row.get("family_wyckoff") or row["wyckoff"],
                    "spacegroup": row.get("family_spacegroup") or row["spacegroup"],
                    "fitness": row["fitness"],
                    "best_fitness": best,
                    "inner_evaluations": run.inner_evaluations,
                    # rows this run scored, and rows replayed from an earlier run's (a resume)
                    "scored_now": run.scored_now,
                    "replayed": run.replayed,
                }
            )
    return SearchResult(
        run.campaign_id, families, run.outer_rows, run.inner_evaluations, run.invalid_inner, run.reasons
    )


def check_spread_penalty(kappa: float, members: int) -> None:
    """Refuse a spread penalty the models cannot apply: kappa > 0 needs an enthalpy ensemble.

    Args:
        kappa: the campaign's ``spread_penalty``.
        members: members of the enthalpy model (``n_members`` of its model.json; 0: the scorer gives no
            spread at all).

    Raises:
        InputError: ``kappa`` > 0 and the scorer gives no spread, or its enthalpy model has one member
            (whose spread is always 0, so the penalty would silently do nothing).
    """
    if kappa <= 0:
        return
    advice = "use an enthalpy model trained with --ensemble (n_members >= 2 in its model.json) or set "
    advice += "spread_penalty to 0"
    if members == 0:
        raise InputError(
            f"spread_penalty {kappa:g} needs the enthalpy's spread, which this scorer does not give; {advice}."
        )
    if members < 2:
        raise InputError(
            f"spread_penalty {kappa:g} needs an enthalpy ensemble, but the enthalpy model has {members} member "
            f"(its spread is always 0, so the penalty would change nothing); {advice}."
        )


def _penalised(row: dict[str, Any], kappa: float) -> float:
    """``mean + kappa * std`` (eV/atom) of a scored row; a row without a spread counts it as 0."""
    if kappa == 0:
        return float(row["dhf_pred_ev_per_atom"])
    std = row.get("dhf_pred_std_ev_per_atom")
    std_arr = None if std is None else np.array([std], dtype=np.float64)
    return float(pessimistic_enthalpy(np.array([row["dhf_pred_ev_per_atom"]]), std_arr, kappa)[0])


class _Campaign:
    """State of one run of :func:`run_search` (kept private: the loop lives in run_search)."""

    def __init__(
        self,
        comp: Composition,
        config: SearchConfig,
        scorer: Scorer,
        sink: Sink,
        campaign_id: str,
        families: list[Family],
        stored: dict[tuple[int, int], dict[str, Any]],
        detector: RowDetector | None = None,
    ) -> None:
        self.comp, self.config, self.scorer, self.sink = comp, config, scorer, sink
        self.detector = detector if detector is not None else RowDetector(0)
        self.campaign_id, self.families, self.stored = campaign_id, families, stored
        self.outer_rows: list[dict[str, Any]] = []
        self.inner_evaluations = 0
        #: inner rows this run scored, and inner rows taken from ``stored`` (an earlier run's) instead
        self.scored_now = 0
        self.replayed = 0
        self.invalid_inner = 0
        self.reasons: Counter = Counter()
        self.clock0 = time.perf_counter() - max((r["seconds"] for r in stored.values()), default=0.0)

    def _row(
        self,
        step: int,
        index: int,
        inner_step: int,
        lattice: np.ndarray,
        numbers: np.ndarray,
        frac: np.ndarray,
        x: np.ndarray,
    ) -> dict[str, Any]:
        fam = self.families[index]
        return {
            "campaign_id": self.campaign_id,
            "stage": "inner",
            "outer_step": step,
            "inner_step": inner_step,
            "family_index": index,
            "formula": self.comp.formula,
            "formula_units": fam.formula_units,
            "spacegroup": fam.spacegroup,
            "crystal_system": fam.crystal_system,
            "wyckoff": fam.wyckoff,
            "family_spacegroup": fam.spacegroup,
            "family_wyckoff": fam.wyckoff,
            "lattice": np.asarray(lattice, dtype=np.float64).reshape(-1).tolist(),
            "numbers": np.asarray(numbers, dtype=np.int64).tolist(),
            "frac_coords": np.asarray(frac, dtype=np.float64).reshape(-1).tolist(),
            "x": np.asarray(x, dtype=np.float64).reshape(-1).tolist(),
            "dhf_pred_ev_per_atom": None,
            "dhf_pred_std_ev_per_atom": None,
            "p_syn": None,
            "p_syn_std": None,
            "fitness": None,
            "valid": False,
            "reject_reason": "",
            "seed": self.config.seed,
            "seconds": 0.0,
        }

    def _objective(self, row: dict[str, Any]) -> float:
        if not row["valid"]:
            return self.config.inner_penalty_ev_per_atom
        # mean + kappa * std (the mean when kappa = 0), capped like the mean was
        return min(_penalised(row, self.config.spread_penalty), self.config.inner_penalty_ev_per_atom)

    def _score(
        self, tpl: FamilyTemplate, step: int, index: int, first: int, u: np.ndarray
    ) -> list[dict[str, Any]]:
        batch = tpl.build(u)
        valid, reasons = check_validity(
            batch.lattices, batch.frac_coords, batch.numbers, reference_volume=tpl.reference_volume
        )
        dhf = np.full(len(u), np.nan)
        spread = np.full(len(u), np.nan)
        if valid.any():
            chosen = np.flatnonzero(valid)
            dhf[chosen], spread[chosen], refused = self._enthalpy(
                batch.numbers, batch.lattices[chosen], batch.frac_coords[chosen]
            )
            for k, why in refused.items():
                valid[chosen[k]] = False
                reasons[chosen[k]] = why
        seconds = time.perf_counter() - self.clock0
        kappa = self.config.spread_penalty
        rows = []
        for b in range(len(u)):
            row = self._row(
                step, index, first + b, batch.lattices[b], batch.numbers, batch.frac_coords[b], u[b]
            )
            ok = bool(valid[b]) and bool(np.isfinite(dhf[b]))
            reason = reasons[b] or ("" if ok else "the scorer returned a non-finite enthalpy")
            if ok and kappa > 0 and not (np.isfinite(spread[b]) and spread[b] >= 0):  # never a bonus
                ok, reason = False, "the scorer returned a non-finite or negative enthalpy spread"
            row.update(
                valid=ok,
                reject_reason=reason,
                dhf_pred_ev_per_atom=float(dhf[b]) if ok else None,
                dhf_pred_std_ev_per_atom=float(spread[b]) if ok and np.isfinite(spread[b]) else None,
                seconds=seconds,
            )
            rows.append(row)
        # spacegroup / crystal_system / wyckoff: filled by the detector (maybe later, before the write)
        self.detector.add(rows, batch.lattices, batch.numbers, batch.frac_coords)
        return rows

    def _enthalpy(
        self, numbers: np.ndarray, lattices: np.ndarray, frac: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
        """Enthalpies (B,) and their spreads (B,) of the candidates the scorer accepts (NaN elsewhere, and
        NaN spreads from a scorer that gives none) and, by position, why it refused the others: one crystal
        the models cannot score never ends the batch or the campaign."""
        out = np.full(len(lattices), np.nan)
        spread = np.full(len(lattices), np.nan)
        with_spread = getattr(self.scorer, "enthalpy_with_spread", None)
        refused: dict[int, str] = {}
        todo = np.arange(len(lattices))
        while len(todo):
            try:
                if with_spread is not None:
                    mean, std = with_spread(numbers, lattices[todo], frac[todo])
                    spread[todo] = np.asarray(std, dtype=np.float64).reshape(-1)
                else:
                    mean = self.scorer.enthalpy(numbers, lattices[todo], frac[todo])
                out[todo] = np.asarray(mean, dtype=np.float64).reshape(-1)
            except GeometryError as exc:  # drop that one crystal, score the rest
                refused[int(todo[exc.index])] = f"the models cannot score it: {exc.detail}"
                todo = np.delete(todo, exc.index)
            else:
                break
        return out, spread, refused

    def family(self, step: int, index: int) -> dict[str, Any]:
        """Run (or finish) one family's inner loop and return its outer row, appended to the sink."""
        cfg = self.config
        fam = self.families[index]
        tpl = build_template(fam)
        rng = np.random.default_rng([cfg.seed, 2, step])

        def sampler(n: int, r: np.random.Generator) -> np.ndarray:
            return sample_valid(tpl, n, r, max_draws=cfg.sample_max_draws)[0]

        opt: Optimizer = make_optimizer(
            cfg.inner_optimizer, ContinuousSpace(tpl.dim), rng, sampler, **cfg.inner_options
        )
        rows: list[dict[str, Any]] = []
        started = flushed = time.perf_counter()
        pending: list[dict[str, Any]] = []
        note = ""
        done = 0
        while done < cfg.inner_steps:
            if time.perf_counter() - started > cfg.family_time_budget_s:
                note = f"time budget of {cfg.family_time_budget_s:g} s spent after {done} inner steps"
                break
            n = min(cfg.batch_size, cfg.inner_steps - done)
            u = opt.ask(n)
            keys = range(done, done + n)
            old = [self.stored.get((step, k)) for k in keys]
            if all(r is not None for r in old):
                batch_rows = old
                u = np.array([r["x"] for r in old])
                self.replayed += n
            else:
                batch_rows = self._score(tpl, step, index, done, u)
                fresh = [r for r, o in zip(batch_rows, old, strict=True) if o is None]
                self.scored_now += len(fresh)
                self.replayed += n - len(fresh)
                batch_rows = [o if o is not None else r for r, o in zip(batch_rows, old, strict=True)]
                pending += fresh
                if time.perf_counter() - flushed > FLUSH_SECONDS:
                    self.detector.resolve()
                    self.sink.append(pending)
                    pending, flushed = [], time.perf_counter()
            opt.tell(u, np.array([self._objective(r) for r in batch_rows]))
            rows += batch_rows
            done += n
        self.detector.resolve()  # every row has its detected columns before the outer row copies one
        self.inner_evaluations += len(rows)
        bad = [r["reject_reason"] for r in rows if not r["valid"]]
        self.invalid_inner += len(bad)
        self.reasons.update(reason.split(":")[0] for reason in bad)
        good = [r for r in rows if r["valid"]]
        if good:
            # the family's best: the lowest mean + kappa * std (the lowest mean when kappa = 0)
            best = min(good, key=lambda r: _penalised(r, cfg.spread_penalty))
            outer = dict(best, stage="outer", inner_step=-1)
            crystal = Crystal(
                np.reshape(best["lattice"], (3, 3)),
                np.array(best["numbers"]),
                np.reshape(best["frac_coords"], (-1, 3)),
            )
            try:
                p, s = self.scorer.synthesizability([crystal])
            except GeometryError as exc:  # the family's row says why; the campaign goes on
                outer.update(
                    fitness=FV_PENALTY, valid=False, reject_reason=f"the models cannot score it: {exc.detail}"
                )
            else:
                std = best.get("dhf_pred_std_ev_per_atom")
                fv, ok = fitness_value(
                    np.asarray(p)[:1],
                    np.array([best["dhf_pred_ev_per_atom"]]),
                    cfg.alpha,
                    dhf_std_ev_per_atom=None if std is None else np.array([std]),
                    spread_penalty=cfg.spread_penalty,
                )
                outer.update(
                    p_syn=float(np.asarray(p)[0]),
                    p_syn_std=float(np.asarray(s)[0]),
                    fitness=float(fv[0]),
                    valid=bool(ok[0]),
                    reject_reason="" if ok[0] else "the scorer returned a non-finite synthesizability",
                )
        else:
            common = Counter(bad).most_common(1)
            why = common[0][0] if common else note
            outer = self._row(
                step, index, -1, np.full(9, np.nan), tpl.numbers, np.zeros((len(tpl.numbers), 3)), []
            )
            outer.update(
                stage="outer",
                fitness=FV_PENALTY,
                spacegroup=None,
                crystal_system=None,
                wyckoff=None,
                reject_reason=f"family could not be built: no valid candidate in {len(rows)} inner steps"
                + (f" (most common: {why})" if why else ""),
            )
        outer["seconds"] = time.perf_counter() - self.clock0
        self.sink.append([*pending, outer])
        return outer
