"""Held-out polymorph discrimination: does a PU model give a composition's experimental structure the highest P_syn?

Not a test. Scores the validation and test rows of a PU training set (``csp models dataset pu --out X.npz
[--hypothetical-polymorphs ...]``) with one or more exported PU model folders and reports, per split, TPR and
the unlabeled fraction at P_syn >= 0.5 and :func:`csp.models.pu_polymorphs.polymorph_discrimination` (on
compositions with a positive and unlabeled siblings: how often a positive scores highest; per sibling source).
The formula-hash split is the same for every PU set of the lake, so these rows are held out for the shipped
model too, and a candidate and the shipped model are compared on the same rows. Run from the repository root:

    csp models dataset pu --out pu-poly.npz --hypothetical-polymorphs 'data/labels/chgnet-0.3.0/part-*.parquet'
    python benchmarks/bench_pu_polymorphs.py --data pu-poly.npz --model onnx_models/ALIGNN-PU-2026.11-Psyn \
        [--model runs/onnx-pu-poly] --out benchmarks/results/pu_polymorphs.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from csp.models.dataset import TEST, VALIDATION, load_arrays, to_crystals
from csp.models.infer import OnnxModel
from csp.models.pu_polymorphs import composition_keys, polymorph_discrimination

REPO = Path(__file__).resolve().parents[1]
SPLITS = {"validation": VALIDATION, "test": TEST}


def evaluate(model: OnnxModel, arrays, keys: np.ndarray) -> dict:
    """Per held-out split: TPR and unlabeled fraction at 0.5, and polymorph discrimination."""
    out = {}
    for name, code in SPLITS.items():
        rows = np.flatnonzero(arrays.split == code)
        p_syn = model.score(to_crystals(arrays.subset(rows)))["p_syn_mean"]
        labels = arrays.target[rows].astype(int)
        pos, unl = labels == 1, labels == 0
        out[name] = {
            "positives": int(pos.sum()),
            "unlabeled": int(unl.sum()),
            "tpr_at_0.5": float((p_syn[pos] >= 0.5).mean()),
            "unlabeled_fraction_at_0.5": float((p_syn[unl] >= 0.5).mean()),
            "polymorphs": polymorph_discrimination(
                p_syn, labels, keys[rows], source=arrays.source[rows], source_names=arrays.source_names
            ),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a PU training set (.npz)")
    parser.add_argument("--model", type=Path, action="append", required=True, help="a PU model folder")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/pu_polymorphs.json")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    arrays = load_arrays(args.data)
    keys = composition_keys(arrays)
    results, seconds = {}, {}
    for folder in args.model:
        t0 = time.time()
        results[folder.name] = evaluate(OnnxModel(folder, threads=args.threads, role="pu"), arrays, keys)
        seconds[folder.name] = round(time.time() - t0, 1)
    command = f"python benchmarks/bench_pu_polymorphs.py --data {args.data.name} " + " ".join(
        f"--model {m.name}" for m in args.model
    )
    result = {
        "command": command,
        "data": {"file": args.data.name, "content_hash": arrays.content_hash(), "rows": len(arrays)},
        "machine": f"{platform.machine()}, {args.threads} onnxruntime threads",
        "seconds": seconds,
        "models": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# PU models on held-out polymorphs",
        "",
        f"Command: `{command}` ({len(arrays)} rows, content hash {result['data']['content_hash'][:12]}; "
        f"{result['machine']}).",
        "",
        f"The data is a PU training set of the lake (`csp models dataset pu --out {args.data.name}`, with "
        "`--hypothetical-polymorphs 'data/labels/chgnet-0.3.0/part-*.parquet'` for the CHGNet siblings); its "
        "content hash names it exactly.",
        "",
        "Per held-out split: TPR (positives at P_syn >= 0.5), the unlabeled rows at P_syn >= 0.5, and on the "
        "compositions with a positive and unlabeled siblings, the share where a positive gets the highest "
        "P_syn (random scores would give the baseline); the last column restricts the siblings to each source.",
        "",
        "| model | split | TPR | unlabeled >= 0.5 | compositions | positive highest | random | per sibling source |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, per_split in results.items():
        for split, m in per_split.items():
            poly = m["polymorphs"]
            by_source = ", ".join(
                f"{s} {v['positive_highest']:.2f} ({v['compositions']})"
                for s, v in poly.get("per_sibling_source", {}).items()
            )
            best = "n/a" if poly["positive_highest"] is None else f"{poly['positive_highest']:.3f}"
            base = "n/a" if poly["random_baseline"] is None else f"{poly['random_baseline']:.3f}"
            lines.append(
                f"| {name} | {split} | {m['tpr_at_0.5']:.3f} | {m['unlabeled_fraction_at_0.5']:.3f} | "
                f"{poly['compositions']} | {best} | {base} | {by_source} |"
            )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
