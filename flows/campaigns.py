"""Campaign wiring shared by the CLI and the Prefect flow: parameters -> search -> lake -> ranking.

``csp.search`` knows nothing of storage or Prefect; this module validates the request, opens the
shipped models, hands the search a lake-backed sink, records the campaign's events (running,
completed, failed, interrupted) and ranks the result.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from csp.composition import DEFAULT_MAX_ATOMS
from flows.settings import Settings
from storage.candidates import LakeSink, record_event
from storage.lake import Lake

CrystalSystem = Literal[
    "triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic"
]
OptimizerChoice = Literal["rs", "pso", "ga", "bo"]
#: outer choices: an optimizer over families, or the random-structure baseline (csp.refine.rs_relax_config)
OuterChoice = Literal["rs", "pso", "ga", "bo", "rs-relax"]
RankingChoice = Literal["energy", "fitness", "window"]


class CampaignParameters(BaseModel):
    """Flat, typed campaign parameters: what the CLI takes and the Prefect UI draws as a form."""

    model_config = ConfigDict(extra="forbid")

    composition: str = Field(description="Formula to search, e.g. MgO, BaZrO3, K2Se.")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="Weight of (1 - P_syn) in the fitness.")
    strategy: Literal["all", "fixed"] = Field("fixed", description="All crystal systems or one fixed system.")
    crystal_system: CrystalSystem | None = Field(
        "cubic", description="Crystal system for the fixed strategy."
    )
    outer_optimizer: OuterChoice = Field(
        "bo",
        description="Optimizer over space group + Wyckoff families; rs-relax: the baseline of random "
        "symmetric structures relaxed with the potential and ranked by its energy.",
    )
    inner_optimizer: OptimizerChoice = Field("pso", description="Optimizer over lattice and coordinates.")
    outer_steps: int = Field(200, ge=1, le=10_000, description="Families tried.")
    inner_steps: int = Field(300, ge=1, le=100_000, description="Structures scored per family.")
    batch_size: int = Field(30, ge=1, le=4096, description="Structures scored per inner batch.")
    formula_units_min: int = Field(1, ge=1, le=64)
    formula_units_max: int = Field(4, ge=1, le=64)
    max_atoms: int = Field(
        DEFAULT_MAX_ATOMS,
        ge=1,
        le=1000,
        description="Most atoms per cell; what it leaves out is counted in the summary.",
    )
    seed: int = Field(0, ge=0)
    dhf_source: Literal["dft", "exp"] = Field("exp", description="Enthalpy model: DFT-trained or fine-tuned.")
    top_k: int = Field(5, ge=1, le=100)
    refine: bool = Field(True, description="Relax the best distinct structures with a universal potential.")
    refine_top_n: int = Field(32, ge=1, le=1000, description="Distinct structures refined.")
    refine_fmax: float = Field(0.05, gt=0, description="Refinement force threshold, eV/A.")
    refine_steps: int = Field(150, ge=1, le=10_000, description="Most FIRE steps per refined structure.")
    refine_potential: Literal["chgnet", "sevennet"] = Field("chgnet", description="Universal potential.")
    refine_device: str = Field("cpu", description="Torch device of the potential (cpu, cuda).")
    refine_ranking: RankingChoice = Field(
        "fitness", description="Final order of refined structures (benchmarks/results/refine_ranking.md)."
    )

    @model_validator(mode="after")
    def _check(self) -> CampaignParameters:
        if self.formula_units_min > self.formula_units_max:
            raise ValueError("formula_units_min must not exceed formula_units_max.")
        if self.strategy == "fixed" and self.crystal_system is None:
            raise ValueError("The fixed strategy needs a crystal_system (e.g. cubic).")
        return self

    def search_config(self) -> Any:
        from csp.refine import RS_RELAX, rs_relax_config
        from csp.search import SearchConfig

        config = SearchConfig(
            alpha=self.alpha,
            strategy=self.strategy,
            crystal_system=self.crystal_system if self.strategy == "fixed" else None,
            outer_optimizer="rs" if self.outer_optimizer == RS_RELAX else self.outer_optimizer,
            inner_optimizer=self.inner_optimizer,
            outer_steps=self.outer_steps,
            inner_steps=self.inner_steps,
            batch_size=self.batch_size,
            formula_units=(self.formula_units_min, self.formula_units_max),
            max_atoms=self.max_atoms,
            seed=self.seed,
            dhf_source=self.dhf_source,
            refine=self.refine,
            refine_top_n=self.refine_top_n,
            refine_fmax=self.refine_fmax,
            refine_steps=self.refine_steps,
            refine_potential=self.refine_potential,
            refine_device=self.refine_device,
            refine_ranking=self.refine_ranking,
        )
        return rs_relax_config(config) if self.outer_optimizer == RS_RELAX else config


class CampaignError(ValueError):
    """A campaign request that cannot run (bad composition, parameters or models); one-sentence message."""


@dataclass
class CampaignOutcome:
    campaign_id: str
    status: str
    top: list[dict[str, Any]] = field(default_factory=list)
    n_candidates: int = 0
    invalid_share: float = 0.0
    elapsed_s: float = 0.0
    reason: str | None = None
    excluded: dict[str, Any] = field(default_factory=dict)
    #: the pure-surrogate top k of the search (equal to ``top`` when refinement is off)
    top_search: list[dict[str, Any]] = field(default_factory=list)
    search_s: float = 0.0
    refine_s: float = 0.0


def new_campaign_id(composition: str) -> str:
    safe = "".join(ch for ch in composition if ch.isalnum())[:24] or "campaign"
    return f"{safe}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


def validate(params: dict[str, Any] | CampaignParameters) -> CampaignParameters:
    """Parameters and composition checked before anything runs; raises :class:`CampaignError`."""
    from csp.composition import CompositionError, parse_composition

    try:
        checked = params if isinstance(params, CampaignParameters) else CampaignParameters(**params)
        checked.search_config()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "parameters"
        raise CampaignError(f"Invalid {where}: {first['msg']}.") from exc
    try:
        parse_composition(checked.composition, max_atoms=checked.max_atoms)
    except CompositionError as exc:
        raise CampaignError(str(exc)) from exc
    return checked


def open_scorer(settings: Settings, dhf_source: str) -> Any:
    """Warm ONNX sessions of the configured models, checked against their sha256."""
    from csp.infer import Scorer
    from csp.scoring import ModelScorer

    folders = {
        "dft": settings.models_dir / settings.dft_model if dhf_source == "dft" else None,
        "exp": settings.models_dir / settings.exp_model if dhf_source == "exp" else None,
        "pu": settings.models_dir / settings.pu_model,
    }
    for kind, folder in folders.items():
        if folder is not None and not (folder / "model.json").is_file():
            raise CampaignError(f"The {kind} model folder {folder} has no model.json; set CSP_MODELS_DIR.")
    return ModelScorer(Scorer(**folders, threads=settings.threads), dhf_source=dhf_source)


def _model_ids(scorer: Any) -> list[str]:
    return [f"{m.name}:{m.meta['sha256'][:12]}" for m in scorer.scorer.models.values()]


def run_campaign(
    params: dict[str, Any] | CampaignParameters,
    *,
    campaign_id: str | None = None,
    settings: Settings | None = None,
    run_id: str | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    export_dir: Path | None = None,
) -> CampaignOutcome:
    """Run (or resume, when ``campaign_id`` exists) a campaign; every candidate lands in the lake.

    Raises :class:`CampaignError` for a request that cannot run; the lake then holds one ``failed``
    event with the reason and no candidate.
    """
    from csp.composition import parse_composition
    from csp.matching import write_cif
    from csp.search import run_search

    settings = settings or Settings()
    lake = Lake(settings.home).init()
    raw = params.model_dump() if isinstance(params, CampaignParameters) else dict(params)
    composition = str(raw.get("composition", ""))
    campaign_id = campaign_id or new_campaign_id(composition)
    run_id = run_id or f"campaign-{campaign_id}"
    try:
        checked = validate(raw)
        scorer = open_scorer(settings, checked.dhf_source)
        scorer.check_elements(parse_composition(checked.composition).numbers())
    except (CampaignError, ValueError) as exc:
        record_event(
            lake,
            campaign_id,
            composition=composition,
            status="failed",
            parameters=raw,
            run_id=run_id,
            reason=str(exc),
        )
        raise CampaignError(str(exc)) from exc
    model_ids = _model_ids(scorer)
    parameters = checked.model_dump()
    event = partial(
        record_event,
        lake,
        campaign_id,
        composition=checked.composition,
        parameters=parameters,
        run_id=run_id,
        model_ids=model_ids,
    )
    event(status="running")
    sink = LakeSink(lake, run_id=run_id, model_ids=model_ids)
    start = time.perf_counter()
    try:
        result = run_search(
            checked.composition,
            checked.search_config(),
            scorer,
            sink,
            campaign_id=campaign_id,
            progress=progress,
        )
    except KeyboardInterrupt:
        event(status="interrupted", reason="stopped by the user; resume with the same campaign id")
        raise
    except ValueError as exc:  # e.g. no space group of the chosen system can hold the composition
        event(status="failed", reason=str(exc))
        raise CampaignError(str(exc)) from exc
    except Exception as exc:
        event(status="failed", reason=f"{type(exc).__name__}: {exc}")
        raise
    search_s = time.perf_counter() - start
    config = checked.search_config()
    try:
        top_search, top, refined = finish_ranking(
            result.outer_rows, config, scorer, sink, campaign_id, checked.top_k
        )
    except KeyboardInterrupt:
        event(status="interrupted", reason="stopped by the user; resume with the same campaign id")
        raise
    except Exception as exc:
        event(status="failed", reason=f"refinement: {type(exc).__name__}: {exc}")
        raise
    elapsed = time.perf_counter() - start
    lake.compact("candidates", partition=campaign_id)
    if export_dir is not None:
        export_dir.mkdir(parents=True, exist_ok=True)
        for item in top:
            write_cif(item["structure"], export_dir / f"{campaign_id}-rank{item['rank']}.cif")
    counts = lake.query(
        "SELECT count(*) AS n, coalesce(avg(CASE WHEN valid THEN 0 ELSE 1 END), 0) AS invalid "
        "FROM candidates WHERE campaign_id = ? AND stage = 'inner'",
        [campaign_id],
    ).to_pylist()[0]
    summary = {
        "top": [public_row(t) for t in top],
        "top_search": [public_row(t) for t in top_search],
        "refined": refinement_summary(refined) if config.refine else None,
        "search_s": search_s,
        "refine_s": elapsed - search_s,
        "invalid_share": counts["invalid"],
        "reject_reasons": dict(result.reject_reasons),
        "excluded_by_atom_cap": result.excluded,
    }
    event(status="completed", n_candidates=int(counts["n"]), elapsed_s=elapsed, summary=summary)
    return CampaignOutcome(
        campaign_id=campaign_id,
        status="completed",
        top=top,
        n_candidates=int(counts["n"]),
        invalid_share=float(counts["invalid"]),
        elapsed_s=elapsed,
        excluded=result.excluded,
        top_search=top_search,
        search_s=search_s,
        refine_s=elapsed - search_s,
    )


def finish_ranking(
    rows: list[dict[str, Any]], config: Any, scorer: Any, sink: Any, campaign_id: str, k: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The search's own top k (with each entry's exploitation gap), the final top k, and the refined
    (or probe) rows: refinement on, the final top k is ranked on the refined structures; off, single
    points of the search's top 5 give the gap and the final top k is the search's."""
    from csp.matching import rank
    from csp.refine import attach_gaps, rank_refined, refine, settings_of

    top_search = rank(rows, k=k)
    settings = settings_of(config)
    if config.refine:
        refined = refine(rows, scorer, sink, campaign_id=campaign_id, alpha=config.alpha, settings=settings)
        top = rank_refined(refined, k=k, rule=settings.ranking) or top_search
    else:
        refined = refine(
            rows, scorer, sink, campaign_id=campaign_id, alpha=config.alpha, settings=settings, probe_only=5
        )
        top = top_search
    attach_gaps(top_search, refined)
    return top_search, top, refined


def refinement_summary(refined: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of the refined rows: relaxed, converged, rejected by reason, space groups that rose."""
    from collections import Counter

    reasons = Counter(r["reject_reason"].split(":")[0] for r in refined if r["reject_reason"])
    return {
        "relaxed": len(refined),
        "converged": sum(bool(r.get("converged")) for r in refined),
        "rejected": dict(reasons),
        "potential": refined[0]["potential"] if refined else None,
    }


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


def stored_parameters(lake: Lake, campaign_id: str) -> dict[str, Any]:
    """The parameters a campaign was started with (for resume)."""
    rows = lake.query(
        "SELECT parameters_json, status FROM campaigns WHERE campaign_id = ?", [campaign_id]
    ).to_pylist()
    if not rows:
        raise CampaignError(f"No campaign {campaign_id!r} in the lake; `csp campaign list` shows the ids.")
    return json.loads(rows[0]["parameters_json"])
