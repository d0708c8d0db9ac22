"""Scoring with the torch models on a GPU (or the CPU): graphs built on the device, the same outputs as ONNX.

The torch path of the scorer (:func:`csp.models.scoring.load_scorer` with ``score_device="cuda"``, or
``backend="torch"``): :class:`TorchModels` is :class:`csp.models.infer.OnnxModels` whose models run as torch
modules on ``device`` and whose graphs are built there too (:mod:`csp.models.device_graphs`), so a batch
goes from lattices and coordinates to enthalpies and P_syn without leaving the GPU.

**Where the weights come from.** A model folder ships ``model.onnx`` (weights embedded, sha256 in
``model.json``) and no torch checkpoint. :func:`module_from_onnx` rebuilds the torch module from it: the
dynamo exporter keeps every parameter's name (``model.backbone.atom_embedding.linear.weight``...) except the
weights of the linear layers applied to rank-3 and rank-4 tensors, which it stores transposed under a
generated name and multiplies with ``MatMul`` before an ``Add`` of the layer's (named) bias; those are
found through that bias. The exporter keeps one copy of identical tensors: buffers the config fixes (the
pair mask, the basis centres, the element-feature table) are taken as built, and an ensemble member's
missing target mean or std is its sibling's (the members share them). Parameters the exported graph never
reads (the edge norm of the last line-graph and last edge-gated layers, whose output nothing uses) are set
to NaN, so that any use would show. Every load then runs the rebuilt module and the
ONNX graph on a few crystals and refuses a difference above :data:`REBUILD_TOLERANCE`, so an exporter that
lays the graph out otherwise is caught at load, never in a campaign. One weight file, checked by one
sha256, serves both paths (no second copy to drift).

**The reference is the ONNX graph with an exact sigmoid.** onnxruntime's CPU ``Sigmoid`` (MLAS) is an
approximation with an absolute error of ~1e-7 that flattens to 0 below x ~ -18 (microsoft/onnxruntime
issue 22557; pytorch/pytorch issue 147508). The edge gates divide by ``sum_j sigma_ij + 1e-6``, so where
every gate of a bond is nearly shut that absolute error becomes a relative one: the shipped models through
onnxruntime differ from the torch models they were exported from (and trained as) by up to 6.3e-3 eV/atom
(median 4e-4) in enthalpy and 1.4e-2 in P_syn on 50 Materials Project structures. With every ``Sigmoid``
node written as ``1 / (1 + exp(-x))`` (:func:`exact_sigmoid_session`) onnxruntime and torch agree to
5e-7 eV/atom; that session is the reference of the load check and of the parity tests. The torch path
gives the trained model's numbers; the onnxruntime path is unchanged (its numbers are the ones every
campaign so far has stored).

**Outputs** are the ONNX model's, by name, from the same module the exporter traced
(``csp.models.onnx_export._ExportModule``): ``dhf`` (B,) eV/atom (an ensemble's mean, with ``dhf_std`` and
``dhf_members``), or ``p_syn_mean``, ``p_syn_std`` (population std over the bags) and ``p_syn_bags``.
They agree with the exact-sigmoid ONNX graph to float32 rounding (``tests/csp/models/test_torch_scoring.py``:
within 1e-4 eV/atom and 1e-4 in P_syn on 50 structures for the shipped models) and with the shipped
onnxruntime session within the sigmoid's error above.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from csp.errors import ModelError
from csp.models.alignn import ALIGNN, ALIGNNEnsemble
from csp.models.config import ALIGNNConfig
from csp.models.device_graphs import DeviceGraphs, build_device_graphs, build_device_graphs_same_species
from csp.models.graphs import CrystalGraphs, build_graphs
from csp.models.infer import OnnxModel, OnnxModels
from csp.structures.crystal import Crystal

__all__ = ["REBUILD_TOLERANCE", "TorchModel", "TorchModels", "exact_sigmoid_session", "module_from_onnx"]

#: largest difference (eV/atom, or probability) allowed between the rebuilt torch module and the ONNX graph
#: (with an exact sigmoid) on the load check's crystals
REBUILD_TOLERANCE = 1e-4
#: buffers that the config fixes (the line graph's pair mask, the basis centres, the element-feature table):
#: taken from the module as built when the file holds no copy under their name
_FIXED_BUFFERS = ("pair_mask", ".centers", "element_features")
_MEMBER = re.compile(r"^model\.members\.\d+\.")  # the prefix of an ensemble member's names


def _initializers(onnx_path: Path) -> tuple[Any, dict[str, np.ndarray]]:
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(onnx_path), load_external_data=True)
    return proto, {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}


def exact_sigmoid_session(onnx_path: Path | str, threads: int = 2) -> Any:
    """An onnxruntime session of ``onnx_path`` with every ``Sigmoid`` node computed as ``1 / (1 + exp(-x))``.

    onnxruntime's own CPU ``Sigmoid`` is an approximation (see the module docstring); this session is what
    the torch path reproduces. The file is not changed (its sha256 stays valid): the graph is rewritten in
    memory.

    Args:
        onnx_path: an exported ``model.onnx``.
        threads: onnxruntime intra-op threads.

    Returns:
        An ``onnxruntime.InferenceSession`` with the file's inputs and outputs.
    """
    import onnx
    import onnxruntime as ort
    from onnx import helper

    proto = onnx.load(str(onnx_path), load_external_data=True)
    one = "exact_sigmoid_one"
    proto.graph.initializer.append(helper.make_tensor(one, onnx.TensorProto.FLOAT, [], [1.0]))
    nodes = []
    for i, node in enumerate(proto.graph.node):
        if node.op_type != "Sigmoid":
            nodes.append(node)
            continue
        x, y, tag = node.input[0], node.output[0], f"exact_sigmoid_{i}"
        nodes += [
            helper.make_node("Neg", [x], [f"{tag}_neg"]),  # -x
            helper.make_node("Exp", [f"{tag}_neg"], [f"{tag}_exp"]),  # exp(-x)
            helper.make_node("Add", [f"{tag}_exp", one], [f"{tag}_den"]),  # 1 + exp(-x)
            helper.make_node("Reciprocal", [f"{tag}_den"], [y]),  # 1 / (1 + exp(-x))
        ]
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def module_from_onnx(onnx_path: Path | str, meta: dict[str, Any]) -> nn.Module:
    """The torch module (in eval mode, on the CPU) whose trace is ``onnx_path``, weights read back from it.

    Args:
        onnx_path: an exported ``model.onnx`` (:mod:`csp.models.onnx_export`).
        meta: its ``model.json`` (``config``; ``n_members`` for an enthalpy ensemble, absent meaning 1).

    Returns:
        The exporter's wrapper around an :class:`~csp.models.alignn.ALIGNN` (or an
        :class:`~csp.models.alignn.ALIGNNEnsemble`): ``forward(numbers, neighbours, bond_vectors,
        crystal_index, natoms)`` gives the ONNX outputs in the order of ``meta["outputs"]`` (a single tensor
        for a single regression model).

    Raises:
        ModelError: the file's graph is not laid out as this exporter lays it out (a weight cannot be
            placed, or has the wrong shape).
    """
    from csp.models.onnx_export import _ExportModule

    onnx_path = Path(onnx_path)
    config = ALIGNNConfig.from_dict(meta["config"])
    members = int(meta.get("n_members", 1))
    inner = ALIGNN(config) if members == 1 else ALIGNNEnsemble(config, members)
    module = _ExportModule(inner).eval()
    proto, arrays = _initializers(onnx_path)
    state = module.state_dict()
    found: dict[str, np.ndarray] = {name: arrays[name] for name in state if name in arrays}
    consumers: dict[str, list[Any]] = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in proto.graph.node:
        # x @ W^T stored as MatMul(x, W^T) -> Add(., "<layer>.bias"): W is the layer's weight
        if node.op_type != "MatMul" or node.input[1] not in arrays or node.input[1] in state:
            continue
        bias = [
            name
            for add in consumers.get(node.output[0], [])
            if add.op_type == "Add"
            for name in add.input
            if name.endswith(".bias") and name in state
        ]
        weight = bias[0][: -len("bias")] + "weight" if len(bias) == 1 else None
        if weight is None or weight in found:  # no named bias, or one shared by two layers: no safe guess
            raise ModelError(
                f"{onnx_path}: the weight {node.input[1]} feeds no linear layer this code can name; the torch "
                "path cannot rebuild this model (score it with score_device='cpu', through onnxruntime)."
            )
        found[weight] = arrays[node.input[1]].T
    # the exporter keeps one copy of identical tensors: the members of an ensemble share their target mean
    # and std (set from the same training rows), so a member's missing one is its sibling's
    for name in state:
        sibling = re.sub(r"^model\.members\.\d+\.", "", name)
        if name not in found and sibling != name:
            copies = [
                v for other, v in found.items() if re.sub(r"^model\.members\.\d+\.", "", other) == sibling
            ]
            if copies:
                found[name] = copies[0]
    loaded = {}
    for name, value in state.items():
        if name in found:
            array = np.asarray(found[name])
            if tuple(array.shape) != tuple(value.shape):
                raise ModelError(
                    f"{onnx_path}: {name} has shape {tuple(array.shape)} in the file but {tuple(value.shape)} in "
                    "the config of model.json; restore the folder or re-export the model."
                )
            loaded[name] = torch.as_tensor(array.copy(), dtype=value.dtype)
        elif name.endswith(_FIXED_BUFFERS):
            loaded[name] = value  # fixed by the config (and the committed element table): as built
        elif value.is_floating_point():
            # not in the graph, so never read (see the module docstring): NaN would show any use
            loaded[name] = torch.full_like(value, torch.nan)
        else:
            loaded[name] = value  # BatchNorm's num_batches_tracked: unused in eval mode
    module.load_state_dict(loaded)
    return module.eval()


class TorchModel(OnnxModel):
    """One exported model run as a torch module on ``device`` (checks, elements and names as :class:`OnnxModel`).

    Args:
        folder: the model folder holding model.onnx and model.json.
        device: torch device ("cuda", "cuda:1", "cpu").
        threads: onnxruntime intra-op threads of the session used by the load check.
        role: ``"dft"``, ``"exp"`` or ``"pu"`` (None: any).
        allow_unseen_elements: score elements with no training rows, with a warning.

    Raises:
        ModelError: the folder fails :func:`csp.models.check.check_model_folder`, onnxruntime cannot open it,
            or the rebuilt module differs from onnxruntime by more than :data:`REBUILD_TOLERANCE`.
    """

    def __init__(
        self,
        folder: Path | str,
        *,
        device: torch.device | str = "cpu",
        threads: int = 2,
        role: str | None = None,
        allow_unseen_elements: bool = False,
    ) -> None:
        super().__init__(folder, threads=threads, role=role, allow_unseen_elements=allow_unseen_elements)
        self.device = torch.device(device)
        self.module = module_from_onnx(self.folder / "model.onnx", self.meta)
        self._check_rebuild()
        self.module.to(self.device)

    def _check_rebuild(self) -> None:
        from csp.models.onnx_export import _example_crystals

        graphs = build_graphs(_example_crystals(), k=self.k)
        feeds = {name: getattr(graphs, name) for name in self.meta["inputs"]}
        session = exact_sigmoid_session(self.folder / "model.onnx")
        want = dict(zip(self.outputs, session.run(self.outputs, feeds), strict=True))
        got = self._run_module(DeviceGraphs.from_numpy(graphs))
        worst = max(float(np.max(np.abs(want[name] - got[name]))) for name in self.outputs)
        if not worst <= REBUILD_TOLERANCE:  # NaN fails too
            raise ModelError(
                f"{self.folder / 'model.onnx'}: the torch module rebuilt from it differs from its ONNX graph by "
                f"{worst:.3g} (allowed {REBUILD_TOLERANCE}); score it with score_device='cpu' (onnxruntime)."
            )

    def _run_module(self, graphs: DeviceGraphs) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = self.module(*graphs.inputs())
        out = (out,) if isinstance(out, torch.Tensor) else out
        return {
            name: t.detach().to("cpu", torch.float32).numpy()
            for name, t in zip(self.outputs, out, strict=True)
        }

    def run_graphs(self, graphs: DeviceGraphs | CrystalGraphs) -> dict[str, np.ndarray]:  # type: ignore[override]
        """Run the module on graphs (numpy graphs are moved to the device); output name -> (B, ...) numpy array.

        Raises:
            ValueError: graphs of another neighbour count than the model's ``k``.
            UnsupportedElementError: an element the model does not support or has no training rows for.
        """
        if graphs.k != self.k:
            raise ValueError(
                f"Model '{self.name}' expects k={self.k} neighbours, the graphs have {graphs.k}."
            )
        if isinstance(graphs, CrystalGraphs):
            graphs = DeviceGraphs.from_numpy(graphs, self.device)
        self.check_elements(torch.unique(graphs.numbers).cpu().numpy())
        return self._run_module(graphs if graphs.device == self.device else graphs.to(self.device))


class TorchModels(OnnxModels):
    """:class:`csp.models.infer.OnnxModels` on torch: models and graph building on ``device``.

    The same interface, checks, errors and outputs as the ONNX scorer (``score``, ``score_same_species``,
    ``check_elements``, ``models``); scores agree to float32 rounding.

    Args:
        dft: folder of the DFT formation-enthalpy model, or None.
        exp: folder of the transfer-learned experimental-enthalpy model, or None.
        pu: folder of the PU synthesizability ensemble, or None.
        device: torch device of the models and the graphs ("cuda", "cuda:N" or "cpu").
        threads: onnxruntime threads of each model's load check.
        allow_unseen_elements: score elements a model has no training rows for, with a warning.
        max_candidates: (atom, neighbour image) pairs per graph-building chunk (default by device type,
            :data:`csp.models.device_graphs.DEFAULT_MAX_CANDIDATES`).

    Raises:
        ModelError: see :class:`TorchModel`.
    """

    def __init__(
        self,
        dft: Path | str | None = None,
        exp: Path | str | None = None,
        pu: Path | str | None = None,
        *,
        device: torch.device | str = "cpu",
        threads: int = 2,
        allow_unseen_elements: bool = False,
        max_candidates: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.max_candidates = max_candidates
        super().__init__(dft, exp, pu, threads=threads, allow_unseen_elements=allow_unseen_elements)

    def _open_model(self, folder: Path | str, **options: Any) -> TorchModel:
        return TorchModel(folder, device=self.device, **options)

    def _graphs(self, crystals: Sequence[Crystal], k: int) -> DeviceGraphs:
        return build_device_graphs(crystals, k, device=self.device, max_candidates=self.max_candidates)

    def _graphs_same_species(
        self, lattices: np.ndarray, frac_coords: np.ndarray, numbers: np.ndarray, k: int
    ) -> DeviceGraphs:
        return build_device_graphs_same_species(
            lattices, frac_coords, numbers, k, device=self.device, max_candidates=self.max_candidates
        )
