"""Reading a full-size search history: load_candidates, an OPTIMADE filter and the convergence plot.

Command::

    .venv/bin/python benchmarks/bench_history.py --out benchmarks/results/history.md

Writes one campaign of the default size (200 families x 300 structures = 60,000 inner rows plus 200 outer
rows; MgO rock-salt cells with varied lattice constants and energies, not model predictions) into a
temporary lake as one Parquet part, then times, as the median of 5 runs each: every candidate of the
campaign as a DataFrame (with best-so-far values and the OPTIMADE fields), an OPTIMADE filter over it, and
the convergence plot saved as PNG.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure

from csp import plots
from storage.candidates import LakeSink, record_event
from storage.lake import Lake
from storage.query import load_candidates

FILTER = 'elements HAS ALL "Mg","O" AND nsites<=8 AND _csp_dhf < -3.0'


def build(root: Path, outer_steps: int, inner_steps: int) -> Lake:
    lake = Lake(root).init()
    rng = np.random.default_rng(0)
    cell = Structure.from_spacegroup("Fm-3m", Lattice.cubic(1.0), ["Mg", "O"], [[0, 0, 0], [0.5] * 3])
    numbers = [site.specie.Z for site in cell]
    frac = cell.frac_coords.reshape(-1).tolist()
    rows = []
    for o in range(outer_steps):
        dhf = rng.normal(-2.8, 0.2, inner_steps)
        for i in range(-1, inner_steps):
            a = 4.0 + 0.4 * rng.random()
            best = float(dhf.min())
            rows.append(
                {
                    "campaign_id": "bench",
                    "stage": "outer" if i < 0 else "inner",
                    "outer_step": o,
                    "inner_step": i,
                    "family_index": o,
                    "formula": "MgO",
                    "formula_units": 4,
                    "spacegroup": 225,
                    "crystal_system": "cubic",
                    "wyckoff": "Mg:4a O:4b",
                    "lattice": [a, 0.0, 0.0, 0.0, a, 0.0, 0.0, 0.0, a],
                    "numbers": numbers,
                    "frac_coords": frac,
                    "x": [0.5],
                    "dhf_pred_ev_per_atom": best if i < 0 else float(dhf[i]),
                    "p_syn": float(rng.random()) if i < 0 else None,
                    "p_syn_std": 0.05 if i < 0 else None,
                    "fitness": float(rng.random()) if i < 0 else None,
                    "valid": True,
                    "reject_reason": "",
                    "seed": 0,
                    "seconds": 0.01 * (o * inner_steps + i + 1),
                }
            )
    params = {"composition": "MgO", "outer_optimizer": "bo", "inner_optimizer": "pso", "seed": 0}
    record_event(lake, "bench", composition="MgO", status="completed", parameters=params, run_id="bench")
    LakeSink(lake, run_id="bench").append(rows)
    return lake


def median_seconds(action, repeats: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outer-steps", type=int, default=200)
    parser.add_argument("--inner-steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lake = build(Path(tmp) / "home", args.outer_steps, args.inner_steps)
        load_s, df = median_seconds(lambda: load_candidates(campaign="bench", home=lake))
        filter_s, hits = median_seconds(lambda: load_candidates(FILTER, campaign="bench", home=lake))
        plot_s, _ = median_seconds(lambda: plots.save(plots.convergence(df), Path(tmp) / "c.png"))
    lines = [
        "# History benchmark: reading one full-size campaign",
        "",
        f"Command: `python benchmarks/bench_history.py --outer-steps {args.outer_steps} "
        f"--inner-steps {args.inner_steps} --out benchmarks/results/history.md`",
        "",
        f"Machine: {platform.machine()}, {__import__('os').cpu_count()} CPUs, Python {platform.python_version()}.",
        "Median of 5 runs each.",
        "",
        "| what | rows | seconds |",
        "| --- | ---: | ---: |",
        f"| load_candidates(campaign) (DataFrame, best-so-far and OPTIMADE fields) | {len(df)} | {load_s:.2f} |",
        f"| load_candidates('{FILTER}') | {len(hits)} | {filter_s:.2f} |",
        f"| convergence plot saved as PNG | {len(df)} | {plot_s:.2f} |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
