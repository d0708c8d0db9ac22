"""The shortest distance of every element pair in the trusted sources of a lake, and what a floor on it refuses.

Usage (a lake ingested from the mirror with ``csp ingest run``; opened read-only)::

    CSP_HOME=<lake home> PYTHONPATH=. python benchmarks/pair_min_distance.py \\
        --labels data/labels/chgnet-0.3.0 [--write storage/pair_min_distances.json]

For every ``structures`` row of the lake and every row of the label parts, takes the shortest distance of each
element pair present (periodic images included, within ``MAX_NEAREST_NEIGHBOUR_ANGSTROM``;
``storage.validation.pair_shortest_distances``). Over the trusted sources (``TRUSTED``: the DFT and experimental
sources of the data mirror) it keeps per pair the shortest distance and the number of rows holding the pair, and
prints:

- per source, how many rows a floor ``d >= f x reference minimum`` (pairs with at least ``--min-rows`` rows)
  would refuse for each candidate ``f``, with the reference built from the OTHER trusted sources (leave one
  source out: how a new, honest source would fare), and with the full table for the label sources;
- how many cells of a sample of small trusted rows (2-4 sites, like primitive LiH) whose fractional coordinates are read as Cartesian Angstrom (the
  fault of issue 22, W3) the shared distance rule refuses, and how many more the floor refuses;
- the pairs whose reference minimum lies far below their second-shortest row (one odd row sets the floor).

``--ceiling`` prints instead the measurement of the ceiling (``storage.validation.stretched_cell_problem``): per
trusted row its tightest bond ratio (over the pairs present with at least ``--min-rows`` reference rows, the
shortest distance of the pair over the ``--ceiling-percentile`` percentile of that pair over the trusted rows;
the minimum over the pairs), left one source out,
how many rows each candidate ceiling would refuse (and which at ``--ceiling-at``), and how many trusted rows
whose cell is uniformly enlarged by ``SCALES`` (1.8897: a cell written in Bohr) it refuses with the full table.

``--write`` stores the table (all trusted rows) with its provenance as the JSON that
:mod:`storage.validation` loads.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from csp.pool_workers import quiet_executor
from storage.validation import BOHR_ANGSTROM

FACTORS = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
TRUSTED = (
    "castelli_alt",
    "castelli_cdvae",
    "experimental_prototypes",
    "gnome",
    "gu2022_perovskite_pu",
    "mp_chemeleon_mp40",
    "mp_flla2015",
    "oqmd_intermetallics",
)
CEILINGS = (1.3, 1.5, 1.7, 1.8, 1.85, 1.9, 2.0)
SCALES = (1.1, 1.2, 1.5, 1.8897)
RADIUS = 7.0  # MAX_NEAREST_NEIGHBOUR_ANGSTROM: a pair enlarged beyond it is no longer seen
MIXUP_SAMPLE = 4000
MIXUP_MAX_SITES = 4


def wide_pair_minima(item: tuple[list[float], list[str], list[float]]) -> dict[tuple[str, str], float]:
    """:func:`pair_minima` within ``RADIUS / BOHR_ANGSTROM`` (13.2 A), the wide look of the ceiling."""
    return pair_minima(item, RADIUS / BOHR_ANGSTROM)


def pair_minima(
    item: tuple[list[float], list[str], list[float]], radius: float = RADIUS
) -> dict[tuple[str, str], float]:
    """Shortest distance per element pair of one cell (lattice rows 9 floats, symbols, fractional 3n)."""
    from storage.validation import StructureError, neighbour_distances, pair_shortest_distances

    lattice, species, frac = item
    try:
        dist = neighbour_distances(
            np.asarray(lattice, float).reshape(3, 3), np.asarray(frac, float).reshape(-1, 3), radius
        )
    except StructureError:
        return {}
    return pair_shortest_distances(dist, species)


def mixup_outcome(item: tuple[list[float], list[str], list[float]]) -> tuple[str, float]:
    """A cell whose fractional coordinates are read as Cartesian Angstrom: ('shared distance rule' or 'other
    geometry check', nan) when the rest of ingest refuses it, else ('passes', the smallest ratio of a pair's
    distance to its reference minimum over the pairs with a floor)."""
    from storage.validation import (
        MAX_NEAREST_NEIGHBOUR_ANGSTROM,
        PAIR_FLOOR_MIN_ROWS,
        StructureError,
        check_geometry,
        neighbour_distances,
        pair_shortest_distances,
        reference_pair_minima,
    )

    lattice, species, frac = item
    lat = np.asarray(lattice, float).reshape(3, 3)
    wrong = np.asarray(frac, float).reshape(-1, 3) @ np.linalg.inv(lat)  # the numbers taken as Angstrom
    try:
        check_geometry(lat, list(species), wrong, pair_floor=False)
    except StructureError as exc:
        text = str(exc)
        shared = "covalent-radius" in text or "overlapping" in text
        return ("shared distance rule" if shared else "other geometry check"), float("nan")
    table = reference_pair_minima()
    dist = neighbour_distances(lat, wrong, MAX_NEAREST_NEIGHBOUR_ANGSTROM)
    ratios = [
        d / table[p][0]
        for p, d in pair_shortest_distances(dist, species).items()
        if p in table and table[p][1] >= PAIR_FLOOR_MIN_ROWS
    ]
    return "passes", min(ratios, default=float("inf"))


def lake_items(home: Path) -> tuple[list[str], list[tuple]]:
    from storage.lake import open_read_only

    rows = (
        open_read_only(home)
        .query("SELECT source, source_id, lattice_angstrom, species, frac_coords FROM structures")
        .to_pylist()
    )
    names = [f"{r['source']}:{r['source_id']}" for r in rows]
    items = [(r["lattice_angstrom"], r["species"], r["frac_coords"]) for r in rows]
    return names, items


def label_items(folder: Path) -> tuple[list[str], list[tuple]]:
    import pyarrow.parquet as pq
    from pymatgen.core import Element

    symbol = {e.Z: e.symbol for e in Element}
    names, items = [], []
    for part in sorted(folder.glob("*.parquet")):
        table = pq.read_table(part, columns=["id", "kind", "lattice", "numbers", "frac_coords"]).to_pylist()
        for r in table:
            names.append(f"{folder.name}:{r['kind']}/{r['id']}")
            items.append((r["lattice"], [symbol[int(z)] for z in r["numbers"]], r["frac_coords"]))
    return names, items


def table_of(rows: list[dict], keep: list[int]) -> dict[tuple[str, str], tuple[float, int, int]]:
    """Per pair (shortest distance, rows holding it, index of the row with the shortest)."""
    table: dict[tuple[str, str], list] = {}
    for k in keep:
        for pair, d in rows[k].items():
            entry = table.setdefault(pair, [np.inf, 0, -1])
            entry[1] += 1
            if d < entry[0]:
                entry[0], entry[2] = d, k
    return {p: (float(v[0]), int(v[1]), int(v[2])) for p, v in table.items()}


def percentile_table(rows: list[dict], keep: list[int], q: float) -> dict[tuple[str, str], tuple[float, int]]:
    """Per pair (the ``q``-th percentile of the pair's shortest distance over the rows holding it, those rows):
    the reference of the ceiling, which one odd row (Mg-Mg 1.455 A in a prototype) cannot set."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for k in keep:
        for pair, d in rows[k].items():
            values[pair].append(d)
    return {p: (float(np.percentile(v, q)), len(v)) for p, v in values.items()}


def refused(row: dict, table: dict, factor: float, min_rows: int) -> tuple[str, str] | None:
    """The first pair of a row below ``factor`` x its reference minimum, else None."""
    for pair, d in row.items():
        ref = table.get(pair)
        if ref is not None and ref[1] >= min_rows and d < factor * ref[0]:
            return pair
    return None


def tightest_ratio(
    row: dict, table: dict, min_rows: int, scale: float = 1.0, wide: dict | None = None
) -> tuple[float, tuple | None]:
    """The smallest (pair distance x ``scale``) / reference over the pairs of a row with a reference of at least
    ``min_rows`` rows and within ``RADIUS`` once scaled (inf, None when no pair has one, or when an element with a
    pair within the radius is in no such pair), as ``storage.validation.tightest_bond`` has it; when that gives none,
    the same over the pairs within ``RADIUS / BOHR_ANGSTROM`` (13.2 A) once scaled, as
    ``storage.validation.stretched_cell_problem`` looks wider: from ``wide`` (the row's pair minima within 13.2 A)
    when given, else from ``row`` (its pairs within 7 A unscaled: exact for the Bohr scale, a lower bound on the
    pairs seen for a smaller one)."""

    def over(pairs: dict, limit: float) -> tuple[float, tuple | None]:
        best, which = float("inf"), None
        seen: set[str] = set()
        covered: set[str] = set()
        for pair, d in pairs.items():
            if d * scale > limit:
                continue
            seen.update(pair)
            ref = table.get(pair)
            if ref is None or ref[1] < min_rows:
                continue
            covered.update(pair)
            if d * scale / ref[0] < best:
                best, which = d * scale / ref[0], pair
        return (best, which) if which is not None and seen <= covered else (float("inf"), None)

    found = over(row, RADIUS)
    if found[1] is None:
        found = over(wide if wide is not None else row, RADIUS / BOHR_ANGSTROM)
    return found


def ceiling_report(names, source, rows, trusted, items, args) -> None:
    """The ``--ceiling`` measurement (module docstring)."""
    full = percentile_table(rows, trusted, args.ceiling_percentile)
    held_out = {
        s: percentile_table(rows, [k for k in trusted if source[k] != s], args.ceiling_percentile)
        for s in sorted({source[k] for k in trusted})
    }
    lonely = [
        k
        for k in trusted
        if any(tightest_ratio(rows[k], t, args.min_rows)[1] is None for t in (full, held_out[source[k]]))
    ]
    with quiet_executor(args.workers) as pool:  # the wide look of the rows the 7 A one gives no ratio
        wide = dict(
            zip(lonely, pool.map(wide_pair_minima, [items[k] for k in lonely], chunksize=64), strict=True)
        )
    print(
        f"{len(lonely)} trusted rows with no ratio within 7 A (held out or not): their pairs within 13.2 A computed"
    )
    print(f"reference of a pair: percentile {args.ceiling_percentile:g} of its shortest distance")
    print("\ntightest bond ratio of the trusted rows (reference from the OTHER trusted sources)")
    print(
        "source".ljust(26)
        + "rows".rjust(7)
        + "no ref".rjust(8)
        + "max".rjust(7)
        + "".join(f">{c:g}".rjust(7) for c in CEILINGS)
    )
    by_source: dict[str, list[int]] = defaultdict(list)
    for k in trusted:
        by_source[source[k]].append(k)
    above: list[str] = []
    everything: list[float] = []
    for s, idx in sorted(by_source.items()):
        table = held_out[s]
        ratios = []
        for k in idx:
            r, p = tightest_ratio(rows[k], table, args.min_rows, wide=wide.get(k))
            ratios.append(r)
            if np.isfinite(r) and r > args.ceiling_at:
                d = rows[k][p]
                above.append(f"{names[k]} {'-'.join(p)} {d:.3f} A = {r:.3f} x {table[p][0]:.3f}")
        arr = np.array(ratios)
        fin = arr[np.isfinite(arr)]
        everything.extend(fin.tolist())
        counts = "".join(f"{int((fin > c).sum()):7d}" for c in CEILINGS)
        print(f"{s:26s}{len(idx):7d}{int((~np.isfinite(arr)).sum()):8d}{fin.max():7.3f}{counts}")
    mine = [(k, *tightest_ratio(rows[k], full, args.min_rows, wide=wide.get(k))) for k in trusted]
    own = np.array([r for _, r, _ in mine if np.isfinite(r)])
    print("all trusted, full table".ljust(41) + "".join(f"{int((own > c).sum()):7d}" for c in CEILINGS))
    for k, r, p in mine:
        if np.isfinite(r) and r > args.ceiling_at:
            print(f"    full table: {names[k]} {'-'.join(p)} {rows[k][p]:.3f} A = {r:.3f} x {full[p][0]:.3f}")
    q = np.percentile(everything, [50, 99, 99.9, 99.99, 100]).round(3).tolist()
    print(f"  percentiles 50, 99, 99.9, 99.99, 100 of the ratio: {q}")
    print(f"  rows above {args.ceiling_at:g}: {len(above)}" + "".join(f"\n    {line}" for line in above))
    print("\ntrusted rows enlarged uniformly, full table: rows whose tightest ratio exceeds each ceiling")
    print(
        "scale".ljust(10)
        + "rows".rjust(7)
        + "no ref".rjust(8)
        + "".join(f">{c:g}".rjust(8) for c in CEILINGS)
    )
    for scale in SCALES:
        arr = np.array([tightest_ratio(rows[k], full, args.min_rows, scale, wide.get(k))[0] for k in trusted])
        counts = "".join(f"{int(((arr > c) & np.isfinite(arr)).sum()):8d}" for c in CEILINGS)
        print(f"{scale:<10g}{len(arr):7d}{int((~np.isfinite(arr)).sum()):8d}{counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, action="append", default=[], help="a folder of label parts")
    parser.add_argument("--min-rows", type=int, default=20, help="rows a pair needs to get a floor")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--factor", type=float, default=0.6, help="list the trusted rows refused at this f")
    parser.add_argument("--mixup", action="store_true", help="also the fractional-as-Cartesian sample")
    parser.add_argument("--ceiling", action="store_true", help="measure the ceiling instead (docstring)")
    parser.add_argument("--ceiling-percentile", type=float, default=1.0, help="the ceiling's reference")
    parser.add_argument("--ceiling-at", type=float, default=1.5, help="list the trusted rows above this")
    parser.add_argument("--write", type=Path, help="store the table (JSON) here")
    parser.add_argument("--cache", type=Path, help="keep the per-row pair minima here (pickle) for a rerun")
    args = parser.parse_args()
    home = Path(os.environ["CSP_HOME"])
    names, items = lake_items(home)
    for folder in args.labels:
        n, i = label_items(folder)
        names, items = names + n, items + i
    source = [name.split(":", 1)[0] for name in names]
    cached = pickle.loads(args.cache.read_bytes()) if args.cache is not None and args.cache.exists() else {}
    todo = [
        k for k, name in enumerate(names) if name not in cached and (not args.ceiling or source[k] in TRUSTED)
    ]
    with quiet_executor(args.workers) as pool:
        for k, pairs in zip(
            todo, pool.map(pair_minima, [items[k] for k in todo], chunksize=256), strict=True
        ):
            cached[names[k]] = pairs
    rows = [cached.get(name, {}) for name in names]
    if args.cache is not None and todo:
        args.cache.write_bytes(pickle.dumps(cached))
    trusted = [k for k, s in enumerate(source) if s in TRUSTED]
    full = table_of(rows, trusted)
    floored = sum(1 for v in full.values() if v[1] >= args.min_rows)
    print(
        f"{len(names)} rows, {len(trusted)} trusted; {len(full)} pairs, {floored} with >= {args.min_rows} rows"
    )

    if args.ceiling:
        ceiling_report(names, source, rows, trusted, items, args)
        return

    print("\nrows refused (trusted: reference from the other trusted sources; others: the full table)")
    print("source".ljust(28) + "rows".rjust(8) + "".join(f"f={f:g}".rjust(8) for f in FACTORS))
    by_source: dict[str, list[int]] = defaultdict(list)
    for k, s in enumerate(source):
        by_source[s].append(k)
    examples: dict[str, list[str]] = defaultdict(list)
    for s, idx in sorted(by_source.items()):
        table = table_of(rows, [k for k in trusted if source[k] != s]) if s in TRUSTED else full
        counts = []
        for f in FACTORS:
            hits = [(k, p) for k in idx if (p := refused(rows[k], table, f, args.min_rows)) is not None]
            counts.append(len(hits))
            if abs(f - args.factor) < 1e-9 and s in TRUSTED:
                for k, p in hits:
                    ratio = rows[k][p] / table[p][0]
                    examples[s].append(
                        f"{names[k]} {'-'.join(p)} {rows[k][p]:.3f} A = {ratio:.3f} x {table[p][0]:.3f}"
                    )
        print(f"{s:28s}{len(idx):8d}" + "".join(f"{c:8d}" for c in counts))
    for s in sorted(set(source) - set(TRUSTED)):
        kinds: dict[str, list[int]] = defaultdict(list)
        for k in by_source[s]:
            kinds[names[k].split(":", 1)[1].split("|")[1] if "|" in names[k] else "-"].append(k)
        for kind, idx in sorted(kinds.items()):
            counts = [sum(1 for k in idx if refused(rows[k], full, f, args.min_rows)) for f in FACTORS]
            print(f"  {s} {kind:17s}{len(idx):8d}" + "".join(f"{c:8d}" for c in counts))
    for s, lines in examples.items():
        print(f"  {s}:\n    " + "\n    ".join(lines))

    print("\npairs whose minimum is < 0.85 x the second-shortest row's (one odd row sets the floor):")
    second: dict[tuple[str, str], list[float]] = defaultdict(list)
    for k in trusted:
        for pair, d in rows[k].items():
            lst = second[pair]
            lst.append(d)
            if len(lst) > 2:
                lst.sort()
                del lst[2:]
    for pair, (d, n, k) in sorted(full.items()):
        two = sorted(second[pair])
        if n >= args.min_rows and len(two) == 2 and two[0] < 0.85 * two[1]:
            print(f"  {'-'.join(pair)}: {d:.3f} A ({names[k]}) vs {two[1]:.3f} A, {n} rows")

    rng = np.random.default_rng(0)
    small = [k for k in trusted if 2 <= len(items[k][1]) <= MIXUP_MAX_SITES]  # small cells, as LiH's
    sample = rng.choice(small, size=min(MIXUP_SAMPLE, len(small)), replace=False)
    if args.mixup:
        with quiet_executor(args.workers) as pool:
            outcomes = list(pool.map(mixup_outcome, [items[k] for k in sample], chunksize=64))
        print(
            f"\nfractional read as Cartesian, {len(sample)} trusted rows of 2-{MIXUP_MAX_SITES} sites (seed 0):"
        )
        for what in ("shared distance rule", "other geometry check"):
            print(f"  refused by the {what}: {sum(1 for o in outcomes if o[0] == what)}")
        left = np.array([r for o, r in outcomes if o == "passes"])
        floors = "".join(f"  f={f:g}: {int((left < f).sum())}" for f in FACTORS)
        print(f"  passing those: {len(left)}; of them refused by the pair floor at{floors}")
        print(f"  their ratios to the reference minimum: {np.sort(left).round(3).tolist()}")

    if args.write is not None:
        provenance = {
            "command": "CSP_HOME=<lake> PYTHONPATH=. python benchmarks/pair_min_distance.py --write "
            + str(args.write),
            "lake": f"{home} (csp ingest run over the data mirror)",
            "sources": {s: len(by_source[s]) for s in TRUSTED if s in by_source},
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "radius_angstrom": 7.0,
            "pairs": "element pair (alphabetical) -> [shortest distance in Angstrom, trusted rows holding the pair, "
            f"percentile {args.ceiling_percentile:g} of the pair's shortest distance over those rows (the ceiling's "
            "reference)]",
        }
        typical = percentile_table(rows, trusted, args.ceiling_percentile)
        lines = [
            f'"{"-".join(p)}": [{v[0]:.4f}, {v[1]}, {typical[p][0]:.4f}]' for p, v in sorted(full.items())
        ]
        text = (
            '{"provenance": '
            + json.dumps(provenance, indent=1)
            + ',\n"pairs": {\n'
            + ",\n".join(lines)
            + "\n}}\n"
        )
        args.write.write_text(text)
        print(f"\nwrote {len(full)} pairs to {args.write}")


if __name__ == "__main__":
    main()
