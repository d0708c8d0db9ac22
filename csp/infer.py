"""Batched scoring through onnxruntime, one warm session per model folder.

A model folder (``onnx_models/<name>/``) holds ``model.onnx`` and ``model.json`` (written by
:mod:`csp.onnx_export`). Loading checks the file's sha256 against model.json and refuses a
mismatch with :class:`ModelIntegrityError`. Crystals with elements outside the model's element list
are refused with :class:`UnsupportedElementError`.

:class:`Scorer` combines up to three models: DFT enthalpy (``dhf_dft``), the transfer-learned
experimental enthalpy (``dhf_exp``) and the PU synthesizability ensemble (``p_syn`` mean and std).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from csp.crystal import Crystal
from csp.errors import InputError, ModelError
from csp.graphs import CrystalGraphs, build_graphs, build_graphs_same_species

__all__ = [
    "ModelIntegrityError",
    "OnnxModel",
    "Scorer",
    "Scores",
    "UnsupportedElementError",
]


class ModelIntegrityError(ModelError):
    """A model file does not match the sha256 recorded in its model.json."""


class UnsupportedElementError(InputError):
    """A crystal contains an element the model was not built for."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OnnxModel:
    """One exported model with a warm onnxruntime session.

    Args:
        folder: the model folder holding model.onnx and model.json.
        threads: onnxruntime intra-op threads.
    """

    def __init__(self, folder: Path | str, *, threads: int = 2) -> None:
        import onnxruntime as ort

        self.folder = Path(folder)
        json_path = self.folder / "model.json"
        onnx_path = self.folder / "model.onnx"
        if not json_path.is_file() or not onnx_path.is_file():
            raise FileNotFoundError(f"Model folder {self.folder} needs both model.onnx and model.json.")
        self.meta: dict[str, Any] = json.loads(json_path.read_text())
        actual = _sha256(onnx_path)
        if actual != self.meta.get("sha256"):
            raise ModelIntegrityError(
                f"{onnx_path} has sha256 {actual[:12]}... but model.json records "
                f"{str(self.meta.get('sha256'))[:12]}...; re-export or restore the model file."
            )
        self.k: int = int(self.meta["k"])
        self.task: str = self.meta["task"]
        self.outputs: list[str] = list(self.meta["outputs"])
        self._allowed = np.zeros(119, dtype=bool)
        self._allowed[np.asarray(self.meta["elements"], dtype=np.int64)] = True
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # idle threads sleep instead of spinning: the search interleaves scoring with numpy and torch work
        # on the same cores, where spinning threads only take CPU from it (predictions are unchanged)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    @property
    def name(self) -> str:
        return self.folder.name

    def check_elements(self, numbers: np.ndarray) -> None:
        """Raise :class:`UnsupportedElementError` if any atomic number is outside the element list."""
        numbers = np.asarray(numbers, dtype=np.int64).reshape(-1)
        bad = numbers[(numbers < 1) | (numbers > 118)]
        if len(bad) == 0:
            bad = numbers[~self._allowed[numbers]]
        if len(bad):
            raise UnsupportedElementError(
                f"Model '{self.name}' does not support atomic number(s) {sorted(set(bad.tolist()))}; "
                "remove those structures or use a model trained on these elements."
            )

    def run_graphs(self, graphs: CrystalGraphs) -> dict[str, np.ndarray]:
        """Run the session on prebuilt graphs; returns output name -> array (first axis: crystals)."""
        if graphs.k != self.k:
            raise ValueError(
                f"Model '{self.name}' expects k={self.k} neighbours, the graphs have {graphs.k}."
            )
        self.check_elements(graphs.numbers)
        feeds = {
            "numbers": np.ascontiguousarray(graphs.numbers, dtype=np.int64),
            "neighbours": np.ascontiguousarray(graphs.neighbours, dtype=np.int64),
            "bond_vectors": np.ascontiguousarray(graphs.bond_vectors, dtype=np.float32),
            "crystal_index": np.ascontiguousarray(graphs.crystal_index, dtype=np.int64),
            "natoms": np.ascontiguousarray(graphs.natoms, dtype=np.int64),
        }
        return dict(zip(self.outputs, self.session.run(self.outputs, feeds), strict=True))

    def score(self, crystals: Sequence[Crystal], batch_size: int = 256) -> dict[str, np.ndarray]:
        """Score crystals in batches; returns output name -> array over all crystals."""
        results = [self.run_graphs(g) for g in _graph_batches(crystals, batch_size, self.k)]
        return {name: np.concatenate([r[name] for r in results]) for name in self.outputs}


def _graph_batches(crystals: Sequence[Crystal], batch_size: int, k: int) -> Iterable[CrystalGraphs]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    for start in range(0, len(crystals), batch_size):
        yield build_graphs(crystals[start : start + batch_size], k=k)


