"""Prefect flows ``campaign`` and ``benchmark``: thin wrappers over :func:`flows.campaigns.run_campaign`.

The flow parameters are the fields of :class:`flows.campaigns.CampaignParameters`, flat and typed (``Literal``
choices become drop-downs in the Prefect UI form). Work is coarse: one task runs one campaign and reports
every outer step to a progress artifact; candidates are never tasks.

Runs once per scheduled slot: for a run of a deployment the campaign id is derived from the deployment
name, the run's scheduled start time and a hash of the parameters. A second run of the same slot (a
retry, a re-run from the UI, a duplicate pickup) finds that id in the lake: a completed campaign is
reported from the lake without scoring anything; an unfinished one is resumed (the lake's resume replays
stored batches and scores only what is missing).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import datetime
from typing import Any, Literal

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
    CrystalSystem,
    OptimizerChoice,
    OuterChoice,
    validate,
)
from flows.settings import Settings

Optimizer = Literal["rs", "pso", "ga", "bo"]
SPARK = "▁▂▃▄▅▆▇█"


# ---------------------------------------------------------------------------------------------- ids


def slug(text: str, limit: int = 40) -> str:
    """Lowercase letters, digits and dashes (valid as an artifact key and a lake partition)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-") or "x"


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]


def derived_campaign_id(deployment: str, scheduled: datetime, params: dict[str, Any]) -> str:
    """Deterministic id of a deployment's run in one scheduled slot (UTC minute) with these parameters."""
    stamp = scheduled.astimezone(_utc()).strftime("%Y%m%dT%H%MZ")
    composition = "".join(ch for ch in str(params.get("composition", "")) if ch.isalnum())[:24]
    return f"{slug(deployment, 24)}-{composition}-{stamp}-{params_hash(params)}"


def _utc():
    from datetime import UTC

    return UTC


def campaign_id_for_run(params: dict[str, Any], given: str | None) -> str:
    """The given id, else a deterministic one inside a deployment, else a fresh one (a local call)."""
    from prefect.runtime import deployment, flow_run

    from flows.campaigns import new_campaign_id

    if given:
        return given
    name = deployment.name
    if name:
        return derived_campaign_id(name, flow_run.scheduled_start_time, params)
    return new_campaign_id(str(params.get("composition", "")))


# ----------------------------------------------------------------------------------------- checks


def preflight(params: dict[str, Any], settings: Settings) -> CampaignParameters:
    """Everything that can be checked before the lake is touched; raises :class:`CampaignError`.

    Parameters and composition through :func:`flows.campaigns.validate`, then the model folders and the
    elements each model was trained on (read from ``model.json``, no ONNX session is opened).
    """
    from csp.composition import parse_composition

    checked = validate(params)
    numbers = sorted(
        set(int(z) for z in parse_composition(checked.composition, max_atoms=checked.max_atoms).numbers())
    )
    model = settings.exp_model if checked.dhf_source == "exp" else settings.dft_model
    for name in (model, settings.pu_model):
        meta_path = settings.models_dir / name / "model.json"
        if not meta_path.is_file():
            raise CampaignError(f"The model folder {meta_path.parent} has no model.json; set CSP_MODELS_DIR.")
        allowed = set(json.loads(meta_path.read_text())["elements"])
        missing = [z for z in numbers if z not in allowed]
        if missing:
            raise CampaignError(
                f"Model '{name}' was not trained on atomic number(s) {missing} of {checked.composition}."
            )
    return checked


