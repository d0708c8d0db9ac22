"""How to rank refined structures: measured on polymorph cases OUTSIDE Table 1 (not tuned on Table 1).

For each composition (cubic ground states of ``flows.augmentation.POLYMORPH_CASES``: rock salt B1, CsCl
B2, zinc blende B3, fluorite C1), one campaign runs the product's own code path (``run_campaign``, fixed
cubic, refinement on). Its refined rows are then ranked by each candidate rule of
:func:`csp.potentials.refine.rank_refined` and the rank of the experimental structure type is recorded
(``csp.structures.matching.matches`` against the ideal prototype; - when not in the top 5):

* ``search``: the search's own top 5 (pure surrogate, before refinement);
* ``energy``: the potential's energy of the relaxed structures;
* ``fitness``: the models' FV on the relaxed structures;
* ``window``: FV among the relaxed structures within 50 meV/atom of the potential's lowest energy.

Command::

    CSP_DATA_MIRROR=... python benchmarks/bench_refine_ranking.py --outer 30 --inner 100 \\
        --out benchmarks/results/refine_ranking.md
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

#: composition -> (Strukturbericht type, space group, prototype sites in the conventional cell)
CASES = {
    "ZnS": "B3",
    "CsCl": "B2",
    "CuCl": "B3",
    "CaF2": "C1",
    "NaCl": "B1",
    "CsBr": "B2",
    "LiF": "B1",
    "CaO": "B1",
    "KBr": "B1",
    "SrF2": "C1",
}
RULES = ("search", "energy", "fitness", "window")


def prototype(formula: str, kind: str):
    """The ideal structure of a type (lattice constant irrelevant: StructureMatcher scales)."""
    from pymatgen.core import Composition, Lattice, Structure

    a, b = [el.symbol for el in Composition(formula).elements]
    if Composition(formula).get_el_amt_dict()[a] > Composition(formula).get_el_amt_dict()[b]:
        a, b = b, a  # a: the element with fewer atoms (the cation of fluorite)
    lat = Lattice.cubic(5.0)
    if kind == "B1":
        return Structure.from_spacegroup(225, lat, [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])
    if kind == "B2":
        return Structure.from_spacegroup(221, Lattice.cubic(3.5), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])
    if kind == "B3":
        return Structure.from_spacegroup(216, lat, [a, b], [[0, 0, 0], [0.25, 0.25, 0.25]])
    if kind == "C1":
        return Structure.from_spacegroup(225, lat, [a, b], [[0, 0, 0], [0.25, 0.25, 0.25]])
    raise ValueError(kind)


def rank_of(top: list[dict], reference) -> int | None:
    from csp.structures.matching import matches

    return next((t["rank"] for t in top if matches(t["structure"], reference)), None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outer", type=int, default=30)
    parser.add_argument("--inner", type=int, default=100)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("CSP_HOME", tempfile.mkdtemp())
    import torch

    torch.set_num_threads(1)
    from csp.potentials.refine import rank_refined
    from flows.campaigns import run_campaign
    from flows.settings import Settings
    from storage.candidates import LakeSink
    from storage.lake import Lake

    settings = Settings(threads=1)
    rows_md: list[str] = []
    wins = {r: [0, 0] for r in RULES}  # [rank 1, top 5]
    started = time.perf_counter()
    for formula, kind in CASES.items():
        if args.only and formula not in args.only:
            continue
        outcome = run_campaign(
            dict(
                composition=formula,
                strategy="fixed",
                crystal_system="cubic",
                outer_steps=args.outer,
                inner_steps=args.inner,
                seed=args.seed,
                refine=True,
            ),
            settings=settings,
        )
        history = LakeSink(Lake(settings.home), run_id="bench").history(outcome.campaign_id)
        refined = [r for r in history if r["stage"] == "refined"]
        reference = prototype(formula, kind)
        ranks = {"search": rank_of(outcome.top_search, reference)}
        for rule in RULES[1:]:
            ranks[rule] = rank_of(rank_refined(refined, k=5, rule=rule), reference)
        for rule, r in ranks.items():
            wins[rule][0] += r == 1
            wins[rule][1] += r is not None
        top_energy = rank_refined(refined, k=1, rule="energy")
        rows_md.append(
            f"| {formula} | {kind} | "
            + " | ".join("-" if ranks[r] is None else str(ranks[r]) for r in RULES)
            + f" | {len(refined)} | {sum(bool(r['converged']) for r in refined)} | "
            f"{top_energy[0]['spacegroup_symbol'] if top_energy else ''} | "
            f"{outcome.search_s:.0f} | {outcome.refine_s:.0f} |"
        )
        print(rows_md[-1], flush=True)
        write(args, rows_md, wins, time.perf_counter() - started)


def write(args, rows_md, wins, total) -> None:
    n = len(rows_md)
    lines = [
        "# Ranking refined structures: which rule? (polymorph cases outside Table 1)",
        "",
        f"Command: `python benchmarks/bench_refine_ranking.py --outer {args.outer} --inner {args.inner} "
        f"--seed {args.seed}` (fixed cubic, alpha 0.5, refinement defaults: top 32 distinct, CHGNet, "
        "FixSymmetry 0.01, fmax 0.05, 150 steps)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), one thread. Total {total / 60:.1f} min.",
        "",
        "| rule | rank 1 | top 5 |",
        "| --- | ---: | ---: |",
        *[f"| {r} | {wins[r][0]}/{n} | {wins[r][1]}/{n} |" for r in RULES],
        "",
        "Rank of the experimental type (- not in the top 5):",
        "",
        "| composition | type | "
        + " | ".join(RULES)
        + " | refined | converged | energy top-1 | search s | refine s |",
        "| --- | --- | " + " | ".join("---:" for _ in RULES) + " | ---: | ---: | --- | ---: | ---: |",
        *rows_md,
        "",
    ]
    text = "\n".join(lines)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
