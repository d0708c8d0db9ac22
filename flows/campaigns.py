"""Campaign wiring shared by the CLI and the Prefect flows: parameters -> search -> lake -> ranking.

``csp.search.two_stage`` knows nothing of storage or Prefect. Here a request becomes a typed
:class:`CampaignParameters` (the search's :class:`csp.search.two_stage.SearchParameters` plus the composition and
``top_k``), :func:`check` validates it without touching the lake or opening a model, and :func:`prepare`
turns it into a :class:`Campaign` (composition parsed once, models loaded once, elements checked once, id
derived) whose :meth:`Campaign.run` hands the search a lake-backed sink, records the campaign's events
(running, completed, failed, interrupted) and ranks the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from csp.errors import CSPError, InputError
from csp.search.generate import CrystalSystem
from csp.search.optimizers import OptimizerName
from csp.search.two_stage import SearchParameters
from csp.structures.matching import public_row
from flows.campaign_ids import derived_campaign_id, new_campaign_id, slug
from flows.campaign_models import configured_model_ids, model_folders, open_scorer
from flows.checks import option_words, output_folder, parameter_error
from flows.coverage import check_models, element_coverage, thin_elements
from flows.settings import Settings
from flows.settings import settings as current_settings
from storage import campaign_state
from storage.campaigns import LakeSink, candidate_counts, record_event
from storage.campaigns import stored_parameters as _stored_parameters
from storage.errors import DiskWriteError, StorageError, writing
from storage.lake import Lake

#: earlier names of the choice types (one definition each lives in csp)
OptimizerChoice = OptimizerName
__all__ = [
    "Campaign",
    "CampaignError",
    "CampaignOutcome",
    "CampaignParameters",
    "CrystalSystem",
    "OptimizerChoice",
    "check",
    "check_targets",
    "derived_campaign_id",
    "new_campaign_id",
    "open_scorer",
    "prepare",
    "public_row",
    "run_campaign",
    "slug",
    "stored_parameters",
    "validate",
]
#: outer choices: an optimizer over families, or the random-structure baseline (csp.potentials.refine.rs_relax_config)
OuterChoice = Literal["rs", "pso", "ga", "bo", "rs-relax"]


class CampaignParameters(SearchParameters):
    """Flat, typed campaign parameters: what the CLI takes and the Prefect UI draws as a form."""

    composition: str = Field(description="Formula to search, e.g. MgO, BaZrO3, K2Se.")
    top_k: int = Field(5, ge=1, le=100, description="Structures in the top-k table.")
    allow_unseen_elements: bool = Field(
        False,
        description="Score elements a model has no training rows for (with a warning) instead of refusing.",
    )
    outer_optimizer: OuterChoice = Field(
        "bo",
        description="Optimizer over space group + Wyckoff families; rs-relax: the baseline of random "
        "symmetric structures relaxed with the potential and ranked by its energy.",
    )

    def search_config(self) -> Any:
        """The :class:`csp.search.two_stage.SearchConfig` of these parameters (expert knobs at their defaults);
        ``rs-relax`` becomes the random-search configuration of :func:`csp.potentials.refine.rs_relax_config`."""
        from csp.potentials.refine import RS_RELAX, rs_relax_config
        from csp.search.two_stage import SearchConfig

        fields = self.search_fields()
        if self.outer_optimizer == RS_RELAX:
            return rs_relax_config(SearchConfig(**{**fields, "outer_optimizer": "rs"}))
        return SearchConfig(**fields)


class CampaignError(InputError):
    """A campaign request that cannot run (bad composition, parameters or models); one-sentence message.

    A :class:`csp.errors.InputError`, so also a ``CSPError`` and a ``ValueError``. The science's names of
    parameters in the message are spelt as the options that set them (:func:`flows.checks.option_words`)."""

    def __init__(self, message: str) -> None:
        super().__init__(option_words(str(message), CampaignParameters))


@dataclass
class CampaignOutcome:
    campaign_id: str
    status: str
    top: list[dict[str, Any]] = field(default_factory=list)
    n_candidates: int = 0
    invalid_share: float = 0.0
    elapsed_s: float = 0.0  # seconds of this run (a resume's own part)
    #: of ``n_candidates``, those an earlier run of the campaign had scored (a resume replays them)
    n_replayed: int = 0
    reason: str | None = None
    thin_elements: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, Any] = field(default_factory=dict)
    #: the pure-surrogate top k of the search (equal to ``top`` when refinement is off)
    top_search: list[dict[str, Any]] = field(default_factory=list)
    search_s: float = 0.0
    refine_s: float = 0.0
    #: the one campaign result (:class:`csp.potentials.result.CampaignResult`); ``top`` is its final top k
    result: Any = None


# ------------------------------------------------------------------------------------------ checks


def validate(
    params: dict[str, Any] | CampaignParameters,
    *,
    force: bool = False,
    report: Callable[..., None] | None = None,
) -> CampaignParameters:
    """Parameters, composition, search space (:func:`csp.search.two_stage.check_search_space`: some family
    to try), refinement (:func:`csp.potentials.refine.check_refinement`: the potential installed, its device
    present) and budget checked before anything is read or written; raises :class:`CampaignError`.

    The families are listed here, once, with progress to ``report`` (:func:`csp.search.families.plan_families`).
    A listing longer than :data:`csp.search.budget.MAX_LISTING_S` seconds, or a budget above
    :data:`csp.search.budget.MAX_CANDIDATES` structures (counted over the families that will actually run), is
    refused unless ``force``.
    """
    from csp.potentials.refine import check_refinement
    from csp.search.budget import check_search_budget
    from csp.search.two_stage import check_search_space
    from csp.structures.composition import parse_composition

    try:
        checked = params if isinstance(params, CampaignParameters) else CampaignParameters(**params)
    except ValidationError as exc:
        raise CampaignError(parameter_error(exc, CampaignParameters)) from exc
    try:
        comp = parse_composition(checked.composition, max_atoms=checked.max_atoms)
        check_search_space(comp, checked.search_config())
        check_refinement(checked.search_config())
        check_search_budget(comp, checked.search_config(), force=force, report=report)
    except (CSPError, ValueError) as exc:
        raise CampaignError(str(exc)) from exc
    return checked


def check_targets(campaign_id: str | None, export_dir: Path | None = None) -> None:
    """The id (1-96 letters, digits, ``.``, ``_``, ``-``; None: a fresh one) and the export folder, checked
    before anything is written; raises :class:`CampaignError`."""
    try:
        if campaign_id is not None:
            campaign_state.check_campaign_id(campaign_id)
        if export_dir is not None:
            output_folder(export_dir)
    except (StorageError, ValueError) as exc:
        raise CampaignError(str(exc)) from exc


def check(
    params: dict[str, Any] | CampaignParameters,
    settings: Settings | None = None,
    *,
    force: bool = False,
    report: Callable[..., None] | None = None,
) -> CampaignParameters:
    """Everything that can be checked before the lake is touched; raises :class:`CampaignError`.

    Parameters, composition and budget (``force`` lifts the bound) through :func:`validate`, then each
    model folder with :func:`csp.models.check.check_model_folder` (files, sha256, task and outputs for its
    role: the same check a campaign and ``csp models verify`` make) and the elements each model has
    training rows for (``training_elements``; unseen ones pass only with ``allow_unseen_elements``). No
    ONNX session is opened.
    """
    from csp.structures.composition import parse_composition

    settings = settings or current_settings()
    checked = validate(params, force=force, report=report)
    folders = {k: f for k, f in model_folders(settings, checked.dhf_source).items() if f is not None}
    comp = parse_composition(checked.composition, max_atoms=checked.max_atoms)  # validate() parsed it
    try:
        check_models(folders, comp, checked.allow_unseen_elements, checked.spread_penalty)
    except CSPError as exc:
        raise CampaignError(str(exc)) from exc
    return checked


# ------------------------------------------------------------------------------------------ the run


@dataclass
class Campaign:
    """A checked, ready campaign: parameters, parsed composition, warm models, lake and id.

    ``coverage`` is ``{element: {model name: training rows}}`` (:func:`flows.coverage.element_coverage`).
    """

    params: CampaignParameters
    composition: Any
    scorer: Any
    lake: Lake
    campaign_id: str
    run_id: str
    coverage: dict[str, dict[str, int | None]] = field(default_factory=dict)

    @property
    def model_ids(self) -> list[str]:
        from csp.models.check import model_id

        return [model_id(m.name, m.meta["sha256"]) for m in self.scorer.scorer.models.values()]

    def run(
        self,
        progress: Callable[[dict[str, Any]], None] | None = None,
        *,
        export_dir: Path | None = None,
    ) -> CampaignOutcome:
        """Run (or resume) the search; every candidate lands in the lake; returns the ranked top k.

        The run holds its id and records every way out (:func:`storage.campaign_state.recorded_run`):
        ``interrupted`` (Ctrl-C, SIGTERM) or ``failed`` (any error), then re-raises.

        Raises:
            CampaignError: a bad ``export_dir`` or an id held by a live process (nothing is written); no
                symmetry family fits, or the science refused the request (a ``failed`` event first).
        """
        check_targets(self.campaign_id, export_dir)
        event = partial(
            record_event,
            self.lake,
            self.campaign_id,
            composition=self.params.composition,
            parameters=self.params.model_dump(),
            run_id=self.run_id,
            model_ids=self.model_ids,
        )
        try:  # the search raises no CampaignStateError: only the claim on the id does
            with campaign_state.recorded_run(
                self.lake, self.campaign_id, self.run_id, event, refused=(CampaignError,)
            ):
                return self._search_and_rank(event, progress, export_dir)
        except (campaign_state.CampaignStateError, DiskWriteError) as exc:
            # a full or read-only lake: one line that says whether `failed` could be recorded
            raise CampaignError(str(exc)) from exc

    def _search_and_rank(
        self, event: Callable[..., Any], progress: Callable[..., None] | None, export_dir: Path | None
    ) -> CampaignOutcome:
        from csp.potentials.refine import refine_or_probe
        from csp.search.two_stage import run_search
        from csp.structures.io import write_structures
        from flows.results import result_of

        params = self.params
        sink = LakeSink(self.lake, run_id=self.run_id, model_ids=self.model_ids)
        n_before, _ = candidate_counts(self.lake, self.campaign_id)  # scored by earlier runs (a resume)
        start = time.perf_counter()
        try:
            result = run_search(
                self.composition, params.search_config(), self.scorer, sink,
                campaign_id=self.campaign_id, progress=progress,
            )  # fmt: skip
        # e.g. no space group of the chosen system can hold the composition (a csp.errors.InputError)
        except CSPError as exc:
            raise CampaignError(str(exc)) from exc
        search_s = time.perf_counter() - start
        refine_or_probe(result.outer_rows, params.search_config(), self.scorer, sink, self.campaign_id, progress)  # fmt: skip
        elapsed = time.perf_counter() - start
        self.lake.compact("candidates", partition=self.campaign_id)
        # the one answer, made from the rows as the lake holds them (every face makes it the same way)
        answer = result_of(self.lake, self.campaign_id, k=params.top_k)
        if export_dir is not None and answer.top:  # all or nothing, as `campaign export` writes them
            with writing(export_dir, advice="or choose another --export-cif folder"):
                names = [f"{self.campaign_id}-rank{e.rank}" for e in answer.top]
                write_structures(answer.structures("final"), export_dir, "cif", names=names)
        n, invalid = candidate_counts(self.lake, self.campaign_id)
        summary = {
            "top": [e.public() for e in answer.top],
            "top_search": [e.public() for e in answer.search_top],
            "result": answer.public(),
            "refined": answer.refinement or None,
            "search_s": search_s,
            "refine_s": elapsed - search_s,
            "excluded_by_atom_cap": result.excluded,
            "invalid_share": invalid,
            "reject_reasons": dict(result.reject_reasons),
            "element_coverage": self.coverage,
            "thin_elements": thin_elements(self.coverage),
        }
        event(status="completed", n_candidates=n, elapsed_s=elapsed, summary=summary)
        return CampaignOutcome(
            campaign_id=self.campaign_id,
            status="completed",
            top=[{**e.public(), "structure": e.structure} for e in answer.top],
            n_candidates=n,
            invalid_share=invalid,
            elapsed_s=elapsed,
            n_replayed=min(n_before, n),
            thin_elements=summary["thin_elements"],
            excluded=result.excluded,
            top_search=[{**e.public(), "structure": e.structure} for e in answer.search_top],
            search_s=search_s,
            result=answer,
            refine_s=elapsed - search_s,
        )


def prepare(
    params: dict[str, Any] | CampaignParameters,
    *,
    campaign_id: str | None = None,
    settings: Settings | None = None,
    run_id: str | None = None,
    force: bool = False,
    report: Callable[..., None] | None = None,
) -> Campaign:
    """Check a request and make it ready to run: composition parsed once, models opened once (each folder
    checked for its role), elements checked once (with their training coverage), id derived
    (``campaign_id`` or a fresh one). ``force`` accepts a budget above :data:`csp.search.budget.MAX_CANDIDATES`
    and a family listing longer than :data:`csp.search.budget.MAX_LISTING_S`; ``report`` receives the
    listing's progress (:func:`validate`).

    Raises:
        CampaignError: a request that cannot run. A refused request writes nothing (id, parameters,
            composition, search space and budget are checked before the lake is opened; elements without
            training rows and a spread penalty without an ensemble before a new lake is made; an id started
            with other parameters or other models (their ONNX sha256) before any event). Only models that
            cannot be loaded, a fault of the installation, record a ``failed`` event under an id that never ran.
    """
    from csp.search.two_stage import check_spread_penalty
    from csp.structures.composition import parse_composition

    check_targets(campaign_id)
    checked = validate(params, force=force, report=report)
    settings = settings or current_settings()
    campaign_id = campaign_id or new_campaign_id(checked.composition)
    run_id = run_id or f"campaign-{campaign_id}"
    lake = Lake(settings.home)
    if lake.lake_dir.is_dir():  # an id can have run only in a lake that exists: a new lake is made last
        lake.init()
        try:  # the same parameters and the same models (their ONNX sha256) as the id started with
            campaign_state.check_same_parameters(
                lake, campaign_id, checked.model_dump(), CampaignParameters.field_defaults(),
                model_ids=configured_model_ids(settings, checked.dhf_source),
            )  # fmt: skip
        except StorageError as exc:
            raise CampaignError(str(exc)) from exc
    parsed = parse_composition(checked.composition, max_atoms=checked.max_atoms)  # validate() parsed it
    try:
        options = checked.model_dump(include={"allow_unseen_elements", "score_device"})
        scorer = open_scorer(settings, checked.dhf_source, **options)
    except (CSPError, StorageError, ValueError) as exc:
        lake.init()  # a fault of the installation, not of the request: recorded
        if campaign_state.stored_fingerprint(lake, campaign_id) is None:  # never mark a real campaign failed
            record_event(lake, campaign_id, composition=checked.composition, status="failed",
                         parameters=checked.model_dump(), run_id=run_id, reason=str(exc))  # fmt: skip
        raise CampaignError(str(exc)) from exc
    try:  # refusals of the request by the models: before the lake is made or written
        scorer.check_elements(parsed.numbers())
        check_spread_penalty(checked.spread_penalty, getattr(scorer, "enthalpy_members", 1))
    except CSPError as exc:
        raise CampaignError(str(exc)) from exc
    coverage = element_coverage(scorer.scorer.models.values(), parsed.symbols)
    return Campaign(checked, parsed, scorer, lake.init(), campaign_id, run_id, coverage)


def run_campaign(
    params: dict[str, Any] | CampaignParameters,
    *,
    campaign_id: str | None = None,
    settings: Settings | None = None,
    run_id: str | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    export_dir: Path | None = None,
    force: bool = False,
) -> CampaignOutcome:
    """Run (or resume, when ``campaign_id`` exists) a campaign: :func:`check_targets`, :func:`prepare`,
    then :meth:`Campaign.run`; each raises :class:`CampaignError` for a request that cannot run."""
    check_targets(campaign_id, export_dir)
    campaign = prepare(params, campaign_id=campaign_id, settings=settings, run_id=run_id, force=force)
    return campaign.run(progress, export_dir=export_dir)


def stored_parameters(lake: Lake, campaign_id: str) -> dict[str, Any]:
    """The parameters a campaign was started with (for resume); raises :class:`CampaignError` if unknown."""
    found = _stored_parameters(lake, campaign_id)
    if found is None:
        raise CampaignError(f"No campaign {campaign_id!r} in the lake; `csp campaign list` shows the ids.")
    return found
