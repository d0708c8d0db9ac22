"""Batched scoring through onnxruntime, one warm session per model folder.

A model folder (``onnx_models/<name>/``) holds ``model.onnx`` and ``model.json`` (written by
:mod:`csp.models.onnx_export`). Loading runs :func:`csp.models.check.check_model_folder` (files, JSON, sha256,
task and outputs for the folder's role) and refuses a file onnxruntime cannot open, each with a
:class:`~csp.errors.ModelError` naming the file. Crystals with an element the model has no training rows
for (``training_elements`` in model.json) are refused with :class:`UnsupportedElementError`, or scored
with a warning when ``allow_unseen_elements`` is set. Geometry the models never saw (overlapping atoms, a
12th neighbour beyond :data:`csp.structures.validity.MAX_KTH_NEIGHBOUR_ANGSTROM`) is refused with
:class:`csp.structures.validity.GeometryError`.

:class:`Scorer` combines up to three models: DFT enthalpy (``dhf_dft``), the transfer-learned
experimental enthalpy (``dhf_exp``) and the PU synthesizability ensemble (``p_syn`` mean and std).

Either enthalpy model may be an ensemble (``n_members`` >= 2 in its model.json, exported by
:mod:`csp.models.onnx_export` as one graph): its ``dhf`` is the members' mean and ``dhf_dft_std`` /
``dhf_exp_std`` their population standard deviation, eV/atom. A single model (the shipped ones, whose
model.json records no ``n_members``) gives a spread of 0.0: one member has no spread, which says nothing
about how sure the model is.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from csp.errors import InputError, ModelError
from csp.models.check import ModelIntegrityError, check_model_folder, sha256_of, training_element_counts
from csp.models.graphs import CrystalGraphs, build_graphs, build_graphs_same_species
from csp.structures.crystal import Crystal
from csp.structures.elements import symbol
from csp.structures.validity import MAX_VACUUM_ANGSTROM, GeometryError, GeometryWarning, largest_vacuum

__all__ = [
    "ModelIntegrityError",
    "OnnxModel",
    "Scorer",
    "Scores",
    "UnseenElementWarning",
    "UnsupportedElementError",
]


class UnsupportedElementError(InputError):
    """A crystal contains an element the model was not built for or has no training rows for."""


class UnseenElementWarning(UserWarning):
    """Scoring an element the model has no training rows for (``allow_unseen_elements`` was set)."""


_sha256 = sha256_of  # kept for callers of the old private name


class OnnxModel:
    """One exported model with a warm onnxruntime session.

    Args:
        folder: the model folder holding model.onnx and model.json.
        threads: onnxruntime intra-op threads.
        role: ``"dft"``, ``"exp"`` or ``"pu"``: the task and outputs the caller needs (None: any).
        allow_unseen_elements: score elements with no training rows, warning
            (:class:`UnseenElementWarning`) instead of refusing.

    Raises:
        ModelError: (and its subclasses) see :func:`csp.models.check.check_model_folder`; also when
            onnxruntime cannot load model.onnx.
    """

    def __init__(
        self,
        folder: Path | str,
        *,
        threads: int = 2,
        role: str | None = None,
        allow_unseen_elements: bool = False,
    ) -> None:
        import onnxruntime as ort

        self.folder = Path(folder)
        onnx_path = self.folder / "model.onnx"
        self.meta: dict[str, Any] = check_model_folder(self.folder, role)
        self.k: int = int(self.meta["k"])
        self.task: str = self.meta["task"]
        self.outputs: list[str] = list(self.meta["outputs"])
        #: members of an enthalpy ensemble (1 for a single model and for every PU model)
        self.n_members: int = int(self.meta.get("n_members", 1))
        self.allow_unseen_elements = allow_unseen_elements
        self._allowed = np.zeros(119, dtype=bool)
        self._allowed[np.asarray(self.meta["elements"], dtype=np.int64)] = True
        #: atomic number -> training rows containing it (None: the model.json records no counts)
        self.training_counts: dict[int, int] | None = None
        counts = training_element_counts(self.meta, self.folder / "model.json")
        if counts is not None:
            from csp.structures.elements import atomic_number, is_supported_symbol

            # elements outside csp's table (e.g. Cf in the PU set) cannot be scored anyway
            self.training_counts = {atomic_number(s): n for s, n in counts.items() if is_supported_symbol(s)}
        self._seen = self._allowed.copy()
        if self.training_counts is not None:
            self._seen[:] = False
            seen = [z for z, n in self.training_counts.items() if n > 0]
            self._seen[np.asarray(seen, dtype=np.int64)] = True
            self._seen &= self._allowed
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # idle threads sleep instead of spinning: the search interleaves scoring with numpy and torch work
        # on the same cores, where spinning threads only take CPU from it (predictions are unchanged)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own pybind error types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"{onnx_path} cannot be loaded by onnxruntime ({first[:200]}); the file is truncated or "
                "corrupt: restore it or re-export the model."
            ) from exc

    @property
    def name(self) -> str:
        return self.folder.name

    def check_elements(self, numbers: np.ndarray) -> None:
        """Refuse atomic numbers outside the element list or with no training rows.

        Raises:
            UnsupportedElementError: for an atomic number outside 1-118 or the model's feature table, or
                one with zero training rows (unless ``allow_unseen_elements``, which warns instead).
        """
        numbers = np.asarray(numbers, dtype=np.int64).reshape(-1)
        bad = numbers[(numbers < 1) | (numbers > 118)]
        if len(bad) == 0:
            bad = numbers[~self._allowed[numbers]]
        if len(bad):
            raise UnsupportedElementError(
                f"Model '{self.name}' does not support atomic number(s) {sorted(set(bad.tolist()))}; "
                "remove those structures or use a model trained on these elements."
            )
        unseen = sorted(set(numbers[~self._seen[numbers]].tolist()))
        if unseen:
            names = ", ".join(f"{symbol(z)} ({z})" for z in unseen)
            if not self.allow_unseen_elements:
                raise UnsupportedElementError(
                    f"Model '{self.name}' has no training rows containing {names}: its predictions there are "
                    "guesses; remove the element or pass allow_unseen_elements=True "
                    "(--allow-unseen-elements) to score it with a warning."
                )
            warnings.warn(
                f"Model '{self.name}' has no training rows containing {names}; scoring anyway "
                "(allow_unseen_elements).",
                UnseenElementWarning,
                stacklevel=3,
            )

    def training_rows(self, z: int) -> int | None:
        """Training rows containing atomic number ``z`` (None when the model.json records no counts)."""
        if self.training_counts is None:
            return None
        return int(self.training_counts.get(int(z), 0))

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
        """Score crystals in batches; returns output name -> array over all crystals (empty in, empty out)."""
        results = [self.run_graphs(g) for g in _graph_batches(crystals, batch_size, self.k)]
        if not results:
            return {name: np.zeros(0, dtype=np.float32) for name in self.outputs}
        return {name: np.concatenate([r[name] for r in results]) for name in self.outputs}


def _graph_batches(
    crystals: Sequence[Crystal],
    batch_size: int,
    k: int,
    ids: Sequence[str] | None = None,
    build: Callable[..., Any] = build_graphs,
) -> Iterable[CrystalGraphs]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    if ids is not None and len(ids) != len(crystals):
        raise InputError(f"{len(ids)} ids were given for {len(crystals)} crystals.")
    for start in range(0, len(crystals), batch_size):
        try:
            yield build(crystals[start : start + batch_size], k)
        except GeometryError as exc:
            index = start + exc.index
            named = exc.named(str(ids[index])) if ids is not None else GeometryError(exc.detail, index=index)
            raise named from None


def _same_species_batches(
    lattices,
    frac_coords,
    numbers,
    batch_size: int,
    k: int,
    build: Callable[..., Any] = build_graphs_same_species,
) -> Iterable[CrystalGraphs]:
    lattices = np.asarray(lattices, dtype=np.float64).reshape(-1, 3, 3)
    if len(lattices) == 0:
        return
    frac = np.asarray(frac_coords, dtype=np.float64).reshape(len(lattices), -1, 3)
    for start in range(0, len(lattices), batch_size):
        stop = start + batch_size
        try:
            yield build(lattices[start:stop], frac[start:stop], numbers, k)
        except GeometryError as exc:
            raise GeometryError(exc.detail, index=start + exc.index) from None


@dataclass(frozen=True)
class Scores:
    """Per-crystal scores; a field is None when its model is not configured or not requested.

    Attributes:
        dhf_dft: formation enthalpy from the DFT-trained model, eV/atom (an ensemble's: the members' mean).
        dhf_exp: formation enthalpy from the transfer-learned (experimental) model, eV/atom (likewise).
        p_syn: synthesizability probability, mean over the PU bags.
        p_syn_std: spread (std) of the bag probabilities.
        dhf_dft_std: spread of ``dhf_dft``: population std over the ensemble's members, eV/atom; 0.0 for a
            single model.
        dhf_exp_std: spread of ``dhf_exp`` (likewise).
    """

    dhf_dft: np.ndarray | None = None
    dhf_exp: np.ndarray | None = None
    p_syn: np.ndarray | None = None
    p_syn_std: np.ndarray | None = None
    dhf_dft_std: np.ndarray | None = None
    dhf_exp_std: np.ndarray | None = None


_KINDS = ("dft", "exp", "pu")
_SCORE_NAMES = ("dhf_dft", "dhf_exp", "p_syn", "p_syn_std", "dhf_dft_std", "dhf_exp_std")


class OnnxModels:
    """Combined scoring with up to three warm models; graphs are built once per batch.

    (Called ``Scorer`` before; that name stays as an alias for one release. The search's scorer is
    :class:`csp.models.scoring.ModelScorer`, which :func:`csp.models.scoring.load_scorer` builds over this.)

    Args:
        dft: folder of the DFT formation-enthalpy model, or None.
        exp: folder of the transfer-learned experimental-enthalpy model, or None.
        pu: folder of the PU synthesizability ensemble, or None.
        threads: onnxruntime intra-op threads per session.
        allow_unseen_elements: score elements a model has no training rows for, with a warning.

    Raises:
        ModelError: a folder fails :func:`csp.models.check.check_model_folder` for its role (a PU model in
            the dft slot, a corrupt or truncated file, a missing sha256), before anything is scored.
    """

    def __init__(
        self,
        dft: Path | str | None = None,
        exp: Path | str | None = None,
        pu: Path | str | None = None,
        *,
        threads: int = 2,
        allow_unseen_elements: bool = False,
    ) -> None:
        self.models: dict[str, OnnxModel] = {}
        for kind, folder in zip(_KINDS, (dft, exp, pu), strict=True):
            if folder is not None:
                self.models[kind] = self._open_model(
                    folder, threads=threads, role=kind, allow_unseen_elements=allow_unseen_elements
                )
        if not self.models:
            raise InputError("OnnxModels needs at least one model folder (dft, exp or pu).")
        ks = {m.k for m in self.models.values()}
        if len(ks) != 1:
            raise InputError(f"The configured models use different neighbour counts {sorted(ks)}.")
        self.k = ks.pop()

    def _open_model(self, folder: Path | str, **options: Any) -> OnnxModel:
        """One warm model (:class:`csp.models.torch_scoring.TorchModels` opens torch ones here)."""
        return OnnxModel(folder, **options)

    def _graphs(self, crystals: Sequence[Crystal], k: int) -> Any:
        """The graphs of a batch of crystals (numpy here; the torch scorer builds them on its device)."""
        return build_graphs(crystals, k=k)

    def _graphs_same_species(
        self, lattices: np.ndarray, frac_coords: np.ndarray, numbers: np.ndarray, k: int
    ) -> Any:
        """The graphs of a batch of cells sharing one species list (numpy here, as :meth:`_graphs`)."""
        return build_graphs_same_species(lattices, frac_coords, numbers, k=k)

    def _select(self, include: Iterable[str] | None) -> list[str]:
        if include is None:
            return list(self.models)
        chosen = list(include)
        unknown = [kind for kind in chosen if kind not in _KINDS]
        if unknown:
            raise InputError(f"Unknown model kind(s) {unknown}; choose from {_KINDS}.")
        return [kind for kind in chosen if kind in self.models]

    def _run(self, batches: Iterable[CrystalGraphs], include: Iterable[str] | None) -> Scores:
        kinds = self._select(include)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in _SCORE_NAMES}
        for graphs in batches:
            for kind in kinds:
                out = self.models[kind].run_graphs(graphs)
                if kind in ("dft", "exp"):
                    parts[f"dhf_{kind}"].append(out["dhf"])
                    # a single model has no spread: 0.0 (its model.json says n_members 1, or nothing)
                    parts[f"dhf_{kind}_std"].append(out.get("dhf_std", np.zeros_like(out["dhf"])))
                else:
                    parts["p_syn"].append(out["p_syn_mean"])
                    parts["p_syn_std"].append(out["p_syn_std"])
        requested = {
            "dft": ["dhf_dft", "dhf_dft_std"],
            "exp": ["dhf_exp", "dhf_exp_std"],
            "pu": ["p_syn", "p_syn_std"],
        }
        wanted = {name for kind in kinds for name in requested[kind]}
        return Scores(
            **{
                name: np.concatenate(v) if v else (np.zeros(0, dtype=np.float32) if name in wanted else None)
                for name, v in parts.items()
            }
        )

    def check_elements(self, numbers: np.ndarray, include: Iterable[str] | None = None) -> None:
        """Raise :class:`UnsupportedElementError` if any selected model refuses these atomic numbers."""
        for kind in self._select(include):
            self.models[kind].check_elements(numbers)

    def score(
        self,
        crystals: Sequence[Crystal],
        batch_size: int = 256,
        include: Iterable[str] | None = None,
        ids: Sequence[str] | None = None,
    ) -> Scores:
        """Score crystals of any compositions.

        Args:
            crystals: the crystals (none gives empty (0,) arrays for the requested models).
            batch_size: crystals per onnxruntime call.
            include: model kinds to run ("dft", "exp", "pu"); all configured ones if None.
            ids: optional names of the crystals, used in error messages.

        Raises:
            UnsupportedElementError: an element a model does not support or has no training rows for.
            GeometryError: overlapping atoms or a 12th neighbour beyond what the models saw (names the
                crystal by its id, else by its position).

        Warns:
            GeometryWarning: a crystal with an empty slab wider than ``MAX_VACUUM_ANGSTROM`` (scored, but
                the graph cannot see across the vacuum).
        """
        for i, crystal in enumerate(crystals):
            self.check_elements(crystal.numbers, include)
            gap = largest_vacuum(crystal.lattice, crystal.frac_coords)
            if gap > MAX_VACUUM_ANGSTROM:
                name = f"structure {ids[i]}" if ids is not None else f"crystal {i} of the batch"
                warnings.warn(
                    f"{name}: an empty slab {gap:.1f} A thick; the {self.k}-neighbour graph cannot see across "
                    "it, so the prediction is that of the isolated layer or molecule.",
                    GeometryWarning,
                    stacklevel=2,
                )
        return self._run(_graph_batches(crystals, batch_size, self.k, ids, self._graphs), include)

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
            raise InputError(f"batch_size must be positive, got {batch_size}.")
        batches = _same_species_batches(
            lattices, frac_coords, numbers, batch_size, self.k, self._graphs_same_species
        )
        return self._run(batches, include)


#: the earlier name of :class:`OnnxModels` (kept for one release)
Scorer = OnnxModels