@task(name="check-parameters", cache_policy=NO_CACHE)
def check_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Fail fast, writing nothing, on a request that cannot run."""
    return preflight(params, Settings()).model_dump()


# --------------------------------------------------------------------------------------- the work


def _lake():
    from storage.lake import Lake

    return Lake(Settings().home).init()


def stored_status(campaign_id: str) -> str | None:
    rows = _lake().query("SELECT status FROM campaigns WHERE campaign_id = ?", [campaign_id]).to_pylist()
    return rows[0]["status"] if rows else None


@task(name="search", cache_policy=NO_CACHE)
def search(params: dict[str, Any], campaign_id: str, run_id: str) -> dict[str, Any]:
    """One campaign (or its resume): a progress artifact moves every outer step. Not retried."""
    from flows.campaigns import run_campaign

    logger = get_run_logger()
    status = stored_status(campaign_id)
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

    def progress(p: dict[str, Any]) -> None:
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
                f"{p['inner_evaluations']} structures scored"
            ),
        )

    outcome = run_campaign(params, campaign_id=campaign_id, run_id=run_id, progress=progress)
    update_progress_artifact(artifact_id=artifact_id, progress=100.0)
    logger.info("campaign %s: %d candidates in %.1f s", campaign_id, outcome.n_candidates, outcome.elapsed_s)
    return {"campaign_id": campaign_id, "resumed": status is not None, "skipped": False}


def campaign_report(campaign_id: str) -> dict[str, Any]:
    """What the lake knows of a campaign: status, counts, top k, best fitness per outer step."""
    lake = _lake()
    row = lake.query("SELECT * FROM campaigns WHERE campaign_id = ?", [campaign_id]).to_pylist()[0]
    summary = json.loads(row["summary_json"]) if row["summary_json"] else {}
    steps = lake.query(
        "SELECT outer_step, fitness, spacegroup, wyckoff FROM candidates "
        "WHERE campaign_id = ? AND stage = 'outer' ORDER BY outer_step",
        [campaign_id],
    ).to_pylist()
    best, curve = float("inf"), []
    for s in steps:
        if s["fitness"] is not None:
            best = min(best, float(s["fitness"]))
        curve.append(best)
    return {
        "campaign_id": campaign_id,
        "composition": row["composition"],
        "status": row["status"],
        "n_candidates": row["n_candidates"],
        "elapsed_s": row["elapsed_s"],
        "invalid_share": summary.get("invalid_share"),
        "top": summary.get("top", []),
        "excluded_by_atom_cap": summary.get("excluded_by_atom_cap"),
        "top_search": summary.get("top_search", []),
        "best_curve": curve,
        "parameters": json.loads(row["parameters_json"]),
    }


# -------------------------------------------------------------------------------------- artifacts


def sparkline(values: list[float]) -> str:
    """One character per value; the lowest value gets the lowest bar (fitness: lower is better)."""
    finite = [v for v in values if v != float("inf")]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    return "".join(
        " " if v == float("inf") else SPARK[round((v - lo) / span * (len(SPARK) - 1))] for v in values
    )


def ascii_plot(values: list[float], height: int = 8, width: int = 60) -> str:
    """A small text chart of best fitness vs outer step (renders in any markdown viewer, offline)."""
    pts = [(i, v) for i, v in enumerate(values) if v != float("inf")]
    if not pts:
        return "(no scored step)"
    n = len(values)
    cols = min(width, n)
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    span = (hi - lo) or 1.0
    grid = [[" "] * cols for _ in range(height)]
    for i, v in pts:
        c = min(cols - 1, i * cols // n)
        r = round((v - lo) / span * (height - 1))
        grid[height - 1 - r][c] = "*"
    lines = []
    for r, cells in enumerate(grid):
        label = hi - span * r / (height - 1) if height > 1 else hi
        lines.append(f"{label:8.4f} |{''.join(cells)}")
    lines.append(" " * 9 + "+" + "-" * cols)
    lines.append(" " * 10 + f"outer step 1..{n}")
    return "\n".join(lines)


TOP_COLUMNS = (
    "rank",
    "spacegroup_symbol",
    "spacegroup",
    "a",
    "b",
    "c",
    "dhf_pred_ev_per_atom",
    "p_syn",
    "fitness",
    "wyckoff",
    "outer_step",
    "energy_potential_ev_per_atom",
    "exploitation_gap_ev_per_atom",
)


def _round(v: Any) -> Any:
    return round(v, 4) if isinstance(v, float) else v


def summary_top_search(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The search's own top 5 (before refinement) of a campaign report."""
    return list(report.get("top_search") or [])[:5]


