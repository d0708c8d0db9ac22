"""``python -m flows.model_elements``: record in a model.json which elements the model was trained on.

The counting and writing live in :func:`csp.models.check.record_training_elements` (``training_elements``:
element symbol -> training rows containing it, summed over every training set the weights saw). The
scorer refuses elements with zero rows (:mod:`csp.models.infer`); campaigns report elements with few rows
(:mod:`flows.coverage`). ``model.onnx`` is not touched, so its sha256 stays valid. Earlier model folder
names (``onnx_models/alignn-dft``) resolve to the current ones (:func:`csp.models.names.resolve_model`).

Usage (training sets exported with ``csp models dataset``; their sha256 must match the card's)::

    python -m flows.model_elements onnx_models/ALIGNN-DFT-2026.11-Eform --data dft.npz
    python -m flows.model_elements onnx_models/ALIGNN-ExpTL-2026.11-Eform --data dft.npz --data transfer.npz
    python -m flows.model_elements onnx_models/ALIGNN-PU-2026.11-Psyn --data dft.npz --data pu.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from csp.models.check import record_training_elements
    from csp.models.names import resolve_model

    parser = argparse.ArgumentParser(description="Record training element counts in a model.json.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--data", type=Path, action="append", required=True)
    args = parser.parse_args(argv)
    command = (
        "python -m flows.model_elements " + str(args.folder) + "".join(f" --data {p.name}" for p in args.data)
    )
    folder = resolve_model(args.folder.parent, args.folder.name)
    counts = record_training_elements(folder, args.data, command)
    fewest = sorted(counts.items(), key=lambda kv: kv[1])[:5]
    sys.stdout.write(f"{folder.name}: {len(counts)} elements, fewest rows: {fewest}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
