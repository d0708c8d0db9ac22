"""Benchmark (not a test): vectorised candidate generation and validity checking.

For MgO, GaAs and BaZrO3 it measures, per family set:
  * raw throughput of template build + constraint check on uniform unit-cube draws, and their invalid share;
  * the invalid share of what the search actually scores after rejection sampling (``sample_valid``).

Family sets: the experimental family (one template) and 'cubic' / 'all' strategy families (Z = 1..4),
averaged over up to 60 families drawn with a fixed seed.

Run:  PYTHONPATH=$PWD python benchmarks/bench_search.py [--out benchmarks/results/search.md]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from csp.search.generate import (
    Family,
    build_template,
    check_validity,
    enumerate_families,
    sample_valid,
    space_groups,
)
from csp.structures.composition import parse_composition

EXPERIMENTAL = {
    "MgO": Family(4, 225, (("Mg", "4a"), ("O", "4b"))),
    "GaAs": Family(4, 216, (("Ga", "4a"), ("As", "4c"))),
    "BaZrO3": Family(1, 221, (("Ba", "1a"), ("Zr", "1b"), ("O", "3c"))),
}
BATCH = 256


def measure(families: list[Family], rng: np.random.Generator) -> dict[str, float]:
    n_raw = n_bad = 0
    t_raw = 0.0
    n_scored = n_scored_bad = draws = 0
    t_sample = 0.0
    atoms = []
    for fam in families:
        tpl = build_template(fam)
        atoms.append(len(tpl.numbers))
        t0 = time.perf_counter()
        u = rng.random((BATCH, tpl.dim))
        batch = tpl.build(u)
        ok, _ = check_validity(
            batch.lattices, batch.frac_coords, batch.numbers, reference_volume=tpl.reference_volume
        )
        t_raw += time.perf_counter() - t0
        n_raw += BATCH
        n_bad += int((~ok).sum())
        t0 = time.perf_counter()
        _, valid, tried = sample_valid(tpl, 30, rng, max_draws=2048)
        t_sample += time.perf_counter() - t0
        n_scored += len(valid)
        n_scored_bad += int((~valid).sum())
        draws += tried
    return {
        "families": len(families),
        "mean_atoms": float(np.mean(atoms)),
        "raw_per_s": n_raw / t_raw,
        "raw_invalid": n_bad / n_raw,
        "scored_invalid": n_scored_bad / n_scored,
        "valid_per_s_sampled": (n_scored - n_scored_bad) / t_sample,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write a markdown table here")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    lines = [
        "| composition | family set | families | mean atoms | raw cand./s | raw invalid "
        "| valid/s (rejection) | scored invalid |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for formula, fam in EXPERIMENTAL.items():
        comp = parse_composition(formula)
        sets = {f"experimental {fam.spacegroup} {fam.wyckoff}": [fam]}
        for strategy, system in (("fixed", "cubic"), ("all", None)):
            fams = enumerate_families(comp, range(1, 5), space_groups(strategy, system), rng)
            pick = rng.choice(len(fams), size=min(60, len(fams)), replace=False)
            sets[f"{system or 'all'} (Z 1-4)"] = [fams[i] for i in pick]
        for name, fams in sets.items():
            m = measure(fams, rng)
            line = (
                f"| {formula} | {name} | {m['families']} | {m['mean_atoms']:.1f} | {m['raw_per_s']:,.0f} | "
                f"{m['raw_invalid']:.1%} | {m['valid_per_s_sampled']:,.0f} | {m['scored_invalid']:.1%} |"
            )
            print(line)
            lines.append(line)
    if args.out:
        header = [
            "# Search benchmark: candidate generation and validity",
            "",
            f"Command: `PYTHONPATH=$PWD python benchmarks/bench_search.py --out {args.out}`",
            f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
            "numpy on CPU (shared 2-core box; timings are indicative).",
            "",
            "raw = uniform unit-cube draws through template build + constraint check (batches of 256);",
            "rejection = `sample_valid` (what random proposals in the search use; batches of 30, at most "
            "2048 draws); scored invalid = share of those 30 still invalid (unsatisfiable in budget).",
            "",
        ]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(header + lines) + "\n")


if __name__ == "__main__":
    main()
