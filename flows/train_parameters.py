"""The parameters of one model training (``csp models train`` options and the ``train`` Prefect form).

Flat, typed and validated once (:class:`TrainParameters`); :mod:`flows.models` turns them into the dataset,
the training command (``python -m csp.models.training``) and the export.
"""

from __future__ import annotations

import shlex
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Mode = Literal["dft", "transfer", "pu"]
_DATA_KIND = {"dft": "dft", "transfer": "exp", "pu": "pu"}


class TrainParameters(BaseModel):
    """One training run, declared once: the ``csp models train`` options and the ``train`` deployment's form.

    Architecture defaults are those of :class:`csp.models.ALIGNNConfig`, ``batch_size`` and ``seed`` those
    of :class:`csp.models.training.TrainSettings` (a test keeps them equal; they are not imported here so that
    the command line starts without torch). ``epochs`` is the faces' CPU-sized budget (30; the GPU entry
    point ``python -m csp.models.training`` keeps ``TrainSettings``' 100).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    mode: Mode = Field("dft", description="Which model to train: dft, transfer or pu.")
    name: str = Field("alignn-dft", description="Model folder name under the models directory.")
    init_run: str | None = Field(None, description="Run folder of the DFT model (transfer and pu).")
    epochs: int = Field(30, ge=1, le=1000, description="Most passes over the training rows.")
    batch_size: int = Field(64, ge=1, le=4096, description="Crystals per optimisation step.")
    hidden: int = Field(64, ge=8, le=512, description="Width of atom, bond and angle features.")
    alignn_layers: int = Field(2, ge=0, le=8, description="ALIGNN layers (bond graph, then line graph).")
    gcn_layers: int = Field(2, ge=0, le=8, description="Edge-gated layers on the bond graph that follow.")
    n_bags: int = Field(100, ge=1, le=1000, description="PU ensemble size.")
    ensemble: int | None = Field(
        None,
        ge=1,
        le=100,
        description="dft/transfer: members of an enthalpy ensemble (own seed and bootstrap resample each; "
        "the model gives mean and spread); default 1 for dft, as the init run for transfer.",
    )
    time_limit_s: float | None = Field(None, gt=0, description="Stop training after this many seconds.")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seeds torch and numpy (shuffling, PU bag draws).")
    hypothetical_polymorphs: list[str] | None = Field(None, description="pu: label parts added as unlabeled")
    siblings_every_bag: bool = Field(False, description="pu: the positives' polymorph siblings in every bag.")
    sources: list[str] | None = Field(
        None, description="Lake sources to train on (default: the DFT sources); name mlip sources explicitly."
    )
    fidelity: Literal["heads", "delta", "mix"] | None = Field(
        None,
        description="dft with mlip sources: one head per fidelity (heads, the default), the DFT head plus a "
        "correction (delta), or one head for all rows (mix); the DFT head is the exported model.",
    )
    mlip_weight: float | None = Field(None, gt=0, description="Loss weight of mlip rows (default 1; DFT: 1).")

    @model_validator(mode="after")
    def _ensemble_is_for_enthalpy(self) -> TrainParameters:
        if self.mode == "pu" and self.ensemble is not None:
            raise ValueError("pu is already a bagged ensemble: set its size with n_bags, not ensemble.")
        return self

    def model_args(self) -> dict[str, Any]:
        """Constructor arguments of the model (``n_bags`` for pu only)."""
        args: dict[str, Any] = {
            "hidden": self.hidden,
            "alignn_layers": self.alignn_layers,
            "gcn_layers": self.gcn_layers,
        }
        if self.mode == "pu":
            args["n_bags"] = self.n_bags
        return args

    def train_args(self, device: str) -> dict[str, Any]:
        """Arguments of :class:`csp.models.training.TrainSettings`."""
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "time_limit_s": self.time_limit_s,
            "device": device,
            "pu_siblings_every_bag": self.siblings_every_bag,
            **({"mlip_weight": self.mlip_weight} if self.mlip_weight is not None else {}),
        }

    def command(self) -> str:
        """The ``csp models train`` command line that reproduces this run (every argument spelled out)."""
        parts = ["csp", "models", "train", self.mode]
        for key, value in self.model_dump().items():
            if key == "mode" or value is None or (key == "n_bags" and self.mode != "pu"):
                continue
            flag = "--" + key.replace("_", "-")
            if isinstance(value, bool):  # a switch: named when on
                parts += [flag] if value else []
                continue
            values = value if isinstance(value, list) else [value]
            for v in values:
                parts += [flag, shlex.quote(str(v))]
        return " ".join(parts)

    def model_post_init(self, context: Any) -> None:  # an option given no value (typer: []) means none
        self.hypothetical_polymorphs = self.hypothetical_polymorphs or None
