"""Graphs for a whole training set, computed once, and fast batch assembly (numpy + torch)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from csp.models.dataset import CrystalArrays, to_crystals
from csp.models.graphs import K_NEIGHBOURS, build_graphs
from csp.structures.validity import GeometryError

_log = logging.getLogger("csp.models.training")
_CHUNK = 2048  # structures per graph-building task


@dataclass(frozen=True)
class DatasetGraphs:
    """Per-atom graph rows for every structure of a :class:`CrystalArrays`.

    Attributes:
        natoms: (S,) atoms per structure.
        offsets: (S + 1,) first atom row of each structure.
        numbers: (A,) atomic numbers.
        neighbours: (A, k) int32 neighbour index local to the structure (0..natoms-1).
        bond_vectors: (A, k, 3) float32 bond vectors, Angstrom.
    """

    natoms: np.ndarray
    offsets: np.ndarray
    numbers: np.ndarray
    neighbours: np.ndarray
    bond_vectors: np.ndarray

    @property
    def k(self) -> int:
        return self.neighbours.shape[1]

    def batch(self, index: np.ndarray, device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
        """Model inputs (numbers, neighbours, bond_vectors, crystal_index, natoms) for ``index``."""
        index = np.asarray(index, dtype=np.int64)
        n = self.natoms[index].astype(np.int64)
        new_start = np.concatenate([[0], np.cumsum(n)[:-1]])
        total = int(n.sum())
        crystal = np.repeat(np.arange(len(index)), n)
        rows = np.repeat(self.offsets[index] - new_start, n) + np.arange(total)
        neighbours = self.neighbours[rows].astype(np.int64) + new_start[crystal][:, None]
        return (
            torch.from_numpy(self.numbers[rows].astype(np.int64)).to(device),
            torch.from_numpy(neighbours).to(device),
            torch.from_numpy(self.bond_vectors[rows]).to(device),
            torch.from_numpy(crystal).to(device),
            torch.from_numpy(n).to(device),
        )


def _local_graphs(arrays: CrystalArrays, k: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        graphs = build_graphs(to_crystals(arrays), k=k)
    except GeometryError as exc:
        # name the training row (``source:id``) instead of its position in a chunk
        raise exc.named(str(arrays.ids[exc.index])) from None
    starts = np.repeat(arrays.offsets[:-1], arrays.natoms)
    return (graphs.neighbours - starts[:, None]).astype(np.int32), graphs.bond_vectors


def dataset_graphs(
    arrays: CrystalArrays, k: int = K_NEIGHBOURS, workers: int = 1, cache: Path | None = None
) -> DatasetGraphs:
    """Build (or load from ``cache``) the graphs of every structure.

    Args:
        arrays: the structures.
        k: neighbours per atom.
        workers: processes for graph building (chunks of 2,048 structures).
        cache: optional ``.npz`` path; reused when its content hash and k match, else (re)written.

    Raises:
        GeometryError: a structure the graphs cannot represent (overlapping atoms, a 12th neighbour
            beyond ``csp.structures.validity.MAX_KTH_NEIGHBOUR_ANGSTROM``), named by its id (``source:id``).
    """
    key = f"{arrays.content_hash()}-k{k}"
    if cache is not None and Path(cache).is_file():
        with np.load(cache, allow_pickle=False) as data:
            if str(data["key"]) == key:
                _log.info("graphs loaded from cache %s", cache)
                return DatasetGraphs(
                    arrays.natoms.astype(np.int64),
                    arrays.offsets,
                    arrays.numbers.astype(np.int64),
                    data["neighbours"],
                    data["bond_vectors"],
                )
    chunks = [
        arrays.subset(np.arange(s, min(s + _CHUNK, len(arrays)))) for s in range(0, len(arrays), _CHUNK)
    ]
    if workers > 1 and len(chunks) > 1:
        from csp.pool_workers import quiet_executor  # Ctrl-C: the parent alone handles it

        with quiet_executor(workers) as pool:
            parts = list(pool.map(_local_graphs, chunks, [k] * len(chunks)))
    else:
        parts = [_local_graphs(chunk, k) for chunk in chunks]
    neighbours = np.concatenate([p[0] for p in parts])
    vectors = np.concatenate([p[1] for p in parts])
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        with Path(cache).open("wb") as fh:
            np.savez(fh, key=np.array(key), neighbours=neighbours, bond_vectors=vectors)
    return DatasetGraphs(
        arrays.natoms.astype(np.int64), arrays.offsets, arrays.numbers.astype(np.int64), neighbours, vectors
    )
