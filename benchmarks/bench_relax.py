"""Symmetry-kept relaxations per second: the batched relaxer beside the per-structure ASE path (CHGNet).

Not a test. Run from the repository root:

    python benchmarks/bench_relax.py --out benchmarks/results/relax.md            # 1 CPU thread
    python benchmarks/bench_relax.py --quick                                       # under a minute on CPU
    python benchmarks/bench_relax.py --device cuda --out benchmarks/results/relax_gpu.md
    python benchmarks/bench_relax.py --device cuda --sizes 8 16 --count 64 --large-count 1024 \
        --out benchmarks/results/relax_gpu.md                                     # plus a 1,024-cell pool

Cells of 8, 16 and 32 atoms (rock-salt MgO, zinc-blende GaAs and wurtzite ZnO supercells, each strained
by a seeded random isotropic scale of 0.94-1.07 and an axial strain of +-3 %, wurtzite's u moved by up to
0.01), relaxed keeping their space group (``FIX_SYMPREC``, collapse/explode stops as refinement) to
``fmax`` 0.05 eV/A in at most 150 FIRE steps, all cells of one size in one pool. Both engines see the same
structures on the same device with the same torch thread count.

The batched relaxer runs once per CHGNet graph builder of ``--graphs``: ``device`` (the whole pool's graphs
built as tensors on the device, :mod:`csp.potentials.chgnet_graphs`, the default) and ``converter``
(CHGNet's ``CrystalGraphConverter``, one pymatgen structure at a time on the CPU). The ASE path always uses
CHGNet's own ``predict_structure`` (the converter). ``--large-count N`` adds one more batched run (device
graphs, no ASE twin) of N cells of each size in one pool: the throughput a GPU reaches on a full pool.

Reported per engine and size: relaxations per second (wall clock of ``relax``), FIRE steps, states; for
the batched relaxer also the share of each step spent in the potential's batched call, the share spent
building CHGNet's graphs and their milliseconds per step (timed inside the run, after the device's queued
work), and the relaxer's overhead over the potential's call.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from csp.potentials.refine import COLLAPSE_RATIO, EXPLODE_RATIO, FIX_SYMPREC
from csp.potentials.relaxer import RelaxJob, load_potential, relax
from csp.structures.crystal import Crystal

FCC = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
#: The runs of a size, in table order: ASE, batched on device graphs, batched on CHGNet's converter graphs,
#: and the large batched pool (``--large-count``).
RUN_KEYS = ("ase", "batched", "batched_converter", "batched_large")


def base_cells() -> dict[str, Crystal]:
    """The three 8-atom parents: rock-salt MgO, zinc-blende GaAs, wurtzite ZnO (1x1x2)."""
    rocksalt = Crystal(
        np.eye(3) * 4.21, [12] * 4 + [8] * 4, np.vstack([FCC, (FCC + np.array([0.5, 0, 0])) % 1])
    )
    zincblende = Crystal(np.eye(3) * 5.65, [31] * 4 + [33] * 4, np.vstack([FCC, FCC + 0.25]))
    a, c, u = 3.25, 5.21, 0.38
    hexagonal = np.array([[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, 2 * c]])
    half = np.array([[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, u], [2 / 3, 1 / 3, 0.5 + u]])
    frac = np.vstack([half * [1, 1, 0.5], half * [1, 1, 0.5] + [0, 0, 0.5]])
    wurtzite = Crystal(hexagonal, [30, 30, 8, 8] * 2, frac)
    return {"MgO": rocksalt, "GaAs": zincblende, "ZnO": wurtzite}


def supercell(crystal: Crystal, reps: tuple[int, int, int]) -> Crystal:
    shifts = np.array([[i, j, k] for i in range(reps[0]) for j in range(reps[1]) for k in range(reps[2])])
    frac = ((crystal.frac_coords[None] + shifts[:, None]) / reps).reshape(-1, 3)
    return Crystal(crystal.lattice * np.array(reps)[:, None], np.tile(crystal.numbers, len(shifts)), frac)


def cells(n_atoms: int, count: int, seed: int = 0) -> list[Crystal]:
    """``count`` strained cells of ``n_atoms`` atoms (seeded)."""
    reps = {8: (1, 1, 1), 16: (2, 1, 1), 32: (2, 2, 1)}[n_atoms]
    rng = np.random.default_rng(seed + n_atoms)
    bases = list(base_cells().items())
    out = []
    for k in range(count):
        name, base = bases[k % len(bases)]
        frac = base.frac_coords.copy()
        if name == "ZnO":
            frac[base.numbers == 8, 2] += rng.uniform(-0.01, 0.01) / 2
        strain = np.eye(3) * rng.uniform(0.94, 1.07)
        strain[2, 2] *= 1 + rng.uniform(-0.03, 0.03)
        out.append(supercell(Crystal(base.lattice @ strain, base.numbers, frac), reps))
    return out


def run_engine(
    potential, crystals: list[Crystal], engine: str, steps: int, fmax: float, graphs: str = "device"
) -> dict:
    """One relaxation run of ``crystals`` in one pool; ``graphs`` is CHGNet's graph builder (batched engine)."""
    jobs = [RelaxJob(c, steps, k) for k, c in enumerate(crystals)]
    timing = {"potential_s": 0.0, "step_s": 0.0, "steps": 0}
    potential.graphs = graphs
    potential.profile = engine == "batched"
    potential.timings = {"graph_s": 0.0, "model_s": 0.0, "calls": 0}
    kwargs = dict(fmax=fmax, pool=len(jobs), symprec=FIX_SYMPREC, collapse_ratio=COLLAPSE_RATIO)
    kwargs["explode_ratio"] = EXPLODE_RATIO
    start = time.perf_counter()
    if engine == "batched":
        from threadpoolctl import threadpool_limits

        from csp.potentials.batched import relax_batched

        def hook(potential_s: float, step_s: float) -> None:
            timing["potential_s"] += potential_s
            timing["step_s"] += step_s
            timing["steps"] += 1

        with threadpool_limits(limits=1, user_api="blas"):
            done = relax_batched(potential, jobs, step_hook=hook, **kwargs)
    else:
        done = relax(potential, jobs, engine="ase", **kwargs)
    elapsed = time.perf_counter() - start
    potential.profile = False
    out = {
        "engine": engine,
        "graphs": graphs if engine == "batched" else "converter (predict_structure)",
        "structures": len(jobs),
        "seconds": elapsed,
        "relaxations_per_s": len(jobs) / elapsed,
        "fire_steps_total": int(sum(d.steps for d in done)),
        "fire_steps_mean": float(np.mean([d.steps for d in done])),
        "states": dict(Counter(d.state for d in done)),
        "energies_ev_per_atom": [float(d.energy) for d in sorted(done, key=lambda d: d.job.payload)],
    }
    if engine == "batched" and timing["steps"]:
        out.update(
            pool_steps=timing["steps"],
            potential_share=timing["potential_s"] / timing["step_s"],
            overhead_over_potential=(timing["step_s"] - timing["potential_s"]) / timing["potential_s"],
            ms_per_pool_step=1000 * timing["step_s"] / timing["steps"],
            graph_share=potential.timings["graph_s"] / timing["step_s"],
            graph_building_ms_per_step=1000 * potential.timings["graph_s"] / timing["steps"],
        )
    return out


