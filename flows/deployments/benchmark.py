"""Prefect deployment ``benchmark``: a short campaign per outer optimizer on one composition, compared."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact

from csp.search.optimizers import OptimizerName
from flows.campaigns import CampaignParameters, slug
from flows.deployments._form import fields_of, with_defaults
from flows.deployments.artifacts import best_row, sparkline
from flows.deployments.campaign import campaign_report, check_parameters, search

__all__ = ["benchmark"]


@flow(name="benchmark")
@fields_of(
    CampaignParameters,
    only=(
        "composition",
        "inner_optimizer",
        "outer_steps",
        "inner_steps",
        "batch_size",
        "alpha",
        "strategy",
        "crystal_system",
        "seed",
    ),
    defaults={"composition": "MgO", "outer_steps": 10, "inner_steps": 60},
    extra=[
        (
            "optimizers",
            list[OptimizerName] | None,
            None,
            "Outer optimizers to compare (default rs, pso, ga, bo).",
        )
    ],
)
def benchmark(**params: Any) -> list[dict[str, Any]]:
    """A short campaign per outer optimizer on one composition and a comparison table artifact.

    The optimizers are compared on the search alone (best FV, the step that reached it): no campaign here
    refines or probes with the universal potential."""
    from prefect.runtime import flow_run

    base = with_defaults(benchmark, params)
    names = list(base.pop("optimizers") or ["rs", "pso", "ga", "bo"])
    composition = base["composition"]
    run_tag = str(flow_run.id)[:8] if flow_run.id else "local"
    stamp = time.strftime("%Y%m%dT%H%M%S")
    rows = []
    for name in names:
        checked = check_parameters({**base, "outer_optimizer": name, "refine": False, "gap_probes": 0})
        cid = f"bench-{slug(composition, 16)}-{name}-{stamp}-{run_tag}"
        start = time.perf_counter()
        search(checked, cid, f"benchmark-{run_tag}")
        seconds = time.perf_counter() - start
        report = campaign_report(cid)
        curve = report["best_curve"]
        # the first outer step whose best fitness is within 1e-6 of the final best
        reached = next((i + 1 for i, v in enumerate(curve) if curve and v <= curve[-1] + 1e-6), None)
        best = best_row(report)
        rows.append(
            {
                "optimizer": name,
                "best_fitness": best["best_fitness"],
                "best_at_step": reached,
                "spacegroup": best["spacegroup"],
                "dhf_ev_per_atom": best["dhf_ev_per_atom"],
                "p_syn": best["p_syn"],
                "candidates": best["candidates"],
                "seconds": round(seconds, 1),
                "convergence": sparkline(curve),
                "campaign_id": cid,
            }
        )
    create_table_artifact(
        table=rows,
        key=f"benchmark-{slug(composition, 30)}",
        description=(
            f"Outer optimizers on {composition}: {base['outer_steps']} x {base['inner_steps']} steps, "
            f"inner {base['inner_optimizer']}, seed {base['seed']} (lower fitness is better)"
        ),
    )
    return rows
