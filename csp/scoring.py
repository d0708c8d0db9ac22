"""The search's scorer on top of the ONNX models: enthalpy for the inner loop, P_syn for the outer."""

from __future__ import annotations

from typing import Literal

import numpy as np

from csp.crystal import Crystal
from csp.infer import Scorer


class ModelScorer:
    """Adapts :class:`csp.infer.Scorer` to the search's ``Scorer`` protocol.

    Args:
        scorer: warm ONNX sessions (a DFT and/or experiment-calibrated enthalpy model, and the PU ensemble).
        dhf_source: ``"dft"`` for the DFT-trained enthalpy, ``"exp"`` for the transfer-learned one.
        batch_size: crystals per onnxruntime call.
    """

    def __init__(
        self, scorer: Scorer, dhf_source: Literal["dft", "exp"] = "exp", batch_size: int = 256
    ) -> None:
        if dhf_source not in scorer.models:
            raise ValueError(
                f"No {dhf_source!r} enthalpy model is configured; configured: {sorted(scorer.models)}."
            )
        if "pu" not in scorer.models:
            raise ValueError("No synthesizability (pu) model is configured; the fitness needs P_syn.")
        self.scorer = scorer
        self.dhf_source = dhf_source
        self.batch_size = batch_size

    def check_elements(self, numbers: np.ndarray) -> None:
        """Raise a clear error if a model was not trained on one of these elements."""
        self.scorer.check_elements(np.asarray(numbers), include=[self.dhf_source, "pu"])

    def enthalpy(self, numbers: np.ndarray, lattices: np.ndarray, frac: np.ndarray) -> np.ndarray:
        scores = self.scorer.score_same_species(
            lattices, frac, numbers, batch_size=self.batch_size, include=[self.dhf_source]
        )
        return scores.dhf_exp if self.dhf_source == "exp" else scores.dhf_dft

    def synthesizability(self, crystals: list[Crystal]) -> tuple[np.ndarray, np.ndarray]:
        scores = self.scorer.score(crystals, batch_size=self.batch_size, include=["pu"])
        return scores.p_syn, scores.p_syn_std
