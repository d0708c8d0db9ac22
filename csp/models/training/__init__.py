"""Training for the ALIGNN models (numpy + torch only, so it runs on the GPU training machine).

Command line (each writes ``DIR/checkpoint.pt`` and ``DIR/metrics.json``)::

    python -m csp.models.training dft --data dft.npz --out runs/dft --device cuda --epochs 300 \
        --batch-size 64 --workers 16 --time-limit-s 520
    python -m csp.models.training transfer --data exp.npz --init runs/dft --out runs/exp --device cuda \
        --epochs 200 --freeze none              # lr defaults to 1e-4 (10x below the DFT run)
    python -m csp.models.training pu --data pu.npz --init runs/dft --out runs/pu --device cuda \
        --epochs 50 --n-bags 100 --time-limit-s 520   # backbone lr x0.1 when --init is given

An enthalpy ensemble (``--ensemble M``: M members of one architecture, each with seed ``seed + m`` and its
own bootstrap resample of the training split; exported as one ONNX graph with the mean, the spread and
every member's prediction)::

    python -m csp.models.training dft --data dft.npz --out runs/dft-ens --device cuda --ensemble 5 ...
    python -m csp.models.training transfer --data exp.npz --init runs/dft-ens --out runs/exp-ens \
        --device cuda ...                        # fine-tunes each of the 5 members

An ensemble trained in stages (GPU sessions too short for all members): ``--member K`` trains member K
alone, exactly as the loop over all N would (seed ``seed + K``, its bootstrap rows, its heads), into an
ordinary one-model run that records ``member`` and keeps its row predictions (``predictions.npz``);
``transfer --init`` on such a run continues it as the same member (more epochs on the same data and
bootstrap rows); ``combine`` joins member runs into the ensemble run that ``--ensemble N`` writes::

    python -m csp.models.training dft --data dft.npz --out runs/m0 --device cuda --ensemble 5 --member 0 ...
    python -m csp.models.training transfer --data dft.npz --init runs/m0 --out runs/m0b --device cuda \
        --lr 3e-4 --epochs 16 ...                 # a later session: member 0 continued
    python -m csp.models.training combine --data dft.npz --runs runs/m0b runs/m1 ... --out runs/dft-ens

Multi-fidelity training: a training set with universal-potential rows (``fidelity`` 1, e.g.
``csp models dataset dft -s gnome ... -s chgnet-0.3.0``) trains one head per fidelity on a shared trunk;
the DFT head is the prediction and the only one exported::

    python -m csp.models.training dft --data dft-mlip.npz --out runs/dft-mf --device cuda \
        --fidelity heads --mlip-weight 0.5 --ensemble 5 ...   # or --fidelity delta / mix
    python -m csp.models.training transfer --data exp.npz --init runs/dft-mf --out runs/exp-mf ...

Then, on a machine with onnxscript: ``python -m csp.models.onnx_export runs/dft onnx_models/<name>``.
"""

from csp.models.training._combine import combine_members
from csp.models.training._data import DatasetGraphs, dataset_graphs
from csp.models.training._loops import (
    ANNEAL_CHOICES,
    FIDELITY_MODES,
    FREEZE_CHOICES,
    PREDICTIONS,
    TrainSettings,
    bag_masks,
    bootstrap_hash,
    bootstrap_rows,
    fidelity_config,
    load_checkpoint,
    predict,
    regression_metrics,
    regression_report,
    row_predictions,
    save_checkpoint,
    spread_metrics,
    train_pu,
    train_regression,
    train_transfer,
    trained_epochs,
)

__all__ = [
    "ANNEAL_CHOICES",
    "FIDELITY_MODES",
    "FREEZE_CHOICES",
    "PREDICTIONS",
    "DatasetGraphs",
    "TrainSettings",
    "bag_masks",
    "bootstrap_hash",
    "bootstrap_rows",
    "combine_members",
    "dataset_graphs",
    "fidelity_config",
    "load_checkpoint",
    "predict",
    "regression_metrics",
    "regression_report",
    "row_predictions",
    "save_checkpoint",
    "spread_metrics",
    "train_pu",
    "train_regression",
    "train_transfer",
    "trained_epochs",
]
