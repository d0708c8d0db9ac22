"""Training loops: DFT regression, transfer learning, and the PU synthesizability ensemble.

All three run on CPU or CUDA (``TrainSettings.device``), are seeded, stop early at
``time_limit_s``, and return the trained model plus an ``info`` dictionary (configs, metrics,
training-data hash, history) that :func:`save_checkpoint` writes beside the weights.

The two enthalpy modes also train an ensemble (``ensemble=M``, ``--ensemble M``): M members of one
architecture, member m seeded with ``seed + m`` (weights, shuffling) and trained on its own bootstrap
resample of the training split (as many rows as the split, drawn with replacement); the validation rows
that stop each member early are the same for all. Fine-tuning an ensemble fine-tunes each member on its
own bootstrap of the experimental training rows. The result is one
:class:`~csp.models.alignn.ALIGNNEnsemble` whose prediction is the members' mean and whose spread is their
population standard deviation (eV/atom); ``metrics.json`` records ``n_members``, each member's seed,
rows and history, and how the spread relates to the error on held-out rows. ``member=K`` trains (or
fine-tunes) member K alone, exactly as the loop would, for ensembles trained in stages and joined by
:func:`~csp.models.training.combine_members`.

Multi-fidelity training (rows of :attr:`~csp.models.dataset.CrystalArrays.fidelity` 1, universal-potential
labels, beside the DFT rows 0): :func:`fidelity_config` gives the model one head per fidelity (``"heads"``
or ``"delta"``, :class:`~csp.models.alignn.ALIGNN`) or one head for all rows (``"mix"``). Each row's loss
goes through its own fidelity's head, standardised by that head's target spread and weighted by
``TrainSettings.mlip_weight`` for mlip rows:

    L = (1 / n) sum_i w_i ((y_hat_{i, f_i} - y_i) / sigma_{f_i})^2,   w_i = 1 (DFT) or mlip_weight (mlip).

Early stopping watches the DFT head on the DFT validation rows; the reported headline metrics of a
dataset with mlip rows are those of the DFT head on the DFT rows (``per_fidelity`` adds the mlip head on
the mlip rows), and an ensemble gives every member its own heads. Experiment fine-tuning
(:func:`train_transfer` on DFT-fidelity rows) continues from the DFT head and drops the others.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from csp.errors import InputError, ModelNotFoundError
from csp.models import ALIGNN, ALIGNNConfig, ALIGNNEnsemble
from csp.models.alignn import n_members
from csp.models.dataset import (
    DFT,
    FIDELITIES,
    TEST,
    TRAIN,
    VALIDATION,
    CrystalArrays,
    compositions_in_two_splits,
)
from csp.models.pu_polymorphs import composition_keys, polymorph_discrimination, sibling_rows
from csp.models.training._data import DatasetGraphs, dataset_graphs

_log = logging.getLogger("csp.models.training")
Progress = Callable[[str], None]
Model = ALIGNN | ALIGNNEnsemble
FREEZE_CHOICES = ("none", "embeddings", "alignn")
#: how a model learns from rows of several fidelities: a head per fidelity ("heads": separate MLPs;
#: "delta": the DFT head plus a correction per fidelity) or one head for every row ("mix")
FIDELITY_MODES = ("heads", "delta", "mix")
ANNEAL_CHOICES = ("epochs", "time")
_SPLIT_NAMES = {TRAIN: "train", VALIDATION: "validation", TEST: "test"}


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings shared by the three training modes.

    Attributes:
        epochs: maximum number of passes over the training rows.
        batch_size: crystals per optimisation step.
        lr: AdamW learning rate of the heads (and of the backbone times ``backbone_lr_scale``).
        weight_decay: AdamW weight decay.
        patience: epochs without validation improvement before stopping (regression only).
        device: "cpu" or "cuda" (or "cuda:N").
        seed: seeds torch and numpy (shuffling, PU bag draws).
        time_limit_s: wall-clock budget for the whole run (graphs included); None for no limit.
        freeze: transfer only: "none", "embeddings", or "alignn" (embeddings and ALIGNN layers frozen).
        backbone_lr_scale: learning-rate factor for the backbone (pretrained backbones learn slower).
        workers: processes for graph building.
        graph_cache: optional .npz path caching the dataset's graphs.
        eval_batch_size: crystals per evaluation step.
        grad_clip: gradient-norm clip.
        pu_siblings_every_bag: PU only: every bag's unlabeled draw holds all training unlabeled rows that
            share a composition with a positive (its polymorph siblings), the rest drawn at random as before.
        mlip_weight: loss weight of rows of fidelity mlip (universal-potential labels) against 1 for DFT
            rows; regression only.
        anneal: how the learning rate falls to zero on a cosine: "epochs" (over ``epochs``, stepped once
            an epoch; a run stopped by its time limit never reaches the low rates) or "time" (over the
            run's time limit, stepped every optimisation step: the rate reaches zero when the time is up,
            however fast the device; needs ``time_limit_s``).
    """

    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-5
    patience: int = 15
    device: str = "cpu"
    seed: int = 0
    time_limit_s: float | None = None
    freeze: str = "none"
    backbone_lr_scale: float = 1.0
    workers: int = 1
    graph_cache: str | None = None
    eval_batch_size: int = 256
    grad_clip: float = 5.0
    pu_siblings_every_bag: bool = False
    mlip_weight: float = 1.0
    anneal: str = "epochs"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "workers", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"TrainSettings.{name} must be at least 1, got {getattr(self, name)}.")
        for name in ("lr", "backbone_lr_scale", "grad_clip", "mlip_weight"):
            if not getattr(self, name) > 0:
                raise InputError(f"TrainSettings.{name} must be positive, got {getattr(self, name)}.")
        if self.weight_decay < 0:
            raise InputError(f"TrainSettings.weight_decay must be >= 0, got {self.weight_decay}.")
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            raise InputError(f"TrainSettings.time_limit_s must be positive or None, got {self.time_limit_s}.")
        if self.freeze not in FREEZE_CHOICES:
            raise InputError(f"TrainSettings.freeze must be one of {FREEZE_CHOICES}, got {self.freeze!r}.")
        if self.anneal not in ANNEAL_CHOICES:
            raise InputError(f"TrainSettings.anneal must be one of {ANNEAL_CHOICES}, got {self.anneal!r}.")
        if self.anneal == "time" and self.time_limit_s is None:
            raise InputError("TrainSettings.anneal='time' anneals over the time limit: set time_limit_s too.")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise InputError(f"TrainSettings.device must be 'cpu' or 'cuda[:N]', got {self.device!r}.")


