"""Where the integrity bounds come from: geometry statistics of the lake and of training sets.

Usage (a lake ingested from the mirror with ``csp ingest run``, training sets from ``csp models dataset``)::

    CSP_HOME=<lake home> python benchmarks/geometry_stats.py --npz dft.npz --npz exp.npz --npz pu.npz

Prints, over every ``structures`` row of the lake: the shortest interatomic distance, the volume per
atom, the widest empty slab and the largest nearest-neighbour distance (``storage.validation``), with
the rows each ``storage.validation`` bound would refuse; and, per training set, the largest 12th-nearest
neighbour distance (``csp.graphs``), which bounds ``csp.validity.MAX_KTH_NEIGHBOUR_ANGSTROM``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def lake_stats(home: Path) -> None:
    from storage import validation as v
    from storage.lake import Lake

    rows = (
        Lake(home)
        .query("SELECT source, source_id, lattice_angstrom, species, frac_coords FROM structures")
        .to_pylist()
    )
    out = {"dmin": [], "vpa": [], "gap": [], "nn": []}
    where = {"dmin": [], "vpa": [], "gap": [], "nn": []}
    for r in rows:
        lat = np.asarray(r["lattice_angstrom"], dtype=float).reshape(3, 3)
        frac = np.asarray(r["frac_coords"], dtype=float).reshape(-1, 3)
        n = len(r["species"])
        dist = v.neighbour_distances(lat, frac, v.MAX_NEAREST_NEIGHBOUR_ANGSTROM + 1.0)
        name = f"{r['source']}:{r['source_id']}"
        for key, value in (
            ("dmin", float(dist.min())),
            ("vpa", abs(float(np.linalg.det(lat))) / n),
            ("gap", v.largest_vacuum(lat, frac)[0]),
            ("nn", float(dist.min(axis=1).max())),
        ):
            out[key].append(value)
            where[key].append(name)
    print(f"lake structures: {len(rows)}")
    for key, label, lo_bound, hi_bound in (
        ("dmin", "shortest distance (A)", v.MIN_DISTANCE_ANGSTROM, None),
        ("vpa", "volume per atom (A^3)", v.MIN_VOLUME_PER_ATOM, v.MAX_VOLUME_PER_ATOM),
        ("gap", "widest empty slab (A)", None, v.MAX_VACUUM_ANGSTROM),
        ("nn", "largest nearest-neighbour distance (A)", None, v.MAX_NEAREST_NEIGHBOUR_ANGSTROM),
    ):
        a = np.asarray(out[key])
        q = np.percentile(a, [0, 0.01, 0.1, 1, 50, 99, 99.9, 99.99, 100])
        print(f"{label}: min/0.01/0.1/1/50/99/99.9/99.99/max % = {np.round(q, 3).tolist()}")
        print(f"  smallest at {where[key][int(a.argmin())]}, largest at {where[key][int(a.argmax())]}")
        refused = 0
        if lo_bound is not None:
            refused += int((a < lo_bound).sum())
        if hi_bound is not None:
            refused += int((a > hi_bound).sum())
        print(f"  rows refused by the bound(s) {lo_bound} / {hi_bound}: {refused}")


def kth_stats(npz: Path, k: int = 12) -> None:
    import csp.graphs as graphs
    from csp.dataset import load_arrays, to_crystals

    graphs.MAX_KTH_NEIGHBOUR_ANGSTROM = 1e9  # measure, do not refuse
    arrays = load_arrays(npz)
    worst, worst_id, all_k = 0.0, "", []
    crystals_of = to_crystals(arrays)
    for start in range(0, len(crystals_of), 2048):
        part = crystals_of[start : start + 2048]
        g = graphs.build_graphs(part, k=k)
        d = np.linalg.norm(g.bond_vectors[:, -1, :], axis=-1)
        per_crystal = np.zeros(len(part))
        np.maximum.at(per_crystal, g.crystal_index, d)
        all_k.append(per_crystal)
        i = int(per_crystal.argmax())
        if per_crystal[i] > worst:
            worst, worst_id = float(per_crystal[i]), str(arrays.ids[start + i])
    a = np.concatenate(all_k)
    q = np.percentile(a, [50, 99, 99.9, 100])
    print(
        f"{npz.name}: {len(a)} crystals, 12th-neighbour distance 50/99/99.9/max % = {np.round(q, 2).tolist()}"
    )
    print(f"  largest at {worst_id}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", type=Path, action="append", default=[])
    parser.add_argument("--no-lake", action="store_true")
    args = parser.parse_args()
    if not args.no_lake:
        lake_stats(Path(os.environ.get("CSP_HOME", "~/.csp")).expanduser())
    for npz in args.npz:
        kth_stats(npz)


if __name__ == "__main__":
    main()
