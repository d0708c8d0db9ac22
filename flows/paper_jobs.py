"""The paper report's work units, each in the process that runs it: one campaign run (or found finished in
the lake) and judged, and the Fig. 2 data.

:func:`run_job` is what a worker process of :func:`flows.paper.run_paper` calls: it runs the job's campaign
through the product's own path (:func:`flows.campaigns.run_campaign`, what ``csp campaign run`` does) into
the report's lake, unless the lake already holds it completed, then reads it back and hands the rows to
:mod:`csp.evaluation` (the success test, why a miss was missed, the Fig. 3 curve). :func:`fig2_data` ingests
the sources Fig. 2 needs when the lake lacks them and scores the test splits.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from flows.settings import Settings

__all__ = ["fig2_data", "one_thread", "run_job"]

#: inner rows of the reference's space group looked at for "an inner structure matched" / the first hit
INNER_LOOK = 500


def one_thread(server: Any = None) -> None:
    """One thread per worker process (numpy, onnxruntime's OpenMP, torch): the pool is the parallelism; with
    ``server`` (a :class:`csp.potentials.relax_server.ServerAddress`) the worker's relaxations go there."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    import torch

    from csp.potentials.relax_server import connect

    torch.set_num_threads(1)
    connect(server)


def run_job(job: dict[str, Any], home: str, threads: int = 1) -> dict[str, Any]:
    """Run (or find finished) the job's campaign in the lake at ``home`` and judge it.

    Returns:
        ``campaign`` (id, status, elapsed_s, search_s, refine_s, relaxed, candidates, model_ids,
        potential) and ``modes`` (Table 1, Fig. 4, baseline jobs) or ``fig3`` (Fig. 3 jobs).
    """
    from csp.evaluation.table1 import Reference, load_entries
    from flows.campaigns import run_campaign
    from storage.campaigns import campaign_row, campaign_status
    from storage.lake import Lake

    settings = Settings(home=Path(home), threads=threads)
    lake = Lake(settings.home).init()
    cid = job["campaign_id"]
    if campaign_status(lake, cid) != "completed":
        run_campaign(job["params"], campaign_id=cid, settings=settings, run_id=f"paper-{cid}")
    row = campaign_row(lake, cid)
    summary = json.loads(row["summary_json"]) if row and row["summary_json"] else {}
    entries = {e["formula"]: e for e in load_entries(settings.require_mirror())}
    entry = entries.get(job["formula"])
    reference = Reference.of(entry, settings.require_mirror()) if entry else None
    campaign = {
        "campaign_id": cid,
        "status": row["status"],
        "elapsed_s": row["elapsed_s"],
        "search_s": summary.get("search_s"),
        "refine_s": summary.get("refine_s"),
        "relaxed": (summary.get("refined") or {}).get("relaxed", 0),
        "potential": (summary.get("refined") or {}).get("potential"),
        "candidates": row["n_candidates"],
        "model_ids": list(row["model_ids"] or []),
    }
    if job["part"] == "fig3":
        return {"campaign": campaign, "fig3": _fig3(lake, cid, reference, row)}
    return {"campaign": campaign, "modes": _judged(lake, job, reference)}


def _judged(lake: Any, job: dict[str, Any], reference: Any) -> dict[str, Any]:
    """The refined and the search's top 5 judged; each miss explained."""
    from csp.evaluation.table1 import explain_miss, judge_result
    from csp.potentials.result import campaign_result
    from flows.results import result_of
    from storage.campaigns import result_rows
    from storage.candidates import search_rows

    cid = job["campaign_id"]
    result = result_of(lake, cid)
    modes = {"refined": True} if job["part"] == "baseline" else {"refined": True, "search": False}
    out: dict[str, Any] = {}
    full = None
    for mode, refined in modes.items():
        judged = judge_result(reference, result.top if refined else result.search_top)
        judged["failure"] = None
        if not judged["found"]:
            rows = result_rows(lake, cid)
            outer = [r for r in rows if r["stage"] == "outer"]
            if full is None:  # every distinct structure ranked, refined and the search's own
                full = campaign_result(
                    rows, k=max(5, len(rows)), rule=job["params"].get("refine_ranking", "energy")
                )
            inner_hit = None
            if reference.spacegroup is not None:
                inner = search_rows(lake, cid, ("inner",), spacegroup=reference.spacegroup,
                                    lowest_energy_first=True, limit=INNER_LOOK)  # fmt: skip
                inner_hit = any(reference.matches_row(r) for r in inner)
            judged["failure"] = explain_miss(
                reference,
                full,
                refined=refined,
                outer_rows=outer,
                refined_rows=[r for r in rows if r["stage"] == "refined"],
                refine_top_n=job["params"].get("refine_top_n"),
                inner_hit=inner_hit,
            )
        out[mode] = judged
    return out


def _fig3(lake: Any, cid: str, reference: Any, row: dict[str, Any]) -> dict[str, Any]:
    """The campaign's best-fitness curve, everything it tried, and when it first scored the reference."""
    from csp.evaluation.figures import first_hit, search_curve, tried_energies
    from storage.candidates import search_rows, search_trace

    trace = search_trace(lake, cid).to_pandas()
    hit = None
    if reference is not None and reference.spacegroup is not None:
        rows = search_rows(lake, cid, ("inner",), spacegroup=reference.spacegroup, limit=INNER_LOOK)
        hit = first_hit(trace, rows, reference.matches_row)
    curve = search_curve(trace)
    return {
        "curve": curve,
        "first_hit": hit,
        "energies": tried_energies(trace),
        "wall_s": row["elapsed_s"],
        "evaluations": curve["evaluations"][-1] if curve["evaluations"] else 0,
    }


def fig2_data(
    settings: Settings, sources: list[str], max_per_source: int | None, link_sources: list[str] | None = None
) -> dict[str, Any]:
    """Fig. 2 on the lake of ``settings``: the sources it needs ingested first when the lake has no row of
    them (a source with rows is taken as ingested), then the test splits scored by both enthalpy models.

    Args:
        sources: the DFT sources of the DFT test split.
        max_per_source: test rows scored per source (None: all).
        link_sources: further sources an experimental row may be linked to a structure of (None: every
            registered source, as the lake the shipped models were trained from holds them).
    """
    import numpy as np

    from csp.evaluation.figures import fig2_panels
    from csp.evaluation.plan import EXPERIMENT_SOURCE
    from csp.models.dataset import CrystalArrays
    from csp.models.infer import Scorer
    from storage.ingest import ingest_source, ingested_sources, new_run_id, ordered_sources
    from storage.lake import Lake
    from storage.splits import load_exclusions
    from storage.training_sets import linked_dft_enthalpies, training_arrays

    lake = Lake(settings.home).init()
    started = time.perf_counter()
    present = ingested_sources(lake)
    ingested = []
    needed = (
        None if link_sources is None else list(dict.fromkeys([*sources, EXPERIMENT_SOURCE, *link_sources]))
    )
    for name in ordered_sources(needed):
        if not present.get(name):
            ingest_source(lake, name, settings.require_mirror(), run_id=new_run_id())
            ingested.append(name)
    ingest_s = time.perf_counter() - started
    exclude = load_exclusions(settings.exclusions_file)
    dft = CrystalArrays(**training_arrays(lake, kind="dft", exclude=exclude, sources=sources).arrays)
    exp = CrystalArrays(**training_arrays(lake, kind="exp", exclude=exclude).arrays)
    scorer = Scorer(dft=settings.model_dir("dft"), exp=settings.model_dir("exp"), threads=settings.threads)

    def score(crystals: list[Any], model: str) -> Any:
        if not crystals:
            return np.zeros(0)
        scores = scorer.score(crystals, include=[model])
        return np.asarray(scores.dhf_dft if model == "dft" else scores.dhf_exp, dtype=float)

    panels = fig2_panels(dft, exp, linked_dft_enthalpies(lake), score, max_per_source=max_per_source)
    return {
        **panels,
        "sources": list(sources),
        "link_sources": ordered_sources(needed),
        "experimental_source": EXPERIMENT_SOURCE,
        "ingested_now": ingested,
        "ingest_s": ingest_s,
        "seconds": time.perf_counter() - started,
    }
