"""Run every registered reader over its whole file(s) and tabulate records, rejections and seconds.

Command (from the repository root):

    PYTHONPATH=. python benchmarks/bench_readers.py --workers 2 --out benchmarks/results/readers.md

The mirror is ``$CSP_DATA_MIRROR`` or ``../shared/data``. MP sources get the Jang et al. labels,
built from the Jang sources read first, as the ingest layer does.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import re
import time
from pathlib import Path

from storage.readers import Record, Rejection, default_mirror, mp_labels, sources_in_order

README_ROWS = {
    "oqmd_intermetallics": 6688, "gnome": 35996, "mp_flla2015": 3869, "mp_chemeleon_mp40": 1913,
    "castelli_cdvae": 7570, "castelli_alt": 7570, "gu2022_perovskite_pu": 12896, "jang2020_mp_icsd": 46461,
    "jang2020_mp_virtual": 77213, "experimental_prototypes": 759, "expt_deltae_jha2019": 1624,
    "qmpy_ssub": 2052, "qmpy_iit": 1002, "kingsbury2022": 2109, "oqmd_composition_deltae": 27981,
}  # fmt: skip


def _reason_group(reason: str) -> str:
    """Collapse ids and numbers so that rejections group by kind."""
    reason = re.sub(r"'[^']*'", "'…'", reason)
    return re.sub(r"\d+(\.\d+)?", "N", reason)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    mirror = default_mirror()
    label_rows: dict[str, list[Record]] = {}
    lines = [
        f"# Reader benchmark: whole mirror, workers={args.workers}",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}. Command: see `benchmarks/bench_readers.py`.",
        "",
        "| source | README rows | records | rejections | seconds | records/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    details: list[str] = []
    total_t = 0.0
    for spec in sources_in_order():
        options: dict[str, object] = {}
        if spec.table == "structures":
            options["workers"] = args.workers
        if spec.label_sources:
            options["labels"] = mp_labels(r for s in spec.label_sources for r in label_rows.get(s, []))
        start = time.perf_counter()
        n_rec, reasons, label_counts = 0, collections.Counter(), collections.Counter()
        examples: dict[str, str] = {}
        for item in spec.read(mirror, **options):
            if isinstance(item, Rejection):
                group = _reason_group(item.reason)
                reasons[group] += 1
                examples.setdefault(group, f"{item.file} row {item.row} ({item.source_id}): {item.reason}")
            else:
                n_rec += 1
                if spec.kind == "label" and spec.table == "synth_labels":
                    label_rows.setdefault(spec.name, []).append(item)
                if spec.table == "structures":
                    label_counts[item.row["icsd_label"]] += 1
        seconds = time.perf_counter() - start
        total_t += seconds
        n_rej = sum(reasons.values())
        lines.append(
            f"| {spec.name} | {README_ROWS.get(spec.name, '?'):,} | {n_rec:,} | {n_rej:,} | {seconds:.1f} "
            f"| {n_rec / seconds:,.0f} |"
        )
        if reasons or label_counts:
            details.append(f"- **{spec.name}**")
            for group, count in reasons.most_common():
                details.append(f"  - {count} x {group} — e.g. {examples[group]}")
            if label_counts:
                shown = ", ".join(f"{k}: {v:,}" for k, v in sorted(label_counts.items(), key=str))
                details.append(f"  - icsd_label counts: {shown}")
        print(lines[-1], flush=True)
    lines += ["", f"Total: {total_t:.1f} s", "", "## Rejections by reason and labels", "", *details, ""]
    text = "\n".join(lines)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
