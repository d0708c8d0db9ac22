"""Ingest time for the whole data mirror and query times over the lake.

Command::

    CSP_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_lake.py --out benchmarks/results/lake.md

Ingest runs every registered source into a fresh lake (structure parsing on 2 processes). Queries run
through the read-only API (a fresh DuckDB connection with the lake's views each time, as ``csp sql`` does);
each is timed as the median of 5 runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from storage.ingest import ingest_source, ordered_sources
from storage.lake import Lake

QUERIES = {
    "count structures": "SELECT count(*) FROM structures",
    "rows per source": "SELECT source, count(*) FROM structures GROUP BY source",
    "filtered scan: cubic oxides with dHf < -2 eV/atom": (
        "SELECT source, source_id, reduced_formula, dhf_dft_ev_per_atom FROM structures "
        "WHERE crystal_system = 'cubic' AND list_contains(elements, 'O') AND dhf_dft_ev_per_atom < -2"
    ),
    "lowest DFT energy per formula": (
        "SELECT reduced_formula, min(dhf_dft_ev_per_atom) FROM structures GROUP BY reduced_formula"
    ),
    "experiment joined to structures (experimental_linked)": (
        "SELECT count(*), count(linked_source_id) FROM experimental_linked"
    ),
    "structure arrays of one formula": "SELECT lattice_angstrom, species, frac_coords FROM structures WHERE reduced_formula = 'MgO'",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    mirror = Path(os.environ["CSP_DATA_MIRROR"])
    lake = Lake(Path(tempfile.mkdtemp()) / "home").init()
    lines = [
        "# Lake benchmark: ingest of the whole mirror, and queries",
        "",
        "Command: `CSP_DATA_MIRROR=../shared/data python benchmarks/bench_lake.py --out benchmarks/results/lake.md`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}.",
        "",
        "| source | rows written | quarantined | seconds |",
        "| --- | ---: | ---: | ---: |",
    ]
    total = 0.0
    for name in ordered_sources():
        report = ingest_source(lake, name, mirror, workers=2)
        total += report.seconds
        written = sum(v for k, v in report.written.items() if k != "quarantine")
        lines.append(f"| {name} | {written} | {report.n_rejected} | {report.seconds:.1f} |")
        print(lines[-1], flush=True)
    lines += [
        "",
        f"**Whole mirror: {total:.0f} s.**",
        "",
        "| query | rows | median ms |",
        "| --- | ---: | ---: |",
    ]
    for label, sql in QUERIES.items():
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            result = lake.query(sql)
            times.append(1000 * (time.perf_counter() - t0))
        lines.append(f"| {label} | {result.num_rows} | {statistics.median(times):.0f} |")
    rerun = ingest_source(lake, "mp_flla2015", mirror, workers=2)
    lines += [
        "",
        f"Re-running one source (mp_flla2015) writes {sum(rerun.written.values())} rows "
        f"in {rerun.seconds:.1f} s (idempotent).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
