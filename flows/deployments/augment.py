"""Prefect deployment ``augment``: plan polymorphs -> label them with a universal potential -> the lake.

Resumable: the plan is deterministic (per-composition seeds), and labelling skips every plan row
whose label is already in the lake, so a killed run started again continues; a larger
``max_compositions`` extends an earlier run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run
from pydantic import BaseModel, Field

from flows.deployments._form import fields_of, with_defaults
from flows.settings import lake, settings


class AugmentParameters(BaseModel):
    """Flat, typed parameters (the Prefect UI draws them as a form)."""

    compositions: list[str] | None = Field(
        None,
        description="Formulas to augment (default: the experimental tables' and DFT sources' binaries/ternaries).",
    )
    max_compositions: int = Field(3000, ge=1, le=100_000)
    max_prototypes: int = Field(12, ge=0, le=200, description="Prototype decorations per composition.")
    random_structures: int = Field(
        8, ge=0, le=200, description="Symmetric random structures per composition."
    )
    reference_sample: int = Field(
        0, ge=0, le=10_000, description="Held-out DFT rows per source to evaluate on."
    )
    element_max_sites: int = Field(
        8, ge=1, le=64, description="Largest one-element prototype tried as a reference."
    )
    potential: Literal["chgnet", "sevennet"] = "chgnet"
    relax_steps: int = Field(40, ge=1, le=2000)
    distortions: int = Field(3, ge=0, le=50, description="Strained/perturbed copies per relaxed decoration.")
    workers: int = Field(1, ge=1, le=256)
    time_limit_s: float = Field(3600.0, gt=0)
    seed: int = 0


@task
def make_plan(params: AugmentParameters, work: str) -> dict:
    from flows.augmentation import plan_compositions

    summary = plan_compositions(
        lake(init=True),  # the flow writes its labels into this lake at the end
        Path(work) / "plan.npz",
        compositions=params.compositions,
        max_compositions=params.max_compositions,
        exclusions_file=settings().exclusions_file,
        seed=params.seed,
        max_prototypes=params.max_prototypes,
        random_structures=params.random_structures,
        reference_sample=params.reference_sample,
        element_max_sites=params.element_max_sites,
        workers=min(params.workers, 8),
    )
    return {"rows": summary.rows, "compositions": summary.compositions, "by_kind": summary.by_kind}


@task
def label(params: AugmentParameters, work: str) -> dict:
    from flows.augmentation import done_ids, label_plan, potential_source_name

    skip = done_ids(lake(missing_ok=True), potential_source_name(params.potential))
    return label_plan(
        Path(work) / "plan.npz",
        Path(work) / "labels",
        potential=params.potential,
        device=settings().device,
        workers=params.workers,
        relax_steps=params.relax_steps,
        distortions=params.distortions,
        time_limit_s=params.time_limit_s,
        skip_ids=skip,
        seed=params.seed,
    )


@task
def ingest(work: str, run_id: str) -> dict:
    from flows.augmentation import ingest_labels

    files = sorted((Path(work) / "labels").glob("labels-*.npz"))
    report = ingest_labels(lake(init=True), files, run_id=run_id)
    return {"written": report.written, "quarantined": report.quarantined, "sources": report.sources}


@flow(name="augment", validate_parameters=True)
@fields_of(AugmentParameters)
def augment(**values: Any) -> dict:
    """Plan, label and ingest polymorphs of the default (or given) compositions."""
    params = AugmentParameters(**with_defaults(augment, values))
    logger = get_run_logger()
    run_id = f"augment-{flow_run.id}" if flow_run.id else "augment-local"
    work = settings().home / "runs" / run_id
    work.mkdir(parents=True, exist_ok=True)
    plan = make_plan(params, str(work))
    logger.info("plan: %s", plan)
    labelled = label(params, str(work))
    logger.info("labelled: %s", labelled)
    result = ingest(str(work), run_id)
    logger.info("ingested: %s", result)
    return {"plan": plan, "labelled": labelled, "ingested": result}
