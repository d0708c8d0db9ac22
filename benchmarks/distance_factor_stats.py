"""How tight the distance rule may be: the shortest ``d / (r_i + r_j)`` of every trusted structure.

Usage (a lake ingested from the mirror with ``csp ingest run``)::

    CSP_HOME=<lake home> PYTHONPATH=. python benchmarks/distance_factor_stats.py [--labels data/labels/chgnet-0.3.0]

For every ``structures`` row of the lake, and every row of the committed universal-potential label parts, takes
the smallest ratio of an interatomic distance (periodic images included) to the covalent-radius sum of its two
atoms (``csp.structures.validity``'s radii), then prints per source the quantiles (min, 0.01, 0.1, 1 %), the
lowest rows, and how many rows each candidate factor of the rule ``d >= f (r_i + r_j)`` would refuse.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from csp.pool_workers import quiet_executor

FACTORS = (0.5, 0.55, 0.6, 0.65, 0.7)
RADIUS = 5.0  # Angstrom: 0.7 x the largest radius sum (2 x 2.6 A) lies below it


def min_ratio(item: tuple[list[float], list[int], list[float]]) -> tuple[float, int, int]:
    """(smallest d / (r_i + r_j), Z_i, Z_j) of one cell (lattice rows 9 floats, atomic numbers, fractional 3n)."""
    from csp.structures.validity import _radii
    from storage.validation import neighbour_distances

    lattice, numbers, frac = item
    z = np.asarray(numbers, dtype=np.int64)
    dist = neighbour_distances(
        np.asarray(lattice, float).reshape(3, 3), np.asarray(frac, float).reshape(-1, 3), RADIUS
    )
    r = _radii(z)
    ratio = np.nan_to_num(dist / (r[:, None] + r[None, :]), nan=np.inf)  # no radius (Z > 96): not compared
    i, j = np.unravel_index(int(np.argmin(ratio)), ratio.shape)
    return float(ratio[i, j]), int(z[i]), int(z[j])


def lake_items(home: Path) -> tuple[list[str], list[tuple]]:
    from pymatgen.core import Element

    from storage.lake import Lake

    rows = (
        Lake(home)
        .query("SELECT source, source_id, lattice_angstrom, species, frac_coords FROM structures")
        .to_pylist()
    )
    z_of = {e.symbol: e.Z for e in Element}
    names = [f"{r['source']}:{r['source_id']}" for r in rows]
    items = [(r["lattice_angstrom"], [z_of[s] for s in r["species"]], r["frac_coords"]) for r in rows]
    return names, items


def label_items(folder: Path) -> tuple[list[str], list[tuple]]:
    import pyarrow.parquet as pq

    names, items = [], []
    for part in sorted(folder.glob("*.parquet")):
        table = pq.read_table(part, columns=["id", "kind", "lattice", "numbers", "frac_coords"]).to_pylist()
        for r in table:
            names.append(f"{folder.name}/{r['kind']}:{r['id']}")
            items.append((r["lattice"], r["numbers"], r["frac_coords"]))
    return names, items


def report(names: list[str], results: list[tuple[float, int, int]]) -> None:
    from pymatgen.core import Element

    by_source: dict[str, list[int]] = defaultdict(list)
    for k, name in enumerate(names):
        by_source[name.split(":", 1)[0]].append(k)
    ratios = np.array([r[0] for r in results])
    header = "source".ljust(40) + "rows".rjust(8) + "".join(f"  f<{f:g}".rjust(9) for f in FACTORS)
    print(header + "   min / 0.01% / 0.1% / 1%")
    for source, idx in sorted(by_source.items()):
        a = ratios[idx]
        q = np.percentile(a, [0, 0.01, 0.1, 1])
        counts = "".join(f"{int((a < f - 1e-9).sum()):9d}" for f in FACTORS)
        print(f"{source:40s}{len(a):8d}{counts}   {' / '.join(f'{x:.3f}' for x in q)}")
    order = np.argsort(ratios)[:25]
    print("lowest rows:")
    for k in order:
        ratio, zi, zj = results[k]
        print(f"  {ratio:.3f}  {Element.from_Z(zi).symbol}-{Element.from_Z(zj).symbol}  {names[k]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, action="append", default=[], help="a folder of label parts")
    parser.add_argument("--no-lake", action="store_true", help="skip the lake (labels only)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    names, items = [], []
    if not args.no_lake:
        n, i = lake_items(Path(os.environ["CSP_HOME"]))
        names, items = names + n, items + i
    for folder in args.labels:
        n, i = label_items(folder)
        names, items = names + n, items + i
    with quiet_executor(args.workers) as pool:
        results = list(pool.map(min_ratio, items, chunksize=256))
    report(names, results)


if __name__ == "__main__":
    main()
