"""Retrain the DFT model with and without the potential-labelled polymorphs (numpy + torch only).

Builds ``with.npz`` = the lake's DFT export + every labelled training row (prototype decorations,
their first frames and distortions, symmetric random structures; formation enthalpies from the
labels' own elemental references; the split of each composition from ``--splits``, the lake's
formula-hash split) and trains two models side by side with the same settings and time limit: one on
the DFT export alone, one on the augmented set. Each run's ``metrics.json`` holds the test MAE per
source; the DFT sources' test rows are the same in both.

    python benchmarks/augment_retrain.py --dft dft.npz --labels labels-*.npz --splits splits.json \
        --out runs --device cuda --time-limit-s 150
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csp.models.dataset import load_arrays, save_arrays
from csp.potentials.augment import StructureSet, training_rows, with_formation_enthalpies

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def augmented_arrays(dft: Path, labels: list[Path], splits: dict[str, str], out: Path) -> dict:
    base = load_arrays(dft)
    labelled, refs = with_formation_enthalpies(
        StructureSet.concatenate([StructureSet.load(p) for p in labels])
    )
    keep = training_rows(labelled)
    keep = keep[np.isin(labelled.formula[keep], list(splits))]
    aug = labelled.take(keep)
    name = str(aug.labels["potential"][0]) if len(aug) else "mlip"
    names = [*base.source_names.tolist(), name]
    save_arrays(
        out,
        natoms=np.concatenate([base.natoms, aug.natoms]),
        lattice=np.concatenate([base.lattice, aug.lattice.astype(np.float32)]),
        numbers=np.concatenate([base.numbers, aug.numbers.astype(np.int16)]),
        frac_coords=np.concatenate([base.frac_coords, aug.frac_coords.astype(np.float32)]),
        target=np.concatenate([base.target, aug.values["dhf_ev_per_atom"].astype(np.float32)]),
        split=np.concatenate([base.split, [SPLIT_CODES[splits[f]] for f in aug.formula]]).astype(np.int8),
        source=np.concatenate([base.source, np.full(len(aug), len(names) - 1)]),
        source_names=names,
        ids=np.concatenate([base.ids, [f"{name}:{i}" for i in aug.ids]]),
    )
    return {"base_rows": len(base), "augmented_rows": len(aug), "references": len(refs), "source": name}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dft", type=Path, required=True)
    p.add_argument("--labels", type=Path, nargs="+", required=True)
    p.add_argument("--splits", type=Path, required=True, help="JSON: reduced formula -> train/val/test")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--time-limit-s", type=float, default=150)
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more csp.models.training arguments")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    info = augmented_arrays(args.dft, args.labels, json.loads(args.splits.read_text()), args.out / "with.npz")
    info["build_s"] = round(time.time() - t0, 1)
    info["labelled_files"] = [str(x.name) for x in args.labels]
    print(json.dumps(info), flush=True)
    runs = {"without": args.dft, "with": args.out / "with.npz"}
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "csp.models.training",
                "dft",
                "--data",
                str(data),
                "--out",
                str(args.out / name),
                "--device",
                args.device,
                "--workers",
                str(args.workers),
                "--time-limit-s",
                str(args.time_limit_s),
                *args.extra,
            ]
        )
        for name, data in runs.items()
    }
    codes = {name: proc.wait() for name, proc in procs.items()}
    summary = {"info": info, "exit_codes": codes, "elapsed_s": round(time.time() - t0, 1)}
    for name in runs:
        metrics = args.out / name / "metrics.json"
        if metrics.is_file():
            summary[name] = json.loads(metrics.read_text())
    (args.out / "retrain-summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps({k: v for k, v in summary.items() if k not in runs}), flush=True)
    return 0 if all(c == 0 for c in codes.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
