"""A full-budget default campaign, timed: what `csp campaign run GaAs --crystal-system cubic` does.

Runs :func:`flows.campaigns.run_campaign` with the CLI's default parameters (fixed cubic, BO outer, PSO
inner, 200 x 300, Z 1..4, seed 0) into a fresh lake, and prints one JSON record: wall seconds, CPU seconds
of the process (all threads; less sensitive than wall time to other work on a shared machine), the
search's share of them (the scoring loop, without ranking), families, candidates, the top 5 space groups
and the 1-minute load average before and after. Run it from the root of the checkout to time (so that
checkout's code is imported)::

    CSP_HOME=$(mktemp -d) PYTHONPATH=. python benchmarks/bench_campaign_full.py GaAs --out result.json

``--outer``/``--inner`` shrink the budget for a quick try. ``--bo-only STEPS`` times just the outer BO
(the campaign's families, random fitness values) with torch on one thread (the default now) and on the
machine's default thread count. The results and the commands that made them are in
``benchmarks/results/campaign_full.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import csp
import csp.search.two_stage as search_module
from flows.campaigns import run_campaign


def bench_outer_bo(composition: str, crystal_system: str, steps: int) -> dict:
    """Wall and CPU seconds of ``steps`` outer BO steps with 1 torch thread and with torch's default."""
    import numpy as np
    import torch

    from csp.search.optimizers import FiniteSpace, make_optimizer
    from csp.search.two_stage import SearchConfig, campaign_families, family_features
    from csp.structures.composition import parse_composition

    cfg = SearchConfig(strategy="fixed", crystal_system=crystal_system, formula_units=(1, 4))
    features = family_features(campaign_families(parse_composition(composition).reduced()[0], cfg))
    out = {"composition": composition, "families": len(features), "steps": steps}
    for label, threads in (("1_thread", 1), ("default_threads", torch.get_num_threads())):
        opt = make_optimizer("bo", FiniteSpace(features), np.random.default_rng(1), torch_threads=threads)
        rng = np.random.default_rng(5)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            asked = opt.ask(1)
            opt.tell(asked, rng.random(len(asked)))
        out[label] = {
            "torch_threads": threads,
            "wall_s": round(time.perf_counter() - t0, 1),
            "cpu_s": round(time.process_time() - c0, 1),
        }
    out["load_1min"] = round(os.getloadavg()[0], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("composition")
    parser.add_argument("--outer", type=int, default=200)
    parser.add_argument("--inner", type=int, default=300)
    parser.add_argument("--crystal-system", default="cubic")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bo-only", type=int, default=0, metavar="STEPS")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.bo_only:
        print(json.dumps(bench_outer_bo(args.composition, args.crystal_system, args.bo_only)))
        return
    search_clock = {"wall": 0.0, "cpu": 0.0}
    run_search = search_module.run_search

    def timed_search(*a, **k):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return run_search(*a, **k)
        finally:
            search_clock["wall"] += time.perf_counter() - t0
            search_clock["cpu"] += time.process_time() - c0

    search_module.run_search = timed_search
    params = {
        "composition": args.composition,
        "strategy": "fixed",
        "crystal_system": args.crystal_system,
        "outer_steps": args.outer,
        "inner_steps": args.inner,
        "seed": args.seed,
    }
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    outcome = run_campaign(params)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    record = {
        "composition": args.composition,
        "crystal_system": args.crystal_system,
        "outer": args.outer,
        "inner": args.inner,
        "seed": args.seed,
        "code": str(Path(csp.__file__).resolve().parents[1].name),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "search_wall_s": round(search_clock["wall"], 1),
        "search_cpu_s": round(search_clock["cpu"], 1),
        "candidates": outcome.n_candidates,
        "top5_spacegroups": [t["spacegroup"] for t in outcome.top],
        "top1": f"{outcome.top[0]['spacegroup_symbol']} ({outcome.top[0]['spacegroup']})"
        if outcome.top
        else None,
        "load_1min_before_after": [round(load0, 1), round(os.getloadavg()[0], 1)],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    text = json.dumps(record)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
