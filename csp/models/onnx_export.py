"""Export a trained ALIGNN to a self-describing ``onnx_models/<name>/`` folder.

The folder holds ``model.onnx`` (one self-contained file: weights embedded) and ``model.json``
(config, format version, supported elements, cutoff, k, sha256 of model.onnx, training-data hash,
metrics, input and output names with units). Export uses torch's dynamo exporter, which needs
onnxscript (CPU machine only); the legacy exporter is avoided (see STACK.md).

Inputs of every exported model (N atoms, B crystals, k neighbours):
``numbers`` (N,) int64, ``neighbours`` (N, k) int64, ``bond_vectors`` (N, k, 3) float32,
``crystal_index`` (N,) int64, ``natoms`` (B,) int64.

Outputs: regression models give ``dhf`` (B,) in eV/atom; PU ensembles give ``p_syn_mean`` (B,),
``p_syn_std`` (B,) (population std across bags) and ``p_syn_bags`` (B, n_bags).

An enthalpy ensemble (:class:`~csp.models.alignn.ALIGNNEnsemble` of M members) is ONE graph that runs every
member on the batch and gives ``dhf`` (B,): the members' mean, eV/atom (the same name as a single model's,
so every reader of ``dhf`` works unchanged); ``dhf_std`` (B,): their population standard deviation
sqrt((1/M) sum_m (y_m - mean)^2), eV/atom; and ``dhf_members`` (B, M): each member's prediction, eV/atom.
``model.json`` records ``n_members`` (1 for a single model) and ``output_shapes`` (what each output holds).

A multi-fidelity model (one head per fidelity of its training labels, :class:`~csp.models.alignn.ALIGNN`)
exports its DFT head only (:meth:`~csp.models.alignn.ALIGNN.single_fidelity`; each member's, for an
ensemble): the graph, its inputs and outputs are those of a single-fidelity model, so inference and the
scorer read it unchanged. ``model.json`` records under ``fidelity`` the heads that were trained, the
exported one (``dft``), and the training rows per split and fidelity (the data mix).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from csp.models import ALIGNN, ALIGNNConfig, ALIGNNEnsemble, graph_tensors
from csp.models.alignn import n_members
from csp.models.dataset import DFT, FIDELITIES
from csp.models.features import supported_numbers
from csp.models.graphs import TIE_TOLERANCE, build_graphs
from csp.structures.crystal import Crystal
from csp.structures.validity import GeometryError

FORMAT_VERSION = 1
INPUT_NAMES = ("numbers", "neighbours", "bond_vectors", "crystal_index", "natoms")
REGRESSION_OUTPUTS = {"dhf": "eV/atom"}
ENSEMBLE_OUTPUTS = {"dhf": "eV/atom", "dhf_std": "eV/atom", "dhf_members": "eV/atom"}
PU_OUTPUTS = {"p_syn_mean": "probability", "p_syn_std": "probability", "p_syn_bags": "probability"}
_log = logging.getLogger(__name__)

__all__ = [
    "ENSEMBLE_OUTPUTS",
    "FORMAT_VERSION",
    "export_checkpoint",
    "export_model",
    "file_sha256",
    "output_names",
    "output_shapes",
]


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def output_names(config: ALIGNNConfig, members: int = 1) -> dict[str, str]:
    """Output name -> unit of the exported model for this config (and ``members`` enthalpy members)."""
    if config.task != "regression":
        return dict(PU_OUTPUTS)
    return dict(ENSEMBLE_OUTPUTS if members > 1 else REGRESSION_OUTPUTS)


def output_shapes(config: ALIGNNConfig, members: int = 1) -> dict[str, str]:
    """Output name -> its shape and meaning (B crystals), as written to ``model.json``."""
    if config.task != "regression":
        return {
            "p_syn_mean": "(B,) mean over the bags",
            "p_syn_std": "(B,) population std over the bags",
            "p_syn_bags": f"(B, {config.n_bags}) one column per bag",
        }
    if members > 1:
        return {
            "dhf": f"(B,) mean over the {members} members",
            "dhf_std": f"(B,) population std over the {members} members",
            "dhf_members": f"(B, {members}) one column per member",
        }
    return {"dhf": "(B,) the one model's prediction"}


class _ExportModule(nn.Module):
    """Wraps an ALIGNN (or an enthalpy ensemble) so that its ONNX graph returns the named outputs."""

    def __init__(self, model: ALIGNN | ALIGNNEnsemble) -> None:
        super().__init__()
        self.model = model
        self.task = model.config.task
        self.ensemble = isinstance(model, ALIGNNEnsemble)

    def forward(self, numbers, neighbours, bond_vectors, crystal_index, natoms):
        out = self.model(numbers, neighbours, bond_vectors, crystal_index, natoms)
        if self.ensemble:  # out: (B, M) member enthalpies, eV/atom
            mean = out.mean(dim=1)  # dHf = (1 / M) sum_m y_m
            std = ((out - mean.unsqueeze(1)) ** 2).mean(dim=1).sqrt()  # population std over members
            return mean, std, out
        if self.task == "regression":
            return out
        probs = torch.sigmoid(out)  # p_bk = sigmoid(logit_bk)
        mean = probs.mean(dim=1)  # P_syn = (1 / n_bags) sum_k p_bk
        std = ((probs - mean.unsqueeze(1)) ** 2).mean(dim=1).sqrt()  # spread across bags
        return mean, std, probs


def _example_crystals(count: int = 3) -> list[Crystal]:
    """Small synthetic crystals of different sizes, used only to trace the exporter.

    Positions are redrawn until the graph builder accepts the crystal (the distance rule of
    :mod:`csp.structures.validity`), so tracing never stops on a random overlap.
    """
    rng = np.random.default_rng(0)
    crystals = []
    for n in range(2, 2 + count):
        lattice = np.eye(3) * (2.2 * n ** (1 / 3) + 1.5) + rng.normal(0, 0.2, (3, 3))
        numbers = rng.integers(1, 60, n)
        for _ in range(1000):
            crystal = Crystal(lattice, numbers, rng.random((n, 3)))
            try:
                build_graphs([crystal])
            except GeometryError:
                continue
            break
        else:  # cannot happen for 2-4 atoms in these cells; a clear error if it ever does
            raise RuntimeError("no example crystal for tracing passes the distance rule")
        crystals.append(crystal)
    return crystals


def export_model(
    model: ALIGNN | ALIGNNEnsemble,
    out_dir: Path,
    *,
    metrics: dict[str, Any] | None = None,
    training_data_hash: str | None = None,
    description: str = "",
    fidelity: dict[str, Any] | None = None,
    opset: int = 18,
) -> Path:
    """Export ``model`` to ``out_dir/model.onnx`` + ``out_dir/model.json``.

    Args:
        model: the trained model (moved to CPU, put in eval mode); an enthalpy ensemble becomes one graph
            with ``dhf``, ``dhf_std`` and ``dhf_members`` (see the module docstring).
        out_dir: the model folder, e.g. ``onnx_models/<name>``; created if missing.
        metrics: metrics to record in model.json (units in their names).
        training_data_hash: hash of the training arrays, for lineage.
        description: free text for model.json.
        fidelity: what training recorded of the fidelities (``metrics.json``'s ``fidelity``: heads, data
            mix); None records the heads of ``model`` only.
        opset: ONNX opset.

    Returns:
        Path of model.json.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu").eval()
    trained_config = model.config
    if trained_config.task == "regression":  # the DFT head alone: the graph of a single-fidelity model
        model = model.single_fidelity().eval()
    wrapper = _ExportModule(model).eval()
    example = graph_tensors(build_graphs(_example_crystals(), k=model.config.k))
    atoms = torch.export.Dim("atoms", min=2)
    crystals = torch.export.Dim("crystals", min=1)
    dynamic_shapes = (
        {0: atoms},
        {0: atoms},
        {0: atoms},
        {0: atoms},
        {0: crystals},
    )
    members = n_members(model)
    names = output_names(model.config, members)
    onnx_path = out_dir / "model.onnx"
    with torch.no_grad():
        program = torch.onnx.export(
            wrapper,
            example,
            input_names=list(INPUT_NAMES),
            output_names=list(names),
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        program.save(str(onnx_path))
    _make_self_contained(onnx_path)
    heads = {"heads": list(FIDELITIES[: trained_config.fidelities]), "exported_head": FIDELITIES[DFT]}
    meta = {
        "format_version": FORMAT_VERSION,
        "config": trained_config.to_dict(),
        "task": model.config.task,
        "elements": list(supported_numbers()),
        "k": model.config.k,
        "cutoff_angstrom": model.config.cutoff,
        "tie_tolerance_angstrom": TIE_TOLERANCE,
        "inputs": list(INPUT_NAMES),
        "outputs": names,
        "output_shapes": output_shapes(model.config, members),
        "n_members": members,
        "sha256": file_sha256(onnx_path),
        "training_data_hash": training_data_hash,
        "metrics": metrics or {},
        "description": description,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
    }
    if trained_config.task == "regression":
        meta["fidelity"] = {**heads, **(fidelity or {})}
    json_path = out_dir / "model.json"
    json_path.write_text(json.dumps(meta, indent=2) + "\n")
    _log.info("exported %s (%s)", onnx_path, meta["sha256"][:12])
    return json_path


def _make_self_contained(onnx_path: Path) -> None:
    """Re-save with every initializer embedded and remove any external-data file."""
    import onnx

    proto = onnx.load(str(onnx_path), load_external_data=True)
    # the exporter records Python stack traces (with the exporting machine's file paths) per node
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for value in list(proto.graph.value_info) + list(proto.graph.input) + list(proto.graph.output):
        del value.metadata_props[:]
    onnx.save_model(proto, str(onnx_path), save_as_external_data=False)
    for extra in onnx_path.parent.glob(onnx_path.name + ".data"):
        extra.unlink()


def export_checkpoint(checkpoint_dir: Path, out_dir: Path, *, description: str = "") -> Path:
    """Export a training run folder (``checkpoint.pt`` + ``metrics.json``) to an ONNX model folder.

    Args:
        checkpoint_dir: folder written by ``python -m csp.models.training``.
        out_dir: the model folder, e.g. ``onnx_models/<name>``.
        description: free text for model.json.

    Returns:
        Path of model.json.
    """
    from csp.models.training import load_checkpoint

    model, info = load_checkpoint(Path(checkpoint_dir))
    return export_model(
        model,
        out_dir,
        metrics=info.get("metrics", {}),
        training_data_hash=info.get("training_data_hash"),
        description=description or info.get("description", ""),
        fidelity=info.get("fidelity"),
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m csp.models.onnx_export RUN_DIR onnx_models/<name> [--description TEXT]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m csp.models.onnx_export", description=main.__doc__)
    parser.add_argument("run_dir", type=Path, help="folder with checkpoint.pt + metrics.json")
    parser.add_argument("out_dir", type=Path, help="model folder to write, e.g. onnx_models/<name>")
    parser.add_argument("--description", default="")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    export_checkpoint(args.run_dir, args.out_dir, description=args.description)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