def summary_markdown(report: dict[str, Any], *, skipped: bool = False) -> str:
    cid = report["campaign_id"]
    curve = report["best_curve"]
    top = report["top"]
    p = report["parameters"]
    lines = [
        f"# Campaign {cid}",
        "",
        f"**{report['composition']}**: status **{report['status']}**"
        + (" (already completed in the lake; nothing was scored this run)" if skipped else ""),
        "",
        f"- {report['n_candidates']} candidates scored in {report['elapsed_s'] or 0:.1f} s"
        + (f", {report['invalid_share']:.1%} invalid" if report["invalid_share"] is not None else ""),
        f"- alpha {p['alpha']}, strategy {p['strategy']} ({p.get('crystal_system')}), optimizers "
        f"{p['outer_optimizer']}/{p['inner_optimizer']}, {p['outer_steps']} x {p['inner_steps']} steps, "
        f"seed {p['seed']}, enthalpy model {p['dhf_source']}",
    ]
    gaps = [t.get("exploitation_gap_ev_per_atom") for t in summary_top_search(report)]
    if any(g is not None for g in gaps):
        lines.append(
            "- exploitation gap of the search's top 5 (potential dHf at the found geometry minus the "
            "model's, eV/atom): " + ", ".join("n/a" if g is None else f"{g:+.3f}" for g in gaps)
        )
    if top:
        t = top[0]
        lines.append(
            f"- best: {t['spacegroup_symbol']} ({t['spacegroup']}), a={t['a']:.3f} Å, "
            f"dHf={t['dhf_pred_ev_per_atom']:.3f} eV/atom, P_syn={t['p_syn']:.2f}, FV={t['fitness']:.4f}"
        )
    lines += [
        "",
        "## Convergence (best fitness vs outer step, lower is better)",
        "",
        f"`{sparkline(curve)}`",
        "",
        "```text",
        ascii_plot(curve),
        "```",
        "",
    ]
    if curve:
        marks = sorted({0, *range(0, len(curve), max(1, len(curve) // 10)), len(curve) - 1})
        lines += ["| outer step | best FV |", "| ---: | ---: |"]
        lines += [f"| {i + 1} | {curve[i]:.4f} |" for i in marks]
        lines.append("")
    lines += [
        "## Query the candidates",
        "",
        "```bash",
        f'csp sql "SELECT outer_step, inner_step, spacegroup, dhf_pred_ev_per_atom, fitness, valid FROM candidates '
        f"WHERE campaign_id = '{cid}' ORDER BY fitness NULLS LAST LIMIT 20\"",
        f"csp campaign show {cid}",
        "```",
    ]
    return "\n".join(lines) + "\n"


@task(name="publish", cache_policy=NO_CACHE)
def publish(campaign_id: str, skipped: bool = False) -> dict[str, Any]:
    """Table artifact of the top k and a markdown summary with the convergence plot and the SQL."""
    report = campaign_report(campaign_id)
    key = f"campaign-{slug(report['composition'], 30)}"
    create_table_artifact(
        table=[{k: _round(t.get(k)) for k in TOP_COLUMNS} for t in report["top"]],
        key=f"{key}-top",
        description=f"Top {len(report['top'])} structures of campaign {campaign_id}",
    )
    create_markdown_artifact(
        markdown=summary_markdown(report, skipped=skipped),
        key=f"{key}-summary",
        description=f"Summary of campaign {campaign_id}",
    )
    return report


# ------------------------------------------------------------------------------------------ flows


@flow(name="campaign", log_prints=False)
def campaign(
    composition: str = "MgO",
    alpha: float = 0.5,
    strategy: Literal["all", "fixed"] = "fixed",
    crystal_system: CrystalSystem | None = "cubic",
    outer_optimizer: OuterChoice = "bo",
    inner_optimizer: OptimizerChoice = "pso",
    outer_steps: int = 200,
    inner_steps: int = 300,
    batch_size: int = 30,
    formula_units_min: int = 1,
    formula_units_max: int = 4,
    max_atoms: int = 40,
    seed: int = 0,
    dhf_source: Literal["dft", "exp"] = "exp",
    top_k: int = 5,
    refine: bool = True,
    refine_top_n: int = 32,
    refine_device: str = "cpu",
    campaign_id: str | None = None,
) -> dict[str, Any]:
    """Search crystal structures of one composition; every candidate lands in the lake.

    Args:
        composition: Formula to search, e.g. MgO, GaAs, BaZrO3.
        alpha: Weight of (1 - P_syn) in the fitness, 0..1.
        strategy: All crystal systems or one fixed system.
        crystal_system: Crystal system for the fixed strategy.
        outer_optimizer: Optimizer over space group + Wyckoff families; rs-relax: random symmetric
            structures relaxed with the potential and ranked by its energy (the baseline).
        inner_optimizer: Optimizer over lattice and coordinates.
        outer_steps: Families tried.
        inner_steps: Structures scored per family.
        batch_size: Structures scored per inner batch.
        formula_units_min: Smallest number of formula units per cell.
        formula_units_max: Largest number of formula units per cell.
        max_atoms: Most atoms per cell; the families it leaves out are counted in the report.
        seed: Random seed of the campaign.
        dhf_source: Enthalpy model, DFT-trained or fine-tuned on experiment.
        top_k: Structures in the top-k table.
        refine: Relax the best distinct structures with CHGNet keeping their symmetry, rank on them.
        refine_top_n: Distinct structures refined.
        refine_device: Torch device of the potential (cpu or cuda).
        campaign_id: Resume or name a campaign; empty derives one (deterministic per scheduled slot).
    """
    from prefect.runtime import flow_run

    params = {
        "composition": composition,
        "alpha": alpha,
        "strategy": strategy,
        "crystal_system": crystal_system,
        "outer_optimizer": outer_optimizer,
        "inner_optimizer": inner_optimizer,
        "outer_steps": outer_steps,
        "inner_steps": inner_steps,
        "batch_size": batch_size,
        "formula_units_min": formula_units_min,
        "formula_units_max": formula_units_max,
        "max_atoms": max_atoms,
        "seed": seed,
        "dhf_source": dhf_source,
        "top_k": top_k,
        "refine": refine,
        "refine_top_n": refine_top_n,
        "refine_device": refine_device,
    }
    checked = check_parameters(params)
    cid = campaign_id_for_run(checked, campaign_id)
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
        "excluded_by_atom_cap": report["excluded_by_atom_cap"],
    }


@flow(name="benchmark")
def benchmark(
    composition: str = "MgO",
    optimizers: list[Optimizer] | None = None,
    inner_optimizer: OptimizerChoice = "pso",
    outer_steps: int = 10,
    inner_steps: int = 60,
    batch_size: int = 30,
    alpha: float = 0.5,
    strategy: Literal["all", "fixed"] = "fixed",
    crystal_system: CrystalSystem | None = "cubic",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """A short campaign per outer optimizer on one composition and a comparison table artifact.

    Args:
        composition: Formula to search.
        optimizers: Outer optimizers to compare (default rs, pso, ga, bo).
        inner_optimizer: Inner optimizer shared by every run.
        outer_steps: Families tried per run.
        inner_steps: Structures per family.
        batch_size: Structures per scored batch.
        alpha: Weight of (1 - P_syn) in the fitness.
        strategy: All crystal systems or one fixed system.
        crystal_system: Crystal system for the fixed strategy.
        seed: Seed shared by every run.
    """
    from prefect.runtime import flow_run

    names = list(optimizers or ["rs", "pso", "ga", "bo"])
    base = {
        "composition": composition,
        "alpha": alpha,
        "strategy": strategy,
        "crystal_system": crystal_system,
        "inner_optimizer": inner_optimizer,
        "outer_steps": outer_steps,
        "inner_steps": inner_steps,
        "batch_size": batch_size,
        "seed": seed,
    }
    run_tag = str(flow_run.id)[:8] if flow_run.id else "local"
    stamp = time.strftime("%Y%m%dT%H%M%S")
    rows = []
    for name in names:
        params = check_parameters({**base, "outer_optimizer": name})
        cid = f"bench-{slug(composition, 16)}-{name}-{stamp}-{run_tag}"
        start = time.perf_counter()
        search(params, cid, f"benchmark-{run_tag}")
        seconds = time.perf_counter() - start
        report = campaign_report(cid)
        curve = report["best_curve"]
        best = report["top"][0] if report["top"] else {}
        # the first outer step whose best fitness is within 1e-6 of the final best
        reached = next((i + 1 for i, v in enumerate(curve) if curve and v <= curve[-1] + 1e-6), None)
        rows.append(
            {
                "optimizer": name,
                "best_fitness": _round(curve[-1]) if curve else None,
                "best_at_step": reached,
                "spacegroup": best.get("spacegroup_symbol"),
                "dhf_ev_per_atom": _round(best.get("dhf_pred_ev_per_atom")),
                "p_syn": _round(best.get("p_syn")),
                "candidates": report["n_candidates"],
                "seconds": round(seconds, 1),
                "convergence": sparkline(curve),
                "campaign_id": cid,
            }
        )
    create_table_artifact(
        table=rows,
        key=f"benchmark-{slug(composition, 30)}",
        description=(
            f"Outer optimizers on {composition}: {outer_steps} x {inner_steps} steps, "
            f"inner {inner_optimizer}, seed {seed} (lower fitness is better)"
        ),
    )
    return rows


# ------------------------------------------------------------------------- several campaigns, Dask


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
def campaigns(
    compositions: list[str] | None = None,
    alpha: float = 0.5,
    strategy: Literal["all", "fixed"] = "fixed",
    crystal_system: CrystalSystem | None = "cubic",
    outer_optimizer: OptimizerChoice = "bo",
    inner_optimizer: OptimizerChoice = "pso",
    outer_steps: int = 20,
    inner_steps: int = 120,
    batch_size: int = 30,
    formula_units_max: int = 4,
    seed: int = 0,
    dhf_source: Literal["dft", "exp"] = "exp",
    task_runner: Literal["dask", "thread"] = "dask",
    workers: int = 2,
    dask_address: str | None = None,
) -> list[dict[str, Any]]:
    """Several campaigns (one per composition) scored in parallel as tasks of a Dask cluster.

    Args:
        compositions: Formulas, one campaign each (default MgO, GaAs, BaZrO3).
        alpha: Weight of (1 - P_syn) in the fitness.
        strategy: All crystal systems or one fixed system.
        crystal_system: Crystal system for the fixed strategy.
        outer_optimizer: Optimizer over space group + Wyckoff families.
        inner_optimizer: Optimizer over lattice and coordinates.
        outer_steps: Families tried per campaign.
        inner_steps: Structures per family.
        batch_size: Structures per scored batch.
        formula_units_max: Largest number of formula units per cell.
        seed: Seed of every campaign.
        dhf_source: Enthalpy model.
        task_runner: dask (a LocalCluster of `workers` processes, or `dask_address`) or thread.
        workers: Dask worker processes (or threads) of the local cluster.
        dask_address: Scheduler address of an existing Dask cluster (e.g. tcp://host:8786); empty for local.
    """
    from prefect.runtime import flow_run

    names = list(compositions or ["MgO", "GaAs", "BaZrO3"])
    base = {
        "alpha": alpha,
        "strategy": strategy,
        "crystal_system": crystal_system,
        "outer_optimizer": outer_optimizer,
        "inner_optimizer": inner_optimizer,
        "outer_steps": outer_steps,
        "inner_steps": inner_steps,
        "batch_size": batch_size,
        "formula_units_max": formula_units_max,
        "seed": seed,
        "dhf_source": dhf_source,
    }
    # every request is checked before any campaign starts: one bad formula fails the run, writing nothing
    checked = [preflight({**base, "composition": name}, Settings()).model_dump() for name in names]
    jobs = [{"params": p, "campaign_id": campaign_id_for_run(p, None)} for p in checked]
    run_id = f"flow-{flow_run.id}" if flow_run.id else "flow-local-campaigns"
    start = time.perf_counter()
    _score_all.with_options(task_runner=_runner(task_runner, workers, dask_address))(jobs, run_id)
    seconds = time.perf_counter() - start
    rows = []
    for job in jobs:
        report = campaign_report(job["campaign_id"])
        best = report["top"][0] if report["top"] else {}
        rows.append(
            {
                "composition": report["composition"],
                "status": report["status"],
                "best_fitness": _round(report["best_curve"][-1]) if report["best_curve"] else None,
                "spacegroup": best.get("spacegroup_symbol"),
                "dhf_ev_per_atom": _round(best.get("dhf_pred_ev_per_atom")),
                "p_syn": _round(best.get("p_syn")),
                "candidates": report["n_candidates"],
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
