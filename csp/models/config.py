"""The validated configuration of an ALIGNN model (a dataclass, so it runs without pydantic)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from csp.errors import InputError

Task = Literal["regression", "pu"]
_TASKS = ("regression", "pu")
FidelityHeads = Literal["separate", "delta"]
_FIDELITY_HEADS = ("separate", "delta")


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
        fidelities: regression heads, one per fidelity of the training labels (0 DFT, 1 mlip: see
            :data:`csp.models.dataset.FIDELITIES`); 1 is a single-fidelity model. Head 0 (DFT) is the
            prediction: inference and the ONNX export use it alone.
        fidelity_heads: how heads 1.. predict (``fidelities`` >= 2): ``"separate"``, each its own MLP on
            the shared pooled features; ``"delta"``, the DFT head plus a correction MLP (see
            :class:`csp.models.alignn.ALIGNN`).
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
    fidelities: int = 1
    fidelity_heads: FidelityHeads = "separate"

    def __post_init__(self) -> None:
        names = ("hidden", "k", "edge_bins", "angle_bins", "embedding", "head_hidden", "n_bags", "fidelities")
        for name in names:
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
        if self.fidelity_heads not in _FIDELITY_HEADS:
            raise InputError(
                f"ALIGNNConfig.fidelity_heads must be one of {_FIDELITY_HEADS}, got {self.fidelity_heads!r}."
            )
        if self.fidelities > 1 and self.task != "regression":
            raise InputError("Fidelity heads are for regression; a PU model has one fidelity (fidelities=1).")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary (the fidelity keys only for a multi-fidelity model, so that a
        single-fidelity config reads as it did before fidelities existed)."""
        data = asdict(self)
        if self.fidelities == 1:
            del data["fidelities"], data["fidelity_heads"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ALIGNNConfig:
        """Build from a dictionary, refusing unknown keys (missing fidelity keys: one fidelity)."""
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
