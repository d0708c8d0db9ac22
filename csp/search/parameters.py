"""The campaign's parameters, declared once: flat, typed, UI-safe fields with ``Literal`` choices.

:class:`SearchParameters` is what a person chooses (the CLI's options, the Prefect form and Python all
derive from these fields); :class:`csp.search.two_stage.SearchConfig` extends it with the expert knobs of the
search. The crystal-system names live in :data:`csp.search.generate.CRYSTAL_SYSTEMS`, the optimizer names in
:data:`csp.search.optimizers.OptimizerName`.

Defaults are the product's: a fixed cubic search, BO over families and PSO inside each, 200 x 300 steps,
Z = 1..4 formula units per cell (the value the CLI and the flows have always searched; ``SearchConfig``
used to default to 1..8 and now agrees), the experiment-calibrated enthalpy model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from csp.search.fitness import validate_spread_penalty
from csp.search.generate import CrystalSystem
from csp.search.optimizers import OptimizerName
from csp.structures.composition import DEFAULT_MAX_ATOMS

__all__ = ["CrystalSystem", "DhfSource", "OptimizerName", "SearchParameters", "Strategy"]

Strategy = Literal["all", "fixed"]
#: the crystal system of the fixed strategy when none is given
FIXED_DEFAULT_SYSTEM: CrystalSystem = "cubic"
DhfSource = Literal["dft", "exp"]


class SearchParameters(BaseModel):
    """What a person chooses for one search (every field flat, typed and documented).

    Raises:
        pydantic.ValidationError (a ``ValueError``): a value out of range or not finite (NaN and infinity are
            refused in every float field), an unknown choice, a crystal system with the ``all`` strategy
            (which searches every system; the ``fixed`` strategy without one searches cubic),
            ``formula_units_min > formula_units_max``, or a ``spread_penalty`` below 0.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    alpha: float = Field(0.5, ge=0.0, le=1.0, description="Weight of (1 - P_syn) in the fitness, 0..1.")
    strategy: Strategy = Field("fixed", description="All crystal systems or one fixed system.")
    crystal_system: CrystalSystem | None = Field(
        None,
        description="Crystal system of the fixed strategy (default cubic); the 'all' strategy takes none.",
    )
    outer_optimizer: OptimizerName = Field("bo", description="Optimizer over space group + Wyckoff families.")
    inner_optimizer: OptimizerName = Field("pso", description="Optimizer over lattice and coordinates.")
    outer_steps: int = Field(200, ge=1, le=10_000, description="Families tried (one per outer step).")
    inner_steps: int = Field(300, ge=1, le=100_000, description="Structures scored per family.")
    batch_size: int = Field(30, ge=1, le=4096, description="Structures scored per inner batch.")
    formula_units_min: int = Field(1, ge=1, le=64, description="Smallest number of formula units per cell.")
    formula_units_max: int = Field(4, ge=1, le=64, description="Largest number of formula units per cell.")
    seed: int = Field(
        0, ge=0, le=2**63 - 1, description="Seed of every random choice in the campaign (a 64-bit integer)."
    )
    dhf_source: DhfSource = Field(
        "exp", description="Enthalpy model: DFT-trained or fine-tuned on experiment."
    )
    spread_penalty: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="kappa: the enthalpy the search minimises is mean + kappa * std of the enthalpy "
        "ensemble's members (eV/atom), a pessimistic bound; 0 is the paper's fitness. Needs an ensemble "
        "enthalpy model when > 0 (csp.search.fitness).",
    )
    max_atoms: int = Field(
        DEFAULT_MAX_ATOMS,
        ge=1,
        le=500,
        description="Most atoms per cell; families above it are left out and counted in the result.",
    )
    refine: bool = Field(
        True,
        description="After the search, relax the best distinct structures with a universal potential "
        "keeping their space group, and rank the final top k on the relaxed structures (False: the "
        "paper's pure-surrogate ranking).",
    )
    refine_top_n: int = Field(
        32, ge=1, le=1000, description="Distinct structures (best fitness first) refined."
    )
    refine_fmax: float = Field(0.05, gt=0, description="Refinement converges below this force, eV/A.")
    refine_steps: int = Field(150, ge=1, le=10_000, description="Most FIRE steps per refined structure.")
    refine_potential: Literal["chgnet", "sevennet"] = Field(
        "chgnet", description="Universal potential of the refinement (weights ship in its wheel)."
    )
    refine_device: str = Field("cpu", description="Torch device of the potential: cpu or cuda[:N].")
    score_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="Where the models score: cuda (the torch models, graphs built on the GPU), cpu "
        "(onnxruntime), or auto (cuda when torch finds a GPU, else cpu). The numbers agree "
        "(csp.models.torch_scoring says how closely).",
    )
    refine_ranking: Literal["energy", "fitness", "window"] = Field(
        "energy",
        description="Final order of refined structures: the potential's energy, the models' FV, or FV "
        "within 50 meV/atom of the lowest energy (docs/refinement.md says how it was chosen).",
    )
    gap_probes: int = Field(
        5,
        ge=0,
        le=100,
        description="With refinement off: single points of the search's top N with the universal potential "
        "give each one's exploitation gap (eV/atom); 0 loads no potential (a pure-surrogate campaign).",
    )

    @field_validator("spread_penalty", mode="before")
    @classmethod
    def _finite_spread_penalty(cls, value: Any) -> float:
        # one rule for every face: finite and >= 0 (nan, inf and negatives refused, with what kappa means)
        return validate_spread_penalty(value)

    @model_validator(mode="before")
    @classmethod
    def _formula_units_pair(cls, data: Any) -> Any:
        # the earlier spelling formula_units=(min, max) is still accepted
        if isinstance(data, dict) and "formula_units" in data:
            data = dict(data)
            lo, hi = data.pop("formula_units")
            data.setdefault("formula_units_min", lo)
            data.setdefault("formula_units_max", hi)
        return data

    @model_validator(mode="after")
    def _check(self) -> SearchParameters:
        if self.strategy == "fixed" and self.crystal_system is None:
            self.crystal_system = FIXED_DEFAULT_SYSTEM
        if self.strategy == "all" and self.crystal_system is not None:
            # searched over every system: a given one would be ignored, so it is refused rather than dropped
            raise ValueError(
                f"The 'all' strategy searches every crystal system, so crystal_system {self.crystal_system!r} "
                "(--crystal-system) would be ignored; leave it out, or choose the 'fixed' strategy (--strategy "
                f"fixed) to search {self.crystal_system} only."
            )
        if self.formula_units_min > self.formula_units_max:
            raise ValueError(
                f"formula_units must be (min, max) with 1 <= min <= max, got "
                f"({self.formula_units_min}, {self.formula_units_max}); formula_units_min must not exceed "
                "formula_units_max."
            )
        if (self.refine or self.gap_probes > 0) and self.refine_device != "cpu":
            check_torch_device(self.refine_device)
        if self.score_device == "cuda":
            from csp.models.scoring import resolve_score_device

            resolve_score_device(self.score_device)  # an InputError (a ValueError) when there is no GPU
        return self

    @property
    def formula_units(self) -> tuple[int, int]:
        """Smallest and largest Z searched."""
        return (self.formula_units_min, self.formula_units_max)

    def search_fields(self) -> dict[str, Any]:
        """The values of the :class:`SearchParameters` fields only (not a subclass's own)."""
        return {name: getattr(self, name) for name in SearchParameters.model_fields}

    @classmethod
    def field_defaults(cls) -> dict[str, Any]:
        """Every field's default (required fields left out): what a campaign stored before a field existed
        ran with, so that it still resumes (:func:`storage.campaign_state.check_same_parameters`)."""
        return {
            name: field.get_default(call_default_factory=True)
            for name, field in cls.model_fields.items()
            if not field.is_required()
        }


def check_torch_device(device: str) -> None:
    """Refuse a torch device (``cuda[:N]``) this machine does not have, before any search time is spent.

    In a process whose relaxations go to a relaxation server (``CSP_RELAX_SERVER`` set, see
    :mod:`csp.potentials.relax_server`) only the name is checked: the server owns the device and checked it
    when it started, and this process must not touch CUDA.

    Raises:
        csp.errors.InputError (a ``ValueError``): not ``cuda`` or ``cuda:N``, or no such CUDA device here.
    """
    import os
    import re

    from csp.errors import InputError

    if not re.fullmatch(r"cuda(:\d+)?", device):
        raise InputError(f"refine_device must be cpu or cuda[:N], not {device!r}.")
    if os.environ.get("CSP_RELAX_SERVER"):
        return
    import torch

    index = int(device.partition(":")[2] or 0)
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        raise InputError(
            f"refine_device {device} is not available on this machine (no such CUDA device); use cpu."
        )
