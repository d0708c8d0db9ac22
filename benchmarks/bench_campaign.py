"""End-to-end campaign throughput on this CPU, with the share of time per part.

Command::

    CSP_HOME=$(mktemp -d) .venv/bin/python benchmarks/bench_campaign.py --outer 20 --inner 300 \
        --out benchmarks/results/campaign.md

Parts: generation + constraint checks (candidate building from the Wyckoff templates), the outer and
inner optimizers' ask/tell (the outer BO's GP fits), graph building (numpy), model scoring
(onnxruntime), storage (Parquet appends). Scoring runs the shipped models exactly as a campaign does.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import csp.search.two_stage as search_module
from csp.models.graphs import build_graphs_same_species
from csp.models.infer import Scorer
from csp.search.optimizers import FiniteSpace
from csp.search.two_stage import SearchConfig, run_search
from flows.settings import settings as current_settings
from storage.candidates import LakeSink
from storage.lake import Lake

OPTIMIZER_SECONDS = {"outer optimizer": 0.0, "inner optimizer": 0.0, "sampling": 0.0}
_make_optimizer = search_module.make_optimizer
_sample_valid = search_module.sample_valid


def _timed_sampling(*args, **kwargs):
    """Rejection sampling of valid candidates (generation), called from inside the optimizers' ask."""
    t0 = time.perf_counter()
    out = _sample_valid(*args, **kwargs)
    OPTIMIZER_SECONDS["sampling"] += time.perf_counter() - t0
    return out


def _timed_optimizer(name, space, rng, *args, **options):
    """Optimizers as the search makes them, with their own ask/tell time (sampling excluded) added up."""
    optimizer = _make_optimizer(name, space, rng, *args, **options)
    key = "outer optimizer" if isinstance(space, FiniteSpace) else "inner optimizer"
    for method in ("ask", "tell"):
        inner = getattr(optimizer, method)

        def timed(*a, _inner=inner, **k):
            t0, sampled0 = time.perf_counter(), OPTIMIZER_SECONDS["sampling"]
            out = _inner(*a, **k)
            sampled = OPTIMIZER_SECONDS["sampling"] - sampled0
            OPTIMIZER_SECONDS[key] += time.perf_counter() - t0 - sampled
            return out

        setattr(optimizer, method, timed)
    return optimizer


search_module.make_optimizer = _timed_optimizer
search_module.sample_valid = _timed_sampling


class TimedScorer:
    """The campaign's scorer, split into graph building and onnxruntime time."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.t = {"graphs": 0.0, "scoring": 0.0}
        self.n = 0

    def enthalpy(self, numbers, lattices, frac):
        t0 = time.perf_counter()
        graphs = build_graphs_same_species(lattices, frac, numbers, k=self.scorer.k)
        t1 = time.perf_counter()
        out = self.scorer.models["exp"].run_graphs(graphs)["dhf"]
        self.t["graphs"] += t1 - t0
        self.t["scoring"] += time.perf_counter() - t1
        self.n += len(lattices)
        return out

    def synthesizability(self, crystals):
        t0 = time.perf_counter()
        scores = self.scorer.score(crystals, include=["pu"])
        self.t["scoring"] += time.perf_counter() - t0
        return scores.p_syn, scores.p_syn_std


class TimedSink(LakeSink):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seconds = 0.0

    def append(self, rows):
        t0 = time.perf_counter()
        super().append(rows)
        self.seconds += time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--composition", default="MgO")
    parser.add_argument("--outer", type=int, default=20)
    parser.add_argument("--inner", type=int, default=300)
    parser.add_argument("--optimizer", default="bo")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = current_settings()
    scorer = Scorer(
        exp=settings.model_dir("exp"),
        pu=settings.model_dir("pu"),
        threads=settings.threads,
    )
    timed = TimedScorer(scorer)
    home = Path(os.environ.get("CSP_HOME") or tempfile.mkdtemp())
    sink = TimedSink(Lake(home), run_id="bench")
    config = SearchConfig(
        strategy="fixed",
        crystal_system="cubic",
        outer_optimizer=args.optimizer,
        inner_optimizer="pso",
        outer_steps=args.outer,
        inner_steps=args.inner,
        formula_units=(1, 4),
        seed=0,
    )
    t0 = time.perf_counter()
    result = run_search(args.composition, config, timed, sink, campaign_id=f"bench-{time.time_ns()}")
    total = time.perf_counter() - t0
    outer_opt, inner_opt = OPTIMIZER_SECONDS["outer optimizer"], OPTIMIZER_SECONDS["inner optimizer"]
    search = total - timed.t["graphs"] - timed.t["scoring"] - sink.seconds - outer_opt - inner_opt
    invalid = result.invalid_inner / max(result.inner_evaluations, 1)
    lines = [
        "# End-to-end campaign throughput",
        "",
        f"Command: `python benchmarks/bench_campaign.py --composition {args.composition} --outer {args.outer} "
        f"--inner {args.inner} --optimizer {args.optimizer}` (shipped models alignn-exp + alignn-pu, "
        f"onnxruntime {settings.threads} threads)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}.",
        "",
        f"- candidates proposed and stored: {result.inner_evaluations} inner + {len(result.outer_rows)} outer rows",
        f"- wall time: {total:.1f} s -> **{result.inner_evaluations / total:.0f} candidates/s end to end**",
        f"- valid structures scored per second: {(result.inner_evaluations - result.invalid_inner) / total:.0f} "
        "(GN-OA-style loop: about 0.1/s)",
        f"- invalid proposals: {invalid:.1%} (GN-OA: about 84%)",
        "",
        "| part | seconds | share |",
        "| --- | ---: | ---: |",
    ]
    for name, sec in (
        ("generation + constraint checks", search),
        (f"outer optimizer ({args.optimizer})", outer_opt),
        ("inner optimizer (pso)", inner_opt),
        ("graph building", timed.t["graphs"]),
        ("model scoring (onnxruntime)", timed.t["scoring"]),
        ("storage (Parquet appends)", sink.seconds),
    ):
        lines.append(f"| {name} | {sec:.1f} | {sec / total:.0%} |")
    gen_graph_store = search + timed.t["graphs"] + sink.seconds
    lines += [
        "",
        f"Generation + graphs + storage = {gen_graph_store:.1f} s vs scoring {timed.t['scoring']:.1f} s.",
        f"Best outer fitness: {min(r['fitness'] for r in result.outer_rows):.3f}",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
