"""The search's scorer on top of the models: enthalpy for the inner loop, P_syn for the outer.

Two paths give the same numbers (see :mod:`csp.models.torch_scoring` for how closely): onnxruntime on the
CPU (:class:`csp.models.infer.OnnxModels`, graphs built with numpy), and the torch models with their graphs
built on a torch device (:class:`csp.models.torch_scoring.TorchModels`), a CUDA GPU where one is present.
``load_scorer(score_device=...)`` picks: ``"cpu"`` onnxruntime, ``"cuda"`` / ``"cuda:N"`` torch on that GPU,
``"auto"`` the GPU when torch finds one, else the CPU (:func:`resolve_score_device`); ``backend="torch"``
runs the torch path on the CPU too (for checks and benchmarks: onnxruntime is faster there).

With an enthalpy ensemble (``n_members`` >= 2 in its model.json) :meth:`ModelScorer.enthalpy_with_spread`
gives the members' mean and population standard deviation (eV/atom), which the search stores on every
candidate row and may penalise (:func:`csp.search.fitness.pessimistic_enthalpy`); a single model gives a
spread of 0.0 (:attr:`ModelScorer.enthalpy_members` is then 1).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np

from csp.errors import InputError
from csp.models.infer import OnnxModels
from csp.structures.crystal import Crystal

#: the values of ``score_device`` a campaign offers (``load_scorer`` also takes ``"cuda:N"``)
SCORE_DEVICES = ("auto", "cpu", "cuda")
ScoreDevice = Literal["auto", "cpu", "cuda"]


def resolve_score_device(score_device: str) -> str:
    """The device a scorer runs on: ``"cpu"`` or ``"cuda[:N]"`` (checked to exist here).

    Args:
        score_device: ``"cpu"``; ``"cuda"`` or ``"cuda:N"`` (that GPU, which must exist); ``"auto"`` (the
            first GPU when torch finds one, else ``"cpu"``). Only ``"auto"`` and ``"cuda..."`` import torch.

    Returns:
        ``"cpu"`` or a CUDA device name.

    Raises:
        InputError: an unknown value, or a CUDA device this machine does not have (the message says which
            devices torch finds and to use auto or cpu).
    """
    if score_device == "cpu":
        return "cpu"
    if score_device == "auto":
        try:
            import torch
        except ImportError:  # a CPU-only install without torch scores through onnxruntime
            return "cpu"
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(score_device, str) or not re.fullmatch(r"cuda(:\d+)?", score_device):
        raise InputError(f"score_device must be auto, cpu or cuda (or cuda:N), not {score_device!r}.")
    import torch

    index = int(score_device.partition(":")[2] or 0)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if index >= count:
        found = f"torch finds {count} CUDA device(s)" if count else "torch finds no CUDA device"
        raise InputError(
            f"score_device {score_device} is not available on this machine ({found}); use auto or cpu."
        )
    return score_device


class ModelScorer:
    """Adapts :class:`csp.models.infer.OnnxModels` (or its torch twin) to the search's ``Scorer`` protocol.

    Args:
        scorer: warm models (a DFT and/or experiment-calibrated enthalpy model, and the PU ensemble): ONNX
            sessions, or :class:`csp.models.torch_scoring.TorchModels`.
        dhf_source: ``"dft"`` for the DFT-trained enthalpy, ``"exp"`` for the transfer-learned one.
        batch_size: crystals per model call.
    """

    def __init__(
        self, scorer: OnnxModels, dhf_source: Literal["dft", "exp"] = "exp", batch_size: int = 256
    ) -> None:
        if dhf_source not in scorer.models:
            raise InputError(
                f"No {dhf_source!r} enthalpy model is configured; configured: {sorted(scorer.models)}."
            )
        if "pu" not in scorer.models:
            raise InputError("No synthesizability (pu) model is configured; the fitness needs P_syn.")
        self.scorer = scorer
        self.dhf_source = dhf_source
        self.batch_size = batch_size

    def check_elements(self, numbers: np.ndarray) -> None:
        """Raise a clear error if a model was not trained on one of these elements."""
        self.scorer.check_elements(np.asarray(numbers), include=[self.dhf_source, "pu"])

    @property
    def enthalpy_members(self) -> int:
        """Members of the enthalpy model: M for an ensemble, 1 for a single model (spread always 0)."""
        return self.scorer.models[self.dhf_source].n_members

    def enthalpy(self, numbers: np.ndarray, lattices: np.ndarray, frac: np.ndarray) -> np.ndarray:
        """Formation enthalpy (B,) in eV/atom (an ensemble's members' mean); see :meth:`enthalpy_with_spread`."""
        return self.enthalpy_with_spread(numbers, lattices, frac)[0]

    def enthalpy_with_spread(
        self, numbers: np.ndarray, lattices: np.ndarray, frac: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Formation enthalpy and its spread for B cells sharing one species list.

        Args:
            numbers: (n,) atomic numbers shared by every cell.
            lattices: (B, 3, 3) row lattice vectors, Angstrom.
            frac: (B, n, 3) fractional coordinates.

        Returns:
            ``mean`` (B,) and ``std`` (B,), eV/atom: the members' mean and population standard deviation
            for an ensemble; the prediction and 0.0 for a single model.

        Raises:
            UnsupportedElementError: an element the model does not support or has no training rows for.
            GeometryError: a cell the graphs cannot represent (its position in the batch in ``index``).
        """
        scores = self.scorer.score_same_species(
            lattices, frac, numbers, batch_size=self.batch_size, include=[self.dhf_source]
        )
        if self.dhf_source == "exp":
            return scores.dhf_exp, scores.dhf_exp_std
        return scores.dhf_dft, scores.dhf_dft_std

    def synthesizability(self, crystals: list[Crystal]) -> tuple[np.ndarray, np.ndarray]:
        scores = self.scorer.score(crystals, batch_size=self.batch_size, include=["pu"])
        return scores.p_syn, scores.p_syn_std


