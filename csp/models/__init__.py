"""The learned models: crystal graphs, the ALIGNN network, training, ONNX export and inference.

What it holds
    :mod:`~csp.models.graphs` (fixed-degree crystal graphs, numpy), :mod:`~csp.models.features` (element
    features), :mod:`~csp.models.alignn` and :mod:`~csp.models.config` (the torch network, its enthalpy
    ensemble ``ALIGNNEnsemble``, its fidelity heads, and its one validated config), :mod:`~csp.models.training`
    (DFT, transfer and PU training loops; ``--ensemble M`` trains M enthalpy members, ``--fidelity`` one head
    per fidelity of the labels: DFT and universal-potential), :mod:`~csp.models.dataset` (training arrays,
    a fidelity per row), :mod:`~csp.models.onnx_export`, :mod:`~csp.models.infer`
    (warm onnxruntime sessions), :mod:`~csp.models.device_graphs` and :mod:`~csp.models.torch_scoring` (the
    same graphs built in torch on a GPU, and the torch models rebuilt from ``model.onnx`` to score there),
    :mod:`~csp.models.scoring` (the enthalpy + P_syn scorer the search uses, on ``score_device``),
    :mod:`~csp.models.check` and :mod:`~csp.models.names` (model folders: integrity and names).

What it may import
    :mod:`csp.structures` and :mod:`csp.errors`; never the search, the potentials, ``storage`` or
    ``flows`` (``tests/csp/test_house.py`` holds the rule).

``from csp.models import ALIGNN, ALIGNNConfig`` loads torch on first use only, so the ONNX scoring path
(:mod:`csp.models.infer`) never pays for it (``score_device="auto"`` imports torch to look for a GPU).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ALIGNN": "csp.models.alignn",
    "ALIGNNBackbone": "csp.models.alignn",
    "ALIGNNEnsemble": "csp.models.alignn",
    "BaggedHeads": "csp.models.alignn",
    "RegressionHead": "csp.models.alignn",
    "graph_tensors": "csp.models.alignn",
    "ALIGNNConfig": "csp.models.config",
    "SHIPPED_CONFIG": "csp.models.config",
    "SMALL_CONFIG": "csp.models.config",
}

__all__ = [
    "ALIGNN",
    "SHIPPED_CONFIG",
    "SMALL_CONFIG",
    "ALIGNNBackbone",
    "ALIGNNConfig",
    "ALIGNNEnsemble",
    "BaggedHeads",
    "RegressionHead",
    "graph_tensors",
]

if TYPE_CHECKING:
    from csp.models.alignn import (
        ALIGNN,
        ALIGNNBackbone,
        ALIGNNEnsemble,
        BaggedHeads,
        RegressionHead,
        graph_tensors,
    )
    from csp.models.config import SHIPPED_CONFIG, SMALL_CONFIG, ALIGNNConfig


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'csp.models' has no attribute {name!r}")
