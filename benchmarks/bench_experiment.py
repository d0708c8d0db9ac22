"""Error against experiment on the held-out experimental split: DFT model, transfer-learned model, raw DFT.

Command (after `csp ingest run`)::

    CSP_HOME=... CSP_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_experiment.py \
        --out benchmarks/results/experiment.md

Rows: the Jha et al. test split, each on its linked structure (validation compounds excluded). Raw DFT is
the linked structure's own DFT formation enthalpy, where it has one; all three errors are also given on
the rows that have a raw DFT value, so they compare like with like.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from csp.models.dataset import load_arrays, to_crystals
from csp.models.infer import Scorer
from flows.models import prepare_dataset
from flows.settings import settings as current_settings
from storage.lake import Lake


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = current_settings()
    with tempfile.TemporaryDirectory() as tmp:
        summary = prepare_dataset("transfer", Path(tmp) / "exp.npz", settings)
        arrays = load_arrays(summary.path)
    test = np.flatnonzero(arrays.split == 2)
    crystals = [to_crystals(arrays)[i] for i in test]
    target = arrays.target[test].astype(float)
    ids = [str(arrays.ids[i]).split(":", 1)[1] for i in test]
    scorer = Scorer(dft=settings.model_dir("dft"), exp=settings.model_dir("exp"))
    scores = scorer.score(crystals)
    linked = {
        r["source_id"]: r["linked_dhf_dft_ev_per_atom"]
        for r in Lake(settings.home)
        .query(
            "SELECT source_id, linked_dhf_dft_ev_per_atom FROM experimental_linked WHERE source = 'expt_deltae_jha2019'"
        )
        .to_pylist()
    }
    raw = np.array([linked.get(i) if linked.get(i) is not None else np.nan for i in ids], dtype=float)
    has_raw = np.isfinite(raw)

    def mae(pred: np.ndarray, mask: np.ndarray) -> float:
        return float(np.mean(np.abs(pred[mask] - target[mask])))

    all_rows = np.ones(len(test), dtype=bool)
    dft_all, exp_all = mae(scores.dhf_dft, all_rows), mae(scores.dhf_exp, all_rows)
    lines = [
        "# Formation enthalpy against experiment (held-out split)",
        "",
        "Command: `python benchmarks/bench_experiment.py --out benchmarks/results/experiment.md` (shipped models)",
        "",
        "| rows | n | DFT model | transfer-learned model | raw DFT of the linked structure |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| all test rows | {len(test)} | {dft_all:.3f} | {exp_all:.3f} | |",
        f"| test rows with a raw DFT value | {int(has_raw.sum())} | {mae(scores.dhf_dft, has_raw):.3f} | "
        f"{mae(scores.dhf_exp, has_raw):.3f} | {mae(raw, has_raw):.3f} |",
        "",
        f"MAE in eV/atom. Transfer learning changes the error by {100 * (exp_all - dft_all) / dft_all:+.1f}% against "
        "the DFT model (the paper: -27.2%).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
