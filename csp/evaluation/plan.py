"""What the paper report runs: its presets, the campaigns they make, and the paper's own numbers.

A :class:`PaperPlan` is the whole grid of one report: Table 1 (compounds x strategies x alphas x seeds at one
budget, every campaign refined, so that one search gives the refined and the pure-surrogate answer), the
``rs-relax`` baseline at equal wall time, Fig. 3 (the optimizers on MgO with the DFT-trained model, as the
paper did), Fig. 4 (the Table 1 column ``fig4_strategy`` / ``fig4_alpha`` searched once more with the
DFT-trained model) and Fig. 2 (parity on the test splits). :data:`PRESETS` holds ``tiny`` (CI, minutes on
two cores), ``reduced`` (under 30 minutes on two cores) and ``full`` (the issue's grid, for a many-core
machine). Campaign ids are derived from every parameter (:func:`campaign_id`), so presets never collide in one
lake and a stopped report resumes its campaigns.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from csp.search.optimizers import OptimizerName
from csp.search.parameters import Strategy

__all__ = [
    "PAPER",
    "PARTS",
    "PRESETS",
    "PaperPlan",
    "Part",
    "PresetName",
    "baseline_job",
    "baseline_structures",
    "campaign_id",
    "fig3_jobs",
    "fig4_jobs",
    "needs_rescale",
    "table1_jobs",
]

PresetName = Literal["tiny", "reduced", "full"]
Part = Literal["table1", "fig2", "fig3", "fig4"]
PARTS: tuple[Part, ...] = ("table1", "fig2", "fig3", "fig4")
#: the DFT sources of the enthalpy model (the MP/OQMD/GNoME scale) and the experimental source
DFT_SOURCES = ("oqmd_intermetallics", "gnome", "mp_flla2015")
EXPERIMENT_SOURCE = "expt_deltae_jha2019"

#: The paper's own numbers (main text; Table 1 flags per compound are in the data mirror's table1.json).
PAPER: dict[str, Any] = {
    "table1_pct": {
        "all_a0": 52.9,
        "all_a0.5": 58.8,
        "all_a1": 47.1,
        "fixed_a0": 70.6,
        "fixed_a0.5": 82.4,
        "fixed_a1": 64.7,
    },
    "table1_budget": "200 x 300",
    "dft_model_test_mae_ev_per_atom": 0.029,
    "dft_model_test_r2": 0.994,
    "dft_vs_exp_mae_ev_per_atom": 0.112,
    "dft_model_vs_exp_mae_ev_per_atom": 0.125,
    "dft_model_vs_exp_r2": 0.976,
    "tl_change_vs_dft_model_pct": -27.2,
    "tl_change_vs_dft_pct": -18.8,
    "fig3_model": "dft",
    "fig4_compounds": 15,
    "fig4_left_out": ["AuCl", "SrCu"],
    "lattice_error_pct": {"dft_calculation": 1.83, "dft": 2.51, "exp": 2.02},
    "dhf_error_pct": {"dft_calculation": 10.74, "dft": 11.28, "exp": 8.34},
}


class PaperPlan(BaseModel):
    """The grid of one paper report (every field has the full run's value unless a preset says otherwise)."""

    model_config = ConfigDict(extra="forbid")

    preset: PresetName = Field("full", description="The preset this plan came from.")
    formulas: list[str] | None = Field(None, description="Table 1 compounds (None: all 17).")
    strategies: list[Strategy] = Field(["all", "fixed"], description="Table 1 strategies.")
    alphas: list[float] = Field([0.0, 0.5, 1.0], description="Table 1 fitness weights.")
    seeds: list[int] = Field([0, 1, 2], description="Table 1 seeds.")
    outer_steps: int = Field(200, ge=1, description="Families per Table 1 campaign.")
    inner_steps: int = Field(300, ge=1, description="Structures per family.")
    batch_size: int = Field(30, ge=1, description="Structures scored per inner batch.")
    formula_units_max: int = Field(4, ge=1, description="Largest Z searched.")
    refine_top_n: int = Field(32, ge=1, description="Distinct structures refined per campaign.")
    refine_steps: int = Field(150, ge=1, description="Most FIRE steps per refined structure.")
    baseline: bool = Field(True, description="Run the rs-relax baseline at equal wall time.")
    baseline_max_structures: int = Field(1000, ge=1, le=1000, description="Cap on the baseline's structures.")
    baseline_time_tolerance: float = Field(
        0.2,
        gt=0,
        description="A baseline further than this fraction from equal wall time runs again, rescaled.",
    )
    baseline_rescales: int = Field(2, ge=0, description="Most reruns of a baseline to reach equal wall time.")
    fig2_sources: list[str] = Field(list(DFT_SOURCES), description="DFT sources of the Fig. 2 test split.")
    fig2_max_per_source: int | None = Field(None, description="Test rows scored per source (None: all).")
    fig2_link_sources: list[str] | None = Field(
        None,
        description="Sources an experimental row may be linked to a structure of (None: every registered "
        "source, as in the lake the shipped models were trained from).",
    )
    fig3_composition: str = Field("MgO", description="Composition of the optimizer comparison.")
    fig3_optimizers: list[OptimizerName] = Field(
        ["rs", "pso", "ga", "bo"], description="Optimizers compared."
    )
    fig3_seeds: list[int] = Field([0, 1, 2, 3, 4], description="Seeds of the optimizer comparison.")
    fig3_outer_steps: int = Field(200, ge=1, description="Families per Fig. 3 campaign.")
    fig3_inner_steps: int = Field(300, ge=1, description="Structures per family in Fig. 3.")
    fig3_batch_size: int = Field(30, ge=1, description="Inner batch of Fig. 3 campaigns.")
    fig4_strategy: Strategy = Field("fixed", description="Table 1 column of Fig. 4: strategy.")
    fig4_alpha: float = Field(0.5, description="Table 1 column of Fig. 4: alpha.")

    def budget(self) -> str:
        """The Table 1 budget as the report writes it, e.g. ``200 x 300``."""
        return f"{self.outer_steps} x {self.inner_steps}"


PRESETS: dict[str, PaperPlan] = {
    "tiny": PaperPlan(
        preset="tiny",
        formulas=["MgO", "SrCu"],
        strategies=["fixed"],
        alphas=[0.5],
        seeds=[0],
        outer_steps=3,
        inner_steps=12,
        batch_size=6,
        formula_units_max=2,
        refine_top_n=2,
        refine_steps=10,
        baseline_max_structures=3,
        fig2_sources=["mp_flla2015"],
        fig2_max_per_source=24,
        fig2_link_sources=[],
        fig3_seeds=[0, 1],
        fig3_outer_steps=3,
        fig3_inner_steps=12,
        fig3_batch_size=6,
    ),
    "reduced": PaperPlan(
        preset="reduced",
        strategies=["all", "fixed"],
        alphas=[0.5],
        seeds=[0],
        outer_steps=10,
        inner_steps=50,
        refine_top_n=3,
        refine_steps=50,
        fig2_max_per_source=200,
        fig3_seeds=[0, 1, 2],
        fig3_outer_steps=10,
        fig3_inner_steps=50,
    ),
    "full": PaperPlan(preset="full"),
}


def campaign_id(kind: str, label: str, params: dict[str, Any]) -> str:
    """A readable id that names every parameter through a short hash: the same request always gets the same
    id (a stopped report resumes), another request another id (presets never collide in one lake)."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"paper-{kind}-{label}-{digest}"


def _campaign(
    plan: PaperPlan, entry: dict[str, Any], strategy: str, alpha: float, seed: int, **extra: Any
) -> dict[str, Any]:
    return {
        "composition": entry["formula"],
        "alpha": float(alpha),
        "strategy": strategy,
        "crystal_system": entry["crystal_system"] if strategy == "fixed" else None,
        "outer_steps": plan.outer_steps,
        "inner_steps": plan.inner_steps,
        "batch_size": plan.batch_size,
        "formula_units_max": plan.formula_units_max,
        "seed": int(seed),
        "top_k": 5,
        "dhf_source": "exp",
        "refine": True,
        "refine_top_n": plan.refine_top_n,
        "refine_steps": plan.refine_steps,
        **extra,
    }


def _job(part: str, kind: str, label: str, params: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"part": part, "campaign_id": campaign_id(kind, label, params), "params": params, **meta}


def chosen(plan: PaperPlan, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Table 1 entries of the plan, in Table 1's order.

    Raises:
        ValueError: a formula of the plan is not a Table 1 compound.
    """
    if plan.formulas is None:
        return list(entries)
    known = {e["formula"] for e in entries}
    unknown = sorted(set(plan.formulas) - known)
    if unknown:
        raise ValueError(f"{unknown} are not Table 1 compounds; choose from {sorted(known)}.")
    return [e for e in entries if e["formula"] in plan.formulas]


def table1_jobs(plan: PaperPlan, entries: list[dict[str, Any]], device: str = "cpu") -> list[dict[str, Any]]:
    """One refined campaign per compound x strategy x alpha x seed, with the fine-tuned enthalpy model."""
    jobs = []
    for entry in chosen(plan, entries):
        for strategy in plan.strategies:
            for alpha in plan.alphas:
                for seed in plan.seeds:
                    params = _campaign(plan, entry, strategy, alpha, seed, refine_device=device)
                    label = f"{entry['formula']}-{strategy}-a{alpha:g}-s{seed}"
                    jobs.append(
                        _job(
                            "table1",
                            "t1",
                            label,
                            params,
                            formula=entry["formula"],
                            strategy=strategy,
                            alpha=float(alpha),
                            seed=int(seed),
                            model="exp",
                        )
                    )
    return jobs


def fig4_jobs(plan: PaperPlan, entries: list[dict[str, Any]], device: str = "cpu") -> list[dict[str, Any]]:
    """The Fig. 4 column searched with both enthalpy models (the fine-tuned campaigns are Table 1's own)."""
    jobs = []
    for entry in chosen(plan, entries):
        for seed in plan.seeds:
            for model in ("exp", "dft"):
                params = _campaign(
                    plan,
                    entry,
                    plan.fig4_strategy,
                    plan.fig4_alpha,
                    seed,
                    dhf_source=model,
                    refine_device=device,
                )
                kind = "t1" if model == "exp" else "f4"
                label = f"{entry['formula']}-{plan.fig4_strategy}-a{plan.fig4_alpha:g}-s{seed}"
                jobs.append(
                    _job(
                        "fig4" if model == "dft" else "table1",
                        kind,
                        label,
                        params,
                        formula=entry["formula"],
                        strategy=plan.fig4_strategy,
                        alpha=float(plan.fig4_alpha),
                        seed=int(seed),
                        model=model,
                    )
                )
    return jobs


def fig3_jobs(plan: PaperPlan, device: str = "cpu") -> list[dict[str, Any]]:
    """The optimizer comparison: each optimizer in the outer stage (inner PSO) and in the inner stage
    (outer BO), per seed, with the DFT-trained model as in the paper, no refinement."""
    pairs = [("outer", name, "pso") for name in plan.fig3_optimizers]
    pairs += [("inner", "bo", name) for name in plan.fig3_optimizers]
    jobs = []
    for stage, outer, inner in pairs:
        for seed in plan.fig3_seeds:
            params = {
                "composition": plan.fig3_composition,
                "alpha": 0.5,
                "strategy": "fixed",
                "crystal_system": "cubic",
                "outer_optimizer": outer,
                "inner_optimizer": inner,
                "outer_steps": plan.fig3_outer_steps,
                "inner_steps": plan.fig3_inner_steps,
                "batch_size": plan.fig3_batch_size,
                "formula_units_max": plan.formula_units_max,
                "seed": int(seed),
                "dhf_source": "dft",
                "refine": False,
                "gap_probes": 0,
            }
            label = f"{plan.fig3_composition}-{outer}-{inner}-s{seed}"
            jobs.append(
                _job(
                    "fig3",
                    "f3",
                    label,
                    params,
                    compared=stage,
                    optimizer=outer if stage == "outer" else inner,
                    outer=outer,
                    inner=inner,
                    seed=int(seed),
                    formula=plan.fig3_composition,
                )
            )
    return jobs


def baseline_job(
    plan: PaperPlan, entry: dict[str, Any], strategy: str, seed: int, structures: int, device: str = "cpu"
) -> dict[str, Any]:
    """The rs-relax baseline of one compound, strategy and seed: ``structures`` random symmetric structures
    relaxed with the potential and ranked by its energy (:func:`csp.potentials.refine.rs_relax_config`)."""
    n = max(1, min(int(structures), plan.baseline_max_structures))
    params = _campaign(plan, entry, strategy, 0.5, seed, outer_optimizer="rs-relax", refine_device=device)
    params.update(outer_steps=n, inner_steps=1, batch_size=1, refine_top_n=n)
    label = f"{entry['formula']}-{strategy}-s{seed}-n{n}"
    return _job(
        "baseline",
        "rs",
        label,
        params,
        formula=entry["formula"],
        strategy=strategy,
        seed=int(seed),
        structures=n,
    )


def baseline_structures(target_s: float, spent_s: float, structures: int) -> int:
    """How many random structures the rs-relax baseline relaxes to spend ``target_s`` seconds, from a
    measurement that relaxed ``structures`` in ``spent_s`` seconds (first the compound's own refinement,
    then the baseline's calibration run): the target over the seconds per structure. At least 1."""
    if structures <= 0 or spent_s <= 0:
        return 1
    return max(1, round(target_s * structures / spent_s))


def needs_rescale(target_s: float, spent_s: float | None, tolerance: float) -> bool:
    """Whether a baseline that took ``spent_s`` missed the equal wall time ``target_s`` by more than the
    fraction ``tolerance`` (it is then run once more, rescaled by :func:`baseline_structures`)."""
    if not spent_s or not target_s:
        return False
    return abs(spent_s - target_s) > tolerance * target_s
