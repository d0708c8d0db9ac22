"""Where the integrity bounds come from: geometry statistics of the lake and of training sets.

Usage (a lake ingested from the mirror with ``csp ingest run``, training sets from ``csp models dataset``)::

    CSP_HOME=<lake home> PYTHONPATH=. python benchmarks/geometry_stats.py --npz dft.npz --npz transfer.npz --npz pu.npz

Prints, over every ``structures`` row of the lake: the shortest interatomic distance, the volume per
atom, the widest empty slab and the largest nearest-neighbour distance (``storage.validation``), with
the rows each ``storage.validation`` bound would refuse; and, per training set, the largest 12th-nearest
neighbour distance (``csp.models.graphs``) among its sparsest structures, which sets
``csp.structures.validity.MAX_KTH_NEIGHBOUR_ANGSTROM``.
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


def kth_stats(npz: Path, k: int = 12, sparsest: int = 400) -> None:
    """Largest 12th-neighbour distance among the sparsest structures of a training set.

    Building every graph of a 60,000-row set takes many CPU minutes; the 12th-neighbour distance grows with
    the volume per atom and with vacuum, so the ``sparsest`` structures by each measure are built.
    """
    import csp.models.graphs as graphs
    from csp.models.dataset import load_arrays, to_crystals
    from csp.structures.validity import largest_vacuum

    graphs.MAX_KTH_NEIGHBOUR_ANGSTROM = 1e9  # measure, do not refuse
    arrays = load_arrays(npz)
    crystals = to_crystals(arrays)
    vpa = np.array([c.volume / c.num_sites for c in crystals])
    gap = np.array([largest_vacuum(c.lattice, c.frac_coords) for c in crystals])
    pick = sorted(set(np.argsort(-vpa)[:sparsest].tolist()) | set(np.argsort(-gap)[:sparsest].tolist()))
    kth = np.array(
        [
            float(np.linalg.norm(graphs.build_graphs([crystals[i]], k=k).bond_vectors[:, -1], axis=-1).max())
            for i in pick
        ]
    )
    top = np.argsort(-kth)[:3]
    print(
        f"{npz.name}: {len(crystals)} crystals, {len(pick)} sparsest built; largest {k}th-neighbour distances:"
    )
    for j in top:
        i = pick[j]
        print(f"  {arrays.ids[i]}: {kth[j]:.2f} A ({vpa[i]:.1f} A^3/atom, widest empty slab {gap[i]:.1f} A)")


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
