"""ALIGNN models on fixed-degree crystal graphs (torch; no scatter ops, so ONNX export is exact)."""

from csp.models._alignn import ALIGNN, ALIGNNBackbone, BaggedHeads, RegressionHead, graph_tensors
from csp.models._config import SHIPPED_CONFIG, SMALL_CONFIG, ALIGNNConfig

__all__ = [
    "ALIGNN",
    "SHIPPED_CONFIG",
    "SMALL_CONFIG",
    "ALIGNNBackbone",
    "ALIGNNConfig",
    "BaggedHeads",
    "RegressionHead",
    "graph_tensors",
]
