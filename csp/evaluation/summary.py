"""The report's JSON, assembled from what its campaigns returned: every number the report shows is here.

:func:`assemble` takes the plan, the Table 1 references, the jobs of the plan (:mod:`csp.evaluation.plan`)
with what each campaign returned (by campaign id: several jobs may share one campaign) and the Fig. 2
panels, and returns one JSON-ready dict (:data:`SCHEMA`): Table 1 records and accuracy per column with the
paper's beside them, the rs-relax baseline, the misses explained, Fig. 3 curves, bands, first hits and
energy distributions, Fig. 4 errors, and the paper's own numbers. :mod:`csp.evaluation.report` renders it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from csp.evaluation.figures import band, fig4_summary, histograms
from csp.evaluation.plan import PAPER, PaperPlan
from csp.evaluation.table1 import Reference, accuracy, column_key

__all__ = ["SCHEMA", "assemble"]

#: the version of the report's JSON layout
SCHEMA = "csp-paper-report/1"
#: the answers of one Table 1 campaign: the refined top 5 and the search's own (pure-surrogate) top 5
MODES = {"refined": True, "search": False}


def _table1_records(
    jobs: Sequence[dict[str, Any]], outputs: Mapping[str, Any], refs: Mapping[str, Reference], model: str
) -> list[dict[str, Any]]:
    seen, records = set(), []
    for job in jobs:
        out = outputs.get(job["campaign_id"])
        if job.get("model") != model or out is None or "modes" not in out:
            continue
        if (job["campaign_id"], model) in seen:
            continue
        seen.add((job["campaign_id"], model))
        ref = refs[job["formula"]]
        for mode, refine in MODES.items():
            result = out["modes"].get(mode)
            if result is None:
                continue
            records.append(
                {
                    "formula": job["formula"],
                    "strategy": job["strategy"],
                    "alpha": job["alpha"],
                    "seed": job["seed"],
                    "refine": refine,
                    "model": model,
                    **result,
                    "paper": ref.paper.get(column_key(job["strategy"], job["alpha"])),
                    "seconds": out["campaign"]["elapsed_s"],
                    "campaign_id": job["campaign_id"],
                }
            )
    return sorted(
        records, key=lambda r: (r["strategy"], r["alpha"], not r["refine"], r["formula"], r["seed"])
    )


def _baseline(
    plan: PaperPlan, jobs: Sequence[dict[str, Any]], outputs: Mapping[str, Any], refs: Mapping[str, Reference]
) -> dict[str, Any]:
    records = []
    for job in jobs:
        out = outputs.get(job["campaign_id"])
        if job["part"] != "baseline" or out is None or "modes" not in out:
            continue
        records.append(
            {
                "formula": job["formula"],
                "strategy": job["strategy"],
                "alpha": None,
                "seed": job["seed"],
                "refine": True,
                **out["modes"]["refined"],
                "structures": job["structures"],
                "target_seconds": job.get("target_seconds"),
                "seconds": out["campaign"]["elapsed_s"],
                "campaign_id": job["campaign_id"],
            }
        )
    records.sort(key=lambda r: (r["strategy"], r["formula"], r["seed"]))
    wall_time = []
    for strategy in sorted({r["strategy"] for r in records}):
        mine = [r for r in records if r["strategy"] == strategy]
        within = [
            r
            for r in mine
            if r["target_seconds"]
            and abs((r["seconds"] or 0.0) - r["target_seconds"])
            <= plan.baseline_time_tolerance * r["target_seconds"]
        ]
        wall_time.append(
            {
                "strategy": strategy,
                "baselines": len(mine),
                "within_tolerance": len(within),
                "seconds": float(sum(r["seconds"] or 0.0 for r in mine)),
                "target_seconds": float(sum(r["target_seconds"] or 0.0 for r in mine)),
            }
        )
    return {
        "records": records,
        "accuracy": accuracy(records, refs) if records else [],
        "wall_time": wall_time,
    }


def _fig3(
    plan: PaperPlan, jobs: Sequence[dict[str, Any]], outputs: Mapping[str, Any]
) -> dict[str, Any] | None:
    runs = []
    for job in jobs:
        out = outputs.get(job["campaign_id"])
        if job["part"] != "fig3" or out is None or "fig3" not in out:
            continue
        runs.append(
            {k: job[k] for k in ("compared", "optimizer", "outer", "inner", "seed", "campaign_id")}
            | out["fig3"]
        )
    if not runs:
        return None
    bands: dict[str, dict[str, Any]] = {}
    energies: dict[str, dict[str, list[float]]] = {}
    first_hit: dict[str, dict[str, Any]] = {}
    final: dict[str, dict[str, Any]] = {}
    for compared in ("outer", "inner"):
        mine = [r for r in runs if r["compared"] == compared]
        for name in dict.fromkeys(r["optimizer"] for r in mine):
            group = [r for r in mine if r["optimizer"] == name]
            curves = [r["curve"] for r in group]
            bands.setdefault(compared, {})[name] = {
                "evaluations": band(curves, "evaluations"),
                "seconds": band(curves, "seconds"),
            }
            energies.setdefault(compared, {})[name] = [e for r in group for e in r.pop("energies", [])]
            hits = [r["first_hit"] for r in group if r["first_hit"] is not None]
            first_hit.setdefault(compared, {})[name] = {
                "runs": len(group),
                "hits": len(hits),
                **_mean_std("evaluations", [h["evaluations"] for h in hits]),
                **_mean_std("seconds", [h["seconds"] for h in hits]),
            }
            bests = [
                min((v for v in r["curve"]["best_fitness"] if v is not None), default=None) for r in group
            ]
            final.setdefault(compared, {})[name] = {
                **_mean_std("best_fitness", [b for b in bests if b is not None]),
                **_mean_std("wall_s", [r["wall_s"] for r in group]),
                **_mean_std("evaluations", [r["evaluations"] for r in group]),
            }
    for r in runs:
        r.pop("energies", None)
    return {
        "composition": plan.fig3_composition,
        "model": "dft",
        "budget": f"{plan.fig3_outer_steps} x {plan.fig3_inner_steps}",
        "seeds": list(plan.fig3_seeds),
        "runs": runs,
        "bands": bands,
        "energies": {k: histograms(v) for k, v in energies.items()},
        "first_hit": first_hit,
        "final": final,
    }


def _mean_std(name: str, values: Sequence[float]) -> dict[str, float | None]:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    return {
        f"{name}_mean": float(v.mean()) if len(v) else None,
        f"{name}_std": float(v.std(ddof=1)) if len(v) > 1 else (0.0 if len(v) else None),
    }


def _fig4(plan: PaperPlan, records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    column = [
        r
        for r in records
        if r["strategy"] == plan.fig4_strategy and float(r["alpha"]) == float(plan.fig4_alpha) and r["found"]
    ]
    if not {r["model"] for r in records} >= {"dft", "exp"}:
        return None
    rows = [
        {
            "formula": r["formula"],
            "seed": r["seed"],
            "model": r["model"],
            "stage": "refined" if r["refine"] else "search",
            "lattice_error_pct": r["lattice_error_pct"],
            "dhf_error_pct": r["dhf_error_pct"],
            "dhf_pred_ev_per_atom": r["dhf_pred_ev_per_atom"],
        }
        for r in column
    ]
    return {
        "strategy": plan.fig4_strategy,
        "alpha": plan.fig4_alpha,
        "rows": rows,
        **fig4_summary(rows, left_out=PAPER["fig4_left_out"]),
    }


def assemble(
    plan: PaperPlan,
    refs: Mapping[str, Reference],
    jobs: Sequence[dict[str, Any]],
    outputs: Mapping[str, Any],
    *,
    fig2: dict[str, Any] | None,
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """The report's JSON (see the module docstring).

    Args:
        plan: the report's plan.
        refs: the Table 1 references by formula.
        jobs: every job of the run (:mod:`csp.evaluation.plan`), duplicates by campaign id allowed.
        outputs: what each campaign returned, by campaign id: ``campaign`` (id, elapsed_s, ...) and either
            ``modes`` (``refined`` / ``search``: :func:`csp.evaluation.table1.judge_result` plus ``failure``)
            or ``fig3`` (``curve``, ``first_hit``, ``energies``, ``wall_s``, ``evaluations``).
        fig2: :func:`csp.evaluation.figures.fig2_panels` (None: not run).
        meta: command, preset, parts, machine, models, times, failures: copied as they are.
    """
    records = _table1_records(jobs, outputs, refs, "exp")
    dft_records = _table1_records(jobs, outputs, refs, "dft")
    campaigns = sorted({j["campaign_id"] for j in jobs if j["campaign_id"] in outputs})
    table1 = None
    if records:
        table1 = {
            "budget": plan.budget(),
            "compounds": sorted({r["formula"] for r in records}),
            "judged_by": {f: refs[f].judged_by for f in sorted({r["formula"] for r in records})},
            "accuracy": accuracy(records, refs),
            "records": records,
            "baseline": _baseline(plan, jobs, outputs, refs),
            "misses": [
                {
                    k: r[k]
                    for k in ("formula", "strategy", "alpha", "seed", "refine", "campaign_id", "failure")
                }
                for r in records
                if not r["found"] and r.get("failure")
            ],
        }
    return {
        "schema": SCHEMA,
        **dict(meta),
        "plan": plan.model_dump(),
        "paper": {
            **PAPER,
            "table1_flags": {f: dict(ref.paper) for f, ref in refs.items()},
        },
        "table1": table1,
        "fig2": fig2,
        "fig3": _fig3(plan, jobs, outputs),
        "fig4": _fig4(plan, records + dft_records),
        "campaigns": campaigns,
        "campaign_seconds": float(sum(o["campaign"]["elapsed_s"] or 0.0 for o in outputs.values())),
    }