class _Clock:
    def __init__(self, limit: float | None) -> None:
        self.start = time.monotonic()
        self.limit = limit

    def share(self, parts_left: int) -> _Clock:
        """A clock for the next of ``parts_left`` parts: an equal share of the time that is left."""
        if self.limit is None:
            return _Clock(None)
        return _Clock(max(self.limit - self.elapsed, 0.0) / max(parts_left, 1))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def expired(self) -> bool:
        return self.limit is not None and self.elapsed >= self.limit


class _Schedule:
    """The cosine learning-rate schedule of one training loop: lr_t = lr_0 (1 + cos(pi f)) / 2 with
    f = epochs done / ``settings.epochs`` (``anneal="epochs"``, stepped after each epoch) or f = the
    fraction of ``clock``'s time limit used (``anneal="time"``, set before each optimisation step)."""

    def __init__(self, optimizer: torch.optim.Optimizer, settings: TrainSettings, clock: _Clock) -> None:
        self.optimizer, self.clock = optimizer, clock
        self.by_time = settings.anneal == "time" and clock.limit is not None
        self.base = [group["lr"] for group in optimizer.param_groups]
        self.by_epoch = (
            None if self.by_time else torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
        )

    def before_step(self) -> None:
        if not self.by_time:
            return
        f = min(self.clock.elapsed / max(float(self.clock.limit), 1e-9), 1.0)
        for group, base in zip(self.optimizer.param_groups, self.base, strict=True):
            group["lr"] = base * 0.5 * (1.0 + math.cos(math.pi * f))

    def after_epoch(self) -> None:
        if self.by_epoch is not None:
            self.by_epoch.step()


def _say(progress: Progress | None, message: str) -> None:
    _log.info(message)
    if progress is not None:
        progress(message)


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.benchmark = False


