"""Scoring throughput (structures/s, graphs included): onnxruntime on the CPU vs the torch path on CPU and GPU.

Not a test. Run from the repository root (any machine; the CUDA column needs a GPU)::

    PYTHONPATH=. python benchmarks/bench_scoring.py --out benchmarks/results/scoring.md

On a GPU machine (onnxruntime on every core as the baseline, torch on the GPU; torch on the CPU only up to
batch 256, to stay within a 10-minute command)::

    PYTHONPATH=. python benchmarks/bench_scoring.py --threads 16 --max-torch-cpu-batch 256 \
        --out benchmarks/results/scoring_gpu.md

The results file is rewritten after every row, so a run stopped at a time limit keeps what it measured.

What is timed: the scorer's own calls, end to end, as a campaign makes them (element checks, graph
building, the model, results back in numpy), with the shipped enthalpy model (``exp``, the inner loop's
model) unless ``--models`` says otherwise:

* ``mixed``: ``score(crystals)`` on cells of 8 to 32 atoms (sizes drawn uniformly), the P_syn / file path;
* ``inner N``: ``score_same_species(lattices, frac, numbers)`` on cells of one N-atom species list, the
  search's inner loop.

Backends: ``onnx`` (:class:`csp.models.infer.OnnxModels`, numpy graphs, the shipped sessions), ``onnx-exact``
(the same with an exact sigmoid, :func:`csp.models.torch_scoring.exact_sigmoid_session`: what fixing
onnxruntime's approximate sigmoid would cost), ``torch-cpu`` and ``torch-cuda``
(:class:`csp.models.torch_scoring.TorchModels`, graphs built on the device). Graph building alone is timed
too (numpy, and the torch builder on the GPU when there is one). Cells: random positions on a jittered grid at
16 A^3/atom in a sheared box (fixed seed), elements O, Mg, Si, Ti, Fe, Cu, all passing the distance rule.
"""

from __future__ import annotations

import os

# idle OpenMP threads sleep instead of spinning (set before torch starts its pool): on a shared CPU a
# spinning thread takes the core its partner needs, and torch's CPU kernels ran up to 9x slower here
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import platform
import shlex
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from csp.models.device_graphs import build_device_graphs, build_device_graphs_same_species
from csp.models.graphs import build_graphs, build_graphs_same_species
from csp.models.infer import OnnxModels
from csp.models.names import DEFAULT_MODELS
from csp.models.torch_scoring import TorchModels, exact_sigmoid_session
from csp.structures.crystal import Crystal
from csp.structures.validity import GeometryError

REPO = Path(__file__).resolve().parents[1]
ELEMENTS = (8, 12, 14, 22, 26, 29)
BACKENDS = ("onnx", "onnx-exact", "torch-cpu", "torch-cuda")


def grid_shape(n_atoms: int) -> tuple[int, int, int]:
    """The most even box of grid points a <= b <= c with a * b * c >= n_atoms and the fewest spare points."""
    shapes = [
        (a, b, c)
        for a in range(1, n_atoms + 1)
        for b in range(a, n_atoms + 1)
        for c in range(b, n_atoms + 1)
        if a * b * c >= n_atoms and a * b * (c - 1) < n_atoms
    ]
    return min(shapes, key=lambda s: (s[0] * s[1] * s[2], s[2] / s[0]))


def cell(
    n_atoms: int, rng: np.random.Generator, spacing: float = 16.0 ** (1 / 3)
) -> tuple[np.ndarray, np.ndarray]:
    """A sheared cell of ``n_atoms`` on a jittered grid (~16 A^3/atom): lattice (3, 3) Angstrom, fractional coords."""
    shape = np.array(grid_shape(n_atoms))
    points = np.stack(np.meshgrid(*[np.arange(m) for m in shape], indexing="ij"), -1).reshape(-1, 3)
    chosen = points[rng.choice(len(points), n_atoms, replace=False)]
    frac = (chosen + 0.5 + rng.uniform(-0.1, 0.1, chosen.shape)) / shape
    lattice = (np.eye(3) + rng.normal(0, 0.05, (3, 3))) * (shape * spacing)[:, None]
    return lattice, frac


