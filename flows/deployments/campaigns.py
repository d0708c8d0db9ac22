"""Prefect deployment ``campaigns``: several campaigns (one per composition) as tasks of a Dask cluster."""

from __future__ import annotations

import time
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows.campaigns import CampaignParameters, check
from flows.deployments._form import fields_of, with_defaults
from flows.deployments.artifacts import best_row
from flows.deployments.campaign import campaign_id_for_run, campaign_report, search

__all__ = ["campaigns"]


def _runner(task_runner: str, workers: int, address: str | None):
    from prefect.task_runners import ThreadPoolTaskRunner

    if task_runner == "thread":
        return ThreadPoolTaskRunner(max_workers=workers)
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    # processes, one thread each: every campaign task gets its own Python process (and GIL)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "processes": True,
            "threads_per_worker": 1,
            "dashboard_address": None,
        }
    )


@flow(name="campaign-batch-scoring")
def _score_all(jobs: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    futures = [search.submit(job["params"], job["campaign_id"], run_id) for job in jobs]
    return [f.result() for f in futures]


@flow(name="campaigns")
@fields_of(
    CampaignParameters,
    only=(
        "alpha",
        "strategy",
        "crystal_system",
        "outer_optimizer",
        "inner_optimizer",
        "outer_steps",
        "inner_steps",
        "batch_size",
        "formula_units_max",
        "seed",
        "dhf_source",
        "refine",
        "gap_probes",
    ),
    defaults={"outer_steps": 20, "inner_steps": 120},
    extra=[
        ("compositions", list[str] | None, None, "Formulas, one campaign each (default MgO, GaAs, BaZrO3)."),
        (
            "task_runner",
            Literal["dask", "thread"],
            "dask",
            "dask (a LocalCluster of `workers` processes, or `dask_address`) or thread.",
        ),
        ("workers", int, 2, "Dask worker processes (or threads) of the local cluster."),
        (
            "dask_address",
            str | None,
            None,
            "Scheduler address of an existing Dask cluster (e.g. tcp://host:8786); empty for local.",
        ),
    ],
)
def campaigns(**params: Any) -> list[dict[str, Any]]:
    """Several campaigns (one per composition) scored in parallel as tasks of a Dask cluster."""
    from prefect.runtime import flow_run

    base = with_defaults(campaigns, params)
    names = list(base.pop("compositions") or ["MgO", "GaAs", "BaZrO3"])
    task_runner, workers, address = base.pop("task_runner"), base.pop("workers"), base.pop("dask_address")
    # every request is checked before any campaign starts: one bad formula fails the run, writing nothing
    checked = [check({**base, "composition": name}).model_dump() for name in names]
    jobs = [{"params": p, "campaign_id": campaign_id_for_run(p, None)} for p in checked]
    run_id = f"flow-{flow_run.id}" if flow_run.id else "flow-local-campaigns"
    start = time.perf_counter()
    _score_all.with_options(task_runner=_runner(task_runner, workers, address))(jobs, run_id)
    seconds = time.perf_counter() - start
    rows = []
    for job in jobs:
        report = campaign_report(job["campaign_id"])
        best = best_row(report)
        rows.append(
            {
                "composition": report["composition"],
                "status": report["status"],
                "best_fitness": best["best_fitness"],
                "spacegroup": best["spacegroup"],
                "dhf_ev_per_atom": best["dhf_ev_per_atom"],
                "p_syn": best["p_syn"],
                "candidates": best["candidates"],
                "campaign_id": job["campaign_id"],
            }
        )
    create_table_artifact(
        table=rows,
        key="campaigns-batch",
        description=f"{len(rows)} campaigns via {task_runner} ({workers} workers) in {seconds:.1f} s",
    )
    get_run_logger().info("%d campaigns via %s in %.1f s", len(rows), task_runner, seconds)
    return rows