def _same_species_batches(lattices, frac_coords, numbers, batch_size: int, k: int) -> Iterable[CrystalGraphs]:
    lattices = np.asarray(lattices, dtype=np.float64).reshape(-1, 3, 3)
    frac = np.asarray(frac_coords, dtype=np.float64).reshape(len(lattices), -1, 3)
    for start in range(0, len(lattices), batch_size):
        stop = start + batch_size
        yield build_graphs_same_species(lattices[start:stop], frac[start:stop], numbers, k=k)


@dataclass(frozen=True)
class Scores:
    """Per-crystal scores; a field is None when its model is not configured or not requested.

    Attributes:
        dhf_dft: formation enthalpy from the DFT-trained model, eV/atom.
        dhf_exp: formation enthalpy from the transfer-learned (experimental) model, eV/atom.
        p_syn: synthesizability probability, mean over the PU bags.
        p_syn_std: spread (std) of the bag probabilities.
    """

    dhf_dft: np.ndarray | None = None
    dhf_exp: np.ndarray | None = None
    p_syn: np.ndarray | None = None
    p_syn_std: np.ndarray | None = None


_KINDS = ("dft", "exp", "pu")


class Scorer:
    """Combined scoring with up to three warm models; graphs are built once per batch.

    Args:
        dft: folder of the DFT formation-enthalpy model, or None.
        exp: folder of the transfer-learned experimental-enthalpy model, or None.
        pu: folder of the PU synthesizability ensemble, or None.
        threads: onnxruntime intra-op threads per session.
    """

    def __init__(
        self,
        dft: Path | str | None = None,
        exp: Path | str | None = None,
        pu: Path | str | None = None,
        *,
        threads: int = 2,
    ) -> None:
        self.models: dict[str, OnnxModel] = {}
        for kind, folder in zip(_KINDS, (dft, exp, pu), strict=True):
            if folder is not None:
                self.models[kind] = OnnxModel(folder, threads=threads)
        if not self.models:
            raise ValueError("Scorer needs at least one model folder (dft, exp or pu).")
        ks = {m.k for m in self.models.values()}
        if len(ks) != 1:
            raise ValueError(f"The configured models use different neighbour counts {sorted(ks)}.")
        self.k = ks.pop()

    def _select(self, include: Iterable[str] | None) -> list[str]:
        if include is None:
            return list(self.models)
        chosen = list(include)
        unknown = [kind for kind in chosen if kind not in _KINDS]
        if unknown:
            raise ValueError(f"Unknown model kind(s) {unknown}; choose from {_KINDS}.")
        return [kind for kind in chosen if kind in self.models]

    def _run(self, batches: Iterable[CrystalGraphs], include: Iterable[str] | None) -> Scores:
        kinds = self._select(include)
        parts: dict[str, list[np.ndarray]] = {"dhf_dft": [], "dhf_exp": [], "p_syn": [], "p_syn_std": []}
        for graphs in batches:
            for kind in kinds:
                out = self.models[kind].run_graphs(graphs)
                if kind == "dft":
                    parts["dhf_dft"].append(out["dhf"])
                elif kind == "exp":
                    parts["dhf_exp"].append(out["dhf"])
                else:
                    parts["p_syn"].append(out["p_syn_mean"])
                    parts["p_syn_std"].append(out["p_syn_std"])
        return Scores(**{name: np.concatenate(v) if v else None for name, v in parts.items()})

    def check_elements(self, numbers: np.ndarray, include: Iterable[str] | None = None) -> None:
        """Raise :class:`UnsupportedElementError` if any selected model refuses these atomic numbers."""
        for kind in self._select(include):
            self.models[kind].check_elements(numbers)

    def score(
        self, crystals: Sequence[Crystal], batch_size: int = 256, include: Iterable[str] | None = None
    ) -> Scores:
        """Score crystals of any compositions.

        Args:
            crystals: the crystals.
            batch_size: crystals per onnxruntime call.
            include: model kinds to run ("dft", "exp", "pu"); all configured ones if None.
        """
        for crystal in crystals:
            self.check_elements(crystal.numbers, include)
        return self._run(_graph_batches(crystals, batch_size, self.k), include)

    def score_same_species(
        self,
        lattices: np.ndarray,
        frac_coords: np.ndarray,
        numbers: np.ndarray,
        batch_size: int = 256,
        include: Iterable[str] | None = None,
    ) -> Scores:
        """Fast path for B crystals sharing one species list (the search's inner loop).

        Args:
            lattices: (B, 3, 3) row lattice vectors, Angstrom.
            frac_coords: (B, n, 3) fractional coordinates.
            numbers: (n,) atomic numbers shared by all crystals.
            batch_size: crystals per onnxruntime call.
            include: model kinds to run ("dft", "exp", "pu"); all configured ones if None.
        """
        self.check_elements(numbers, include)
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        return self._run(_same_species_batches(lattices, frac_coords, numbers, batch_size, self.k), include)