def mixed_cells(count: int, sizes: tuple[int, int], seed: int = 0) -> list[Crystal]:
    """``count`` cells of sizes drawn uniformly in ``sizes``, every one passing the distance rule."""
    rng = np.random.default_rng(seed)
    out: list[Crystal] = []
    while len(out) < count:
        n = int(rng.integers(sizes[0], sizes[1] + 1))
        lattice, frac = cell(n, rng)
        crystal = Crystal(lattice, rng.choice(ELEMENTS, n), frac)
        try:
            build_graphs([crystal])
        except GeometryError:
            continue
        out.append(crystal)
    return out


def same_species_cells(count: int, n_atoms: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` cells sharing one list of ``n_atoms`` atomic numbers: lattices, fractional coords, numbers."""
    rng = np.random.default_rng(seed)
    numbers = rng.choice(ELEMENTS, n_atoms)
    lattices, fracs = [], []
    while len(lattices) < count:
        lattice, frac = cell(n_atoms, rng)
        try:
            build_graphs([Crystal(lattice, numbers, frac)])
        except GeometryError:
            continue
        lattices.append(lattice)
        fracs.append(frac)
    return np.stack(lattices), np.stack(fracs), numbers


def load_average() -> str:
    """The 1-minute load average (the CPU is shared: noise), or n/a."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "n/a"


def rate(fn: Callable[[], object], n: int, min_time: float, cuda: bool = False) -> float:
    """Structures per second: one warm-up call, then calls until ``min_time`` seconds (at least one)."""
    fn()
    if cuda:
        torch.cuda.synchronize()
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < min_time:
        fn()
        calls += 1
    if cuda:
        torch.cuda.synchronize()
    return calls * n / (time.perf_counter() - start)


def open_backend(name: str, kinds: list[str], threads: int) -> OnnxModels:
    folders = {kind: REPO / "onnx_models" / DEFAULT_MODELS[kind] for kind in kinds}
    if name.startswith("torch"):
        device = "cuda" if name == "torch-cuda" else "cpu"
        return TorchModels(**folders, device=device, threads=threads, allow_unseen_elements=True)
    models = OnnxModels(**folders, threads=threads, allow_unseen_elements=True)
    if name == "onnx-exact":
        for model in models.models.values():
            model.session = exact_sigmoid_session(model.folder / "model.onnx", threads)
    return models


def calls(workload: str, batch: int, mixed: list[Crystal], inner: dict, kinds: list[str], device: str):
    """The scorer call (given the models), the numpy graph call and the torch graph call of one measurement."""
    if workload == "mixed":
        chosen = mixed[:batch]

        def score(models: OnnxModels):
            return models.score(chosen, batch_size=batch, include=kinds)

        def numpy_graphs():
            return build_graphs(chosen)

        def torch_graphs():
            return build_device_graphs(chosen, device=device)

        return score, numpy_graphs, torch_graphs
    lattices, frac, numbers = inner[workload]
    lattices, frac = lattices[:batch], frac[:batch]

    def score_inner(models: OnnxModels):
        return models.score_same_species(lattices, frac, numbers, batch_size=batch, include=kinds)

    def numpy_inner():
        return build_graphs_same_species(lattices, frac, numbers)

    def torch_inner():
        return build_device_graphs_same_species(lattices, frac, numbers, device=device)

    return score_inner, numpy_inner, torch_inner


def agreement(opened: dict[str, OnnxModels], crystals: list[Crystal], kinds: list[str], device: str) -> str:
    """One line: the torch graphs on ``device`` equal numpy's, and how far each backend's scores lie from the
    ONNX graph with an exact sigmoid (the torch models' numbers), on ``crystals``."""
    reference, graphs = build_graphs(crystals), build_device_graphs(crystals, device=device).numpy()
    same = np.array_equal(reference.neighbours, graphs.neighbours) and np.allclose(
        reference.bond_vectors, graphs.bond_vectors, atol=1e-5, rtol=0
    )
    exact = open_backend("onnx-exact", kinds, 2)
    want = exact.score(crystals, batch_size=len(crystals), include=kinds)
    parts = []
    for name, models in opened.items():
        got = models.score(crystals, batch_size=len(crystals), include=kinds)
        worst = max(
            float(np.max(np.abs(getattr(got, field) - getattr(want, field))))
            for field in ("dhf_dft", "dhf_exp", "p_syn")
            if getattr(want, field) is not None
        )
        parts.append(f"{name} {worst:.1e}")
    return (
        f"Check on the first {len(crystals)} mixed cells: torch graphs on {device} equal numpy's: "
        f"{'yes' if same else 'NO'}; largest difference from the exact-sigmoid ONNX graph (eV/atom or P_syn): "
        + ", ".join(parts)
        + "."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="results file (markdown)")
    parser.add_argument("--batches", nargs="*", type=int, default=[64, 256, 1024])
    parser.add_argument("--workloads", nargs="*", default=["mixed", "inner 8", "inner 32"])
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--models", nargs="*", default=["exp"], choices=["dft", "exp", "pu"])
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime and torch CPU threads")
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--max-torch-cpu-batch", type=int, default=1024, help="larger batches skip torch-cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = load_average()
    warnings.simplefilter("ignore")  # the synthetic cells' elements all have training rows; no other warning
    cuda = torch.cuda.is_available()
    backends = [b for b in args.backends if b != "torch-cuda" or cuda]
    biggest = max(args.batches)
    mixed = mixed_cells(biggest, (8, 32))
    inner = {
        w: same_species_cells(biggest, int(w.split()[1])) for w in args.workloads if w.startswith("inner")
    }
    device = torch.cuda.get_device_name() if cuda else "none"
    command = shlex.join(["python", "benchmarks/bench_scoring.py", *sys.argv[1:]])
    lines = [
        "# Scoring throughput: onnxruntime (CPU) vs the torch path (CPU, GPU)",
        "",
        f"Command: `PYTHONPATH=. {command}`",
        "",
        f"Machine: {platform.machine()}, {args.threads} thread(s) for onnxruntime and torch on the CPU "
        f"(OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}), Python "
        f"{sys.version.split()[0]}, torch {torch.__version__}, GPU: {device}. Models: "
        f"{', '.join(DEFAULT_MODELS[k] for k in args.models)}. Structures/s end to end (element checks, graphs, "
        "model, results in numpy); graph columns: graph building alone.",
        "",
        "| workload | batch | " + " | ".join(backends) + " | graphs numpy | graphs torch |",
        "| --- | ---: | " + " | ".join("---:" for _ in backends) + " | ---: | ---: |",
    ]
    opened = {name: open_backend(name, args.models, args.threads) for name in backends}
    graph_device = "cuda" if cuda else "cpu"
    checks = agreement(opened, mixed[: min(64, biggest)], args.models, graph_device)
    print(checks, flush=True)
    for workload in args.workloads:
        for batch in args.batches:
            score, numpy_graphs, torch_graphs = calls(
                workload, batch, mixed, inner, args.models, graph_device
            )
            row = []
            for name, models in opened.items():
                if name == "torch-cpu" and batch > args.max_torch_cpu_batch:
                    row.append("")
                    continue
                row.append(f"{rate(partial(score, models), batch, args.min_time, name == 'torch-cuda'):,.0f}")
            graphs = [
                rate(numpy_graphs, batch, args.min_time / 2),
                rate(torch_graphs, batch, args.min_time / 2, cuda),
            ]
            line = (
                f"| {workload} | {batch} | "
                + " | ".join(row)
                + " | "
                + " | ".join(f"{g:,.0f}" for g in graphs)
                + " |"
            )
            print(line, flush=True)
            lines.append(line)
            if args.out:  # row by row: a run stopped at a time limit keeps what it measured
                args.out.write_text("\n".join(lines) + "\n")
    peak = f" Peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB." if cuda else ""
    lines += [
        "",
        f"Graphs torch: the torch builder on {graph_device}. An empty cell: not measured (torch on the CPU above "
        f"--max-torch-cpu-batch {args.max_torch_cpu_batch}). 1-minute load average before / after: "
        f"{load_before} / {load_average()} on {os.cpu_count()} CPU(s).{peak}",
        "",
        checks,
    ]
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
