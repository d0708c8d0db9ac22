"""The validated configuration of an ALIGNN model (a dataclass, so it runs without pydantic)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from csp.errors import InputError

Task = Literal["regression", "pu"]
_TASKS = ("regression", "pu")


@dataclass(frozen=True)
class ALIGNNConfig:
    """Constructor arguments of :class:`csp.models.ALIGNN`, saved beside every trained model.

    Attributes:
        hidden: width H of atom, bond and angle features.
        alignn_layers: ALIGNN layers (edge-gated conv on the bond graph, then on the line graph).
        gcn_layers: plain edge-gated layers on the bond graph that follow.
        k: neighbours per atom (must match the graphs the model is fed).
        edge_bins: radial basis functions for bond lengths over [0, cutoff].
        angle_bins: basis functions for bond-angle cosines over [-1, 1].
        cutoff: upper end of the bond-length basis, Angstrom.
        embedding: width of the first layer that embeds each basis expansion.
        head_hidden: width of the (per-bag) MLP head.
        task: "regression" (one output, eV/atom) or "pu" (n_bags bagged classifier logits).
        n_bags: number of bagged classifier heads for task "pu".
    """

    hidden: int = 64
    alignn_layers: int = 2
    gcn_layers: int = 2
    k: int = 12
    edge_bins: int = 80
    angle_bins: int = 40
    cutoff: float = 8.0
    embedding: int = 64
    head_hidden: int = 64
    task: Task = "regression"
    n_bags: int = 100

    def __post_init__(self) -> None:
        for name in ("hidden", "k", "edge_bins", "angle_bins", "embedding", "head_hidden", "n_bags"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"ALIGNNConfig.{name} must be a positive integer, got {value!r}.")
        for name in ("alignn_layers", "gcn_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InputError(f"ALIGNNConfig.{name} must be a non-negative integer, got {value!r}.")
        if self.k < 2:
            raise InputError(f"ALIGNNConfig.k must be at least 2 so that bond angles exist, got {self.k}.")
        if self.edge_bins < 2 or self.angle_bins < 2:
            raise InputError("ALIGNNConfig.edge_bins and angle_bins must be at least 2.")
        if not (isinstance(self.cutoff, int | float) and self.cutoff > 0):
            raise InputError(f"ALIGNNConfig.cutoff must be a positive number, got {self.cutoff!r}.")
        if self.task not in _TASKS:
            raise InputError(f"ALIGNNConfig.task must be one of {_TASKS}, got {self.task!r}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ALIGNNConfig:
        """Build from a dictionary, refusing unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"Unknown ALIGNNConfig keys {unknown}; known keys are {sorted(known)}.")
        return cls(**data)


SMALL_CONFIG = ALIGNNConfig(hidden=64, alignn_layers=2, gcn_layers=2)
"""The CI / test configuration."""
SHIPPED_CONFIG = ALIGNNConfig(hidden=128, alignn_layers=2, gcn_layers=2)
"""The configuration for shipped models: ~280 eight-atom structures/s through onnxruntime on 2 CPU
threads at batch 256 (benchmarks/results/inference.md); H=128 3+3 (~180/s) also meets the 150/s floor."""
