"""``python -m csp.models.training {dft,transfer,pu} --data X.npz --out DIR [--ensemble M [--member K]] [...]``
and ``python -m csp.models.training combine --data X.npz --runs RUN RUN ... --out DIR`` (argparse: stdlib only).

Measured on one H100 (135,494 rows: 41k DFT + 94k CHGNet-labelled, --fidelity delta, hidden 128, 2 + 2 layers,
--batch-size 64, --lr 1e-3): about 30 s per epoch per member. --batch-size 256 runs the same code (checked on
CPU); scale --lr with it (2e-3 to 4e-3 for 256) and measure the epoch time and validation MAE before relying
on it."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from csp.errors import InputError, ModelNotFoundError
from csp.models import ALIGNNConfig
from csp.models.dataset import align_composition_split, load_arrays
from csp.models.training._combine import combine_members
from csp.models.training._loops import (
    ANNEAL_CHOICES,
    FIDELITY_MODES,
    FREEZE_CHOICES,
    TrainSettings,
    fidelity_config,
    save_checkpoint,
    train_pu,
    train_regression,
    train_transfer,
)
from csp.structures.validity import GeometryError


def _parser() -> argparse.ArgumentParser:
    # every default comes from the config classes (TrainSettings, ALIGNNConfig), never a second copy
    t, m = TrainSettings(), ALIGNNConfig()
    p = argparse.ArgumentParser(prog="python -m csp.models.training", description=__doc__)
    p.add_argument("mode", choices=("dft", "transfer", "pu", "combine"))
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help=".npz written by csp.models.dataset.save_arrays (combine: the members' training set)",
    )
    p.add_argument("--out", type=Path, required=True, help="run folder: checkpoint.pt + metrics.json")
    p.add_argument("--init", type=Path, help="DFT run folder (required for transfer, optional for pu)")
    p.add_argument("--epochs", type=int, default=t.epochs)
    p.add_argument(
        "--batch-size",
        type=int,
        default=t.batch_size,
        help=f"crystals per step (default {t.batch_size}: the measured 30 s/epoch/member on an H100 with "
        "lr 1e-3; 256 works, with --lr scaled to 2e-3..4e-3, not yet measured)",
    )
    p.add_argument(
        "--lr", type=float, help="default 1e-3 (dft, pu; measured at --batch-size 64) or 1e-4 (transfer)"
    )
    p.add_argument("--weight-decay", type=float, default=t.weight_decay)
    p.add_argument("--patience", type=int, default=t.patience)
    p.add_argument("--device", default=t.device)
    p.add_argument("--seed", type=int, default=t.seed)
    p.add_argument("--time-limit-s", type=float, help="stop training after this many seconds")
    p.add_argument("--freeze", choices=FREEZE_CHOICES, default=t.freeze, help="transfer: frozen blocks")
    p.add_argument("--backbone-lr-scale", type=float, help="default 1 (dft), 0.1 (pu with --init)")
    p.add_argument("--workers", type=int, default=t.workers, help="processes for graph building")
    p.add_argument("--graph-cache", help="optional .npz caching the dataset graphs")
    p.add_argument(
        "--siblings-every-bag",
        action="store_true",
        help="pu: put the positives' polymorph siblings (unlabeled rows of a positive's composition) in every bag",
    )
    p.add_argument("--hidden", type=int, default=m.hidden)
    p.add_argument("--alignn-layers", type=int, default=m.alignn_layers)
    p.add_argument("--gcn-layers", type=int, default=m.gcn_layers)
    p.add_argument("--embedding", type=int, default=m.embedding)
    p.add_argument("--head-hidden", type=int, default=m.head_hidden)
    p.add_argument("--n-bags", type=int, default=m.n_bags)
    p.add_argument(
        "--ensemble",
        type=int,
        help="dft/transfer: train this many members (own seed and bootstrap each) as one ensemble; "
        "default 1 (dft) or as the --init run (transfer)",
    )
    p.add_argument(
        "--member",
        type=int,
        help="dft/transfer with --ensemble N: train member K (0..N-1) alone, as the full loop would, into a "
        "one-member run (join members with combine); transfer --init of a member run continues that member",
    )
    p.add_argument("--runs", type=Path, nargs="+", help="combine: the member run folders to join")
    p.add_argument(
        "--fidelity",
        choices=FIDELITY_MODES,
        default="heads",
        help="dft with mlip rows (fidelity 1): one head per fidelity (heads), the DFT head plus a "
        "correction (delta), or one head for all rows (mix); the DFT head is the exported prediction",
    )
    p.add_argument(
        "--mlip-weight", type=float, default=t.mlip_weight, help="loss weight of mlip rows (DFT rows: 1)"
    )
    p.add_argument(
        "--anneal",
        choices=ANNEAL_CHOICES,
        default=t.anneal,
        help="the cosine learning-rate decay runs over --epochs (epochs) or over --time-limit-s (time: the "
        "rate reaches zero when the time is up, whatever the device's speed)",
    )
    p.add_argument(
        "--split-by-composition",
        action="store_true",
        help="put every reduced composition in one split across fidelities (the split of its DFT rows); "
        "a lake export already is",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one training mode; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    if (args.mode == "combine") != (args.runs is not None):
        raise SystemExit("--runs names the member runs of combine, and combine needs it.")
    if args.mode == "combine":
        return _combine(args)
    if args.member is not None and args.mode == "pu":
        raise SystemExit("--member picks an enthalpy ensemble member (dft, transfer); pu has --n-bags.")
    if args.mode == "dft" and args.member is not None and args.ensemble is None:
        raise SystemExit("--member K needs --ensemble N (the ensemble it is a member of).")
    if args.mode == "transfer" and args.init is None:
        raise SystemExit("transfer needs --init pointing at the DFT run folder.")
    if args.mode == "pu" and args.ensemble is not None:
        raise SystemExit("pu is already a bagged ensemble: set its size with --n-bags, not --ensemble.")
    if args.ensemble is not None and args.ensemble < 1:
        raise SystemExit(f"--ensemble must be at least 1 (1: one model), got {args.ensemble}.")
    lr = args.lr if args.lr is not None else (1e-4 if args.mode == "transfer" else 1e-3)
    scale = args.backbone_lr_scale
    if scale is None:
        scale = 0.1 if (args.mode == "pu" and args.init is not None) else 1.0
    try:
        settings = TrainSettings(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=lr,
            weight_decay=args.weight_decay,
            patience=args.patience,
            device=args.device,
            seed=args.seed,
            time_limit_s=args.time_limit_s,
            freeze=args.freeze,
            backbone_lr_scale=scale,
            workers=args.workers,
            graph_cache=args.graph_cache,
            mlip_weight=args.mlip_weight,
            pu_siblings_every_bag=args.siblings_every_bag,
            anneal=args.anneal,
        )
    except InputError as exc:  # e.g. --mlip-weight 0
        raise SystemExit(f"error: {exc}") from None
    arrays = load_arrays(args.data)
    logging.info("loaded %d structures from %s (%s)", len(arrays), args.data, arrays.fidelity_counts())
    moved = 0
    if args.split_by_composition:
        arrays, moved = align_composition_split(arrays)
        logging.info("split by composition: %d rows moved to their composition's split", moved)
    try:
        model, info = _train(args, arrays, settings)
    except GeometryError as exc:  # a structure the graphs cannot represent: name it, no traceback
        raise SystemExit(f"error: {exc}") from None
    except InputError as exc:  # e.g. --ensemble that differs from the --init ensemble's members
        raise SystemExit(f"error: {exc}") from None
    info["data_file"] = args.data.name
    if args.split_by_composition:
        info["fidelity"]["split_by_composition"] = {"rows_moved": moved}
    path = save_checkpoint(args.out, model, info)
    logging.info("wrote %s and %s", path, path.with_name("metrics.json"))
    return 0


def _combine(args) -> int:
    """Join member runs into one ensemble run folder (:func:`csp.models.training.combine_members`)."""
    arrays = load_arrays(args.data)
    try:
        model, info = combine_members(args.runs, arrays)
    except (InputError, ModelNotFoundError) as exc:  # runs that are not one ensemble: say which, no traceback
        raise SystemExit(f"error: {exc}") from None
    path = save_checkpoint(args.out, model, info)
    test = info["metrics"]["test"]
    logging.info(
        "joined %d members into %s: test MAE %s eV/atom (n=%d)",
        model.n_members,
        path,
        test.get("mae_ev_per_atom"),
        test.get("count", 0),
    )
    return 0


def _train(args, arrays, settings):
    if args.mode == "transfer":
        model, info = train_transfer(arrays, args.init, settings, ensemble=args.ensemble, member=args.member)
    else:
        init_config = None
        if args.mode == "pu" and args.init is not None:
            from csp.models.training._loops import load_checkpoint

            init_config = load_checkpoint(args.init)[0].config
        base = dict(
            hidden=args.hidden,
            alignn_layers=args.alignn_layers,
            gcn_layers=args.gcn_layers,
            embedding=args.embedding,
            head_hidden=args.head_hidden,
        )
        if init_config is not None:  # the backbone must match the pretrained one
            base.update(
                {k: getattr(init_config, k) for k in ("hidden", "alignn_layers", "gcn_layers", "embedding")}
            )
        if args.mode == "dft":
            config = fidelity_config(ALIGNNConfig(task="regression", **base), arrays, args.fidelity)
            model, info = train_regression(
                arrays, config, settings, ensemble=args.ensemble or 1, member=args.member
            )
        else:
            config = ALIGNNConfig(task="pu", n_bags=args.n_bags, **base)
            model, info = train_pu(arrays, config, settings, init=args.init)
    return model, info


if __name__ == "__main__":
    raise SystemExit(main())
