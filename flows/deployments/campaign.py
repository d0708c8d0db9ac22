"""Prefect deployments ``campaign`` and ``nightly``: one campaign, its progress and its top-k artifacts.

The flow parameters are the fields of :class:`flows.campaigns.CampaignParameters` (flat and typed;
``Literal`` choices become drop-downs in the Prefect UI form). Work is coarse: one task runs one campaign
and reports every outer step to a progress artifact; candidates are never tasks.

The search task also logs a progress line a person reads (:class:`flows.campaign_progress.ProgressReporter`:
family i/N, best FV so far, structures scored, ETA, elapsed) every ten seconds and at the end, through the
run logger, so ``prefect deployment run ... --watch`` and the run's logs in the UI show the campaign moving.

Runs once per scheduled slot: for a run of a deployment the campaign id is derived from the deployment
name, the run's scheduled start time and a hash of the parameters. A second run of the same slot (a
retry, a re-run from the UI, a duplicate pickup) finds that id in the lake: a completed campaign is
reported from the lake without scoring anything; an unfinished one is resumed (the lake's resume replays
stored batches and scores only what is missing).
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from flows.campaigns import (
    CampaignError,
    CampaignParameters,
    check,
    derived_campaign_id,
    new_campaign_id,
    prepare,
    slug,
)
from flows.deployments._form import fields_of, with_defaults
from flows.deployments.artifacts import convergence_image, summary_markdown, top_table, xrd_section
from flows.settings import lake

__all__ = [
    "campaign",
    "campaign_id_for_run",
    "campaign_report",
    "check_parameters",
    "derived_campaign_id",
    "publish",
    "search",
]


def campaign_id_for_run(params: dict[str, Any], given: str | None) -> str:
    """The given id, else a deterministic one inside a deployment, else a fresh one (a local call)."""
    from prefect.runtime import deployment, flow_run

    if given:
        return given
    name = deployment.name
    if name:
        return derived_campaign_id(name, flow_run.scheduled_start_time, params)
    return new_campaign_id(str(params.get("composition", "")))


@task(name="check-parameters", cache_policy=NO_CACHE)
def check_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Fail fast, writing nothing, on a request that cannot run (its families listed with a progress line
    every few seconds, bounded by :data:`csp.search.budget.MAX_LISTING_S`)."""
    from flows.campaign_progress import listing_reporter

    report = listing_reporter(get_run_logger().info, f"campaign {params.get('composition')}")
    return check(params, report=report).model_dump()


def campaign_report(campaign_id: str) -> dict[str, Any]:
    """What the lake knows of a campaign (see :func:`storage.campaigns.campaign_report`)."""
    from storage.campaigns import campaign_report as report_of

    return report_of(lake(init=True), campaign_id)


