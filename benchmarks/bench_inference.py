"""Inference throughput (structures/s): torch eager vs onnxruntime, on this machine's CPU.

Not a test. Run from the repository root:

    python benchmarks/bench_inference.py --out benchmarks/results/inference.md

``--models-dir DIR --export-only`` exports the models once (needs onnxscript), so that a machine
without onnxscript can run the benchmark with ``--models-dir DIR``.

Cells of 8 and 20 atoms (synthetic, random positions at ~12 A^3/atom, fixed seed), batch sizes 1, 32
and 256, 2 threads for both torch and onnxruntime, graph building excluded (timed separately).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from csp.models import ALIGNN, ALIGNNConfig
from csp.models.graphs import build_graphs
from csp.models.infer import OnnxModel
from csp.models.onnx_export import export_model
from csp.structures.crystal import Crystal

CONFIGS = {
    "small H=64 2+2": ALIGNNConfig(hidden=64, alignn_layers=2, gcn_layers=2),
    "H=96 2+2": ALIGNNConfig(hidden=96, alignn_layers=2, gcn_layers=2),
    "H=128 2+2": ALIGNNConfig(hidden=128, alignn_layers=2, gcn_layers=2),
    "H=128 3+3": ALIGNNConfig(hidden=128, alignn_layers=3, gcn_layers=3),
}


def crystals(n_atoms: int, count: int, seed: int = 0) -> list[Crystal]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        a = (12.0 * n_atoms) ** (1 / 3)
        lattice = np.eye(3) * a + rng.normal(0, 0.1 * a, (3, 3))
        out.append(Crystal(lattice, rng.choice([8, 12, 40, 56], n_atoms), rng.random((n_atoms, 3))))
    return out


def rate(fn, n_structures: int, min_time: float = 2.0) -> float:
    fn()  # warm-up
    runs, start = 0, time.perf_counter()
    while True:
        fn()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return runs * n_structures / elapsed


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 32, 256])
    parser.add_argument("--sizes", nargs="*", type=int, default=[8, 20])
    parser.add_argument("--models-dir", type=Path, help="reuse (or keep) exported models here")
    parser.add_argument("--export-only", action="store_true", help="export to --models-dir and stop")
    args = parser.parse_args()
    torch.set_num_threads(2)
    load_before = _load()
    lines = [
        "# Inference throughput",
        "",
        "Command: `python benchmarks/bench_inference.py --out benchmarks/results/inference.md`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, 2 threads (torch and onnxruntime), "
        f"Python {sys.version.split()[0]}, torch {torch.__version__}. Structures/s, graph building excluded.",
        "",
        "| config | atoms | batch | torch eager | onnxruntime | speed-up | graphs (numpy) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.models_dir or Path(tmp)
        for name in args.configs:
            folder = root / name.replace(" ", "_").replace("=", "")
            if (folder / "checkpoint.pt").is_file():
                model = ALIGNN(CONFIGS[name]).eval()
                model.load_state_dict(torch.load(folder / "checkpoint.pt", weights_only=True))
            else:
                torch.manual_seed(0)
                model = ALIGNN(CONFIGS[name]).eval()
                export_model(model, folder)
                torch.save(model.state_dict(), folder / "checkpoint.pt")
            if args.export_only:
                continue
            session = OnnxModel(folder, threads=2)
            for n_atoms in args.sizes:
                for batch in args.batches:
                    cs = crystals(n_atoms, batch)
                    graphs = build_graphs(cs)
                    with torch.no_grad():
                        t_torch = rate(partial(model.forward_graphs, graphs), batch)
                    t_onnx = rate(partial(session.run_graphs, graphs), batch)
                    t_graph = rate(partial(build_graphs, cs), batch, 0.5)
                    row = (
                        f"| {name} | {n_atoms} | {batch} | {t_torch:.0f} | {t_onnx:.0f} | "
                        f"{t_onnx / t_torch:.1f}x | {t_graph:.0f} |"
                    )
                    print(row, flush=True)
                    lines.append(row)
    lines += ["", f"1-minute load average before / after: {load_before} / {_load()} (shared machine: noise)."]
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