def write_markdown(path: Path, result: dict) -> None:
    meta = result["meta"]
    lines = [
        "# Batched relaxation",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Machine: {meta['machine']}; device {meta['device']}; torch {meta['torch']} with "
        f"{meta['threads']} thread(s); potential {meta['potential']}. At most {meta['steps']} FIRE steps, "
        f"fmax {meta['fmax']} eV/A, symmetry kept at {meta['symprec']} A, all {meta['count']} cells of a size "
        "in one pool (the ASE path: one ASE FIRE + FrechetCellFilter + FixSymmetry per structure, one "
        "batched CHGNet `predict_structure` per step)"
        + (
            f"; one more batched run of {meta['large_count']} cells per size in one pool"
            if meta.get("large_count")
            else ""
        )
        + f"; at most {meta.get('batch_size', 256)} structures per CHGNet model call.",
        "",
        "| atoms | engine | CHGNet graphs | pool | relaxations/s | speed-up | mean FIRE steps | states "
        "| potential share of a step | graph-building share of a step | relaxer overhead over the potential "
        "| graph building per step |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for size, runs in result["sizes"].items():
        base = runs.get("ase", {}).get("relaxations_per_s")
        for key in RUN_KEYS:
            r = runs.get(key)
            if r is None:
                continue
            speed = f"{r['relaxations_per_s'] / base:.2f}x" if base else ""
            states = ", ".join(f"{k} {v}" for k, v in sorted(r["states"].items()))
            share = f"{100 * r['potential_share']:.0f}%" if "potential_share" in r else ""
            graph_share = f"{100 * r['graph_share']:.0f}%" if "graph_share" in r else ""
            over = f"{100 * r['overhead_over_potential']:.1f}%" if "overhead_over_potential" in r else ""
            graph_ms = (
                f"{r['graph_building_ms_per_step']:.1f} ms" if "graph_building_ms_per_step" in r else ""
            )
            lines.append(
                f"| {size} | {r['engine']} | {r.get('graphs', '')} | {r['structures']} "
                f"| {r['relaxations_per_s']:.2f} | {speed} | {r['fire_steps_mean']:.1f} "
                f"| {states} | {share} | {graph_share} | {over} | {graph_ms} |"
            )
        for key, label in (
            ("max_energy_difference_ev_per_atom", "batched (device graphs) vs ASE"),
            ("max_energy_difference_graphs_ev_per_atom", "batched, device vs converter graphs"),
        ):
            if key in runs:
                lines.append(
                    f"| {size} | largest final-energy difference, {label} | | | "
                    f"{1000 * runs[key]:.3f} meV/atom | | | | | | | |"
                )
    lines += [
        "",
        "The potential's share is the time in `energies_forces_stresses` (CHGNet's graphs, then its model "
        "and the backward pass for forces and stress) over the whole step; the graph-building share and "
        "milliseconds are the part of it spent building the graphs (`device`: `csp.potentials.chgnet_graphs` "
        "on the pool's device; `converter`: CHGNet's `CrystalGraphConverter` per structure on the CPU, "
        "batched by CHGNet's own `forward`); the overhead is the rest of the step (geometry, symmetrisation, "
        "Frechet cell forces, FIRE, stops, joins and leaves) over the potential's time. Timed inside the "
        "run, after the device's queued work.",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32], choices=[8, 16, 32])
    parser.add_argument("--count", type=int, default=12, help="cells per size (one pool)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--fmax", type=float, default=0.05)
    parser.add_argument("--engines", nargs="+", default=["ase", "batched"], choices=["ase", "batched"])
    parser.add_argument(
        "--graphs",
        nargs="+",
        default=["device", "converter"],
        choices=["device", "converter"],
        help="CHGNet graph builders of the batched engine (one run each)",
    )
    parser.add_argument(
        "--large-count", type=int, default=0, help="also a batched run (device graphs) of this many cells"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="structures per CHGNet model call")
    parser.add_argument("--quick", action="store_true", help="3 cells of 8 and 16 atoms, 20 steps at most")
    parser.add_argument("--out", type=Path, help="markdown results file (a .json beside it)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.count, args.steps = [8, 16], 3, 20
    torch.set_num_threads(args.threads)
    potential = load_potential("chgnet", args.device, args.batch_size)
    result: dict = {
        "meta": {
            "command": "python benchmarks/bench_relax.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}",
            "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
            "torch": torch.__version__,
            "threads": args.threads,
            "potential": potential.name,
            "steps": args.steps,
            "fmax": args.fmax,
            "symprec": FIX_SYMPREC,
            "count": args.count,
            "graphs": args.graphs,
            "large_count": args.large_count,
            "batch_size": args.batch_size,
        },
        "sizes": {},
    }
    # warm-up (model load, first graphs, allocator)
    for graphs in args.graphs:
        run_engine(potential, cells(8, 2), "batched", 2, args.fmax, graphs)
    for size in args.sizes:
        crystals = cells(size, args.count)
        todo = [("ase", "ase", "converter")] if "ase" in args.engines else []
        if "batched" in args.engines:
            todo += [(RUN_KEYS[1] if g == "device" else RUN_KEYS[2], "batched", g) for g in args.graphs]
        runs: dict = {}
        for key, engine, graphs in todo:
            runs[key] = run_engine(potential, crystals, engine, args.steps, args.fmax, graphs)
            sys.stderr.write(f"{size} atoms {key}: {runs[key]['relaxations_per_s']:.2f} relaxations/s\n")
        if args.large_count:
            large = cells(size, args.large_count)
            runs[RUN_KEYS[3]] = run_engine(potential, large, "batched", args.steps, args.fmax, "device")
            rate = runs[RUN_KEYS[3]]["relaxations_per_s"]
            sys.stderr.write(f"{size} atoms {RUN_KEYS[3]}: {rate:.2f} relaxations/s\n")
        for key, a, b in (
            ("max_energy_difference_ev_per_atom", "ase", "batched"),
            ("max_energy_difference_graphs_ev_per_atom", "batched_converter", "batched"),
        ):
            if a in runs and b in runs:
                diff = np.abs(
                    np.array(runs[a]["energies_ev_per_atom"]) - np.array(runs[b]["energies_ev_per_atom"])
                )
                runs[key] = float(np.nanmax(diff))
        result["sizes"][str(size)] = runs
    text = json.dumps(result, indent=1)
    if args.out is not None:
        args.out.with_suffix(".json").write_text(text + "\n")
        write_markdown(args.out, result)
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