def load_scorer(
    models_dir: Path | str | None = None,
    *,
    dhf_source: Literal["dft", "exp"] = "exp",
    dft: Path | str | None = None,
    exp: Path | str | None = None,
    pu: Path | str | None = None,
    threads: int = 2,
    batch_size: int = 256,
    allow_unseen_elements: bool = False,
    score_device: str = "cpu",
    backend: Literal["onnx", "torch"] | None = None,
) -> ModelScorer:
    """The search's scorer over the shipped (or given) models: the ``dhf_source`` enthalpy model and P_syn.

    Args:
        models_dir: folder of model folders (default: ``onnx_models`` of this checkout); the default
            folder of each kind is :data:`csp.models.names.DEFAULT_MODELS`.
        dhf_source: ``"exp"`` (fine-tuned on experiment) or ``"dft"`` enthalpy.
        dft: explicit DFT enthalpy model folder, or a folder name under ``models_dir`` (old names resolve).
        exp: explicit experiment-calibrated enthalpy model folder, or a folder name (likewise).
        pu: explicit P_syn (PU) model folder, or a folder name (likewise).
        threads: onnxruntime threads per session.
        batch_size: crystals per model call.
        allow_unseen_elements: score elements a model has no training rows for (``training_elements`` in
            its model.json) with a warning instead of refusing them.
        score_device: ``"cpu"`` (onnxruntime), ``"cuda"`` / ``"cuda:N"`` (the torch models and graph
            building on that GPU) or ``"auto"`` (the GPU when torch finds one); see :func:`resolve_score_device`.
        backend: ``"onnx"`` or ``"torch"``; None picks onnxruntime on the CPU and torch on a GPU.
            ``backend="torch"`` with ``score_device="cpu"`` runs the torch path on the CPU.

    Returns:
        A :class:`ModelScorer` with warm models (each folder checked for its role by
        :func:`csp.models.check.check_model_folder`: files, sha256, task and outputs; a torch model also
        against its ONNX graph, :class:`csp.models.torch_scoring.TorchModel`).

    Raises:
        ModelError: a model folder is missing, corrupt, unverifiable or of the wrong kind.
        InputError: an unknown ``dhf_source`` or ``backend``, a CUDA device this machine lacks, or
            ``backend="onnx"`` on a GPU (onnxruntime scores on the CPU only).
    """
    from csp.models.names import DEFAULT_MODELS, resolve_model

    if dhf_source not in ("dft", "exp"):
        raise InputError(f"Unknown dhf_source {dhf_source!r}; choose dft or exp.")
    if backend not in (None, "onnx", "torch"):
        raise InputError(f"Unknown backend {backend!r}; choose onnx or torch (or None: by the device).")
    device = resolve_score_device(score_device)
    backend = backend or ("onnx" if device == "cpu" else "torch")
    if backend == "onnx" and device != "cpu":
        raise InputError(
            f"onnxruntime scores on the CPU only; use score_device='cpu' with backend='onnx', or the torch "
            f"backend on {device}."
        )
    root = Path(models_dir) if models_dir is not None else Path(__file__).resolve().parents[2] / "onnx_models"
    given = {"dft": dft, "exp": exp, "pu": pu}
    folders: dict[str, Path | None] = {}
    for kind, value in given.items():
        name = value or DEFAULT_MODELS[kind]
        wanted = kind in (dhf_source, "pu")
        folders[kind] = (
            (Path(name) if Path(name).is_dir() else resolve_model(root, str(name))) if wanted else None
        )
    if backend == "torch":
        from csp.models.torch_scoring import TorchModels

        models: OnnxModels = TorchModels(
            **folders, device=device, threads=threads, allow_unseen_elements=allow_unseen_elements
        )
    else:
        models = OnnxModels(**folders, threads=threads, allow_unseen_elements=allow_unseen_elements)
    return ModelScorer(models, dhf_source=dhf_source, batch_size=batch_size)