def _optimise(model: ALIGNN, optimizer: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float) -> float:
    """One optimiser step on ``loss`` with gradient-norm clipping; returns the loss value."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return float(loss.detach())


def _split_rows(arrays: CrystalArrays, split: int) -> np.ndarray:
    return np.flatnonzero(arrays.split == split)


def fidelity_config(config: ALIGNNConfig, arrays: CrystalArrays, mode: str = "heads") -> ALIGNNConfig:
    """The regression config for training on ``arrays``: its number of fidelity heads set from the data.

    Args:
        config: the architecture (its ``fidelities`` and ``fidelity_heads`` are replaced).
        arrays: the training arrays; their highest ``fidelity`` decides the number of heads.
        mode: ``"heads"`` (one separate head per fidelity), ``"delta"`` (the DFT head plus a correction
            head per further fidelity) or ``"mix"`` (one head for every row: the labels mixed in one target).

    Returns:
        ``config`` with ``fidelities`` = highest fidelity + 1; 1 for ``"mix"`` or data of one fidelity only
        (all-DFT, or labels alone when asked for explicitly: one head learns what there is).

    Raises:
        InputError: an unknown ``mode``.
    """
    if mode not in FIDELITY_MODES:
        raise InputError(f"The fidelity mode must be one of {FIDELITY_MODES}, got {mode!r}.")
    count = int(arrays.fidelity.max()) + 1 if len(arrays) else 1
    if mode == "mix" or count == 1 or len(np.unique(arrays.fidelity)) == 1:
        return replace(config, fidelities=1, fidelity_heads="separate")
    return replace(config, fidelities=count, fidelity_heads="separate" if mode == "heads" else "delta")


def _routes(config: ALIGNNConfig, arrays: CrystalArrays) -> np.ndarray:
    """(S,) int64 head of each row: its fidelity for a multi-fidelity model, 0 (the one head) otherwise."""
    if config.fidelities == 1:
        return np.zeros(len(arrays), dtype=np.int64)
    if len(arrays) and int(arrays.fidelity.max()) >= config.fidelities:
        raise InputError(
            f"The data hold rows of fidelity {FIDELITIES[int(arrays.fidelity.max())]!r} but the model has "
            f"heads for {list(FIDELITIES[: config.fidelities])} only; train it with those rows from scratch."
        )
    return arrays.fidelity.astype(np.int64)


def _eval_rows(arrays: CrystalArrays, split: int) -> np.ndarray:
    """Rows of ``split`` that metrics and early stopping watch: its DFT rows, or all its rows if it has none."""
    rows = _split_rows(arrays, split)
    dft = rows[arrays.fidelity[rows] == DFT]
    return dft if len(dft) else rows


@torch.no_grad()
def predict(
    model: Model,
    graphs: DatasetGraphs,
    index: np.ndarray,
    batch_size: int = 256,
    fidelity: np.ndarray | None = None,
) -> np.ndarray:
    """Model outputs for the structures at ``index``: regression (n,) eV/atom, an ensemble (n, M) eV/atom
    (one column per member), PU (n, n_bags) logits.

    ``fidelity`` (n,) picks each row's head of a multi-fidelity model (0 DFT, 1 mlip); None (or a
    single-fidelity model) predicts with the DFT head, as inference does.
    """
    model.eval()
    device = next(model.parameters()).device
    routed = fidelity is not None and model.config.fidelities > 1
    heads = torch.from_numpy(np.asarray(fidelity, dtype=np.int64)).to(device) if routed else None

    def run(s: int) -> np.ndarray:
        inputs = graphs.batch(index[s : s + batch_size], device)
        chosen = heads[s : s + batch_size] if heads is not None else None
        return model(*inputs, fidelity=chosen).float().cpu().numpy()

    outs = [run(s) for s in range(0, len(index), batch_size)]
    if not outs:
        if isinstance(model, ALIGNNEnsemble):
            return np.zeros((0, model.n_members), dtype=np.float32)
        shape = (0,) if model.config.task == "regression" else (0, model.config.n_bags)
        return np.zeros(shape, dtype=np.float32)
    return np.concatenate(outs)


def regression_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """MAE (eV/atom), RMSE (eV/atom), R2 and count."""
    if len(target) == 0:
        return {"count": 0}
    err = pred - target
    ss_tot = float(((target - target.mean()) ** 2).sum())
    r2 = 1.0 - float((err**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return {
        "count": len(target),
        "mae_ev_per_atom": float(np.abs(err).mean()),
        "rmse_ev_per_atom": float(np.sqrt((err**2).mean())),
        "r2": r2,
    }


def spread_metrics(members: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """How an ensemble's spread relates to its error, from member predictions (n, M) and targets (n,).

    Returns ``mean_std_ev_per_atom`` (mean population std over members, eV/atom),
    ``spearman_abs_error_vs_std`` (rank correlation of |mean - target| with the std: > 0 when the spread
    points at the larger errors) and ``within_2std`` (share of rows with |mean - target| <= 2 std).
    """
    if len(target) == 0:
        return {}
    mean, std = members.mean(axis=1), members.std(axis=1)
    err = np.abs(mean - target)

    def ranks(x: np.ndarray) -> np.ndarray:
        return np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(np.float64)

    re, rs = ranks(err), ranks(std)
    denom = float(np.sqrt(((re - re.mean()) ** 2).sum() * ((rs - rs.mean()) ** 2).sum()))
    rho = float(((re - re.mean()) * (rs - rs.mean())).sum() / denom) if denom > 0 else float("nan")
    return {
        "mean_std_ev_per_atom": float(std.mean()),
        "spearman_abs_error_vs_std": rho,
        "within_2std": float((err <= 2 * std).mean()),
    }


def row_predictions(
    model: Model, arrays: CrystalArrays, graphs: DatasetGraphs, batch_size: int = 256
) -> np.ndarray:
    """Every row's prediction through its own fidelity's head, eV/atom: (S,) float32 for one model, (S, M)
    for an ensemble (one column per member); predicted split by split in batches of ``batch_size`` (what the
    metrics of a run are computed from), NaN for rows of no split."""
    routes = _routes(model.config, arrays)
    members = n_members(model)
    out = np.full((len(arrays), members) if members > 1 else len(arrays), np.nan, dtype=np.float32)
    for split in _SPLIT_NAMES:
        rows = _split_rows(arrays, split)
        out[rows] = predict(model, graphs, rows, batch_size, fidelity=routes[rows])
    return out


def regression_report(out: np.ndarray, arrays: CrystalArrays) -> dict[str, Any]:
    """The metrics a regression run records, from its row predictions (:func:`row_predictions`).

    Per split (``train``, ``validation``, ``test``) and per source; with mlip rows in the data, the headline
    metrics (and an ensemble's ``spread``, :func:`spread_metrics`) are the DFT head's on the DFT rows,
    ``per_fidelity`` gives each fidelity's rows through their own head (the one head of a single-fidelity
    model), and each source's rows go through their own head.

    Args:
        out: (S,) predictions of one model or (S, M) of M members (the ensemble's prediction is their mean),
            eV/atom, each row through its own fidelity's head.
        arrays: the rows (targets in eV/atom, split, source, fidelity).

    Raises:
        InputError: ``out`` has another number of rows than ``arrays``.
    """
    if len(out) != len(arrays):
        raise InputError(
            f"The predictions have {len(out)} rows but the data {len(arrays)}; predict every row."
        )
    report: dict[str, Any] = {}
    several = bool(arrays.fidelity.any())
    for split, split_name in _SPLIT_NAMES.items():
        rows = _split_rows(arrays, split)
        # an ensemble predicts its members' mean
        pred = out[rows].mean(axis=1) if out.ndim == 2 else out[rows]
        target, fidelity = arrays.target[rows], arrays.fidelity[rows]
        head = fidelity == DFT if several else np.ones(len(rows), dtype=bool)
        report[split_name] = regression_metrics(pred[head], target[head])
        if out.ndim == 2 and head.any():
            report[split_name]["spread"] = spread_metrics(out[rows][head], target[head])
        per_source = {}
        for s, source_name in enumerate(arrays.source_names):
            mask = arrays.source[rows] == s
            if mask.any():
                per_source[str(source_name)] = regression_metrics(pred[mask], target[mask])
        report[split_name]["per_source"] = per_source
        if several:
            report[split_name]["per_fidelity"] = {
                name: regression_metrics(pred[fidelity == f], target[fidelity == f])
                for f, name in enumerate(FIDELITIES)
                if (fidelity == f).any()
            }
    return report


def _regression_report(model, arrays, graphs, batch_size) -> dict[str, Any]:
    return regression_report(row_predictions(model, arrays, graphs, batch_size), arrays)


def _optimizer(model: ALIGNN, settings: TrainSettings) -> torch.optim.Optimizer:
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    head = [p for h in model.heads for p in h.parameters() if p.requires_grad]
    groups = [{"params": head, "lr": settings.lr}]
    if backbone:
        groups.append({"params": backbone, "lr": settings.lr * settings.backbone_lr_scale})
    return torch.optim.AdamW(groups, weight_decay=settings.weight_decay)


def _fidelity_info(config: ALIGNNConfig, settings: TrainSettings, arrays: CrystalArrays) -> dict[str, Any]:
    """What ``metrics.json`` (and the exported ``model.json``) record of the fidelities: heads, the data mix
    per split, the mlip weight, and how many compositions lie in two splits."""
    several = bool(arrays.fidelity.any())
    if config.fidelities > 1:
        mode = "delta" if config.fidelity_heads == "delta" else "heads"
    else:
        mode = "mix" if several else "single"
    info: dict[str, Any] = {
        "mode": mode,
        "heads": list(FIDELITIES[: config.fidelities]),
        "exported_head": FIDELITIES[DFT],
        "rows": {name: arrays.fidelity_counts(_split_rows(arrays, s)) for s, name in _SPLIT_NAMES.items()},
    }
    if several:
        info["mlip_weight"] = settings.mlip_weight
        info["compositions_in_two_splits"] = compositions_in_two_splits(arrays)
        if info["compositions_in_two_splits"]:
            _log.warning(
                "%d compositions have rows in more than one split; --split-by-composition puts each in one",
                info["compositions_in_two_splits"],
            )
    return info


def _base_info(kind: str, config: ALIGNNConfig, settings: TrainSettings, arrays: CrystalArrays) -> dict:
    return {
        "kind": kind,
        "config": config.to_dict(),
        "settings": asdict(settings),
        "training_data_hash": arrays.content_hash(),
        "sources": [str(s) for s in arrays.source_names],
        "split_sizes": {name: int((arrays.split == s).sum()) for s, name in _SPLIT_NAMES.items()},
        "fidelity": _fidelity_info(config, settings, arrays),
        "torch_version": torch.__version__,
    }


def _fit_regression(
    model: ALIGNN,
    arrays: CrystalArrays,
    graphs: DatasetGraphs,
    settings: TrainSettings,
    clock: _Clock,
    progress: Progress | None,
    frozen: tuple[torch.nn.Module, ...] = (),
    train_rows: np.ndarray | None = None,
    keep_start: bool = False,
) -> tuple[list[dict], str]:
    """Shared regression loop with early stopping on validation MAE; restores the best weights.

    With ``keep_start`` (a pretrained model: fine-tuning, a continuation) the starting weights are the
    first candidate, recorded as epoch 0: a run that only makes the validation MAE worse returns the
    weights it started from, never worse ones.

    ``frozen`` modules stay in eval mode, so their BatchNorm statistics stay fixed too. ``train_rows``
    (indices into ``arrays``, repeats allowed: a bootstrap resample) replaces the training split. Each row
    goes through its fidelity's head (the module docstring's loss); the validation MAE is the DFT head's
    on the DFT validation rows (all validation rows when there are none; training rows without a split).
    """
    device = torch.device(settings.device)
    train = _split_rows(arrays, TRAIN) if train_rows is None else np.asarray(train_rows, dtype=np.int64)
    val = _eval_rows(arrays, VALIDATION)
    if len(train) == 0:
        raise InputError("The dataset has no training rows (split == 0).")
    target = torch.from_numpy(arrays.target).to(device)
    routes = _routes(model.config, arrays)
    route_t = torch.from_numpy(routes).to(device) if model.config.fidelities > 1 else None
    # sigma_f per row: the target spread of the row's head; w_i: 1 for DFT rows, mlip_weight for mlip rows
    sigma_f = np.array([float(h.target_std) for h in model.heads], dtype=np.float32)
    sigma = torch.from_numpy(sigma_f[routes]).to(device)
    weight = torch.from_numpy(np.where(arrays.fidelity == DFT, 1.0, settings.mlip_weight).astype(np.float32))
    weight = weight.to(device)
    optimizer = _optimizer(model, settings)
    schedule = _Schedule(optimizer, settings, clock)
    rng = np.random.default_rng(settings.seed)
    best_mae, best_state, stale, history, stop = math.inf, None, 0, [], "epochs"
    eval_rows = val if len(val) else train

    def validation_mae() -> float:
        pred = predict(model, graphs, eval_rows, settings.eval_batch_size, fidelity=routes[eval_rows])
        return float(np.abs(pred - arrays.target[eval_rows]).mean())

    def snapshot() -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    if keep_start:
        best_mae, best_state = validation_mae(), snapshot()
        history.append({"epoch": 0, "train_loss": None, "val_mae_ev_per_atom": best_mae})
        _say(progress, f"epoch 0 (the starting weights) val_mae={best_mae:.4f} eV/atom")
    for epoch in range(1, settings.epochs + 1):
        model.train()
        for module in frozen:
            module.eval()
        order = rng.permutation(train)
        total, seen = 0.0, 0
        for s in range(0, len(order), settings.batch_size):
            idx = order[s : s + settings.batch_size]
            idx_t = torch.from_numpy(idx).to(device)
            pred = model(*graphs.batch(idx, device), fidelity=None if route_t is None else route_t[idx_t])
            # loss = mean_i w_i ((y_pred_i - y_i) / sigma_{f_i})^2, the weighted standardised squared error
            per_row = F.mse_loss(pred / sigma[idx_t], target[idx_t] / sigma[idx_t], reduction="none")
            loss = (weight[idx_t] * per_row).mean()
            schedule.before_step()
            total += _optimise(model, optimizer, loss, settings.grad_clip) * len(idx)
            seen += len(idx)
            if clock.expired():
                break
        schedule.after_epoch()
        val_mae = validation_mae()
        history.append({"epoch": epoch, "train_loss": total / max(seen, 1), "val_mae_ev_per_atom": val_mae})
        _say(
            progress,
            f"epoch {epoch}/{settings.epochs} train_loss={total / max(seen, 1):.4f} "
            f"val_mae={val_mae:.4f} eV/atom elapsed={clock.elapsed:.0f}s",
        )
        if val_mae < best_mae:
            best_mae, best_state, stale = val_mae, snapshot(), 0
        else:
            stale += 1
        if clock.expired():
            stop = "time_limit"
            break
        if stale >= settings.patience:
            stop = "early_stopping"
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history, stop


def trained_epochs(history: list[dict[str, Any]]) -> int:
    """Epochs a run trained: its history's entries, less the epoch 0 that records the starting weights of a
    fine-tuning or continuation (:func:`_fit_regression`'s ``keep_start``)."""
    return sum(h.get("epoch", 1) >= 1 for h in history)


def _check_ensemble(ensemble: int | None) -> None:
    if ensemble is not None and (not isinstance(ensemble, int) or isinstance(ensemble, bool) or ensemble < 1):
        raise InputError(f"ensemble must be a whole number of members >= 1 (1: one model), got {ensemble!r}.")


def bootstrap_rows(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bootstrap resample of ``rows``: as many indices as ``rows``, drawn with replacement, sorted.

    Args:
        rows: (n,) row indices (a training split).
        rng: the random generator (seeded by the caller: one stream per ensemble member).
    """
    rows = np.asarray(rows, dtype=np.int64)
    return np.sort(rng.choice(rows, size=len(rows), replace=True)) if len(rows) else rows


def _member_settings(settings: TrainSettings, member: int) -> tuple[TrainSettings, np.random.Generator]:
    """Member ``member``'s settings (seed ``seed + member``) and its bootstrap generator."""
    seed = settings.seed + member
    return replace(settings, seed=seed), np.random.default_rng([seed, 1])


def _member_draw(
    settings: TrainSettings, member: int, arrays: CrystalArrays
) -> tuple[TrainSettings, np.ndarray]:
    """Member ``member``'s settings and its bootstrap rows of the training split of ``arrays``: the same
    whether the member is trained in the ensemble's loop or alone (``--member``)."""
    member_settings, rng = _member_settings(settings, member)
    return member_settings, bootstrap_rows(_split_rows(arrays, TRAIN), rng)


def bootstrap_hash(arrays: CrystalArrays, rows: np.ndarray) -> str:
    """sha256 over the ids of ``rows`` in order, repeats included: which rows a member trained on, how often.

    Args:
        arrays: the training arrays (ids ``source:id``).
        rows: (n,) row indices, e.g. :func:`bootstrap_rows`.
    """
    return hashlib.sha256(
        "\n".join(map(str, arrays.ids[np.asarray(rows, dtype=np.int64)])).encode()
    ).hexdigest()


def _check_member(ensemble: int, member: int | None) -> None:
    if member is None:
        return
    if isinstance(member, bool) or not isinstance(member, int) or ensemble < 2 or not 0 <= member < ensemble:
        raise InputError(
            f"--member picks one member of an ensemble (--ensemble N >= 2, member 0 to N - 1); got member "
            f"{member!r} of {ensemble}."
        )


def _member_info(
    record: dict[str, Any], of: int, base_seed: int, kind: str, data_hash: str, earlier: list | None = None
) -> dict[str, Any]:
    """The info keys of a run that holds one member (``--member``): ``member`` (index, of, seeds, bootstrap,
    and the stages it was trained in, this one last), its history and stop reason."""
    record = dict(record)
    history = record.pop("history")
    stage = {
        "kind": kind,
        "epochs": trained_epochs(history),
        "best_val_mae_ev_per_atom": record["best_val_mae_ev_per_atom"],
        "stopped_by": record["stopped_by"],
        "training_data_hash": data_hash,
    }
    member = {"index": record.pop("member"), "of": of, "base_seed": base_seed, **record}
    member["stages"] = [*(earlier or []), stage]
    return {"member": member, "history": history, "stopped_by": record["stopped_by"]}


def _ensemble_info(members: list[dict[str, Any]]) -> dict[str, Any]:
    """The info keys of an ensemble run: per-member records, the joined history and the stop reason."""
    stops = [m["stopped_by"] for m in members]
    stop = next((s for s in ("time_limit", "early_stopping") if s in stops), "epochs")
    history = [dict(h, member=m["member"]) for m in members for h in m.pop("history")]
    return {
        "n_members": len(members),
        "ensemble": {"members": members},
        "history": history,
        "stopped_by": stop,
    }


def _head_scaling(config: ALIGNNConfig, arrays: CrystalArrays) -> list[tuple[float, float]]:
    """(mean, std) of each head's training targets, eV/atom: a delta head's mean is its fidelity's mean minus
    the DFT mean (it predicts the difference); its std is its fidelity's spread.

    Raises:
        InputError: no training rows, or none of a head's fidelity.
    """
    train = _split_rows(arrays, TRAIN)
    if len(train) == 0:
        raise InputError("The dataset has no training rows (split == 0).")
    routes = _routes(config, arrays)[train]
    scaling = []
    for f in range(config.fidelities):
        y = arrays.target[train][routes == f]
        if len(y) == 0:
            raise InputError(
                f"The model has a {FIDELITIES[f]!r} head but the data hold no {FIDELITIES[f]} training rows; "
                "use fidelity_config to size the heads from the data."
            )
        scaling.append((float(y.mean()), float(max(y.std(), 1e-3))))
    if config.fidelity_heads == "delta":
        scaling = scaling[:1] + [(mean - scaling[0][0], std) for mean, std in scaling[1:]]
    return scaling


def train_regression(
    arrays: CrystalArrays,
    config: ALIGNNConfig,
    settings: TrainSettings,
    *,
    ensemble: int = 1,
    member: int | None = None,
    progress: Progress | None = None,
) -> tuple[Model, dict[str, Any]]:
    """Train formation-enthalpy regression from scratch (early stopping on validation MAE).

    Rows of several fidelities (``arrays.fidelity``) train a model with one head per fidelity when
    ``config.fidelities`` says so (:func:`fidelity_config` sizes it from the data), each row through its
    own head, the mlip rows weighted by ``settings.mlip_weight``; every head is scaled to its own training
    targets. Early stopping and the headline metrics use the DFT head on the DFT rows.

    Args:
        arrays: structures with ``target`` in eV/atom, a train/validation/test split and a fidelity per row.
        config: model config (task must be "regression"; ``fidelities`` heads).
        settings: optimisation settings; with a time limit, each ensemble member gets an equal share of
            the time left when it starts.
        ensemble: members M; 1 trains one model on the whole training split (as before), M >= 2 trains
            M members, member m with seed ``settings.seed + m`` on its own bootstrap of the training split.
        member: with M >= 2, train member ``member`` (0 to M - 1) alone, exactly as the loop over all M
            would (its seed, bootstrap rows and heads; the whole time limit is its own): one model whose
            info records ``member`` (index, of, seeds, ``bootstrap_hash``) and ``predictions`` (its row
            predictions, :func:`row_predictions`), so that :func:`combine_members` can join members trained
            apart into the ensemble.
        progress: optional callback receiving one line per epoch.

    Returns:
        The model (best validation weights; an :class:`~csp.models.alignn.ALIGNNEnsemble` when M >= 2 and
        no ``member``) and the info dictionary with per-source metrics (an ensemble's: of the members' mean,
        plus ``spread``: :func:`spread_metrics`).

    Raises:
        InputError: a non-regression config, ``ensemble`` < 1, a ``member`` outside 0..M-1 (or with M < 2),
            no training rows, a head whose fidelity has no training rows, or rows of a fidelity the model
            has no head for.
    """
    if config.task != "regression":
        raise InputError("train_regression needs a config with task='regression'.")
    _check_ensemble(ensemble)
    _check_member(ensemble, member)
    clock = _Clock(settings.time_limit_s)
    _seed(settings.seed)
    scaling = _head_scaling(config, arrays)
    graphs = dataset_graphs(arrays, config.k, settings.workers, _cache(settings))
    _say(progress, f"graphs for {len(arrays)} structures ready in {clock.elapsed:.1f}s")

    def new_model() -> ALIGNN:
        model = ALIGNN(config)
        for head, (mean, std) in zip(model.heads, scaling, strict=True):
            head.target_mean.fill_(mean)
            head.target_std.fill_(std)
        return model.to(settings.device)

    info = _base_info("dft", config, settings, arrays)
    if ensemble == 1:
        model: Model = new_model()
        history, stop = _fit_regression(model, arrays, graphs, settings, clock, progress)
        info.update(history=history, stopped_by=stop)
    else:
        chosen = list(range(ensemble)) if member is None else [member]
        members, records = [], []
        for i, m in enumerate(chosen):
            member_settings, rows = _member_draw(settings, m, arrays)
            _seed(member_settings.seed)
            distinct = len(np.unique(rows))
            _say(
                progress, f"member {m + 1}/{ensemble}: seed {member_settings.seed}, {distinct} distinct rows"
            )
            one = new_model()
            history, stop = _fit_regression(
                one, arrays, graphs, member_settings, clock.share(len(chosen) - i), progress, train_rows=rows
            )
            members.append(one)
            records.append(_member_record(m, member_settings.seed, rows, history, stop, arrays))
        if member is None:
            model = ALIGNNEnsemble.from_members(members)
            info.update(_ensemble_info(records))
        else:
            model = members[0]
            info.update(_member_info(records[0], ensemble, settings.seed, "dft", info["training_data_hash"]))
    info["seconds"] = clock.elapsed
    out = row_predictions(model, arrays, graphs, settings.eval_batch_size)
    info["metrics"] = regression_report(out, arrays)
    if member is not None:
        info["predictions"] = {"prediction": out}
    _say(progress, f"done ({info['stopped_by']}): test {_short(info['metrics']['test'])}")
    return model.cpu(), info


def _member_record(
    m: int, seed: int, rows: np.ndarray, history: list[dict], stop: str, arrays: CrystalArrays
) -> dict[str, Any]:
    maes = [h["val_mae_ev_per_atom"] for h in history]
    return {
        "member": m,
        "seed": seed,
        "bootstrap_rows": len(rows),
        "distinct_rows": len(np.unique(rows)),
        "bootstrap_hash": bootstrap_hash(arrays, rows),
        "stopped_by": stop,
        "best_val_mae_ev_per_atom": min(maes) if maes else None,
        "history": history,
    }


def _fine_tune(
    model: ALIGNN,
    arrays: CrystalArrays,
    graphs: DatasetGraphs,
    settings: TrainSettings,
    clock: _Clock,
    progress: Progress | None,
    train_rows: np.ndarray | None = None,
) -> tuple[list[dict], str]:
    """Fine-tune one pretrained regression model in place, with ``settings.freeze``'s blocks fixed."""
    frozen = []
    if settings.freeze in ("embeddings", "alignn"):
        frozen += [
            model.backbone.atom_embedding,
            model.backbone.edge_embedding,
            model.backbone.angle_embedding,
        ]
    if settings.freeze == "alignn":
        frozen.append(model.backbone.alignn_layers)
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    result = _fit_regression(
        model, arrays, graphs, settings, clock, progress, tuple(frozen), train_rows, keep_start=True
    )
    for p in model.parameters():
        p.requires_grad_(True)
    return result


def _check_continuation(init, init_info, identity, settings, arrays, rows) -> None:
    """A member continued on its own data keeps its bootstrap rows and its mlip weight (or is refused)."""
    if bootstrap_hash(arrays, rows) != identity["bootstrap_hash"]:
        raise InputError(
            f"{init} is member {identity['index']} of the ensemble of --seed {identity['base_seed']}; continue "
            f"it with --seed {identity['base_seed']} (--seed {settings.seed} draws other bootstrap rows)."
        )
    weight = init_info.get("settings", {}).get("mlip_weight", settings.mlip_weight)
    if arrays.fidelity.any() and settings.mlip_weight != weight:
        raise InputError(
            f"{init} was trained with --mlip-weight {weight}; continue it with --mlip-weight {weight}, or its "
            "members no longer form one ensemble."
        )


def train_transfer(
    arrays: CrystalArrays,
    init: Path,
    settings: TrainSettings,
    *,
    ensemble: int | None = None,
    member: int | None = None,
    progress: Progress | None = None,
) -> tuple[Model, dict[str, Any]]:
    """Fine-tune a DFT-trained checkpoint on experimental formation enthalpies (or continue a run on its own
    data: the same call on the same arrays).

    The pretrained model keeps its architecture and target scaling; ``settings.freeze`` chooses
    which early blocks stay fixed and ``settings.lr`` (use ~10x below the DFT run) sets the step.
    The metrics include the DFT model's error on the same rows before fine-tuning, for comparison.
    No optimiser state is stored with a checkpoint: AdamW and the cosine schedule start afresh.

    An ensemble checkpoint fine-tunes each member (member m with seed ``settings.seed + m`` on its own
    bootstrap of the training rows) and stays an ensemble of as many members. A single checkpoint with
    ``ensemble`` = M >= 2 gives M fine-tuned copies of the one pretrained model (their spread then comes
    from the fine-tuning alone: prefer an ensemble pretrained with ``dft --ensemble M``).

    One member at a time: ``member`` = m fine-tunes member m of an ensemble checkpoint (or copy m of a
    single one) exactly as the loop over all members would, and returns one model recording ``member``
    (:func:`train_regression`). A checkpoint that is itself one member (``--member``) continues as that
    member: the same index of as many, seed ``settings.seed + m`` and, on its own training data, the same
    bootstrap rows (checked against its ``bootstrap_hash``) and ``mlip_weight``.

    A multi-fidelity checkpoint fine-tuned on DFT-fidelity rows only (experiment: every row fidelity 0)
    continues from its DFT head and drops the other heads (they would go stale as the trunk moves): the
    result is a single-fidelity model (each member of an ensemble too). Rows of several fidelities (a
    continuation on a multi-fidelity set) keep every head, each row through its own.

    Args:
        arrays: structures linked to experimental enthalpies (eV/atom), with a split.
        init: the DFT run folder (or its checkpoint.pt).
        settings: optimisation settings; with a time limit, each member gets an equal share of the time
            left when it starts.
        ensemble: members; None follows the checkpoint (1 for a single model, M for an ensemble, the
            ensemble it belongs to for a member).
        member: fine-tune this member alone (0 to M - 1); None: every member (or the member a member
            checkpoint is).
        progress: optional callback receiving one line per epoch.

    Raises:
        InputError: a PU checkpoint, ``ensemble`` < 1, an ``ensemble`` that differs from an ensemble
            checkpoint's member count, a ``member`` outside 0..M-1, a ``member`` or ``ensemble`` other than a
            member checkpoint's own, a continuation whose ``settings.seed`` draws other bootstrap rows than
            the member's (or whose ``mlip_weight`` is another), or rows of a fidelity the checkpoint has no
            head for.
    """
    _check_ensemble(ensemble)
    clock = _Clock(settings.time_limit_s)
    _seed(settings.seed)
    pretrained, init_info = load_checkpoint(init)
    if pretrained.config.task != "regression":
        raise InputError("Transfer learning starts from a regression checkpoint; this one is a PU model.")
    count = n_members(pretrained)
    if count > 1 and ensemble not in (None, count):
        raise InputError(
            f"The checkpoint {init} is an ensemble of {count} members; fine-tune all of them (leave out "
            f"--ensemble or pass --ensemble {count})."
        )
    identity = init_info.get("member")
    if identity is not None:  # one member continues as itself
        if member not in (None, identity["index"]) or ensemble not in (None, identity["of"]):
            raise InputError(
                f"{init} is member {identity['index']} of {identity['of']}; it continues as that member "
                f"(leave out --member and --ensemble)."
            )
        member, size = identity["index"], identity["of"]
    else:
        size = ensemble or count
    _check_member(size, member)
    data_hash = arrays.content_hash()
    rows = None
    if member is not None:
        member_settings, rows = _member_draw(settings, member, arrays)
        if identity is not None and data_hash == init_info.get("training_data_hash"):
            _check_continuation(init, init_info, identity, settings, arrays, rows)
    init_heads = list(FIDELITIES[: pretrained.config.fidelities])
    if pretrained.config.fidelities > 1 and not arrays.fidelity.any():
        pretrained = pretrained.single_fidelity()  # experiment continues from the DFT head
        _say(progress, f"fine-tuning the DFT head; the {init_heads[1:]} head(s) of {init} are dropped")
    if member is not None and count > 1:
        pretrained = pretrained.members[member]  # the one member fine-tuned here
    _routes(pretrained.config, arrays)  # rows of a fidelity without a head: refused before any graph
    graphs = dataset_graphs(arrays, pretrained.config.k, settings.workers, _cache(settings))
    pretrained.to(settings.device)
    before_out = row_predictions(pretrained, arrays, graphs, settings.eval_batch_size)
    before = regression_report(before_out, arrays)
    info = _base_info("transfer", pretrained.config, settings, arrays)
    if member is not None:
        _seed(member_settings.seed)
        _say(progress, f"member {member + 1}/{size}: seed {member_settings.seed}, fine-tuning")
        model: Model = copy.deepcopy(pretrained)
        history, stop = _fine_tune(model, arrays, graphs, member_settings, clock.share(1), progress, rows)
        record = _member_record(member, member_settings.seed, rows, history, stop, arrays)
        earlier = identity.get("stages", []) if identity is not None else []
        info.update(_member_info(record, size, settings.seed, "transfer", data_hash, earlier))
    elif size == 1:
        model = pretrained
        history, stop = _fine_tune(pretrained, arrays, graphs, settings, clock, progress)
        info.update(history=history, stopped_by=stop)
    else:
        starts = list(pretrained.members) if count > 1 else [pretrained] * size
        members, records = [], []
        for m in range(size):
            one_settings, one_rows = _member_draw(settings, m, arrays)
            _seed(one_settings.seed)
            _say(progress, f"member {m + 1}/{size}: seed {one_settings.seed}, fine-tuning")
            one = copy.deepcopy(starts[m])
            history, stop = _fine_tune(
                one, arrays, graphs, one_settings, clock.share(size - m), progress, one_rows
            )
            members.append(one)
            records.append(_member_record(m, one_settings.seed, one_rows, history, stop, arrays))
        model = ALIGNNEnsemble.from_members(members)
        info.update(_ensemble_info(records))
    info["seconds"] = clock.elapsed
    info["init"] = {
        "training_data_hash": init_info.get("training_data_hash"),
        "kind": init_info.get("kind"),
        "n_members": count,
        "fidelity_heads": init_heads,
    }
    out = row_predictions(model, arrays, graphs, settings.eval_batch_size)
    info["metrics"] = regression_report(out, arrays)
    info["metrics"]["before_fine_tuning"] = before
    if member is not None:
        info["predictions"] = {"prediction": out, "before": before_out}
    _say(
        progress,
        f"done ({info['stopped_by']}): test {_short(info['metrics']['test'])} (before: {_short(before['test'])})",
    )
    return model.cpu(), info


def bag_masks(
    labels: np.ndarray, n_bags: int, rng: np.random.Generator, always: np.ndarray | None = None
) -> np.ndarray:
    """(n, n_bags) bool: every positive in every bag, plus per bag an equal-size random unlabeled draw.

    Args:
        labels: (n,) 1 for positives, 0 for unlabeled.
        n_bags: number of bags.
        rng: the random generator (seeded by the caller).
        always: optional (n,) bool: unlabeled rows put in every bag (e.g. the positives' polymorph siblings);
            they count towards the equal-size draw, which the other unlabeled rows fill at random.

    Raises:
        InputError: if ``always`` has the wrong length or marks a positive.
    """
    labels = np.asarray(labels)
    fixed = np.zeros(len(labels), dtype=bool) if always is None else np.asarray(always, dtype=bool)
    if fixed.shape != labels.shape or (fixed & (labels == 1)).any():
        raise InputError("bag_masks: 'always' must mark unlabeled rows only, one flag per row.")
    pos = np.flatnonzero(labels == 1)
    unl = np.flatnonzero((labels == 0) & ~fixed)
    mask = np.zeros((len(labels), n_bags), dtype=bool)
    mask[pos] = True
    mask[fixed] = True
    draw = min(max(len(pos) - int(fixed.sum()), 0), len(unl))
    for b in range(n_bags):
        mask[rng.choice(unl, size=draw, replace=False), b] = True
    return mask


def _pu_report(probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    pos, unl = labels == 1, labels == 0
    return {
        "positives": int(pos.sum()),
        "unlabeled": int(unl.sum()),
        "tpr_at_0.5": float((probs[pos] >= 0.5).mean()) if pos.any() else None,
        "unlabeled_fraction_at_0.5": float((probs[unl] >= 0.5).mean()) if unl.any() else None,
        "mean_p_syn_positives": float(probs[pos].mean()) if pos.any() else None,
        "mean_p_syn_unlabeled": float(probs[unl].mean()) if unl.any() else None,
    }


def train_pu(
    arrays: CrystalArrays,
    config: ALIGNNConfig,
    settings: TrainSettings,
    *,
    init: Path | None = None,
    progress: Progress | None = None,
) -> tuple[ALIGNN, dict[str, Any]]:
    """Train the PU synthesizability ensemble: one backbone, ``config.n_bags`` per-bag MLP heads.

    Bag b is trained on all training positives plus its own random, equally large draw of
    training unlabeled rows taken as negatives (a per-bag mask in the loss). P_syn is the mean of
    the bag sigmoids. Reported: TPR on held-out positives and the fraction of unlabeled rows scored
    >= 0.5 (validation, test, and out-of-bag training unlabeled rows), and per held-out split
    ``polymorphs``: :func:`csp.models.pu_polymorphs.polymorph_discrimination` (on compositions with a
    positive and unlabeled siblings, the fraction where a positive gets the highest P_syn).
    ``settings.pu_siblings_every_bag`` puts the training siblings in every bag.

    Args:
        arrays: structures with ``target`` 1 (positive) or 0 (unlabeled) and a split.
        config: model config (task must be "pu").
        settings: optimisation settings (epochs are fixed; no early stopping).
        init: optional DFT run folder whose backbone initialises this one (config must match).
        progress: optional callback receiving one line per epoch.
    """
    if config.task != "pu":
        raise InputError("train_pu needs a config with task='pu'.")
    if not np.isin(arrays.target, (0.0, 1.0)).all():
        raise InputError("PU targets must be 0 (unlabeled) or 1 (positive).")
    clock = _Clock(settings.time_limit_s)
    _seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    graphs = dataset_graphs(arrays, config.k, settings.workers, _cache(settings))
    _say(progress, f"graphs for {len(arrays)} structures ready in {clock.elapsed:.1f}s")
    model = ALIGNN(config)
    if init is not None:
        pretrained, _ = load_checkpoint(init)
        if isinstance(pretrained, ALIGNNEnsemble):  # one backbone initialises the PU model: member 0's
            _say(progress, f"--init is an ensemble of {pretrained.n_members}: member 0's backbone is used")
            pretrained = pretrained.members[0]
        if pretrained.config.hidden != config.hidden or pretrained.config.k != config.k:
            raise InputError("The --init checkpoint's hidden size or k differs from the PU config.")
        model.backbone.load_state_dict(pretrained.backbone.state_dict())
    model.to(settings.device)
    device = torch.device(settings.device)
    train = _split_rows(arrays, TRAIN)
    labels = arrays.target.astype(np.int64)
    keys = composition_keys(arrays)
    always = sibling_rows(labels[train], keys[train]) if settings.pu_siblings_every_bag else None
    masks = bag_masks(labels[train], config.n_bags, rng, always)
    rows = train[masks.any(axis=1)]
    mask_of = np.zeros((len(arrays), config.n_bags), dtype=bool)
    mask_of[train] = masks
    mask_t = torch.from_numpy(mask_of).to(device)
    label_t = torch.from_numpy(arrays.target).to(device)
    optimizer = _optimizer(model, settings)
    schedule = _Schedule(optimizer, settings, clock)
    history, stop = [], "epochs"
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = rng.permutation(rows)
        total, seen = 0.0, 0
        for s in range(0, len(order), settings.batch_size):
            idx = order[s : s + settings.batch_size]
            idx_t = torch.from_numpy(idx).to(device)
            logits = model(*graphs.batch(idx, device))  # (b, n_bags)
            m = mask_t[idx_t].float()
            y = label_t[idx_t].unsqueeze(1).expand_as(logits)
            # L = mean_k [ sum_i m_ik BCE(logit_ik, y_i) / sum_i m_ik ] over bags present in the batch
            per = F.binary_cross_entropy_with_logits(logits, y, reduction="none") * m
            count = m.sum(0)
            present = count > 0
            loss = (per.sum(0)[present] / count[present]).mean()
            schedule.before_step()
            total += _optimise(model, optimizer, loss, settings.grad_clip) * len(idx)
            seen += len(idx)
            if clock.expired():
                break
        schedule.after_epoch()
        loss_avg = total / max(seen, 1)
        history.append({"epoch": epoch, "train_loss": loss_avg})
        _say(progress, f"epoch {epoch}/{settings.epochs} bag_loss={loss_avg:.4f} t={clock.elapsed:.0f}s")
        if clock.expired():
            stop = "time_limit"
            break
    metrics: dict[str, Any] = {}
    for split, split_name in ((VALIDATION, "validation"), (TEST, "test")):
        idx = _split_rows(arrays, split)
        probs = 1.0 / (1.0 + np.exp(-predict(model, graphs, idx, settings.eval_batch_size)))
        p_syn = probs.mean(axis=1) if len(idx) else np.zeros(0)
        metrics[split_name] = _pu_report(p_syn, labels[idx])
        metrics[split_name]["polymorphs"] = polymorph_discrimination(
            p_syn, labels[idx], keys[idx], source=arrays.source[idx], source_names=arrays.source_names
        )
    unl_train = train[labels[train] == 0]
    if len(unl_train):
        probs = 1.0 / (1.0 + np.exp(-predict(model, graphs, unl_train, settings.eval_batch_size)))
        out_of_bag = ~mask_of[unl_train]
        usable = out_of_bag.any(axis=1)
        oob = (probs * out_of_bag).sum(1)[usable] / out_of_bag.sum(1)[usable]
        metrics["train_unlabeled_out_of_bag"] = {
            "count": int(usable.sum()),
            "fraction_at_0.5": float((oob >= 0.5).mean()) if usable.any() else None,
        }
    info = _base_info("pu", config, settings, arrays)
    info.update(history=history, stopped_by=stop, seconds=clock.elapsed, metrics=metrics)
    info["init"] = str(init) if init is not None else None
    _say(progress, f"done ({stop}): test {metrics['test']}")
    return model.cpu(), info


def _short(m: dict) -> str:
    if not m.get("count"):
        return "no rows"
    return f"MAE={m['mae_ev_per_atom']:.4f} eV/atom R2={m['r2']:.3f} (n={m['count']})"


def _cache(settings: TrainSettings) -> Path | None:
    return Path(settings.graph_cache) if settings.graph_cache else None


#: a member run's row predictions (eV/atom, float32, one per row of its training arrays, each through its own
#: fidelity's head): ``prediction`` (S,) and, after fine-tuning, ``before`` (S,); what combining reads
PREDICTIONS = "predictions.npz"


def save_checkpoint(out_dir: Path, model: Model, info: dict[str, Any]) -> Path:
    """Write ``out_dir/checkpoint.pt`` (the model's state_dict alone: weights and buffers, no optimiser state;
    about 2.3 MB for one model of hidden 128, 2 + 2 layers) and ``out_dir/metrics.json`` (config + info; an
    ensemble's ``n_members`` too, so that :func:`load_checkpoint` rebuilds it).

    A member run's ``info["predictions"]`` (arrays, :func:`train_regression` with ``member``) goes to
    ``out_dir/predictions.npz`` (about 4 bytes a row, per array), not to metrics.json.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out_dir / "checkpoint.pt")
    info = dict(info, config=model.config.to_dict(), n_members=n_members(model))
    predictions = info.pop("predictions", None)
    if predictions is not None:
        with (out_dir / PREDICTIONS).open("wb") as fh:
            np.savez(fh, training_data_hash=np.array(info["training_data_hash"]), **predictions)
    (out_dir / "metrics.json").write_text(json.dumps(info, indent=2, default=_json_default) + "\n")
    return out_dir / "checkpoint.pt"


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"Cannot write {type(value).__name__} to JSON.")


def load_checkpoint(path: Path) -> tuple[Model, dict[str, Any]]:
    """Load a run folder (or its checkpoint.pt): returns the model (CPU, eval mode) and its info.

    A run with ``n_members`` >= 2 in its metrics.json loads as an :class:`~csp.models.alignn.ALIGNNEnsemble`;
    runs written before ensembles existed have no ``n_members`` and load as one :class:`ALIGNN`.
    """
    path = Path(path)
    folder = path.parent if path.is_file() else path
    info_path, weights = folder / "metrics.json", folder / "checkpoint.pt"
    if not info_path.is_file() or not weights.is_file():
        raise ModelNotFoundError(
            f"{folder} needs checkpoint.pt and metrics.json (written by csp.models.training)."
        )
    info = json.loads(info_path.read_text())
    config, count = ALIGNNConfig.from_dict(info["config"]), int(info.get("n_members", 1))
    model: Model = ALIGNNEnsemble(config, count) if count > 1 else ALIGNN(config)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval(), info
