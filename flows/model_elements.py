"""Record in a model.json which elements the model was trained on, with row counts.

``training_elements`` maps each element symbol to the number of training rows (structures) containing it,
summed over every training set the weights saw (a fine-tuned model: its pretraining set too). The scorer
refuses elements with zero rows (:mod:`csp.infer`); campaigns report elements with few rows
(:mod:`flows.coverage`). ``model.onnx`` is not touched, so its sha256 stays valid.

Usage (training sets exported with ``csp models dataset``; their sha256 must match the card's)::

    python -m flows.model_elements onnx_models/alignn-dft --data dft.npz
    python -m flows.model_elements onnx_models/alignn-exp --data dft.npz --data transfer.npz
    python -m flows.model_elements onnx_models/alignn-pu --data dft.npz --data pu.npz
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np


def element_rows(npz: Path) -> Counter:
    """``{symbol: structures containing it}`` of one training-set file (``csp.dataset`` layout)."""
    from pymatgen.core.periodic_table import Element

    from csp.dataset import load_arrays

    arrays = load_arrays(npz)
    counts: Counter = Counter()
    offsets = arrays.offsets
    for i in range(len(arrays)):
        for z in np.unique(arrays.numbers[offsets[i] : offsets[i + 1]]):
            counts[Element.from_Z(int(z)).symbol] += 1
    return counts


def record(folder: Path, datasets: list[Path], command: str) -> dict[str, int]:
    """Write ``training_elements`` (and where the counts came from) into ``folder/model.json``."""
    total: Counter = Counter()
    sources = []
    for npz in datasets:
        total += element_rows(npz)
        sources.append({"file": npz.name, "sha256": hashlib.sha256(npz.read_bytes()).hexdigest()})
    json_path = folder / "model.json"
    meta = json.loads(json_path.read_text())
    meta["training_elements"] = {s: int(total[s]) for s in sorted(total, key=lambda s: -total[s])}
    meta["training_elements_from"] = {"datasets": sources, "command": command}
    json_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta["training_elements"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Record training element counts in a model.json.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--data", type=Path, action="append", required=True)
    args = parser.parse_args(argv)
    command = (
        "python -m flows.model_elements " + str(args.folder) + "".join(f" --data {p.name}" for p in args.data)
    )
    counts = record(args.folder, args.data, command)
    fewest = sorted(counts.items(), key=lambda kv: kv[1])[:5]
    sys.stdout.write(f"{args.folder.name}: {len(counts)} elements, fewest rows: {fewest}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
