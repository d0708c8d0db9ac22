"""Training for the ALIGNN models (numpy + torch only, so it runs on the GPU training machine).

Command line: ``python -m csp.training {dft,transfer,pu} --data X.npz --out DIR ...``.
"""

from csp.training._data import DatasetGraphs, dataset_graphs
from csp.training._loops import (
    FREEZE_CHOICES,
    TrainSettings,
    bag_masks,
    load_checkpoint,
    predict,
    regression_metrics,
    save_checkpoint,
    train_pu,
    train_regression,
    train_transfer,
)

__all__ = [
    "FREEZE_CHOICES",
    "DatasetGraphs",
    "TrainSettings",
    "bag_masks",
    "dataset_graphs",
    "load_checkpoint",
    "predict",
    "regression_metrics",
    "save_checkpoint",
    "train_pu",
    "train_regression",
    "train_transfer",
]