@task(name="search", cache_policy=NO_CACHE)
def search(params: dict[str, Any], campaign_id: str, run_id: str) -> dict[str, Any]:
    """One campaign (or its resume): a progress artifact moves every outer step and a progress line is
    logged every few (see the module docstring). Not retried."""
    from flows.campaign_progress import ProgressReporter, listing_reporter
    from storage import campaign_state
    from storage.campaigns import campaign_status

    logger = get_run_logger()
    try:  # an id belongs to one set of parameters: a completed id with other ones is an error, not a skip
        campaign_state.check_campaign_id(campaign_id)
        campaign_state.check_same_parameters(
            lake(init=True), campaign_id, params, CampaignParameters.field_defaults()
        )
    except campaign_state.CampaignStateError as exc:
        raise CampaignError(str(exc)) from exc
    status = campaign_status(lake(init=True), campaign_id)
    if status == "completed":
        logger.info("campaign %s is already completed in the lake; nothing to score", campaign_id)
        return {"campaign_id": campaign_id, "resumed": False, "skipped": True}
    if status is not None:
        logger.info("campaign %s was %s; resuming it", campaign_id, status)
    total = int(params["outer_steps"])
    artifact_id = create_progress_artifact(
        progress=0.0,
        key=f"{slug(campaign_id, 50)}-progress",
        description=f"campaign {campaign_id}: outer steps done",
    )
    last = {"t": 0.0}
    reporter = ProgressReporter(None, f"campaign {campaign_id}", tty=False, log=logger.info)

    def progress(p: dict[str, Any]) -> None:
        reporter(p)  # the log line: every LOG_EVERY_S seconds and at the last family
        if "outer_step" not in p:  # refinement's progress (its own log lines), after the search's steps
            return
        done = p["outer_step"] + 1
        now = time.monotonic()
        # every outer step, but at most twice a second (a resume replays stored steps very fast)
        if done < total and now - last["t"] < 0.5:
            return
        last["t"] = now
        update_progress_artifact(
            artifact_id=artifact_id,
            progress=100.0 * done / total,
            description=(
                f"campaign {campaign_id}: step {done}/{total}, best FV {p['best_fitness']:.4f}, "
                f"{p.get('scored_now', p['inner_evaluations'])} structures scored"
                + (f" now, {p['replayed']} replayed" if p.get("replayed") else "")
            ),
        )

    listing = listing_reporter(logger.info, f"campaign {campaign_id}")  # the check task listed them already
    outcome = prepare(params, campaign_id=campaign_id, run_id=run_id, report=listing).run(progress)
    update_progress_artifact(artifact_id=artifact_id, progress=100.0)
    logger.info(
        "campaign %s: %d candidates (%d replayed from earlier runs), this run %.1f s",
        campaign_id, outcome.n_candidates, outcome.n_replayed, outcome.elapsed_s,
    )  # fmt: skip
    return {"campaign_id": campaign_id, "resumed": status is not None, "skipped": False}


@task(name="publish", cache_policy=NO_CACHE)
def publish(campaign_id: str, skipped: bool = False) -> dict[str, Any]:
    """Table artifact of the top k and a markdown summary with the convergence plot, each entry's cell and
    powder pattern, and the SQL."""
    from flows.results import result_of

    report = campaign_report(campaign_id)
    result = result_of(lake(init=True), campaign_id)  # the one answer, as `csp campaign show` shows it
    report.update(
        top=[e.public() for e in result.top],
        top_search=[e.public() for e in result.search_top],
        result=result.public(),
    )
    key = f"campaign-{slug(report['composition'], 30)}"
    create_table_artifact(
        table=top_table(report),
        key=f"{key}-top",
        description=f"Top {len(report['top'])} structures of campaign {campaign_id}, ranked by {result.rank_rule}",
    )
    create_markdown_artifact(
        markdown=summary_markdown(
            report,
            skipped=skipped,
            image=convergence_image(campaign_id),
            checks=xrd_section(result, campaign_id),
        ),
        key=f"{key}-summary",
        description=f"Summary of campaign {campaign_id}",
    )
    return report


@flow(name="campaign", log_prints=False, flow_run_name="{composition}-{outer_steps}x{inner_steps}-seed{seed}")
@fields_of(
    CampaignParameters,
    first=("composition",),  # required (no default) and drawn first in the form
    extra=[
        (
            "campaign_id",
            str | None,
            None,
            "Resume or name a campaign; empty derives one (deterministic per scheduled slot).",
        )
    ],
)
def campaign(**params: Any) -> dict[str, Any]:
    """Search crystal structures of one composition; every candidate lands in the lake."""
    from prefect.runtime import flow_run

    params = with_defaults(campaign, params)
    given = params.pop("campaign_id")
    checked = check_parameters(params)
    cid = campaign_id_for_run(checked, given)
    get_run_logger().info("campaign id %s", cid)
    run_id = f"flow-{flow_run.id}" if flow_run.id else f"flow-local-{cid}"
    done = search(checked, cid, run_id)
    report = publish(cid, skipped=done["skipped"])
    return {
        "campaign_id": cid,
        "status": report["status"],
        "skipped": done["skipped"],
        "resumed": done["resumed"],
        "n_candidates": report["n_candidates"],
        "best_fitness": report["best_curve"][-1] if report["best_curve"] else None,
        "top": report["top"],
        "excluded_by_atom_cap": report.get("excluded_by_atom_cap"),
    }
