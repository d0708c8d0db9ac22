"""Throughput of the shipped model configuration on a GPU (torch, CUDA): inference and training steps.

Command (on a CUDA machine; numpy + torch only)::

    python benchmarks/bench_gpu.py --out benchmarks/results/gpu.md

Cells of 8 and 20 atoms (the same synthetic cells as bench_inference.py), graphs prebuilt; inference
in eval mode under no_grad at batch 256; training = forward + backward + Adam step at batch 64.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from csp.models import ALIGNN, SHIPPED_CONFIG, graph_tensors
from csp.models.graphs import build_graphs
from csp.structures.crystal import Crystal


def cells(n_atoms: int, count: int, seed: int = 0) -> list[Crystal]:
    rng = np.random.default_rng(seed)
    side = (12.0 * n_atoms) ** (1 / 3)
    return [
        Crystal(np.eye(3) * side, rng.integers(1, 84, n_atoms), rng.random((n_atoms, 3)))
        for _ in range(count)
    ]


def timed(fn, n: int, device: str, min_time: float = 3.0) -> float:
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_time:
        fn()
        done += n
    if device == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = ALIGNN(SHIPPED_CONFIG).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    name = torch.cuda.get_device_name() if device == "cuda" else platform.processor()
    lines = [
        "# Shipped configuration on a GPU",
        "",
        "Command: `python benchmarks/bench_gpu.py --out benchmarks/results/gpu.md`",
        "",
        f"Device: {name}; torch {torch.__version__}; config {SHIPPED_CONFIG.to_dict()}",
        "",
        "| atoms | inference, batch 256 (structures/s) | training, batch 64 (structures/s) |",
        "| ---: | ---: | ---: |",
    ]
    for n_atoms in (8, 20):
        infer_in = graph_tensors(build_graphs(cells(n_atoms, 256)), device)
        train_in = graph_tensors(build_graphs(cells(n_atoms, 64, seed=1)), device)
        target = torch.zeros(64, device=device)

        def infer(inputs=infer_in):
            model.eval()
            with torch.no_grad():
                model(*inputs)

        def step(inputs=train_in, target=target):
            model.train()
            loss = torch.nn.functional.l1_loss(model(*inputs), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        lines.append(f"| {n_atoms} | {timed(infer, 256, device):,.0f} | {timed(step, 64, device):,.0f} |")
        print(lines[-1], flush=True)
    text = "\n".join([*lines, ""])
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
